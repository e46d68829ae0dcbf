package retry

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestPostponeAndWake: a postponed entry keeps its position and last error
// and is not claimable before its new due time; Wake brings an integration's
// waiting entries forward and leaves leased and other integrations' alone.
func TestPostponeAndWake(t *testing.T) {
	ctx := t.Context()
	q, _ := newQueue(t, false)
	a := entry("a1", "acme", Position{2, 3}, t0)
	a.LastError = "AccessDenied"
	for _, e := range []Entry{a, entry("a2", "acme", Position{1, 5}, t0), entry("b1", "beta", Position{3, 1}, t0)} {
		if _, err := q.Enqueue(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	cs := mustClaim(t, q, t0, time.Minute, 1, 1)
	if err := q.Postpone(ctx, Claimed{Entry: cs[0].Entry, Token: "stale"}, t0.Add(time.Hour)); !IsLeaseLost(err) {
		t.Fatalf("Postpone with a stale token: %v, want lease lost", err)
	}
	if err := q.Postpone(ctx, cs[0], t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	// The other two are still due; the postponed one is not.
	got := mustClaim(t, q, t0.Add(time.Second), 2*time.Hour, 10, 2)
	held := map[string]Claimed{}
	for _, c := range got {
		held[c.ID] = c
	}
	if _, ok := held[cs[0].ID]; ok {
		t.Fatalf("postponed entry %s claimed before its due time", cs[0].ID)
	}
	mustClaim(t, q, t0.Add(59*time.Minute), time.Hour, 10, 0)

	list, err := q.ListByIntegration(ctx, cs[0].Integration)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range list {
		if e.ID != cs[0].ID {
			continue
		}
		if e.Position() != cs[0].Position() || e.LastError != cs[0].LastError || !e.Due.Equal(t0.Add(time.Hour)) || e.State != StateScheduled {
			t.Fatalf("postponed entry %+v: want position %s, last error %q, due in an hour", e, cs[0].Position(), cs[0].LastError)
		}
	}

	// Give the other two back (postponed too) and wake acme only.
	for _, c := range got {
		if err := q.Postpone(ctx, c, t0.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	n, err := q.Wake(ctx, "acme", t0.Add(2*time.Second))
	if err != nil || n != 2 {
		t.Fatalf("Wake(acme) = %d, %v; want 2", n, err)
	}
	woken := mustClaim(t, q, t0.Add(2*time.Second), time.Minute, 10, 2)
	for _, c := range woken {
		if c.Integration != "acme" {
			t.Fatalf("Wake(acme) woke %s of %s", c.ID, c.Integration)
		}
	}
	// Leased entries are left alone.
	if n, err := q.Wake(ctx, "acme", t0.Add(3*time.Second)); err != nil || n != 0 {
		t.Fatalf("Wake over leased entries = %d, %v; want 0", n, err)
	}
}

// TestWorkerHold: while Hold says so, entries are postponed without an
// attempt (Handle and OnOutcome never called, position unchanged); once Hold
// lets go they are handled at the position they had.
func TestWorkerHold(t *testing.T) {
	ctx := t.Context()
	q, _ := newQueue(t, false)
	now := time.Now()
	for _, id := range []string{"h1", "h2", "h3"} {
		if _, err := q.Enqueue(ctx, entry(id, "acme", Position{2, 4}, now)); err != nil {
			t.Fatal(err)
		}
	}
	var holding atomic.Bool
	holding.Store(true)
	var holds atomic.Int64
	var mu sync.Mutex
	handled := map[string]Position{}
	outcomes := 0
	w := newWorker(t, WorkerConfig{
		Queue: q, Lease: time.Second, Poll: 10 * time.Millisecond,
		Hold: func(c Claimed) (time.Duration, bool) {
			if holding.Load() {
				holds.Add(1)
				return 50 * time.Millisecond, true
			}
			return 0, false
		},
		Handle: func(_ context.Context, c Claimed) error {
			mu.Lock()
			handled[c.ID] = c.Position()
			mu.Unlock()
			return nil
		},
		OnOutcome: func(Claimed, error) {
			mu.Lock()
			outcomes++
			mu.Unlock()
		},
	})
	runWorker(t, w)
	waitFor(t, 10*time.Second, "entries held several times", func() bool { return holds.Load() >= 9 })
	mu.Lock()
	if len(handled) != 0 || outcomes != 0 {
		t.Fatalf("held entries were attempted: handled %v, %d outcomes", handled, outcomes)
	}
	mu.Unlock()
	list, err := q.ListByIntegration(ctx, "acme")
	if err != nil || len(list) != 3 {
		t.Fatalf("entries while held: %v, %v", list, err)
	}
	for _, e := range list {
		if e.Position() != (Position{2, 4}) {
			t.Fatalf("held entry %s moved to %s", e.ID, e.Position())
		}
	}
	holding.Store(false)
	waitFor(t, 10*time.Second, "entries delivered after the hold", func() bool { return stats(t, q) == Stats{} })
	mu.Lock()
	defer mu.Unlock()
	if len(handled) != 3 || outcomes != 3 {
		t.Fatalf("after the hold: handled %v, %d outcomes; want 3 each", handled, outcomes)
	}
	for id, p := range handled {
		if p != (Position{2, 4}) {
			t.Fatalf("%s handled at %s, want 2/4", id, p)
		}
	}
}
