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
//   - Record adds the outcome, trims the window and evaluates the threshold
//     in one Lua script, atomically. The threshold is met when attempts >=
//     MinAttempts and failures*100 >= 60*attempts.
//   - When it is met, the auto-disable is the registry's
//     (registry.Store.AutoDisable, Config.Registry): registry/ owns its hash
//     and events stream, so the change is versioned, carries the client id
//     and reaches the registry's durable copy (the integrations topic). It
//     changes only an enabled integration (an operator's disable is left
//     alone) in one atomic step: of replicas racing past the threshold
//     exactly one disables and exactly one event is recorded. The state's
//     Since is the registry's clock. A failed auto-disable does not fail
//     Record (Decision.DisableErr); the next outcome tries again.
//   - The ledger script touches one key. The registry's script touches two,
//     so in Redis Cluster the prefix must carry a hash tag (e.g.
//     "{hitship}:"), the same prefix as the registry's; New refuses a
//     ClusterClient with an untagged prefix.
//   - Buffered never lets a Redis outage reach the caller and never decides
//     on partial data: once a Redis call fails it counts outcomes in memory
//     (bounded, per integration and minute) and decides nothing until Flush
//     has written them back; Flush writes an integration's counts and
//     evaluates them in one script. Outcomes buffered by other replicas are
//     counted when those replicas flush.
//   - Ledger and Buffered are safe for concurrent use. Ledger methods block
//     for one Redis round trip (Record and Flush, when they auto-disable,
//     also for the registry's change).
package health
