package registry_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"hitship/integrations/registry"
	"hitship/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const prefix = "hitship:"

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 123_000_000, time.UTC)

// clock is a settable test clock.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock { c := &clock{}; c.ns.Store(t.UnixNano()); return c }
func (c *clock) Now() time.Time   { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Add(d time.Duration) {
	c.ns.Add(int64(d))
}

// replica returns a Store with its own Redis connection, as another replica
// would have.
func replica(t *testing.T, r *testenv.Redis, c *clock) (*registry.Store, *redis.Client) {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr(), DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	s, err := registry.New(rdb, prefix, c.Now)
	if err != nil {
		t.Fatal(err)
	}
	return s, rdb
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestNew(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer rdb.Close()
	cases := []struct {
		name    string
		rdb     redis.UniversalClient
		now     func() time.Time
		wantErr bool
	}{
		{name: "ok", rdb: rdb, now: time.Now},
		{name: "nil client", rdb: nil, now: time.Now, wantErr: true},
		{name: "nil clock", rdb: rdb, now: nil, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := registry.New(tc.rdb, prefix, tc.now)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tc.wantErr)
			}
			if err != nil && !registry.IsInvalid(err) {
				t.Errorf("err %v does not satisfy IsInvalid", err)
			}
		})
	}
}

func TestDisableEnableEvents(t *testing.T) {
	r := testenv.MustRedis(t, testenv.RedisOptions{})
	c := newClock(t0)
	s, rdb := replica(t, r, c)
	ctx := ctxT(t)

	st, err := s.Status(ctx, "acme")
	if err != nil || st.State != registry.Enabled || !st.Since.IsZero() {
		t.Fatalf("Status of an unknown integration = %+v, %v; want enabled", st, err)
	}
	steps := []struct {
		name      string
		do        func() (registry.Event, bool, error)
		changed   bool
		state     registry.State
		reason    string
		by        string
		sinceStep int // the step (1-based) whose clock Since must show
	}{
		{name: "enable an enabled one is a no-op", do: func() (registry.Event, bool, error) { return s.Enable(ctx, "acme", "op") },
			changed: false, state: registry.Enabled},
		{name: "disable", do: func() (registry.Event, bool, error) {
			return s.Disable(ctx, "acme", "customer asked", "admin-api@1.2.3.4:5")
		},
			changed: true, state: registry.Disabled, reason: "customer asked", by: "admin-api@1.2.3.4:5", sinceStep: 2},
		{name: "disable again is a no-op and keeps reason", do: func() (registry.Event, bool, error) { return s.Disable(ctx, "acme", "other", "x") },
			changed: false, state: registry.Disabled, reason: "customer asked", by: "admin-api@1.2.3.4:5", sinceStep: 2},
		{name: "auto-disable does not override an operator", do: func() (registry.Event, bool, error) { return s.AutoDisable(ctx, "acme", "60% failed", "health") },
			changed: false, state: registry.Disabled, reason: "customer asked", by: "admin-api@1.2.3.4:5", sinceStep: 2},
		{name: "enable", do: func() (registry.Event, bool, error) { return s.Enable(ctx, "acme", "op") },
			changed: true, state: registry.Enabled, by: "op", sinceStep: 5},
		{name: "auto-disable", do: func() (registry.Event, bool, error) { return s.AutoDisable(ctx, "acme", "60% failed", "health") },
			changed: true, state: registry.AutoDisabled, reason: "60% failed", by: "health", sinceStep: 6},
		{name: "auto-disable again is a no-op", do: func() (registry.Event, bool, error) { return s.AutoDisable(ctx, "acme", "again", "health") },
			changed: false, state: registry.AutoDisabled, reason: "60% failed", by: "health", sinceStep: 6},
		{name: "operator disables an auto-disabled one", do: func() (registry.Event, bool, error) { return s.Disable(ctx, "acme", "investigating", "op") },
			changed: true, state: registry.Disabled, reason: "investigating", by: "op", sinceStep: 8},
	}
	var want []registry.Event
	for i, step := range steps {
		c.Add(time.Minute)
		ev, changed, err := step.do()
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if changed != step.changed {
			t.Fatalf("%s: changed = %v, want %v", step.name, changed, step.changed)
		}
		if changed {
			wantEv := registry.Event{ID: ev.ID, Type: "integration_state", Integration: "acme", State: step.state, Reason: step.reason, By: step.by, At: t0.Add(time.Duration(i+1) * time.Minute).Truncate(time.Millisecond)}
			if ev != wantEv || ev.ID == "" {
				t.Errorf("%s: event = %+v, want %+v", step.name, ev, wantEv)
			}
			want = append(want, ev)
		} else if ev != (registry.Event{}) {
			t.Errorf("%s: no-op returned event %+v", step.name, ev)
		}
		st, err := s.Status(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		wantSt := registry.Status{Name: "acme", State: step.state, Reason: step.reason, By: step.by}
		if step.sinceStep > 0 {
			wantSt.Since = t0.Add(time.Duration(step.sinceStep) * time.Minute).Truncate(time.Millisecond)
			// Every change's version is max(previous + 1, now in ms): here, Since.
			wantSt.Version = wantSt.Since.UnixMilli()
		}
		if !st.Since.Equal(wantSt.Since) {
			t.Errorf("%s: Since = %v, want %v", step.name, st.Since, wantSt.Since)
		}
		st.Since, wantSt.Since = time.Time{}, time.Time{}
		if st != wantSt {
			t.Errorf("%s: Status = %+v, want %+v", step.name, st, wantSt)
		}
	}

	got, err := s.Events(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("Events = %d, want one per change (%d): %+v", len(got), len(want), got)
	}
	for i := range want {
		if !got[i].At.Equal(want[i].At) {
			t.Errorf("event %d At = %v, want %v", i, got[i].At, want[i].At)
		}
		got[i].At, want[i].At = time.Time{}, time.Time{}
		if got[i] != want[i] {
			t.Errorf("event %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if last, _ := s.Events(ctx, 1); len(last) != 1 || last[0].ID != want[len(want)-1].ID {
		t.Errorf("Events(1) = %+v, want the latest", last)
	}

	// The raw stream entry has exactly the documented fields.
	raw, err := rdb.XRange(ctx, prefix+"events", "-", "+").Result()
	if err != nil || len(raw) != len(want) {
		t.Fatalf("XRANGE = %d entries, %v", len(raw), err)
	}
	fields := raw[0].Values
	wantFields := map[string]any{"type": "integration_state", "integration": "acme", "state": "disabled",
		"reason": "customer asked", "by": "admin-api@1.2.3.4:5", "at": "2026-05-01T12:02:00.123Z"}
	if len(fields) != len(wantFields) {
		t.Errorf("fields = %v, want %v", fields, wantFields)
	}
	for k, v := range wantFields {
		if fields[k] != v {
			t.Errorf("field %s = %v, want %v", k, fields[k], v)
		}
	}
}

// TestEventsOf: an integration's history is its own events only, oldest
// first, found across pages of other integrations' events, the latest n.
func TestEventsOf(t *testing.T) {
	r := testenv.MustRedis(t, testenv.RedisOptions{})
	c := newClock(t0)
	s, _ := replica(t, r, c)
	ctx := ctxT(t)
	var want []registry.Event
	for i := range 1200 { // more than two pages, acme's events spread over them
		c.Add(time.Millisecond)
		name := "other"
		if i%400 == 7 {
			name = "acme"
		}
		ev, err := s.Record(ctx, registry.UpdateEventType, name, fmt.Sprint("change ", i), "op")
		if err != nil {
			t.Fatal(err)
		}
		if name == "acme" {
			want = append(want, ev)
		}
	}
	c.Add(time.Second)
	ev, _, err := s.Disable(ctx, "acme", "customer asked", "admin-api@1.2.3.4:5")
	if err != nil {
		t.Fatal(err)
	}
	want = append(want, ev)
	check := func(name string, n int, want []registry.Event) {
		t.Helper()
		got, err := s.EventsOf(ctx, name, n)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("EventsOf(%q, %d) = %d events %+v, want %d", name, n, len(got), got, len(want))
		}
		for i := range want {
			if got[i].ID != want[i].ID || got[i].Integration != name || got[i].Reason != want[i].Reason || got[i].By != want[i].By || !got[i].At.Equal(want[i].At) {
				t.Errorf("EventsOf(%q, %d)[%d] = %+v, want %+v", name, n, i, got[i], want[i])
			}
		}
	}
	check("acme", 100, want)
	check("acme", 2, want[len(want)-2:])
	check("nobody", 10, nil)
	if got, _ := s.EventsOf(ctx, "acme", 0); len(got) != 0 {
		t.Errorf("EventsOf(n=0) = %+v", got)
	}
	if _, err := s.EventsOf(ctx, "", 10); !registry.IsInvalid(err) {
		t.Errorf("EventsOf of an empty name: %v, want invalid", err)
	}
}

func TestAll(t *testing.T) {
	r := testenv.MustRedis(t, testenv.RedisOptions{})
	s, rdb := replica(t, r, newClock(t0))
	ctx := ctxT(t)
	if _, _, err := s.Disable(ctx, "b", "r", "op"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.AutoDisable(ctx, "c", "health", "health"); err != nil {
		t.Fatal(err)
	}
	if err := rdb.HSet(ctx, prefix+"integrations", "d", "not json").Err(); err != nil {
		t.Fatal(err)
	}
	all, err := s.All(ctx, []string{"a", "b", "c", "d"})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]registry.State{"a": registry.Enabled, "b": registry.Disabled, "c": registry.AutoDisabled, "d": registry.Disabled}
	if len(all) != len(want) {
		t.Fatalf("All = %+v", all)
	}
	for name, st := range want {
		if all[name].State != st || all[name].Name != name {
			t.Errorf("All[%s] = %+v, want %s", name, all[name], st)
		}
	}
	if !strings.Contains(all["d"].Reason, "unreadable") {
		t.Errorf("an unreadable entry counts as disabled with a reason, got %+v", all["d"])
	}
	if empty, err := s.All(ctx, nil); err != nil || len(empty) != 0 {
		t.Errorf("All(nil) = %v, %v", empty, err)
	}
}

func TestInvalidArguments(t *testing.T) {
	r := testenv.MustRedis(t, testenv.RedisOptions{})
	s, _ := replica(t, r, newClock(t0))
	ctx := ctxT(t)
	for _, name := range []string{"", "a\nb", strings.Repeat("x", 300), "\xff"} {
		if _, _, err := s.Disable(ctx, name, "", ""); !registry.IsInvalid(err) {
			t.Errorf("Disable(%q) = %v, want IsInvalid", name, err)
		}
		if _, err := s.Status(ctx, name); !registry.IsInvalid(err) {
			t.Errorf("Status(%q) = %v, want IsInvalid", name, err)
		}
	}
	ev, _, err := s.Disable(ctx, "long", strings.Repeat("é", 2000), "op")
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.Reason) > registry.MaxReasonBytes || !strings.HasPrefix(ev.Reason, "éé") {
		t.Errorf("reason of %d bytes not clipped to %d", len(ev.Reason), registry.MaxReasonBytes)
	}
}

// TestConcurrentReplicas: many replicas disable the same integration at
// once: one change, one event.
func TestConcurrentReplicas(t *testing.T) {
	r := testenv.MustRedis(t, testenv.RedisOptions{})
	c := newClock(t0)
	ctx := ctxT(t)
	const n = 8
	stores := make([]*registry.Store, n)
	for i := range stores {
		stores[i], _ = replica(t, r, c)
	}
	for round, do := range []func(s *registry.Store) (registry.Event, bool, error){
		func(s *registry.Store) (registry.Event, bool, error) { return s.Disable(ctx, "acme", "r", "op") },
		func(s *registry.Store) (registry.Event, bool, error) { return s.Enable(ctx, "acme", "op") },
	} {
		var changed atomic.Int32
		var wg sync.WaitGroup
		for _, s := range stores {
			wg.Go(func() {
				_, ch, err := do(s)
				if err != nil {
					t.Error(err)
				}
				if ch {
					changed.Add(1)
				}
			})
		}
		wg.Wait()
		if changed.Load() != 1 {
			t.Errorf("round %d: %d replicas changed the state, want 1", round, changed.Load())
		}
	}
	evs, err := stores[0].Events(ctx, 100)
	if err != nil || len(evs) != 2 {
		t.Errorf("events = %+v, %v; want 2", evs, err)
	}
}

// TestWatcherReplicas: a disable on one replica's store is seen by another
// replica's watcher within the poll interval; enable resets it.
func TestWatcherReplicas(t *testing.T) {
	r := testenv.MustRedis(t, testenv.RedisOptions{})
	c := newClock(t0)
	a, _ := replica(t, r, c)
	b, _ := replica(t, r, c)
	ctx := ctxT(t)
	const interval = 50 * time.Millisecond

	var mu sync.Mutex
	var changes []registry.Status
	wa, err := registry.NewWatcher(a, registry.WatcherConfig{Interval: interval})
	if err != nil {
		t.Fatal(err)
	}
	wb, err := registry.NewWatcher(b, registry.WatcherConfig{Interval: interval, OnChange: func(s registry.Status) {
		mu.Lock()
		changes = append(changes, s)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, w := range []*registry.Watcher{wa, wb} {
		wg.Go(func() {
			if err := w.Run(runCtx); err != nil {
				t.Error(err)
			}
		})
	}
	defer func() { stop(); wg.Wait() }()

	waitFor := func(what string, cond func() bool) time.Duration {
		t.Helper()
		start := time.Now()
		for !cond() {
			if time.Since(start) > 20*interval {
				t.Fatalf("%s: not seen after %v", what, time.Since(start))
			}
			time.Sleep(5 * time.Millisecond)
		}
		return time.Since(start)
	}
	waitFor("first poll", func() bool { return !wa.Degraded() && !wb.Degraded() })
	if wb.Disabled("acme") {
		t.Fatal("acme disabled before anyone disabled it")
	}
	if _, _, err := a.Disable(ctx, "acme", "maintenance", "op"); err != nil {
		t.Fatal(err)
	}
	d := waitFor("disable on replica b", func() bool { return wb.Disabled("acme") })
	if d > 4*interval { // one interval plus scheduling slack on a busy machine
		t.Errorf("replica b saw the disable after %v, interval %v", d, interval)
	}
	waitFor("disable on replica a", func() bool { return wa.Disabled("acme") })
	if st := wb.Status("acme"); st.State != registry.Disabled || st.Reason != "maintenance" {
		t.Errorf("Status = %+v", st)
	}
	if wb.Disabled("other") {
		t.Error("other is disabled")
	}
	if _, _, err := b.Enable(ctx, "acme", "op"); err != nil {
		t.Fatal(err)
	}
	waitFor("enable on replica a", func() bool { return !wa.Disabled("acme") })
	waitFor("enable on replica b", func() bool { return !wb.Disabled("acme") })

	mu.Lock()
	defer mu.Unlock()
	if len(changes) != 2 || changes[0].State != registry.Disabled || changes[1].State != registry.Enabled {
		t.Errorf("OnChange calls = %+v, want disabled then enabled", changes)
	}
}

// TestWatcherRedisDown: while Redis is down the last snapshot stays and
// Degraded says so; after it returns the watcher catches up.
func TestWatcherRedisDown(t *testing.T) {
	r := testenv.MustRedis(t, testenv.RedisOptions{Persist: true})
	s, _ := replica(t, r, newClock(t0))
	ctx := ctxT(t)
	w, err := registry.NewWatcher(s, registry.WatcherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if !w.Degraded() {
		t.Error("a watcher that never polled is not degraded")
	}
	if _, _, err := s.Disable(ctx, "acme", "r", "op"); err != nil {
		t.Fatal(err)
	}
	if err := w.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if !w.Disabled("acme") || w.Degraded() {
		t.Fatalf("after refresh: disabled %v degraded %v", w.Disabled("acme"), w.Degraded())
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := w.Refresh(ctx); err == nil {
		t.Fatal("Refresh with Redis down succeeded")
	}
	if !w.Disabled("acme") || !w.Degraded() {
		t.Errorf("Redis down: disabled %v degraded %v; want the last snapshot, degraded", w.Disabled("acme"), w.Degraded())
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for err = w.Refresh(ctx); err != nil && time.Now().Before(deadline); err = w.Refresh(ctx) {
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	if !w.Disabled("acme") || w.Degraded() {
		t.Errorf("Redis back: disabled %v degraded %v", w.Disabled("acme"), w.Degraded())
	}
	if _, _, err := s.Enable(ctx, "acme", "op"); err != nil {
		t.Fatal(err)
	}
	if err := w.Refresh(ctx); err != nil || w.Disabled("acme") {
		t.Errorf("after enable: %v, disabled %v", err, w.Disabled("acme"))
	}
}

func TestDisabledAllocationFree(t *testing.T) {
	r := testenv.MustRedis(t, testenv.RedisOptions{})
	s, _ := replica(t, r, newClock(t0))
	ctx := ctxT(t)
	if _, _, err := s.Disable(ctx, "acme", "r", "op"); err != nil {
		t.Fatal(err)
	}
	w, err := registry.NewWatcher(s, registry.WatcherConfig{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	name := strings.Clone("acme")
	var sink bool
	allocs := testing.AllocsPerRun(1000, func() { sink = w.Disabled(name) && !w.Disabled("other") })
	if allocs != 0 || !sink {
		t.Errorf("Disabled allocates %v times per call (result %v)", allocs, sink)
	}
}

func TestNewWatcherInvalid(t *testing.T) {
	if _, err := registry.NewWatcher(nil, registry.WatcherConfig{}); !errors.Is(err, registry.ErrInvalid) {
		t.Errorf("nil store: %v", err)
	}
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	s, err := registry.New(rdb, prefix, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := registry.NewWatcher(s, registry.WatcherConfig{Interval: -1}); !registry.IsInvalid(err) {
		t.Errorf("negative interval: %v", err)
	}
}

func BenchmarkDisabled(b *testing.B) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	defer rdb.Close()
	s, _ := registry.New(rdb, prefix, time.Now)
	w, _ := registry.NewWatcher(s, registry.WatcherConfig{})
	b.ReportAllocs()
	for b.Loop() {
		_ = w.Disabled("acme")
	}
}
