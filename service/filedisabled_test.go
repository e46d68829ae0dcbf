package service_test

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
	"time"

	"hitship/config"
	"hitship/delivery/retry"
	"hitship/health"
	"hitship/service"
	"hitship/sink"
)

// TestFileDisabledStaysParked (issue #11, defect 8): the parked entries of an
// integration disabled in the config file stay parked: no attempt, no health
// outcome, position and last error unchanged. A reload that enables it makes
// them due at once and they are delivered. Before the fix the hold never
// applied (a disabled integration has no built target): every attempt failed
// with "no longer configured", moved the entry along the schedule towards a
// dead letter and counted as a failure.
func TestFileDisabledStaysParked(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	b := integ("b", 2, "b-b", "ndjson")
	b.Enabled = false
	e := newEnv(t, 1, b.Bucket, parkBucket)
	cfg := withParking(t, e, e.config(t, b))
	ctx := t.Context()
	st, err := service.NewParkingStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	q, err := service.NewRetryQueue(cfg, e.redis.Client())
	if err != nil {
		t.Fatal(err)
	}
	at := retry.Position{Cycle: 2, Attempt: 3}
	want := map[string][]byte{}
	for i := range 2 {
		key := fmt.Sprintf("hits/wallarm_hits_1687240800_0_%d.jsonl", 100*i)
		data := []byte(fmt.Sprintf("{\"request_id\":\"f%d\"}\n", i))
		pk := st.ParkedKey(b.Name, key)
		if err := st.Put(ctx, pk, sink.BytesBody(data), sink.PutOptions{ContentType: "application/x-ndjson"}); err != nil {
			t.Fatal(err)
		}
		if _, err := q.Enqueue(ctx, retry.Entry{ID: b.Name + "/" + key, Integration: b.Name, ParkedKey: pk, Key: key,
			Cycle: at.Cycle, Attempt: at.Attempt, Due: time.Now(), Records: 1, LastError: "NoSuchBucket"}); err != nil {
			t.Fatal(err)
		}
		want[b.Bucket+"/"+key] = data
	}
	svc, sreg := startService(t, "a", cfg)
	start := time.Now()
	waitFor(t, 30*time.Second, "the entries of the integration disabled in the file settled", func() bool {
		es, err := q.ListByIntegration(ctx, b.Name)
		if err != nil || len(es) != 2 {
			return false
		}
		for _, e := range es {
			if e.State != retry.StateScheduled || e.Due.Before(start.Add(30*time.Second)) {
				return false
			}
		}
		return true
	})
	es, err := q.ListByIntegration(ctx, b.Name)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.Position() != at || e.LastError != "NoSuchBucket" {
			t.Fatalf("entry %+v moved: want it held at %s with last error NoSuchBucket", e, at)
		}
	}
	for _, r := range []string{"ok", "error"} {
		if got := metricSum(t, sreg, "hitship_upload_attempts_total", "integration", b.Name, "result", r); got != 0 {
			t.Fatalf("%v %s attempts while disabled in the file; want none", got, r)
		}
	}
	if att, _, err := healthOf(t, e, cfg, b.Name); err != nil || att != 0 {
		t.Fatalf("health ledger: %d attempts, %v; want none", att, err)
	}
	if n := len(parkedKeys(t, e, "hitship/parked/")); n != 2 {
		t.Fatalf("parked objects = %d; want 2 still parked", n)
	}

	// The operator enables it in the file and reloads.
	next := *cfg
	next.Integrations = slices.Clone(cfg.Integrations)
	next.Integrations[0].Enabled = true
	if ps := next.Validate(config.WithKeyTemplate(func(s string) error { _, err := sink.ParseKeyTemplate(s); return err })); len(ps) > 0 {
		t.Fatal(config.AsError(ps))
	}
	if err := svc.Reload(&next); err != nil {
		t.Fatal(err)
	}
	// Well before the one-minute hold ends: the reload woke them.
	waitFor(t, 20*time.Second, "the parked objects delivered after the reload", func() bool {
		objs := objectBytes(t, e, b.Bucket)
		for k, d := range want {
			if !bytes.Equal(objs[k], d) {
				return false
			}
		}
		return len(parkedKeys(t, e, "")) == 0
	})
}

// healthOf returns the health ledger's attempts and failures of integration
// over the last 12 hours.
func healthOf(t *testing.T, e *env, cfg *config.Config, integration string) (attempts, failures int, err error) {
	t.Helper()
	l, err := health.New(e.redis.Client(), health.Config{Prefix: cfg.Redis.KeyPrefix})
	if err != nil {
		return 0, 0, err
	}
	return l.Ratio(t.Context(), integration, time.Now())
}
