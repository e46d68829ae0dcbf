package retry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// WorkerConfig configures a Worker.
type WorkerConfig struct {
	Queue *Queue
	// Handle makes the attempt at c.Position(): copy the parked object to
	// the customer. nil error means delivered. It must return promptly when
	// ctx is done (the worker is stopping or the lease was lost).
	Handle func(ctx context.Context, c Claimed) error
	// Lease is how long a claim is held without renewal (default 30s). The
	// worker renews it every Lease/2 while Handle runs.
	Lease time.Duration
	// Poll is the wait between claims when nothing is due (default 1s).
	Poll time.Duration
	// Concurrency is how many entries are handled at once (default 4), each
	// independently; Batch caps how many one claim takes (default 16).
	Batch       int
	Concurrency int
	// Clock is the time source (default RealClock).
	Clock Clock
	// Logger receives errors the loop handles itself (default: discarded).
	Logger *slog.Logger
	// OnOutcome, when set, is called after every attempt with its error (nil:
	// delivered): the hook for the health ledger and metrics. It must not
	// block for long.
	OnOutcome func(c Claimed, err error)
	// AfterComplete, when set, is called after a delivered entry was
	// completed (removed from the queue): delete the parked copy. The entry
	// is gone first, so a crash in between leaves a parked copy without an
	// entry (a scanner re-enqueues it once DoneTTL has passed: one more
	// upload of the same object), never an entry without its object. It is
	// called again on an error until HookTimeout; a last error is logged.
	AfterComplete func(ctx context.Context, c Claimed) error
	// BeforeDeadLetter, when set, is called after the entry was marked dying
	// (Queue.MarkDying) and before it becomes a dead letter: keep a copy of
	// the object under the dead-letter prefix (without deleting the parked
	// copy) and write a system event. It returns the dead letter's key ("" keeps
	// ParkedKey). It must be idempotent: when it fails, or the holder dies, the
	// entry stays leased and dying, and the next holder calls it again.
	BeforeDeadLetter func(ctx context.Context, c Claimed, reason string) (deadKey string, err error)
	// AfterDeadLetter, when set, is called once the dead letter is recorded:
	// delete the parked copy (when deadKey differs from c.ParkedKey). Only
	// now is it safe: every earlier crash point leaves the parked copy in
	// place. Its error is logged (the copy stays, harmlessly).
	AfterDeadLetter func(ctx context.Context, c Claimed, deadKey string) error
	// HookTimeout bounds each of AfterComplete, BeforeDeadLetter and
	// AfterDeadLetter (default 5s). Redis calls have their own 5-s bound.
	HookTimeout time.Duration
	// Hold, when set, is asked before each attempt; when it answers true the
	// entry is postponed by wait without an attempt (no outcome, position
	// unchanged): a disabled integration's parked entries stay parked.
	Hold func(c Claimed) (wait time.Duration, hold bool)
}

// Worker claims due entries from a Queue and handles them. Every replica
// runs one (or more); they coordinate only through the queue's leases.
type Worker struct {
	cfg WorkerConfig
	log *slog.Logger
}

// NewWorker validates cfg, fills defaults and returns the worker.
func NewWorker(cfg WorkerConfig) (*Worker, error) {
	if cfg.Queue == nil || cfg.Handle == nil {
		return nil, fmt.Errorf("retry: worker needs a Queue and a Handle: %w", ErrInvalid)
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 30 * time.Second
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 16
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.Clock == nil {
		cfg.Clock = RealClock{}
	}
	if cfg.HookTimeout <= 0 {
		cfg.HookTimeout = finishTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Worker{cfg: cfg, log: log}, nil
}

// finishTimeout bounds the Redis call that records an outcome after the
// worker's context ended.
const finishTimeout = 5 * time.Second

// Run claims and handles entries until ctx is done, then returns nil once
// every goroutine it started has ended. Entries are independent: each runs in
// a goroutine of its own, and the worker claims again as soon as a slot is
// free (at most Concurrency entries in flight, at most Batch per claim), so an
// entry whose upload hangs holds one slot, never the others. Redis errors are
// logged and retried after Poll. On ctx cancellation, entries whose Handle
// failed are left leased (as if the process had crashed): their leases expire
// and another worker takes them; entries whose Handle succeeded are still
// completed. Run blocks; call it once per Worker.
func (w *Worker) Run(ctx context.Context) error {
	var (
		mu       sync.Mutex
		pending  = map[*held]struct{}{}
		inflight int
		wg       sync.WaitGroup
	)
	freed := make(chan struct{}, 1)
	defer wg.Wait()
	wg.Go(func() { w.renew(ctx, &mu, pending) })
	for {
		if ctx.Err() != nil {
			return nil
		}
		mu.Lock()
		free := w.cfg.Concurrency - inflight
		mu.Unlock()
		if free <= 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-freed:
			}
			continue
		}
		want := min(free, w.cfg.Batch)
		cs, err := w.cfg.Queue.Claim(ctx, w.cfg.Clock.Now(), w.cfg.Lease, want)
		if err != nil && ctx.Err() == nil {
			w.log.Warn("retry: claim failed", "err", err)
		}
		for _, c := range cs {
			hctx, cancel := context.WithCancel(ctx)
			h := &held{c: c, ctx: hctx, cancel: cancel}
			mu.Lock()
			pending[h] = struct{}{}
			inflight++
			mu.Unlock()
			wg.Go(func() {
				w.handleOne(ctx, &mu, h)
				mu.Lock()
				delete(pending, h)
				inflight--
				mu.Unlock()
				h.cancel()
				select {
				case freed <- struct{}{}:
				default:
				}
			})
		}
		if len(cs) < want || err != nil {
			if w.cfg.Clock.Sleep(ctx, w.cfg.Poll) != nil {
				return nil
			}
		}
	}
}

// held is one claimed entry in flight.
type held struct {
	c      Claimed
	cancel context.CancelFunc
	ctx    context.Context
}

// renew extends the leases of the pending entries every Lease/2; an entry
// whose lease was lost has its Handle cancelled.
func (w *Worker) renew(ctx context.Context, mu *sync.Mutex, pending map[*held]struct{}) {
	for {
		if w.cfg.Clock.Sleep(ctx, w.cfg.Lease/2) != nil {
			return
		}
		mu.Lock()
		hs := make([]*held, 0, len(pending))
		for h := range pending {
			hs = append(hs, h)
		}
		mu.Unlock()
		for _, h := range hs {
			mu.Lock()
			c := h.c
			mu.Unlock()
			err := w.cfg.Queue.Extend(ctx, &c, w.cfg.Clock.Now(), w.cfg.Lease)
			switch {
			case err == nil:
				mu.Lock()
				h.c.LeaseUntil = c.LeaseUntil
				mu.Unlock()
			case IsLeaseLost(err):
				w.log.Warn("retry: lease lost while handling; dropping the entry", "id", c.ID)
				h.cancel()
			case ctx.Err() == nil:
				w.log.Warn("retry: lease renewal failed", "id", c.ID, "err", err)
			}
		}
	}
}

// DeadLetterError is returned by a Handle that found the entry cannot be
// attempted at all (e.g. its parked object is missing): the worker
// dead-letters it at once with Reason, without an outcome (it says nothing
// about the customer's bucket).
type DeadLetterError struct {
	Reason string
}

func (e *DeadLetterError) Error() string { return "retry: dead-letter now: " + e.Reason }

// DeadLetterNow returns a *DeadLetterError with reason.
func DeadLetterNow(reason string) error { return &DeadLetterError{Reason: reason} }

func (w *Worker) handleOne(ctx context.Context, mu *sync.Mutex, h *held) {
	mu.Lock()
	c := h.c
	mu.Unlock()
	log := w.log.With("id", c.ID, "integration", c.Integration, "position", c.Position().String())
	if c.Dying {
		// A holder died or lost its lease while dead-lettering: finish it.
		log.Warn("retry: finishing an interrupted dead-lettering", "reason", c.DeadReason)
		w.deadLetter(ctx, h, c, c.DeadReason, log)
		return
	}
	if w.cfg.Hold != nil {
		if wait, hold := w.cfg.Hold(c); hold {
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
			defer cancel()
			if err := w.cfg.Queue.Postpone(fctx, c, w.cfg.Clock.Now().Add(wait)); err != nil && !IsLeaseLost(err) {
				w.log.Warn("retry: postponing a held entry failed; it is seen again after its lease", "id", c.ID, "err", err)
			}
			return
		}
	}
	herr := w.cfg.Handle(h.ctx, c)
	if herr != nil && h.ctx.Err() != nil {
		// Stopping, or the lease was lost: not an outcome of the customer's
		// bucket. Leave the lease to expire.
		return
	}
	if dl, ok := errors.AsType[*DeadLetterError](herr); ok {
		w.deadLetter(ctx, h, c, dl.Reason, log)
		return
	}
	if w.cfg.OnOutcome != nil {
		w.cfg.OnOutcome(c, herr)
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	var err error
	if herr == nil {
		err = w.cfg.Queue.Complete(fctx, c)
		if err == nil && w.cfg.AfterComplete != nil {
			hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.HookTimeout)
			if aerr := w.retryHook(hctx, func(ctx context.Context) error { return w.cfg.AfterComplete(ctx, c) }); aerr != nil {
				log.Warn("retry: cleaning up after a delivery failed; the parked copy stays until a scan finds it (after DoneTTL)", "err", aerr)
			}
			cancel()
		}
	} else if delay, next, ok := Next(c.Position()); ok {
		err = w.cfg.Queue.Reschedule(fctx, c, w.cfg.Clock.Now().Add(delay), next, herr.Error())
	} else {
		w.deadLetter(ctx, h, c, herr.Error(), log)
		return
	}
	w.logFinish(log, err)
}

func (w *Worker) logFinish(log *slog.Logger, err error) {
	switch {
	case err == nil:
	case IsLeaseLost(err):
		log.Warn("retry: lease lost before the outcome was recorded; another worker holds the entry")
	default:
		log.Warn("retry: recording the outcome failed; the entry is retried after its lease", "err", err)
	}
}

// deadLetter makes c a dead letter, in an order where every crash point
// costs at most a repetition: mark the entry dying, keep the object under
// the dead-letter prefix and write the event (BeforeDeadLetter), record the
// dead letter, and only then delete the parked copy (AfterDeadLetter). A
// failure leaves the entry leased and dying; the next holder resumes here.
func (w *Worker) deadLetter(ctx context.Context, h *held, c Claimed, reason string, log *slog.Logger) {
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	if !c.Dying {
		if err := w.cfg.Queue.MarkDying(fctx, &c, reason); err != nil {
			w.logFinish(log, err)
			return
		}
	}
	dead := ""
	if w.cfg.BeforeDeadLetter != nil {
		hctx, cancel := context.WithTimeout(h.ctx, w.cfg.HookTimeout)
		var err error
		dead, err = w.cfg.BeforeDeadLetter(hctx, c, reason)
		cancel()
		if err != nil {
			log.Warn("retry: dead-letter hook failed; the entry stays dying and is finished after its lease", "err", err)
			return
		}
	}
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer rcancel()
	if err := w.cfg.Queue.DeadLetter(rctx, c, w.cfg.Clock.Now(), reason, dead); err != nil {
		w.logFinish(log, err)
		return
	}
	if w.cfg.AfterDeadLetter != nil {
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), w.cfg.HookTimeout)
		defer cancel()
		if err := w.retryHook(hctx, func(ctx context.Context) error { return w.cfg.AfterDeadLetter(ctx, c, dead) }); err != nil {
			log.Warn("retry: removing the parked copy of a dead letter failed; it stays in the parking bucket", "err", err)
		}
	}
}

// retryHook calls fn until it succeeds or ctx ends (the hook timeout), with a
// backoff from 100 ms on the worker's clock: a clean-up is one request (a
// delete in the parking bucket) that a passing S3 error must not turn into a
// leftover. A parked copy left after a completed delivery is ignored by scans
// for DoneTTL and then sent once more; retried here, it rarely is left at all.
func (w *Worker) retryHook(ctx context.Context, fn func(context.Context) error) error {
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, time.Second) {
		err := fn(ctx)
		if err == nil || ctx.Err() != nil || w.cfg.Clock.Sleep(ctx, backoff) != nil {
			return err
		}
	}
}
