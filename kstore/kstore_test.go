package kstore_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/goleak"

	"hitship/internal/testenv"
	"hitship/kstore"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const topic = "hitship-integrations"

func ctxT(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// replica starts a Map as one hitship replica would.
func replica(t *testing.T, k *testenv.Kafka, mod func(*kstore.Config)) *kstore.Map {
	t.Helper()
	m, err := newMap(k.Addrs(), mod)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctxT(t, 30*time.Second)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func newMap(brokers []string, mod func(*kstore.Config)) (*kstore.Map, error) {
	cfg := kstore.Config{Brokers: brokers, Topic: topic, Key: "kafka.integrations_topic", MaxWait: 200 * time.Millisecond,
		StartTimeout: 20 * time.Second, WriteTimeout: 10 * time.Second}
	if mod != nil {
		mod(&cfg)
	}
	return kstore.New(cfg)
}

// adminClient is a kafka-go client with a transport of its own, closed at
// the end of the test (the default one keeps goroutines that goleak reports).
func adminClient(t *testing.T, addrs []string) *kafka.Client {
	tr := &kafka.Transport{DialTimeout: 2 * time.Second, IdleTimeout: time.Second, MetadataTTL: 5 * time.Second}
	t.Cleanup(tr.CloseIdleConnections)
	return &kafka.Client{Addr: kafka.TCP(addrs...), Transport: tr, Timeout: 10 * time.Second}
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestCreatesCompactedTopic: a missing topic is created with one partition
// and cleanup.policy=compact; a second replica finds it.
func TestCreatesCompactedTopic(t *testing.T) {
	k := testenv.MustKafka(t, testenv.KafkaOptions{})
	replica(t, k, nil)
	replica(t, k, nil) // the topic exists now
	c := adminClient(t, k.Addrs())
	ctx := ctxT(t, 20*time.Second)
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(md.Topics) != 1 || md.Topics[0].Error != nil {
		t.Fatalf("metadata: %+v, %v", md, err)
	}
	if n := len(md.Topics[0].Partitions); n != 1 {
		t.Errorf("%d partitions, want 1", n)
	}
	res, err := c.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: topic, ConfigNames: []string{"cleanup.policy"}}}})
	if err != nil || len(res.Resources) != 1 {
		t.Fatalf("describe configs: %+v, %v", res, err)
	}
	var policy string
	for _, e := range res.Resources[0].ConfigEntries {
		if e.ConfigName == "cleanup.policy" {
			policy = e.ConfigValue
		}
	}
	if policy != "compact" {
		t.Errorf("cleanup.policy = %q, want compact", policy)
	}
}

// TestPutGetDeleteAcrossReplicas: a write is readable on the writer at once
// (read your writes) and on every other replica within seconds; a delete is
// a tombstone that remembers when.
func TestPutGetDeleteAcrossReplicas(t *testing.T) {
	k := testenv.MustKafka(t, testenv.KafkaOptions{})
	var mu sync.Mutex
	var changed []string
	a := replica(t, k, nil)
	b := replica(t, k, func(c *kstore.Config) {
		c.OnChange = func(key string) { mu.Lock(); changed = append(changed, key); mu.Unlock() }
	})
	ctx := ctxT(t, 30*time.Second)

	if err := a.Put(ctx, "acme", []byte(`{"state":"disabled"}`)); err != nil {
		t.Fatal(err)
	}
	if v, ok := a.Get("acme"); !ok || string(v) != `{"state":"disabled"}` {
		t.Fatalf("writer's Get after Put = %q, %v", v, ok)
	}
	waitFor(t, 10*time.Second, "the other replica sees the value", func() bool {
		v, ok := b.Get("acme")
		return ok && string(v) == `{"state":"disabled"}`
	})
	if err := b.Put(ctx, "acme", []byte(`v2`)); err != nil {
		t.Fatal(err)
	}
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if v, _ := a.Get("acme"); string(v) != "v2" {
		t.Fatalf("after Sync a has %q, want the other replica's v2", v)
	}
	before := time.Now().Add(-time.Second)
	if err := a.Delete(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Get("acme"); ok {
		t.Fatal("Get after Delete found the key")
	}
	e, found := a.Lookup("acme")
	if !found || !e.Deleted() || e.Time.Before(before) {
		t.Fatalf("Lookup after Delete = %+v, %v; want a tombstone with its time", e, found)
	}
	waitFor(t, 10*time.Second, "the other replica applies the tombstone", func() bool {
		e, found := b.Lookup("acme")
		return found && e.Deleted()
	})
	if _, found := a.Lookup("never"); found {
		t.Error("Lookup of a key never written found something")
	}
	if err := a.Put(ctx, "x", nil); err == nil {
		t.Error("Put of an empty value succeeded")
	}
	mu.Lock()
	defer mu.Unlock()
	if strings.Join(changed, ",") != "acme,acme,acme" {
		t.Errorf("OnChange calls on b = %v, want one per record of acme", changed)
	}
}

// TestStartReadsTheWholeTopic: a replica started later holds every key's
// last value (and the tombstones) when Start returns.
func TestStartReadsTheWholeTopic(t *testing.T) {
	k := testenv.MustKafka(t, testenv.KafkaOptions{})
	a := replica(t, k, nil)
	ctx := ctxT(t, 60*time.Second)
	want := map[string]string{}
	for i := range 60 {
		key := fmt.Sprintf("k%02d", i%20)
		v := fmt.Sprintf("v%d", i)
		if err := a.Put(ctx, key, []byte(v)); err != nil {
			t.Fatal(err)
		}
		want[key] = v
	}
	for _, key := range []string{"k03", "k07"} {
		if err := a.Delete(ctx, key); err != nil {
			t.Fatal(err)
		}
		delete(want, key)
	}
	c := replica(t, k, nil)
	got := c.All()
	if len(got) != len(want) {
		t.Fatalf("new replica holds %d keys, want %d", len(got), len(want))
	}
	for key, v := range want {
		if string(got[key]) != v {
			t.Errorf("%s = %q, want %q", key, got[key], v)
		}
	}
	if e, found := c.Lookup("k03"); !found || !e.Deleted() {
		t.Errorf("k03 = %+v, %v; want a tombstone", e, found)
	}
	if n := len(c.Entries()); n != 20 {
		t.Errorf("Entries = %d, want 20 (18 values, 2 tombstones)", n)
	}
}

// TestRefusesBadTopics: a topic with two partitions, or one whose records
// expire, is refused in plain words naming the key.
func TestRefusesBadTopics(t *testing.T) {
	k := testenv.MustKafka(t, testenv.KafkaOptions{})
	c := adminClient(t, k.Addrs())
	ctx := ctxT(t, 30*time.Second)
	if _, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{
		{Topic: "two", NumPartitions: 2, ReplicationFactor: -1},
		{Topic: "expiring", NumPartitions: 1, ReplicationFactor: -1, ConfigEntries: []kafka.ConfigEntry{{ConfigName: "cleanup.policy", ConfigValue: "delete"}}},
	}}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ topic, want string }{
		{"two", "must have exactly one"},
		{"expiring", "cleanup.policy=compact"},
		{"missing", "does not exist"}, // with NoCreate
	} {
		m, err := newMap(k.Addrs(), func(c *kstore.Config) { c.Topic, c.NoCreate = tc.topic, true })
		if err != nil {
			t.Fatal(err)
		}
		err = m.Start(ctx)
		_ = m.Close()
		if err == nil || !strings.Contains(err.Error(), "kafka.integrations_topic") || !strings.Contains(err.Error(), tc.want) || !kstore.IsPermanent(err) {
			t.Errorf("%s: Start = %v; want a permanent error naming kafka.integrations_topic and %q", tc.topic, err, tc.want)
		}
	}
}

// TestAuthorizationErrorsNameTheACL: a principal that may not create or
// read the topic gets an error naming the key and the ACL to grant.
func TestAuthorizationErrorsNameTheACL(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.EnableSASL(), kfake.EnableACLs(),
		kfake.Superuser("PLAIN", "admin", "pw"),
		kfake.User("PLAIN", "hitship", "pw",
			kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: "other", Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationAll, Allow: true}),
		kfake.User("PLAIN", "describer", "pw",
			kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: "readonly", Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationDescribe, Allow: true}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := ctxT(t, 30*time.Second)
	start := func(user, topic string) error {
		m, err := newMap(c.ListenAddrs(), func(cfg *kstore.Config) {
			cfg.SASL = plain.Mechanism{Username: user, Password: "pw"}
			cfg.Topic = topic
			cfg.StartTimeout = 3 * time.Second
		})
		if err != nil {
			t.Fatal(err)
		}
		err = m.Start(ctx)
		_ = m.Close()
		return err
	}
	err = start("hitship", topic)
	if err == nil {
		t.Fatal("Start without any right on the topic succeeded")
	}
	for _, want := range []string{"kafka.integrations_topic", topic, "grant", "Create", "Describe, Read and Write"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	t.Logf("no rights: %v", err)
	// The topic exists; the principal may describe it but not read it.
	if err := start("admin", "readonly"); err != nil {
		t.Fatal(err)
	}
	err = start("describer", "readonly")
	if err == nil {
		t.Fatal("Start without Read on the topic succeeded")
	}
	for _, want := range []string{"kafka.integrations_topic", "readonly", "not allowed to read", "Describe, Read and Write"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	t.Logf("no Read: %v", err)
	if !kstore.IsPermanent(err) {
		t.Error("an authorization failure is not permanent")
	}
}

// TestStartWithoutKafka: Kafka unreachable is a transient failure.
func TestStartWithoutKafka(t *testing.T) {
	k := testenv.MustKafka(t, testenv.KafkaOptions{})
	k.Cut()
	defer k.Restore()
	m, err := newMap(k.Addrs(), func(c *kstore.Config) { c.StartTimeout = 10 * time.Second })
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	err = m.Start(ctxT(t, time.Second))
	if err == nil || kstore.IsPermanent(err) || !strings.Contains(err.Error(), "kafka.integrations_topic") {
		t.Fatalf("Start without Kafka = %v; want a transient error naming the key", err)
	}
	k.Restore()
	if err := m.Start(ctxT(t, 20*time.Second)); err != nil {
		t.Fatalf("Start once Kafka is back: %v", err)
	}
}

// TestFollowsThroughAnOutage: while Kafka is cut the map keeps answering
// from memory and writes fail; afterwards the follower catches up.
func TestFollowsThroughAnOutage(t *testing.T) {
	k := testenv.MustKafka(t, testenv.KafkaOptions{})
	a := replica(t, k, func(c *kstore.Config) { c.WriteTimeout = 2 * time.Second })
	b := replica(t, k, nil)
	ctx := ctxT(t, 60*time.Second)
	if err := a.Put(ctx, "acme", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	k.Cut()
	if err := a.Put(ctx, "acme", []byte("v2")); err == nil {
		t.Fatal("Put while Kafka is cut succeeded")
	}
	if v, ok := a.Get("acme"); !ok || string(v) == "" {
		t.Fatalf("Get during the outage = %q, %v; want the last value read", v, ok)
	}
	waitFor(t, 10*time.Second, "the follower reports the outage", func() bool { return b.Err() != nil })
	k.Restore()
	var err error
	waitFor(t, 30*time.Second, "a write after the outage", func() bool {
		err = a.Put(ctx, "acme", []byte("v3"))
		return err == nil
	})
	waitFor(t, 20*time.Second, "the other replica catches up", func() bool {
		v, _ := b.Get("acme")
		return string(v) == "v3" && b.Err() == nil
	})
}

// TestRecreatedTopic: a topic deleted and created again (a Kafka rebuild)
// ends before the follower's position: the map is read again from the start.
func TestRecreatedTopic(t *testing.T) {
	k := testenv.MustKafka(t, testenv.KafkaOptions{})
	var resets sync.WaitGroup
	resets.Add(1)
	var once sync.Once
	a := replica(t, k, func(c *kstore.Config) {
		c.OnChange = func(key string) {
			if key == "" {
				once.Do(resets.Done)
			}
		}
	})
	ctx := ctxT(t, 60*time.Second)
	for i := range 5 {
		if err := a.Put(ctx, fmt.Sprintf("old%d", i), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	c := adminClient(t, k.Addrs())
	if _, err := c.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{topic}}); err != nil {
		t.Fatal(err)
	}
	b := replica(t, k, nil) // creates it again, empty
	if err := b.Put(ctx, "new", []byte("y")); err != nil {
		t.Fatal(err)
	}
	resets.Wait()
	waitFor(t, 20*time.Second, "the re-created topic read again", func() bool {
		all := a.All()
		return len(all) == 1 && string(all["new"]) == "y"
	})
}
