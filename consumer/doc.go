// Package consumer is hitship's member of the Kafka consumer group.
//
// It uses kafka-go's ConsumerGroup / Generation API. Each generation runs one
// worker per assigned partition, starting at the group's committed offset, plus one
// committer; the function given to Generation.Start returns only when all of them
// have stopped, because kafka-go ends a generation as soon as such a function
// returns.
//
// # Per record (a worker's fetch loop, one goroutine per partition)
//
// The record is scanned (package hit) without decoding it: a bad record goes to the
// dead-letter topic; its offset is held until the topic acknowledged it. The
// timestamp (event time, fallback, clamp) feeds the partition's window state
// (package window), the buffers it closes are handed to the Delivery, and the
// original bytes (compacted only when they had whitespace) are appended to a
// spooled buffer of every target of the record's tenant in the worker's
// membership (see Routing below). A record whose tenant has no integration is
// done at once.
//
// # Guarantees
//
//   - Commit after write: the committable offset of a partition is the smallest
//     first offset of its open or undelivered buffers and unacknowledged dead
//     letters, or the offset after the last record read. Commits go through the live
//     generation only; a worker whose generation ended never commits.
//   - Replay determinism: before an offset is committed, the window state just before
//     it is saved in Redis (package state); a new owner restores it and applies the
//     recorded idle closes at their offsets, so a replay produces the same keys with
//     the same bytes. During a Redis outage the snapshot is held in memory and the
//     commit goes on (see Redis outage below).
//   - Topic identity: at the start of every generation the consumer asks the
//     brokers for the topic's incarnation (cluster id and topic id,
//     KafkaIncarnations) and the workers wait for it; all partition state in
//     Redis is kept per incarnation (Deps.StateFor), so after a cluster rebuild
//     or a re-created topic (offsets and generation ids start again) the
//     earlier state (owner claims, dead-letter notes, idle closes, snapshots) is
//     ignored, never applied. The incarnation also seeds the objects' {digest},
//     so objects of the new records never take the keys of the old ones. Kafka
//     before 2.8 gives no topic id: the incarnation is then the cluster id.
//   - Routing is replay state (membership.go): a worker routes with a
//     membership of its own, recorded in the partition's routing log in Redis
//     (fenced) at the record it applies from before it is used, never with the
//     live table; a replay follows the log up to the high-water mark it found,
//     then adopts the live membership. Records routed to a target while it was
//     a member are delivered (or retried, or dead-lettered) even if it is
//     disabled or removed before they close: disabling applies to records that
//     arrive after it. Without routing state for a committed offset (Redis lost
//     data) it routes to every configured target, disabled ones included,
//     until that high-water mark: possible duplicates and deliveries to
//     integrations disabled meanwhile, never a lost record. A live change
//     waits while Redis does not take it. Records of a member no configured
//     integration has any more are skipped ("removed").
//   - Fencing: a worker claims its partition in Redis before reading; idle closes are
//     recorded only while the claim is ours, and a delivery checks the claim before
//     each upload (owner.go). Ownership is tri-state: another owner ends the worker
//     and its generation (the member rejoins, logged at error level); no owner key
//     means Redis lost data: the worker claims the partition again (refused only if
//     a newer generation claimed meanwhile), writes back what it holds of the
//     replay state (the snapshot of its committed offset, its idle closes and
//     acknowledged dead letters from there) and goes on.
//   - Nothing that waits (Redis, Kafka, a delivery, the dead-letter topic, the
//     spool's disk) holds a worker's lock; the committer takes it at every tick,
//     so one stuck partition never stops the commits of the others.
//   - When a generation ends (rebalance), workers stop at once and drop their open
//     buffers; uploads in flight are cancelled. A dead-letter write in flight
//     finishes, with its Redis note, on a context of its own (at most 10 s), so
//     the next owner does not send those records again. On a clean stop (Run's
//     context ends) workers stop fetching, wait up to Config.ShutdownTimeout for
//     closed buffers and dead letters, the committer commits a last time, and the
//     member leaves.
//   - Rejoining: when the coordinator is unreachable (a broker cut, a network
//     outage) kafka-go gives its member id up and joins again as a new member,
//     and the coordinator would hold the next rebalance until the old member's
//     session timed out (30 s by default). Run sends the LeaveGroup for the
//     abandoned id as soon as the coordinator answers, so after a 10-s cut
//     commits resume within seconds of the broker's return.
//   - Back-pressure: a worker does not fetch while the spool is over its disk
//     limit, while more than 256 of its closed buffers wait for the delivery, or
//     while 1,024 of its dead letters wait for the topic (its commits go on up to
//     the first unacknowledged one). When the spool is full of the partition's own
//     open buffers and nothing is in delivery, the worker closes its oldest window
//     early after idle_timeout (the watermark moves to the next window boundary,
//     not the wall clock; recorded like an idle close).
//   - Spool errors (a full disk): a failed append, or a closed buffer the delivery
//     cannot finish, restarts the worker in place (restart.go): it drops its open
//     buffers, lets the deliveries in flight finish (10 s, then cancels them),
//     waits until the spool's disk takes writes again (1 s doubling to 30 s;
//     logged once at error level, hitship_spool_errors_total{op},
//     hitship_paused_partitions, Status for /readyz) and starts again from its
//     committed offset with that offset's snapshot and the idle closes and dead
//     letters recorded from there — the replay a new owner would make, without a
//     rebalance. Nothing is lost; objects already written are written again under
//     the same keys with the same bytes.
//   - Log truncation: a committed or read offset past the log end (an unclean
//     leader election, a re-created topic) is logged at error level and counted
//     (hitship_log_truncations_total). Reading resumes at the first record written
//     at or after one minute before the newest record the worker read (or, at
//     start, before the newest event time of its snapshot less max_future_skew;
//     without either, at the log start); the replay state Redis holds at and after
//     that offset is dropped (state.DropFrom, fenced), the window state starts
//     empty there and is committed at once. Records delivered between the resume
//     offset and the truncation point may be delivered again; nothing written
//     after the truncation is skipped.
//
// # Redis outage
//
// Deliveries and commits go on while Redis is unreachable; what needs Redis waits:
//
//   - Snapshots: a snapshot Redis does not take is kept in memory (per partition,
//     the latest 4) and the commit proceeds without it. The consumer holds them,
//     not the generation's worker, so a rebalance during the outage does not drop
//     them (pending.go). They are written back, oldest first, at every commit
//     tick, every 250 ms while any are held, and before the member rejoins after
//     its generation ended (the group's next generation waits for that rejoin,
//     so the next owner starts after it); only then is the replay state below the
//     committed offset pruned (pruning never runs ahead of the snapshot of the
//     committed offset). A worker that starts at a committed offset without a
//     snapshot in Redis asks again for up to 3 s before it starts empty: the
//     previous owner, in another process, may be writing it back.
//   - The consequence: if the member dies before Redis took the snapshot (a crash
//     during the outage, or right after it), the next owner finds none at the
//     committed offset C and starts from an empty window state. Records at
//     offsets >= C of windows that were open at C (their earlier records, at
//     offsets < C, went out in an object already) are then written again in a new
//     object under a new key (its first offset is >= C): possible duplicates of
//     the windows open at C, never loss. Windows that opened after C are replayed
//     exactly. The exposure lasts from the commit to the write-back after Redis
//     answers, and needs the member to die in it.
//   - Idle closes need the fenced idle-close log in Redis before they happen (a
//     replay must close at the same place). While Redis is down none is taken: open
//     windows wait for records (record-driven closes go on) or for Redis. After an
//     attempt that provably did not run (state.IsNotExecuted: refused or failed
//     dial, pool time-out) the worker does not ask again for 5 s. After one whose
//     outcome is unknown (a time-out, a connection lost after sending) the close
//     is in doubt: Redis may hold it and a replay would apply it, so the worker
//     reads no further record until it has recorded the same close again
//     (idempotent) and applied it, waiting without its lock, with backoff,
//     logged once as degraded and counted by Status (idle.go).
//   - A worker already running keeps going. A worker starting during the outage
//     (a rebalance) waits for its claim, snapshot and idle-close log with backoff
//     from 100 ms to 5 s, logging once that its partition is not consumed until
//     Redis answers, until Redis answers or the generation or the member stops; it
//     does not fetch meanwhile (its partition does not commit), and Status counts it
//     (/readyz answers 503). A refused claim still ends the generation at once.
//   - Fencing checks before uploads treat a Redis error as "still ours" (a zombie's
//     upload is deterministic and harmless).
//
// Reading: each worker fetches its partition itself over a kafka-go Conn to the
// leader (fetch.go), batch by batch, in its own goroutine; kafka.Reader's
// goroutine and per-record channel hand-off cost more than the rest of the
// pipeline's routing and windowing (bench/README.md). It reads with isolation
// level ReadCommitted: nothing past the last stable offset, and neither the
// records of aborted transactions nor transaction markers are handed out.
// kafka-go's Conn does not filter them (it drops the fetch response's aborted
// transactions and the batches' producer ids), so the connection's bytes pass
// through a parser of the protocol's framing (txn.go) that keeps what the
// filter needs; with TLS the fetcher does the handshake itself, below it. A lost connection or a
// leader change reconnects and goes on at the offset after the last record
// handed out; an offset whose records retention deleted moves up to the
// partition's first offset with an error in the log.
//
// Memory per partition is bounded by the spool (package sink), one fetch
// (Config.MaxFetchBytes) and the connection's 256 KiB read-ahead buffer.
//
// The idle clock: a partition counts as quiet once its worker's ticker (every
// min(idle_timeout/4, 1 s)) sees no new record while the partition is caught up
// (its last record was at the high-water mark of its fetch) and its fetch loop is
// not held (back-pressure, Redis, the spool); an idle close happens idle_timeout
// after that, so up to one tick later than the last record plus idle_timeout. A
// pause or a backlog never counts as quiet: it would turn the rest of a backlog
// late.
package consumer
