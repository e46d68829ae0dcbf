package delivery_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"hitship/delivery"
	"hitship/delivery/retry"
	"hitship/health"
	"hitship/integrations/registry"
	"hitship/internal/testenv"
	"hitship/metrics"
	"hitship/sink"
	"hitship/state"
)

// fakeClock advances by every Sleep at once and records the waits.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	return nil
}

func (c *fakeClock) waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.sleeps)
}

// memPark is a parking bucket in memory.
type memPark struct{ *sink.MemStore }

func (memPark) ParkedKey(integration, key string) string {
	return "hitship/parked/" + integration + "/" + key
}

func storeErr() error {
	return &sink.StoreError{Op: "PutObject", Bucket: "mem", StatusCode: 503, Code: "SlowDown", Err: errors.New("injected")}
}

// failFirst fails the first n Puts.
func failFirst(n int) func(string) error {
	var mu sync.Mutex
	calls := 0
	return func(string) error {
		mu.Lock()
		defer mu.Unlock()
		calls++
		if calls <= n {
			return storeErr()
		}
		return nil
	}
}

var (
	s = time.Second
	// cycle1 are the waits of a failed cycle 1.
	cycle1 = []time.Duration{1 * s, 3 * s, 5 * s, 10 * s, 10 * s}
)

func TestParking(t *testing.T) {
	t0 := time.Date(2023, 6, 20, 6, 20, 42, 0, time.UTC)
	tests := []struct {
		name         string
		customerFail int // failing Puts (-1: all)
		parkFail     int
		fenceAfter   int // fence fails from this Fence call on (0: never)
		wantErr      func(error) bool
		wantWaits    []time.Duration
		wantParked   bool
		wantAttempts int // recorded in the health ledger
		wantFailures int
		failedBefore time.Duration // an earlier owner's first failure, this long ago (0: none)
	}{
		{name: "cycle 1 succeeds at its third attempt", customerFail: 2,
			wantWaits: []time.Duration{1 * s, 3 * s}, wantAttempts: 3, wantFailures: 2},
		{name: "cycle 1 fails: parked, due at once at 2/1", customerFail: -1,
			wantWaits: cycle1, wantParked: true, wantAttempts: 6, wantFailures: 6},
		{name: "parking fails twice: keeps trying, then parks", customerFail: -1, parkFail: 2,
			wantWaits: append(slices.Clone(cycle1), 1*s, 2*s), wantParked: true, wantAttempts: 6, wantFailures: 6},
		{name: "a new owner resumes cycle 1: all due, one attempt, parked", customerFail: -1, failedBefore: 20 * s,
			wantParked: true, wantAttempts: 1, wantFailures: 1},
		{name: "a new owner resumes cycle 1 at 1/4 and the bucket healed", failedBefore: 5 * s,
			wantAttempts: 1},
		{name: "a new owner resumes at 1/5, fails, parks after the last wait", customerFail: -1, failedBefore: 12 * s,
			wantWaits: []time.Duration{10 * s}, wantParked: true, wantAttempts: 2, wantFailures: 2},
		{name: "fenced during cycle 1: no parking", customerFail: -1, fenceAfter: 3,
			wantErr: state.IsFenced, wantWaits: []time.Duration{1 * s, 3 * s}, wantAttempts: 2, wantFailures: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := testenv.MustRedis(t, testenv.RedisOptions{})
			q, err := retry.NewQueue(r.Client(), retry.QueueConfig{Prefix: "test:"})
			if err != nil {
				t.Fatal(err)
			}
			l, err := health.New(r.Client(), health.Config{Prefix: "test:", MinAttempts: 1000})
			if err != nil {
				t.Fatal(err)
			}
			hb, err := health.NewBuffered(l, 0)
			if err != nil {
				t.Fatal(err)
			}
			clock := &fakeClock{now: t0}
			cust, _ := sink.NewMemStore()
			parkMem, _ := sink.NewMemStore()
			park := memPark{parkMem}
			if tc.customerFail < 0 {
				cust.SetFail(func(string) error { return storeErr() })
			} else {
				cust.SetFail(failFirst(tc.customerFail))
			}
			parkMem.SetFail(failFirst(tc.parkFail))
			reg := prometheus.NewRegistry()
			m := metrics.New(reg)
			d, err := delivery.NewInline(delivery.Config{}, delivery.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
				Metrics: m, Now: clock.Now, Health: hb, Parking: &delivery.Parking{Store: park, Queue: q, Clock: clock}})
			if err != nil {
				t.Fatal(err)
			}
			w := &world{reg: reg, m: m}
			if w.spool, err = sink.NewSpool(sink.SpoolConfig{Dir: t.TempDir(), MemoryBytes: 64 << 10, BufferMemoryBytes: 4 << 10}); err != nil {
				t.Fatal(err)
			}
			j, want := w.job(t, "b", cust, 20, true)
			if tc.failedBefore > 0 {
				if _, err := q.NoteInlineFailure(t.Context(), "b/"+j.Key, t0.Add(-tc.failedBefore)); err != nil {
					t.Fatal(err)
				}
			}
			fences := 0
			j.Fence = func(context.Context) error {
				fences++
				if tc.fenceAfter > 0 && fences >= tc.fenceAfter {
					return state.ErrFenced
				}
				return nil
			}
			res := newResult()
			d.Deliver(t.Context(), j, res.done)
			err = res.wait(t, 10*time.Second)
			switch {
			case tc.wantErr == nil && err != nil:
				t.Fatalf("done(%v); want nil", err)
			case tc.wantErr != nil && !tc.wantErr(err):
				t.Fatalf("done(%v); want a matching error", err)
			}
			if got := clock.waits(); !slices.Equal(got, tc.wantWaits) {
				t.Errorf("waits = %v; want %v", got, tc.wantWaits)
			}
			checkReleased(t, w.spool)
			pkey := park.ParkedKey("b", j.Key)
			obj, parked := parkMem.Get(pkey)
			if parked != tc.wantParked {
				t.Fatalf("parked = %v; want %v", parked, tc.wantParked)
			}
			entries, err := q.ListByIntegration(t.Context(), "b")
			if err != nil {
				t.Fatal(err)
			}
			if !tc.wantParked {
				if len(entries) != 0 {
					t.Errorf("retry entries = %+v; want none", entries)
				}
				if tc.wantErr == nil {
					if got, ok := cust.Get(j.Key); !ok || !bytes.Equal(got.Data, want) {
						t.Errorf("customer object = %q, %v; want the records", got.Data, ok)
					}
				}
			} else {
				if !bytes.Equal(obj.Data, want) || obj.ContentType != "application/json" {
					t.Errorf("parked object = %q (%s); want the records as application/json", obj.Data, obj.ContentType)
				}
				if len(entries) != 1 {
					t.Fatalf("retry entries = %+v; want one", entries)
				}
				e := entries[0]
				end := t0 // cycle 2 starts 0 s after parking
				for _, w := range clock.waits() {
					end = end.Add(w)
				}
				if e.ID != "b/"+j.Key || e.ParkedKey != pkey || e.Key != j.Key || e.Position() != retry.Requeued ||
					!e.Due.Equal(end) || e.LastError == "" || e.FirstOffset != j.FirstOffset || e.Records != 20 {
					t.Errorf("entry = %+v; want b/%s at 2/1 due %s (when parked) with the last error", e, j.Key, end)
				}
				// The object carries the entry's fields (retry.Scanner makes the
				// entry again from them if Redis loses it).
				want := e.Metadata()
				if !maps.Equal(obj.Metadata, want) || want[retry.MetaFirstOffset] != fmt.Sprint(j.FirstOffset) {
					t.Errorf("parked object's metadata = %v; want %v", obj.Metadata, want)
				}
			}
			att, fail, err := l.Ratio(t.Context(), "b", clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			if att != tc.wantAttempts || fail != tc.wantFailures {
				t.Errorf("ledger = %d attempts, %d failures; want %d, %d", att, fail, tc.wantAttempts, tc.wantFailures)
			}
			if res.calls.Load() != 1 {
				t.Errorf("done called %d times", res.calls.Load())
			}
			// Delivered or parked: the first-failure record is gone; stopped by
			// a fence: it stays for the next owner.
			_, kept, err := q.InlineFailure(t.Context(), "b/"+j.Key)
			if err != nil || kept != (tc.wantErr != nil) {
				t.Errorf("first-failure record kept = %v, %v; want %v", kept, err, tc.wantErr != nil)
			}
		})
	}
}

// TestShortTroubleDoesNotDisable (issue #11, defect 13): with the product's
// health settings (20 attempts, 60%, failures spanning 1 h), a customer whose
// bucket refuses every upload for the half minute of cycle 1 is not
// auto-disabled: its objects are parked and wait for the retry workers.
// Before the fix 12 failures in 20 attempts disabled it within about 30 s.
func TestShortTroubleDoesNotDisable(t *testing.T) {
	r := testenv.MustRedis(t, testenv.RedisOptions{})
	q, err := retry.NewQueue(r.Client(), retry.QueueConfig{Prefix: "test:"})
	if err != nil {
		t.Fatal(err)
	}
	l, err := health.New(r.Client(), health.Config{Prefix: "test:"}) // the product's defaults
	if err != nil {
		t.Fatal(err)
	}
	hb, err := health.NewBuffered(l, 0)
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{now: time.Date(2023, 6, 20, 6, 20, 42, 0, time.UTC)}
	cust, _ := sink.NewMemStore()
	cust.SetFail(func(string) error {
		return &sink.StoreError{Op: "PutObject", Bucket: "mem", StatusCode: 403, Code: "AccessDenied", Err: errors.New("injected")}
	})
	parkMem, _ := sink.NewMemStore()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	d, err := delivery.NewInline(delivery.Config{}, delivery.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Metrics: m, Now: clock.Now, Health: hb, Parking: &delivery.Parking{Store: memPark{parkMem}, Queue: q, Clock: clock}})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{reg: reg, m: m}
	if w.spool, err = sink.NewSpool(sink.SpoolConfig{Dir: t.TempDir(), MemoryBytes: 64 << 10, BufferMemoryBytes: 4 << 10}); err != nil {
		t.Fatal(err)
	}
	for n := range 4 {
		j, _ := w.job(t, "b", cust, 10+n, true)
		res := newResult()
		d.Deliver(t.Context(), j, res.done)
		if err := res.wait(t, 10*time.Second); err != nil {
			t.Fatalf("job %d: %v; want parked", n, err)
		}
	}
	c, err := l.Counts(t.Context(), "b", clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if c.Attempts != 24 || c.CustomerFailures != 24 {
		t.Fatalf("ledger = %+v; want 24 attempts, all failed on the customer's side", c)
	}
	st, err := registry.New(r.Client(), "test:", clock.Now)
	if err != nil {
		t.Fatal(err)
	}
	s, err := st.Status(t.Context(), "b")
	if err != nil || s.State != registry.Enabled {
		t.Fatalf("status after %s of failures = %+v, %v; want enabled", c.FailingSpan, s, err)
	}
	if es, err := q.ListByIntegration(t.Context(), "b"); err != nil || len(es) != 4 {
		t.Fatalf("parked entries = %d, %v; want 4", len(es), err)
	}
}
