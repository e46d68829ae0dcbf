package chaos

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var longRun = flag.Bool("chaos.long", false, "run the long chaos test: 1,000,000 hits and the full fault schedule (also HITSHIP_CHAOS=long)")

// plan is one size of the chaos run. Times are offsets from the start of `hitship gen`.
type plan struct {
	name       string
	hits       int
	rate       int           // hits per second
	killMin    time.Duration // a random replica is SIGKILLed every killMin..killMax
	killMax    time.Duration
	downFor    time.Duration // how long a killed replica stays down
	killsUntil time.Duration // no kills after this (and not before gen ends)
	cuts       []time.Duration
	cutFor     time.Duration
	redisAt    time.Duration
	redisDown  time.Duration
	failAt     time.Duration // the failing integration's bucket answers 503 ...
	failFor    time.Duration // ... for this long
	settle     time.Duration // deadline for everything to be delivered after the faults
}

// The short plan is the 60-second version in `make test`: 30 s of feed with
// kills, cuts and a Redis restart, then as long as delivery takes (deadlines
// are generous: the machine is shared).
//
// Retry cycle 1 runs inline and takes 29 s; a rebalance (any kill or broker
// cut ends the generation of every member) cancels it and the next owner
// starts it again. So objects are parked only once the group has been stable
// for 29 s: the failing bucket outlasts the kill period by 52 s in the short
// plan and by 90 s in the long one, and the test fails if nothing was parked.
var (
	shortPlan = plan{name: "short", hits: 36000, rate: 1200,
		killMin: 4 * time.Second, killMax: 8 * time.Second, downFor: time.Second, killsUntil: 28 * time.Second,
		cuts: []time.Duration{8 * time.Second, 20 * time.Second}, cutFor: 5 * time.Second,
		redisAt: 15 * time.Second, redisDown: 3 * time.Second,
		failAt: 3 * time.Second, failFor: 77 * time.Second, settle: 8 * time.Minute}
	longPlan = plan{name: "long", hits: 1_000_000, rate: 5000,
		killMin: 5 * time.Second, killMax: 15 * time.Second, downFor: 2 * time.Second, killsUntil: 200 * time.Second,
		cuts: []time.Duration{45 * time.Second, 150 * time.Second}, cutFor: 10 * time.Second,
		redisAt: 100 * time.Second, redisDown: 5 * time.Second,
		failAt: 170 * time.Second, failFor: 2 * time.Minute, settle: 2 * time.Hour}
)

// redisWriteBack is how long after Redis restarts the replicas are given to
// write back the window snapshots they held during the outage (they retry
// every 250 ms; go-redis redials within a second) before kills resume.
const redisWriteBack = 3 * time.Second

// chaosFaults are the S3 faults of every request to the integrations' buckets
// and to the parking bucket.
var chaosFaults = FaultConfig{ErrorShare: 0.05, DropShare: 0.02, SlowShare: 0.05,
	SlowMin: 200 * time.Millisecond, SlowMax: 3 * time.Second, Seed: 7}

// TestChaos is issue 7 part 1 (see the package doc): three real replicas, a
// feed of 50 tenants with late and malformed records, and every fault at once;
// afterwards every well-formed hit must be in every integration of its tenant
// exactly once, every malformed record in the dead-letter topic, the offsets
// committed to the end, and nothing parked.
//
// The failing integration would be auto-disabled by the health ledger (60%
// failures over at least delivery.health_min_attempts attempts in 12 h), and
// the hits of a disabled integration are skipped by design: the replicas run
// with health_min_attempts set far above what a run makes, so the test proves
// delivery, not the health policy.
//
// `go test ./chaos -run TestChaos` is the short version; -chaos.long (or
// HITSHIP_CHAOS=long) the long one, which runs as long as it needs.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos: end to end")
	}
	pl := shortPlan
	if *longRun || os.Getenv("HITSHIP_CHAOS") == "long" {
		pl = longPlan
	}
	began := time.Now()
	w := newWorld(t, chaosFaults)
	failing := w.ins[0]

	reps := []*replica{w.newReplica("a"), w.newReplica("b"), w.newReplica("c")}
	for _, r := range reps {
		if err := r.start(); err != nil {
			t.Fatal(err)
		}
	}
	logs := func() {
		for _, r := range reps {
			t.Logf("replica %s (%d starts), log tail:\n%s", r.name, r.starts, r.logTail(4000))
			// What explains a duplicate: replays without the window state of the
			// committed offset (lost with Redis), and the replicas' starts.
			b, _ := os.ReadFile(r.logPath)
			var lines []string
			for _, l := range strings.Split(string(b), "\n") {
				if strings.HasPrefix(l, "=== start") || strings.Contains(l, "snapshot") || strings.Contains(l, "generation") {
					lines = append(lines, l)
				}
			}
			t.Logf("replica %s, starts and window-snapshot messages:\n%s", r.name, strings.Join(lines[max(0, len(lines)-60):], "\n"))
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	t0 := time.Now()
	elapsed := func() string { return time.Since(t0).Round(100 * time.Millisecond).String() }
	events := newEventLog(t, elapsed)

	// The feed.
	genOut := filepath.Join(w.dir, "gen.out")
	gen := exec.Command(w.bin, "gen", "--brokers", strings.Join(w.kafka.Addrs(), ","), "--topic", topic,
		"--rate", strconv.Itoa(pl.rate), "--count", strconv.Itoa(pl.hits), "--tenants", "50",
		"--late", "0.01", "--malformed", "0.005", "--seed", "42", "--retry-for", "5m")
	gf, err := os.Create(genOut)
	if err != nil {
		t.Fatal(err)
	}
	gen.Stdout, gen.Stderr = gf, gf
	setDeathSignal(gen)
	if err := gen.Start(); err != nil {
		t.Fatal(err)
	}
	genDone := make(chan error, 1)
	go func() { genDone <- gen.Wait(); _ = gf.Close() }()
	t.Cleanup(func() { _ = gen.Process.Kill(); <-genDone })

	// The scheduled faults.
	var wg sync.WaitGroup
	var lastEvent time.Duration
	at := func(d time.Duration, what string, fn func()) {
		lastEvent = max(lastEvent, d)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if sleepCtx(ctx, time.Until(t0.Add(d))) {
				events.add(what)
				fn()
			}
		}()
	}
	at(pl.failAt, "bucket "+failing.bucket+" fails (503)", func() { w.s3.FailBucket(failing.bucket, http.StatusServiceUnavailable) })
	at(pl.failAt+pl.failFor, "bucket "+failing.bucket+" healed", func() { w.s3.HealBucket(failing.bucket) })
	for i, c := range pl.cuts {
		at(c, fmt.Sprintf("broker connections cut (%d)", i+1), w.kafka.Cut)
		at(c+pl.cutFor, fmt.Sprintf("broker restored (%d)", i+1), w.kafka.Restore)
	}
	at(pl.redisAt, "redis stopped", func() {
		if err := w.redis.Stop(); err != nil {
			t.Errorf("stop redis: %v", err)
		}
	})
	at(pl.redisAt+pl.redisDown, "redis started", func() {
		if err := w.redis.Start(); err != nil {
			t.Errorf("start redis: %v", err)
		}
	})

	// SIGKILL a random replica every few seconds until the feed and the kill
	// period are over; a crash (an exit the test did not cause) fails the test.
	stopKills := make(chan struct{})
	var stopOnce sync.Once
	stop := func() { stopOnce.Do(func() { close(stopKills) }) }
	killsDone := make(chan struct{})
	kills := 0
	var genFinished atomic.Bool
	go func() {
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
		defer close(killsDone)
		for {
			d := pl.killMin + time.Duration(rng.Int64N(int64(pl.killMax-pl.killMin)+1))
			select {
			case <-stopKills:
				return
			case <-time.After(d):
			}
			if time.Since(t0) >= pl.killsUntil && genFinished.Load() {
				return
			}
			// Not while a replica may hold window snapshots Redis has not
			// taken: a crash then replays without them, and may write windows
			// open at the committed offset again (the documented outcome of a
			// crash during a Redis outage, README "Redis outage").
			if el, end := time.Since(t0), pl.redisAt+pl.redisDown+redisWriteBack; el >= pl.redisAt && el < end {
				select {
				case <-stopKills:
					return
				case <-time.After(end - el):
				}
			}
			r := reps[rng.IntN(len(reps))]
			events.add("SIGKILL " + r.name)
			r.kill()
			kills++
			select {
			case <-stopKills:
			case <-time.After(pl.downFor):
			}
			if err := r.start(); err != nil {
				t.Errorf("restart %s: %v", r.name, err)
			}
		}
	}()
	// Watch the retry queue: the failing bucket must make objects park.
	var maxParked atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for sleepCtx(ctx, time.Second) {
			qctx, qcancel := context.WithTimeout(ctx, 5*time.Second)
			entries, _, _, _, err := w.leftovers(qctx)
			qcancel()
			if err == nil && int64(entries) > maxParked.Load() {
				maxParked.Store(int64(entries))
			}
		}
	}()

	// However the test ends, no goroutine of it logs afterwards.
	t.Cleanup(func() { cancel(); stop(); <-killsDone; wg.Wait() })
	crashed := 0
	crashes := func() {
		for _, r := range reps {
			if gone, state := r.exited(); gone {
				if crashed++; crashed > 5 {
					t.Fatalf("replicas crashed %d times; %s's log tail:\n%s", crashed, r.name, r.logTail(8000))
				}
				t.Errorf("replica %s exited by itself (%s); log tail:\n%s", r.name, state, r.logTail(8000))
				if err := r.start(); err != nil {
					t.Errorf("restart %s: %v", r.name, err)
				}
			}
		}
	}

	// Wait for the feed, the fault schedule and the kill period.
	feedDeadline := time.Duration(pl.hits/pl.rate)*time.Second*3 + 5*time.Minute
	select {
	case err := <-genDone:
		genDone <- err
		if err != nil {
			out, _ := os.ReadFile(genOut)
			t.Fatalf("hitship gen: %v\n%s", err, out)
		}
	case <-time.After(feedDeadline):
		t.Fatalf("hitship gen did not finish within %s", feedDeadline)
	}
	genFinished.Store(true)
	genText, _ := os.ReadFile(genOut)
	events.add("gen done: " + strings.TrimSpace(string(genText)))
	<-killsDone // the kill loop ends by itself once the kill period is over
	if !waitFor(ctx, time.Second, func() bool { return time.Since(t0) > lastEvent+time.Second }) {
		t.Fatal("canceled")
	}
	events.add(fmt.Sprintf("kills over (%d SIGKILLs)", kills))
	crashes()
	for _, r := range reps {
		if err := r.start(); err != nil {
			t.Fatal(err)
		}
	}

	// Converge: offsets committed to the end, nothing parked.
	sctx, scancel := context.WithTimeout(ctx, pl.settle)
	defer scancel()
	var last string
	ok := waitFor(sctx, 2*time.Second, func() bool {
		crashes()
		qctx, qcancel := context.WithTimeout(ctx, 10*time.Second)
		defer qcancel()
		end, lag, err := w.committedToEnd(qctx)
		if err != nil {
			last = "offsets: " + err.Error()
			return false
		}
		entries, stats, parked, dead, err := w.leftovers(qctx)
		if err != nil {
			last = "leftovers: " + err.Error()
			return false
		}
		now := fmt.Sprintf("lag %d, retry entries %d (%+v), parked objects %d, dead objects %d", lag, entries, stats, parked, dead)
		if now != last {
			events.add("waiting: " + now)
			last = now
		}
		return end && entries == 0 && parked == 0 && dead == 0
	})
	if !ok {
		logs()
		t.Fatalf("not converged within %s: %s", pl.settle, last)
	}
	events.add("converged")
	cancel() // ends the queue watcher

	// Verify from S3, the dead-letter topic and Kafka alone.
	vctx, vcancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer vcancel()
	ex, err := w.readExpected(vctx)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := w.verify(vctx, ex)
	if err != nil {
		t.Fatal(err)
	}
	// Stop cleanly: the replicas must exit 0 within the Kubernetes grace period.
	for _, r := range reps {
		code, err := r.term(30 * time.Second)
		if err != nil || code != 0 {
			t.Errorf("replica %s: exit %d after SIGTERM: %v", r.name, code, err)
		}
	}
	var panics []string
	for _, r := range reps {
		b, _ := os.ReadFile(r.logPath)
		for _, bad := range []string{"panic:", "fatal error:", "DATA RACE"} {
			if strings.Contains(string(b), bad) {
				panics = append(panics, r.name+": "+bad)
			}
		}
	}
	cf, pf := w.custFaults.Counts(), w.parkFaults.Counts()
	t.Logf("chaos %s: %d hits in %s (feed and faults, then delivery), %d SIGKILLs, whole test %s\n%s\n"+
		"S3 faults, integrations: %+v\nS3 faults, parking: %+v\nPutObject-only policy: %d requests allowed, %d denied",
		pl.name, pl.hits, time.Since(t0).Round(time.Second), kills, time.Since(began).Round(time.Second), rep,
		cf, pf, len(w.policy.Allowed()), len(w.policy.Denied()))
	for _, e := range rep.examples {
		t.Log("  " + e)
	}
	if d := w.policy.Denied(); len(d) > 0 {
		t.Errorf("the PutObject-only policy refused %d requests, e.g. %s", len(d), d[0])
	}
	if len(panics) > 0 {
		logs()
		t.Errorf("replica logs show %v", panics)
	}
	if rep.records < int64(pl.hits) {
		t.Errorf("the topic holds %d records, gen was asked for %d", rep.records, pl.hits)
	}
	if cf.Errors500+cf.Errors503 == 0 || cf.DroppedBefore+cf.DroppedAfter == 0 || cf.Slow == 0 {
		t.Errorf("the S3 fault injector did not exercise every fault: %+v", cf)
	}
	t.Logf("most retry entries parked at once: %d", maxParked.Load())
	if maxParked.Load() == 0 {
		t.Errorf("no object was parked while bucket %s failed for %s: the retry workers were not exercised", failing.bucket, pl.failFor)
	}
	if rep.failed() {
		logs()
		t.Fatalf("loss or duplicates:\n%s", rep)
	}
}

// eventLog prints the fault schedule as it happens.
type eventLog struct {
	t       *testing.T
	elapsed func() string
	mu      sync.Mutex
}

func newEventLog(t *testing.T, elapsed func() string) *eventLog {
	return &eventLog{t: t, elapsed: elapsed}
}

func (l *eventLog) add(what string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.t.Logf("[%s] %s", l.elapsed(), what)
}
