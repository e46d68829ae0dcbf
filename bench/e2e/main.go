// Command e2e is hitship's end-to-end benchmark (`make bench`).
//
// It pre-fills a kfake topic with seed-shaped hits over 6 partitions, then in the
// same run measures
//
//  1. drain: the rate of 6 kafka-go readers (one per partition) reading the topic to
//     its end — the Kafka read limit on this machine;
//  2. hitship: the real binary (`hitship run`) from the first record to offsets
//     committed at the end of every partition, writing to a minimal S3 endpoint that
//     reads and discards bodies (so it measures hitship, not the stand-in);
//
// and prints both rates and their ratio, and hitship's peak RSS (VmHWM). With
// -big it instead grows one window of one tenant in one partition to -big-bytes and
// reports hitship's peak RSS while it does.
package main

import (
	"bytes"
	"context"
	"encoding/xml"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"hitship/hitgen"
	"hitship/internal/testenv"
)

func main() {
	records := flag.Int("records", 1_000_000, "hits to pre-fill")
	tenants := flag.Int("tenants", 2, "tenants, each with one integration")
	big := flag.Bool("big", false, "grow one window to -big-bytes instead and report peak RSS")
	bigBytes := flag.Int64("big-bytes", 1<<30, "size of the big window")
	flag.Parse()
	if err := run(*records, *tenants, *big, *bigBytes); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

const topic, parts = "hits", 6

var cpuProfile = flag.String("cpuprofile", "", "CPU profile of the hitship process (end-to-end run)")

func run(records, tenants int, big bool, bigBytes int64) error {
	ctx := context.Background()
	k, err := testenv.StartKafka(testenv.KafkaOptions{Partitions: parts, Topics: []string{topic, topic + "-dlq"}})
	if err != nil {
		return err
	}
	defer k.Close()
	// Event times in a window that has ended: the last window closes on the
	// first idle tick instead of waiting for the wall clock.
	base := time.Now().Truncate(10 * time.Minute).Add(-30 * time.Minute)
	target := parts
	if big {
		tenants, target = 1, 1
	}
	t0 := time.Now()
	n, bytes, err := prefill(ctx, k, records, tenants, base, big, bigBytes)
	if err != nil {
		return err
	}
	fmt.Printf("pre-filled %d hits (%.0f MB) into %d partition(s) in %s\n", n, float64(bytes)/1e6, target, time.Since(t0).Round(time.Millisecond))

	if !big {
		d, err := drain(ctx, k)
		if err != nil {
			return err
		}
		fmt.Printf("drain-only (kafka-go readers, %d partitions): %d records in %s = %.0f records/s\n", parts, n, d.Round(time.Millisecond), float64(n)/d.Seconds())
		h, err := hitship(ctx, k, tenants, false)
		if err != nil {
			return err
		}
		drainRate := float64(n) / d.Seconds()
		fmt.Printf("hitship end to end (discarding S3): %d records, %s from process start (joining the group included), %d objects, peak RSS %d MB\n",
			n, h.total.Round(time.Millisecond), h.puts, h.rss>>20)
		fmt.Printf("hitship steady rate (5%% -> 100%% committed): %.0f records/s\n", h.steadyRate)
		fmt.Printf("ratio hitship steady / drain-only: %.2f   (whole run incl. start-up: %.2f)\n", h.steadyRate/drainRate, d.Seconds()/h.total.Seconds())
		return nil
	}
	h, err := hitship(ctx, k, tenants, true)
	if err != nil {
		return err
	}
	fmt.Printf("hitship, one window of %.0f MB: %s, %d object(s), peak RSS %d MB\n", float64(bytes)/1e6, h.total.Round(time.Millisecond), h.puts, h.rss>>20)
	return nil
}

func prefill(ctx context.Context, k *testenv.Kafka, records, tenants int, base time.Time, big bool, bigBytes int64) (int, int64, error) {
	g := hitgen.New(hitgen.Config{Seed: 1, Tenants: tenants})
	var total int64
	n := 0
	batch := make([]kafka.Message, 0, 2000)
	for {
		if big && total >= bigBytes || !big && n >= records {
			break
		}
		// In order over 30 one-minute windows, so commits move as the run goes;
		// with -big all in one window.
		t := base.Unix() + int64(n)*1800/int64(max(records, 1))
		if big {
			t = base.Unix()
		}
		r := g.Next(t)
		p := int(r.ClientID) % parts
		if !big {
			p = n % parts
		}
		batch = append(batch, kafka.Message{Partition: p, Value: r.Value, Time: time.Now(),
			Headers: []kafka.Header{{Key: "client_id", Value: []byte(strconv.FormatInt(r.ClientID, 10))}}})
		total += int64(len(r.Value))
		n++
		if len(batch) == cap(batch) {
			if err := k.Produce(ctx, topic, batch); err != nil {
				return 0, 0, err
			}
			batch = batch[:0]
		}
	}
	if len(batch) > 0 {
		if err := k.Produce(ctx, topic, batch); err != nil {
			return 0, 0, err
		}
	}
	return n, total, nil
}

// drain reads every partition to its high-water mark with kafka-go readers.
func drain(ctx context.Context, k *testenv.Kafka) (time.Duration, error) {
	hw, err := k.HighWater(ctx, topic)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, parts)
	for p := 0; p < parts; p++ {
		if hw[p] == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := kafka.NewReader(kafka.ReaderConfig{Brokers: k.Addrs(), Topic: topic, Partition: p, MinBytes: 1, MaxBytes: 16 << 20, MaxWait: 250 * time.Millisecond})
			defer r.Close()
			for {
				m, err := r.FetchMessage(ctx)
				if err != nil {
					errs <- err
					return
				}
				if m.Offset+1 >= hw[p] {
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// hitship runs the real binary until every partition is committed to its end.
func hitship(ctx context.Context, k *testenv.Kafka, tenants int, big bool) (result, error) {
	var steady time.Time
	var steadyAt int64
	dir, err := os.MkdirTemp("", "hitship-bench")
	if err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "hitship")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/hitship").CombinedOutput(); err != nil {
		return result{}, fmt.Errorf("go build: %v: %s", err, out)
	}
	s3 := &discardS3{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return result{}, err
	}
	srv := &http.Server{Handler: s3}
	go srv.Serve(ln)
	defer srv.Close()
	red, err := testenv.StartRedis(testenv.RedisOptions{})
	if err != nil {
		return result{}, err
	}
	defer red.Close()

	var ins strings.Builder
	for c := 1; c <= tenants; c++ {
		fmt.Fprintf(&ins, "  - {name: tenant-%d, client_id: %d, region: us-east-1, bucket: bench-%d, format: ndjson, credentials: {access_key_id: BENCHACCESSKEY01, secret_access_key_env: BENCH_SECRET}}\n", c, c, c)
	}
	cfg := fmt.Sprintf(`kafka:
  brokers: [%s]
  topic: %s
  dead_letter_topic: %s-dlq
  group: bench
  commit_interval: 100ms
window:
  size: 1m
  grace: 5s
  idle_timeout: 250ms
spool:
  dir: %s
s3:
  endpoint: http://%s
  path_style: true
  if_none_match: false
redis:
  addr: %s
http:
  listen: "127.0.0.1:0"
log:
  level: warn
integrations:
%s`, strings.Join(k.Addrs(), ","), topic, topic, filepath.Join(dir, "spool"), ln.Addr(), red.Addr(), ins.String())
	path := filepath.Join(dir, "hitship.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return result{}, err
	}
	hw, err := k.HighWater(ctx, topic)
	if err != nil {
		return result{}, err
	}
	args := []string{"run", "--config", path}
	if *cpuProfile != "" && !big {
		args = append(args, "--cpuprofile", *cpuProfile)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "BENCH_SECRET=bench-secret")
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() { // a clean stop, so that a CPU profile is written
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	var peak int64
	var total int64
	for _, h := range hw {
		total += h
	}
	for {
		if rss := vmHWM(cmd.Process.Pid); rss > peak {
			peak = rss
		}
		c, err := k.Committed(ctx, "bench", topic)
		if err == nil && steady.IsZero() && sum(c)*20 >= total {
			steady, steadyAt = time.Now(), sum(c)
		}
		if err == nil && done(c, hw) {
			break
		}
		select {
		case err := <-exited:
			exited <- err
			return result{}, fmt.Errorf("hitship exited before committing to the end: %v", err)
		default:
		}
		if time.Since(start) > 20*time.Minute {
			return result{}, fmt.Errorf("hitship did not commit to the end in 20 minutes (committed %v of %v)", c, hw)
		}
		time.Sleep(50 * time.Millisecond)
	}
	el := time.Since(start)
	rate := float64(total-steadyAt) / time.Since(steady).Seconds()
	if rss := vmHWM(cmd.Process.Pid); rss > peak {
		peak = rss
	}
	keys := 0
	s3.keys.Range(func(k, v any) bool { keys++; return true })
	if s3.lines.Load() != total {
		return result{}, fmt.Errorf("the S3 endpoint received %d records in %d objects, want %d", s3.lines.Load(), keys, total)
	}
	return result{total: el, steadyRate: rate, rss: peak, puts: s3.puts.Load()}, nil
}

type result struct {
	total      time.Duration // from process start (includes joining the group)
	steadyRate float64       // records/s from 5% committed to 100%
	rss        int64
	puts       int64
}

func sum(c map[int]int64) int64 {
	var s int64
	for _, o := range c {
		s += o
	}
	return s
}

func done(c, hw map[int]int64) bool {
	for p, h := range hw {
		if h > 0 && c[p] < h {
			return false
		}
	}
	return true
}

// vmHWM is a process's peak resident set size in bytes (Linux).
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "VmHWM:") {
			f := strings.Fields(l)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// discardS3 answers the calls hitship makes (PutObject and multipart uploads),
// reading and discarding every body.
type discardS3 struct {
	keys  sync.Map
	lines atomic.Int64
	puts  atomic.Int64
	ids   atomic.Int64
}

func (s *discardS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	s.lines.Add(int64(bytes.Count(b, []byte("\n"))))
	q := r.URL.Query()
	switch {
	case r.Method == http.MethodPost && q.Has("uploads"):
		id := s.ids.Add(1)
		_ = xml.NewEncoder(w).Encode(struct {
			XMLName  xml.Name `xml:"InitiateMultipartUploadResult"`
			UploadID string   `xml:"UploadId"`
		}{UploadID: strconv.FormatInt(id, 10)})
	case r.Method == http.MethodPost && q.Has("uploadId"):
		s.puts.Add(1)
		_ = xml.NewEncoder(w).Encode(struct {
			XMLName xml.Name `xml:"CompleteMultipartUploadResult"`
			ETag    string   `xml:"ETag"`
		}{ETag: `"x"`})
	case r.Method == http.MethodPut:
		if !q.Has("partNumber") {
			s.puts.Add(1)
			s.keys.Store(r.URL.Path, true)
		}
		w.Header().Set("ETag", `"x"`)
	default:
		http.Error(w, "not implemented", http.StatusNotImplemented)
	}
}
