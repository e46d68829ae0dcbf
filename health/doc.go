// Package health keeps the 12-hour sliding record of upload outcomes per
// integration in Redis and auto-disables an integration that keeps failing
// (DESIGN §5 "Health").
//
// # Storage
//
// Each integration has one Redis hash, {prefix}health:{name}, with a field
// per minute that saw outcomes: "a<minute>" counts attempts and
// "f<minute>" failures (minute = Unix minutes of the outcome's time). So a
// ledger holds at most 2×721 fields whatever the upload rate; fields out of
// the window are deleted whenever the integration records, and the whole
// key expires 13 h after its last write.
//
// # Window
//
// The window is minute-granular: evaluated at time now, an outcome counts
// when its minute is at most 720 minutes before now's minute, so every
// outcome counts for at least 12 h and at most 12 h 1 min. Times are passed
// in by the caller (no clock inside); outcomes older than the window are
// ignored.
//
// # Guarantees
//
//   - Record adds the outcome, trims the window, evaluates the threshold
//     and, when met, auto-disables — in one Lua script, atomically. The
//     threshold is met when attempts >= MinAttempts and
//     failures*100 >= 60*attempts.
//   - The auto-disable writes the registry's hash {prefix}integrations and
//     XADDs to {prefix}events (MAXLEN ~ registry.MaxEvents) with exactly the
//     shapes registry writes, so registry.Store.Status, Events and the
//     Watcher read it. It changes only an enabled integration (no entry, or
//     state "enabled"); an operator's disable or an unreadable entry is left
//     alone. Of replicas racing past the threshold exactly one disables and
//     exactly one event is recorded.
//   - The script touches three keys, so in Redis Cluster the prefix must
//     carry a hash tag (e.g. "{hitship}:"), the same prefix as the
//     registry's; New refuses a ClusterClient with an untagged prefix.
//   - Buffered never lets a Redis outage reach the caller and never decides
//     on partial data: once a Redis call fails it counts outcomes in memory
//     (bounded, per integration and minute) and decides nothing until Flush
//     has written them back; Flush writes an integration's counts and
//     evaluates them in one script. Outcomes buffered by other replicas are
//     counted when those replicas flush.
//   - Ledger and Buffered are safe for concurrent use. Ledger methods block
//     for one Redis round trip.
package health
