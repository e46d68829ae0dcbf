package service_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"hitship/config"
	"hitship/integrations/registry"
	"hitship/service"
)

// runService is startService with a stop function (idempotent; the test's
// cleanup calls it too). Replicas need configs with spool directories of
// their own (e.config gives each a new one).
func runService(t *testing.T, name string, cfg *config.Config) (*service.Service, *prometheus.Registry, func()) {
	t.Helper()
	return runServiceLog(t, name, cfg, slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// runServiceLog is runService logging to h.
func runServiceLog(t *testing.T, name string, cfg *config.Config, h slog.Handler) (*service.Service, *prometheus.Registry, func()) {
	t.Helper()
	reg := prometheus.NewRegistry()
	log := slog.New(h).With("member", name)
	svc, err := service.New(cfg, service.Deps{Logger: log, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("%s: %v", name, err)
			}
		})
	}
	t.Cleanup(stop)
	return svc, reg, stop
}

// postAdmin sends an admin API call to svc and returns the status code.
func postAdmin(t *testing.T, svc *service.Service, token, method, path, body string) int {
	t.Helper()
	api := httptest.NewServer(svc.Handler())
	defer api.Close()
	req, _ := http.NewRequest(method, api.URL+path, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// topicStates reads the integrations topic back: the last state of every
// integration it holds.
func topicStates(t *testing.T, e *env, topic string) map[string]registry.State {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	msgs, err := e.kafka.ReadAll(ctx, topic)
	if err != nil {
		return nil // not there (yet)
	}
	out := map[string]registry.State{}
	for _, m := range msgs {
		name, ok := strings.CutPrefix(string(m.Key), registry.DurableKeyPrefix)
		if !ok {
			continue
		}
		if m.Value == nil {
			delete(out, name)
			continue
		}
		var st registry.Status
		if json.Unmarshal(m.Value, &st) == nil {
			out[name] = st.State
		}
	}
	return out
}

// TestRedisDataLossKeepsIntegrationsOff: integration a is disabled through
// the admin API and b auto-disabled in Redis alone (as the health ledger's
// Lua script did, or a replica that died before writing the topic). A
// FLUSHALL re-enabled both before (the Redis hash was the only copy); now
// both replicas keep them off, and a replica started after another flush,
// with no other replica running, skips their records.
func TestRedisDataLossKeepsIntegrationsOff(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	const token = "admin-token-for-tests-0011"
	t.Setenv("HITSHIP_TEST_ADMIN_TOKEN", token)
	a, b := integ("a", 1, "b-a", "ndjson"), integ("b", 2, "b-b", "ndjson")
	e := newEnv(t, 2, a.Bucket, b.Bucket)
	mk := func() *config.Config {
		c := *e.config(t, a, b)
		c.Window.Size, c.Window.Grace, c.Window.IdleTimeout = 10*time.Second, time.Second, time.Second
		c.HTTP.AdminTokenEnv = "HITSHIP_TEST_ADMIN_TOKEN"
		if ps := c.Validate(); len(ps) > 0 {
			t.Fatal(config.AsError(ps))
		}
		return &c
	}
	ctx := t.Context()
	cfg := mk()
	m1, reg1, stop1 := runService(t, "m1", cfg)
	_, reg2, stop2 := runService(t, "m2", mk())

	if c := postAdmin(t, m1, token, http.MethodPost, "/v1/integrations/a/disable", `{"reason":"customer asked"}`); c != http.StatusOK {
		t.Fatalf("disable a: %d", c)
	}
	redisOnly, err := registry.New(e.redis.Client(), cfg.Redis.KeyPrefix, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := redisOnly.AutoDisable(ctx, "b", "60% of 20 uploads failed in 12 h", "hitship-health"); err != nil {
		t.Fatal(err)
	}
	bothOff := func() bool {
		for _, r := range []*prometheus.Registry{reg1, reg2} {
			if metricSum(t, r, "hitship_integration_enabled", "integration", "a") != 0 ||
				metricSum(t, r, "hitship_integration_enabled", "integration", "b") != 0 ||
				metricSum(t, r, "hitship_integration_auto_disabled", "integration", "b") != 1 {
				return false
			}
		}
		return true
	}
	waitFor(t, 15*time.Second, "both replicas see a disabled and b auto-disabled", bothOff)
	topic := cfg.Kafka.IntegrationsTopic
	waitFor(t, 15*time.Second, "both states in the integrations topic", func() bool {
		st := topicStates(t, e, topic)
		return st["a"] == registry.Disabled && st["b"] == registry.AutoDisabled
	})

	if err := e.redis.Client().FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	// Two watcher polls and more: nobody sees them on.
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if !bothOff() {
			t.Fatal("after FLUSHALL a replica sees a or b enabled")
		}
	}
	waitFor(t, 10*time.Second, "Redis has both states back", func() bool {
		sa, err1 := redisOnly.Status(ctx, "a")
		sb, err2 := redisOnly.Status(ctx, "b")
		return err1 == nil && err2 == nil && sa.State == registry.Disabled && sb.State == registry.AutoDisabled
	})
	if n := metricSum(t, reg1, "hitship_integration_states_reconciled_total", "action", "restored") +
		metricSum(t, reg2, "hitship_integration_states_reconciled_total", "action", "restored"); n < 2 {
		t.Errorf("restored counted %v times, want at least 2", n)
	}

	// Every replica stops; Redis loses everything again; a new replica starts.
	stop1()
	stop2()
	if err := e.redis.Client().FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	_, reg3, _ := runService(t, "m3", mk())
	hits := produceHitsAt(t, e, 11, nowHits(40, []int64{1, 2}, 2, 11))
	waitFor(t, 60*time.Second, "the new replica read every record", func() bool {
		return metricSum(t, reg3, "hitship_records_skipped_total", "reason", "disabled") == float64(len(hits))
	})
	if objs := objectBytes(t, e, a.Bucket, b.Bucket); len(objs) != 0 {
		t.Fatalf("the buckets of the disabled integrations hold %d objects", len(objs))
	}
}

// TestNameReusedForAnotherClientStartsFresh: acme (client 1) is disabled;
// a reload gives the name to client 2 (another customer, another bucket).
// Before, client 2 inherited client 1's disable and its records were
// skipped; now a state recorded for client 1 does not apply to client 2. A
// reload back to client 1 finds client 1's disable in force again.
func TestNameReusedForAnotherClientStartsFresh(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	const token = "admin-token-for-tests-0012"
	t.Setenv("HITSHIP_TEST_ADMIN_TOKEN", token)
	old, reused := integ("acme", 1, "b-old", "ndjson"), integ("acme", 2, "b-new", "ndjson")
	e := newEnv(t, 2, old.Bucket, reused.Bucket)
	mk := func(in config.Integration) *config.Config {
		c := *e.config(t, in)
		c.Window.Size, c.Window.Grace, c.Window.IdleTimeout = 10*time.Second, time.Second, time.Second
		c.HTTP.AdminTokenEnv = "HITSHIP_TEST_ADMIN_TOKEN"
		if ps := c.Validate(); len(ps) > 0 {
			t.Fatal(config.AsError(ps))
		}
		return &c
	}
	cfg1 := mk(old)
	svc, reg := startService(t, "m", cfg1)
	if c := postAdmin(t, svc, token, http.MethodPost, "/v1/integrations/acme/disable", `{"reason":"client 1 asked"}`); c != http.StatusOK {
		t.Fatalf("disable: %d", c)
	}
	waitFor(t, 10*time.Second, "acme disabled", func() bool {
		return metricSum(t, reg, "hitship_integration_enabled", "integration", "acme") == 0
	})

	cfg2 := mk(reused)
	cfg2.Spool.Dir = cfg1.Spool.Dir
	if err := svc.Reload(cfg2); err != nil {
		t.Fatal(err)
	}
	hits := produceHitsAt(t, e, 12, nowHits(30, []int64{2}, 2, 12))
	waitFor(t, 60*time.Second, "client 2's hits delivered to its bucket", func() bool { return allDelivered(t, e, hits, reused) })
	if n := metricSum(t, reg, "hitship_records_skipped_total", "reason", "disabled"); n != 0 {
		t.Fatalf("%v records skipped as disabled", n)
	}

	if err := svc.Reload(cfg1); err != nil {
		t.Fatal(err)
	}
	more := produceHitsAt(t, e, 13, nowHits(20, []int64{1}, 2, 13))
	waitFor(t, 60*time.Second, "client 1's hits skipped again", func() bool {
		return metricSum(t, reg, "hitship_records_skipped_total", "reason", "disabled") == float64(len(more))
	})
	if objs := objectBytes(t, e, old.Bucket); len(objs) != 0 {
		t.Fatalf("client 1's bucket holds %d objects while its integration is disabled", len(objs))
	}
}

// TestIntegrationsTopicRefused: a replica whose integrations topic cannot
// hold the state (here: two partitions) does not start, and says why in
// plain words naming the key.
func TestIntegrationsTopicRefused(t *testing.T) {
	e := newEnv(t, 2)
	cfg := e.config(t)
	cfg.Kafka.IntegrationsTopic = "two-partitions"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	c := &kafka.Client{Addr: kafka.TCP(e.kafka.Addrs()...), Transport: tr}
	if _, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
		{Topic: "two-partitions", NumPartitions: 2, ReplicationFactor: -1}}}); err != nil {
		t.Fatal(err)
	}
	svc, err := service.New(cfg, service.Deps{Logger: slog.New(slog.DiscardHandler), Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	err = svc.Run(ctx)
	if err == nil || !strings.Contains(err.Error(), "kafka.integrations_topic") || !strings.Contains(err.Error(), "exactly one") {
		t.Fatalf("Run = %v; want a refusal naming kafka.integrations_topic", err)
	}
}
