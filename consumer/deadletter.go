package consumer

import (
	"context"
	"slices"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
)

type deadLetter struct {
	msg    kafka.Message
	offset int64
}

// maxUnackedDeadLetters bounds a partition's dead letters queued or being
// written: past it the fetch loop waits (without mu) until the dead-letter
// topic catches up. Back-pressure on that partition only; its commits go on
// up to its first unacknowledged dead letter, and other partitions' commits
// are not touched.
const maxUnackedDeadLetters = 1024

// deadLetterBatch is the most dead letters one produce request carries.
const deadLetterBatch = 256

// deadLetterWriteTimeout bounds a dead-letter write that has started: it
// finishes, with its Redis note, on a context detached from the generation, so
// that a rebalance during the write cannot leave records in the topic that no
// note names (the next owner would send them again). The generation's end
// (and so this member's rejoin) waits for it at most this long; it is well
// under the rebalance timeouts hitship runs with.
const deadLetterWriteTimeout = 10 * time.Second

// deadLetterQueue holds one partition's bad records on their way to the
// dead-letter topic. push never blocks: the worker calls it with mu held.
// Safe for concurrent use.
type deadLetterQueue struct {
	mu      sync.Mutex
	queued  []deadLetter
	unacked int // queued or being written
	wake    chan struct{}
	// acked are the offsets at or after the committed offset whose dead
	// letters the topic acknowledged (this worker's or an earlier owner's):
	// a restart does not send them again, a reclaim writes them back.
	acked map[int64]struct{}
}

func (q *deadLetterQueue) init() {
	if q.wake == nil {
		q.wake = make(chan struct{}, 1)
	}
}

// push queues d and wakes the writer.
func (q *deadLetterQueue) push(d deadLetter) {
	q.mu.Lock()
	q.init()
	q.queued = append(q.queued, d)
	q.unacked++
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// take moves up to n queued dead letters to the writer.
func (q *deadLetterQueue) take(n int) []deadLetter {
	q.mu.Lock()
	defer q.mu.Unlock()
	k := min(n, len(q.queued))
	out := slices.Clone(q.queued[:k])
	clear(q.queued[:k])
	q.queued = q.queued[k:]
	if len(q.queued) == 0 {
		q.queued = nil
	}
	return out
}

// done ends the accounting of n dead letters (acknowledged or given up).
func (q *deadLetterQueue) done(n int) {
	q.mu.Lock()
	q.unacked -= n
	q.mu.Unlock()
}

// drop forgets the queued dead letters (the writer stopped: their offsets
// stay held in the tracker) and returns how many there were.
func (q *deadLetterQueue) drop() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := len(q.queued)
	q.queued = nil
	q.unacked -= n
	return n
}

// over reports whether the fetch loop should wait for the writer.
func (q *deadLetterQueue) over() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.unacked >= maxUnackedDeadLetters
}

func (q *deadLetterQueue) resetAcked(offsets []int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.acked = make(map[int64]struct{}, len(offsets))
	for _, o := range offsets {
		q.acked[o] = struct{}{}
	}
}

func (q *deadLetterQueue) ack(offsets []int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.acked == nil {
		q.acked = map[int64]struct{}{}
	}
	for _, o := range offsets {
		q.acked[o] = struct{}{}
	}
}

// ackedFrom returns the acknowledged offsets >= from, in order.
func (q *deadLetterQueue) ackedFrom(from int64) []int64 {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []int64
	for o := range q.acked {
		if o >= from {
			out = append(out, o)
		}
	}
	slices.Sort(out)
	return out
}

// forgetBelow drops the acknowledged offsets below a committed offset.
func (q *deadLetterQueue) forgetBelow(committed int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for o := range q.acked {
		if o < committed {
			delete(q.acked, o)
		}
	}
}

// runDeadLetters writes queued bad records in batches until ctx ends. A batch
// whose write has started finishes on a context detached from ctx (bounded by
// deadLetterWriteTimeout), and so does its Redis note; it is retried only while
// ctx lives. What is queued when ctx ends stays held in the tracker.
func (w *worker) runDeadLetters(ctx context.Context) {
	w.dl.mu.Lock()
	w.dl.init()
	wake := w.dl.wake
	w.dl.mu.Unlock()
	defer func() { // what was not written stays held; only the accounting ends
		for range w.dl.drop() {
			w.inflight.Done()
		}
	}()
	for {
		batch := w.dl.take(deadLetterBatch)
		if len(batch) == 0 {
			select {
			case <-ctx.Done():
				return
			case <-wake:
			}
			continue
		}
		if !w.writeDeadLetters(ctx, batch) {
			w.dl.done(len(batch))
			for range batch {
				w.inflight.Done()
			}
			return
		}
	}
}

// writeDeadLetters writes one batch, notes it in Redis and releases its
// offsets. It reports false when it gave up (ctx ended before a write
// succeeded): the offsets stay held and the next owner sends them.
func (w *worker) writeDeadLetters(ctx context.Context, batch []deadLetter) bool {
	msgs := make([]kafka.Message, len(batch))
	for i, d := range batch {
		msgs[i] = d.msg
	}
	detached := context.WithoutCancel(ctx)
	for backoff, attempt := 100*time.Millisecond, 1; ; backoff, attempt = min(2*backoff, 10*time.Second), attempt+1 {
		wctx, cancel := context.WithTimeout(detached, deadLetterWriteTimeout)
		err := w.c.deps.DeadLetters.WriteMessages(wctx, msgs...)
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return false
		}
		if attempt == 1 {
			w.log.Warn("dead-letter write failed; the partition's offset is held until it succeeds, and fetching waits once 1,024 are unacknowledged", "records", len(msgs), "err", err)
		} else {
			w.log.Debug("dead-letter write failed again", "records", len(msgs), "attempt", attempt, "err", err)
		}
		if !sleep(ctx, backoff) {
			return false
		}
	}
	// Record the acknowledged offsets before releasing them: once released, a
	// commit may pass them, and a replay from an earlier commit must know.
	// Without Redis they are released anyway; a replay may send them again.
	offs := make([]int64, len(batch))
	for i, d := range batch {
		offs[i] = d.offset
	}
	nctx, cancel := context.WithTimeout(detached, stateTimeout)
	if err := w.st.NoteDeadLettered(nctx, w.topic, w.partition, offs); err != nil {
		w.log.Debug("dead letters not recorded in Redis; a replay may send them again", "err", err)
	}
	cancel()
	w.dl.ack(offs)
	for _, d := range batch {
		w.tr.release(d.offset)
	}
	w.dl.done(len(batch))
	for range batch {
		w.inflight.Done()
	}
	w.c.deps.Metrics.DeadLettered.Add(float64(len(batch)))
	return true
}
