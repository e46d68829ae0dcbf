package service_test

import (
	"bytes"
	"io"
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

// TestCleanShutdown is issue 7 part 5: SIGTERM to the real binary while its
// uploads hang on a slow S3. The process must exit 0 within the shutdown
// budget (the consumer waits up to 20 s for closed buffers, then leaves them to
// the next owner; the Kubernetes grace period in deploy/ is 60 s, the test
// allows 30 s), commit nothing past a record that is not in its buckets, and
// leave a spool directory that a new process on the same directory starts
// from: the new one delivers every hit exactly once without rewriting any
// object written before the stop, and after its own clean stop, with
// everything delivered, the spool directory holds no file.
func TestCleanShutdown(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	const parts = 4
	hitshipBinary(t) // build before any clock starts
	tests := []struct {
		name  string
		delay time.Duration // every PUT waits this long before it reaches S3
		// slowerThanDrain: the uploads outlast the 20 s drain, so the stop
		// must give up on them instead of waiting.
		slowerThanDrain bool
	}{
		{name: "slow uploads finish during the drain", delay: 2 * time.Second},
		{name: "uploads outlast the drain", delay: 10 * time.Minute, slowerThanDrain: true},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ins := []config.Integration{
				integ("acme-json", 1, "b-json", "json"),
				integ("globex-ndjson", 2, "b-ndjson", "ndjson"),
			}
			buckets := []string{"b-json", "b-ndjson"}
			e := newEnv(t, parts, buckets...)
			cfg := e.config(t, ins...)
			cfg.Kafka.CommitInterval = 500 * time.Millisecond
			// Buffers spill to spool files early, so the stop has files to
			// leave behind and the restart files to cope with.
			cfg.Spool.MemoryBytes = 64 << 10
			slow := slowPuts(t, e, cfg)
			slow.set(tt.delay)

			base := time.Date(2023, 6, 20, 6, 0, 0, 0, time.UTC)
			seed := int64(71 + i)
			hits := produceHitsAt(t, e, seed, spreadHits(6000, []int64{1, 2, 3}, parts, base, 10*time.Minute, 3, seed))
			offs := recordOffsets(t, e)

			p := e.startProcess(t, cfg)
			// Stop with uploads in flight and their buffers spilled to spool files.
			spooled := 0
			waitFor(t, 60*time.Second, "an upload in flight with spool files", func() bool {
				files, _ := os.ReadDir(cfg.Spool.Dir)
				spooled = max(spooled, len(files))
				return slow.inFlight() > 0 && len(files) > 0
			})
			if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			sentAt := time.Now()
			select {
			case <-p.done:
			case <-time.After(30 * time.Second):
				t.Fatalf("the process did not exit within 30 s of SIGTERM (%d uploads in flight)", slow.inFlight())
			}
			took := time.Since(sentAt)
			if code := p.cmd.ProcessState.ExitCode(); code != 0 {
				t.Fatalf("exit code %d after SIGTERM, want 0\n%s", code, p.out.String())
			}
			if strings.Contains(p.out.String(), `"level":"ERROR"`) {
				t.Errorf("the clean stop logged errors:\n%s", p.out.String())
			}
			if tt.slowerThanDrain && !strings.Contains(p.out.String(), "shutdown timeout") {
				t.Errorf("uploads outlasting the drain, but no shutdown-timeout warning:\n%s", p.out.String())
			}
			atStop := objectBytes(t, e, buckets...)
			committed := committedOffsets(t, e, cfg.Kafka.Group)
			left, err := os.ReadDir(cfg.Spool.Dir)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("exited %s after SIGTERM; %d PUTs done, %d objects in S3; committed %v of %v; %d spool files at the stop, %d left",
				took.Round(time.Millisecond), slow.done(), len(atStop), committed, highWater(t, e), spooled, len(left))
			checkCommittedDelivered(t, e, cfg.Kafka.Group, hits, ins, offs)
			if tt.slowerThanDrain {
				if len(atStop) > 0 {
					t.Fatalf("%d objects in S3 although no upload could finish", len(atStop))
				}
				for q, off := range committed {
					if off > firstOffsetOf(hits, offs, q, 1, 2) {
						t.Fatalf("partition %d committed at %d, past its first record of an integration, none delivered", q, off)
					}
				}
			}

			// A new process on the same spool directory, S3 fast again.
			slow.set(0)
			p2 := e.startProcess(t, cfg)
			waitFor(t, 90*time.Second, "offsets committed to the end by the new process", func() bool { return e.committedToEnd(t, cfg.Kafka.Group) })
			checkExactlyOnce(t, e, hits, ins)
			checkUnchanged(t, atStop, objectBytes(t, e, buckets...))

			// Its clean stop, with everything delivered, leaves an empty spool.
			if err := p2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			select {
			case <-p2.done:
			case <-time.After(30 * time.Second):
				t.Fatal("the restarted process did not exit within 30 s of SIGTERM")
			}
			if code := p2.cmd.ProcessState.ExitCode(); code != 0 {
				t.Fatalf("restarted process: exit code %d after SIGTERM\n%s", code, p2.out.String())
			}
			// Read only now: the output buffer is written until the process exits.
			if strings.Contains(p2.out.String(), `"level":"ERROR"`) {
				t.Errorf("the restarted process logged errors:\n%s", p2.out.String())
			}
			left, err = os.ReadDir(cfg.Spool.Dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(left) > 0 {
				names := make([]string, 0, len(left))
				for _, f := range left {
					names = append(names, f.Name())
				}
				t.Fatalf("after a clean run and stop the spool dir holds %d files: %s", len(left), strings.Join(names, ", "))
			}
		})
	}
}

// firstOffsetOf returns the offset of partition's first record of any of
// clients (the topic's end when it has none).
func firstOffsetOf(hits []sent, offs map[string]int64, partition int, clients ...int64) int64 {
	first := int64(1) << 62
	for _, h := range hits {
		for _, c := range clients {
			if h.client == c && h.partition == partition {
				first = min(first, offs[h.id])
			}
		}
	}
	return first
}

// slowS3 sits between a member and the env's S3 endpoint and holds every PUT
// for a settable delay before forwarding it; a PUT whose client gives up is
// never forwarded. It keeps the Host header, so signatures stay valid.
type slowS3 struct {
	next http.Handler

	mu       sync.Mutex
	delay    time.Duration
	inflight int
	finished int
}

// slowPuts routes cfg's S3 traffic through a slowS3.
func slowPuts(t *testing.T, e *env, cfg *config.Config) *slowS3 {
	t.Helper()
	u, err := url.Parse(e.s3URL)
	if err != nil {
		t.Fatal(err)
	}
	s := &slowS3{next: httputil.NewSingleHostReverseProxy(u)}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	cfg.S3.Endpoint = srv.URL
	return s
}

func (s *slowS3) set(d time.Duration) {
	s.mu.Lock()
	s.delay = d
	s.mu.Unlock()
}

func (s *slowS3) inFlight() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inflight
}

func (s *slowS3) done() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.finished
}

func (s *slowS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut {
		s.next.ServeHTTP(w, r)
		return
	}
	// Read the body first: the server notices a client that went away (and
	// cancels r.Context()) only once the body is consumed.
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	s.mu.Lock()
	d := s.delay
	s.inflight++
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inflight--
		s.mu.Unlock()
	}()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-r.Context().Done():
		return // the client gave up: the object is not written
	case <-timer.C:
	}
	s.next.ServeHTTP(w, r)
	s.mu.Lock()
	s.finished++
	s.mu.Unlock()
}
