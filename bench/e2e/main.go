// Command e2e is hitship's end-to-end benchmark (`make bench`). Every mode runs
// the real binary (`hitship run`) against an in-process kfake topic of 6
// partitions, a real redis-server and an S3 endpoint, and prints ratios against a
// baseline measured in the same run (the machine is shared: absolute figures move).
//
// Modes (see bench/README.md):
//
//   - default, throughput: pre-fill -records seed-shaped hits, then measure the
//     drain-only rates of kafka-go on 6 partitions, each in a child process
//     (drain.go: kafka.Reader, and Conn batches; the Kafka read limit) and hitship's
//     rate to committed offsets at the end of every partition, against a minimal
//     S3 endpoint that reads and discards bodies — over HTTPS (the production
//     path: unsigned payload + CRC32) and over plain HTTP (SHA-256 signed
//     payload) — and against gofakes3. Also checks the small-files rule: objects
//     per window per integration <= partitions that carried its hits.
//   - -big: one window of one tenant grown to -big-bytes; peak RSS.
//   - -live D: produce -rate hits/s with current event times for D (windows 10 s,
//     grace 1 s): p99 from window end to object written, RSS over time (a soak
//     when D >= 3m: RSS at the end against minute 2).
//   - -catchup: a backlog of -records hits with event times over the last
//     -backlog (windows 10 s), then hitship replays it: replay rate vs drain-only.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"hitship/hitgen"
	"hitship/internal/testenv"
)

const topic, parts = "hits", 6

type options struct {
	records    int
	tenants    int
	keyed      bool
	s3         string
	cpuprofile string
	big        bool
	bigBytes   int64
	live       time.Duration
	rate       int
	catchup    bool
	backlog    time.Duration
	bin        string
}

func main() {
	var o options
	flag.IntVar(&o.records, "records", 1_000_000, "hits to pre-fill (throughput, catch-up)")
	flag.IntVar(&o.tenants, "tenants", 2, "tenants, each with one integration")
	flag.BoolVar(&o.keyed, "keyed", false, "partition by client id (as producers keying by tenant do); default round-robin")
	flag.StringVar(&o.s3, "s3", "https,http,gofakes3", "throughput: S3 sides to measure, in order (https, http: the discarding endpoint; gofakes3)")
	flag.StringVar(&o.cpuprofile, "cpuprofile", "", "CPU profile of the hitship process (first throughput run)")
	flag.BoolVar(&o.big, "big", false, "grow one window to -big-bytes and report peak RSS")
	flag.Int64Var(&o.bigBytes, "big-bytes", 2<<30, "size of the big window")
	flag.DurationVar(&o.live, "live", 0, "produce -rate hits/s live for this long: latency and RSS over time (soak when >= 3m)")
	flag.IntVar(&o.rate, "rate", 20_000, "live: hits per second")
	flag.BoolVar(&o.catchup, "catchup", false, "replay a backlog of -records hits spread over the last -backlog")
	flag.DurationVar(&o.backlog, "backlog", 10*time.Minute, "catch-up: the backlog's event-time span")
	flag.StringVar(&o.bin, "bin", "", "run this hitship binary instead of building ./cmd/hitship (to compare builds)")
	drainMode := flag.String("drain-child", "", "internal: run as a drain-only child (reader or batch)")
	drainBrokers := flag.String("drain-brokers", "", "internal: the drain child's brokers")
	drainHW := flag.String("drain-hw", "", "internal: the drain child's high-water marks")
	flag.Parse()
	if *drainMode != "" {
		if err := drainChild(*drainMode, *drainBrokers, *drainHW); err != nil {
			fmt.Fprintln(os.Stderr, "bench drain:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	ctx := context.Background()
	k, err := testenv.StartKafka(testenv.KafkaOptions{Partitions: parts, Topics: []string{topic, topic + "-dlq"}})
	if err != nil {
		return err
	}
	defer k.Close()
	dir, err := os.MkdirTemp("", "hitship-bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := o.bin
	if bin == "" {
		bin = filepath.Join(dir, "hitship")
		// Named like a Makefile build (hitship_build_info names the commit).
		if err := testenv.BuildHitship(ctx, ".", bin); err != nil {
			return err
		}
	}
	b := &bench{o: o, k: k, dir: dir, bin: bin}
	switch {
	case o.big:
		return b.big(ctx)
	case o.live > 0:
		return b.liveRun(ctx)
	case o.catchup:
		return b.catchupRun(ctx)
	default:
		return b.throughput(ctx)
	}
}

type bench struct {
	o    options
	k    *testenv.Kafka
	dir  string
	bin  string
	runs int
}

// windowsOf is, per integration (bucket) and window start (Unix s), the set of
// partitions that carried its hits.
type windowsOf map[string]map[int64]uint64

// prefill produces n hits (or, with bigBytes > 0, one tenant's hits in one window
// and partition until that many bytes) with event times from first to last, then
// one sentinel hit per partition two windows later. The sentinels' event time
// closes the last windows on the watermark, as live traffic would, instead of on
// the idle clock; their own window stays open (never delivered), so a run is
// complete when every partition has committed up to its sentinel. The returned
// count excludes the sentinels.
func (b *bench) prefill(ctx context.Context, n int, first, last time.Time, windowSecs int64, bigBytes int64) (int, int64, windowsOf, error) {
	tenants := b.o.tenants
	if bigBytes > 0 {
		tenants = 1
	}
	g := hitgen.New(hitgen.Config{Seed: 1, Tenants: tenants})
	exp := windowsOf{}
	var total int64
	i := 0
	batch := make([]kafka.Message, 0, 2000)
	span := last.Unix() - first.Unix()
	for bigBytes > 0 && total < bigBytes || bigBytes == 0 && i < n {
		t := first.Unix() + int64(i)*span/int64(max(n, 1)) // in order, so commits move as the run goes
		if bigBytes > 0 {
			t = first.Unix()
		}
		r := g.Next(t)
		p := i % parts
		if b.o.keyed || bigBytes > 0 {
			p = int(r.ClientID) % parts
		}
		bucket := "bench-" + strconv.FormatInt(r.ClientID, 10)
		if exp[bucket] == nil {
			exp[bucket] = map[int64]uint64{}
		}
		exp[bucket][t-t%windowSecs] |= 1 << p
		batch = append(batch, kafka.Message{Partition: p, Value: r.Value, Time: time.Now(),
			Headers: []kafka.Header{{Key: "client_id", Value: []byte(strconv.FormatInt(r.ClientID, 10))}}})
		total += int64(len(r.Value))
		i++
		if len(batch) == cap(batch) {
			if err := b.k.Produce(ctx, topic, batch); err != nil {
				return 0, 0, nil, err
			}
			batch = batch[:0]
		}
	}
	sentinel := last.Unix() - last.Unix()%windowSecs + 2*windowSecs
	for p := range parts {
		r := g.Next(sentinel)
		batch = append(batch, kafka.Message{Partition: p, Value: r.Value, Time: time.Now(),
			Headers: []kafka.Header{{Key: "client_id", Value: []byte(strconv.FormatInt(r.ClientID, 10))}}})
	}
	if err := b.k.Produce(ctx, topic, batch); err != nil {
		return 0, 0, nil, err
	}
	return i, total, exp, nil
}

func (b *bench) throughput(ctx context.Context) error {
	base := time.Now().Truncate(10 * time.Minute).Add(-30 * time.Minute) // windows that have ended
	t0 := time.Now()
	n, bytes, exp, err := b.prefill(ctx, b.o.records, base, base.Add(30*time.Minute), 60, 0)
	if err != nil {
		return err
	}
	fmt.Printf("pre-filled %d hits (%.0f MB, %d tenants, %s) into %d partitions in %s\n", n, float64(bytes)/1e6, b.o.tenants, partitioning(b.o.keyed), parts, time.Since(t0).Round(time.Millisecond))
	drains, err := b.drains(ctx)
	if err != nil {
		return err
	}
	for i, side := range strings.Split(b.o.s3, ",") {
		// The idle timeout is the default: a short one splits windows (a late
		// object) whenever a loaded machine stalls a partition for longer.
		rc := runCfg{window: "1m", grace: "5s", idle: "30s", steadyTo: 1}
		if i == 0 {
			rc.profile = b.o.cpuprofile
		}
		var what string
		var s3 *discardS3
		switch side {
		case "https", "http":
			s3 = &discardS3{}
			cert := ""
			if side == "https" {
				cert = filepath.Join(b.dir, "cert.pem")
				what = "discarding S3 over HTTPS (unsigned payload + CRC32)"
			} else {
				what = "discarding S3 over HTTP (SHA-256 signed payload)"
			}
			url, stop, err := serveDiscard(s3, cert)
			if err != nil {
				return err
			}
			defer stop()
			rc.endpoint, rc.certFile = url, cert
		case "gofakes3":
			buckets := make([]string, 0, b.o.tenants)
			for c := 1; c <= b.o.tenants; c++ {
				buckets = append(buckets, "bench-"+strconv.Itoa(c))
			}
			fs3, err := testenv.StartS3(testenv.S3Options{Buckets: buckets})
			if err != nil {
				return err
			}
			rc.endpoint = fs3.URL()
			what = "gofakes3 over HTTP (SHA-256 signed payload)"
			res, err := b.hitship(ctx, rc)
			fs3.Close()
			if err != nil {
				return err
			}
			b.report(what, n, drains, res)
			continue
		default:
			return fmt.Errorf("unknown -s3 side %q", side)
		}
		res, err := b.hitship(ctx, rc)
		if err != nil {
			return err
		}
		// A sentinel may be delivered too, by an idle close once a slow run went
		// quiet for the idle timeout.
		if got := s3.lines.Load(); got < int64(n) || got > int64(n+parts) {
			return fmt.Errorf("%s: the S3 endpoint received %d records, want %d (+ up to %d sentinels)", side, got, n, parts)
		}
		res.objects = s3.puts.Load()
		b.report(what, n, drains, res)
		if err := smallFiles(s3.arrivals(), exp); err != nil {
			return err
		}
	}
	return nil
}

func partitioning(keyed bool) string {
	if keyed {
		return "keyed by client id"
	}
	return "round-robin"
}

func (b *bench) report(what string, n int, drains []drainResult, r result) {
	fmt.Printf("hitship -> %s:\n", what)
	whole := float64(n) / r.total.Seconds()
	fmt.Printf("  steady %.0f records/s (5%%->100%% committed); whole run %s from process start (%.0f records/s)\n",
		r.steadyRate, r.total.Round(time.Millisecond), whole)
	for _, d := range drains {
		fmt.Printf("  ratio to drain-only %s: steady %.2f, whole run %.2f\n", modeName(d.mode), r.steadyRate/d.rate, whole/d.rate)
	}
	objects := strconv.FormatInt(r.objects, 10)
	if r.objects == 0 {
		objects = "(not counted)"
	}
	fmt.Printf("  %s objects, peak RSS %d MB, hitship CPU %.2f s (%.2f us/record)\n", objects, r.rss>>20, r.cpu.Seconds(), float64(r.cpu.Microseconds())/float64(n))
}

// smallFiles checks objects per (integration, window) <= partitions that carried
// its hits, and prints the worst case.
func smallFiles(objs []arrival, exp windowsOf) error {
	type bw struct {
		bucket string
		start  int64
	}
	count := map[bw]int{}
	for _, a := range objs {
		bucket, start, _, ok := objectKey(a.path)
		if !ok {
			return fmt.Errorf("small files: unexpected object %q", a.path)
		}
		count[bw{bucket, start}]++
	}
	worst, worstParts, windows := 0, 0, 0
	for k, c := range count {
		want := popcount(exp[k.bucket][k.start])
		if want == 0 {
			continue // a sentinel's window (prefill), closed by the idle clock of a slow run
		}
		if c > want {
			return fmt.Errorf("small files: %s window %d has %d objects, its hits came from %d partitions", k.bucket, k.start, c, want)
		}
		if c > worst || c == worst && want < worstParts {
			worst, worstParts = c, want
		}
		windows++
	}
	fmt.Printf("  small files: ok, %d (integration, window) pairs, at most %d objects per pair, each <= the partitions that carried its hits\n", windows, worst)
	return nil
}

func popcount(m uint64) int {
	n := 0
	for ; m != 0; m &= m - 1 {
		n++
	}
	return n
}

func (b *bench) big(ctx context.Context) error {
	base := time.Now().Truncate(10 * time.Minute).Add(-30 * time.Minute)
	t0 := time.Now()
	n, bytes, _, err := b.prefill(ctx, 0, base, base, 60, b.o.bigBytes)
	if err != nil {
		return err
	}
	fmt.Printf("pre-filled %d hits (%.0f MB) of one tenant into one partition and one window in %s\n", n, float64(bytes)/1e6, time.Since(t0).Round(time.Millisecond))
	s3 := &discardS3{}
	cert := filepath.Join(b.dir, "cert.pem")
	url, stop, err := serveDiscard(s3, cert)
	if err != nil {
		return err
	}
	defer stop()
	r, err := b.hitship(ctx, runCfg{endpoint: url, certFile: cert, tenants: 1, window: "1m", grace: "5s", idle: "30s", steadyTo: 1})
	if err != nil {
		return err
	}
	if got := s3.lines.Load(); got != int64(n) {
		return fmt.Errorf("the S3 endpoint received %d records, want %d", got, n)
	}
	r.objects = s3.puts.Load()
	fmt.Printf("hitship, one window of %.0f MB: %s, %d object(s), peak RSS %d MB (target <= 200 MB)\n", float64(bytes)/1e6, r.total.Round(time.Millisecond), r.objects, r.rss>>20)
	return nil
}

func (b *bench) catchupRun(ctx context.Context) error {
	now := time.Now()
	t0 := time.Now()
	n, bytes, _, err := b.prefill(ctx, b.o.records, now.Add(-b.o.backlog), now, 10, 0)
	if err != nil {
		return err
	}
	fmt.Printf("backlog: %d hits (%.0f MB, %d tenants) with event times over the last %s, in %s\n", n, float64(bytes)/1e6, b.o.tenants, b.o.backlog, time.Since(t0).Round(time.Millisecond))
	drains, err := b.drains(ctx)
	if err != nil {
		return err
	}
	s3 := &discardS3{}
	cert := filepath.Join(b.dir, "cert.pem")
	url, stop, err := serveDiscard(s3, cert)
	if err != nil {
		return err
	}
	defer stop()
	r, err := b.hitship(ctx, runCfg{endpoint: url, certFile: cert, window: "10s", grace: "1s", idle: "30s", steadyTo: 1})
	if err != nil {
		return err
	}
	r.objects = s3.puts.Load()
	fmt.Printf("hitship replaying the backlog (windows 10s, grace 1s, discarding S3 over HTTPS):\n")
	fmt.Printf("  replay %.0f records/s (5%%->100%% committed); all committed %s after process start; %d objects, peak RSS %d MB\n",
		r.steadyRate, r.total.Round(time.Millisecond), r.objects, r.rss>>20)
	for _, d := range drains {
		fmt.Printf("  replay ratio to drain-only %s: %.2f\n", modeName(d.mode), r.steadyRate/d.rate)
	}
	return nil
}

// liveRun produces at a steady rate with current event times and measures, for
// every window that ended after the warm-up, the time from window end to each of
// its objects written; RSS is sampled every second.
func (b *bench) liveRun(ctx context.Context) error {
	const window, grace = 10 * time.Second, time.Second
	s3 := &discardS3{}
	cert := filepath.Join(b.dir, "cert.pem")
	url, stop, err := serveDiscard(s3, cert)
	if err != nil {
		return err
	}
	defer stop()

	pctx, pstop := context.WithCancel(ctx)
	var produced int64
	perr := make(chan error, 1)
	go func() { perr <- b.produceLive(pctx, &produced) }()

	var samples []rssSample
	start := time.Now()
	r, err := b.hitship(ctx, runCfg{endpoint: url, certFile: cert, window: "10s", grace: "1s", idle: "2s",
		duration: b.o.live, onSample: func(s rssSample) { samples = append(samples, s) }})
	pstop()
	if perr := <-perr; perr != nil && err == nil {
		err = perr
	}
	if err != nil {
		return err
	}
	end := time.Now()
	fmt.Printf("live: %d hits/s for %s (produced %d), %d tenants (%s), windows %s, grace %s, discarding S3 over HTTPS\n",
		b.o.rate, b.o.live, produced, b.o.tenants, partitioning(b.o.keyed), window, grace)

	// Latency of the windows that started after 15 s of warm-up and whose objects
	// had time to arrive (ended at least grace + 10 s before the stop).
	var lat []time.Duration
	for _, a := range s3.arrivals() {
		_, ws, _, ok := objectKey(a.path)
		if !ok {
			continue
		}
		wend := time.Unix(ws, 0).Add(window)
		if time.Unix(ws, 0).Before(start.Add(15*time.Second)) || wend.After(end.Add(-grace-10*time.Second)) {
			continue
		}
		lat = append(lat, a.at.Sub(wend))
	}
	if len(lat) == 0 {
		return fmt.Errorf("live: no complete window after the warm-up (run longer than 40s)")
	}
	slices.Sort(lat)
	p := func(q float64) time.Duration { return lat[min(len(lat)-1, int(q*float64(len(lat))))] }
	fmt.Printf("  window end -> object written, %d objects: p50 %s, p99 %s, max %s (target p99 <= grace + 2s = %s)\n",
		len(lat), p(0.5).Round(time.Millisecond), p(0.99).Round(time.Millisecond), lat[len(lat)-1].Round(time.Millisecond), grace+2*time.Second)
	fmt.Printf("  peak RSS %d MB, hitship CPU %.1f s\n", r.rss>>20, r.cpu.Seconds())
	for _, s := range samples {
		if s.at%time.Minute < time.Second || s == samples[len(samples)-1] {
			fmt.Printf("  RSS at %s: %d MB\n", s.at.Round(time.Second), s.rss>>20)
		}
	}
	if b.o.live >= 3*time.Minute {
		var at2 int64
		for _, s := range samples {
			if s.at >= 2*time.Minute {
				at2 = s.rss
				break
			}
		}
		last := samples[len(samples)-1].rss
		fmt.Printf("  soak: RSS at the end %d MB vs minute 2 %d MB: %+.1f%% (target within 10%%)\n", last>>20, at2>>20, 100*(float64(last)/float64(at2)-1))
	}
	return nil
}

// produceLive produces b.o.rate hits/s with current event times until ctx ends.
func (b *bench) produceLive(ctx context.Context, produced *int64) error {
	g := hitgen.New(hitgen.Config{Seed: 2, Tenants: b.o.tenants})
	const tick = 50 * time.Millisecond
	t := time.NewTicker(tick)
	defer t.Stop()
	per := max(1, b.o.rate*int(tick/time.Millisecond)/1000)
	batch := make([]kafka.Message, 0, per)
	i := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		now := time.Now()
		batch = batch[:0]
		for range per {
			r := g.Next(now.Unix())
			p := i % parts
			if b.o.keyed {
				p = int(r.ClientID) % parts
			}
			i++
			batch = append(batch, kafka.Message{Partition: p, Value: r.Value, Time: now,
				Headers: []kafka.Header{{Key: "client_id", Value: []byte(strconv.FormatInt(r.ClientID, 10))}}})
		}
		if err := b.k.Produce(ctx, topic, batch); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		*produced += int64(len(batch))
	}
}
