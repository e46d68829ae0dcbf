package delivery_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"hitship/delivery"
	"hitship/integrations"
	"hitship/metrics"
	"hitship/sink"
	"hitship/state"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// world is one Inline delivery with its registry and spool.
type world struct {
	reg   *prometheus.Registry
	m     *metrics.Metrics
	spool *sink.Spool
	d     *delivery.Inline
}

// windowEnd is the end of the test window (Unix ms); now is 42 s after it, so a
// delivery's latency is exactly 42 s.
const windowEnd = int64(1687241400000)

func newWorld(t *testing.T, cfg delivery.Config) *world {
	t.Helper()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	// A small in-memory part per buffer so that the test objects spill to disk:
	// releasing them must remove their files too.
	sp, err := sink.NewSpool(sink.SpoolConfig{Dir: t.TempDir(), MemoryBytes: 64 << 10, BufferMemoryBytes: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	now := func() time.Time { return time.UnixMilli(windowEnd + 42000) }
	d, err := delivery.NewInline(cfg, delivery.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Metrics: m, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return &world{reg: reg, m: m, spool: sp, d: d}
}

// job returns a job of n records (JSON array) for the integration name writing to
// store, and the bytes its object must have.
func (w *world) job(t *testing.T, name string, store sink.Store, n int, ifNoneMatch bool) (*delivery.Job, []byte) {
	t.Helper()
	m := w.m
	m.Integration(name)
	buf := w.spool.NewBuffer(sink.FormatJSON)
	recs := make([][]byte, 0, n)
	for i := range n {
		r := []byte(fmt.Sprintf(`{"time":"1687241470","request_id":"%032d","ip":"127.0.0.1","uri":"/etc/passwd","pad":"%s"}`, i, strings.Repeat("x", 200)))
		if err := buf.Append(r); err != nil {
			t.Fatal(err)
		}
		recs = append(recs, r)
	}
	want := append(append([]byte("[\n"), bytes.Join(recs, []byte(",\n"))...), "\n]\n"...)
	j := &delivery.Job{
		Target:      &integrations.Target{Name: name, ClientID: 7, Format: sink.FormatJSON, Store: store, IfNoneMatch: ifNoneMatch},
		Topic:       "hits",
		Partition:   3,
		Key:         fmt.Sprintf("hits/wallarm_hits_1687240800_3_%d.json", 100+n),
		WindowStart: windowEnd - 600000,
		WindowEnd:   windowEnd,
		FirstOffset: int64(100 + n),
		Records:     n,
		Buffer:      buf,
		Fence:       func(context.Context) error { return nil },
	}
	return j, want
}

// result collects the calls of one job's done.
type result struct {
	calls atomic.Int32
	ch    chan error
}

func newResult() *result { return &result{ch: make(chan error, 4)} }

func (r *result) done(err error) {
	r.calls.Add(1)
	r.ch <- err
}

func (r *result) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case err := <-r.ch:
		return err
	case <-time.After(timeout):
		t.Fatalf("done not called within %s", timeout)
		return nil
	}
}

// counter reads one series of a counter vector.
func counter(cv *prometheus.CounterVec, labels ...string) float64 {
	return testutil.ToFloat64(cv.WithLabelValues(labels...))
}

// latencySum returns the sample count and sum of the delivery latency histogram.
func latency(t *testing.T, reg *prometheus.Registry, name string) (uint64, float64) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "hitship_delivery_latency_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "integration" && l.GetValue() == name {
					return m.GetHistogram().GetSampleCount(), m.GetHistogram().GetSampleSum()
				}
			}
		}
	}
	return 0, 0
}

// checkReleased asserts the spool holds nothing: the buffer was finished and the
// object released, memory and files freed.
func checkReleased(t *testing.T, sp *sink.Spool) {
	t.Helper()
	st := sp.Stats()
	if st.Buffers != 0 || st.Objects != 0 || st.Files != 0 || st.DiskBytes != 0 || st.MemoryBytes != 0 {
		t.Fatalf("spool not released after done: %+v", st)
	}
}

// failTimes makes the first n Puts fail with a 500 and records when each Put came.
type failTimes struct {
	mu    sync.Mutex
	n     int
	calls []time.Time
}

func (f *failTimes) fn(string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, time.Now())
	if len(f.calls) <= f.n {
		return &sink.StoreError{Op: "PutObject", Bucket: "mem", StatusCode: 500, Code: "InternalError", Err: errors.New("injected")}
	}
	return nil
}

func (f *failTimes) times() []time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Time(nil), f.calls...)
}

func TestInline(t *testing.T) {
	const records = 40
	tests := []struct {
		name        string
		failures    int  // Puts that fail before one succeeds; -1: all fail
		exists      bool // the object is already in the bucket and the job asks If-None-Match
		fenced      bool
		cancelAfter int // cancel ctx once this many Puts failed, during a one-hour backoff
		// want
		wantErr      func(error) bool
		wantPuts     int
		wantResult   string // objects written / hits delivered result label, "" none
		wantAttempts map[string]float64
	}{
		{
			name: "success on first try", failures: 0,
			wantPuts: 1, wantResult: metrics.ResultOK,
			wantAttempts: map[string]float64{metrics.ResultOK: 1, metrics.ResultError: 0},
		},
		{
			name: "fails three times then succeeds", failures: 3,
			wantPuts: 4, wantResult: metrics.ResultOK,
			wantAttempts: map[string]float64{metrics.ResultOK: 1, metrics.ResultError: 3},
		},
		{
			name: "412 counts as delivered", exists: true,
			wantPuts: 2 /* the test's own first write, then the refused one */, wantResult: metrics.ResultExists,
			wantAttempts: map[string]float64{metrics.ResultExists: 1, metrics.ResultOK: 0, metrics.ResultError: 0},
		},
		{
			name: "fenced: no Put at all", fenced: true,
			wantErr: state.IsFenced, wantPuts: 0, wantResult: metrics.ResultAborted,
			wantAttempts: map[string]float64{metrics.ResultOK: 0, metrics.ResultError: 0},
		},
		{
			name: "ctx cancelled while retrying", failures: -1, cancelAfter: 1,
			wantErr:  func(err error) bool { return errors.Is(err, context.Canceled) },
			wantPuts: 1, wantResult: metrics.ResultAborted,
			wantAttempts: map[string]float64{metrics.ResultOK: 0, metrics.ResultError: 1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := delivery.Config{Concurrency: 2, UploadTimeout: 5 * time.Second, RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond}
			if tt.cancelAfter > 0 {
				// Cancelled during the backoff: it must not wait it out.
				cfg.RetryMin, cfg.RetryMax = time.Hour, time.Hour
			}
			w := newWorld(t, cfg)
			store, err := sink.NewMemStore()
			if err != nil {
				t.Fatal(err)
			}
			j, want := w.job(t, "acme", store, records, tt.exists)
			if tt.exists {
				if err := store.Put(context.Background(), j.Key, sink.BytesBody(want), sink.PutOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			if tt.failures != 0 {
				n := tt.failures
				if n < 0 {
					n = 1 << 30
				}
				f := &failTimes{n: n}
				store.SetFail(f.fn)
			}
			if tt.fenced {
				j.Fence = func(context.Context) error { return fmt.Errorf("partition 3: %w", state.ErrFenced) }
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r := newResult()
			w.d.Deliver(ctx, j, r.done)
			if tt.cancelAfter > 0 {
				waitUntil(t, 5*time.Second, "the failed attempts", func() bool { return store.Puts() >= tt.cancelAfter })
				time.Sleep(20 * time.Millisecond) // in the backoff now; no further Put may come
				cancel()
			}
			err = r.wait(t, 10*time.Second)
			goleak.VerifyNone(t) // the delivery goroutine is gone: done cannot be called again
			if n := r.calls.Load(); n != 1 {
				t.Fatalf("done called %d times, want exactly once", n)
			}
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("done(%v), want nil", err)
			case tt.wantErr != nil && !tt.wantErr(err):
				t.Fatalf("done(%v): not the expected error", err)
			}
			if got := store.Puts(); got != tt.wantPuts {
				t.Errorf("Puts = %d, want %d", got, tt.wantPuts)
			}
			checkReleased(t, w.spool)

			for res, n := range tt.wantAttempts {
				if got := counter(w.m.UploadAttempts, "acme", res); got != n {
					t.Errorf("upload attempts{result=%s} = %v, want %v", res, got, n)
				}
			}
			for _, res := range []string{metrics.ResultOK, metrics.ResultExists, metrics.ResultAborted, metrics.ResultError} {
				wantObjs, wantHits := 0.0, 0.0
				if res == tt.wantResult {
					wantObjs = 1
					if res != metrics.ResultAborted {
						wantHits = records
					}
				}
				if got := counter(w.m.ObjectsWritten, "acme", res); got != wantObjs {
					t.Errorf("objects written{result=%s} = %v, want %v", res, got, wantObjs)
				}
				if got := counter(w.m.HitsDelivered, "acme", res); got != wantHits {
					t.Errorf("hits delivered{result=%s} = %v, want %v", res, got, wantHits)
				}
			}
			delivered := tt.wantResult == metrics.ResultOK || tt.wantResult == metrics.ResultExists
			wantBytes, wantLat := 0.0, uint64(0)
			if delivered {
				wantBytes, wantLat = float64(len(want)), 1
			}
			if got := testutil.ToFloat64(w.m.UploadBytes.WithLabelValues("acme")); got != wantBytes {
				t.Errorf("upload bytes = %v, want %v", got, wantBytes)
			}
			if n, sum := latency(t, w.reg, "acme"); n != wantLat || (n == 1 && sum != 42) {
				t.Errorf("delivery latency: %d samples, sum %v; want %d sample(s) of 42 s", n, sum, wantLat)
			}
			if delivered {
				o, ok := store.Get(j.Key)
				if !ok {
					t.Fatalf("no object under %s", j.Key)
				}
				if !bytes.Equal(o.Data, want) {
					t.Fatalf("object bytes:\n got %q\nwant %q", o.Data, want)
				}
				if !tt.exists && o.ContentType != "application/json" {
					t.Errorf("content type %q", o.ContentType)
				}
			} else if keys := store.Keys(); len(keys) != 0 {
				t.Fatalf("objects written although not delivered: %v", keys)
			}
		})
	}
}

// TestInlineBackoffCapped: the backoff doubles from RetryMin and stops at RetryMax.
func TestInlineBackoffCapped(t *testing.T) {
	const (
		fails    = 8
		retryMin = 5 * time.Millisecond
		retryMax = 20 * time.Millisecond
	)
	w := newWorld(t, delivery.Config{Concurrency: 1, UploadTimeout: 5 * time.Second, RetryMin: retryMin, RetryMax: retryMax})
	store, err := sink.NewMemStore()
	if err != nil {
		t.Fatal(err)
	}
	f := &failTimes{n: fails}
	store.SetFail(f.fn)
	j, _ := w.job(t, "acme", store, 3, false)
	r := newResult()
	w.d.Deliver(context.Background(), j, r.done)
	if err := r.wait(t, 10*time.Second); err != nil {
		t.Fatalf("done(%v), want nil", err)
	}
	calls := f.times()
	if len(calls) != fails+1 {
		t.Fatalf("%d Puts, want %d", len(calls), fails+1)
	}
	// Uncapped, the gaps would be 5, 10, 20, 40, 80, 160, 320, 640 ms.
	wantMin := retryMin
	for i := 1; i < len(calls); i++ {
		gap := calls[i].Sub(calls[i-1])
		if gap < wantMin {
			t.Errorf("gap before attempt %d = %s, want at least %s", i+1, gap, wantMin)
		}
		if gap > retryMax+250*time.Millisecond {
			t.Errorf("gap before attempt %d = %s: backoff not capped at %s", i+1, gap, retryMax)
		}
		wantMin = min(2*wantMin, retryMax)
	}
	if got := counter(w.m.UploadAttempts, "acme", metrics.ResultError); got != fails {
		t.Errorf("error attempts = %v, want %d", got, fails)
	}
	checkReleased(t, w.spool)
}

// blockingStore blocks every Put until released and tracks how many are in
// flight at once.
type blockingStore struct {
	mu       sync.Mutex
	inflight int
	peak     int
	started  chan string
	release  chan struct{}
	stored   map[string]bool
}

func newBlockingStore() *blockingStore {
	return &blockingStore{started: make(chan string, 100), release: make(chan struct{}), stored: map[string]bool{}}
}

func (b *blockingStore) Put(ctx context.Context, key string, _ sink.Body, _ sink.PutOptions) error {
	b.mu.Lock()
	b.inflight++
	b.peak = max(b.peak, b.inflight)
	b.mu.Unlock()
	b.started <- key
	defer func() {
		b.mu.Lock()
		b.inflight--
		b.mu.Unlock()
	}()
	select {
	case <-b.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	b.mu.Lock()
	b.stored[key] = true
	b.mu.Unlock()
	return nil
}

func (b *blockingStore) inFlight() (now, peak int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.inflight, b.peak
}

// TestInlineConcurrencyLimit: at most Concurrency Puts run at once; the others wait
// for a slot and all of them are delivered.
func TestInlineConcurrencyLimit(t *testing.T) {
	const conc, jobs = 2, 6
	w := newWorld(t, delivery.Config{Concurrency: conc, UploadTimeout: 10 * time.Second, RetryMin: 5 * time.Millisecond, RetryMax: 20 * time.Millisecond})
	store := newBlockingStore()
	results := make([]*result, jobs)
	for i := range jobs {
		j, _ := w.job(t, "acme", store, i+1, false)
		results[i] = newResult()
		w.d.Deliver(context.Background(), j, results[i].done)
	}
	for range conc {
		select {
		case <-store.started:
		case <-time.After(5 * time.Second):
			t.Fatal("the first uploads did not start")
		}
	}
	time.Sleep(100 * time.Millisecond) // a third Put, if the limit leaked, would start now
	if now, peak := store.inFlight(); now != conc || peak != conc {
		t.Fatalf("in flight %d (peak %d), want %d", now, peak, conc)
	}
	// Let them through one at a time: the limit holds all along.
	for i := range jobs {
		store.release <- struct{}{}
		if i+conc < jobs {
			select {
			case <-store.started:
			case <-time.After(5 * time.Second):
				t.Fatalf("upload %d did not start after a slot was freed", i+conc+1)
			}
		}
	}
	for i, r := range results {
		if err := r.wait(t, 5*time.Second); err != nil {
			t.Fatalf("job %d: done(%v)", i, err)
		}
	}
	if _, peak := store.inFlight(); peak != conc {
		t.Fatalf("peak in flight %d, want %d", peak, conc)
	}
	if got := counter(w.m.ObjectsWritten, "acme", metrics.ResultOK); got != jobs {
		t.Fatalf("objects written ok = %v, want %d", got, jobs)
	}
	checkReleased(t, w.spool)
}

// TestInlineBackoffFreesSlot: with one upload slot, an integration whose bucket
// keeps failing does not hold the slot while it waits to retry; another
// integration's object is delivered meanwhile, and the failing one still holds its
// job (done not called) until the context ends.
func TestInlineBackoffFreesSlot(t *testing.T) {
	w := newWorld(t, delivery.Config{Concurrency: 1, UploadTimeout: 5 * time.Second, RetryMin: time.Hour, RetryMax: time.Hour})
	bad, err := sink.NewMemStore()
	if err != nil {
		t.Fatal(err)
	}
	bad.SetFail(func(string) error {
		return &sink.StoreError{Op: "PutObject", Bucket: "bad", StatusCode: 503, Code: "SlowDown", Err: errors.New("injected")}
	})
	good, err := sink.NewMemStore()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	jb, _ := w.job(t, "bad", bad, 5, false)
	rb := newResult()
	w.d.Deliver(ctx, jb, rb.done)
	waitUntil(t, 5*time.Second, "the failing integration's first attempt", func() bool { return bad.Puts() == 1 })

	jg, want := w.job(t, "good", good, 7, false)
	rg := newResult()
	w.d.Deliver(ctx, jg, rg.done)
	if err := rg.wait(t, 5*time.Second); err != nil {
		t.Fatalf("good: done(%v)", err)
	}
	if o, ok := good.Get(jg.Key); !ok || !bytes.Equal(o.Data, want) {
		t.Fatalf("good object missing or wrong")
	}
	select {
	case err := <-rb.ch:
		t.Fatalf("the failing job finished (%v) while its bucket still fails", err)
	default:
	}
	cancel()
	if err := rb.wait(t, 5*time.Second); !errors.Is(err, context.Canceled) {
		t.Fatalf("bad: done(%v), want context.Canceled", err)
	}
	if got := counter(w.m.ObjectsWritten, "bad", metrics.ResultAborted); got != 1 {
		t.Errorf("bad: objects aborted = %v, want 1", got)
	}
	if got := counter(w.m.ObjectsWritten, "good", metrics.ResultOK); got != 1 {
		t.Errorf("good: objects ok = %v, want 1", got)
	}
	checkReleased(t, w.spool)
}

// TestInlineBoundedGoroutines: thousands of closed buffers handed over at once
// (a window end with many tenants) wait in the queue, not in a goroutine each:
// the delivery runs at most Concurrency goroutines, and every job is delivered.
func TestInlineBoundedGoroutines(t *testing.T) {
	const conc, jobs = 4, 2000
	w := newWorld(t, delivery.Config{Concurrency: conc, UploadTimeout: 10 * time.Second})
	store := newBlockingStore()
	before := runtime.NumGoroutine()
	results := make([]*result, jobs)
	for i := range jobs {
		j, _ := w.job(t, "acme", store, 1, false)
		results[i] = newResult()
		w.d.Deliver(context.Background(), j, results[i].done)
	}
	for range conc {
		<-store.started
	}
	if extra := runtime.NumGoroutine() - before; extra > conc {
		t.Fatalf("%d jobs queued: %d more goroutines, want at most %d", jobs, extra, conc)
	}
	go func() {
		for range jobs {
			store.release <- struct{}{}
		}
	}()
	go func() {
		for range jobs - conc {
			<-store.started
		}
	}()
	for i, r := range results {
		if err := r.wait(t, 10*time.Second); err != nil {
			t.Fatalf("job %d: done(%v)", i, err)
		}
	}
	if _, peak := store.inFlight(); peak != conc {
		t.Fatalf("peak in flight %d, want %d", peak, conc)
	}
	if got := counter(w.m.ObjectsWritten, "acme", metrics.ResultOK); got != jobs {
		t.Fatalf("objects written ok = %v, want %d", got, jobs)
	}
	waitUntil(t, 5*time.Second, "the runners to stop", func() bool { return runtime.NumGoroutine() <= before })
	checkReleased(t, w.spool)
}

// TestInlineQueuedJobCancelled: a job still queued when its generation ends is
// not uploaded; its buffer is freed and done gets the context's error.
func TestInlineQueuedJobCancelled(t *testing.T) {
	w := newWorld(t, delivery.Config{Concurrency: 1, UploadTimeout: 10 * time.Second})
	store := newBlockingStore()
	j1, _ := w.job(t, "acme", store, 1, false)
	r1 := newResult()
	w.d.Deliver(context.Background(), j1, r1.done)
	<-store.started // the only runner is busy
	ctx, cancel := context.WithCancel(context.Background())
	j2, _ := w.job(t, "acme", store, 3, false)
	r2 := newResult()
	w.d.Deliver(ctx, j2, r2.done)
	cancel()
	store.release <- struct{}{}
	if err := r1.wait(t, 5*time.Second); err != nil {
		t.Fatalf("first job: done(%v)", err)
	}
	if err := r2.wait(t, 5*time.Second); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled job: done(%v), want context.Canceled", err)
	}
	if _, peak := store.inFlight(); peak != 1 {
		t.Fatalf("peak in flight %d: the cancelled job was uploaded", peak)
	}
	if got := counter(w.m.ObjectsWritten, "acme", metrics.ResultAborted); got != 1 {
		t.Errorf("objects aborted = %v, want 1", got)
	}
	checkReleased(t, w.spool)
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestAttemptTimeoutGrowsWithSize(t *testing.T) {
	if got := delivery.AttemptTimeout(time.Minute, 0); got != time.Minute {
		t.Errorf("empty: %v", got)
	}
	if got := delivery.AttemptTimeout(time.Minute, 2<<30); got != time.Minute+512*time.Second {
		t.Errorf("2 GiB: %v, want 60 s + 512 s", got)
	}
}
