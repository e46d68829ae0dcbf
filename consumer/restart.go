package consumer

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"hitship/state"
)

// Spool operations, the op label of hitship_spool_errors_total.
const (
	opAppend = "append"
	opFinish = "finish"
)

// SpoolOps are the values of the op label of hitship_spool_errors_total.
var SpoolOps = []string{opAppend, opFinish}

// spoolError is a spool failure (a full disk): the worker restarts locally.
type spoolError struct {
	op  string
	err error
}

func (e *spoolError) Error() string { return e.err.Error() }
func (e *spoolError) Unwrap() error { return e.err }

func spoolFailure(op string, err error) error { return &spoolError{op: op, err: err} }

// restartError ends one life of a worker (fetch loop, ticker, dead-letter
// writer) so that run starts it again from an earlier offset: after a spool
// error, from the committed offset; after a log truncation, from where the
// records it has not read begin.
type restartError struct {
	spool     *spoolError
	truncated *truncatedError
}

func (e *restartError) Error() string {
	if e.spool != nil {
		return "restart after a spool error: " + e.spool.Error()
	}
	return "restart after a log truncation: " + e.truncated.Error()
}

// spoolTrouble is one worker's state of spool errors. Safe for concurrent use.
type spoolTrouble struct {
	mu      sync.Mutex
	failed  *spoolError   // a Finish failure reported by a delivery, not acted on yet
	backoff time.Duration // before the next restart; reset by a commit past restartAt
	// restartAt is the offset of the last restart (-2: none).
	restartAt int64
}

// spoolFailed notes a spool failure of a delivery (Finish) for the fetch loop,
// which restarts the worker, and counts it. Safe for concurrent use.
func (w *worker) spoolFailed(op string, err error) {
	w.c.deps.Metrics.SpoolErrors.WithLabelValues(op).Inc()
	w.spool.fail(op, err)
	w.mu.Lock()
	stop := w.stopFetch
	w.mu.Unlock()
	if stop != nil {
		stop(errSpoolRestart) // wake a fetch loop waiting for records
	}
}

var errSpoolRestart = errors.New("spool error: restarting the partition")

func (s *spoolTrouble) fail(op string, err error) {
	s.mu.Lock()
	if s.failed == nil {
		s.failed = &spoolError{op: op, err: err}
	}
	s.mu.Unlock()
}

func (s *spoolTrouble) take() *spoolError {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.failed
	s.failed = nil
	return f
}

// Restart backoff after a spool error: 1 s doubling to 30 s.
const (
	spoolBackoffMin = time.Second
	spoolBackoffMax = 30 * time.Second
	// spoolCheckBytes is what Spool.Check writes before a restart.
	spoolCheckBytes = 256 << 10
	// restartGrace is how long a restart lets the deliveries in flight finish
	// before it cancels them (their objects are replayed under the same keys).
	restartGrace = 10 * time.Second
)

// spoolRestart waits, after a spool error, until the spool's disk takes writes
// again (Spool.Check) with backoff from 1 s to 30 s: the partition does not
// fetch meanwhile, /readyz says why (Consumer.Status), and the episode is
// logged once at error level. It reports false when ctx ended first.
func (w *worker) spoolRestart(ctx context.Context, se *spoolError) bool {
	w.spool.mu.Lock()
	backoff := max(w.spool.backoff, spoolBackoffMin)
	w.spool.backoff = min(2*backoff, spoolBackoffMax)
	w.spool.mu.Unlock()
	w.c.setSpoolTrouble(w.partition, se)
	defer w.c.setSpoolTrouble(w.partition, nil)
	w.c.deps.Metrics.PausedPartitions.Inc()
	defer w.c.deps.Metrics.PausedPartitions.Dec()
	w.mu.Lock()
	at := w.committed
	w.mu.Unlock()
	w.log.Error("spool error (disk full?): the partition stops fetching, drops its open buffers and starts again from its committed offset once the spool takes writes; nothing is lost, the offset stays held",
		"op", se.op, "restart_from", at, "retry_in", backoff, "err", se.err)
	for {
		if !sleep(ctx, backoff) {
			return false
		}
		err := w.c.deps.Spool.Check(spoolCheckBytes)
		if err == nil {
			break
		}
		backoff = min(2*backoff, spoolBackoffMax)
		w.log.Debug("the spool still refuses writes", "retry_in", backoff, "err", err)
	}
	w.log.Info("the spool takes writes again: the partition starts again from its committed offset", "offset", at)
	return true
}

// quiesce ends what is left of a life before a restart: the open buffers are
// dropped and the deliveries in flight get restartGrace to finish before the
// life's context (cancel) ends them; it returns once every one reported back,
// so that no delivery of the old state touches the new tracker.
func (w *worker) quiesce(cancel context.CancelFunc) {
	w.dropOpen()
	done := make(chan struct{})
	go func() { w.inflight.Wait(); close(done) }()
	t := time.NewTimer(restartGrace)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		w.log.Warn("deliveries still in flight after the restart grace: cancelled, their objects are written again after the restart", "grace", restartGrace)
		cancel()
		<-done
	}
	cancel()
}

// restartState resets the worker at its committed offset from what it holds
// in memory (restart after a spool error): the snapshot saved for that offset,
// the idle closes and the acknowledged dead letters at and after it — the
// state a new owner would load from Redis, so the replay is the same.
func (w *worker) restartState() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	at := w.committed
	from := max(at, 0)
	idle := slices.DeleteFunc(slices.Clone(w.taken), func(c state.IdleClose) bool { return c.NextOffset < from })
	dead := w.dl.ackedFrom(from)
	snap := w.lastSnap
	plan := w.replanAt(at, w.next)                 // the routing this worker recorded from there on
	_ = w.begin(at, snap, idle, dead, plan, false) // a snapshot this worker restored or saved restores again
	w.spool.take()                                 // failures of the deliveries the restart waited for
	w.spool.mu.Lock()
	w.spool.restartAt = at
	w.spool.mu.Unlock()
	return at
}

// runLives runs the worker from offset, life after life: a life that ends with
// a restartError is followed by a restart (after the spool takes writes again,
// or at once after a log truncation); anything else ends the run.
func (w *worker) runLives(ctx, wctx context.Context, offset int64) error {
	for {
		err := w.life(ctx, wctx, offset)
		var rs *restartError
		if !errors.As(err, &rs) {
			return err
		}
		// An idle close in doubt must be settled first: the restart replays
		// from the committed offset and must know whether it happened.
		if !w.settleIdle(wctx) {
			return nil
		}
		switch {
		case rs.spool != nil:
			sctx, cancel := context.WithCancel(wctx)
			unhook := context.AfterFunc(ctx, cancel) // a shutdown ends the wait too
			ok := w.spoolRestart(sctx, rs.spool)
			unhook()
			cancel()
			if !ok {
				return nil
			}
			offset = w.restartState()
		case rs.truncated != nil:
			var terr error
			if offset, terr = w.truncate(wctx, rs.truncated); terr != nil {
				if wctx.Err() != nil {
					return nil
				}
				return terr
			}
		default:
			return fmt.Errorf("restart without a cause: %w", err)
		}
	}
}
