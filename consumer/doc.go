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
// spooled buffer of every enabled integration of the record's tenant. A record whose
// tenant has no integration is done at once.
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
//     the same bytes. If Redis refuses the snapshot, the commit waits.
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
// Memory per partition is bounded by the spool (package sink) and by kafka-go's
// fetch (Config.MaxFetchBytes) and queue (1,000 messages) of the partition's reader.
//
// The idle clock: a partition counts as quiet once its worker's ticker (every
// min(idle_timeout/4, 1 s)) sees no new record; an idle close happens idle_timeout
// after that, so up to one tick later than the last record plus idle_timeout.
package consumer
