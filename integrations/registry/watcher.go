package registry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
)

// DefaultInterval is how often a Watcher polls Redis and reconciles it with
// the durable copy.
const DefaultInterval = 2 * time.Second

// WatcherConfig configures a Watcher.
type WatcherConfig struct {
	// Interval between polls (default DefaultInterval).
	Interval time.Duration
	// OnChange, if set, is called from the polling goroutine with the new
	// Status of every integration whose state differs from the previous
	// snapshot (the first snapshot is compared with "all enabled"). It must
	// not block for long.
	OnChange func(Status)
	// OnReconcile, if set, is called from the polling goroutine after every
	// reconciliation that changed something (for metrics).
	OnReconcile func(Reconciled)
	// Logger receives poll failures and recoveries; nil discards them.
	Logger *slog.Logger
}

// snapshot is immutable once published.
type snapshot struct {
	states map[string]Status // only integrations that are not enabled
}

// Watcher keeps a local, atomically replaced copy of the integration states
// so that the per-record path never waits for Redis or Kafka, and reconciles
// Redis with the durable copy. Disabled, Status, Snapshot, Degraded and Poke
// are safe for concurrent use; Run and Refresh are called by one goroutine
// at a time.
type Watcher struct {
	store    *Store
	cfg      WatcherConfig
	logger   *slog.Logger
	snap     atomic.Pointer[snapshot]
	degraded atomic.Bool
	poke     chan struct{}

	lastRedis map[string]string // Redis's entries at the last successful poll
	failingDC bool              // the last reconciliation could not write the durable copy
}

// NewWatcher returns a Watcher over store. It starts with "all enabled" and
// degraded until the first successful Refresh (or the first poll of Run).
func NewWatcher(store *Store, cfg WatcherConfig) (*Watcher, error) {
	if store == nil {
		return nil, fmt.Errorf("registry: nil store: %w", ErrInvalid)
	}
	if cfg.Interval < 0 {
		return nil, fmt.Errorf("registry: negative interval: %w", ErrInvalid)
	}
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	w := &Watcher{store: store, cfg: cfg, logger: logger, poke: make(chan struct{}, 1)}
	w.snap.Store(&snapshot{states: map[string]Status{}})
	w.degraded.Store(true)
	return w, nil
}

// Disabled reports whether records for name must be skipped (disabled or
// auto-disabled) per the latest snapshot. A state recorded for another client
// than the configured one does not count (Store.SetConfigured). Lock-free and
// allocation-free.
func (w *Watcher) Disabled(name string) bool {
	st, off := w.snap.Load().states[name]
	if !off {
		return false
	}
	return w.store.effective(st).State != Enabled
}

// Status returns the state of name per the latest snapshot.
func (w *Watcher) Status(name string) Status {
	if st, ok := w.snap.Load().states[name]; ok {
		return w.store.effective(st)
	}
	return Status{Name: name, State: Enabled}
}

// Snapshot returns a copy of the states that are not enabled.
func (w *Watcher) Snapshot() map[string]Status {
	out := make(map[string]Status)
	for name, st := range w.snap.Load().states {
		if st = w.store.effective(st); st.State != Enabled {
			out[name] = st
		}
	}
	return out
}

// Degraded reports whether the last poll of Redis failed (or none succeeded
// yet): the snapshot may miss changes made in Redis only.
func (w *Watcher) Degraded() bool { return w.degraded.Load() }

// Poke asks Run to poll at once (the durable copy changed). It never blocks.
func (w *Watcher) Poke() {
	select {
	case w.poke <- struct{}{}:
	default:
	}
}

// Refresh polls Redis once and publishes the new snapshot: Redis's entries
// merged with the durable copy, the newer version of each winning. On a
// Redis failure the snapshot is still rebuilt, from the last entries Redis
// gave and the durable copy as it is now; Degraded turns true and the error
// is returned. It blocks for one Redis round trip.
func (w *Watcher) Refresh(ctx context.Context) error {
	raw, err := w.store.readRedis(ctx)
	if err == nil {
		w.lastRedis = raw
	}
	w.degraded.Store(err != nil)
	w.publish(w.store.mergeAll(w.lastRedis))
	return err
}

func (w *Watcher) publish(all map[string]Status) {
	next := &snapshot{states: make(map[string]Status, len(all))}
	for name, st := range all {
		if st.State != Enabled {
			next.states[name] = st
		}
	}
	prev := w.snap.Swap(next)
	if w.cfg.OnChange != nil {
		for name, st := range next.states {
			if old, ok := prev.states[name]; !ok || old.State != st.State || old.ClientID != st.ClientID {
				w.cfg.OnChange(st)
			}
		}
		for name := range prev.states {
			if _, ok := next.states[name]; !ok {
				if st, ok := all[name]; ok {
					w.cfg.OnChange(st)
				} else {
					w.cfg.OnChange(Status{Name: name, State: Enabled})
				}
			}
		}
	}
}

// Reconcile brings Redis and the durable copy together (see Store's
// documentation) from the entries of the last successful poll, then polls
// again when it changed Redis. It blocks for Redis round trips and writes to
// the durable copy; a no-op without a durable copy or before a poll
// succeeded.
func (w *Watcher) Reconcile(ctx context.Context) (Reconciled, error) {
	if w.lastRedis == nil || w.store.durable == nil {
		return Reconciled{}, nil
	}
	r, err := w.store.reconcile(ctx, w.lastRedis)
	for _, name := range r.Restored {
		w.logger.Warn("registry: integration state restored into Redis from the durable copy (Redis lost it)", "integration", name)
	}
	for _, name := range r.Published {
		w.logger.Info("registry: integration state written to the durable copy from Redis", "integration", name)
	}
	for _, name := range r.Removed {
		w.logger.Info("registry: integration state deleted from Redis: it was forgotten", "integration", name)
	}
	if !r.Empty() && w.cfg.OnReconcile != nil {
		w.cfg.OnReconcile(r)
	}
	if len(r.Restored) > 0 || len(r.Removed) > 0 {
		if rerr := w.Refresh(ctx); rerr != nil {
			err = errors.Join(err, rerr)
		}
	}
	return r, err
}

// Run polls until ctx ends: once at once, then every Interval or when
// poked, and reconciles after every successful poll. It blocks and returns
// nil when ctx ends. Failures are logged once per outage and leave the last
// snapshot in force.
func (w *Watcher) Run(ctx context.Context) error {
	t := time.NewTicker(w.cfg.Interval)
	defer t.Stop()
	failing := false
	for {
		pctx, cancel := context.WithTimeout(ctx, w.cfg.Interval)
		err := w.Refresh(pctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil && !failing:
			failing = true
			w.logger.Warn("registry: cannot read integration states from Redis; keeping the last known ones, merged with the durable copy", "err", err)
		case err == nil && failing:
			failing = false
			w.logger.Info("registry: integration states readable again")
		}
		if err == nil {
			// Bounded by the interval: a Kafka outage must not slow the polls
			// (a Put that times out is tried again at the next one).
			rctx, cancel := context.WithTimeout(ctx, w.cfg.Interval)
			_, rerr := w.Reconcile(rctx)
			cancel()
			switch {
			case ctx.Err() != nil:
				return nil
			case rerr != nil && !w.failingDC:
				w.failingDC = true
				w.logger.Warn("registry: cannot reconcile Redis with the durable copy; trying again at every poll", "err", rerr)
			case rerr == nil && w.failingDC:
				w.failingDC = false
				w.logger.Info("registry: Redis and the durable copy reconciled again")
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-w.poke:
		}
	}
}
