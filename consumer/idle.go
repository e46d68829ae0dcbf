package consumer

import (
	"context"
	"fmt"
	"math"
	"time"

	"hitship/state"
	"hitship/window"
)

// idleRetry is how long the idle clock waits after Redis, provably, did not
// record a close (state.IsNotExecuted).
const idleRetry = 5 * time.Second

// The idle clock and idle closes.
//
// A partition counts as quiet only while it is caught up — its last record
// was at the high-water mark of its fetch, so nothing is left to read — and
// its fetch loop is not held (back-pressure, Redis): a pause during a
// catch-up must not turn the rest of the backlog late. After idle_timeout of
// quiet the ticker decides an idle close (NextOffset = the read position) and
// records it in Redis, fenced, before any buffer closes; it does so without
// mu, and the fetch loop processes no record while a close is pending
// (settleIdle), so the close still happens just before the record at
// NextOffset, where a replay applies it.
//
// When the record's outcome is unknown (a time-out or a connection lost after
// the script was sent: state.IsNotExecuted is false), the close is in doubt:
// Redis may hold it, and a replay would apply it. The worker then processes
// no record until it has recorded the same close again (idempotent) and
// applied it, or learned that it is fenced. Meanwhile the fetch loop waits
// without mu (commits go on), with backoff, logged once as degraded and
// counted in Consumer.Status. A close that provably was not recorded is
// dropped as before: buffers wait for records or Redis, and the ticker asks
// again after idleRetry.

// idleTick decides an idle close when the partition has been quiet for the idle
// timeout and reports whether the caller should try to record the pending one
// now (recordPending, without mu). Called with mu held.
func (w *worker) idleTick() bool {
	now := w.c.now()
	if w.idlePending != nil {
		return w.idleDoubt && !time.Now().Before(w.doubtRetryAt)
	}
	if len(w.idle) > 0 || w.next < 0 || w.fatal != nil {
		return false // still replaying recorded closes, or nothing read yet
	}
	if w.held && w.pressureClose(now) {
		return true
	}
	if w.received != w.seen || w.held || !w.caughtUp {
		// A record came, the fetch loop is held, or there is more to read: the
		// partition is not quiet; the clock starts again.
		w.seen, w.quietFrom = w.received, now
		return false
	}
	if now.Sub(w.quietFrom) < w.c.cfg.IdleTimeout {
		return false
	}
	b, ok := w.part.IdleBoundary(now.UnixMilli())
	if !ok || now.Before(w.idleRetryAt) {
		return false
	}
	w.idlePending = &state.IdleClose{NextOffset: w.next, Boundary: b}
	return true
}

// pressureClose decides an early close of the oldest open window when the
// fetch loop has been held for the idle timeout by a spool over its disk limit
// while this partition has nothing in delivery: its own open buffers fill the
// disk, and no delivery will free it. The watermark moves to the next window
// boundary, not to the wall clock (a pause during a catch-up must not make the
// rest of the backlog late), and the close is recorded like an idle close, so
// a replay closes there too. Called with mu held.
func (w *worker) pressureClose(now time.Time) bool {
	if w.spoolHeldSince.IsZero() || now.Sub(w.spoolHeldSince) < w.c.cfg.IdleTimeout ||
		w.undelivered.Load() > 0 || len(w.open) == 0 || len(w.idle) > 0 || w.next < 0 || now.Before(w.idleRetryAt) {
		return false
	}
	wm := w.part.Watermark()
	if wm == math.MinInt64 {
		return false
	}
	b := window.Start(wm, w.c.cfg.Window.Size) + w.c.cfg.Window.Size
	w.idlePending = &state.IdleClose{NextOffset: w.next, Boundary: b}
	w.spoolHeldSince = now // the next one after another idle timeout
	w.log.Info("spool over its disk limit with only open buffers of this partition: closing its oldest window early (recorded like an idle close)", "boundary", b, "next_offset", w.next)
	return true
}

// recordPending records the pending idle close in Redis and, once recorded,
// applies it. It reports whether nothing is pending any more (recorded and
// applied, fenced, or provably not recorded). Call it without mu.
func (w *worker) recordPending(ctx context.Context) bool {
	w.idleMu.Lock()
	defer w.idleMu.Unlock()
	w.mu.Lock()
	p, doubt := w.idlePending, w.idleDoubt
	w.mu.Unlock()
	if p == nil {
		return true
	}
	c := *p
	rctx, cancel := context.WithTimeout(ctx, stateTimeout)
	reclaimed, err := w.st.RecordIdleCloseClaim(rctx, w.topic, w.partition, w.owner, c)
	cancel()

	w.mu.Lock()
	now := w.c.now()
	switch {
	case err == nil:
		w.idlePending = nil
		w.endDoubt(doubt)
		w.c.deps.Metrics.IdleCloses.Inc()
		w.taken = append(w.taken, c)
		w.closeAll(w.part.ApplyIdle(c.NextOffset, c.Boundary))
		w.mu.Unlock()
		if doubt {
			w.log.Info("idle close confirmed by Redis and applied; the partition goes on", "next_offset", c.NextOffset)
		}
		if reclaimed {
			w.log.Warn("Redis lost this partition's owner key (data loss): the idle close claimed it again; writing back the replay state this worker holds")
			rctx, cancel := context.WithTimeout(ctx, 3*stateTimeout)
			w.restoreAfterLoss(rctx)
			cancel()
		}
		return true
	case state.IsFenced(err):
		w.idlePending = nil
		w.endDoubt(doubt)
		w.mu.Unlock()
		w.stopFenced(fmt.Errorf("idle close refused, another member owns partition %d: %w", w.partition, err))
		return true
	case !doubt && state.IsNotExecuted(err):
		// An idle close must be in the fenced log before it happens, or a replay
		// could not close at the same place: without Redis the windows wait for
		// records (which close them as usual) or for Redis.
		w.idlePending = nil
		w.idleRetryAt = now.Add(idleRetry)
		w.mu.Unlock()
		w.log.Warn("degraded: cannot record the idle close, buffers stay open until a record or Redis comes", "retry_in", idleRetry, "err", err)
		return true
	case ctx.Err() != nil:
		// The worker is stopping: the close stays pending (no record follows it
		// here); the next owner applies it if Redis holds it.
		w.mu.Unlock()
		return false
	default:
		if !doubt {
			w.idleDoubt = true
			w.doubtBackoff = 100 * time.Millisecond
			w.c.inDoubt.Add(1)
			w.c.noteRedisError(err)
			w.log.Warn("degraded: Redis may have recorded the idle close without answering: the partition reads no further until Redis confirms it (commits go on)",
				"next_offset", c.NextOffset, "boundary", c.Boundary, "err", err)
		} else {
			w.doubtBackoff = min(2*w.doubtBackoff, 5*time.Second)
		}
		w.doubtRetryAt = time.Now().Add(w.doubtBackoff) // a backoff: the real clock
		w.mu.Unlock()
		return false
	}
}

// endDoubt clears the in-doubt state. Called with mu held.
func (w *worker) endDoubt(doubt bool) {
	if doubt {
		w.idleDoubt = false
		w.c.inDoubt.Add(-1)
	}
}

// settleIdle returns once no idle close is pending, recording it itself while it
// is in doubt (with backoff), without mu. It reports false when ctx ended
// first. The fetch loop calls it before each record.
func (w *worker) settleIdle(ctx context.Context) bool {
	for {
		w.mu.Lock()
		pending := w.idlePending != nil
		wait := time.Duration(0)
		if pending && w.idleDoubt {
			wait = time.Until(w.doubtRetryAt)
		}
		w.mu.Unlock()
		if !pending {
			return true
		}
		if wait > 0 {
			w.setHeld(true)
			if !sleep(ctx, min(wait, 5*time.Second)) {
				return false
			}
		}
		if ctx.Err() != nil {
			return false
		}
		if !w.recordPending(ctx) {
			w.setHeld(true)
		}
	}
}

// setHeld tells the idle clock that the fetch loop is (not) held.
func (w *worker) setHeld(on bool) {
	w.mu.Lock()
	w.held = on
	w.mu.Unlock()
}

// runTicker drives the idle clock until ctx ends.
func (w *worker) runTicker(ctx context.Context) {
	every := min(w.c.cfg.IdleTimeout/4, time.Second)
	t := time.NewTicker(max(every, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.mu.Lock()
			try := w.idleTick()
			w.mu.Unlock()
			if try {
				w.recordPending(ctx)
			}
		}
	}
}
