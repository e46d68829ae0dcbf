// Package window is the pure per-partition window state machine of hitship:
// record timestamps, epoch-aligned tumbling windows, the watermark, on-time and
// late buffers, idle (wall-clock) advances, and the snapshots that make a replay
// from a committed offset reproduce the original run.
//
// It does no I/O, reads no clock and starts no goroutines: every time is passed
// in as int64 Unix milliseconds, so a 10-minute window is tested in microseconds.
//
// # Model
//
// A window is [start, start+Size) with start = floor(ts/Size)*Size (see [Start]),
// aligned to the Unix epoch, correct for negative timestamps. Per partition:
//
//   - maxTs is the greatest timestamp seen; the watermark W = max(W, maxTs-Grace).
//     W starts at math.MinInt64 ("no watermark") and never moves back.
//   - A [Buffer] collects the records of one (target, window). A record whose
//     window end is > W is on time and goes to the on-time buffer of its window,
//     which closes when W reaches the window end (CloseAt = end). A record whose
//     window end is <= W is late: it goes to the late buffer of its window, which
//     closes at the first window boundary strictly greater than W at the late
//     buffer's creation ([Config.LateCloseAt]). Late data is batched, never dropped.
//   - At most one open on-time and one open late buffer exist per
//     (target, window); a [Key] names one of them. A target is one destination
//     of one tenant (the consumer's target ID), never shared by two.
//   - A buffer closes when CloseAt <= W. Only floor(W/Size) influences assignment
//     and closing, so an idle advance ([Partition.IdleBoundary],
//     [Partition.ApplyIdle]) moves W to a window boundary exactly.
//
// # Calling sequence
//
// For every record at offset N, in increasing offset order:
//
//  1. ApplyIdle(N, b) for every idle advance recorded at (or taken before) N;
//  2. Mark(N) if the record is dead-lettered (it may then skip steps 3 and 4);
//  3. Advance(N, ts), then hand the returned closed buffers to delivery;
//  4. Assign(N, ts, target) for every target the record is routed to.
//
// Offsets need not be contiguous (compaction, transaction markers) but must
// increase; a call that breaks the sequence voids the snapshot guarantees.
//
// # Guarantees
//
//   - Determinism: the buffers returned by Advance and Assign, their keys, first
//     offsets, CloseAt and the order in which they close are a pure function of
//     the configuration, the (offset, timestamp, targets) sequence and the
//     idle advances (nextOffset, boundary). Closed buffers are returned sorted by
//     (CloseAt, Target, Start, Late, FirstOffset).
//   - Replay: [Partition.Snapshot] at a committed offset C, serialised (JSON) and
//     given to [Restore], followed by the records >= C and the idle advances
//     recorded at offsets >= C, reproduces every buffer of the original run whose
//     first offset is >= C with the same key, first offset and records, closing at
//     the same place. Records that went to buffers with a first offset < C (already
//     delivered, because C was committable) land in "ghost" buffers
//     ([Buffer.Ghost]) that the caller must discard; ghosts close exactly like the
//     originals did. This holds for the settings the snapshot was taken with
//     (size, grace, max future skew, timestamp mode; a snapshot names them):
//     under others the ghosts could swallow records the original run put into
//     other buffers, so Restore refuses such a snapshot, and one that names no
//     settings (written before they were recorded), with ErrBadSnapshot. The
//     caller then starts from an empty state: records of the windows open at C
//     may be written again, none is lost.
//   - Memory: open buffers, plus the metadata of closed buffers and dead-letter
//     marks not yet passed by [Partition.Forget].
//   - Hot path: Advance and Assign do not allocate when the buffer already exists
//     and nothing closes; creating or closing a buffer may allocate.
//
// Timestamps outside [MinTimestamp, MaxTimestamp] (about ±285,000 years) are
// clamped into it by the Partition methods, so no arithmetic overflows.
//
// # Concurrency
//
// A [Partition] is not safe for concurrent use: it belongs to the one worker of
// its Kafka partition. Nothing in the package blocks. [Config] and [Snapshot] are
// plain values.
package window
