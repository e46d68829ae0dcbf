package main

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"hitship/internal/testenv"
)

// runCfg is one run of the hitship binary.
type runCfg struct {
	endpoint string
	certFile string // the endpoint's certificate (SSL_CERT_FILE of the child), "" for http
	tenants  int    // 0: options.tenants
	window   string
	grace    string
	idle     string
	profile  string // CPU profile file
	// duration > 0 stops the run after that long; 0 runs until the group's
	// committed offsets reach the end of every partition.
	duration time.Duration
	steadyTo float64 // the steady rate is taken from 5% committed to this fraction
	onSample func(rssSample)
	// staging, when set, turns on staged delivery (delivery.staged) with the
	// staging bucket (parking.bucket stagingBucket) on this S3 endpoint; the
	// customers' buckets stay on endpoint.
	staging string
	// format is the integrations' format (default ndjson).
	format string
	// delivered, when set, is also awaited (duration 0): the run ends once
	// the committed offsets reached the end and delivered reports true (with
	// staged delivery, offsets are committed once staged, before the
	// customer's object is written).
	delivered func() bool
}

// stagingBucket is the staging bucket's name.
const stagingBucket = "bench-staging"

type rssSample struct {
	at  time.Duration // since process start
	rss int64
}

type result struct {
	start      time.Time     // when the process started
	total      time.Duration // from process start (joining the group included)
	steadyRate float64       // records/s from 5% committed to steadyTo
	// steadyStart is when 5% of the records were committed, steadyAt how many
	// were; committed is when every partition was committed to its end (zero
	// for a run of a fixed duration).
	steadyStart time.Time
	steadyAt    int64
	committed   time.Time
	// rssCommitted is the peak RSS until the offsets were committed to the
	// end (with staged delivery: the records staged).
	rssCommitted int64
	rss          int64         // peak (VmHWM)
	cpu          time.Duration // user + system CPU of the process
	// driverCPU is this process's CPU meanwhile: kfake, the S3 endpoints
	// (and gofakes3 for a staging bucket), the watching.
	driverCPU time.Duration
	objects   int64
}

// hitship runs the real binary with its own consumer group, Redis and spool.
func (b *bench) hitship(ctx context.Context, rc runCfg) (result, error) {
	b.runs++
	group := "bench-" + strconv.Itoa(b.runs)
	dir := filepath.Join(b.dir, group)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return result{}, err
	}
	defer os.RemoveAll(dir)
	red, err := testenv.StartRedis(testenv.RedisOptions{})
	if err != nil {
		return result{}, err
	}
	defer red.Close()
	tenants := rc.tenants
	if tenants == 0 {
		tenants = b.o.tenants
	}
	staged := ""
	if rc.staging != "" {
		staged = fmt.Sprintf(`delivery:
  staged: true
parking:
  bucket: %s
  region: us-east-1
  endpoint: %s
  path_style: true
  prefix: hitship/
  credentials: {access_key_id: BENCHACCESSKEY02, secret_access_key_env: BENCH_SECRET}
`, stagingBucket, rc.staging)
	}
	var ins strings.Builder
	for c := 1; c <= tenants; c++ {
		fmt.Fprintf(&ins, "  - {name: tenant-%d, client_id: %d, region: us-east-1, bucket: bench-%d, format: %s, credentials: {access_key_id: BENCHACCESSKEY01, secret_access_key_env: BENCH_SECRET}}\n", c, c, c, cmp.Or(rc.format, "ndjson"))
	}
	cfg := fmt.Sprintf(`kafka:
  brokers: [%s]
  topic: %s
  dead_letter_topic: %s-dlq
  group: %s
  commit_interval: 100ms
window:
  size: %s
  grace: %s
  idle_timeout: %s
spool:
  dir: %s
s3:
  endpoint: %s
  path_style: true
  if_none_match: false
redis:
  addr: %s
http:
  listen: "127.0.0.1:0"
log:
  level: warn
%sintegrations:
%s`, strings.Join(b.k.Addrs(), ","), topic, topic, group, rc.window, rc.grace, rc.idle, filepath.Join(dir, "spool"), rc.endpoint, red.Addr(), staged, ins.String())
	path := filepath.Join(dir, "hitship.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return result{}, err
	}
	hw, err := b.k.HighWater(ctx, topic)
	if err != nil {
		return result{}, err
	}
	// Every partition ends with a sentinel (see prefill) that is never committed.
	var total int64
	for p, h := range hw {
		if h > 0 && rc.duration == 0 {
			hw[p] = h - 1
		}
		total += hw[p]
	}
	args := []string{"run", "--config", path}
	if rc.profile != "" {
		args = append(args, "--cpuprofile", rc.profile)
	}
	cmd := exec.Command(b.bin, args...)
	cmd.Env = append(os.Environ(), "BENCH_SECRET=bench-secret")
	if rc.certFile != "" {
		cmd.Env = append(cmd.Env, "SSL_CERT_FILE="+rc.certFile)
	}
	cmd.Stderr = os.Stderr
	self0 := procCPU(os.Getpid())
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return result{}, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stopped := false
	defer func() { // a clean stop, so that a CPU profile is written
		if stopped {
			return
		}
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}()
	pid := cmd.Process.Pid
	var (
		steady    time.Time
		steadyAt  int64
		steadyEnd time.Time
		endAt     int64
		committed time.Time
		// rssCommitted is the peak RSS until then.
		rssCommitted int64
		lastSample   time.Time
		cpu          time.Duration
	)
	for {
		if c := procCPU(pid); c > 0 {
			cpu = c
		}
		if rc.onSample != nil && time.Since(lastSample) >= time.Second {
			lastSample = time.Now()
			if rss := procStatus(pid, "VmRSS:"); rss > 0 {
				rc.onSample(rssSample{at: time.Since(start), rss: rss})
			}
		}
		if rc.duration > 0 {
			if time.Since(start) >= rc.duration {
				break
			}
		} else {
			c, err := b.k.Committed(ctx, group, topic)
			if err == nil {
				s := sum(c)
				if steady.IsZero() && s*20 >= total {
					steady, steadyAt = time.Now(), s
				}
				if steadyEnd.IsZero() && float64(s) >= rc.steadyTo*float64(total) {
					steadyEnd, endAt = time.Now(), s
				}
				if committed.IsZero() && done(c, hw) {
					committed, rssCommitted = time.Now(), procStatus(pid, "VmHWM:")
				}
				if !committed.IsZero() && (rc.delivered == nil || rc.delivered()) {
					break
				}
			}
		}
		select {
		case err := <-exited:
			stopped = true
			return result{}, fmt.Errorf("hitship exited early: %v", err)
		default:
		}
		if time.Since(start) > 20*time.Minute+rc.duration {
			return result{}, fmt.Errorf("hitship did not commit to the end in 20 minutes")
		}
		time.Sleep(50 * time.Millisecond)
	}
	r := result{start: start, total: time.Since(start), rss: procStatus(pid, "VmHWM:"), cpu: cpu, steadyStart: steady, steadyAt: steadyAt, committed: committed,
		driverCPU: procCPU(os.Getpid()) - self0, rssCommitted: rssCommitted}
	if !steady.IsZero() && steadyEnd.After(steady) {
		r.steadyRate = float64(endAt-steadyAt) / steadyEnd.Sub(steady).Seconds()
	}
	// Stop it now: its CPU profile is complete when the caller reads it.
	_ = cmd.Process.Signal(os.Interrupt)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
	stopped = true
	return r, nil
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

// procStatus returns a "kB" field of /proc/PID/status in bytes (Linux).
func procStatus(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field) {
			f := strings.Fields(l)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// procCPU returns the user + system CPU time of a process (Linux, 100 Hz ticks).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 {
		s = s[i+1:]
	}
	f := strings.Fields(s)
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseInt(f[11], 10, 64)
	k, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(u+k) * 10 * time.Millisecond
}
