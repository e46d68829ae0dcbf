// Package retry holds DESIGN §5's retry schedule and the Redis retry queue of
// parked objects, with the worker that drains it.
//
// # Schedule
//
// After a failed upload: cycle 1 retries after 1, 3, 5, 10, 10 s; cycle 2
// after 0, 1, 3, 5, 30 s; cycle 3 after 1, 1, 3, 5, 10, 30 min: 17 attempts,
// the last 51m8s after the first. A Position names one attempt; Next gives
// the wait before the following one and reports false after Last (dead
// letter). Next and Inline are pure. Run drives attempts on an injected
// Clock (RealClock, which is the fake clock under testing/synctest).
//
// # Queue
//
// All keys of one queue share the Redis Cluster hash tag {<name>}, so every
// Lua script and MULTI works on a cluster (one slot per queue):
//
//	<prefix>{<name>}:entries  hash  id -> entry JSON (the durable record)
//	<prefix>{<name>}:due      zset  id -> due time (Unix ms)
//	<prefix>{<name>}:leased   zset  id -> lease deadline (Unix ms)
//	<prefix>{<name>}:tokens   hash  id -> lease token
//	<prefix>{<name>}:dead     zset  id -> dead-letter time (Unix ms)
//	<prefix>{<name>}:done:<id> string, for DoneTTL after Complete
//
// An entry is in exactly one of due, leased, dead. Times come from the caller
// (Redis's clock is never read), so replicas must have synchronised clocks
// (NTP); a skew shortens or lengthens leases by that much.
//
// Guarantees:
//
//   - Claim is one Lua script: it moves up to max entries that are due, or
//     whose lease expired, to leased under a fresh random token. Two holders
//     never hold one entry under a live lease; an entry whose holder crashed
//     is claimed again once its lease expires (Claimed.Reclaimed).
//   - Complete, Reschedule, DeadLetter and Extend check the token in the same
//     script that changes the entry; a stale holder gets ErrLeaseLost
//     (IsLeaseLost) and changes nothing. A lease that expired but was not yet
//     claimed by anyone still holds.
//   - Delivery is at least once: a holder whose lease expires in the middle
//     of an upload may upload while the next holder does too. Object keys
//     are idempotent (DESIGN §3), so that writes the same bytes twice.
//   - Enqueue is idempotent by ID: an existing entry (in any state) is left
//     untouched.
//   - Dead letters are kept until Requeue (hitship redeliver), which puts them
//     back at Requeued (2/1), due at once.
//   - MarkDying (token-checked) flags a leased entry as being dead-lettered
//     before anything else of the dead-lettering is written; the flag stays
//     until DeadLetter. Complete remembers the id for DoneTTL (Completed), a
//     hint for scanners of the parking bucket, never proof of a delivery.
//   - Everything is plain Redis data: with AOF on it survives a restart,
//     leases and tokens included.
//
// Every Queue method is safe for concurrent use and blocks for one Redis
// round trip, except Requeue (two per id), DeadLetters (two) and
// ListByIntegration (a scan of the whole queue, for the admin API only).
//
// # Worker
//
// A Worker handles up to Concurrency entries at once, each in a goroutine of
// its own: it claims due entries (at most Batch per claim) whenever a slot is
// free, so one entry whose upload hangs holds one slot and never delays the
// others (there is no batch barrier). It renews the leases of the entries in
// flight every Lease/2, and records the outcome: Complete then AfterComplete
// (delete the parked copy) on success, Reschedule per Next on failure, and a
// dead-lettering after Last or when Handle returns DeadLetterNow. A Handle
// whose lease is lost has its context cancelled. Redis errors are logged and
// the worker polls again. Run returns after ctx ends and all its goroutines
// have stopped; entries whose Handle failed because of that are left leased
// and expire, exactly as on a crash.
//
// # Dead-lettering
//
// In this order, so that every crash point (a crash, a failed call, a timeout,
// a lost lease) costs at most a repetition and never the object:
//
//  1. MarkDying: the entry says it is being dead-lettered.
//  2. BeforeDeadLetter: a copy under the dead-letter prefix, and an event.
//  3. DeadLetter: the entry becomes a dead letter.
//  4. AfterDeadLetter: the parked copy is deleted.
//
// A holder that claims an entry marked dying makes no attempt: it resumes at
// step 2 (a failure between the event and step 3 repeats the event). A
// failure before step 1 repeats the last attempt; after step 3, the parked
// copy stays (harmless, logged).
//
// # Scanner
//
// Redis is not the only record of a parked object: the object carries its
// entry's fields as S3 user metadata (Entry.Metadata). Every replica runs a
// Scanner, one at a time under a Redis lease (<prefix>{<name>}:scan), at start
// and every 5 minutes: it lists the parked and dead-letter prefixes of the
// parking bucket and makes the entry of every object that has none again. A
// parked object's entry starts over at Requeued (2/1), due at once: losing
// Redis costs the parked schedule's time again, never a record. A dead
// letter's object becomes a dead letter again (RestoredReason), so that
// `hitship redeliver` finds it; redeliver runs ScanDead itself first.
package retry
