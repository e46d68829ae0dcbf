// Package health keeps the 12-hour sliding record of upload outcomes per
// integration in Redis and auto-disables an integration that keeps failing
// (DESIGN §5 "Health").
//
// # Storage
//
// Each integration has one Redis hash, {prefix}health:{name}, with fields
// per minute that saw outcomes: "a<minute>" counts attempts, "f<minute>"
// failures, "c<minute>" failures on the customer's side, and "s<minute>" and
// "e<minute>" hold the times (Unix ms) of that minute's first and last
// customer-side failure (minute = Unix minutes of the outcome's time). So a
// ledger holds at most 5×721 fields whatever the upload rate; fields out of
// the window are deleted whenever the integration records, and the whole
// key expires 13 h after its last write.
//
// # Outcomes
//
// Every attempt is recorded with the side its failure's cause lies on
// (Outcome; the callers classify with Blame of sink/s3): Success, FailCustomer
// (access denied, no such bucket, wrong region, bad key or credentials, a
// role that cannot be assumed), FailProvider (5xx, throttling, timeouts,
// connection errors) or FailHitship (hitship's own identity, parking bucket,
// disk). All of them are attempts; only FailCustomer counts toward
// auto-disable, so an outage of S3 itself, or of hitship, never switches a
// healthy customer off.
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
//     MinAttempts (default 20), customer-side failures*100 >= 60*attempts,
//     and the customer-side failures span at least MinFailing (default 1 h)
//     from the first to the last in the window: half a minute of trouble
//     never disables, however many attempts it failed, and failures of the
//     provider (5xx, throttling, timeouts) or of hitship itself count as
//     attempts, never toward the threshold.
//   - When it is met, the auto-disable is the registry's
//     (registry.Store.AutoDisable, Config.Registry): integrations/registry/ owns its hash
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
//     (bounded, per integration and minute, with the exact times of the
//     customer-side failures) and decides nothing until Flush
//     has written them back; Flush writes an integration's counts and
//     evaluates them in one script. Outcomes buffered by other replicas are
//     counted when those replicas flush.
//   - Ledger and Buffered are safe for concurrent use. Ledger methods block
//     for one Redis round trip (Record and Flush, when they auto-disable,
//     also for the registry's change).
package health
