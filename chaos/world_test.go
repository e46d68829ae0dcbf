package chaos

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"hitship/config"
	"hitship/internal/testenv"
	"hitship/internal/testenv/s3policy"
)

// The names the world uses.
const (
	topic       = "hits"
	dlqTopic    = "hits-dead-letter"
	group       = "hitship-chaos"
	partitions  = 12
	parkBucket  = "chaos-parking"
	parkPrefix  = "hitship/"
	secretEnv   = "HITSHIP_CHAOS_S3_SECRET"
	secretValue = "chaos-secret-value-1234"
)

// keyPrefix is the replicas' redis.key_prefix: a hash tag's in the cluster
// variant (redis_test.go), set by TestChaos before the world starts.
var keyPrefix = config.DefaultKeyPrefix

// integration is one customer destination of the chaos world.
type integration struct {
	name     string
	client   int64
	bucket   string
	format   string // json | ndjson
	prefix   string // "" is "hits/"
	disabled bool   // in the config file
}

func (in integration) keyPrefix() string {
	if in.prefix == "" {
		return "hits/"
	}
	return in.prefix
}

// integrations gives tenants 1..20 one or two integrations (json and ndjson);
// tenants 21..50 have none (their hits are read and skipped). On the staged
// path tenant 5's is ocsf-parquet (OCSF records in Parquet, ordered by time),
// which only staged delivery makes.
func integrations(staged bool) []integration {
	var out []integration
	for c := int64(1); c <= 20; c++ {
		formats := []string{"json"}
		switch {
		case c%3 == 0:
			formats = []string{"json", "ndjson"}
		case c%2 == 0:
			formats = []string{"ndjson"}
		case c == 5 && staged:
			formats = []string{ocsfParquet}
		}
		for _, f := range formats {
			name := fmt.Sprintf("t%d-%s", c, f)
			out = append(out, integration{name: name, client: c, bucket: "chaos-" + name, format: f})
		}
	}
	return out
}

// world is the chaos test's outside: Kafka, S3 with its fault injectors and the
// PutObject-only policy, Redis, and the built binary.
type world struct {
	t     *testing.T
	dir   string
	bin   string
	kafka *testenv.Kafka
	s3    *testenv.S3
	// custFaults sits in front of the policy proxy, which sits in front of
	// S3: the integrations' path. parkFaults sits in front of S3 directly:
	// the parking bucket is the operator's own, with full access.
	custFaults, parkFaults *Injector
	policy                 *s3policy.Proxy
	custURL, parkURL       string
	redis                  *chaosRedis
	ins                    []integration // the config at the start
	// after is the config from the reload on: ins with one integration
	// added, one given another tenant, one given another prefix and one
	// removed (changes_test.go). Every bucket of either exists from the start.
	after []integration
	// staged: the replicas run staged delivery (delivery.staged), the
	// parking bucket is their staging bucket, and each replica reaches it
	// through a tap of its own (staged_test.go) in front of parkFaults;
	// manifests is what the taps saw written.
	staged    bool
	manifests sync.Map
	// puts sees every PUT that reaches the customers' store.
	puts *putLedger
}

func newWorld(t *testing.T, faults FaultConfig, staged bool) *world {
	t.Helper()
	w := &world{t: t, dir: t.TempDir(), ins: integrations(staged), staged: staged}
	w.after = reloaded(w.ins)
	w.bin = buildBinary(t, w.dir)
	w.kafka = testenv.MustKafka(t, testenv.KafkaOptions{Partitions: partitions, Topics: []string{topic, dlqTopic},
		DataDir: filepath.Join(w.dir, "kafka"), GroupMinSessionTimeout: time.Second})
	buckets := []string{parkBucket}
	for _, in := range allIntegrations(w.ins, w.after) {
		buckets = append(buckets, in.bucket)
	}
	// Objects as files on disk: a long run writes gigabytes.
	w.s3 = testenv.MustS3(t, testenv.S3Options{Dir: filepath.Join(w.dir, "s3"), Buckets: buckets})
	p, err := s3policy.New(w.s3.URL())
	if err != nil {
		t.Fatal(err)
	}
	w.policy = p
	policySrv := httptest.NewServer(p)
	t.Cleanup(policySrv.Close)
	upstream, err := reverseProxy(policySrv.URL)
	if err != nil {
		t.Fatal(err)
	}
	// Every object written to a customer's bucket passes the ledger, which
	// checks that a key written again gets the same bytes.
	w.puts = &putLedger{next: upstream}
	cf := faults
	w.custFaults, err = NewInjector(w.puts, cf)
	if err != nil {
		t.Fatal(err)
	}
	custSrv := httptest.NewServer(w.custFaults)
	t.Cleanup(custSrv.Close)
	w.custURL = custSrv.URL

	parkUp, err := reverseProxy(w.s3.URL())
	if err != nil {
		t.Fatal(err)
	}
	if staged {
		// gofakes3 ignores If-None-Match: the staging bucket's intents are
		// created with it (DESIGN §5), so the test answers it as S3 does.
		parkUp = &conditionalPuts{next: parkUp, s3: w.s3}
	}
	pf := faults
	pf.Seed++
	w.parkFaults, err = NewInjector(parkUp, pf)
	if err != nil {
		t.Fatal(err)
	}
	parkSrv := httptest.NewServer(w.parkFaults)
	t.Cleanup(parkSrv.Close)
	w.parkURL = parkSrv.URL

	w.redis = startChaosRedis(t, chaosRedisMode(t))
	return w
}

// buildBinary builds cmd/hitship into dir.
func buildBinary(t *testing.T, dir string) string {
	t.Helper()
	bin := filepath.Join(dir, "hitship")
	_, file, _, _ := runtime.Caller(0)
	// Named like a Makefile build (hitship_build_info names the commit).
	if err := testenv.BuildHitship(context.Background(), filepath.Join(filepath.Dir(file), ".."), bin); err != nil {
		t.Fatal(err)
	}
	return bin
}

// configYAML is a replica's config file with the integrations ins; a
// memoryBytes above 0 sets spool.memory_bytes (small: buffers spill to disk).
func (w *world) configYAML(spool string, memoryBytes int, parkURL string, ins []integration) []byte {
	var b strings.Builder
	fmt.Fprintf(&b, `kafka:
  brokers: [%s]
  topic: %s
  group: %s
  dead_letter_topic: %s
  session_timeout: 4s
  rebalance_timeout: 4s
  heartbeat_interval: 400ms
  commit_interval: 500ms
window:
  size: 10s
  grace: 2s
  idle_timeout: 3s
spool:
  dir: %s%s
delivery:
  # The failing integration must not be auto-disabled (its hits would be
  # skipped, by design): far more attempts than a run makes.
  health_min_attempts: 1000000000%s
s3:
  endpoint: %s
  path_style: true
  if_none_match: false   # gofakes3 does not implement it; a replay overwrites with the same bytes
%shttp:
  listen: "127.0.0.1:0"
log:
  format: json
  level: info
parking:
  bucket: %s
  region: %s
  endpoint: %s
  path_style: true
  prefix: %s
  credentials:
    access_key_id: CHAOSPARKING0001
    secret_access_key_env: %s
integrations:
`, strings.Join(w.kafka.Addrs(), ", "), topic, group, dlqTopic, spool, memoryLine(memoryBytes), w.stagedLine(), w.custURL, w.redis.yaml(),
		parkBucket, testenv.S3Region, parkURL, parkPrefix, secretEnv)
	for _, in := range ins {
		fmt.Fprintf(&b, `  - name: %s
    client_id: %d
    region: %s
    bucket: %s
    prefix: %q
    format: %s
    enabled: %t
    credentials:
      access_key_id: CHAOSACCESSKEY01
      secret_access_key_env: %s
`, in.name, in.client, testenv.S3Region, in.bucket, in.keyPrefix(), in.format, !in.disabled, secretEnv)
	}
	return []byte(b.String())
}

// stagedLine turns staged delivery on (the key template is left to its
// default, which with delivery.staged is config.DefaultStagedKeyTemplate).
func (w *world) stagedLine() string {
	if !w.staged {
		// A staging bucket makes delivery staged unless it says otherwise.
		return "\n  staged: false"
	}
	return "\n  # The parking bucket is the staging bucket.\n  staged: true"
}

func memoryLine(n int) string {
	if n <= 0 {
		return ""
	}
	return fmt.Sprintf("\n  memory_bytes: %d", n)
}

// replica is one hitship process slot: a config, a spool dir that survives its
// restarts (a pod's emptyDir survives a container restart) and a log file.
type replica struct {
	name    string
	config  string
	spool   string
	memory  int // spool.memory_bytes, 0 for the default
	logPath string
	bin     string
	w       *world
	// parkURL is where the replica reaches the parking (staging) bucket;
	// tap, on the staged path, sees its requests there.
	parkURL string
	tap     *tap

	mu     sync.Mutex
	cmd    *exec.Cmd
	done   chan struct{}
	starts int
	// logFrom is the log's size when the process was started: once it
	// grew, the process logged its first line.
	logFrom int64
}

// newReplica makes a replica slot; spool is its spool directory ("" for one
// of its own) and memory its spool.memory_bytes (0 for the default).
func (w *world) newReplica(name, spool string, memory int) *replica {
	w.t.Helper()
	dir := filepath.Join(w.dir, name)
	if spool == "" {
		spool = filepath.Join(dir, "spool")
	}
	r := &replica{name: name, config: filepath.Join(dir, "hitship.yaml"), spool: spool, memory: memory,
		logPath: filepath.Join(dir, "hitship.log"), bin: w.bin, w: w, parkURL: w.parkURL}
	if w.staged {
		r.tap = newTap(w.parkFaults, &w.manifests)
		srv := httptest.NewServer(r.tap)
		w.t.Cleanup(srv.Close)
		r.parkURL = srv.URL
	}
	if err := os.MkdirAll(r.spool, 0o700); err != nil {
		w.t.Fatal(err)
	}
	if err := r.writeConfig(w.ins); err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { r.kill() })
	return r
}

// writeConfig writes the replica's config file with the integrations ins,
// checked by check-config, atomically (a replica starting meanwhile reads the
// old file or the new one).
func (r *replica) writeConfig(ins []integration) error {
	tmp := r.config + ".new"
	if err := os.MkdirAll(filepath.Dir(r.config), 0o700); err != nil {
		return err
	}
	if err := os.WriteFile(tmp, r.w.configYAML(r.spool, r.memory, r.parkURL, ins), 0o600); err != nil {
		return err
	}
	check := exec.Command(r.bin, "check-config", tmp)
	check.Env = append(os.Environ(), secretEnv+"="+secretValue)
	if out, err := check.CombinedOutput(); err != nil {
		return fmt.Errorf("check-config: %v\n%s", err, out)
	}
	return os.Rename(tmp, r.config)
}

// hup sends SIGHUP (reload the config file) to the running process, if any,
// once it takes the signal: hitship takes SIGHUP before it reads its config
// and logs its first line after that, and a process signalled before its
// main function ran dies of it (Go's default), which no program can help.
// A process started after its config was written reads the new one anyway.
func (r *replica) hup() {
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		r.mu.Lock()
		if r.cmd == nil {
			r.mu.Unlock()
			return
		}
		fi, err := os.Stat(r.logPath)
		if err == nil && fi.Size() > r.logFrom || time.Now().After(deadline) {
			_ = r.cmd.Process.Signal(syscall.SIGHUP)
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
	}
}

// start runs `hitship run` unless it is running.
func (r *replica) start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd != nil {
		return nil
	}
	logf, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	fmt.Fprintf(logf, "=== start %d at %s\n", r.starts+1, time.Now().Format(time.RFC3339Nano))
	if fi, err := logf.Stat(); err == nil {
		r.logFrom = fi.Size()
	}
	cmd := exec.Command(r.bin, "run", "--config", r.config)
	cmd.Env = append(os.Environ(), secretEnv+"="+secretValue)
	cmd.Stdout, cmd.Stderr = logf, logf // files: no copying goroutines
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("start %s: %w", r.name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = logf.Close(); close(done) }()
	r.cmd, r.done = cmd, done
	r.starts++
	return nil
}

// exited reports a process that ended without being stopped by the test (a
// crash), and forgets it so that start can run a new one.
func (r *replica) exited() (bool, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return false, ""
	}
	select {
	case <-r.done:
		state := r.cmd.ProcessState.String()
		r.cmd = nil
		return true, state
	default:
		return false, ""
	}
}

// kill is SIGKILL: no clean stop.
func (r *replica) kill() {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-done
	if r.tap != nil {
		r.tap.forget() // what the dead process had in hand is no longer in its hands
	}
}

// term is SIGTERM; it returns the exit code, or an error when the process
// outlives timeout (it is killed then).
func (r *replica) term(timeout time.Duration) (int, error) {
	r.mu.Lock()
	cmd, done := r.cmd, r.done
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return 0, nil
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return cmd.ProcessState.ExitCode(), nil
	case <-time.After(timeout):
		_ = cmd.Process.Kill()
		<-done
		return -1, fmt.Errorf("%s did not exit within %s of SIGTERM", r.name, timeout)
	}
}

// logTail returns the last n bytes of the replica's log.
func (r *replica) logTail(n int) string {
	b, _ := os.ReadFile(r.logPath)
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// waitFor polls cond every interval until it is true or ctx ends.
func waitFor(ctx context.Context, interval time.Duration, cond func() bool) bool {
	for {
		if cond() {
			return true
		}
		if !sleepCtx(ctx, interval) {
			return cond()
		}
	}
}
