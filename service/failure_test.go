package service_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"hitship/config"
)

// Failure tests: a customer's bucket failing, members leaving and joining, and a
// replica SIGKILLed between its uploads and its commit. Each one ends with the same
// check as the main end-to-end test (every hit exactly once in every integration
// of its tenant) and, where a replay happens, with the replay-determinism check:
// an object written before the failure is never rewritten with other bytes.

// hitAt places one hit: its tenant, its partition and its event time (Unix s).
type hitAt struct {
	client    int64
	partition int
	ts        int64
}

// produceHitsAt writes one hit per spec, in order, and returns them. seed keeps
// request ids unique across calls.
func produceHitsAt(t *testing.T, e *env, seed int64, specs []hitAt) []sent {
	t.Helper()
	out := make([]sent, 0, len(specs))
	msgs := make([]kafka.Message, 0, len(specs))
	for i, s := range specs {
		id := fmt.Sprintf("%08d%08x", i, uint32(seed))
		v := []byte(fmt.Sprintf(`{"time":"%d","request_id":"%s","ip":"10.0.0.%d","datacenter":"unknown","tor":"none","remote_country":null,"application_id":[-1],"domain":"localhost","method":"GET","uri":"/etc/passwd","protocol":"none","status_code":499,"attack_type":"ptrav","block_status":"monitored","payload":["/etc/passwd"],"point":["uri"],"tags":{"lom_id":7}}`, s.ts, id, i%250))
		msgs = append(msgs, kafka.Message{Partition: s.partition, Value: v, Time: time.Now(),
			Headers: []kafka.Header{{Key: "client_id", Value: []byte(strconv.FormatInt(s.client, 10))}}})
		out = append(out, sent{id: id, client: s.client, partition: s.partition, value: v})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for i := 0; i < len(msgs); i += 1000 {
		if err := e.kafka.Produce(ctx, e.topic, msgs[i:min(i+1000, len(msgs))]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// spreadHits returns n specs for clients in turn over partitions [0, parts), with
// event times from base over `windows` windows of size win, out of order by up to
// 90 s (like produceHits).
func spreadHits(n int, clients []int64, parts int, base time.Time, win time.Duration, windows int, seed int64) []hitAt {
	specs := make([]hitAt, 0, n)
	span := int64(win/time.Second) * int64(windows)
	for i := 0; i < n; i++ {
		c := clients[i%len(clients)]
		x := uint64(i)*2654435761 + uint64(seed)
		ts := max(base.Unix(), base.Unix()+int64(i)*span/int64(n)-int64(x%90))
		specs = append(specs, hitAt{client: c, partition: int(c+int64(i)) % parts, ts: ts})
	}
	return specs
}

var (
	failKeyRE = regexp.MustCompile(`^hits/wallarm_hits_(\d+)_(\d+)_(\d+)_[0-9a-f]{16}\.(json|jsonl)$`)
	failIDRE  = regexp.MustCompile(`"request_id":"([0-9a-f]+)"`)
)

// deliveredWhere maps integration name -> request id -> keys of the objects that
// hold it, reading every bucket of ins. It fails the test on a record it cannot
// account for (unknown id, bytes changed, wrong partition, bad key).
func deliveredWhere(t *testing.T, e *env, hits []sent, ins []config.Integration) map[string]map[string][]string {
	t.Helper()
	byID := make(map[string]sent, len(hits))
	for _, h := range hits {
		if _, dup := byID[h.id]; dup {
			t.Fatalf("test bug: request id %s produced twice", h.id)
		}
		byID[h.id] = h
	}
	inOf := map[string]config.Integration{}
	buckets := make([]string, 0, len(ins))
	where := map[string]map[string][]string{}
	for _, in := range ins {
		if _, dup := inOf[in.Bucket]; dup {
			t.Fatalf("test bug: bucket %s shared by two integrations", in.Bucket)
		}
		inOf[in.Bucket] = in
		buckets = append(buckets, in.Bucket)
		where[in.Name] = map[string][]string{}
	}
	wantExt := map[string]string{"json": "json", "ndjson": "jsonl"}
	for _, o := range e.objects(t, buckets...) {
		in := inOf[o.bucket]
		m := failKeyRE.FindStringSubmatch(o.key)
		if m == nil {
			t.Fatalf("key %s/%s does not follow the default template", o.bucket, o.key)
		}
		if wantExt[in.Format] != m[4] {
			t.Fatalf("key %s/%s: extension %s for format %s", o.bucket, o.key, m[4], in.Format)
		}
		for _, r := range o.records {
			id := failIDRE.FindSubmatch(r)
			if id == nil {
				t.Fatalf("%s/%s: record without request_id: %s", o.bucket, o.key, r)
			}
			h, ok := byID[string(id[1])]
			if !ok {
				t.Fatalf("%s/%s: unknown record %s", o.bucket, o.key, id[1])
			}
			if !bytes.Equal(r, h.value) {
				t.Fatalf("%s/%s: record bytes changed:\n got %s\nwant %s", o.bucket, o.key, r, h.value)
			}
			if strconv.Itoa(h.partition) != m[2] {
				t.Fatalf("%s/%s: holds a record of partition %d", o.bucket, o.key, h.partition)
			}
			where[in.Name][h.id] = append(where[in.Name][h.id], o.bucket+"/"+o.key)
		}
	}
	return where
}

// checkExactlyOnce asserts that every hit is in exactly one object of every
// integration of its tenant (so no record is in two objects of an integration),
// in none of another tenant's, with its bytes unchanged, and that no call was made
// that a PutObject-only policy denies.
func checkExactlyOnce(t *testing.T, e *env, hits []sent, ins []config.Integration) {
	t.Helper()
	where := deliveredWhere(t, e, hits, ins)
	var problems []string
	for _, in := range ins {
		missing, dups, foreign := 0, 0, 0
		for _, h := range hits {
			keys := where[in.Name][h.id]
			switch {
			case h.client == in.ClientID && len(keys) == 0:
				if missing++; missing <= 3 {
					problems = append(problems, fmt.Sprintf("%s: hit %s (partition %d) missing", in.Name, h.id, h.partition))
				}
			case h.client == in.ClientID && len(keys) > 1:
				if dups++; dups <= 3 {
					problems = append(problems, fmt.Sprintf("%s: hit %s (partition %d) in %d objects: %s", in.Name, h.id, h.partition, len(keys), strings.Join(keys, ", ")))
				}
			case h.client != in.ClientID && len(keys) > 0:
				if foreign++; foreign <= 3 {
					problems = append(problems, fmt.Sprintf("%s: hit %s of client %d delivered to another tenant's integration", in.Name, h.id, h.client))
				}
			}
		}
		if missing+dups+foreign > 0 {
			problems = append(problems, fmt.Sprintf("%s: %d missing, %d duplicated, %d foreign", in.Name, missing, dups, foreign))
		}
	}
	if len(problems) > 0 {
		t.Fatalf("not exactly once:\n%s", strings.Join(problems, "\n"))
	}
	if d := e.proxy.Denied(); len(d) > 0 {
		t.Fatalf("calls a PutObject-only policy denies: %s", strings.Join(d, ", "))
	}
}

// allDelivered reports whether every hit of in's tenant is in in's bucket.
func allDelivered(t *testing.T, e *env, hits []sent, in config.Integration) bool {
	t.Helper()
	where := deliveredWhere(t, e, hits, []config.Integration{in})[in.Name]
	for _, h := range hits {
		if h.client == in.ClientID && len(where[h.id]) == 0 {
			return false
		}
	}
	return true
}

// objectBytes returns every object of the buckets by "bucket/key".
func objectBytes(t *testing.T, e *env, buckets ...string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	for _, b := range buckets {
		objs, err := e.s3.Objects(context.Background(), b)
		if err != nil {
			t.Fatal(err)
		}
		for k, v := range objs {
			out[b+"/"+k] = v
		}
	}
	return out
}

// checkUnchanged asserts replay determinism: every object written before (a
// crash, a rebalance) is still there after it with the same bytes. A replay may
// rewrite an object only with identical bytes; with If-None-Match a different
// rewrite would be refused (412) and its extra records lost.
func checkUnchanged(t *testing.T, before, after map[string][]byte) {
	t.Helper()
	var bad []string
	for k, b := range before {
		a, ok := after[k]
		switch {
		case !ok:
			bad = append(bad, k+": gone")
		case !bytes.Equal(a, b):
			bad = append(bad, fmt.Sprintf("%s: rewritten with other bytes (%d records before, %d after)",
				k, bytes.Count(b, []byte(`"request_id"`)), bytes.Count(a, []byte(`"request_id"`))))
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		t.Fatalf("replay is not deterministic: %d of %d earlier objects changed:\n%s", len(bad), len(before), strings.Join(bad, "\n"))
	}
}

// recordOffsets reads the topic back and maps request id -> offset.
func recordOffsets(t *testing.T, e *env) map[string]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msgs, err := e.kafka.ReadAll(ctx, e.topic)
	if err != nil {
		t.Fatal(err)
	}
	out := make(map[string]int64, len(msgs))
	for _, m := range msgs {
		id := failIDRE.FindSubmatch(m.Value)
		if id == nil {
			t.Fatalf("record %d/%d without request_id", m.Partition, m.Offset)
		}
		out[string(id[1])] = m.Offset
	}
	return out
}

// committedOffsets returns the group's committed offsets (absent: none yet).
func committedOffsets(t *testing.T, e *env, group string) map[int]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := e.kafka.Committed(ctx, group, e.topic)
	if errors.Is(err, kafka.GroupIdNotFound) {
		return map[int]int64{} // no member joined yet
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// highWater returns the high-water marks of the topic.
func highWater(t *testing.T, e *env) map[int]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	hw, err := e.kafka.HighWater(ctx, e.topic)
	if err != nil {
		t.Fatal(err)
	}
	return hw
}

// metricSum sums the series of the metric called name in reg that carry every
// label given as name, value pairs.
func metricSum(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					found = found || (lp.GetName() == labels[i] && lp.GetValue() == labels[i+1])
				}
				if !found {
					continue series
				}
			}
			switch {
			case m.GetCounter() != nil:
				sum += m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				sum += m.GetGauge().GetValue()
			}
		}
	}
	return sum
}

// TestCommitAfterWrite: one integration's bucket answers 500 while another's
// works. The working integration's objects land, the partitions carrying the
// failing integration's records never commit past its first record, a partition
// without them commits to its end; after the bucket heals everything lands and
// commits reach the end. In the restart variant the member stops while the bucket
// still fails and a new member takes over before it heals.
func TestCommitAfterWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel() // it mostly waits (windows, retries, restarts): overlap it with another
	tests := []struct {
		name    string
		restart bool
		seed    int64
	}{
		{name: "heal", seed: 11},
		{name: "restart while failing", restart: true, seed: 12},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const parts = 5
			good := integ("good", 1, "b-good", "ndjson")
			bad := integ("bad", 2, "b-bad", "json")
			ins := []config.Integration{good, bad}
			e := newEnv(t, parts, good.Bucket, bad.Bucket)
			cfg := e.config(t, ins...)
			e.s3.FailBucket(bad.Bucket, 500)

			// Partitions 0-3 carry all three tenants (3 has no integration);
			// partition 4 carries none of the failing integration's records.
			specs := spreadHits(3000, []int64{1, 2, 3}, parts-1, time.Date(2023, 6, 20, 6, 0, 0, 0, time.UTC), 10*time.Minute, 3, tt.seed)
			for i := range specs {
				if specs[i].client != 2 && i%7 == 0 {
					specs[i].partition = parts - 1
				}
			}
			hits := produceHitsAt(t, e, tt.seed, specs)
			offs := recordOffsets(t, e)
			holdAt := map[int]int64{} // partition -> first offset of the failing integration's first buffer
			for _, h := range hits {
				if h.client != bad.ClientID {
					continue
				}
				if o, ok := holdAt[h.partition]; !ok || offs[h.id] < o {
					holdAt[h.partition] = offs[h.id]
				}
			}
			if len(holdAt) != parts-1 {
				t.Fatalf("test bug: the failing integration has records in %d partitions, want %d", len(holdAt), parts-1)
			}
			hw := highWater(t, e)

			m := e.startMember(t, "a", cfg)
			waitFor(t, 30*time.Second, "the working integration's objects", func() bool { return allDelivered(t, e, hits, good) })
			assertHeld := func(d time.Duration) {
				t.Helper()
				for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
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
			}
			assertHeld(4 * time.Second)
			waitFor(t, 10*time.Second, "the partition without failing records committed to its end", func() bool {
				return committedOffsets(t, e, cfg.Kafka.Group)[parts-1] == hw[parts-1]
			})
			before := objectBytes(t, e, good.Bucket)

			if tt.restart {
				m.stop(t)
				assertHeld(time.Second)
				b := e.startMember(t, "b", cfg)
				// The new member replays from the held offsets and fails again.
				waitFor(t, 30*time.Second, "the new member's failed uploads", func() bool {
					return metricSum(t, b.reg, "hitship_upload_attempts_total", "integration", bad.Name, "result", "error") > 0
				})
				assertHeld(3 * time.Second)
			}

			e.s3.HealBucket(bad.Bucket)
			waitFor(t, 60*time.Second, "offsets committed to the end", func() bool { return e.committedToEnd(t, cfg.Kafka.Group) })
			checkExactlyOnce(t, e, hits, ins)
			checkUnchanged(t, before, objectBytes(t, e, good.Bucket))
		})
	}
}

// nowHits returns n specs for clients in turn over parts partitions with event
// times at the wall clock, most a little in the past (within grace) and every
// tenth 12 s back, so that with 10 s windows some are late.
func nowHits(n int, clients []int64, parts int, seed int64) []hitAt {
	now := time.Now().Unix()
	specs := make([]hitAt, 0, n)
	for i := 0; i < n; i++ {
		c := clients[i%len(clients)]
		x := uint64(i)*2654435761 + uint64(seed)
		back := int64(x % 2)
		if i%10 == 0 {
			back = 12
		}
		specs = append(specs, hitAt{client: c, partition: int(c+int64(i)+seed) % parts, ts: now - back})
	}
	return specs
}

// waitWindowPhase sleeps until the wall clock is between from and to into a
// window of size win.
func waitWindowPhase(win, from, to time.Duration) {
	for {
		into := time.Duration(time.Now().UnixNano()) % win
		if into >= from && into < to {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRebalance: two members share the partitions; one leaves mid-window, more
// hits arrive, a third joins, the rest arrive. Every hit lands exactly once per
// integration, no record is in two objects, and no object written before a
// rebalance is rewritten with other bytes by the replays that follow it.
func TestRebalance(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel() // it mostly waits (windows, retries, restarts): overlap it with another
	const parts = 6
	ins := []config.Integration{
		integ("one-json", 1, "b-one", "json"),
		integ("one-ndjson", 1, "b-two", "ndjson"),
		integ("two-ndjson", 2, "b-three", "ndjson"),
	}
	buckets := []string{"b-one", "b-two", "b-three"}
	clients := []int64{1, 2, 3}
	e := newEnv(t, parts, buckets...)
	cfg := e.config(t, ins...)
	cfg.Window.Size, cfg.Window.Grace, cfg.Window.IdleTimeout = 10*time.Second, time.Second, time.Second

	assigned := func(ms ...*member) bool {
		for _, m := range ms {
			if metricSum(t, m.reg, "hitship_kafka_assigned_partitions") == 0 {
				return false
			}
		}
		return true
	}
	consumed := func(ms ...*member) float64 {
		s := 0.0
		for _, m := range ms {
			s += metricSum(t, m.reg, "hitship_records_consumed_total")
		}
		return s
	}

	a := e.startMember(t, "a", cfg)
	b := e.startMember(t, "b", cfg)
	waitFor(t, 30*time.Second, "a and b to share the partitions", func() bool { return assigned(a, b) })

	// Phase 1 early in a window, so that b leaves in its middle.
	waitWindowPhase(cfg.Window.Size, 500*time.Millisecond, 3*time.Second)
	var hits []sent
	for i := range 3 {
		hits = append(hits, produceHitsAt(t, e, int64(100+i), nowHits(500, clients, parts, int64(100+i)))...)
		time.Sleep(300 * time.Millisecond)
	}
	waitFor(t, 30*time.Second, "phase 1 consumed", func() bool { return consumed(a, b) >= float64(len(hits)) })
	snap1 := objectBytes(t, e, buckets...)
	b.stop(t)

	// Phase 2 while a takes over b's partitions.
	for i := range 3 {
		hits = append(hits, produceHitsAt(t, e, int64(200+i), nowHits(500, clients, parts, int64(200+i)))...)
		time.Sleep(300 * time.Millisecond)
	}
	waitFor(t, 30*time.Second, "a to own every partition", func() bool {
		return metricSum(t, a.reg, "hitship_kafka_assigned_partitions") == parts
	})
	snap2 := objectBytes(t, e, buckets...)
	c := e.startMember(t, "c", cfg)
	hits = append(hits, produceHitsAt(t, e, 300, nowHits(500, clients, parts, 300))...)
	waitFor(t, 30*time.Second, "a and c to share the partitions", func() bool {
		return assigned(a, c) && metricSum(t, a.reg, "hitship_kafka_assigned_partitions") < parts
	})

	// Phase 3.
	snap3 := objectBytes(t, e, buckets...)
	for i := range 3 {
		hits = append(hits, produceHitsAt(t, e, int64(400+i), nowHits(500, clients, parts, int64(400+i)))...)
		time.Sleep(300 * time.Millisecond)
	}
	waitFor(t, 60*time.Second, "offsets committed to the end", func() bool { return e.committedToEnd(t, cfg.Kafka.Group) })
	checkExactlyOnce(t, e, hits, ins)
	final := objectBytes(t, e, buckets...)
	checkUnchanged(t, snap1, final)
	checkUnchanged(t, snap2, final)
	checkUnchanged(t, snap3, final)
}

// partitionsWithObjects returns the partitions named by the keys of objs.
func partitionsWithObjects(objs map[string][]byte) map[int]bool {
	out := map[int]bool{}
	for k := range objs {
		_, key, _ := strings.Cut(k, "/")
		if m := failKeyRE.FindStringSubmatch(key); m != nil {
			p, _ := strconv.Atoi(m[2])
			out[p] = true
		}
	}
	return out
}

// TestCrashReplay SIGKILLs the real binary after it uploaded objects and before
// its commit caught up, then starts a new process: every hit lands exactly once
// per integration, no record is in two objects, and every object written before
// the kill keeps its bytes (the replay writes the same keys with the same bytes).
func TestCrashReplay(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel() // it mostly waits (windows, retries, restarts): overlap it with another
	const parts = 4
	ins := []config.Integration{
		integ("one-json", 1, "b-one", "json"),
		integ("two-ndjson", 2, "b-two", "ndjson"),
	}
	buckets := []string{"b-one", "b-two"}
	clients := []int64{1, 2, 3}
	hitshipBinary(t) // build before any clock starts

	// Record-driven closes: the first process commits once (a snapshot with
	// delivered "ghost" buffers), more hits close more windows, and it is killed
	// right after their objects appear, before its next commit.
	t.Run("after a commit", func(t *testing.T) {
		e := newEnv(t, parts, buckets...)
		cfg := e.config(t, ins...)
		cfg.Kafka.CommitInterval = 3 * time.Second
		cfg.Window.IdleTimeout = 30 * time.Second // no idle close in the first process
		base := time.Date(2023, 6, 20, 6, 0, 0, 0, time.UTC)
		hits := produceHitsAt(t, e, 21, spreadHits(3000, clients, parts, base, 10*time.Minute, 3, 21))
		p := e.startProcess(t, cfg)
		waitFor(t, 30*time.Second, "a first commit in the middle of every partition", func() bool {
			c, hw := committedOffsets(t, e, cfg.Kafka.Group), highWater(t, e)
			for q := range parts {
				if off, ok := c[q]; !ok || off <= 0 || off >= hw[q] {
					return false
				}
			}
			return true
		})
		before := len(objectBytes(t, e, buckets...))
		// Windows 2-4, and every 20th hit late for window 0.
		specs := spreadHits(3000, clients, parts, base.Add(20*time.Minute), 10*time.Minute, 3, 22)
		for i := range specs {
			if i%20 == 0 {
				specs[i].ts = base.Unix() + int64(i%500)
			}
		}
		hits = append(hits, produceHitsAt(t, e, 22, specs)...)
		waitFor(t, 30*time.Second, "objects of the second batch", func() bool { return len(objectBytes(t, e, buckets...)) > before })
		p.kill()
		time.Sleep(200 * time.Millisecond) // let an upload the proxy already forwarded finish
		atKill := objectBytes(t, e, buckets...)
		if e.committedToEnd(t, cfg.Kafka.Group) {
			t.Fatal("test setup: the commit caught up before the kill")
		}

		cfg2 := *cfg
		cfg2.Kafka.CommitInterval, cfg2.Window.IdleTimeout = 200*time.Millisecond, time.Second
		e.startProcess(t, &cfg2)
		waitFor(t, 60*time.Second, "offsets committed to the end", func() bool { return e.committedToEnd(t, cfg.Kafka.Group) })
		checkExactlyOnce(t, e, hits, ins)
		checkUnchanged(t, atKill, objectBytes(t, e, buckets...))
	})

	// Idle close: a window of hits at the wall clock closes because the partitions
	// go quiet; the process is killed before any commit. Then hits late for that
	// window and hits of the next one arrive, and a new process replays from the
	// start: it must close where the idle close was recorded.
	t.Run("after an idle close", func(t *testing.T) {
		e := newEnv(t, parts, buckets...)
		cfg := e.config(t, ins...)
		cfg.Window.Size, cfg.Window.Grace, cfg.Window.IdleTimeout = 10*time.Second, time.Second, time.Second
		cfg.Kafka.CommitInterval = 30 * time.Second // no commit before the kill
		waitWindowPhase(cfg.Window.Size, time.Second, 4*time.Second)
		winA := time.Now().Truncate(cfg.Window.Size).Unix()
		specs := nowHits(1500, clients, parts, 31)
		for i := range specs {
			specs[i].ts = max(specs[i].ts, winA) // all in window A
		}
		hits := produceHitsAt(t, e, 31, specs)
		p := e.startProcess(t, cfg)
		waitFor(t, 30*time.Second, "idle-closed objects of every partition", func() bool {
			return len(partitionsWithObjects(objectBytes(t, e, buckets...))) == parts
		})
		p.kill()
		time.Sleep(200 * time.Millisecond)
		atKill := objectBytes(t, e, buckets...)
		if c := committedOffsets(t, e, cfg.Kafka.Group); len(c) > 0 {
			t.Fatalf("test setup: the first process committed %v before the kill", c)
		}

		// Late hits of window A first in every partition, then hits of the next window.
		late := nowHits(500, clients, parts, 32)
		for i := range late {
			late[i].ts = winA + int64(i%9)
		}
		specs = append(late, nowHits(1000, clients, parts, 33)...)
		hits = append(hits, produceHitsAt(t, e, 32, specs)...)
		cfg2 := *cfg
		cfg2.Kafka.CommitInterval = 200 * time.Millisecond
		e.startProcess(t, &cfg2)
		waitFor(t, 60*time.Second, "offsets committed to the end", func() bool { return e.committedToEnd(t, cfg.Kafka.Group) })
		checkExactlyOnce(t, e, hits, ins)
		checkUnchanged(t, atKill, objectBytes(t, e, buckets...))
	})
}
