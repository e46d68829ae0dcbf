package service_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"hitship/config"
	"hitship/internal/testenv"
	"hitship/service"
	"hitship/sink"
	"hitship/staging"
)

// Staged delivery (DESIGN §3, §5): partitions stage segments in the operator's
// bucket, and one object per integration and window is assembled from every
// partition's segments.

var stagedKeyRE = regexp.MustCompile(`^(t\d+)/wallarm_hits_(\d+)(_late_(\d+))?\.(json|jsonl)(\.gz)?$`)

// stagedConfig returns cfg with staged delivery on, the staging bucket on the
// S3 server itself (the operator's own bucket, not behind the PutObject-only
// proxy).
func stagedConfig(t *testing.T, e *env, cfg *config.Config) *config.Config {
	t.Helper()
	c := *cfg
	c.Parking = config.Parking{Bucket: parkBucket, Region: testenv.S3Region, Endpoint: e.s3.URL(), PathStyle: true, Prefix: "hitship/"}
	c.Parking.Credentials.AccessKeyID, c.Parking.Credentials.SecretAccessKeyEnv = "TESTACCESSKEY0002", testSecretEnv
	staged := true
	c.Delivery.Staged = &staged
	if ps := c.Validate(config.WithKeyTemplate(func(s string) error { _, err := sink.ParseKeyTemplate(s); return err }),
		config.WithStagedKeyTemplate(func(s string) error { _, err := sink.ParseStagedKeyTemplate(s); return err })); len(ps) > 0 {
		t.Fatal(config.AsError(ps))
	}
	return &c
}

// stagedObject is one customer object of the staged test.
type stagedObject struct {
	integration string
	window      int64
	late        int
	key         string
	records     [][]byte
}

// TestStagedOneObjectPerWindow: 12 partitions, 50 tenants, producers not keyed
// by tenant (every tenant's hits in every partition), two replicas: every
// integration gets exactly one object per window it has hits in (plus late
// objects for hits read after their window was complete), every hit exactly
// once, byte for byte, records in (partition, offset) order, keys as the
// template says; the staging bucket keeps intents and manifests and no
// segment; offsets are committed to the end.
func TestStagedOneObjectPerWindow(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel()
	const parts = 12
	e, cfg, buckets, ins, clients := stagedWorld(t, parts, 50)
	base := time.Date(2023, 6, 20, 6, 0, 0, 0, time.UTC)
	hits := produceHitsAt(t, e, 31, spreadHits(3000, clients, parts, base, 10*time.Minute, 3, 31))
	e.startMember(t, "a", cfg)
	e.startMember(t, "b", cfg)
	// The three windows are complete once every partition's watermark passed
	// them (the feed's last hits, then the idle close).
	waitFor(t, 90*time.Second, "every hit in the customers' buckets", func() bool {
		n := len(stagedDelivered(t, e, buckets, ins))
		if os.Getenv("STAGED_DEBUG") != "" {
			t.Logf("%d of %d delivered; staging: %d segments, %d objects; marks %v", n, len(hits),
				len(stagingKeys(t, e, "hitship/staging/seg/")), len(stagingKeys(t, e, "hitship/staging/obj/")), e.redis.Client().HGetAll(context.Background(), "hitship:{hitship-test:hits}:staged").Val())
		}
		return n == len(hits)
	})
	// Late hits: window 0 again, read after it was delivered, in the
	// partitions that had no record yet (spreadHits fills the odd ones). The
	// others passed the wall clock's window: their late buffers would close at
	// its end, up to 10 minutes from now.
	var specs []hitAt
	for i := range 120 {
		specs = append(specs, hitAt{client: clients[i%10], partition: 2 * (i % (parts / 2)), ts: base.Unix() + int64(i)})
	}
	late := produceHitsAt(t, e, 32, specs)
	hits = append(hits, late...)
	waitFor(t, 90*time.Second, "the late hits too", func() bool {
		return len(stagedDelivered(t, e, buckets, ins)) == len(hits)
	})
	waitFor(t, 30*time.Second, "offsets committed to the end", func() bool { return e.committedToEnd(t, cfg.Kafka.Group) })
	waitFor(t, 30*time.Second, "no segment left in the staging bucket", func() bool {
		return len(stagingKeys(t, e, "hitship/staging/seg/")) == 0
	})

	objs, lates := verifyStaged(t, e, buckets, ins, hits, base, 3)
	if lates == 0 {
		t.Error("no late object, although hits of a delivered window came after it")
	}
	t.Logf("%d hits in %d objects (%d late) for %d integrations", len(hits), len(objs), lates, len(ins))
	if n := len(stagingKeys(t, e, "hitship/staging/obj/")); n < 2*len(objs) {
		t.Errorf("staging bucket holds %d intents and manifests for %d objects", n, len(objs))
	}
	assertPutObjectOnly(t, e.proxy)
}

// verifyStaged checks the customers' buckets after a staged run: every hit
// exactly once, byte for byte, in its tenant's integration, records of an
// object in (partition, offset) order, one main object per integration and
// each of the windows from base, and otherwise only late objects. It returns
// the objects and how many are late.
func verifyStaged(t *testing.T, e *env, buckets []string, ins []config.Integration, hits []sent, base time.Time, windows int) ([]stagedObject, int) {
	t.Helper()
	objs := stagedObjects(t, e, buckets, ins)
	offs := recordOffsets(t, e)
	byID := map[string]sent{}
	for _, h := range hits {
		byID[h.id] = h
	}
	seen := map[string]string{}
	mains := map[string]int{} // integration/window -> main objects
	lates := 0
	for _, o := range objs {
		if o.late == 0 {
			mains[o.integration+"/"+strconv.FormatInt(o.window, 10)]++
		} else {
			lates++
		}
		prevPart, prevOff := -1, int64(-1)
		for _, r := range o.records {
			m := failIDRE.FindSubmatch(r)
			if m == nil {
				t.Fatalf("%s: record without request_id: %s", o.key, r)
			}
			id := string(m[1])
			h, ok := byID[id]
			if !ok {
				t.Fatalf("%s: unknown record %s", o.key, id)
			}
			if string(r) != string(h.value) {
				t.Errorf("%s: record %s changed:\n got %s\nwant %s", o.key, id, r, h.value)
			}
			if "t"+strconv.FormatInt(h.client, 10) != o.integration {
				t.Errorf("%s: record %s of client %d in integration %s", o.key, id, h.client, o.integration)
			}
			if k, dup := seen[id]; dup {
				t.Errorf("record %s in %s and %s", id, k, o.key)
			}
			seen[id] = o.key
			if off := offs[id]; h.partition < prevPart || h.partition == prevPart && off <= prevOff {
				t.Errorf("%s: record %s (partition %d offset %d) after partition %d offset %d: not in canonical order", o.key, id, h.partition, off, prevPart, prevOff)
			} else {
				prevPart, prevOff = h.partition, off
			}
		}
	}
	if len(seen) != len(hits) {
		t.Errorf("%d of %d hits delivered", len(seen), len(hits))
	}
	// One main object per (integration, window) with hits: each tenant has
	// hits in each of the three windows.
	for _, in := range ins {
		for w := range int64(windows) {
			ws := base.Add(time.Duration(w) * 10 * time.Minute).Unix()
			if n := mains[in.Name+"/"+strconv.FormatInt(ws, 10)]; n != 1 {
				t.Errorf("%s window %d: %d main objects, want 1", in.Name, ws, n)
			}
		}
	}
	if len(objs) != len(ins)*windows+lates {
		t.Errorf("%d objects for %d integrations × %d windows + %d late", len(objs), len(ins), windows, lates)
	}
	return objs, lates
}

// stagedObjects reads the customer objects of the staged test.
func stagedObjects(t *testing.T, e *env, buckets []string, ins []config.Integration) []stagedObject {
	t.Helper()
	byName := map[string]config.Integration{}
	for _, in := range ins {
		byName[in.Name] = in
	}
	var out []stagedObject
	for _, b := range buckets {
		objs, err := e.s3.Objects(context.Background(), b)
		if err != nil {
			t.Fatal(err)
		}
		for k, data := range objs {
			if strings.HasSuffix(k, staging.ManifestSuffix) {
				continue // checkManifests
			}
			m := stagedKeyRE.FindStringSubmatch(k)
			if m == nil {
				t.Fatalf("key %s/%s does not follow the staged template", b, k)
			}
			in, ok := byName[m[1]]
			if !ok || in.Bucket != b {
				t.Fatalf("key %s/%s: no integration %s writes to %s", b, k, m[1], b)
			}
			want := map[string]string{"json": "json", "ndjson": "jsonl"}[in.Format]
			if m[5] != want || (m[6] != "") != (in.Compression == "gzip") {
				t.Fatalf("key %s/%s: extension for format %s compression %q", b, k, in.Format, in.Compression)
			}
			if m[6] != "" {
				data = gunzip(t, data)
				k = strings.TrimSuffix(k, ".gz")
			}
			ws, _ := strconv.ParseInt(m[2], 10, 64)
			late, _ := strconv.Atoi(m[4])
			out = append(out, stagedObject{integration: m[1], window: ws, late: late, key: b + "/" + k, records: splitRecords(t, k, data)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

// stagedDelivered returns the request ids in the customers' buckets.
func stagedDelivered(t *testing.T, e *env, buckets []string, ins []config.Integration) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	for _, o := range stagedObjects(t, e, buckets, ins) {
		for _, r := range o.records {
			if m := failIDRE.FindSubmatch(r); m != nil {
				ids[string(m[1])] = true
			}
		}
	}
	return ids
}

func gunzip(t *testing.T, data []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// stagingKeys lists the staging bucket under prefix.
func stagingKeys(t *testing.T, e *env, prefix string) []string {
	t.Helper()
	keys, err := e.s3.Keys(parkBucket, prefix)
	if err != nil {
		t.Fatal(err)
	}
	return keys
}

// stagedWorld is a staged test world of tenants integrations t1…tN (JSON and
// NDJSON alternating, every seventh gzipped) over five customer buckets.
func stagedWorld(t *testing.T, parts, tenants int) (*env, *config.Config, []string, []config.Integration, []int64) {
	t.Helper()
	buckets := []string{"s-0", "s-1", "s-2", "s-3", "s-4"}
	var ins []config.Integration
	var clients []int64
	for c := int64(1); c <= int64(tenants); c++ {
		format := "json"
		if c%2 == 0 {
			format = "ndjson"
		}
		in := integ(fmt.Sprintf("t%d", c), c, buckets[c%5], format)
		in.Prefix = fmt.Sprintf("t%d/", c)
		if c%7 == 0 {
			in.Compression = "gzip"
		}
		ins = append(ins, in)
		clients = append(clients, c)
	}
	e := newEnv(t, parts, append(buckets, parkBucket)...)
	return e, stagedConfig(t, e, e.config(t, ins...)), buckets, ins, clients
}

// TestStagedRedisWipedAndReplayed: everything delivered, then Redis loses all
// its data and the group's offsets go back half way (a Kafka restore, an
// operator's reset): the replicas read half the topic again without any window
// state, building other buffers than the first run, and the staging bucket's intents keep every hit exactly once
// in the customers' buckets; hits read afterwards for a delivered window make
// late objects.
func TestStagedRedisWipedAndReplayed(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel()
	const parts = 6
	e, cfg, buckets, ins, clients := stagedWorld(t, parts, 10)
	base := time.Date(2023, 6, 20, 6, 0, 0, 0, time.UTC)
	hits := produceHitsAt(t, e, 41, spreadHits(1500, clients, parts, base, 10*time.Minute, 3, 41))
	a, b := e.startMember(t, "a", cfg), e.startMember(t, "b", cfg)
	waitFor(t, 90*time.Second, "every hit delivered", func() bool { return len(stagedDelivered(t, e, buckets, ins)) == len(hits) })
	waitFor(t, 30*time.Second, "offsets committed to the end", func() bool { return e.committedToEnd(t, cfg.Kafka.Group) })
	a.stop(t)
	b.stop(t)
	if err := e.redis.Client().FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	// Half way back: a replay from 0 with no state would rebuild the first
	// run's segments under the same keys; from the middle it builds others.
	for p, hw := range highWater(t, e) {
		if err := e.kafka.Commit(context.Background(), cfg.Kafka.Group, e.topic, p, hw/2); err != nil {
			t.Fatal(err)
		}
	}
	a, b = e.startMember(t, "a2", cfg), e.startMember(t, "b2", cfg)
	var specs []hitAt
	for i := range 60 {
		specs = append(specs, hitAt{client: clients[i%10], partition: i % parts, ts: base.Unix() + int64(i)})
	}
	hits = append(hits, produceHitsAt(t, e, 42, specs)...)
	waitFor(t, 90*time.Second, "the new hits delivered", func() bool { return len(stagedDelivered(t, e, buckets, ins)) == len(hits) })
	waitFor(t, 30*time.Second, "offsets committed to the end", func() bool { return e.committedToEnd(t, cfg.Kafka.Group) })
	waitFor(t, 30*time.Second, "no segment left in the staging bucket", func() bool {
		return len(stagingKeys(t, e, "hitship/staging/seg/")) == 0
	})
	_, lates := verifyStaged(t, e, buckets, ins, hits, base, 3)
	dups := metricSum(t, a.reg, "hitship_objects_assembled_total", "result", "duplicate") +
		metricSum(t, b.reg, "hitship_objects_assembled_total", "result", "duplicate")
	if dups == 0 {
		t.Error("the replay staged no segment of delivered records only: the test did not exercise deduplication")
	}
	t.Logf("%d late objects; %v segment groups held only delivered records", lates, dups)
}

// TestStagedBrokenBucketHoldsNothing: one customer's bucket fails. The
// others' objects arrive on time, every partition's offsets are committed to
// the end while it fails (its segments are staged: a customer's bucket never
// holds an offset), its objects are parked after cycle 1, and delivered once
// it heals.
func TestStagedBrokenBucketHoldsNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel()
	const parts = 4
	e, cfg, buckets, ins, clients := stagedWorld(t, parts, 5)
	// Manifests for the broken one (written by the retry worker's completion)
	// and one healthy one (written after the inline delivery).
	ins[0].Manifest, ins[1].Manifest = true, true
	cfg.Integrations = ins
	broken := ins[0] // t1, bucket s-1, alone there
	e.s3.FailBucket(broken.Bucket, 503)
	base := time.Date(2023, 6, 20, 6, 0, 0, 0, time.UTC)
	hits := produceHitsAt(t, e, 51, spreadHits(800, clients, parts, base, 10*time.Minute, 2, 51))
	start := time.Now()
	e.startMember(t, "a", cfg)
	others := 0
	for _, h := range hits {
		if h.client != broken.ClientID {
			others++
		}
	}
	waitFor(t, 60*time.Second, "the other integrations' hits", func() bool { return len(stagedDelivered(t, e, buckets, ins)) == others })
	waitFor(t, 20*time.Second, "offsets committed to the end while a bucket fails", func() bool { return e.committedToEnd(t, cfg.Kafka.Group) })
	if d := time.Since(start); d > 25*time.Second {
		t.Errorf("offsets reached the end after %s: the failing bucket held them through cycle 1", d)
	}
	waitFor(t, 60*time.Second, "the broken integration's objects parked", func() bool {
		return len(stagingKeys(t, e, "hitship/parked/"+broken.Name+"/")) > 0
	})
	e.s3.HealBucket(broken.Bucket)
	waitFor(t, 60*time.Second, "every hit delivered after the bucket healed", func() bool { return len(stagedDelivered(t, e, buckets, ins)) == len(hits) })
	waitFor(t, 30*time.Second, "nothing parked any more", func() bool {
		return len(stagingKeys(t, e, "hitship/parked/")) == 0
	})
	verifyStaged(t, e, buckets, ins, hits, base, 2)
	checkManifests(t, e, buckets, ins)
	// The staging bucket's manifests say delivered, the parked ones too.
	st, err := e.s3.Objects(context.Background(), parkBucket)
	if err != nil {
		t.Fatal(err)
	}
	parkedOnes := 0
	for k, data := range st {
		if !strings.HasSuffix(k, ".manifest") {
			continue
		}
		var m staging.Manifest
		if err := json.Unmarshal(data, &m); err != nil || m.State != "delivered" {
			t.Errorf("%s: %s (%v)", k, data, err)
		}
		if strings.HasPrefix(m.Key, broken.Prefix) {
			parkedOnes++
		}
	}
	if parkedOnes == 0 {
		t.Error("no staging manifest of the broken integration's objects")
	}
	assertPutObjectOnly(t, e.proxy)
}

// TestStagedStagingOutageHoldsOffsets: while the staging bucket fails,
// nothing is committed past the records it should hold and nothing is lost;
// once it is back, every hit arrives once.
func TestStagedStagingOutageHoldsOffsets(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel()
	const parts = 3
	e, cfg, buckets, ins, clients := stagedWorld(t, parts, 4)
	e.s3.FailBucket(parkBucket, 503)
	base := time.Date(2023, 6, 20, 6, 0, 0, 0, time.UTC)
	hits := produceHitsAt(t, e, 61, spreadHits(400, clients, parts, base, 10*time.Minute, 2, 61))
	e.startMember(t, "a", cfg)
	time.Sleep(8 * time.Second) // windows close, staging fails, idle closes pass
	for p, off := range committedOffsets(t, e, cfg.Kafka.Group) {
		if off > 0 {
			t.Errorf("partition %d committed to %d while its segments could not be staged", p, off)
		}
	}
	if n := len(stagedDelivered(t, e, buckets, ins)); n != 0 {
		t.Errorf("%d hits delivered without staging", n)
	}
	e.s3.HealBucket(parkBucket)
	waitFor(t, 90*time.Second, "every hit delivered after the staging bucket came back", func() bool {
		return len(stagedDelivered(t, e, buckets, ins)) == len(hits)
	})
	waitFor(t, 30*time.Second, "offsets committed to the end", func() bool { return e.committedToEnd(t, cfg.Kafka.Group) })
	verifyStaged(t, e, buckets, ins, hits, base, 2)
}

// checkManifests checks that every object of the integrations with manifest:
// true has its manifest, naming it with its record count and SHA-256, and
// that no other integration has any.
func checkManifests(t *testing.T, e *env, buckets []string, ins []config.Integration) {
	t.Helper()
	want := map[string]bool{}
	for _, in := range ins {
		want[in.Name] = in.Manifest
	}
	for _, b := range buckets {
		objs, err := e.s3.Objects(context.Background(), b)
		if err != nil {
			t.Fatal(err)
		}
		for k, data := range objs {
			if strings.HasSuffix(k, staging.ManifestSuffix) {
				obj, ok := objs[strings.TrimSuffix(k, staging.ManifestSuffix)]
				var m staging.CustomerManifest
				if err := json.Unmarshal(data, &m); err != nil || !ok {
					t.Errorf("%s/%s: manifest %v without its object (%v)", b, k, err, ok)
					continue
				}
				sum := sha256.Sum256(obj)
				if m.SHA256 != hex.EncodeToString(sum[:]) || m.Size != int64(len(obj)) || m.Object != strings.TrimSuffix(k, staging.ManifestSuffix) || m.Records == 0 {
					t.Errorf("%s/%s: manifest %+v does not describe its object (%d bytes)", b, k, m, len(obj))
				}
				continue
			}
			name, _, _ := strings.Cut(k, "/")
			if _, ok := objs[k+staging.ManifestSuffix]; ok != want[name] {
				t.Errorf("%s/%s: manifest present %v, want %v", b, k, ok, want[name])
			}
		}
	}
}

// TestStagedForget: what the staging bucket keeps for an integration removed
// from the config (segments not delivered, intents and manifests) is counted
// by `hitship forget`, kept without --purge (they go out if the integration
// comes back for its client) and deleted with it; another integration's stay.
func TestStagedForget(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	e, cfg, _, ins, _ := stagedWorld(t, 1, 2)
	ctx := context.Background()
	cfg.Integrations = ins[:1] // t2 removed
	st, err := service.NewParkingStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	l := staging.Layout{Prefix: cfg.Parking.Prefix}
	put := func(k string) {
		if err := st.Put(ctx, k, sink.BytesBody("x"), sink.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for _, target := range []string{"t2:2:00000000000000aa", "t2:2:00000000000000bb", "t1:1:00000000000000cc", "t22:22:00000000000000dd"} {
		put(l.SegmentKey(staging.SegmentID{CloseAt: 1_200_000, Target: target, Window: 600_000, Partition: 0, FirstOffset: 5, Digest: 1}))
		put(l.IntentKey(staging.Namespace(target), 600_000, "main"))
	}
	put(l.ManifestKey(staging.Namespace("t2:2:00000000000000aa"), 600_000, "main"))
	f, closeF, err := service.OpenForgetter(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer closeF()
	r, err := f.Remains(ctx, "t2")
	if err != nil {
		t.Fatal(err)
	}
	if r.StagedSegments != 2 || r.StagedRecords != 2 {
		t.Fatalf("remains %+v, want 2 staged segments and t2's intent and manifest", r)
	}
	out, err := f.Forget(ctx, "t2", false, "test")
	if err != nil || out.Kept.StagedSegments != 2 || len(stagingKeys(t, e, "hitship/staging/")) != 8 {
		t.Fatalf("forget without purge: %+v, %v; staging holds %v", out, err, stagingKeys(t, e, "hitship/staging/"))
	}
	out, err = f.Forget(ctx, "t2", true, "test")
	if err != nil || out.Removed.StagedSegments != 2 || out.Removed.StagedRecords != 2 {
		t.Fatalf("forget --purge: %+v, %v", out, err)
	}
	if left := stagingKeys(t, e, "hitship/staging/"); len(left) != 4 {
		t.Errorf("staging after purge: %v, want t1's and t22's four objects", left)
	}
}
