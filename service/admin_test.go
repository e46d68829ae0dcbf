package service_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"hitship/config"
	"hitship/integrations/registry"
	"hitship/service"
)

// startService runs a service built from cfg and returns it with its registry.
func startService(t *testing.T, name string, cfg *config.Config) (*service.Service, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})).With("member", name)
	svc, err := service.New(cfg, service.Deps{Logger: log, Registry: reg})
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

// TestDisableAcrossReplicas: disabling an integration through one replica's admin
// API stops its delivery on the other replica within seconds; the records are
// skipped and counted; the events stream records each change; enabling resumes.
func TestDisableAcrossReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	const token = "admin-token-for-tests-0001"
	t.Setenv("HITSHIP_TEST_ADMIN_TOKEN", token)
	e := newEnv(t, 2, "b-acme")
	mk := func() *config.Config {
		c := *e.config(t, integ("acme", 1, "b-acme", "ndjson"))
		c.Window.Size, c.Window.Grace, c.Window.IdleTimeout = 10*time.Second, time.Second, time.Second
		c.HTTP.AdminTokenEnv = "HITSHIP_TEST_ADMIN_TOKEN"
		if ps := c.Validate(); len(ps) > 0 {
			t.Fatal(config.AsError(ps))
		}
		return &c
	}
	cfgA, cfgB := mk(), mk()
	a, regA := startService(t, "a", cfgA)
	_, regB := startService(t, "b", cfgB)
	api := httptest.NewServer(a.Handler())
	t.Cleanup(api.Close)
	waitFor(t, 30*time.Second, "both members own a partition", func() bool {
		return metricSum(t, regA, "hitship_kafka_assigned_partitions") == 1 && metricSum(t, regB, "hitship_kafka_assigned_partitions") == 1
	})

	post := func(path, tok string) int {
		req, _ := http.NewRequest(http.MethodPost, api.URL+path, strings.NewReader(`{"reason":"customer asked"}`))
		if tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := post("/v1/integrations/acme/disable", ""); c != http.StatusUnauthorized {
		t.Fatalf("without a token: %d", c)
	}
	if c := post("/v1/integrations/acme/disable", "wrong"); c != http.StatusUnauthorized {
		t.Fatalf("with a wrong token: %d", c)
	}

	delivered := func() map[string]bool {
		ids := map[string]bool{}
		re := regexp.MustCompile(`"request_id":"([0-9a-f]+)"`)
		for _, o := range e.objects(t, "b-acme") {
			for _, r := range o.records {
				ids[string(re.FindSubmatch(r)[1])] = true
			}
		}
		return ids
	}
	group := cfgA.Kafka.Group
	first := e.produceHits(t, 400, []int64{1}, time.Now().Add(-30*time.Second), 10*time.Second, 2, 1)
	waitFor(t, 60*time.Second, "the first batch delivered", func() bool { return e.committedToEnd(t, group) })

	if c := post("/v1/integrations/acme/disable", token); c != http.StatusOK {
		t.Fatalf("disable: %d", c)
	}
	time.Sleep(registry.DefaultInterval + time.Second) // "within seconds": the watchers' poll
	second := e.produceHits(t, 400, []int64{1}, time.Now().Add(-5*time.Second), 10*time.Second, 1, 2)
	waitFor(t, 60*time.Second, "the second batch read", func() bool { return e.committedToEnd(t, group) })
	got := delivered()
	for _, h := range first {
		if !got[h.id] {
			t.Fatalf("hit %s of the first batch not delivered", h.id)
		}
	}
	for _, h := range second {
		if got[h.id] {
			t.Fatalf("hit %s delivered while the integration was disabled", h.id)
		}
	}
	for name, reg := range map[string]*prometheus.Registry{"a": regA, "b": regB} {
		if n := metricSum(t, reg, "hitship_records_skipped_total", "reason", "disabled"); n == 0 {
			t.Fatalf("replica %s counted no records skipped as disabled", name)
		}
	}

	if c := post("/v1/integrations/acme/enable", token); c != http.StatusOK {
		t.Fatalf("enable: %d", c)
	}
	time.Sleep(registry.DefaultInterval + time.Second)
	third := e.produceHits(t, 400, []int64{1}, time.Now().Add(12*time.Second), 10*time.Second, 1, 3)
	waitFor(t, 60*time.Second, "the third batch delivered", func() bool {
		got := delivered()
		for _, h := range third {
			if !got[h.id] {
				return false
			}
		}
		return true
	})

	store, err := registry.New(e.redis.Client(), cfgA.Redis.KeyPrefix, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := store.Events(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	var states []string
	for _, ev := range evs {
		if ev.Integration == "acme" {
			states = append(states, string(ev.State))
		}
	}
	if strings.Join(states, ",") != "disabled,enabled" {
		t.Fatalf("events for acme: %v, want disabled then enabled", states)
	}
}
