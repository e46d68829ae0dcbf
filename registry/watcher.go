package registry

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"sync/atomic"
	"time"
)

// DefaultInterval is how often a Watcher polls Redis.
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
	// Logger receives poll failures and recoveries; nil discards them.
	Logger *slog.Logger
}

// snapshot is immutable once published.
type snapshot struct {
	states map[string]Status // only integrations that are not enabled
}

// Watcher keeps a local, atomically replaced copy of the integration states
// so that the per-record path never waits for Redis. Disabled, Snapshot and
// Degraded are safe for concurrent use; Run and Refresh are called by one
// goroutine at a time.
type Watcher struct {
	store    *Store
	cfg      WatcherConfig
	logger   *slog.Logger
	snap     atomic.Pointer[snapshot]
	degraded atomic.Bool
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
	w := &Watcher{store: store, cfg: cfg, logger: logger}
	w.snap.Store(&snapshot{states: map[string]Status{}})
	w.degraded.Store(true)
	return w, nil
}

// Disabled reports whether records for name must be skipped (disabled or
// auto-disabled) per the latest snapshot. Lock-free and allocation-free.
func (w *Watcher) Disabled(name string) bool {
	_, off := w.snap.Load().states[name]
	return off
}

// Status returns the state of name per the latest snapshot.
func (w *Watcher) Status(name string) Status {
	if st, ok := w.snap.Load().states[name]; ok {
		return st
	}
	return Status{Name: name, State: Enabled}
}

// Snapshot returns a copy of the states that are not enabled.
func (w *Watcher) Snapshot() map[string]Status {
	return maps.Clone(w.snap.Load().states)
}

// Degraded reports whether the last poll failed (or none succeeded yet):
// the snapshot may be stale.
func (w *Watcher) Degraded() bool { return w.degraded.Load() }

// Refresh polls Redis once and publishes the new snapshot. On failure the
// previous snapshot stays, Degraded turns true and the error is returned.
// It blocks for one Redis round trip.
func (w *Watcher) Refresh(ctx context.Context) error {
	all, err := w.store.recorded(ctx)
	if err != nil {
		w.degraded.Store(true)
		return err
	}
	next := &snapshot{states: make(map[string]Status, len(all))}
	for name, st := range all {
		if st.State != Enabled {
			next.states[name] = st
		}
	}
	prev := w.snap.Swap(next)
	w.degraded.Store(false)
	if w.cfg.OnChange != nil {
		for name, st := range next.states {
			if old, ok := prev.states[name]; !ok || old.State != st.State {
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
	return nil
}

// Run polls until ctx ends: once at once, then every Interval. It blocks
// and returns nil when ctx ends. Poll failures are logged once per outage
// and leave the last snapshot in force.
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
			w.logger.Warn("registry: cannot read integration states; keeping the last known ones", "err", err)
		case err == nil && failing:
			failing = false
			w.logger.Info("registry: integration states readable again")
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
