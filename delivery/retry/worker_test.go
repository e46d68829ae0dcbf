package retry

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"
)

// runWorker starts w.Run and returns a stop function that cancels it and
// waits for it to return.
func runWorker(t *testing.T, w *Worker) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

func newWorker(t *testing.T, cfg WorkerConfig) *Worker {
	t.Helper()
	w, err := NewWorker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// waitFor polls cond every 10ms until it holds or d passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func stats(t *testing.T, q *Queue) Stats {
	t.Helper()
	s, err := q.Stats(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// counter counts Handle calls per entry id.
type counter struct {
	mu sync.Mutex
	n  map[string]int
	by map[string]int // per worker
}

func (c *counter) add(worker, id string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[id]++
	c.by[worker]++
}

func (c *counter) total() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := 0
	for _, v := range c.n {
		s += v
	}
	return s
}

func TestNewWorkerInvalid(t *testing.T) {
	q, _ := newQueue(t, false)
	tests := []struct {
		name string
		cfg  WorkerConfig
	}{
		{name: "no queue", cfg: WorkerConfig{Handle: func(context.Context, Claimed) error { return nil }}},
		{name: "no handle", cfg: WorkerConfig{Queue: q}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewWorker(tt.cfg); !IsInvalid(err) {
				t.Fatalf("err = %v, want invalid", err)
			}
		})
	}
}

// TestTwoWorkersExactlyOnce: two workers on 1,000 due entries handle each
// exactly once.
func TestTwoWorkersExactlyOnce(t *testing.T) {
	ctx := t.Context()
	q, _ := newQueue(t, false)
	const n = 1000
	now := time.Now()
	for i := range n {
		if _, err := q.Enqueue(ctx, entry(fmt.Sprint("e", i), "acme", Position{2, 1}, now)); err != nil {
			t.Fatal(err)
		}
	}
	cnt := &counter{n: map[string]int{}, by: map[string]int{}}
	var stops []func()
	for _, name := range []string{"a", "b"} {
		w := newWorker(t, WorkerConfig{
			Queue: q, Lease: 5 * time.Second, Poll: 20 * time.Millisecond, Batch: 25, Concurrency: 8,
			Handle: func(ctx context.Context, c Claimed) error {
				cnt.add(name, c.ID)
				return nil
			},
		})
		stops = append(stops, runWorker(t, w))
	}
	waitFor(t, 20*time.Second, "all entries completed", func() bool {
		return cnt.total() >= n && stats(t, q) == Stats{}
	})
	for _, stop := range stops {
		stop()
	}
	if len(cnt.n) != n {
		t.Fatalf("%d distinct entries handled, want %d", len(cnt.n), n)
	}
	for id, c := range cnt.n {
		if c != 1 {
			t.Errorf("entry %s handled %d times", id, c)
		}
	}
	t.Logf("handled per worker: %v", cnt.by)
}

// TestWorkerCrash: a worker that dies holding leases (its Handle never
// returns a result and it records nothing) loses its entries to the other
// worker once the leases expire.
func TestWorkerCrash(t *testing.T) {
	ctx := t.Context()
	q, _ := newQueue(t, false)
	const n = 20
	lease := 500 * time.Millisecond
	for i := range n {
		if _, err := q.Enqueue(ctx, entry(fmt.Sprint("c", i), "acme", Position{2, 3}, time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	var started sync.WaitGroup
	started.Add(n)
	a := newWorker(t, WorkerConfig{
		Queue: q, Lease: lease, Poll: 20 * time.Millisecond, Batch: n, Concurrency: n,
		Handle: func(ctx context.Context, c Claimed) error {
			started.Done()
			<-ctx.Done() // stuck on the customer's bucket until the process dies
			return ctx.Err()
		},
	})
	stopA := runWorker(t, a)
	started.Wait()
	// Hold the leases across a renewal, then crash.
	time.Sleep(lease)
	if s := stats(t, q); s != (Stats{Leased: n}) {
		t.Fatalf("while A holds them: %+v", s)
	}
	stopA()
	if s := stats(t, q); s.Leased != n {
		t.Fatalf("after the crash: %+v, want the %d leases left to expire", s, n)
	}

	type seen struct {
		at        time.Time
		reclaimed bool
		pos       Position
	}
	var mu sync.Mutex
	got := map[string][]seen{}
	b := newWorker(t, WorkerConfig{
		Queue: q, Lease: lease, Poll: 20 * time.Millisecond, Batch: 8,
		Handle: func(ctx context.Context, c Claimed) error {
			mu.Lock()
			got[c.ID] = append(got[c.ID], seen{time.Now(), c.Reclaimed, c.Position()})
			mu.Unlock()
			return nil
		},
	})
	stopB := runWorker(t, b)
	waitFor(t, 10*time.Second, "B completes A's entries", func() bool { return stats(t, q) == Stats{} })
	stopB()
	if len(got) != n {
		t.Fatalf("B handled %d entries, want %d", len(got), n)
	}
	for id, ss := range got {
		if len(ss) != 1 {
			t.Fatalf("%s handled %d times", id, len(ss))
		}
		s := ss[0]
		if !s.reclaimed || s.pos != (Position{2, 3}) {
			t.Errorf("%s: reclaimed %v at %s, want a reclaimed 2/3 (a crash is not a failed attempt)", id, s.reclaimed, s.pos)
		}
	}
}

// TestWorkerOutcomes: success completes, a failure is rescheduled per the
// schedule, a failure of the last attempt dead-letters the entry.
func TestWorkerOutcomes(t *testing.T) {
	ctx := t.Context()
	q, _ := newQueue(t, false)
	now := time.Now()
	for _, e := range []Entry{
		entry("ok", "acme", Position{2, 1}, now),
		entry("fail", "acme", Position{2, 5}, now),
		entry("last", "acme", Last, now),
	} {
		if _, err := q.Enqueue(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	outcomes := map[string]error{}
	var hookCalls []string
	w := newWorker(t, WorkerConfig{
		Queue: q, Lease: time.Second, Poll: 20 * time.Millisecond,
		Handle: func(ctx context.Context, c Claimed) error {
			if c.ID == "ok" {
				return nil
			}
			return fmt.Errorf("upload %s: NoSuchBucket", c.ID)
		},
		OnOutcome: func(c Claimed, err error) {
			mu.Lock()
			outcomes[c.ID] = err
			mu.Unlock()
		},
		BeforeDeadLetter: func(ctx context.Context, c Claimed, reason string) (string, error) {
			mu.Lock()
			hookCalls = append(hookCalls, c.ID+": "+reason)
			mu.Unlock()
			return "dead/" + c.ID, nil
		},
	})
	stop := runWorker(t, w)
	waitFor(t, 10*time.Second, "outcomes recorded", func() bool {
		s := stats(t, q)
		return s.Leased == 0 && s.Due == 0 && s.Dead == 1 && s.Scheduled == 1
	})
	stop()
	after := time.Now()

	if len(outcomes) != 3 || outcomes["ok"] != nil || outcomes["fail"] == nil || outcomes["last"] == nil {
		t.Fatalf("outcomes %v", outcomes)
	}
	if fmt.Sprint(hookCalls) != "[last: upload last: NoSuchBucket]" {
		t.Fatalf("dead-letter hook calls %v", hookCalls)
	}
	list, err := q.ListByIntegration(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]Entry{}
	for _, e := range list {
		byID[e.ID] = e
	}
	if _, ok := byID["ok"]; ok || len(byID) != 2 {
		t.Fatalf("entries left %v, want fail and last", byID)
	}
	f := byID["fail"]
	if f.State != StateScheduled || f.Position() != (Position{3, 1}) || f.LastError != "upload fail: NoSuchBucket" ||
		f.Due.Before(now.Add(time.Minute)) || f.Due.After(after.Add(time.Minute)) {
		t.Fatalf("rescheduled entry %+v, want 3/1 due a minute after the failure", f)
	}
	l := byID["last"]
	if l.State != StateDead || l.ParkedKey != "dead/last" || l.DeadReason != "upload last: NoSuchBucket" {
		t.Fatalf("dead letter %+v", l)
	}
}

// TestWorkerRenewsLease: a Handle that runs for several leases keeps its
// entry; nobody else can claim it meanwhile.
func TestWorkerRenewsLease(t *testing.T) {
	ctx := t.Context()
	q, _ := newQueue(t, false)
	// Renewal runs every lease/2; the other half is the margin a loaded machine
	// gets before a renewal is late.
	lease := 2 * time.Second
	if _, err := q.Enqueue(ctx, entry("slow", "acme", Position{2, 1}, time.Now())); err != nil {
		t.Fatal(err)
	}
	handling := make(chan struct{})
	var calls int
	w := newWorker(t, WorkerConfig{
		Queue: q, Lease: lease, Poll: 20 * time.Millisecond,
		Handle: func(ctx context.Context, c Claimed) error {
			calls++
			close(handling)
			select {
			case <-time.After(3 * lease):
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		},
	})
	stop := runWorker(t, w)
	<-handling
	end := time.Now().Add(3 * lease)
	for time.Now().Before(end) {
		cs, err := q.Claim(ctx, time.Now(), lease, 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) != 0 {
			t.Fatalf("claimed %s while its holder was still handling it", cs[0].ID)
		}
		time.Sleep(25 * time.Millisecond)
	}
	waitFor(t, 5*time.Second, "completed", func() bool { return stats(t, q) == Stats{} })
	stop()
	if calls != 1 {
		t.Fatalf("Handle called %d times", calls)
	}
}

// TestWorkerRedisDown: claims fail while Redis is away; the worker keeps
// polling and delivers once it is back.
func TestWorkerRedisDown(t *testing.T) {
	ctx := t.Context()
	q, r := newQueue(t, true)
	if r.Miniredis() {
		t.Skip("no redis-server binary")
	}
	if _, err := q.Enqueue(ctx, entry("x", "acme", Position{2, 1}, time.Now().Add(300*time.Millisecond))); err != nil {
		t.Fatal(err)
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	w := newWorker(t, WorkerConfig{
		Queue: q, Lease: time.Second, Poll: 50 * time.Millisecond,
		Handle: func(ctx context.Context, c Claimed) error {
			close(done)
			return nil
		},
	})
	stop := runWorker(t, w)
	time.Sleep(400 * time.Millisecond)
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("entry not delivered after Redis returned")
	}
	waitFor(t, 5*time.Second, "completed", func() bool { return stats(t, q) == Stats{} })
	stop()
}

// TestWorkerHungEntryDoesNotHoldOthers: one entry whose upload hangs holds
// one slot of the worker, never the others: entries that become due while it
// hangs are claimed and delivered (no batch barrier).
func TestWorkerHungEntryDoesNotHoldOthers(t *testing.T) {
	ctx := t.Context()
	q, _ := newQueue(t, false)
	if _, err := q.Enqueue(ctx, entry("hung", "acme", Position{2, 1}, time.Now())); err != nil {
		t.Fatal(err)
	}
	hanging := make(chan struct{})
	var mu sync.Mutex
	delivered := map[string]bool{}
	w := newWorker(t, WorkerConfig{
		Queue: q, Lease: 2 * time.Second, Poll: 20 * time.Millisecond, Concurrency: 4,
		Handle: func(ctx context.Context, c Claimed) error {
			if c.ID == "hung" {
				close(hanging)
				<-ctx.Done() // the customer's endpoint never answers
				return ctx.Err()
			}
			mu.Lock()
			delivered[c.ID] = true
			mu.Unlock()
			return nil
		},
	})
	runWorker(t, w)
	<-hanging
	for i := range 6 {
		if _, err := q.Enqueue(ctx, entry(fmt.Sprint("other", i), "acme", Position{2, 1}, time.Now())); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 15*time.Second, "the other entries delivered while one hangs", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(delivered) == 6
	})
	if s := stats(t, q); s != (Stats{Leased: 1}) {
		t.Fatalf("queue = %+v; want only the hung entry, leased", s)
	}
}

// TestWorkerRetriesCleanup: a clean-up hook that fails (a passing S3 error on
// the delete of the parked copy) is called again within the hook timeout.
// Before, one failure left the parked copy behind, and the completed entry's
// DoneTTL marker kept scans away from it for an hour.
func TestWorkerRetriesCleanup(t *testing.T) {
	ctx := t.Context()
	q, _ := newQueue(t, false)
	now := time.Now()
	for _, e := range []Entry{entry("ok", "acme", Position{2, 1}, now), entry("last", "acme", Last, now)} {
		if _, err := q.Enqueue(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	calls := map[string]int{}
	flaky := func(id string) error {
		mu.Lock()
		defer mu.Unlock()
		calls[id]++
		if calls[id] < 3 {
			return fmt.Errorf("delete %s: InternalError", id)
		}
		return nil
	}
	w := newWorker(t, WorkerConfig{
		Queue: q, Lease: time.Second, Poll: 20 * time.Millisecond, HookTimeout: 5 * time.Second,
		Handle: func(ctx context.Context, c Claimed) error {
			if c.ID == "ok" {
				return nil
			}
			return fmt.Errorf("upload %s: NoSuchBucket", c.ID)
		},
		AfterComplete: func(ctx context.Context, c Claimed) error { return flaky("complete " + c.ID) },
		BeforeDeadLetter: func(ctx context.Context, c Claimed, reason string) (string, error) {
			return "dead/" + c.ID, nil
		},
		AfterDeadLetter: func(ctx context.Context, c Claimed, dead string) error { return flaky("dead " + c.ID) },
	})
	runWorker(t, w)
	waitFor(t, 10*time.Second, "both clean-ups done", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return calls["complete ok"] == 3 && calls["dead last"] == 3
	})
	time.Sleep(500 * time.Millisecond)
	mu.Lock()
	defer mu.Unlock()
	if calls["complete ok"] != 3 || calls["dead last"] != 3 {
		t.Fatalf("clean-up calls %v, want 3 each (two failures, then success, then no more)", calls)
	}
}
