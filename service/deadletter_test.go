package service_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"hitship/config"
	"hitship/delivery/retry"
	"hitship/integrations/registry"
	"hitship/service"
	"hitship/sink"
)

// commandFault fails the next n Redis commands named name before they reach
// the server: a fault injected around the real Redis.
type commandFault struct {
	mu   sync.Mutex
	name string
	n    int
}

func (f *commandFault) DialHook(next redis.DialHook) redis.DialHook { return next }

func (f *commandFault) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (f *commandFault) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		f.mu.Lock()
		hit := f.n > 0 && strings.EqualFold(cmd.Name(), f.name)
		if hit {
			f.n--
		}
		f.mu.Unlock()
		if hit {
			err := errors.New("injected: " + f.name + " not run")
			cmd.SetErr(err)
			return err
		}
		return next(ctx, cmd)
	}
}

func (f *commandFault) left() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n
}

// startServiceRedis is startService with the given Redis client.
func startServiceRedis(t *testing.T, name string, cfg *config.Config, rdb redis.UniversalClient) (*service.Service, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})).With("member", name)
	svc, err := service.New(cfg, service.Deps{Logger: log, Registry: reg, Redis: rdb})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("%s: %v", name, err)
		}
	})
	return svc, reg
}

// parkEntry writes data as a parked object of integration in and enqueues its
// retry entry at p, due now; with noObject the entry is enqueued without it.
func parkEntry(t *testing.T, cfg *config.Config, e *env, in, key string, data []byte, p retry.Position, noObject bool) (retry.Entry, *retry.Queue) {
	t.Helper()
	ctx := t.Context()
	st, err := service.NewParkingStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	q, err := service.NewRetryQueue(cfg, e.redis.Client())
	if err != nil {
		t.Fatal(err)
	}
	pk := st.ParkedKey(in, key)
	if !noObject {
		if err := st.Put(ctx, pk, sink.BytesBody(data), sink.PutOptions{ContentType: "application/json"}); err != nil {
			t.Fatal(err)
		}
	}
	en := retry.Entry{ID: in + "/" + key, Integration: in, ParkedKey: pk, Key: key,
		Cycle: p.Cycle, Attempt: p.Attempt, Due: time.Now(), Records: 1}
	if _, err := q.Enqueue(ctx, en); err != nil {
		t.Fatal(err)
	}
	return en, q
}

// deadLetterEvents counts the dead_letter events of integration.
func deadLetterEvents(t *testing.T, e *env, cfg *config.Config, integration string) int {
	t.Helper()
	reg, err := registry.New(e.redis.Client(), cfg.Redis.KeyPrefix, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := reg.Events(t.Context(), 100)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, ev := range evs {
		if ev.Type == service.DeadLetterEvent && ev.Integration == integration {
			n++
		}
	}
	return n
}

// waitSettled waits until the queue holds no scheduled or leased entry.
func waitSettled(t *testing.T, q *retry.Queue, what string) retry.Stats {
	t.Helper()
	var st retry.Stats
	waitFor(t, 45*time.Second, what, func() bool {
		var err error
		st, err = q.Stats(context.Background(), time.Now())
		return err == nil && st.Due == 0 && st.Scheduled == 0 && st.Leased == 0
	})
	return st
}

// TestInterruptedDeadLetter (issue #11, defect 3): the dead-letter event
// cannot be written after the last attempt failed (an XADD error, standing
// for a crash, a timeout or a lost lease at that point). The entry must end as
// a dead letter whose object is kept, with no further attempt; before the fix
// the object had already been moved, and the next holder found the parked copy
// gone and counted the entry as delivered: the records were in neither bucket
// nor the dead letters.
func TestInterruptedDeadLetter(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	b := integ("b", 2, "b-b", "json")
	e := newEnv(t, 1, b.Bucket, parkBucket)
	base := e.config(t, b)
	base.Delivery.UploadTimeout = time.Second // the lease: 2 s
	cfg := withParking(t, e, base)
	e.s3.FailBucket(b.Bucket, 403)
	key := "hits/wallarm_hits_1687240800_0_42.json"
	data := []byte("[\n{\"request_id\":\"x\"}\n]\n")
	_, q := parkEntry(t, cfg, e, b.Name, key, data, retry.Last, false)

	fault := &commandFault{name: "xadd", n: 1}
	rdb := redis.NewClient(&redis.Options{Addr: e.redis.Addr()})
	rdb.AddHook(fault)
	t.Cleanup(func() { rdb.Close() })
	_, sreg := startServiceRedis(t, "a", cfg, rdb)

	st := waitSettled(t, q, "the entry settled")
	if fault.left() != 0 {
		t.Fatal("the XADD fault never fired")
	}
	if st.Dead != 1 {
		t.Fatalf("queue = %+v; want the entry as a dead letter (it was taken for delivered)", st)
	}
	st2, err := service.NewParkingStore(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	dead, err := q.DeadLetters(t.Context(), "", time.Time{})
	if err != nil || len(dead) != 1 || dead[0].ParkedKey != st2.DeadKey(b.Name, key) {
		t.Fatalf("dead letters = %+v, %v; want one under %s", dead, err, st2.DeadKey(b.Name, key))
	}
	waitFor(t, 10*time.Second, "only the dead copy in the parking bucket", func() bool {
		got := parkedKeys(t, e, "")
		return len(got) == 1 && got[0] == st2.DeadKey(b.Name, key)
	})
	if got := metricSum(t, sreg, "hitship_upload_attempts_total", "integration", b.Name, "result", "error"); got != 1 {
		t.Errorf("%v failed attempts; want 1 (finishing a dead-lettering makes no attempt)", got)
	}
	if n := deadLetterEvents(t, e, cfg, b.Name); n != 1 {
		t.Errorf("%d dead_letter events; want 1", n)
	}
}

// TestParkedObjectMissing (issue #11, defect 3): an entry whose parked object
// is gone, with no dead-letter copy either, is never counted as delivered: it
// becomes a dead letter with reason "parked object missing", an event and a
// metric. Before the fix the worker completed it silently.
func TestParkedObjectMissing(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	b := integ("b", 2, "b-b", "json")
	e := newEnv(t, 1, b.Bucket, parkBucket)
	cfg := withParking(t, e, e.config(t, b))
	key := "hits/wallarm_hits_1687240800_0_7.json"
	_, q := parkEntry(t, cfg, e, b.Name, key, nil, retry.Position{Cycle: 2, Attempt: 1}, true)
	_, sreg := startService(t, "a", cfg)

	st := waitSettled(t, q, "the entry settled")
	if st.Dead != 1 {
		t.Fatalf("queue = %+v; want the entry as a dead letter (it was taken for delivered)", st)
	}
	dead, err := q.DeadLetters(t.Context(), b.Name, time.Time{})
	if err != nil || len(dead) != 1 || dead[0].DeadReason != service.MissingReason {
		t.Fatalf("dead letters = %+v, %v; want one with reason %q", dead, err, service.MissingReason)
	}
	if got := metricSum(t, sreg, "hitship_parked_objects_missing_total", "integration", b.Name); got != 1 {
		t.Errorf("hitship_parked_objects_missing_total = %v; want 1", got)
	}
	for _, r := range []string{"ok", "exists"} {
		if got := metricSum(t, sreg, "hitship_objects_written_total", "integration", b.Name, "result", r); got != 0 {
			t.Errorf("%v objects written (%s); want none", got, r)
		}
	}
	if n := deadLetterEvents(t, e, cfg, b.Name); n != 1 {
		t.Errorf("%d dead_letter events; want 1", n)
	}
}
