package service_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"hitship/config"
)

// Back-pressure and the clean stop. Both end with the main end-to-end check (every
// hit exactly once in every integration of its tenant) after the fault is gone,
// and both check the commit rule while it lasts: a committed offset C of a
// partition means every record before C is in the bucket of every integration of
// its tenant.

// checkCommittedDelivered asserts the commit rule for the offsets committed now:
// no partition is committed past a record that is not yet in every bucket it
// must reach. offs maps request id -> offset.
func checkCommittedDelivered(t *testing.T, e *env, group string, hits []sent, ins []config.Integration, offs map[string]int64) {
	t.Helper()
	committed := committedOffsets(t, e, group)
	where := deliveredWhere(t, e, hits, ins)
	var bad []string
	for _, h := range hits {
		c, ok := committed[h.partition]
		if !ok || offs[h.id] >= c {
			continue
		}
		for _, in := range ins {
			if in.ClientID == h.client && len(where[in.Name][h.id]) == 0 {
				if len(bad) < 5 {
					bad = append(bad, fmt.Sprintf("partition %d committed at %d, but the record at %d is not in %s", h.partition, c, offs[h.id], in.Bucket))
				}
			}
		}
	}
	if len(bad) > 0 {
		t.Fatalf("committed past undelivered records:\n%s", strings.Join(bad, "\n"))
	}
}

// firstOffsets maps partition -> offset of the first record of client.
func firstOffsets(hits []sent, offs map[string]int64, client int64) map[int]int64 {
	out := map[int]int64{}
	for _, h := range hits {
		if h.client != client {
			continue
		}
		if o, ok := out[h.partition]; !ok || offs[h.id] < o {
			out[h.partition] = offs[h.id]
		}
	}
	return out
}

// TestBackPressure: a tiny spool and a bucket that fails. The member must stop
// fetching once the spool is full (paused partitions, consumption stops well below
// what was produced), commit nothing past the undelivered objects, and, once the
// bucket heals, resume and deliver every hit exactly once with commits at the end.
func TestBackPressure(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	const (
		parts = 2
		n     = 30000
	)
	// One integration, for client 1; clients 2 and 3 have none (read and skipped,
	// no spool). The spool then holds only the failing integration's bytes, which
	// grow until it is full and cannot shrink while the bucket fails: once paused,
	// the member must stay paused. (A healthy integration's buffers, closed and
	// delivered at the next window boundary, would free space and let fetching
	// resume for a while, which is right but makes "stays paused" racy.)
	ins := []config.Integration{integ("bad-ndjson", 1, "b-bad", "ndjson")}
	bad := ins[0]
	e := newEnv(t, parts, "b-bad")
	cfg := e.config(t, ins...)
	// Short windows: records read after the pause are late for windows an idle close
	// ended, and late buffers close at the next window boundary.
	cfg.Window.Size, cfg.Window.Grace, cfg.Window.IdleTimeout = 10*time.Second, time.Second, time.Second
	// The bad integration's share of the hits is about 4 MiB: far more than
	// the spool may hold on disk (1 MiB) plus in memory (256 KiB).
	cfg.Spool.MaxBytes, cfg.Spool.MemoryBytes = 1<<20, 256<<10
	e.s3.FailBucket(bad.Bucket, http.StatusInternalServerError)

	hits := produceHitsAt(t, e, 51, nowHits(n, []int64{1, 2, 3}, parts, 51))
	offs := recordOffsets(t, e)
	holdAt := firstOffsets(hits, offs, bad.ClientID)
	if len(holdAt) != parts {
		t.Fatalf("test bug: the failing integration has records in %d partitions, want %d", len(holdAt), parts)
	}

	m := e.startMember(t, "a", cfg)
	consumed := func() float64 { return metricSum(t, m.reg, "hitship_records_consumed_total") }
	paused := func() float64 { return metricSum(t, m.reg, "hitship_paused_partitions") }

	// Paused, and consumption no longer moving.
	last, lastAt := -1.0, time.Now()
	waitFor(t, 60*time.Second, "fetching paused with consumption stopped", func() bool {
		c := consumed()
		if c != last {
			last, lastAt = c, time.Now()
			return false
		}
		return paused() > 0 && time.Since(lastAt) >= 2*time.Second
	})
	stuck := consumed()
	t.Logf("paused: %v partitions; consumed %v of %d; spool disk %v bytes, undelivered objects %v",
		paused(), stuck, n, metricSum(t, m.reg, "hitship_spool_bytes", "where", "disk"), metricSum(t, m.reg, "hitship_undelivered_objects"))
	if stuck > 0.6*n {
		t.Fatalf("consumed %v of %d records before pausing: the spool limit does not hold fetching back", stuck, n)
	}
	if errs := metricSum(t, m.reg, "hitship_upload_attempts_total", "integration", bad.Name, "result", "error"); errs == 0 {
		t.Fatal("no failed upload to the failing bucket: the test does not exercise a full spool of undelivered objects")
	}
	// While the bucket fails: still paused, nothing more consumed, nothing
	// committed past the failing integration's first record, nothing in its bucket.
	for end := time.Now().Add(3 * time.Second); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		if c := consumed(); c != stuck {
			t.Fatalf("consumed moved from %v to %v while the spool is full", stuck, c)
		}
		if paused() == 0 {
			t.Fatal("fetching resumed while the failing integration's objects fill the spool")
		}
		c := committedOffsets(t, e, cfg.Kafka.Group)
		for p, limit := range holdAt {
			if off, ok := c[p]; ok && off > limit {
				t.Fatalf("partition %d committed %d past the failing integration's first undelivered record at %d", p, off, limit)
			}
		}
		if objs := objectBytes(t, e, bad.Bucket); len(objs) > 0 {
			t.Fatalf("failing bucket holds %d objects", len(objs))
		}
	}
	checkCommittedDelivered(t, e, cfg.Kafka.Group, hits, ins, offs)

	e.s3.HealBucket(bad.Bucket)
	waitFor(t, 90*time.Second, "offsets committed to the end after the bucket healed", func() bool { return e.committedToEnd(t, cfg.Kafka.Group) })
	if c := consumed(); c < n {
		t.Fatalf("consumed %v of %d after healing", c, n)
	}
	waitFor(t, 10*time.Second, "no paused partition", func() bool { return paused() == 0 })
	checkExactlyOnce(t, e, hits, ins)
}

// TestSIGTERM stops the real binary with SIGTERM while objects are being uploaded
// or retried against a failing bucket. It must exit 0 within the Kubernetes grace
// period, leave no partition committed past a record that is not yet delivered,
// and leave its spool directory so that a new process on the same directory starts
// and, once the bucket heals, delivers every hit exactly once without rewriting
// any object written before the stop.
func TestSIGTERM(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	const parts = 4
	hitshipBinary(t) // build before any clock starts
	tests := []struct {
		name    string
		failing bool // the bad integration's bucket fails until after the stop
		hits    int
		// stopWhen says when to send SIGTERM.
		stopWhen func(t *testing.T, e *env, puts *putCounter, hits []sent, ins []config.Integration) bool
	}{
		{
			name: "while a bucket fails", failing: true, hits: 3000,
			stopWhen: func(t *testing.T, e *env, puts *putCounter, hits []sent, ins []config.Integration) bool {
				// The healthy integration got everything and the failing one was tried
				// more than once: its objects are retrying inside the process.
				return allDelivered(t, e, hits, ins[1]) && puts.to(ins[0].Bucket) >= 2
			},
		},
		{
			name: "while uploads are in progress", hits: 20000,
			stopWhen: func(_ *testing.T, _ *env, puts *putCounter, _ []sent, ins []config.Integration) bool {
				return puts.to(ins[0].Bucket)+puts.to(ins[1].Bucket) > 0
			},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ins := []config.Integration{
				integ("bad-json", 1, "b-bad", "json"),
				integ("good-ndjson", 2, "b-good", "ndjson"),
			}
			buckets := []string{"b-bad", "b-good"}
			e := newEnv(t, parts, buckets...)
			cfg := e.config(t, ins...)
			cfg.Kafka.CommitInterval = time.Second
			puts := countPuts(t, e, cfg)
			if tt.failing {
				e.s3.FailBucket(ins[0].Bucket, http.StatusInternalServerError)
			}
			base := time.Date(2023, 6, 20, 6, 0, 0, 0, time.UTC)
			seed := int64(61 + i)
			hits := produceHitsAt(t, e, seed, spreadHits(tt.hits, []int64{1, 2, 3}, parts, base, 10*time.Minute, 3, seed))
			offs := recordOffsets(t, e)
			holdAt := firstOffsets(hits, offs, ins[0].ClientID)

			p := e.startProcess(t, cfg)
			waitFor(t, 60*time.Second, "the moment to stop", func() bool { return tt.stopWhen(t, e, puts, hits, ins) })
			if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			sent := time.Now()
			select {
			case <-p.done:
			case <-time.After(30 * time.Second):
				t.Fatal("the process did not exit within 30 s of SIGTERM")
			}
			took := time.Since(sent)
			if code := p.cmd.ProcessState.ExitCode(); code != 0 {
				t.Fatalf("exit code %d after SIGTERM, want 0", code)
			}
			if strings.Contains(p.out.String(), `"level":"ERROR"`) {
				t.Errorf("the clean stop logged errors:\n%s", p.out.String())
			}
			atStop := objectBytes(t, e, buckets...)
			committed := committedOffsets(t, e, cfg.Kafka.Group)
			left, _ := os.ReadDir(cfg.Spool.Dir)
			t.Logf("exited %s after SIGTERM; committed %v of %v; %d files left in the spool dir", took.Round(time.Millisecond), committed, highWater(t, e), len(left))
			if tt.failing {
				for q, limit := range holdAt {
					if off, ok := committed[q]; ok && off > limit {
						t.Fatalf("partition %d committed %d past the failing integration's first undelivered record at %d", q, off, limit)
					}
				}
				if len(objectBytes(t, e, ins[0].Bucket)) > 0 {
					t.Fatal("the failing bucket holds objects")
				}
			}
			checkCommittedDelivered(t, e, cfg.Kafka.Group, hits, ins, offs)

			// A new process on the same spool directory, the bucket healed.
			e.s3.HealBucket(ins[0].Bucket)
			e.startProcess(t, cfg)
			waitFor(t, 90*time.Second, "offsets committed to the end by the new process", func() bool { return e.committedToEnd(t, cfg.Kafka.Group) })
			checkExactlyOnce(t, e, hits, ins)
			checkUnchanged(t, atStop, objectBytes(t, e, buckets...))
		})
	}
}

// putCounter sits between a member and the env's S3 endpoint and counts the PUT
// requests to each bucket, whatever their answer. It keeps the Host header, so
// signatures stay valid.
type putCounter struct {
	next http.Handler
	mu   sync.Mutex
	puts map[string]int
}

// countPuts routes cfg's S3 traffic through a putCounter.
func countPuts(t *testing.T, e *env, cfg *config.Config) *putCounter {
	t.Helper()
	u, err := url.Parse(e.s3URL)
	if err != nil {
		t.Fatal(err)
	}
	pc := &putCounter{next: httputil.NewSingleHostReverseProxy(u), puts: map[string]int{}}
	srv := httptest.NewServer(pc)
	t.Cleanup(srv.Close)
	cfg.S3.Endpoint = srv.URL
	return pc
}

func (pc *putCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPut {
		bucket, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		pc.mu.Lock()
		pc.puts[bucket]++
		pc.mu.Unlock()
	}
	pc.next.ServeHTTP(w, r)
}

// to returns the PUTs to bucket so far.
func (pc *putCounter) to(bucket string) int {
	pc.mu.Lock()
	defer pc.mu.Unlock()
	return pc.puts[bucket]
}
