package service_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"hitship/config"
	"hitship/internal/testenv"
	"hitship/service"
)

// TestRedisDownAtStart (issue #11): Redis is down when the replica starts. No
// partition can be consumed (a worker needs its claim and replay state), and
// the words say so: every worker logs that its partition waits for Redis, and
// /readyz answers 503 "not ready: 4 of 4 partitions wait for Redis". Before,
// the log said "deliveries and commits go on" and /readyz answered 200. When
// Redis comes, every hit is delivered exactly once and /readyz is ready.
func TestRedisDownAtStart(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel() // it mostly waits (windows, retries, restarts): overlap it with another
	const parts = 4
	ins := []config.Integration{integ("one-json", 1, "b-one", "json")}
	e := newEnv(t, parts, "b-one")
	if e.redis.Miniredis() {
		t.Skip("needs a redis-server binary to stop and start")
	}
	cfg := e.config(t, ins...)
	base := time.Date(2023, 6, 20, 6, 0, 0, 0, time.UTC)
	hits := produceHitsAt(t, e, 51, spreadHits(800, []int64{1, 2}, parts, base, 10*time.Minute, 2, 51))
	if err := e.redis.Stop(); err != nil {
		t.Fatal(err)
	}
	const waitMsg = "degraded: Redis unreachable: this partition is not consumed until Redis answers (it needs its claim and replay state); partitions already running go on delivering and committing"
	logs := newLogCounter(t, waitMsg)
	_, url := e.startServedMember(t, "a", cfg, logs)
	want := fmt.Sprintf("not ready: %d of %d partitions wait for Redis", parts, parts)
	waitFor(t, 30*time.Second, "/readyz: "+want, func() bool {
		code, body := readyz(t, url)
		return code == http.StatusServiceUnavailable && strings.HasPrefix(body, want)
	})
	waitFor(t, 10*time.Second, "every partition logging that it waits for Redis", func() bool {
		for q := range parts {
			if logs.seen(q) == 0 {
				return false
			}
		}
		return true
	})
	time.Sleep(2 * time.Second)
	if c := committedOffsets(t, e, cfg.Kafka.Group); len(c) > 0 {
		t.Fatalf("committed %v while no partition could be claimed", c)
	}

	if err := e.redis.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "offsets committed to the end", func() bool { return e.committedToEnd(t, cfg.Kafka.Group) })
	if code, body := readyz(t, url); code != http.StatusOK || body != "ready: 4 partitions\n" {
		t.Fatalf("readyz after Redis came: %d %q", code, body)
	}
	checkExactlyOnce(t, e, hits, ins)
}

// TestReadOnlyRedisAtStart (issue #14): the Redis hitship is pointed at
// answers reads but refuses every write with READONLY — a replica, what a
// DNS name of a managed Redis points to for a while after a failover, or a
// Sentinel's old master before it is told. hitship neither exits nor
// consumes: the partitions wait for Redis, as when it is down, /readyz says
// so, nothing is committed; once the server is promoted every hit is
// delivered exactly once.
func TestReadOnlyRedisAtStart(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel()
	const parts = 2
	ins := []config.Integration{integ("one-json", 1, "b-one", "json")}
	e := newEnv(t, parts, "b-one")
	if e.redis.Miniredis() {
		t.Skip("needs redis-server replication")
	}
	replica := testenv.MustRedis(t, testenv.RedisOptions{})
	host, port, _ := net.SplitHostPort(e.redis.Addr())
	if err := replica.Client().Do(t.Context(), "replicaof", host, port).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the replica refusing writes", func() bool {
		err := replica.Client().Set(t.Context(), "probe", "x", 0).Err()
		return err != nil && strings.HasPrefix(err.Error(), "READONLY")
	})
	cfg := e.config(t, ins...)
	cfg.Redis.Addr = replica.Addr()
	base := time.Date(2023, 6, 20, 6, 0, 0, 0, time.UTC)
	hits := produceHitsAt(t, e, 52, spreadHits(400, []int64{1, 2}, parts, base, 10*time.Minute, 2, 52))
	m, url := e.startServedMember(t, "a", cfg, slog.DiscardHandler)
	want := fmt.Sprintf("not ready: %d of %d partitions wait for Redis", parts, parts)
	waitFor(t, 30*time.Second, "/readyz: "+want, func() bool {
		code, body := readyz(t, url)
		return code == http.StatusServiceUnavailable && strings.HasPrefix(body, want)
	})
	time.Sleep(2 * time.Second)
	select {
	case err := <-m.done:
		t.Fatalf("the service ended on a read-only Redis: %v", err)
	default:
	}
	if c := committedOffsets(t, e, cfg.Kafka.Group); len(c) > 0 {
		t.Fatalf("committed %v while Redis refused every write", c)
	}
	if err := replica.Client().Do(t.Context(), "replicaof", "no", "one").Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "offsets committed to the end", func() bool { return e.committedToEnd(t, cfg.Kafka.Group) })
	checkExactlyOnce(t, e, hits, ins)
}

// tmpfs mounts a tmpfs of size bytes at a new directory for the test, or
// skips the test when mounting is not permitted.
func tmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "spool")
	unmount, err := testenv.MountTmpfs(dir, size)
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() {
		if err := unmount(); err != nil {
			t.Error(err)
		}
	})
	return dir
}

// fill writes a ballast file into dir until the disk is full.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path, err := testenv.FillDisk(dir)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSpoolDiskFull (issue #11, defect 10): the spool lives on a 3 MiB tmpfs,
// filled with a ballast file, while hits arrive. The partitions that cannot
// spill pause: the error is logged, counted (hitship_spool_errors_total,
// hitship_paused_partitions) and /readyz answers 503 "not ready: spool: ...".
// When space is freed they start again from their committed offsets, and every
// hit is delivered exactly once. Before, a failed append ended the worker in a
// deadlock with no log line (its ticker was waited for before it was told to
// stop), a failed finish was never retried, and /readyz said ready.
func TestSpoolDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel() // it mostly waits (windows, retries, restarts): overlap it with another
	const parts = 2
	dir := tmpfs(t, 3<<20)
	ins := []config.Integration{integ("one-ndjson", 1, "b-one", "ndjson"), integ("two-json", 2, "b-two", "json")}
	e := newEnv(t, parts, "b-one", "b-two")
	cfg := e.config(t, ins...)
	cfg.Spool.Dir = dir
	// Small buffers spill at once: 256 KiB of memory, 8 KiB per buffer.
	cfg.Spool.MemoryBytes = 256 << 10
	ballast := fill(t, dir)

	reg := prometheus.NewRegistry()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo})).With("member", "a")
	ln := mustListen(t)
	svc, err := service.New(cfg, service.Deps{Logger: log, Registry: reg, Listener: ln})
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("service: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Error("service did not stop within 60 s")
		}
	})

	base := time.Date(2023, 6, 20, 6, 0, 0, 0, time.UTC)
	hits := produceHitsAt(t, e, 61, spreadHits(3000, []int64{1, 2, 3}, parts, base, 10*time.Minute, 3, 61))
	waitFor(t, 30*time.Second, "a spool error counted, a partition paused and /readyz not ready", func() bool {
		code, body := readyz(t, url)
		return metricSum(t, reg, "hitship_spool_errors_total") > 0 && metricSum(t, reg, "hitship_paused_partitions") > 0 &&
			code == http.StatusServiceUnavailable && strings.HasPrefix(body, "not ready: spool: ")
	})
	code, body := readyz(t, url)
	t.Logf("while the disk is full: /readyz %d %q", code, body)
	// While the disk stays full the partition stays paused (it probes the disk
	// with backoff) and nothing is committed past what was delivered.
	time.Sleep(3 * time.Second)
	if code, body := readyz(t, url); code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "not ready: spool: ") {
		t.Fatalf("readyz with the disk still full: %d %q", code, body)
	}
	if e.committedToEnd(t, cfg.Kafka.Group) {
		t.Fatal("committed to the end with the spool's disk full")
	}

	if err := os.Remove(ballast); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 90*time.Second, "offsets committed to the end after space was freed", func() bool { return e.committedToEnd(t, cfg.Kafka.Group) })
	waitFor(t, 10*time.Second, "/readyz ready", func() bool {
		code, body := readyz(t, url)
		return code == http.StatusOK && strings.HasPrefix(body, "ready")
	})
	if n := metricSum(t, reg, "hitship_paused_partitions"); n != 0 {
		t.Fatalf("%v partitions still paused", n)
	}
	checkExactlyOnce(t, e, hits, ins)
}

func mustListen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return ln
}
