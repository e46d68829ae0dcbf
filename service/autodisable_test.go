package service_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"hitship/config"
	"hitship/delivery/retry"
	"hitship/integrations/registry"
	"hitship/service"
)

// TestAutoDisable runs the health ledger with the product's minimum (20
// attempts, 60% on the customer's side) and a failing span of 5 s end to
// end: integration B's bucket refuses everything (AccessDenied), so within
// its objects' retry cycle 1 B is auto-disabled (one event), the gauge says so,
// its objects are parked and stay parked, and B's later records are skipped
// and counted. A, sharing the partitions, is unaffected. The operator fixes
// the bucket and enables B through the admin API: the ledger is reset, the
// parked objects are delivered at once, and the records skipped while B was
// disabled stay skipped (by design: disabled means not delivered).
func TestAutoDisable(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	const token = "admin-token-for-tests-0004"
	t.Setenv("HITSHIP_TEST_ADMIN_TOKEN", token)
	const parts = 3
	a := integ("a", 1, "b-a", "ndjson")
	b := integ("b", 2, "b-b", "json")
	ins := []config.Integration{a, b}
	e := newEnv(t, parts, a.Bucket, b.Bucket, parkBucket)
	base := e.config(t, ins...)
	base.Delivery.HealthMinAttempts = 0 // the product's default: 20
	// B's customer-side failures must span 5 s (the product's 1 h is
	// TestShortTroubleDoesNotDisable's and health's TestFailingSpan's).
	base.Delivery.HealthMinFailing = 5 * time.Second
	// Windows near the wall clock: after the first batch the partitions go idle
	// and their watermarks follow the clock, so a second batch with old event
	// times would wait in late buffers for a 10-minute boundary.
	base.Window.Size, base.Window.Grace, base.Window.IdleTimeout = 10*time.Second, time.Second, time.Second
	base.HTTP.AdminTokenEnv = "HITSHIP_TEST_ADMIN_TOKEN"
	cfg := withParking(t, e, base)
	e.s3.FailBucket(b.Bucket, 403)
	ctx := t.Context()

	first := produceHitsAt(t, e, 51, nowHits(600, []int64{1, 2}, parts, 51))
	svc, sreg := startService(t, "a", cfg)
	reg, err := registry.New(e.redis.Client(), cfg.Redis.KeyPrefix, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "B auto-disabled", func() bool {
		st, err := reg.Status(ctx, b.Name)
		return err == nil && st.State == registry.AutoDisabled
	})
	waitFor(t, 10*time.Second, "the auto-disabled gauge", func() bool {
		return metricSum(t, sreg, "hitship_integration_auto_disabled", "integration", b.Name) == 1 &&
			metricSum(t, sreg, "hitship_integration_enabled", "integration", b.Name) == 0 &&
			metricSum(t, sreg, "hitship_integration_enabled", "integration", a.Name) == 1
	})
	// Cycle 1 ends (~29 s), B's objects are parked, and the offsets go on.
	waitFor(t, 60*time.Second, "A delivered and offsets committed to the end", func() bool {
		return allDelivered(t, e, first, a) && e.committedToEnd(t, cfg.Kafka.Group)
	})
	q, err := service.NewRetryQueue(cfg, e.redis.Client())
	if err != nil {
		t.Fatal(err)
	}
	parked, err := q.ListByIntegration(ctx, b.Name)
	if err != nil || len(parked) == 0 {
		t.Fatalf("parked entries of B: %d, %v; want some", len(parked), err)
	}
	// Records read from now on are skipped, not buffered.
	skipped := metricSum(t, sreg, "hitship_records_skipped_total", "reason", "disabled")
	second := produceHitsAt(t, e, 52, nowHits(300, []int64{1, 2}, parts, 52))
	waitFor(t, 60*time.Second, "the second batch read and A's part delivered", func() bool {
		return allDelivered(t, e, append(slices.Clone(first), second...), a) && e.committedToEnd(t, cfg.Kafka.Group)
	})
	if got := metricSum(t, sreg, "hitship_records_skipped_total", "reason", "disabled") - skipped; got != 150 {
		t.Fatalf("%v records skipped as disabled; want B's 150", got)
	}
	// Parked entries stay parked while B is disabled: no further attempt.
	attempts := metricSum(t, sreg, "hitship_upload_attempts_total", "integration", b.Name, "result", "error")
	time.Sleep(3 * time.Second)
	if got := metricSum(t, sreg, "hitship_upload_attempts_total", "integration", b.Name, "result", "error"); got != attempts {
		t.Fatalf("B attempted %v more uploads while auto-disabled", got-attempts)
	}
	if objs := objectBytes(t, e, b.Bucket); len(objs) != 0 {
		t.Fatalf("B's refusing bucket holds %d objects", len(objs))
	}
	evs, err := reg.Events(ctx, 20)
	if err != nil {
		t.Fatal(err)
	}
	var states []string
	for _, ev := range evs {
		if ev.Integration == b.Name {
			states = append(states, string(ev.State))
		}
	}
	if strings.Join(states, ",") != string(registry.AutoDisabled) {
		t.Fatalf("events for B: %v; want one auto-disabled", states)
	}

	// The customer fixed the bucket; the operator enables B.
	e.s3.HealBucket(b.Bucket)
	enableViaAdmin(t, svc, token, b.Name)
	waitFor(t, 30*time.Second, "B's parked objects delivered after enable", func() bool {
		return allDelivered(t, e, first, b) && len(parkedKeys(t, e, "")) == 0
	})
	if st, err := q.Stats(context.Background(), time.Now()); err != nil || st != (retry.Stats{}) {
		t.Fatalf("retry queue after enable: %+v, %v; want empty", st, err)
	}
	// Every hit of the first batch exactly once in its integrations; of the
	// second, A's only.
	var secondA []sent
	for _, h := range second {
		if h.client == a.ClientID {
			secondA = append(secondA, h)
		}
	}
	checkExactlyOnce(t, e, append(first, secondA...), ins)
}
