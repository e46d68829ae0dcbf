package main

import (
	"context"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"hitship/internal/embedded"
)

// Staged delivery (issue #12, -staged): the same hitship with delivery.staged.
// The staging bucket (parking.bucket) is gofakes3 (internal/embedded): it must
// keep what it is given, list it with a delimiter, serve it back and delete it,
// and refuse a conditional PUT (If-None-Match: *) of an existing key, which the
// discarding endpoint does not. It runs in the driver's process, in memory or
// (-big) as files on disk, so that hitship's RSS (a child process) is measured
// alone. The customers' buckets stay on the discarding endpoint over HTTPS,
// which notes each object's key, arrival time and records.

// stagingS3 is the staging bucket's server and what it was asked.
type stagingS3 struct {
	*embedded.S3
	url  string
	stop func()
	reqs [5]atomic.Int64 // PUT (and multipart calls), GET, LIST, DELETE, other
}

// startStaging starts gofakes3 with the staging bucket, in memory or, with dir
// set, as files under dir. With certFile set hitship reaches it over HTTPS,
// the production path (unsigned payload + CRC32 instead of the SHA-256 of
// every body that plain HTTP needs), through a TLS front in this process.
func startStaging(dir, certFile string) (*stagingS3, error) {
	st := &stagingS3{}
	if dir != "" {
		// gofakes3's file backend answers a delimited listing of a prefix
		// without a directory yet with 404 NoSuchBucket (hitship logs it and
		// tries again at the next tick): the segments' directory exists from
		// the start, as a prefix does in S3.
		if err := os.MkdirAll(filepath.Join(dir, stagingBucket, "hitship", "staging", "seg"), 0o700); err != nil {
			return nil, err
		}
	}
	s, err := embedded.StartS3(embedded.S3Options{Dir: dir, Buckets: []string{stagingBucket},
		Wrap: func(h http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				i := 4
				switch {
				case r.Method == http.MethodPut || r.Method == http.MethodPost:
					i = 0
				case r.Method == http.MethodGet && strings.Count(strings.TrimPrefix(r.URL.Path, "/"), "/") > 0:
					i = 1
				case r.Method == http.MethodGet:
					i = 2
				case r.Method == http.MethodDelete:
					i = 3
				}
				st.reqs[i].Add(1)
				h.ServeHTTP(w, r)
			})
		}})
	if err != nil {
		return nil, err
	}
	st.S3, st.url = s, s.URL()
	if certFile != "" {
		u, err := url.Parse(s.URL())
		if err != nil {
			s.Close()
			return nil, err
		}
		p := httputil.NewSingleHostReverseProxy(u)
		p.Transport = &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 5 * time.Second}
		p.ErrorLog = log.New(io.Discard, "", 0) // requests hitship gave up on, e.g. when it stops: it logs what matters
		if st.url, st.stop, err = serve(p, certFile); err != nil {
			s.Close()
			return nil, err
		}
	}
	return st, nil
}

// URL is the endpoint hitship is given.
func (s *stagingS3) URL() string { return s.url }

// Close stops the servers.
func (s *stagingS3) Close() {
	if s.stop != nil {
		s.stop()
	}
	_ = s.S3.Close()
}

// requests describes the calls the staging bucket answered.
func (s *stagingS3) requests() string {
	return fmt.Sprintf("%d PUT, %d GET, %d LIST, %d DELETE", s.reqs[0].Load(), s.reqs[1].Load(), s.reqs[2].Load(), s.reqs[3].Load())
}

// leftSegments counts the segments still in the staging bucket.
func (s *stagingS3) leftSegments() int {
	keys, err := s.Keys(stagingBucket, "hitship/staging/seg/")
	if err != nil {
		return -1
	}
	return len(keys)
}

// tracker follows the customers' objects of a pre-filled run's windows (the
// sentinels' windows left out): done reports whether every one of n records
// arrived; at is when the last of them did.
type tracker struct {
	s3      *discardS3
	windows map[int64]bool
	n       int64

	seen  int
	lines int64
	at    time.Time
}

func newTracker(s3 *discardS3, exp windowsOf, n int) *tracker {
	d := &tracker{s3: s3, windows: map[int64]bool{}, n: int64(n)}
	for _, ws := range exp {
		for w := range ws {
			d.windows[w] = true
		}
	}
	return d
}

func (d *tracker) done() bool {
	objs := d.s3.arrivals()
	for _, a := range objs[d.seen:] {
		if _, ws, _, ok := stagedKey(a.path); ok && d.windows[ws] {
			d.lines += a.lines
			if a.at.After(d.at) {
				d.at = a.at
			}
		}
	}
	d.seen = len(objs)
	return d.lines >= d.n
}

// stagedRun runs hitship with staged delivery on the pre-filled topic (n
// records, exp their integrations, windows and partitions) until every record
// is in the customers' buckets; the staging bucket is in memory, or on disk
// under the run's directory with onDisk.
func (b *bench) stagedRun(ctx context.Context, rc runCfg, n int, exp windowsOf, onDisk bool) (result, *discardS3, *tracker, *stagingS3, error) {
	dir := ""
	if onDisk {
		dir = filepath.Join(b.dir, "staging")
	}
	cert := filepath.Join(b.dir, "cert.pem")
	stCert := cert
	if b.o.stagingScheme == "http" {
		stCert = ""
	}
	st, err := startStaging(dir, stCert)
	if err != nil {
		return result{}, nil, nil, nil, err
	}
	defer st.Close()
	s3 := &discardS3{}
	endpoint, stop, err := serveDiscard(s3, cert)
	if err != nil {
		return result{}, nil, nil, nil, err
	}
	defer stop()
	d := newTracker(s3, exp, n)
	if b.o.driverProfile != "" {
		f, err := os.Create(b.o.driverProfile)
		if err != nil {
			return result{}, nil, nil, nil, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return result{}, nil, nil, nil, err
		}
		defer pprof.StopCPUProfile()
	}
	rc.endpoint, rc.certFile, rc.staging, rc.delivered = endpoint, cert, st.URL(), d.done
	r, err := b.hitship(ctx, rc)
	if err != nil {
		return result{}, nil, nil, nil, err
	}
	if d.lines != int64(n) {
		return result{}, nil, nil, nil, fmt.Errorf("staged: the customers' buckets received %d records of the pre-filled windows, want %d", d.lines, n)
	}
	r.objects = s3.puts.Load()
	fmt.Printf("  staging bucket: %s; %d segments left\n", st.requests(), st.leftSegments())
	return r, s3, d, st, nil
}

// stagedReport prints a pre-filled staged run's rates against the drain-only
// baselines and the per-partition run of the same process (pp, if any).
func (b *bench) stagedReport(n int, drains []drainResult, r result, d *tracker, pp *result) {
	staging := r.steadyRate
	e2e := 0.0
	if !r.steadyStart.IsZero() && d.at.After(r.steadyStart) {
		e2e = float64(int64(n)-r.steadyAt) / d.at.Sub(r.steadyStart).Seconds()
	}
	whole := float64(n) / r.total.Seconds()
	fmt.Printf("  end to end %.0f records/s (5%% committed -> the last record in the customers' buckets); staging %.0f records/s (5%%->100%% committed)\n", e2e, staging)
	fmt.Printf("  whole run %s from process start (%.0f records/s); the last customer object %s after the offsets were committed to the end\n",
		r.total.Round(time.Millisecond), whole, d.at.Sub(r.committed).Round(time.Millisecond))
	for _, dr := range drains {
		verdict := ""
		if dr.mode == "batch" {
			verdict = " (target end to end >= 0.5: " + metOrNot(e2e/dr.rate >= 0.5) + ")"
		}
		fmt.Printf("  ratio to drain-only %s: end to end %.2f%s, staging %.2f, whole run %.2f\n", modeName(dr.mode), e2e/dr.rate, verdict, staging/dr.rate, whole/dr.rate)
	}
	if pp != nil && pp.steadyRate > 0 {
		fmt.Printf("  ratio to per-partition delivery (same run, HTTPS): end to end %.2f, CPU per record %.2f\n", e2e/pp.steadyRate,
			float64(r.cpu)/float64(max(pp.cpu, 1)))
	}
	fmt.Printf("  %d customer objects, peak RSS %d MB, hitship CPU %.2f s (%.2f us/record); the driver's CPU meanwhile (kfake, gofakes3, endpoints) %.2f s\n",
		r.objects, r.rss>>20, r.cpu.Seconds(), float64(r.cpu.Microseconds())/float64(n), r.driverCPU.Seconds())
}

func metOrNot(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

// objectsPerWindow checks a staged run's customer objects against exp: one
// main object per (integration, window) with hits, none for an integration
// without, and reports per window the objects against the integrations with
// hits (issue #12's target: equal; a late object makes one more).
func objectsPerWindow(objs []arrival, exp windowsOf) error {
	type bw struct {
		bucket string
		start  int64
	}
	mains, lates := map[bw]int{}, map[bw]int{}
	perWindow := map[int64]int{}
	for _, a := range objs {
		bucket, start, late, ok := stagedKey(a.path)
		if !ok {
			return fmt.Errorf("staged: unexpected object %q", a.path)
		}
		k := bw{bucket, start}
		if exp[bucket][start] == 0 {
			if late == 0 && !sentinelWindow(exp, start) {
				return fmt.Errorf("staged: object %q for a window its integration has no hits in", a.path)
			}
			continue // a sentinel's window, delivered after the idle timeout of a slow run
		}
		if late == 0 {
			mains[k]++
		} else {
			lates[k]++
		}
		perWindow[start]++
	}
	withHits := map[int64]int{}
	for bucket, ws := range exp {
		for w := range ws {
			withHits[w]++
			if n := mains[bw{bucket, w}]; n != 1 {
				return fmt.Errorf("staged: %s window %d has %d main objects, want 1", bucket, w, n)
			}
		}
	}
	var windows []int64
	for w := range withHits {
		windows = append(windows, w)
	}
	slices.Sort(windows)
	equal, late := 0, 0
	minI, maxI, minO, maxO := 1<<30, 0, 1<<30, 0
	for _, w := range windows {
		i, o := withHits[w], perWindow[w]
		minI, maxI, minO, maxO = min(minI, i), max(maxI, i), min(minO, o), max(maxO, o)
		if i == o {
			equal++
		}
	}
	for _, n := range lates {
		late += n
	}
	fmt.Printf("  objects per window: %d windows, integrations with hits %d-%d per window, objects %d-%d per window; %d of %d windows with objects = integrations with hits, %d late objects (target: equal in every window: %s)\n",
		len(windows), minI, maxI, minO, maxO, equal, len(windows), late, metOrNot(equal == len(windows)))
	return nil
}

// sentinelWindow reports whether start is after every pre-filled window (the
// sentinels' window).
func sentinelWindow(exp windowsOf, start int64) bool {
	for _, ws := range exp {
		for w := range ws {
			if w >= start {
				return false
			}
		}
	}
	return true
}
