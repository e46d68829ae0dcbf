package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"hitship/config"
	"hitship/internal/testenv"
	"hitship/internal/testenv/s3policy"
	"hitship/service"
	"hitship/sink"
)

// env is one test world: a kfake broker, an S3 server behind the PutObject-only
// proxy, and a real redis-server. Members (hitship replicas) run in-process
// (startMember) or as the real binary (startProcess) so they can be SIGKILLed.
type env struct {
	t      *testing.T
	kafka  *testenv.Kafka
	s3     *testenv.S3
	proxy  *s3policy.Proxy
	s3URL  string // the proxy's URL: what members talk to
	redis  *testenv.Redis
	topic  string
	dlq    string
	parts  int
	secret string
}

// testSecretEnv holds testSecret for the whole test binary (TestMain): tests
// that run in parallel cannot set it each (t.Setenv).
const (
	testSecretEnv = "HITSHIP_TEST_S3_SECRET"
	testSecret    = "test-secret-value-42"
)

func newEnv(t *testing.T, partitions int, buckets ...string) *env {
	t.Helper()
	return newEnvWith(t, partitions, testenv.KafkaOptions{DataDir: t.TempDir()}, buckets...)
}

// newEnvWith is newEnv with a broker started with kopts (its state on disk,
// SASL, TLS) and the topics it names besides the source and dead-letter
// topics.
func newEnvWith(t *testing.T, partitions int, kopts testenv.KafkaOptions, buckets ...string) *env {
	t.Helper()
	e := &env{t: t, topic: "hits", dlq: "hits-dead-letter", parts: partitions, secret: testSecret}
	kopts.Partitions, kopts.GroupMinSessionTimeout = partitions, time.Second
	kopts.Topics = append([]string{e.topic, e.dlq}, kopts.Topics...)
	e.kafka = testenv.MustKafka(t, kopts)
	e.s3 = testenv.MustS3(t, testenv.S3Options{Buckets: buckets})
	p, err := s3policy.New(e.s3.URL())
	if err != nil {
		t.Fatal(err)
	}
	e.proxy = p
	srv := httptest.NewServer(p)
	t.Cleanup(srv.Close)
	e.s3URL = srv.URL
	e.redis = testenv.MustRedis(t, testenv.RedisOptions{})
	return e
}

// integ is a test integration.
func integ(name string, client int64, bucket, format string) config.Integration {
	in := config.DefaultIntegration()
	in.Name, in.ClientID, in.Region, in.Bucket, in.Prefix, in.Format = name, client, testenv.S3Region, bucket, "hits/", format
	in.Credentials.AccessKeyID, in.Credentials.SecretAccessKeyEnv = "TESTACCESSKEY0001", testSecretEnv
	return in
}

// config returns a validated config for a member of the test group.
func (e *env) config(t *testing.T, ins ...config.Integration) *config.Config {
	t.Helper()
	cfg := config.Default()
	cfg.Kafka.Brokers = e.kafka.Addrs()
	cfg.Kafka.Topic, cfg.Kafka.DeadLetterTopic, cfg.Kafka.Group = e.topic, e.dlq, "hitship-test"
	cfg.Kafka.SessionTimeout, cfg.Kafka.RebalanceTimeout, cfg.Kafka.HeartbeatInterval = 3*time.Second, 3*time.Second, 300*time.Millisecond
	cfg.Kafka.CommitInterval = 200 * time.Millisecond
	cfg.Window.IdleTimeout = 2 * time.Second
	cfg.Spool.Dir = t.TempDir()
	cfg.Redis.Addr = e.redis.Addr()
	cfg.S3.Endpoint, cfg.S3.PathStyle = e.s3URL, true
	cfg.S3.IfNoneMatch = false // gofakes3 does not implement it; a replay overwrites with the same bytes
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.Delivery.RetryMin, cfg.Delivery.RetryMax = 100*time.Millisecond, 500*time.Millisecond
	// Failure tests exercise retries, parking and commits; a bucket failing for a
	// few seconds would otherwise reach the default 20 attempts and be
	// auto-disabled. TestAutoDisable runs with the product's minimum.
	cfg.Delivery.HealthMinAttempts = 1_000_000
	cfg.Log.Level = "warn"
	cfg.Integrations = ins
	if ps := cfg.Validate(config.WithKeyTemplate(func(s string) error { _, err := sink.ParseKeyTemplate(s); return err })); len(ps) > 0 {
		t.Fatal(config.AsError(ps))
	}
	return &cfg
}

// member is an in-process replica.
type member struct {
	name   string
	cancel context.CancelFunc
	done   chan error
	reg    *prometheus.Registry
}

func (e *env) startMember(t *testing.T, name string, cfg *config.Config) *member {
	t.Helper()
	reg := prometheus.NewRegistry()
	level := slog.LevelWarn
	if os.Getenv("HITSHIP_TEST_LOG") == "debug" {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: level})).With("member", name)
	// Every replica has its own spool directory (a pod's emptyDir): members
	// sharing cfg must not share it, since a spool clears stale files at start.
	own := *cfg
	own.Spool.Dir = t.TempDir()
	svc, err := service.New(&own, service.Deps{Logger: log, Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &member{name: name, cancel: cancel, done: make(chan error, 1), reg: reg}
	go func() { m.done <- svc.Run(ctx) }()
	t.Cleanup(func() { m.stop(t) })
	return m
}

// stop is SIGTERM: a clean stop. Idempotent.
func (m *member) stop(t *testing.T) {
	if m.cancel == nil {
		return
	}
	m.cancel()
	m.cancel = nil
	select {
	case err := <-m.done:
		if err != nil {
			t.Errorf("member %s: %v", m.name, err)
		}
	case <-time.After(60 * time.Second):
		t.Errorf("member %s did not stop within 60s", m.name)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// hitshipBinary builds cmd/hitship once per test process.
func hitshipBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hitship-bin")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "hitship")
		_, file, _, _ := runtime.Caller(0)
		// Named like a Makefile build (hitship_build_info names the commit).
		binErr = testenv.BuildHitship(context.Background(), filepath.Join(filepath.Dir(file), ".."), binPath)
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// process is a replica running the real binary.
type process struct {
	cmd  *exec.Cmd
	out  *bytes.Buffer
	done chan struct{}
}

// startProcess runs `hitship run --config` with cfg written as YAML.
func (e *env) startProcess(t *testing.T, cfg *config.Config) *process {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hitship.yaml")
	if err := os.WriteFile(path, configYAML(t, cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := &process{out: &bytes.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(hitshipBinary(t), "run", "--config", path)
	p.cmd.Env = append(os.Environ(), testSecretEnv+"="+e.secret)
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("process output:\n%s", p.out.String())
		}
	})
	return p
}

// kill is SIGKILL: no clean stop, no final commit.
func (p *process) kill() {
	_ = p.cmd.Process.Kill()
	<-p.done
}

// configYAML writes cfg back as the YAML a user would write.
func configYAML(t *testing.T, cfg *config.Config) []byte {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "kafka:\n  brokers: [%s]\n  topic: %s\n  group: %s\n  dead_letter_topic: %s\n  session_timeout: %s\n  rebalance_timeout: %s\n  heartbeat_interval: %s\n  commit_interval: %s\n",
		strings.Join(cfg.Kafka.Brokers, ", "), cfg.Kafka.Topic, cfg.Kafka.Group, cfg.Kafka.DeadLetterTopic,
		cfg.Kafka.SessionTimeout, cfg.Kafka.RebalanceTimeout, cfg.Kafka.HeartbeatInterval, cfg.Kafka.CommitInterval)
	fmt.Fprintf(&b, "window:\n  size: %s\n  grace: %s\n  idle_timeout: %s\n", cfg.Window.Size, cfg.Window.Grace, cfg.Window.IdleTimeout)
	fmt.Fprintf(&b, "spool:\n  dir: %s\n  max_bytes: %d\n  memory_bytes: %d\n", cfg.Spool.Dir, cfg.Spool.MaxBytes, cfg.Spool.MemoryBytes)
	fmt.Fprintf(&b, "delivery:\n  retry_min: %s\n  retry_max: %s\n  health_min_attempts: %d\n", cfg.Delivery.RetryMin, cfg.Delivery.RetryMax, cfg.Delivery.HealthMinAttempts)
	if cfg.Delivery.Staged != nil {
		fmt.Fprintf(&b, "  staged: %t\n", *cfg.Delivery.Staged)
	}
	fmt.Fprintf(&b, "s3:\n  endpoint: %s\n  path_style: %t\n  if_none_match: %t\n", cfg.S3.Endpoint, cfg.S3.PathStyle, cfg.S3.IfNoneMatch)
	fmt.Fprintf(&b, "redis:\n  addr: %s\nhttp:\n  listen: \"127.0.0.1:0\"\nlog:\n  format: json\n  level: %s\n", cfg.Redis.Addr, cfg.Log.Level)
	b.WriteString("integrations:\n")
	for _, in := range cfg.Integrations {
		fmt.Fprintf(&b, "  - name: %s\n    client_id: %d\n    enabled: %t\n    region: %s\n    bucket: %s\n    prefix: %q\n    format: %s\n    compression: %s\n    credentials:\n      access_key_id: %s\n      secret_access_key_env: %s\n",
			in.Name, in.ClientID, in.Enabled, in.Region, in.Bucket, in.Prefix, in.Format, in.Compression, in.Credentials.AccessKeyID, in.Credentials.SecretAccessKeyEnv)
	}
	return []byte(b.String())
}

// sent is a produced hit, identified by its request_id.
type sent struct {
	id        string
	client    int64
	partition int
	value     []byte
}

// produceHits writes n hits of the given clients over partitions, with event
// times spread over `windows` windows of size win starting at base, out of order
// (jitter), and returns them.
func (e *env) produceHits(t *testing.T, n int, clients []int64, base time.Time, win time.Duration, windows int, seed int64) []sent {
	t.Helper()
	var out []sent
	msgs := make([]kafka.Message, 0, n)
	span := int64(win/time.Second) * int64(windows)
	for i := 0; i < n; i++ {
		c := clients[i%len(clients)]
		// Mostly increasing time with jitter of up to 90 s back: out of order,
		// some beyond the 1-minute grace (late).
		x := uint64(i)*2654435761 + uint64(seed)
		ts := base.Unix() + int64(i)*span/int64(n) - int64(x%90)
		if ts < base.Unix() {
			ts = base.Unix()
		}
		id := fmt.Sprintf("%08d%08x", i, uint32(seed))
		v := []byte(fmt.Sprintf(`{"time":"%d","request_id":"%s","ip":"10.0.0.%d","datacenter":"unknown","tor":"none","remote_country":null,"application_id":[-1],"domain":"localhost","method":"GET","uri":"/etc/passwd","protocol":"none","status_code":499,"attack_type":"ptrav","block_status":"monitored","payload":["/etc/passwd"],"point":["uri"],"tags":{"lom_id":7}}`, ts, id, i%250))
		p := int(c+int64(i)) % e.parts
		msgs = append(msgs, kafka.Message{Partition: p, Value: v, Time: time.Now(),
			Headers: []kafka.Header{{Key: "client_id", Value: []byte(strconv.FormatInt(c, 10))}}})
		out = append(out, sent{id: id, client: c, partition: p, value: v})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := 0; i < len(msgs); i += 1000 {
		if err := e.kafka.Produce(ctx, e.topic, msgs[i:min(i+1000, len(msgs))]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// object is one object read back from S3.
type object struct {
	bucket, key string
	records     [][]byte
}

// objects reads every object of the buckets and splits it into records (JSON array or NDJSON by extension).
func (e *env) objects(t *testing.T, buckets ...string) []object {
	t.Helper()
	var out []object
	for _, b := range buckets {
		objs, err := e.s3.Objects(context.Background(), b)
		if err != nil {
			t.Fatal(err)
		}
		for k, data := range objs {
			out = append(out, object{bucket: b, key: k, records: splitRecords(t, k, data)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].bucket+out[i].key < out[j].bucket+out[j].key })
	return out
}

func splitRecords(t *testing.T, key string, data []byte) [][]byte {
	t.Helper()
	var recs [][]byte
	switch {
	case strings.HasSuffix(key, ".jsonl"):
		if len(data) == 0 || data[len(data)-1] != '\n' {
			t.Fatalf("%s: NDJSON does not end in a newline", key)
		}
		recs = append(recs, bytes.Split(data[:len(data)-1], []byte("\n"))...)
	case strings.HasSuffix(key, ".json"):
		if !bytes.HasPrefix(data, []byte("[\n")) || !bytes.HasSuffix(data, []byte("\n]\n")) {
			t.Fatalf("%s: not a JSON array in the documented layout", key)
		}
		var arr []json.RawMessage
		if err := json.Unmarshal(data, &arr); err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		recs = append(recs, bytes.Split(data[2:len(data)-3], []byte(",\n"))...)
		if len(recs) != len(arr) {
			t.Fatalf("%s: %d lines but %d array elements", key, len(recs), len(arr))
		}
	default:
		t.Fatalf("unexpected key %s", key)
	}
	return recs
}

// waitFor polls cond until it is true or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// committedToEnd reports whether the group's committed offsets reached the high-water marks.
func (e *env) committedToEnd(t *testing.T, group string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hw, err := e.kafka.HighWater(ctx, e.topic)
	if err != nil {
		return false
	}
	c, err := e.kafka.Committed(ctx, group, e.topic)
	if err != nil {
		return false
	}
	for p, h := range hw {
		if h > 0 && c[p] != h {
			return false
		}
	}
	return true
}

var _ = io.Discard
