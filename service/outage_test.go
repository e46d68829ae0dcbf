package service_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"hitship/config"
	"hitship/consumer"
	"hitship/health"
	"hitship/integrations/registry"
	"hitship/internal/testenv"
	"hitship/metrics"
	"hitship/service"
	"hitship/state"
)

// logCounter counts, per partition, the log records with a given message, and
// passes warnings and errors on to the test log.
type logCounter struct {
	next  slog.Handler
	msg   string
	attrs []slog.Attr
	mu    *sync.Mutex
	count map[int64]int
}

func newLogCounter(t *testing.T, msg string) *logCounter {
	return &logCounter{next: slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}),
		msg: msg, mu: &sync.Mutex{}, count: map[int64]int{}}
}

func (h *logCounter) Enabled(context.Context, slog.Level) bool { return true }

func (h *logCounter) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == h.msg {
		part := int64(-1)
		find := func(a slog.Attr) bool {
			if a.Key == "partition" {
				part = a.Value.Int64()
			}
			return true
		}
		for _, a := range h.attrs {
			find(a)
		}
		r.Attrs(find)
		h.mu.Lock()
		h.count[part]++
		h.mu.Unlock()
	}
	if r.Level >= slog.LevelWarn {
		return h.next.Handle(ctx, r)
	}
	return nil
}

func (h *logCounter) WithAttrs(as []slog.Attr) slog.Handler {
	c := *h
	c.next = h.next.WithAttrs(as)
	c.attrs = append(slices.Clip(h.attrs), as...)
	return &c
}

func (h *logCounter) WithGroup(name string) slog.Handler {
	c := *h
	c.next = h.next.WithGroup(name)
	return &c
}

// seen returns how often the message was logged for partition p.
func (h *logCounter) seen(p int) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.count[int64(p)]
}

// startServedMember is startMember with the HTTP endpoints on a listener the
// test knows; it returns the member and the base URL.
func (e *env) startServedMember(t *testing.T, name string, cfg *config.Config, h slog.Handler) (*member, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	log := slog.New(h).With("member", name)
	own := *cfg
	own.Spool.Dir = t.TempDir()
	svc, err := service.New(&own, service.Deps{Logger: log, Registry: reg, Listener: ln})
	if err != nil {
		_ = ln.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{name: name, cancel: cancel, done: make(chan error, 1), reg: reg}
	go func() { m.done <- svc.Run(ctx) }()
	t.Cleanup(func() { m.stop(t) })
	return m, "http://" + ln.Addr().String()
}

// readyz returns the status code and body of GET /readyz (0 when unreachable).
func readyz(t *testing.T, base string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/readyz", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestRedisOutage: a real redis-server is stopped while hits flow. Deliveries and
// commits go on (the committed offsets advance while it is down), /readyz answers
// 200 "degraded" and hitship_redis_up is 0; idle closes wait. When it is started
// again the snapshots kept in memory are written back, the gauge is 1, idle closes
// resume, and every hit is delivered exactly once.
func TestRedisOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel() // it mostly waits (windows, retries, restarts): overlap it with another
	const parts = 4
	ins := []config.Integration{
		integ("one-json", 1, "b-one", "json"),
		integ("two-ndjson", 2, "b-two", "ndjson"),
	}
	buckets := []string{"b-one", "b-two"}
	clients := []int64{1, 2, 3}
	e := newEnv(t, parts, buckets...)
	// A real server with persistence, so that Stop/Start is a Redis restart.
	e.redis = testenv.MustRedis(t, testenv.RedisOptions{Persist: true})
	if e.redis.Miniredis() {
		t.Skip("needs a redis-server binary to stop and start")
	}
	cfg := e.config(t, ins...)
	base0, err := state.New(e.redis.Client(), cfg.Redis.KeyPrefix, cfg.Kafka.Group)
	if err != nil {
		t.Fatal(err)
	}
	// The members keep the partition state under the topic's incarnation.
	ictx, icancel := context.WithTimeout(context.Background(), 10*time.Second)
	inc, err := consumer.KafkaIncarnations{Brokers: e.kafka.Addrs()}.Incarnation(ictx, cfg.Kafka.Topic)
	icancel()
	if err != nil {
		t.Fatal(err)
	}
	st, err := base0.ForIncarnation(inc)
	if err != nil {
		t.Fatal(err)
	}

	base := time.Date(2023, 6, 20, 6, 0, 0, 0, time.UTC)
	hits := produceHitsAt(t, e, 41, spreadHits(2000, clients, parts, base, 10*time.Minute, 3, 41))
	logs := newLogCounter(t, "window snapshot written back to Redis")
	m, url := e.startServedMember(t, "a", cfg, logs)
	waitFor(t, 30*time.Second, "a first commit in every partition", func() bool {
		c := committedOffsets(t, e, cfg.Kafka.Group)
		for q := range parts {
			if c[q] <= 0 {
				return false
			}
		}
		return true
	})
	waitFor(t, 10*time.Second, "ready with Redis up", func() bool {
		code, body := readyz(t, url)
		return code == http.StatusOK && strings.HasPrefix(body, "ready: 4 partitions") && metricSum(t, m.reg, "hitship_redis_up") == 1
	})

	// The outage.
	if err := e.redis.Stop(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "hitship_redis_up 0", func() bool { return metricSum(t, m.reg, "hitship_redis_up") == 0 })
	code, body := readyz(t, url)
	if code != http.StatusOK || !strings.HasPrefix(body, "degraded: redis unreachable") {
		t.Fatalf("readyz during the outage: %d %q, want 200 degraded: redis unreachable", code, body)
	}
	down := committedOffsets(t, e, cfg.Kafka.Group)
	objs := len(objectBytes(t, e, buckets...))
	// Later windows close the open ones by their records alone.
	hits = append(hits, produceHitsAt(t, e, 42, spreadHits(2000, clients, parts, base.Add(30*time.Minute), 10*time.Minute, 3, 42))...)
	waitFor(t, 30*time.Second, "commits advancing in every partition while Redis is down", func() bool {
		c := committedOffsets(t, e, cfg.Kafka.Group)
		for q := range parts {
			if c[q] <= down[q] {
				return false
			}
		}
		return true
	})
	if n := len(objectBytes(t, e, buckets...)); n <= objs {
		t.Fatalf("no object delivered during the outage: %d before, %d now", objs, n)
	}
	if metricSum(t, m.reg, "hitship_pending_snapshots") == 0 {
		t.Fatal("no window snapshot held in memory during the outage")
	}
	// Idle closes need the fenced Redis log: the last windows stay open.
	time.Sleep(cfg.Window.IdleTimeout + 2*time.Second)
	if e.committedToEnd(t, cfg.Kafka.Group) {
		t.Fatal("committed to the end during the outage: an idle close was taken without Redis")
	}
	if metricSum(t, m.reg, "hitship_idle_closes_total") != 0 {
		t.Fatal("idle closes counted during the outage")
	}
	if code, body := readyz(t, url); code != http.StatusOK || !strings.HasPrefix(body, "degraded") {
		t.Fatalf("readyz later in the outage: %d %q", code, body)
	}

	// Redis returns.
	if err := e.redis.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "hitship_redis_up 1 and the snapshots written back", func() bool {
		return metricSum(t, m.reg, "hitship_redis_up") == 1 && metricSum(t, m.reg, "hitship_pending_snapshots") == 0
	})
	for q := range parts {
		if logs.seen(q) == 0 {
			t.Errorf("partition %d: no snapshot kept during the outage was written back", q)
		}
	}
	waitFor(t, 30*time.Second, "offsets committed to the end (idle closes resumed)", func() bool { return e.committedToEnd(t, cfg.Kafka.Group) })
	waitFor(t, 10*time.Second, "a snapshot at every committed offset", func() bool {
		c := committedOffsets(t, e, cfg.Kafka.Group)
		for q := range parts {
			if _, ok, err := st.LoadSnapshot(context.Background(), cfg.Kafka.Topic, q, c[q]); err != nil || !ok {
				return false
			}
		}
		return true
	})
	if code, body := readyz(t, url); code != http.StatusOK || body != "ready: 4 partitions\n" {
		t.Fatalf("readyz after the outage: %d %q", code, body)
	}
	// The health ledger caught up: the outcomes of the uploads made during the
	// outage were held in memory and written back, so it counts every attempt
	// the metrics count; nothing was decided on the partial data.
	ledger, err := health.New(e.redis.Client(), health.Config{Prefix: cfg.Redis.KeyPrefix})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.New(e.redis.Client(), cfg.Redis.KeyPrefix, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range ins {
		var att, fail int
		var want float64
		waitFor(t, 20*time.Second, "the health ledger of "+in.Name+" caught up", func() bool {
			want = 0
			for _, r := range []string{metrics.ResultOK, metrics.ResultExists, metrics.ResultError} {
				want += metricSum(t, m.reg, "hitship_upload_attempts_total", "integration", in.Name, "result", r)
			}
			att, fail, err = ledger.Ratio(context.Background(), in.Name, time.Now())
			return err == nil && float64(att) == want
		})
		if want == 0 || fail != int(metricSum(t, m.reg, "hitship_upload_attempts_total", "integration", in.Name, "result", metrics.ResultError)) {
			t.Fatalf("%s: ledger %d attempts %d failures; metrics %v attempts", in.Name, att, fail, want)
		}
		if st, err := reg.Status(context.Background(), in.Name); err != nil || st.State != registry.Enabled {
			t.Fatalf("%s: state %+v, %v; want enabled", in.Name, st, err)
		}
	}
	m.stop(t)
	checkExactlyOnce(t, e, hits, ins)
}
