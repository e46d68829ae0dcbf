package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"hitship/internal/testenv"
)

// The binary the Makefile builds (`make build`), once per test process: the
// tests below run it as an operator would.
var (
	makeOnce sync.Once
	makeBin  string
	makeErr  error
)

// repoRoot is the module's root, two directories up from cmd/hitship.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// madeBinary builds hitship with `make build BIN=<temp dir>`.
func madeBinary(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("make is not installed")
	}
	root := repoRoot(t)
	makeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hitship-make")
		if err != nil {
			makeErr = err
			return
		}
		cmd := exec.Command("make", "-s", "build", "BIN="+dir)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			makeErr = fmt.Errorf("make build: %v\n%s", err, out)
			return
		}
		makeBin = filepath.Join(dir, "hitship")
	})
	if makeErr != nil {
		t.Fatal(makeErr)
	}
	return makeBin
}

// gitHead is the commit the repository is at.
func gitHead(t *testing.T) string {
	t.Helper()
	cmd := exec.Command("git", "rev-parse", "HEAD")
	cmd.Dir = repoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// syncBuffer is a bytes.Buffer safe for a process writing while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// proc is a running hitship binary.
type proc struct {
	cmd    *exec.Cmd
	stdout *syncBuffer
	stderr *syncBuffer
	done   chan struct{}
	code   int
}

// startBinary runs bin with args and env added to the test's environment. It is
// killed at the end of the test if still running.
func startBinary(t *testing.T, bin string, env []string, args ...string) *proc {
	t.Helper()
	p := &proc{cmd: exec.Command(bin, args...), stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = p.stdout, p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		p.code = p.cmd.ProcessState.ExitCode()
		close(p.done)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			t.Logf("%s %s\nstdout:\n%s\nstderr:\n%s", filepath.Base(bin), strings.Join(args, " "), p.stdout, p.stderr)
		}
	})
	return p
}

// wait waits for the process to exit and returns its exit code.
func (p *proc) wait(t *testing.T, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(within):
		t.Fatalf("the process did not exit within %s", within)
		return -1
	}
}

// waitFor polls cond until it holds or within passes.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within %s: %s", within, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// runEnv is what `hitship run` needs around it: Kafka, Redis and S3 for
// tests, and a config file of them.
type runEnv struct {
	kafka  *testenv.Kafka
	redis  *testenv.Redis
	s3     *testenv.S3
	listen string
	spool  string
	path   string
}

const runSecretEnv = "HITSHIP_BINTEST_SECRET"

func newRunEnv(t *testing.T) *runEnv {
	t.Helper()
	e := &runEnv{
		kafka:  testenv.MustKafka(t, testenv.KafkaOptions{Partitions: 2, Topics: []string{"hits", "hits-dlq"}}),
		redis:  testenv.MustRedis(t, testenv.RedisOptions{}),
		s3:     testenv.MustS3(t, testenv.S3Options{Buckets: []string{"acme-hits"}}),
		listen: freeAddr(t),
		spool:  t.TempDir(),
		path:   filepath.Join(t.TempDir(), "hitship.yaml"),
	}
	e.writeConfig(t, runSecretEnv)
	return e
}

// writeConfig writes the config file with secretEnv as the integration's
// secret_access_key_env.
func (e *runEnv) writeConfig(t *testing.T, secretEnv string) {
	t.Helper()
	y := fmt.Sprintf(`kafka:
  brokers: [%s]
  topic: hits
  dead_letter_topic: hits-dlq
  session_timeout: 6s
  rebalance_timeout: 6s
  heartbeat_interval: 1s
window: {size: 10s, grace: 1s, idle_timeout: 2s}
spool: {dir: %q}
s3: {endpoint: %q, path_style: true, if_none_match: false}
redis: {addr: %q}
http: {listen: %q}
log: {format: json, level: info}
integrations:
  - name: acme
    client_id: 1
    region: us-east-1
    bucket: acme-hits
    format: ndjson
    credentials: {access_key_id: TESTACCESSKEY0001, secret_access_key_env: %q}
`, strings.Join(e.kafka.Addrs(), ", "), e.spool, e.s3.URL(), e.redis.Addr(), e.listen, secretEnv)
	if err := os.WriteFile(e.path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
}

// start runs `hitship run --config` on the env's config.
func (e *runEnv) start(t *testing.T, bin string, extra ...string) *proc {
	t.Helper()
	return startBinary(t, bin, append([]string{runSecretEnv + "=bintest-secret-value"}, extra...), "run", "--config", e.path)
}

// get returns the body of GET http://listen/path, "" if it does not answer.
func get(listen, path string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+listen+path, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// signal sends sig to the process.
func (p *proc) signal(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
}

// lines returns the lines of s without the empty last one.
func lines(s string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		out = append(out, sc.Text())
	}
	return out
}

// TestBuildNamesCommit: the binary `make build` makes names the commit it was
// built from, in `hitship version` and in hitship_build_info. Before, it said
// "(devel)" and revision "unknown" (no -X, and Go's VCS stamp is off here:
// GOFLAGS=-buildvcs=false, and it does not see git worktrees).
func TestBuildNamesCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := madeBinary(t)
	head := gitHead(t)
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "revision "+head) || strings.Contains(string(out), "(devel)") {
		t.Errorf("hitship version = %q, want it to name revision %s", out, head)
	}

	e := newRunEnv(t)
	p := e.start(t, bin)
	want := `revision="` + head + `"`
	var line string
	waitFor(t, 30*time.Second, "hitship_build_info served", func() bool {
		for _, l := range lines(get(e.listen, "/metrics")) {
			if strings.HasPrefix(l, "hitship_build_info{") {
				line = l
				return true
			}
		}
		return false
	})
	if !strings.Contains(line, want) || strings.Contains(line, `version="(devel)"`) {
		t.Errorf("%s, want %s and a version", line, want)
	}
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}
}

// pastedSecret is an AWS secret key pasted where the name of its environment
// variable belongs.
const pastedSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY"

// TestPastedSecretNeverPrinted: a secret pasted into secret_access_key_env is
// refused by check-config, at start-up and by a SIGHUP reload, each time with
// the key and the fix, and none of them prints it. Before, all three printed
// `invalid environment variable name "wJalr..."`.
func TestPastedSecretNeverPrinted(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := madeBinary(t)
	e := newRunEnv(t)
	p := e.start(t, bin)
	waitFor(t, 30*time.Second, "ready", func() bool { return strings.HasPrefix(get(e.listen, "/readyz"), "ready") })

	e.writeConfig(t, pastedSecret)
	const key = "integrations[0].credentials.secret_access_key_env"
	code, out, errs := runCmd("check-config", e.path)
	if code != 1 || !strings.Contains(errs, key) || !strings.Contains(errs, "environment variable") {
		t.Errorf("check-config: exit %d, stderr does not name %s:\n%s", code, key, errs)
	}
	if strings.Contains(out+errs, pastedSecret) {
		t.Errorf("check-config prints the pasted secret:\n%s%s", out, errs)
	}

	p.signal(t, syscall.SIGHUP)
	waitFor(t, 10*time.Second, "the reload refused", func() bool { return strings.Contains(p.stderr.String(), "config not reloaded") })
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}
	if s := p.stderr.String(); !strings.Contains(s, key) || strings.Contains(s, pastedSecret) {
		t.Errorf("the reload log does not name %s, or prints the pasted secret:\n%s", key, s)
	}

	start := startBinary(t, bin, nil, "run", "--config", e.path)
	if code := start.wait(t, 10*time.Second); code != 1 {
		t.Errorf("start-up with the pasted secret: exit %d, want 1", code)
	}
	if s := start.stdout.String() + start.stderr.String(); !strings.Contains(s, key) || strings.Contains(s, pastedSecret) {
		t.Errorf("start-up does not name %s, or prints the pasted secret:\n%s", key, s)
	}
}

// TestSecondRunOnOneSpool: a second `hitship run` on the spool directory of a
// running one stops at start-up with an error naming spool.dir, the first
// one's pid and the fix, and leaves the first one's files alone; the first
// one goes on and stops cleanly.
func TestSecondRunOnOneSpool(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := madeBinary(t)
	e := newRunEnv(t)
	first := e.start(t, bin)
	waitFor(t, 30*time.Second, "ready", func() bool { return strings.HasPrefix(get(e.listen, "/readyz"), "ready") })
	// A spill file of the first one's, as a window larger than memory leaves.
	spill := filepath.Join(e.spool, "hs-999.spool")
	if err := os.WriteFile(spill, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	e.listen = freeAddr(t)
	e.writeConfig(t, runSecretEnv)
	second := e.start(t, bin)
	if code := second.wait(t, 20*time.Second); code != 1 {
		t.Fatalf("the second process: exit %d, want 1", code)
	}
	msg := second.stderr.String()
	for _, want := range []string{"spool.dir", e.spool, fmt.Sprintf("pid %d", first.cmd.Process.Pid), "set another spool.dir, or stop the other process"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the second process's error does not say %q:\n%s", want, msg)
		}
	}
	if _, err := os.Stat(spill); err != nil {
		t.Errorf("the second process removed the first one's spool file: %v", err)
	}
	first.signal(t, syscall.SIGTERM)
	if code := first.wait(t, 30*time.Second); code != 0 {
		t.Errorf("the first process: exit code %d after SIGTERM", code)
	}
}

// TestSIGHUPDuringStartup: a SIGHUP that arrives while `hitship run` is still
// starting (a config change rolled out as a replica restarts) neither ends the
// process nor is lost: it is applied once the service runs. Before, Go's
// default action for an unhandled SIGHUP ended the process with no log line.
// The config file is a FIFO, so the start-up waits, reading it, for as long as
// the test likes.
func TestSIGHUPDuringStartup(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := madeBinary(t)
	e := newRunEnv(t)
	content, err := os.ReadFile(e.path)
	if err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(t.TempDir(), "hitship.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	feed := func() {
		t.Helper()
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0) // waits for the reader
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(content); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	p := startBinary(t, bin, []string{runSecretEnv + "=bintest-secret-value"}, "run", "--config", fifo)
	time.Sleep(300 * time.Millisecond) // past the runtime's start; now reading the config
	p.signal(t, syscall.SIGHUP)
	time.Sleep(200 * time.Millisecond)
	select {
	case <-p.done:
		t.Fatalf("a SIGHUP while the config was read ended the process (exit %d)", p.code)
	default:
	}
	feed()
	waitFor(t, 30*time.Second, "ready", func() bool { return strings.HasPrefix(get(e.listen, "/readyz"), "ready") })
	feed() // the reload the SIGHUP asked for reads the file again
	waitFor(t, 10*time.Second, "the reload asked for during start-up", func() bool {
		return strings.Contains(p.stderr.String(), "config reloaded")
	})
	p.signal(t, syscall.SIGTERM)
	if code := p.wait(t, 30*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGTERM", code)
	}
}
