package service_test

// Phase 2 of issue #11: routing is replay state (defects 7 and 13, third
// link). A crash after a membership change mid-window must replay with the
// membership the first run had at every offset.

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"hitship/config"
	"hitship/integrations/registry"
)

// reloadable is a real hitship process whose config file can be rewritten
// and reloaded (SIGHUP), with its metrics on a known port.
type reloadable struct {
	*process
	path, metrics string
	port          int
	logs          *lockedBuffer
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func (e *env) startReloadable(t *testing.T, cfg *config.Config) *reloadable {
	t.Helper()
	r := &reloadable{path: filepath.Join(t.TempDir(), "hitship.yaml"), port: freePort(t), logs: &lockedBuffer{}}
	r.metrics = fmt.Sprintf("http://127.0.0.1:%d/metrics", r.port)
	r.write(t, cfg)
	p := &process{done: make(chan struct{})}
	p.cmd = exec.Command(hitshipBinary(t), "run", "--config", r.path)
	p.cmd.Env = append(os.Environ(), testSecretEnv+"="+e.secret)
	p.cmd.Stdout, p.cmd.Stderr = r.logs, r.logs
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	r.process = p
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("process output:\n%s", r.logs.String())
		}
	})
	waitFor(t, 30*time.Second, "the process serving metrics", func() bool { _, err := r.metric("hitship_build_info"); return err == nil })
	return r
}

func (r *reloadable) write(t *testing.T, cfg *config.Config) {
	t.Helper()
	y := strings.Replace(string(configYAML(t, cfg)), `listen: "127.0.0.1:0"`, fmt.Sprintf(`listen: "127.0.0.1:%d"`, r.port), 1)
	if err := os.WriteFile(r.path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
}

// reload rewrites the config file and sends SIGHUP; it returns once the
// process logged the reload.
func (r *reloadable) reload(t *testing.T, cfg *config.Config) {
	t.Helper()
	before := strings.Count(r.logs.String(), "config reloaded")
	r.write(t, cfg)
	if err := r.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the reload", func() bool { return strings.Count(r.logs.String(), "config reloaded") > before })
}

// metric sums the samples of name whose labels hold every `k="v"` given.
func (r *reloadable) metric(name string, labels ...string) (float64, error) {
	resp, err := http.Get(r.metrics)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sum := 0.0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
lines:
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || len(line) <= len(name) || (line[len(name)] != '{' && line[len(name)] != ' ') {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(line, l) {
				continue lines
			}
		}
		v, err := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, sc.Err()
}

func (r *reloadable) waitMetric(t *testing.T, what string, want float64, name string, labels ...string) {
	t.Helper()
	waitFor(t, 20*time.Second, what, func() bool { v, err := r.metric(name, labels...); return err == nil && v >= want })
}

// routingWorld is one partition, tenants 1 and 2, integrations one (1) and
// two (2), 10-s windows, a first process that never commits.
func routingWorld(t *testing.T) (e *env, one, two config.Integration, cfg *config.Config) {
	t.Helper()
	hitshipBinary(t)
	e = newEnv(t, 1, "b-one", "b-two")
	one, two = integ("one", 1, "b-one", "ndjson"), integ("two", 2, "b-two", "json")
	cfg = e.config(t, one, two)
	cfg.Window.Size, cfg.Window.Grace, cfg.Window.IdleTimeout = 10*time.Second, time.Second, time.Second
	cfg.Kafka.CommitInterval = 30 * time.Second // no commit before the kill
	cfg.Log.Level = "info"                      // "config reloaded"
	return e, one, two, cfg
}

// batch produces n hits of tenants 1 and 2 in turn at ts.
func batch(t *testing.T, e *env, n int, ts, seed int64) []sent {
	t.Helper()
	specs := make([]hitAt, n)
	for i := range specs {
		specs[i] = hitAt{client: int64(1 + i%2), ts: ts}
	}
	return produceHitsAt(t, e, seed, specs)
}

// expectRouted checks where every hit is: hits of tenant 1 exactly once in
// b-one; hits of tenant 2 exactly once in b-two when toTwo says so, nowhere
// otherwise.
func expectRouted(t *testing.T, e *env, all []sent, ins []config.Integration, toTwo func(h sent) bool) {
	t.Helper()
	where := deliveredWhere(t, e, all, ins)
	var bad []string
	for _, h := range all {
		one, two := where["one"][h.id], where["two"][h.id]
		switch {
		case h.client == 1 && len(one) != 1:
			bad = append(bad, fmt.Sprintf("hit %s of tenant 1 in %d objects of one", h.id, len(one)))
		case h.client == 2 && toTwo(h) && len(two) != 1:
			bad = append(bad, fmt.Sprintf("hit %s of tenant 2 in %d objects of two, want 1: %v", h.id, len(two), two))
		case h.client == 2 && !toTwo(h) && len(two) != 0:
			bad = append(bad, fmt.Sprintf("hit %s of tenant 2 in %d objects of two, want none: %v", h.id, len(two), two))
		}
	}
	if len(bad) > 0 {
		t.Fatalf("%d hits misrouted, first ones:\n%s", len(bad), strings.Join(bad[:min(len(bad), 6)], "\n"))
	}
}

// TestReloadAddsIntegrationThenCrash is defect 7 of issue #11 with a reload:
// integration two is added mid-window, its window closes and its object
// (the hits that arrived after the reload) is written, then the process is
// killed before any commit. The replay used to route with today's table: the
// hits of tenant 2 from before the reload went to two as well, into an
// object under another key (another first offset), which held the hits of
// the first object a second time. The replay now follows the routing log:
// every hit of the new integration exactly once, none from before it.
func TestReloadAddsIntegrationThenCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel() // it mostly waits (windows, retries, restarts): overlap it with another
	e, one, two, cfg := routingWorld(t)
	cfg1 := *cfg
	cfg1.Integrations = []config.Integration{one}
	waitWindowPhase(cfg.Window.Size, time.Second, 3*time.Second)
	ts := time.Now().Unix()
	p := e.startReloadable(t, &cfg1)
	before := batch(t, e, 200, ts, 101)
	p.waitMetric(t, "the first batch read", 200, "hitship_records_consumed_total")
	p.reload(t, cfg)
	after := batch(t, e, 200, ts, 102)
	waitFor(t, 30*time.Second, "window A's object of two", func() bool { return len(objectBytes(t, e, "b-two")) > 0 })
	p.kill()
	if c := committedOffsets(t, e, cfg.Kafka.Group); len(c) > 0 {
		t.Fatalf("test setup: the first process committed %v", c)
	}
	atKill := objectBytes(t, e, "b-one", "b-two")

	cfg2 := *cfg
	cfg2.Kafka.CommitInterval = 200 * time.Millisecond
	e.startProcess(t, &cfg2)
	waitFor(t, 60*time.Second, "offsets committed to the end", func() bool { return e.committedToEnd(t, cfg.Kafka.Group) })
	isAfter := map[string]bool{}
	for _, h := range after {
		isAfter[h.id] = true
	}
	expectRouted(t, e, append(before, after...), []config.Integration{one, two}, func(h sent) bool { return isAfter[h.id] })
	checkUnchanged(t, atKill, objectBytes(t, e, "b-one", "b-two"))
}

// TestAutoDisableThenCrash is defect 13 (third link) and defect 7 of issue
// #11 with an auto-disable: two is auto-disabled mid-window, with its
// window's buffer still open, and the process is killed. The restart used to
// skip two's records as disabled and commit past them: the hits that arrived
// while it was enabled were never written. Disabling applies to records that
// arrive after it: those that arrived while it was enabled are delivered
// exactly once, none that arrived after.
func TestAutoDisableThenCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel() // it mostly waits (windows, retries, restarts): overlap it with another
	e, one, two, cfg := routingWorld(t)
	reg, err := registry.New(e.redis.Client(), cfg.Redis.KeyPrefix, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	waitWindowPhase(cfg.Window.Size, time.Second, 3*time.Second)
	ts := time.Now().Unix()
	p := e.startReloadable(t, cfg)
	before := batch(t, e, 200, ts, 111)
	p.waitMetric(t, "the first batch read", 200, "hitship_records_consumed_total")
	if _, changed, err := reg.AutoDisable(context.Background(), "two", "test: 60% failures", "health"); err != nil || !changed {
		t.Fatalf("auto-disable: %v %v", changed, err)
	}
	p.waitMetric(t, "the process sees two auto-disabled", 1, "hitship_integration_auto_disabled", `integration="two"`)
	after := batch(t, e, 200, ts, 112)
	p.waitMetric(t, "the second batch read", 400, "hitship_records_consumed_total")
	p.kill() // two's window is still open: nothing of it was written
	if n := len(objectBytes(t, e, "b-two")); n != 0 {
		t.Fatalf("test setup: two's window closed before the kill (%d objects)", n)
	}

	cfg2 := *cfg
	cfg2.Kafka.CommitInterval = 200 * time.Millisecond
	e.startProcess(t, &cfg2)
	waitFor(t, 60*time.Second, "offsets committed to the end", func() bool { return e.committedToEnd(t, cfg.Kafka.Group) })
	isBefore := map[string]bool{}
	for _, h := range before {
		isBefore[h.id] = true
	}
	expectRouted(t, e, append(before, after...), []config.Integration{one, two}, func(h sent) bool { return isBefore[h.id] })
}

// TestFlushAllThenCrash: two is disabled in the config file by a reload
// mid-window (its open window holds hits of tenant 2 that arrived while it
// was enabled), then Redis loses everything (FLUSHALL) and the process is
// killed. The next process finds a committed offset without routing state
// (nor snapshot, nor idle log). It used to route with the live table, which
// leaves two out: the hits two had in its open window were never written.
// It now routes every tenant's records to all its configured integrations,
// disabled ones included, until the previous process's last read position,
// and records that. Nothing is lost; what it costs is counted here: hits of
// tenant 2 that arrived after two was disabled are delivered to it, and the
// objects of windows open at the committed offset may be written again
// (no snapshot).
func TestFlushAllThenCrash(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel() // it mostly waits (windows, retries, restarts): overlap it with another
	e, one, two, cfg := routingWorld(t)
	cfg.Kafka.CommitInterval = 200 * time.Millisecond
	p := e.startReloadable(t, cfg)
	prev := time.Now().Truncate(cfg.Window.Size).Add(-cfg.Window.Size).Unix()
	first := batch(t, e, 200, prev, 121) // a closed window: written and committed
	waitFor(t, 30*time.Second, "the first batch committed", func() bool { return e.committedToEnd(t, cfg.Kafka.Group) })
	waitWindowPhase(cfg.Window.Size, time.Second, 3*time.Second)
	ts := time.Now().Unix()
	open := batch(t, e, 200, ts, 122) // an open window
	p.waitMetric(t, "the second batch read", 400, "hitship_records_consumed_total")
	off := *cfg
	off.Integrations = []config.Integration{one, two}
	off.Integrations[1].Enabled = false
	p.reload(t, &off)
	after := batch(t, e, 200, ts, 123)
	p.waitMetric(t, "the third batch read", 600, "hitship_records_consumed_total")
	if err := e.redis.Client().FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	p.kill()
	if n := len(objectBytes(t, e, "b-two")); n != 1 {
		t.Fatalf("test setup: two has %d objects at the kill, want the first window's only", n)
	}

	e.startProcess(t, &off)
	waitFor(t, 60*time.Second, "offsets committed to the end", func() bool { return e.committedToEnd(t, cfg.Kafka.Group) })
	all := append(append(first, open...), after...)
	where := deliveredWhere(t, e, all, []config.Integration{one, two})
	isAfter := map[string]bool{}
	for _, h := range after {
		isAfter[h.id] = true
	}
	dups, extra, lost := 0, 0, 0
	for _, h := range all {
		keys := where[map[int64]string{1: "one", 2: "two"}[h.client]][h.id]
		switch {
		case h.client == 2 && isAfter[h.id]:
			if len(keys) > 0 {
				extra++
			}
		case len(keys) == 0:
			if lost++; lost <= 3 {
				t.Errorf("hit %s of tenant %d lost", h.id, h.client)
			}
		case len(keys) > 1:
			dups++
		}
	}
	if lost > 0 {
		t.Fatalf("%d hits lost", lost)
	}
	t.Logf("after FLUSHALL and a crash: %d (hit, integration) pairs written twice; %d hits that arrived after two was disabled delivered to it (conservative routing, the documented cost)", dups, extra)
}

// TestFlushAllThenReloadAdds: Redis loses everything (FLUSHALL) while a
// process runs; then a reload adds integration two. The hits of tenant 2
// that arrive after the reload must reach two, exactly once, with no crash
// and no rebalance in between. (Seen in the chaos run: after a Redis data
// loss, the integrations a later reload added or changed got nothing.)
func TestFlushAllThenReloadAdds(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel() // it mostly waits (windows, retries, restarts): overlap it with another
	e, one, two, cfg := routingWorld(t)
	cfg.Kafka.CommitInterval = 200 * time.Millisecond
	cfg1 := *cfg
	cfg1.Integrations = []config.Integration{one}
	p := e.startReloadable(t, &cfg1)
	ts := time.Now().Unix()
	before := batch(t, e, 100, ts, 131)
	p.waitMetric(t, "the first batch read", 100, "hitship_records_consumed_total")
	if err := e.redis.Client().FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	mid := batch(t, e, 100, ts, 132)
	p.waitMetric(t, "the second batch read", 200, "hitship_records_consumed_total")
	p.reload(t, cfg)
	time.Sleep(time.Second)
	after := batch(t, e, 100, time.Now().Unix(), 133)
	waitFor(t, 60*time.Second, "offsets committed to the end", func() bool { return e.committedToEnd(t, cfg.Kafka.Group) })
	isAfter := map[string]bool{}
	for _, h := range after {
		isAfter[h.id] = true
	}
	expectRouted(t, e, append(append(before, mid...), after...), []config.Integration{one, two}, func(h sent) bool { return isAfter[h.id] })
}
