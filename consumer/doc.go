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
//     recorded only while the claim is ours (a refused worker ends the generation),
//     and a delivery checks the claim before each upload.
//   - When a generation ends (rebalance), workers stop at once and drop their open
//     buffers; uploads in flight are cancelled. On a clean stop (Run's context ends)
//     workers stop fetching, wait up to Config.ShutdownTimeout for closed buffers and
//     dead letters, the committer commits a last time, and the member leaves.
//   - Back-pressure: while the spool is over its disk limit, workers do not fetch;
//     idle closes still close buffers, so deliveries free space.
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
//     windows wait for records (record-driven closes go on) or for Redis. After a
//     failed attempt the worker does not ask again for 5 s.
//   - A worker already running keeps going. A worker starting during the outage
//     (a rebalance) waits for its claim, snapshot and idle-close log with backoff
//     from 100 ms to 5 s, logging "degraded", until Redis answers or the generation
//     or the member stops; it does not fetch meanwhile (its partition does not
//     commit). A refused claim still ends the generation at once.
//   - Fencing checks before uploads treat a Redis error as "still ours" (a zombie's
//     upload is deterministic and harmless).
//
// Reading: each worker fetches its partition itself over a kafka-go Conn to the
// leader (fetch.go), batch by batch, in its own goroutine; kafka.Reader's
// goroutine and per-record channel hand-off cost more than the rest of the
// pipeline's routing and windowing (bench/README.md). A lost connection or a
// leader change reconnects and goes on at the offset after the last record
// handed out; an offset whose records retention deleted moves up to the
// partition's first offset with an error in the log.
//
// Memory per partition is bounded by the spool (package sink), one fetch
// (Config.MaxFetchBytes) and the connection's 256 KiB read-ahead buffer.
//
// The idle clock: a partition counts as quiet once its worker's ticker (every
// min(idle_timeout/4, 1 s)) sees no new record; an idle close happens idle_timeout
// after that, so up to one tick later than the last record plus idle_timeout.
package consumer
