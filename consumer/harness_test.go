package consumer

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"

	"hitship/delivery"
	"hitship/integrations"
	"hitship/internal/testenv"
	"hitship/metrics"
	"hitship/sink"
	"hitship/state"
	"hitship/window"
)

// The consumer-level world: a real consumer group on kfake (testenv.Kafka), a
// real redis-server behind state.Store, a real spool, the dead-letter topic
// through a kafka.Writer, and objects in a sink.MemStore (the project's
// in-memory Store, which passes the store acceptance suite) through memDelivery.

const (
	wTopic = "hits"
	wDLQ   = "hits-dead"
	wGroup = "g"
)

type world struct {
	t     *testing.T
	kafka *testenv.Kafka
	redis *testenv.Redis
	st    *state.Store
	parts int
	store *sink.MemStore
	keys  *sink.KeyTemplate
	// clients maps a client id to its one integration (NDJSON).
	targets map[int64][]*integrations.Target
}

func newWorld(t *testing.T, parts int) *world {
	t.Helper()
	wd := &world{t: t, parts: parts}
	wd.kafka = testenv.MustKafka(t, testenv.KafkaOptions{Partitions: parts, Topics: []string{wTopic, wDLQ}, GroupMinSessionTimeout: time.Second})
	wd.redis = testenv.MustRedis(t, testenv.RedisOptions{})
	if wd.redis.Miniredis() {
		t.Skip("needs a redis-server binary")
	}
	st, err := state.New(wd.redis.Client(), "hitship:", wGroup)
	if err != nil {
		t.Fatal(err)
	}
	wd.st = st
	if wd.store, err = sink.NewMemStore(); err != nil {
		t.Fatal(err)
	}
	if wd.keys, err = sink.ParseKeyTemplate(sink.DefaultKeyTemplate); err != nil {
		t.Fatal(err)
	}
	wd.targets = map[int64][]*integrations.Target{}
	for c := int64(1); c <= 3; c++ {
		name := "t" + strconv.FormatInt(c, 10)
		wd.targets[c] = []*integrations.Target{{ID: integrations.NewTargetID(name, c, "mem"), Name: name, ClientID: c, Prefix: fmt.Sprintf("c%d/", c),
			Format: sink.FormatNDJSON, Keys: wd.keys, Store: wd.store}}
	}
	return wd
}

// worldRoutes routes every tenant to its targets, all of them live.
func worldRoutes(byClient map[int64][]*integrations.Target) staticRoutes {
	var all []*integrations.Target
	for _, ts := range byClient {
		all = append(all, ts...)
	}
	return newStaticRoutes(all...)
}

// memDelivery delivers like delivery.Inline, without retries: finish, fence,
// put; asynchronously.
type memDelivery struct {
	wg   sync.WaitGroup
	gate <-chan struct{} // nil or closed: deliver; else wait (a stalled bucket)
}

func (d *memDelivery) Deliver(ctx context.Context, j *delivery.Job, done func(error)) {
	d.wg.Add(1)
	go func() {
		defer d.wg.Done()
		if err := ctx.Err(); err != nil {
			j.Buffer.Discard()
			done(err)
			return
		}
		o, err := j.Buffer.Finish(j.Target.Compression)
		if err != nil {
			done(err)
			return
		}
		defer o.Release()
		if d.gate != nil {
			select {
			case <-d.gate:
			case <-ctx.Done():
				done(ctx.Err())
				return
			}
		}
		if err := j.Fence(ctx); err != nil {
			done(err)
			return
		}
		done(j.Target.Store.Put(ctx, j.Key, o, sink.PutOptions{ContentType: o.ContentType}))
	}()
}

// member is one running Consumer.
type member struct {
	c      *Consumer
	reg    *prometheus.Registry
	m      *metrics.Metrics
	cancel context.CancelFunc
	done   chan error
	dlq    *kafka.Writer
	tr     *kafka.Transport
	del    *memDelivery
}

type memberOpts struct {
	group       string
	idle        time.Duration
	state       PartitionState // nil: the world's store
	deadLetters func(DeadLetters) DeadLetters
	spool       *sink.Spool
	session     time.Duration
	rebalance   time.Duration
	heartbeat   time.Duration
	store       *sink.MemStore  // nil: the world's
	gate        <-chan struct{} // deliveries wait for it (see memDelivery)
}

func (wd *world) start(name string, o memberOpts) *member {
	t := wd.t
	t.Helper()
	if o.group == "" {
		o.group = wGroup
	}
	if o.idle == 0 {
		o.idle = time.Second
	}
	if o.session == 0 {
		o.session = 3 * time.Second
	}
	if o.rebalance == 0 {
		o.rebalance = 3 * time.Second
	}
	if o.heartbeat == 0 {
		o.heartbeat = 300 * time.Millisecond
	}
	if o.state == nil {
		o.state = wd.st
	}
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	log := slog.New(slog.NewTextHandler(testLogWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})).With("member", name)
	if o.spool == nil {
		sp, err := sink.NewSpool(sink.SpoolConfig{Dir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		o.spool = sp
	}
	tr := &kafka.Transport{DialTimeout: 2 * time.Second, IdleTimeout: time.Second, MetadataTTL: 5 * time.Second}
	w := &kafka.Writer{Addr: kafka.TCP(wd.kafka.Addrs()...), Topic: wDLQ, RequiredAcks: kafka.RequireAll,
		BatchTimeout: time.Millisecond, BatchSize: 1000, Transport: tr, WriteTimeout: 5 * time.Second, ReadTimeout: 5 * time.Second}
	var dl DeadLetters = w
	if o.deadLetters != nil {
		dl = o.deadLetters(w)
	}
	wcfg := window.DefaultConfig()
	del := &memDelivery{gate: o.gate}
	routes := worldRoutes(wd.targets)
	if o.store != nil {
		byClient := map[int64][]*integrations.Target{}
		for c, ts := range wd.targets {
			t := *ts[0]
			t.Store = o.store
			byClient[c] = []*integrations.Target{&t}
		}
		routes = worldRoutes(byClient)
	}
	c, err := New(Config{Brokers: wd.kafka.Addrs(), Topic: wTopic, Group: o.group, Dialer: &kafka.Dialer{Timeout: 2 * time.Second},
		SessionTimeout: o.session, RebalanceTimeout: o.rebalance, HeartbeatInterval: o.heartbeat,
		CommitInterval: 200 * time.Millisecond, ShutdownTimeout: 5 * time.Second, IdleTimeout: o.idle,
		MaxRecordBytes: 1 << 20, MaxDepth: 64, Window: wcfg},
		Deps{Logger: log, Metrics: m, State: o.state, Routes: routes, Spool: o.spool,
			Delivery: del, DeadLetters: dl})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	mb := &member{c: c, reg: reg, m: m, cancel: cancel, done: make(chan error, 1), dlq: w, tr: tr, del: del}
	go func() { mb.done <- c.Run(ctx) }()
	t.Cleanup(func() { mb.stop(t) })
	return mb
}

// stop is a clean stop. Idempotent.
func (mb *member) stop(t *testing.T) {
	if mb.cancel == nil {
		return
	}
	mb.cancel()
	mb.cancel = nil
	select {
	case err := <-mb.done:
		if err != nil {
			t.Errorf("consumer: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Errorf("consumer did not stop within 60 s")
	}
	mb.del.wg.Wait()
	_ = mb.dlq.Close()
	mb.tr.CloseIdleConnections()
}

type testLogWriter struct{ t *testing.T }

func (w testLogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// hitAt is a hit of client at Unix second ts, with id.
func hitAt(client int64, ts int64, id string) []byte {
	return fmt.Appendf(nil, `{"time":"%d","request_id":"%s","client_id":%d}`, ts, id, client)
}

// produce writes msgs to partition p of the topic.
func (wd *world) produce(p int, values ...[]byte) {
	wd.t.Helper()
	msgs := make([]kafka.Message, len(values))
	for i, v := range values {
		msgs[i] = kafka.Message{Partition: p, Value: v, Time: time.Now()}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := wd.kafka.Produce(ctx, wTopic, msgs); err != nil {
		wd.t.Fatal(err)
	}
}

// committed returns the group's committed offsets.
func (wd *world) committed(group string) map[int]int64 {
	wd.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := wd.kafka.Committed(ctx, group, wTopic)
	if err != nil {
		return nil
	}
	return c
}

// objects returns every stored object's records (NDJSON lines) by key, of
// the world's store or the one given.
func (wd *world) objects(stores ...*sink.MemStore) map[string][]string {
	st := wd.store
	if len(stores) > 0 {
		st = stores[0]
	}
	out := map[string][]string{}
	for _, k := range st.Keys() {
		o, _ := st.Get(k)
		out[k] = strings.Split(strings.TrimSuffix(string(o.Data), "\n"), "\n")
	}
	return out
}

// delivered counts how often each request_id appears in the stored objects.
func (wd *world) delivered() map[string]int {
	n := map[string]int{}
	for _, recs := range wd.objects() {
		for _, r := range recs {
			i := strings.Index(r, `"request_id":"`)
			if i < 0 {
				continue
			}
			id := r[i+len(`"request_id":"`):]
			n[id[:strings.IndexByte(id, '"')]]++
		}
	}
	return n
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func counter(c prometheus.Collector) float64 { return testutil.ToFloat64(c) }

var _ = slices.Sort[[]int]
