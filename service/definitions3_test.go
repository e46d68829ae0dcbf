package service_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/segmentio/kafka-go"

	"hitship/config"
	"hitship/internal/testenv"
	"hitship/service"
)

// replica3 is one replica of the three-replica test: its service, its
// admin API, its metrics.
type replica3 struct {
	api  apiClient
	reg  *prometheus.Registry
	stop func()
}

// TestIntegrationsOnThreeReplicas (issue #13): on three replicas, integrations
// created through one replica's API deliver through all three; a disable,
// an enable and a concurrent pair of replaces go through different replicas
// (of the replaces one wins, the other gets 412); after a Redis FLUSHALL and
// a restart of every replica every integration is still there and
// delivering; and no log line, API response, metric, event or record of the
// integrations topic holds any integration's secret.
func TestIntegrationsOnThreeReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	const token = "admin-token-for-tests-0003"
	secrets := []string{"first-integration-secret-value-000001", "second-integration-secret-value-00002"}
	t.Setenv("HITSHIP_TEST_ADMIN_TOKEN", token)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	t.Setenv("HITSHIP_TEST_KEYS", "k1:"+base64.StdEncoding.EncodeToString(key))
	e := newEnv(t, 3, "b-x", "b-y", "b-y2")
	const eventsTopic = "hitship-events"
	tr := &kafka.Transport{}
	_, err := (&kafka.Client{Addr: kafka.TCP(e.kafka.Addrs()...), Transport: tr}).CreateTopics(t.Context(),
		&kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: eventsTopic, NumPartitions: 1, ReplicationFactor: 1}}})
	tr.CloseIdleConnections()
	if err != nil {
		t.Fatal(err)
	}
	// The S3 stand-in checks nothing of a signature; each integration has a
	// secret of its own, to look for.
	mk := func() *config.Config {
		c := *e.config(t)
		c.Window.Size, c.Window.Grace, c.Window.IdleTimeout = 10*time.Second, time.Second, time.Second
		c.HTTP.AdminTokenEnv, c.Secrets.KeysEnv, c.Kafka.EventsTopic = "HITSHIP_TEST_ADMIN_TOKEN", "HITSHIP_TEST_KEYS", eventsTopic
		if ps := c.Validate(); len(ps) > 0 {
			t.Fatal(config.AsError(ps))
		}
		return &c
	}
	logs := &lockedBuffer{}
	seen := &lockedBuffer{}
	var metricsText bytes.Buffer
	start := func(name string) *replica3 {
		reg := prometheus.NewRegistry()
		log := slog.New(slog.NewJSONHandler(io.MultiWriter(logs, testWriter{t}), &slog.HandlerOptions{Level: slog.LevelInfo})).With("member", name)
		cfg := mk()
		cfg.Spool.Dir = t.TempDir()
		svc, err := service.New(cfg, service.Deps{Logger: log, Registry: reg})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- svc.Run(ctx) }()
		srv := httptest.NewServer(svc.Handler())
		var once sync.Once
		stop := func() {
			once.Do(func() {
				// Its metrics, scraped as Prometheus would, before it stops.
				rec := httptest.NewRecorder()
				promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
				metricsText.Write(rec.Body.Bytes())
				srv.Close()
				cancel()
				if err := <-done; err != nil {
					t.Errorf("%s: %v", name, err)
				}
			})
		}
		t.Cleanup(stop)
		return &replica3{api: apiClient{t, srv.URL, token, seen}, reg: reg, stop: stop}
	}
	reps := []*replica3{start("a"), start("b"), start("c")}
	waitFor(t, 60*time.Second, "every replica owns a partition", func() bool {
		for _, r := range reps {
			if metricSum(t, r.reg, "hitship_kafka_assigned_partitions") != 1 {
				return false
			}
		}
		return true
	})
	// Past the first owners' read marks (see TestIntegrationCreatedThroughTheAPI).
	e.produceHits(t, 900, []int64{9}, time.Now().Add(-30*time.Second), 10*time.Second, 1, 9)
	waitFor(t, 60*time.Second, "the warm-up read", func() bool { return e.committedToEnd(t, mk().Kafka.Group) })

	body := func(name string, client int64, bucket, secret string) string {
		return `{"name":"` + name + `","client_id":` + map[int64]string{1: "1", 2: "2"}[client] + `,"region":"` + testenv.S3Region + `","bucket":"` + bucket +
			`","prefix":"hits/","format":"ndjson","credentials":{"access_key_id":"TESTACCESSKEY0001","secret_access_key":"` + secret + `"}}`
	}
	if code, _, v := reps[0].api.do(http.MethodPost, "/v1/integrations", body("x", 1, "b-x", secrets[0])); code != http.StatusCreated {
		t.Fatalf("create x on a: %d %v", code, v)
	}
	code, hdr, v := reps[1].api.do(http.MethodPost, "/v1/integrations", body("y", 2, "b-y", secrets[1]))
	if code != http.StatusCreated {
		t.Fatalf("create y on b: %d %v", code, v)
	}
	etagY := hdr.Get("ETag")
	for _, r := range reps {
		waitFor(t, 2*time.Second, "every replica has both", func() bool {
			cx, _, _ := r.api.do(http.MethodGet, "/v1/integrations/x", "")
			cy, _, _ := r.api.do(http.MethodGet, "/v1/integrations/y", "")
			return cx == http.StatusOK && cy == http.StatusOK
		})
	}

	ids := func(bucket string) map[string]int {
		out := map[string]int{}
		re := regexp.MustCompile(`"request_id":"([0-9a-f]+)"`)
		for _, o := range e.objects(t, bucket) {
			for _, r := range o.records {
				if m := re.FindSubmatch(r); m != nil {
					out[string(m[1])]++
				}
			}
		}
		return out
	}
	deliveredOnce := func(what, bucket string, hits []sent, client int64) {
		t.Helper()
		waitFor(t, 90*time.Second, what, func() bool {
			got := ids(bucket)
			for _, h := range hits {
				if h.client == client && got[h.id] != 1 {
					return false
				}
			}
			return true
		})
	}
	first := e.produceHits(t, 600, []int64{1, 2}, time.Now().Add(-30*time.Second), 10*time.Second, 2, 1)
	deliveredOnce("x's hits through all three replicas", "b-x", first, 1)
	deliveredOnce("y's hits through all three replicas", "b-y", first, 2)

	// Disable through c, enable through a: every replica follows.
	if code, _, v := reps[2].api.do(http.MethodPost, "/v1/integrations/x/disable", `{"reason":"customer asked"}`); code != http.StatusOK {
		t.Fatalf("disable x on c: %d %v", code, v)
	}
	if code, _, v := reps[0].api.do(http.MethodPost, "/v1/integrations/x/enable", ""); code != http.StatusOK {
		t.Fatalf("enable x on a: %d %v", code, v)
	}
	// Two replaces of y with the same ETag through a and c: one wins.
	var wg sync.WaitGroup
	codes := make([]int, 2)
	for i, r := range []*replica3{reps[0], reps[2]} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i], _, _ = r.api.do(http.MethodPut, "/v1/integrations/y", body("y", 2, "b-y2", ""), "If-Match", etagY)
		}()
	}
	wg.Wait()
	if !(codes[0] == http.StatusOK && codes[1] == http.StatusPreconditionFailed || codes[1] == http.StatusOK && codes[0] == http.StatusPreconditionFailed) {
		t.Fatalf("concurrent replaces with one ETag answered %v, want one 200 and one 412", codes)
	}

	// The events reached the topic (Redis losing them before the relay sent
	// them would lose them: it is a coordinator, not a vault).
	waitFor(t, 10*time.Second, "the disable and the enable on the events topic", func() bool {
		msgs, err := e.kafka.ReadAll(t.Context(), eventsTopic)
		if err != nil {
			t.Fatal(err)
		}
		var all strings.Builder
		for _, m := range msgs {
			all.Write(m.Value)
		}
		return strings.Contains(all.String(), "disable_integration") && strings.Contains(all.String(), "enable_integration")
	})

	// Redis loses everything; every replica restarts.
	if err := e.redis.Client().FlushAll(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	for _, r := range reps {
		r.stop()
	}
	reps = []*replica3{start("a2"), start("b2"), start("c2")}
	for _, r := range reps {
		waitFor(t, 60*time.Second, "a restarted replica has both integrations", func() bool {
			cx, _, vx := r.api.do(http.MethodGet, "/v1/integrations/x", "")
			cy, _, vy := r.api.do(http.MethodGet, "/v1/integrations/y", "")
			return cx == http.StatusOK && cy == http.StatusOK && vx["state"] == "enabled" && vy["bucket"] == "b-y2"
		})
	}
	waitFor(t, 60*time.Second, "every restarted replica owns a partition", func() bool {
		for _, r := range reps {
			if metricSum(t, r.reg, "hitship_kafka_assigned_partitions") != 1 {
				return false
			}
		}
		return true
	})
	e.produceHits(t, 900, []int64{9}, time.Now().Add(-30*time.Second), 10*time.Second, 1, 19) // past the read marks again
	waitFor(t, 60*time.Second, "the second warm-up read", func() bool { return e.committedToEnd(t, mk().Kafka.Group) })
	later := e.produceHits(t, 400, []int64{1, 2}, time.Now().Add(15*time.Second), 10*time.Second, 1, 2)
	deliveredOnce("x's hits after FLUSHALL and restarts", "b-x", later, 1)
	deliveredOnce("y's hits after FLUSHALL and restarts, in its new bucket", "b-y2", later, 2)
	for _, r := range reps {
		r.stop()
	}

	// No secret anywhere: logs, responses, metrics, events, the topic.
	stores := map[string][]byte{"logs": logs.Bytes(), "API responses": seen.Bytes(), "metrics": metricsText.Bytes()}
	for _, topic := range []string{eventsTopic, mk().Kafka.IntegrationsTopic} {
		msgs, err := e.kafka.ReadAll(t.Context(), topic)
		if err != nil {
			t.Fatal(err)
		}
		var all bytes.Buffer
		for _, m := range msgs {
			all.Write(m.Key)
			all.Write(m.Value)
		}
		stores["topic "+topic] = all.Bytes()
	}
	for where, data := range stores {
		if len(data) == 0 {
			t.Errorf("nothing collected from %s: the scan proves nothing there", where)
		}
		for _, s := range secrets {
			if bytes.Contains(data, []byte(s)) || bytes.Contains(data, []byte(base64.StdEncoding.EncodeToString([]byte(s)))) {
				t.Errorf("%s hold the secret %s…", where, s[:6])
			}
		}
	}
	if !strings.Contains(string(stores["topic "+eventsTopic]), "disable_integration") {
		t.Error("the events topic has no disable_integration")
	}
}
