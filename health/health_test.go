package health_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"go.uber.org/goleak"

	"hitship/health"
	"hitship/integrations/registry"
	"hitship/internal/testenv"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// outcome is Success, or a failure on the customer's side.
func outcome(ok bool) health.Outcome {
	if ok {
		return health.Success
	}
	return health.FailCustomer
}

const prefix = "hitship:"

var t0 = time.Date(2026, 5, 1, 12, 0, 30, 123_000_000, time.UTC)

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// client returns a client of its own, as another replica would have.
func client(t *testing.T, r *testenv.Redis) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: r.Addr(), DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1})
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// ledger returns a ledger without the failing-span rule (MinFailing below a
// millisecond: spans are counted in whole ms, so any span passes); the rule
// has tests of its own (TestFailingSpan).
func ledger(t *testing.T, rdb redis.UniversalClient, minAttempts int) *health.Ledger {
	t.Helper()
	l, err := health.New(rdb, health.Config{Prefix: prefix, MinAttempts: minAttempts, MinFailing: time.Nanosecond})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// ledgerAt is ledger with a registry whose clock says now: the auto-disable
// is the registry's, stamped with its clock.
func ledgerAt(t *testing.T, rdb redis.UniversalClient, minAttempts int, now time.Time) *health.Ledger {
	t.Helper()
	l, err := health.New(rdb, health.Config{Prefix: prefix, MinAttempts: minAttempts, MinFailing: time.Nanosecond, Registry: reg(t, rdb, now)})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func reg(t *testing.T, rdb redis.UniversalClient, now time.Time) *registry.Store {
	t.Helper()
	s, err := registry.New(rdb, prefix, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// recordN records n outcomes of name at at and returns the decisions that
// disabled it.
func recordN(t *testing.T, ctx context.Context, l *health.Ledger, name string, ok bool, n int, at time.Time) (last health.Decision, disables int) {
	t.Helper()
	for range n {
		d, err := l.Record(ctx, name, outcome(ok), at)
		if err != nil {
			t.Fatal(err)
		}
		if d.Disabled {
			disables++
		}
		last = d
	}
	return last, disables
}

func TestThreshold(t *testing.T) {
	r := testenv.MustRedis(t, testenv.RedisOptions{})
	rdb := client(t, r)
	ctx := ctxT(t)
	for _, tc := range []struct {
		name               string
		min                int
		successes, failues int
		failuresFirst      bool
		wantDisabled       bool
		wantReason         string
	}{
		{name: "59 percent", min: 20, successes: 41, failues: 59},
		{name: "60 percent", min: 20, successes: 40, failues: 60, wantDisabled: true, wantReason: "60% of 100 uploads failed on the customer side over 0 min in 12 h"},
		{name: "61 percent of 140 at minimum", min: 140, successes: 54, failues: 86, failuresFirst: true, wantDisabled: true, wantReason: "61% of 140 uploads failed on the customer side over 0 min in 12 h"},
		{name: "below minimum", min: 20, successes: 0, failues: 19},
		{name: "at minimum", min: 20, successes: 8, failues: 12, wantDisabled: true, wantReason: "60% of 20 uploads failed on the customer side over 0 min in 12 h"},
		{name: "all successes", min: 1, successes: 30},
		{name: "default minimum", min: 0, successes: 0, failues: health.DefaultMinAttempts, wantDisabled: true, wantReason: "100% of 20 uploads failed on the customer side over 0 min in 12 h"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := ledgerAt(t, rdb, tc.min, t0.Add(time.Minute))
			name := "int-" + strings.ReplaceAll(tc.name, " ", "-")
			// Successes first: the failure share only grows, so the last
			// call is the first that can meet the threshold. Failures
			// first: below the minimum until the last call.
			first, second := true, false
			n1, n2 := tc.successes, tc.failues
			if tc.failuresFirst {
				first, second, n1, n2 = false, true, n2, n1
			}
			last, dis1 := recordN(t, ctx, l, name, first, n1, t0)
			if n2 > 0 {
				var dis2 int
				last, dis2 = recordN(t, ctx, l, name, second, n2, t0.Add(time.Minute))
				dis1 += dis2
			}
			dis2 := 0
			if dis1+dis2 != map[bool]int{false: 0, true: 1}[tc.wantDisabled] {
				t.Fatalf("disables = %d, want disabled %v", dis1+dis2, tc.wantDisabled)
			}
			if tc.wantDisabled != last.Disabled {
				t.Errorf("last decision disabled = %v, want %v", last.Disabled, tc.wantDisabled)
			}
			if last.Attempts != tc.successes+tc.failues || last.Failures != tc.failues {
				t.Errorf("decision counts = %d/%d, want %d/%d", last.Failures, last.Attempts, tc.failues, tc.successes+tc.failues)
			}
			st, err := reg(t, rdb, t0).Status(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			if !tc.wantDisabled {
				if st.State != registry.Enabled {
					t.Errorf("state = %+v, want enabled", st)
				}
				return
			}
			want := registry.Status{Name: name, State: registry.AutoDisabled, Reason: tc.wantReason,
				Since: t0.Add(time.Minute).Truncate(time.Millisecond), By: health.DefaultBy,
				Version: t0.Add(time.Minute).UnixMilli()}
			if st != want {
				t.Errorf("status = %+v, want %+v", st, want)
			}
			if last.Event.Reason != tc.wantReason || last.Event.State != registry.AutoDisabled || last.Event.Integration != name {
				t.Errorf("event = %+v", last.Event)
			}
		})
	}
}

// TestWindow: outcomes drop out after 12 h (minute granularity).
func TestWindow(t *testing.T) {
	r := testenv.MustRedis(t, testenv.RedisOptions{})
	rdb := client(t, r)
	ctx := ctxT(t)
	l := ledger(t, rdb, 10)
	for _, tc := range []struct {
		name         string
		later        time.Duration
		wantOld      bool // the old failures still count
		wantDisabled bool
	}{
		// 9 old failures + 6 successes = 60% of 15 when the failures count.
		{name: "11h59m later", later: 11*time.Hour + 59*time.Minute, wantOld: true, wantDisabled: true},
		{name: "12h later", later: 12 * time.Hour, wantOld: true, wantDisabled: true},
		{name: "12h1m later", later: 12*time.Hour + time.Minute},
		{name: "2 days later", later: 48 * time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := "w-" + strings.ReplaceAll(tc.name, " ", "-")
			if _, dis := recordN(t, ctx, l, name, false, 9, t0); dis != 0 {
				t.Fatal("9 attempts disabled below minimum 10")
			}
			now := t0.Add(tc.later)
			a, f, err := l.Ratio(ctx, name, now)
			if err != nil {
				t.Fatal(err)
			}
			if wantA := map[bool]int{true: 9}[tc.wantOld]; a != wantA || f != wantA {
				t.Errorf("ratio before = %d/%d, want %d/%d", f, a, wantA, wantA)
			}
			last, dis := recordN(t, ctx, l, name, true, 6, now)
			if (dis == 1) != tc.wantDisabled || dis > 1 {
				t.Errorf("disables = %d, want disabled %v (last %+v)", dis, tc.wantDisabled, last)
			}
			wantA, wantF := 6, 0
			if tc.wantOld {
				wantA, wantF = 15, 9
			}
			if last.Attempts != wantA || last.Failures != wantF {
				t.Errorf("decision = %d/%d, want %d/%d", last.Failures, last.Attempts, wantF, wantA)
			}
			if !tc.wantOld {
				// Old buckets are gone from Redis: only the new minute's
				// attempts field is left.
				fields, err := rdb.HKeys(ctx, l.Key(name)).Result()
				if err != nil {
					t.Fatal(err)
				}
				if len(fields) != 1 || !strings.HasPrefix(fields[0], "a") {
					t.Errorf("ledger fields = %v, want one attempts field", fields)
				}
			}
		})
	}
	// An outcome recorded with an old time does not count in a later
	// window.
	if _, err := l.Record(ctx, "stale", health.FailCustomer, t0.Add(-13*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if a, f, err := l.Ratio(ctx, "stale", t0); err != nil || a != 0 || f != 0 {
		t.Errorf("stale ratio = %d/%d, %v; want 0/0", f, a, err)
	}
}

// TestRace: replicas racing past the threshold record one disable and one
// event, readable through registry.
func TestRace(t *testing.T) {
	r := testenv.MustRedis(t, testenv.RedisOptions{})
	ctx := ctxT(t)
	const replicas = 8
	ls := make([]*health.Ledger, replicas)
	for i := range ls {
		ls[i] = ledgerAt(t, client(t, r), 10, t0.Add(time.Second))
	}
	if _, dis := recordN(t, ctx, ls[0], "acme", false, 9, t0); dis != 0 {
		t.Fatal("disabled below minimum")
	}
	var (
		mu  sync.Mutex
		won []health.Decision
		wg  sync.WaitGroup
	)
	at := t0.Add(time.Second)
	for _, l := range ls {
		wg.Go(func() {
			for range 5 {
				d, err := l.Record(ctx, "acme", health.FailCustomer, at)
				if err != nil {
					t.Error(err)
					return
				}
				if d.Disabled {
					mu.Lock()
					won = append(won, d)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if len(won) != 1 {
		t.Fatalf("%d disables, want 1", len(won))
	}
	s := reg(t, client(t, r), t0)
	evs, err := s.Events(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	// The ledger evaluates atomically, the registry disables atomically, but
	// not both in one step: the winner may have seen the 10th outcome or a
	// later one, so its reason counts 10 or more.
	var n int
	if _, err := fmt.Sscanf(won[0].Event.Reason, "100%% of %d uploads failed on the customer side over 0 min in 12 h", &n); err != nil || n < 10 {
		t.Errorf("winner's reason %q: want 100%% of 10 or more uploads", won[0].Event.Reason)
	}
	want := registry.Event{ID: won[0].Event.ID, Type: registry.EventType, Integration: "acme",
		State: registry.AutoDisabled, Reason: won[0].Event.Reason, By: health.DefaultBy,
		At: at.Truncate(time.Millisecond)}
	if len(evs) != 1 || evs[0] != want || won[0].Event != want {
		t.Errorf("events = %+v, decision event %+v; want one %+v", evs, won[0].Event, want)
	}
	st, err := s.Status(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if st.State != registry.AutoDisabled || st.Reason != want.Reason || !st.Since.Equal(want.At) || st.By != health.DefaultBy {
		t.Errorf("status = %+v", st)
	}
	a, f, err := ls[1].Ratio(ctx, "acme", at)
	if err != nil || a != 9+5*replicas || f != a {
		t.Errorf("ratio = %d/%d, %v; want all %d failed", f, a, err, 9+5*replicas)
	}
}

// TestOperatorStates: an operator's disable is never turned into
// auto-disabled; re-enabling and Reset start a fresh ledger.
func TestOperatorStates(t *testing.T) {
	r := testenv.MustRedis(t, testenv.RedisOptions{})
	rdb := client(t, r)
	ctx := ctxT(t)
	l := ledger(t, rdb, 5)
	s := reg(t, rdb, t0)
	if _, _, err := s.Disable(ctx, "op", "maintenance", "alice"); err != nil {
		t.Fatal(err)
	}
	if _, dis := recordN(t, ctx, l, "op", false, 10, t0); dis != 0 {
		t.Error("operator-disabled integration was auto-disabled")
	}
	st, _ := s.Status(ctx, "op")
	if st.State != registry.Disabled || st.Reason != "maintenance" {
		t.Errorf("status = %+v, want the operator's", st)
	}

	// Auto-disable, then re-enable and reset.
	if _, dis := recordN(t, ctx, l, "auto", false, 5, t0); dis != 1 {
		t.Fatalf("disables = %d, want 1", dis)
	}
	if _, dis := recordN(t, ctx, l, "auto", false, 5, t0); dis != 0 {
		t.Errorf("an auto-disabled integration was disabled again %d times", dis)
	}
	if _, _, err := s.Enable(ctx, "auto", "alice"); err != nil {
		t.Fatal(err)
	}
	if err := l.Reset(ctx, "auto"); err != nil {
		t.Fatal(err)
	}
	if a, f, err := l.Ratio(ctx, "auto", t0); err != nil || a != 0 || f != 0 {
		t.Errorf("ratio after reset = %d/%d, %v", f, a, err)
	}
	last, dis := recordN(t, ctx, l, "auto", false, 4, t0)
	if dis != 0 || last.Attempts != 4 {
		t.Errorf("after reset: %d disables, decision %+v; want none with 4 attempts", dis, last)
	}
	if _, dis := recordN(t, ctx, l, "auto", false, 1, t0); dis != 1 {
		t.Errorf("after reset the 5th failure disabled %d times, want 1", dis)
	}
	evs, err := s.Events(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range evs {
		got = append(got, e.Integration+"="+string(e.State)+" by "+e.By)
	}
	want := "op=disabled by alice,auto=auto-disabled by hitship-health,auto=enabled by alice,auto=auto-disabled by hitship-health"
	if strings.Join(got, ",") != want {
		t.Errorf("events = %v\nwant %s", got, want)
	}
}

// TestOutage: with Redis down outcomes are held in memory, nothing is
// decided and no error surfaces; Flush writes them back and decides.
func TestOutage(t *testing.T) {
	r := testenv.MustRedis(t, testenv.RedisOptions{})
	if r.Miniredis() {
		t.Skip("needs a real redis-server")
	}
	rdb := client(t, r)
	ctx := ctxT(t)
	b, err := health.NewBuffered(ledger(t, rdb, 10), 0)
	if err != nil {
		t.Fatal(err)
	}
	// Healthy: delegates.
	if d, err := b.Record(ctx, "acme", health.Success, t0); err != nil || d.Deferred || d.Attempts != 1 {
		t.Fatalf("healthy record = %+v, %v", d, err)
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		d, err := b.Record(ctx, "acme", health.FailCustomer, t0.Add(time.Duration(i)*time.Minute))
		if err != nil || !d.Deferred || d.Disabled {
			t.Fatalf("record %d during outage = %+v, %v; want deferred, no error", i, d, err)
		}
	}
	if _, err := b.Record(ctx, "other", health.FailCustomer, t0); err != nil {
		t.Fatal(err)
	}
	if !b.Degraded() || b.Pending() != 21 {
		t.Errorf("degraded %v pending %d, want true 21", b.Degraded(), b.Pending())
	}
	now := t0.Add(30 * time.Minute)
	if ds, err := b.Flush(ctx, now); err == nil || len(ds) != 0 {
		t.Errorf("flush while down = %+v, %v; want an error", ds, err)
	}
	if !b.Degraded() || b.Pending() != 21 {
		t.Errorf("after failed flush: degraded %v pending %d, want true 21", b.Degraded(), b.Pending())
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	// Redis is back but outcomes are pending: still no decision.
	if d, err := b.Record(ctx, "acme", health.FailCustomer, now); err != nil || !d.Deferred {
		t.Errorf("record with pending outcomes = %+v, %v; want deferred", d, err)
	}
	ds, err := b.Flush(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	if b.Degraded() || b.Pending() != 0 {
		t.Errorf("after flush: degraded %v pending %d", b.Degraded(), b.Pending())
	}
	byName := map[string]health.Decision{}
	for _, d := range ds {
		byName[d.Integration] = d
	}
	// Redis lost everything (no persistence): the ledger holds what was
	// buffered, 21 failures of acme.
	if d := byName["acme"]; len(ds) != 2 || !d.Disabled || d.Attempts != 21 || d.Failures != 21 ||
		d.Event.Reason != "100% of 21 uploads failed on the customer side over 30 min in 12 h" {
		t.Errorf("flush decisions = %+v", ds)
	}
	if d := byName["other"]; d.Disabled || d.Attempts != 1 {
		t.Errorf("other = %+v, want 1 attempt, not disabled (below minimum)", d)
	}
	if a, f, err := b.Ledger().Ratio(ctx, "acme", now); err != nil || a != 21 || f != 21 {
		t.Errorf("ratio = %d/%d, %v", f, a, err)
	}
	st, err := reg(t, rdb, now).Status(ctx, "acme")
	if err != nil || st.State != registry.AutoDisabled {
		t.Errorf("status = %+v, %v", st, err)
	}
	// Healthy again: Record goes straight to Redis.
	if d, err := b.Record(ctx, "other", health.Success, now); err != nil || d.Deferred || d.Attempts != 2 {
		t.Errorf("record after flush = %+v, %v", d, err)
	}
}

// TestBufferedBound: memory held during an outage is bounded; cells out of
// the window are forgotten first.
func TestBufferedBound(t *testing.T) {
	r := testenv.MustRedis(t, testenv.RedisOptions{})
	rdb := client(t, r)
	ctx := ctxT(t)
	b, err := health.NewBuffered(ledger(t, rdb, 10), 3)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := b.Record(ctx, fmt.Sprint("i", i), health.FailCustomer, t0); err != nil {
			t.Fatal(err)
		}
	}
	// Same cell: counted, no new memory.
	if _, err := b.Record(ctx, "i0", health.FailCustomer, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Record(ctx, "i3", health.FailCustomer, t0); err != nil {
		t.Fatal(err)
	}
	if b.Pending() != 3 || b.Dropped() != 1 {
		t.Errorf("pending %d dropped %d, want 3 1", b.Pending(), b.Dropped())
	}
	// 13 h later the old cells are out of the window and make room.
	if _, err := b.Record(ctx, "i3", health.FailCustomer, t0.Add(13*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if b.Pending() != 1 || b.Dropped() != 1 {
		t.Errorf("pending %d dropped %d, want 1 1", b.Pending(), b.Dropped())
	}
}

func TestInvalid(t *testing.T) {
	r := testenv.MustRedis(t, testenv.RedisOptions{})
	rdb := client(t, r)
	ctx := ctxT(t)
	for _, tc := range []struct {
		name string
		rdb  redis.UniversalClient
		cfg  health.Config
	}{
		{name: "nil client", cfg: health.Config{Prefix: prefix}},
		{name: "negative minimum", rdb: rdb, cfg: health.Config{Prefix: prefix, MinAttempts: -1}},
		{name: "invalid by", rdb: rdb, cfg: health.Config{Prefix: prefix, By: "\xff"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := health.New(tc.rdb, tc.cfg); !health.IsInvalid(err) {
				t.Errorf("New = %v, want invalid", err)
			}
		})
	}
	cl := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{r.Addr()}})
	defer cl.Close()
	if _, err := health.New(cl, health.Config{Prefix: "hitship:"}); !health.IsInvalid(err) {
		t.Errorf("cluster without hash tag: %v, want invalid", err)
	}
	if _, err := health.New(cl, health.Config{Prefix: "{hitship}:"}); err != nil {
		t.Errorf("cluster with hash tag: %v", err)
	}
	l := ledger(t, rdb, 1)
	b, err := health.NewBuffered(l, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"", "a\nb", strings.Repeat("x", 257), "\xff"} {
		_, err1 := l.Record(ctx, name, health.FailCustomer, t0)
		_, err2 := b.Record(ctx, name, health.FailCustomer, t0)
		_, _, err3 := l.Ratio(ctx, name, t0)
		err4 := l.Reset(ctx, name)
		for i, err := range []error{err1, err2, err3, err4} {
			if !health.IsInvalid(err) {
				t.Errorf("name %q call %d: %v, want invalid", name, i, err)
			}
		}
	}
	if b.Degraded() {
		t.Error("invalid names made the buffer degraded")
	}
	if _, err := health.NewBuffered(nil, 0); !health.IsInvalid(err) {
		t.Errorf("NewBuffered(nil) = %v", err)
	}
	if _, err := health.NewBuffered(l, -1); !health.IsInvalid(err) {
		t.Errorf("NewBuffered(-1) = %v", err)
	}
	var redisErr error = errors.New("x")
	if health.IsInvalid(redisErr) {
		t.Error("IsInvalid of an unrelated error")
	}
}

// TestFailingSpan (issue #11, defect 13): only failures on the customer's side
// count toward auto-disable, and only when they span at least MinFailing
// (default 1 h) from the first to the last: 30 s of trouble never switches a
// customer off, an hour of AccessDenied does, an hour of 503s does not.
// Defaults of the product: MinAttempts 20, MinFailing 1 h.
func TestFailingSpan(t *testing.T) {
	r := testenv.MustRedis(t, testenv.RedisOptions{})
	rdb := client(t, r)
	ctx := ctxT(t)
	l, err := health.New(rdb, health.Config{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	type step struct {
		o     health.Outcome
		n     int
		every time.Duration // between outcomes
	}
	for _, tc := range []struct {
		name         string
		steps        []step
		wantDisabled bool
		wantSpan     time.Duration
	}{
		{name: "30 s of trouble: 12 of 20 attempts fail", steps: []step{{health.Success, 8, time.Second}, {health.FailCustomer, 12, 2500 * time.Millisecond}},
			wantSpan: 27500 * time.Millisecond},
		{name: "an hour of AccessDenied", steps: []step{{health.FailCustomer, 21, 3 * time.Minute}},
			wantDisabled: true, wantSpan: time.Hour},
		{name: "59 min of AccessDenied", steps: []step{{health.FailCustomer, 60, time.Minute - time.Second}},
			wantSpan: 59 * (time.Minute - time.Second)},
		{name: "two hours of 503s", steps: []step{{health.FailProvider, 121, time.Minute}}},
		{name: "two hours of hitship's own failures", steps: []step{{health.FailHitship, 121, time.Minute}}},
		{name: "an hour, half AccessDenied and half 503", steps: []step{{health.FailCustomer, 30, 2 * time.Minute}, {health.FailProvider, 30, 2 * time.Minute}},
			wantSpan: 58 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := "span-" + strings.NewReplacer(" ", "-", ":", "", "'", "", ",", "").Replace(tc.name)
			at := t0
			var last health.Decision
			disables := 0
			for _, s := range tc.steps {
				for range s.n {
					d, err := l.Record(ctx, name, s.o, at)
					if err != nil {
						t.Fatal(err)
					}
					if d.Disabled {
						disables++
					}
					last = d
					at = at.Add(s.every)
				}
			}
			if want := map[bool]int{true: 1}[tc.wantDisabled]; disables != want {
				t.Fatalf("disabled %d times; want %d (last decision %+v)", disables, want, last)
			}
			if last.FailingSpan != tc.wantSpan {
				t.Errorf("failing span = %s; want %s", last.FailingSpan, tc.wantSpan)
			}
			st, err := reg(t, rdb, t0).Status(ctx, name)
			if err != nil {
				t.Fatal(err)
			}
			if (st.State == registry.AutoDisabled) != tc.wantDisabled {
				t.Errorf("state %s; want auto-disabled %v", st.State, tc.wantDisabled)
			}
			c, err := l.Counts(ctx, name, at)
			if err != nil || c.FailingSpan != tc.wantSpan || c.Attempts != last.Attempts || c.CustomerFailures != last.CustomerFailures {
				t.Errorf("Counts = %+v, %v; want the last decision's %+v", c, err, last)
			}
		})
	}
}

// TestFailingSpanBuffered: outcomes held in memory during an outage keep the
// times of their customer-side failures, so a flush decides on the same span.
func TestFailingSpanBuffered(t *testing.T) {
	r := testenv.MustRedis(t, testenv.RedisOptions{})
	if r.Miniredis() {
		t.Skip("needs a real redis-server")
	}
	rdb := client(t, r)
	ctx := ctxT(t)
	l, err := health.New(rdb, health.Config{Prefix: prefix, MinAttempts: 5, MinFailing: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	b, err := health.NewBuffered(l, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	// Two failures a second apart in one minute, and 11 minutes later three
	// more: the span is only known from the exact times.
	for _, at := range []time.Time{t0, t0.Add(time.Second), t0.Add(11 * time.Minute), t0.Add(11*time.Minute + time.Second), t0.Add(11*time.Minute + 2*time.Second)} {
		if d, err := b.Record(ctx, "buf", health.FailCustomer, at); err != nil || !d.Deferred {
			t.Fatalf("record = %+v, %v", d, err)
		}
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	ds, err := b.Flush(ctx, t0.Add(12*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 || !ds[0].Disabled || ds[0].FailingSpan != 11*time.Minute+2*time.Second || ds[0].CustomerFailures != 5 {
		t.Fatalf("flush decisions = %+v; want one disable after 11m2s of failures", ds)
	}
}
