package retry

import (
	"context"
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
	// Batch is the most entries claimed at once (default 16); Concurrency
	// how many of them are handled at once (default 4).
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
	// BeforeDeadLetter, when set, is called after the last attempt failed and
	// before the entry becomes a dead letter; it returns the object's new
	// parked key ("" keeps it), e.g. after moving it to the dead-letter
	// prefix and writing a system event. If it fails the entry stays leased
	// and is attempted again after its lease expires.
	BeforeDeadLetter func(ctx context.Context, c Claimed, reason string) (parkedKey string, err error)
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
// every goroutine it started has ended. Redis errors are logged and retried
// after Poll. On ctx cancellation, entries whose Handle failed are left
// leased (as if the process had crashed): their leases expire and another
// worker takes them; entries whose Handle succeeded are still completed.
// Run blocks; call it once per Worker.
func (w *Worker) Run(ctx context.Context) error {
	for {
		if ctx.Err() != nil {
			return nil
		}
		cs, err := w.cfg.Queue.Claim(ctx, w.cfg.Clock.Now(), w.cfg.Lease, w.cfg.Batch)
		if err != nil && ctx.Err() == nil {
			w.log.Warn("retry: claim failed", "err", err)
		}
		if len(cs) > 0 {
			w.handleBatch(ctx, cs)
		}
		if len(cs) < w.cfg.Batch || err != nil {
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

func (w *Worker) handleBatch(ctx context.Context, cs []Claimed) {
	var mu sync.Mutex
	pending := make(map[string]*held, len(cs))
	items := make([]*held, len(cs))
	for i, c := range cs {
		hctx, cancel := context.WithCancel(ctx)
		items[i] = &held{c: c, ctx: hctx, cancel: cancel}
		pending[c.ID] = items[i]
	}

	renewCtx, stopRenew := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { w.renew(renewCtx, &mu, pending) })

	sem := make(chan struct{}, w.cfg.Concurrency)
	var hw sync.WaitGroup
	for _, h := range items {
		sem <- struct{}{}
		hw.Go(func() {
			defer func() { <-sem }()
			w.handleOne(ctx, &mu, h)
			mu.Lock()
			delete(pending, h.c.ID)
			mu.Unlock()
			h.cancel()
		})
	}
	hw.Wait()
	stopRenew()
	wg.Wait()
}

// renew extends the leases of the pending entries every Lease/2; an entry
// whose lease was lost has its Handle cancelled.
func (w *Worker) renew(ctx context.Context, mu *sync.Mutex, pending map[string]*held) {
	for {
		if w.cfg.Clock.Sleep(ctx, w.cfg.Lease/2) != nil {
			return
		}
		mu.Lock()
		hs := make([]*held, 0, len(pending))
		for _, h := range pending {
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

func (w *Worker) handleOne(ctx context.Context, mu *sync.Mutex, h *held) {
	mu.Lock()
	c := h.c
	mu.Unlock()
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
	if w.cfg.OnOutcome != nil {
		w.cfg.OnOutcome(c, herr)
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	log := w.log.With("id", c.ID, "integration", c.Integration, "position", c.Position().String())
	var err error
	if herr == nil {
		err = w.cfg.Queue.Complete(fctx, c)
	} else if delay, next, ok := Next(c.Position()); ok {
		err = w.cfg.Queue.Reschedule(fctx, c, w.cfg.Clock.Now().Add(delay), next, herr.Error())
	} else {
		parked := ""
		if w.cfg.BeforeDeadLetter != nil {
			if parked, err = w.cfg.BeforeDeadLetter(fctx, c, herr.Error()); err != nil {
				log.Warn("retry: dead-letter hook failed; the entry is retried after its lease", "err", err)
				return
			}
		}
		err = w.cfg.Queue.DeadLetter(fctx, c, w.cfg.Clock.Now(), herr.Error(), parked)
	}
	switch {
	case err == nil:
	case IsLeaseLost(err):
		log.Warn("retry: lease lost before the outcome was recorded; another worker holds the entry")
	default:
		log.Warn("retry: recording the outcome failed; the entry is retried after its lease", "err", err)
	}
}
