package health

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultMaxPending is the default bound of a Buffered's memory, in
// (integration, minute) cells.
const DefaultMaxPending = 100_000

// Buffered keeps outcomes in memory while Redis is unreachable and writes
// them back with Flush. It never decides an auto-disable from partial data:
// while it is degraded (a Redis call failed and Flush has not yet written
// everything back), Record only counts in memory.
//
// Safe for concurrent use. Record blocks for at most one Redis round trip,
// and for none while degraded; Flush blocks for one round trip per
// integration with pending outcomes. Flushes are serialised.
type Buffered struct {
	l   *Ledger
	max int

	flushMu  sync.Mutex // serialises Flush
	mu       sync.Mutex
	pending  map[string]map[int64]cell
	cells    int
	degraded bool

	dropped atomic.Uint64
}

// NewBuffered wraps l. maxPending bounds the memory held during an outage
// in (integration, minute) cells (0 means DefaultMaxPending); outcomes past
// it are dropped and counted (Dropped).
func NewBuffered(l *Ledger, maxPending int) (*Buffered, error) {
	if l == nil {
		return nil, fmt.Errorf("health: nil ledger: %w", ErrInvalid)
	}
	if maxPending < 0 {
		return nil, fmt.Errorf("health: max pending %d < 0: %w", maxPending, ErrInvalid)
	}
	if maxPending == 0 {
		maxPending = DefaultMaxPending
	}
	return &Buffered{l: l, max: maxPending, pending: map[string]map[int64]cell{}}, nil
}

// Ledger returns the wrapped Ledger (for Ratio and Reset).
func (b *Buffered) Ledger() *Ledger { return b.l }

// Degraded reports whether outcomes are held in memory because Redis failed
// (for /readyz and a metric). It turns false when Flush has written all of
// them back.
func (b *Buffered) Degraded() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.degraded
}

// Pending returns the number of (integration, minute) cells held in memory.
func (b *Buffered) Pending() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.cells
}

// Dropped returns how many outcomes were lost because the memory bound was
// reached during an outage.
func (b *Buffered) Dropped() uint64 { return b.dropped.Load() }

// Record is Ledger.Record while Redis answers. When degraded it keeps the
// outcome in memory and returns a Deferred decision; when the Redis call
// fails it does the same and becomes degraded. Only an invalid argument is
// returned as an error: an outage never surfaces to the caller.
func (b *Buffered) Record(ctx context.Context, integration string, o Outcome, at time.Time) (Decision, error) {
	if err := checkName(integration); err != nil {
		return Decision{}, err
	}
	if !o.valid() {
		return Decision{}, fmt.Errorf("health: outcome %d: %w", o, ErrInvalid)
	}
	b.mu.Lock()
	if b.degraded {
		b.addLocked(integration, o, at)
		b.mu.Unlock()
		return Decision{Integration: integration, Deferred: true}, nil
	}
	b.mu.Unlock()
	d, err := b.l.Record(ctx, integration, o, at)
	if err == nil {
		return d, nil
	}
	if IsInvalid(err) {
		return Decision{}, err
	}
	b.mu.Lock()
	b.degraded = true
	b.addLocked(integration, o, at)
	b.mu.Unlock()
	return Decision{Integration: integration, Deferred: true}, nil
}

// Note records the latest success or failure of integration (Ledger.Note);
// while Redis is away it records nothing (the notes are for display, the
// outcome itself is kept by Record).
func (b *Buffered) Note(ctx context.Context, integration string, o Outcome, at time.Time, problem, message, fix string) error {
	b.mu.Lock()
	degraded := b.degraded
	b.mu.Unlock()
	if degraded {
		return nil
	}
	return b.l.Note(ctx, integration, o, at, problem, message, fix)
}

// Delivered counts a delivered object (Ledger.Delivered); while Redis is
// away it counts nothing (the count is for display).
func (b *Buffered) Delivered(ctx context.Context, integration string, hits int, at time.Time) error {
	if b.Degraded() {
		return nil
	}
	return b.l.Delivered(ctx, integration, hits, at)
}

// addLocked counts one outcome in memory. At the bound it first forgets
// cells that are out of the window ending at at, then drops the outcome.
func (b *Buffered) addLocked(integration string, o Outcome, at time.Time) {
	m := minute(at)
	cells := b.pending[integration]
	c, exists := cells[m]
	if !exists && b.cells >= b.max {
		b.pruneLocked(m - buckets)
		if b.cells >= b.max {
			b.dropped.Add(1)
			return
		}
	}
	if cells == nil {
		cells = map[int64]cell{}
		b.pending[integration] = cells
	}
	if !exists {
		b.cells++
	}
	c.add(o, at)
	cells[m] = c
}

func (b *Buffered) pruneLocked(cutoff int64) {
	for name, cells := range b.pending {
		for m := range cells {
			if m < cutoff {
				delete(cells, m)
				b.cells--
			}
		}
		if len(cells) == 0 {
			delete(b.pending, name)
		}
	}
}

// Flush writes the outcomes held in memory back to Redis, one integration
// at a time: each integration's counts are written and its window ending
// at now evaluated in one script, so a decision is taken only on its
// complete counts. It returns the decisions taken (one per integration
// written back). On a Redis error it stops, keeps what is not written and
// stays degraded; when everything is written it is no longer degraded.
func (b *Buffered) Flush(ctx context.Context, now time.Time) ([]Decision, error) {
	b.flushMu.Lock()
	defer b.flushMu.Unlock()
	var out []Decision
	for {
		b.mu.Lock()
		var name string
		var cells map[int64]cell
		for name, cells = range b.pending {
			break
		}
		if cells == nil {
			b.degraded = false
			b.mu.Unlock()
			return out, nil
		}
		delete(b.pending, name)
		b.cells -= len(cells)
		b.mu.Unlock()

		d, err := b.l.apply(ctx, name, cells, now)
		if err != nil {
			b.mu.Lock()
			b.degraded = true
			b.mergeLocked(name, cells)
			b.mu.Unlock()
			return out, fmt.Errorf("health: flush: %w", err)
		}
		out = append(out, d)
	}
}

// mergeLocked puts cells of name back after a failed write (outcomes
// recorded in the meantime are added to them). The bound is not enforced:
// these cells were already held.
func (b *Buffered) mergeLocked(name string, cells map[int64]cell) {
	cur := b.pending[name]
	if cur == nil {
		b.pending[name] = cells
		b.cells += len(cells)
		return
	}
	for m, c := range cells {
		old, ok := cur[m]
		if !ok {
			b.cells++
		}
		cur[m] = old.merge(c)
	}
}
