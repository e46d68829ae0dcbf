package registry_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"hitship/health"
	"hitship/integrations/registry"
	"hitship/internal/testenv"
	"hitship/kstore"
)

const durableTopic = "hitship-integrations"

// durableReplica is one hitship replica's registry: its own Redis
// connection, its own follower of the integrations topic, a store over both
// and a running watcher.
type durableReplica struct {
	store   *registry.Store
	watcher *registry.Watcher
	kv      *kstore.Map
	rdb     *redis.Client
	// stopWatcher stops the watcher only; stop stops everything.
	stopWatcher, stop func()
}

func startDurable(t *testing.T, k *testenv.Kafka, r *testenv.Redis, configured map[string]int64) *durableReplica {
	t.Helper()
	d := &durableReplica{}
	var w atomicWatcher
	kv, err := kstore.New(kstore.Config{Brokers: k.Addrs(), Topic: durableTopic, Key: "kafka.integrations_topic",
		MaxWait: 200 * time.Millisecond, OnChange: func(string) { w.poke() }})
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	d.kv = kv
	d.rdb = redis.NewClient(&redis.Options{Addr: r.Addr(), DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1})
	d.store, err = registry.NewStore(d.rdb, registry.Config{Prefix: prefix, Now: time.Now, Durable: kv})
	if err != nil {
		t.Fatal(err)
	}
	if configured != nil {
		d.store.SetConfigured(configured)
	}
	d.watcher, err = registry.NewWatcher(d.store, registry.WatcherConfig{Interval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	w.set(d.watcher)
	if err := d.watcher.Refresh(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = d.watcher.Run(ctx) }()
	var once, wonce sync.Once
	d.stopWatcher = func() { wonce.Do(func() { cancel(); <-done }) }
	d.stop = func() {
		once.Do(func() {
			d.stopWatcher()
			_ = kv.Close()
			_ = d.rdb.Close()
		})
	}
	t.Cleanup(d.stop)
	return d
}

// atomicWatcher lets the follower's OnChange poke a watcher built after it.
type atomicWatcher struct {
	mu sync.Mutex
	w  *registry.Watcher
}

func (a *atomicWatcher) set(w *registry.Watcher) { a.mu.Lock(); a.w = w; a.mu.Unlock() }
func (a *atomicWatcher) poke() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.w != nil {
		a.w.Poke()
	}
}

func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestRedisDataLossKeepsStates: A is disabled by an operator, B is
// auto-disabled by the health ledger, and C is auto-disabled by a writer
// that reached Redis only (an older hitship, or a replica that died between
// its two writes). After a FLUSHALL every replica still sees all three off,
// and Redis gets them back; a replica started after another FLUSHALL, with
// no other replica running, sees them from the durable copy alone.
func TestRedisDataLossKeepsStates(t *testing.T) {
	k := testenv.MustKafka(t, testenv.KafkaOptions{})
	r := testenv.MustRedis(t, testenv.RedisOptions{})
	ctx := ctxT(t)
	a := startDurable(t, k, r, nil)
	b := startDurable(t, k, r, nil)

	if _, changed, err := a.store.Disable(ctx, "a", "customer asked", "op"); err != nil || !changed {
		t.Fatalf("disable a: %v, %v", changed, err)
	}
	l, err := health.New(b.rdb, health.Config{Prefix: prefix, MinAttempts: 1, MinFailing: time.Millisecond, Registry: b.store})
	if err != nil {
		t.Fatal(err)
	}
	// Two customer-side failures a second apart span more than MinFailing.
	if _, err := l.Record(ctx, "b", health.FailCustomer, time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if d, err := l.Record(ctx, "b", health.FailCustomer, time.Now()); err != nil || !d.Disabled {
		t.Fatalf("health record b: %+v, %v", d, err)
	}
	redisOnly, err := registry.New(r.Client(), prefix, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if _, changed, err := redisOnly.AutoDisable(ctx, "c", "60% of 20 uploads failed in 12 h", "hitship-health"); err != nil || !changed {
		t.Fatalf("auto-disable c in Redis only: %v, %v", changed, err)
	}
	want := map[string]registry.State{"a": registry.Disabled, "b": registry.AutoDisabled, "c": registry.AutoDisabled}
	inTopic := func(kv *kstore.Map) bool {
		for name, state := range want {
			v, ok := kv.Get(registry.DurableKeyPrefix + name)
			var st registry.Status
			if !ok || json.Unmarshal(v, &st) != nil || st.State != state {
				return false
			}
		}
		return true
	}
	waitUntil(t, 10*time.Second, "every state in the durable copy (c published by a reconciliation)", func() bool { return inTopic(a.kv) && inTopic(b.kv) })
	seesAll := func(d *durableReplica) bool {
		for name, state := range want {
			if !d.watcher.Disabled(name) || d.watcher.Status(name).State != state {
				return false
			}
		}
		return true
	}
	waitUntil(t, 10*time.Second, "both replicas see the three states", func() bool { return seesAll(a) && seesAll(b) })

	if err := r.Client().FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	// For the next two seconds (20 polls) no replica sees any of them on.
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		for i, d := range []*durableReplica{a, b} {
			if !seesAll(d) {
				t.Fatalf("after FLUSHALL replica %d sees %v", i, d.watcher.Snapshot())
			}
		}
	}
	inRedis := func() bool {
		for name, state := range want {
			if st, err := redisOnly.Status(ctx, name); err != nil || st.State != state {
				return false
			}
		}
		return true
	}
	waitUntil(t, 10*time.Second, "the states restored into Redis", inRedis)

	a.stop()
	b.stop()
	if err := r.Client().FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	c := startDurable(t, k, r, nil) // Refresh ran once, before any reconciliation
	if !seesAll(c) {
		t.Fatalf("a replica started after the flush sees %v", c.watcher.Snapshot())
	}
	if st, err := c.store.Status(ctx, "a"); err != nil || st.State != registry.Disabled || st.Reason != "customer asked" {
		t.Errorf("Status(a) on the new replica = %+v, %v", st, err)
	}
	waitUntil(t, 10*time.Second, "the new replica restores Redis", inRedis)
	// An operator enabling A now changes the state the topic holds, not the
	// empty Redis one, and the change lands in both.
	if err := r.Client().FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if _, changed, err := c.store.Enable(ctx, "a", "op"); err != nil || !changed {
		t.Fatalf("enable a after a flush: changed %v, %v (the topic says disabled)", changed, err)
	}
	waitUntil(t, 5*time.Second, "a enabled everywhere", func() bool {
		st, err := redisOnly.Status(ctx, "a")
		v, _ := c.kv.Get(registry.DurableKeyPrefix + "a")
		return err == nil && st.State == registry.Enabled && strings.Contains(string(v), `"state":"enabled"`) && !c.watcher.Disabled("a")
	})
}

// TestNewerVersionWins: of Redis and the durable copy, the newer version
// wins in both directions, and reconciliation copies it over.
func TestNewerVersionWins(t *testing.T) {
	k := testenv.MustKafka(t, testenv.KafkaOptions{})
	r := testenv.MustRedis(t, testenv.RedisOptions{})
	ctx := ctxT(t)
	a := startDurable(t, k, r, nil)
	if _, _, err := a.store.Disable(ctx, "x", "first", "op"); err != nil {
		t.Fatal(err)
	}
	// Redis is newer: a change an older hitship made in Redis only.
	st, _, err := a.store.Recorded(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	newer := registry.Status{Name: "x", State: registry.Enabled, By: "legacy", Version: st.Version + 5}
	js, _ := json.Marshal(newer)
	if err := r.Client().HSet(ctx, prefix+"integrations", "x", js).Err(); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "Redis's newer enable published", func() bool {
		v, _ := a.kv.Get(registry.DurableKeyPrefix + "x")
		return strings.Contains(string(v), `"by":"legacy"`) && !a.watcher.Disabled("x")
	})
	// The durable copy is newer: Redis went back to an old state (a
	// failover to a replica that missed writes).
	older := registry.Status{Name: "x", State: registry.Disabled, Reason: "stale", Version: st.Version}
	js, _ = json.Marshal(older)
	if err := r.Client().HSet(ctx, prefix+"integrations", "x", js).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := a.store.Status(ctx, "x"); err != nil || got.State != registry.Enabled {
		t.Fatalf("Status with a stale Redis entry = %+v, %v; want the newer enabled", got, err)
	}
	waitUntil(t, 5*time.Second, "the stale Redis entry replaced", func() bool {
		v, err := r.Client().HGet(ctx, prefix+"integrations", "x").Result()
		return err == nil && strings.Contains(v, `"by":"legacy"`)
	})
	if a.watcher.Disabled("x") {
		t.Error("the watcher applies the stale Redis entry")
	}
}

// TestStateOfAnotherClient: a state recorded for another client than the
// configured one does not apply (a name reused for another customer starts
// fresh); changes record the configured client.
func TestStateOfAnotherClient(t *testing.T) {
	k := testenv.MustKafka(t, testenv.KafkaOptions{})
	r := testenv.MustRedis(t, testenv.RedisOptions{})
	ctx := ctxT(t)
	a := startDurable(t, k, r, map[string]int64{"acme": 1})
	l, err := health.New(a.rdb, health.Config{Prefix: prefix, MinAttempts: 1, MinFailing: time.Millisecond, Registry: a.store})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Record(ctx, "acme", health.FailCustomer, time.Now().Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if d, err := l.Record(ctx, "acme", health.FailCustomer, time.Now()); err != nil || !d.Disabled {
		t.Fatalf("auto-disable for client 1: %+v, %v", d, err)
	}
	if st, _, _ := a.store.Recorded(ctx, "acme"); st.ClientID != 1 {
		t.Fatalf("recorded %+v, want client 1", st)
	}
	waitUntil(t, 5*time.Second, "acme off for client 1", func() bool { return a.watcher.Disabled("acme") })

	a.store.SetConfigured(map[string]int64{"acme": 2}) // the name now belongs to client 2
	if a.watcher.Disabled("acme") {
		t.Fatal("client 2 inherits client 1's auto-disable")
	}
	if st, err := a.store.Status(ctx, "acme"); err != nil || st.State != registry.Enabled {
		t.Fatalf("Status for client 2 = %+v, %v; want enabled", st, err)
	}
	if _, ok := a.watcher.Snapshot()["acme"]; ok {
		t.Error("Snapshot lists client 1's state for client 2")
	}
	// Client 2's own disable is recorded for client 2 (and is a change: its
	// current state was enabled).
	if _, changed, err := a.store.Disable(ctx, "acme", "for client 2", "op"); err != nil || !changed {
		t.Fatalf("disable for client 2: %v, %v", changed, err)
	}
	waitUntil(t, 5*time.Second, "client 2's disable", func() bool { return a.watcher.Disabled("acme") })
	if st, _, _ := a.store.Recorded(ctx, "acme"); st.ClientID != 2 || st.Reason != "for client 2" {
		t.Fatalf("recorded %+v, want client 2's", st)
	}
	a.store.SetConfigured(map[string]int64{"acme": 1})
	if a.watcher.Disabled("acme") {
		t.Error("client 1 sees client 2's disable")
	}
}

// TestForget: forgetting removes the state from Redis and the durable copy
// (a tombstone), records a delete_integration event, and a replica
// reconciling with a view of Redis from before the forget does not bring the
// state back.
func TestForget(t *testing.T) {
	k := testenv.MustKafka(t, testenv.KafkaOptions{})
	r := testenv.MustRedis(t, testenv.RedisOptions{})
	ctx := ctxT(t)
	a := startDurable(t, k, r, nil)
	b := startDurable(t, k, r, nil)
	if _, _, err := a.store.AutoDisable(ctx, "gone", "60% failed", "hitship-health"); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 5*time.Second, "b sees it", func() bool { return b.watcher.Disabled("gone") })
	b.stopWatcher() // b's last view of Redis still holds the entry

	ev, err := a.store.Forget(ctx, "gone", "removed from the config", "cli:alice")
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != registry.DeleteEventType || ev.Integration != "gone" || ev.By != "cli:alice" {
		t.Errorf("event = %+v", ev)
	}
	if e, found := a.kv.Lookup(registry.DurableKeyPrefix + "gone"); !found || !e.Deleted() {
		t.Errorf("durable copy = %+v, %v; want a tombstone", e, found)
	}
	if n, err := r.Client().HExists(ctx, prefix+"integrations", "gone").Result(); err != nil || n {
		t.Errorf("Redis entry still there: %v, %v", n, err)
	}
	// b reconciles with its stale view (entry present), now that its
	// follower has read the tombstone: nothing comes back.
	if err := b.kv.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.watcher.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // a's watcher polls and reconciles meanwhile
	if n, err := r.Client().HExists(ctx, prefix+"integrations", "gone").Result(); err != nil || n {
		t.Errorf("a reconciliation brought the forgotten state back into Redis")
	}
	if v, ok := a.kv.Get(registry.DurableKeyPrefix + "gone"); ok {
		t.Errorf("a reconciliation brought the forgotten state back into the durable copy: %s", v)
	}
	if a.watcher.Disabled("gone") {
		t.Error("the forgotten state still applies")
	}
	evs, err := a.store.Events(ctx, 10)
	if err != nil || len(evs) != 2 || evs[1].Type != registry.DeleteEventType {
		t.Errorf("events = %+v, %v; want the auto-disable then delete_integration", evs, err)
	}
	// A new state for the name after the forget is a fresh one.
	if _, changed, err := a.store.Disable(ctx, "gone", "again", "op"); err != nil || !changed {
		t.Fatalf("disable after forget: %v, %v", changed, err)
	}
	waitUntil(t, 5*time.Second, "the new state applies", func() bool { return a.watcher.Disabled("gone") })
}
