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
