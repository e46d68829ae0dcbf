package staging_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"hitship/delivery"
	"hitship/delivery/parking"
	"hitship/integrations"
	"hitship/internal/testenv"
	"hitship/metrics"
	"hitship/sink"
	s3sink "hitship/sink/s3"
	"hitship/staging"
)

const (
	win      = int64(600_000) // 10 minutes
	w0       = int64(1687240800000)
	stageBkt = "stage"
	custBkt  = "cust"
)

// world is a staging bucket and a customer bucket on a real S3 server
// (gofakes3), a real redis-server, and the assembler's collaborators.
type world struct {
	t      *testing.T
	s3     *testenv.S3
	rdb    *redis.Client
	store  *parking.Store
	layout staging.Layout
	coord  *staging.Coord
	routes *integrations.Routes
	spool  *sink.Spool
	parts  int
}

func newWorld(t *testing.T, parts int) *world { return newWorldWrap(t, parts, nil) }

// newWorldWrap is newWorld with the S3 server's handler wrapped by wrap.
func newWorldWrap(t *testing.T, parts int, wrap func(http.Handler) http.Handler) *world {
	t.Helper()
	w := &world{t: t, parts: parts, layout: staging.Layout{Prefix: "hitship/"}}
	w.s3 = testenv.MustS3(t, testenv.S3Options{Buckets: []string{stageBkt, custBkt}, Wrap: wrap})
	r := testenv.MustRedis(t, testenv.RedisOptions{})
	w.rdb = r.Client()
	creds := credentials.NewStaticCredentialsProvider(testenv.S3AccessKey, testenv.S3SecretKey, "")
	var err error
	if w.store, err = parking.New(parking.Config{Bucket: stageBkt, Region: testenv.S3Region, Endpoint: w.s3.URL(), PathStyle: true,
		Prefix: "hitship/", Credentials: creds}); err != nil {
		t.Fatal(err)
	}
	w.coord = staging.NewCoord(w.rdb, "t:", "g", "hits")
	if w.spool, err = sink.NewSpool(sink.SpoolConfig{Dir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.spool.Close() })
	w.routes = &integrations.Routes{}
	w.routes.Set(nil, nil)
	return w
}

// target is a target writing to the customer bucket under prefix name/.
func (w *world) target(id, name string, client int64, format sink.Format) *integrations.Target {
	w.t.Helper()
	st, err := s3sink.NewS3Store(s3sink.S3Config{Bucket: custBkt, Region: testenv.S3Region, Endpoint: w.s3.URL(), PathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(testenv.S3AccessKey, testenv.S3SecretKey, "")})
	if err != nil {
		w.t.Fatal(err)
	}
	keys, err := sink.ParseStagedKeyTemplate(sink.DefaultStagedKeyTemplate)
	if err != nil {
		w.t.Fatal(err)
	}
	return &integrations.Target{ID: id, Name: name, ClientID: client, Prefix: name + "/", Format: format, Keys: keys, Store: st, IfNoneMatch: true}
}

func (w *world) configure(ts ...*integrations.Target) {
	var rts []integrations.RouteTarget
	for _, t := range ts {
		rts = append(rts, integrations.RouteTarget{Target: t, Enabled: true})
	}
	w.routes.Set(rts, func(string) bool { return false })
}

// assembler is one replica's delivery half.
func (w *world) assembler(log *slog.Logger) *staging.Assembler {
	w.t.Helper()
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	m := metrics.New(prometheus.NewRegistry())
	del, err := delivery.NewInline(delivery.Config{RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond, UploadTimeout: 5 * time.Second},
		delivery.Deps{Logger: log, Metrics: m})
	if err != nil {
		w.t.Fatal(err)
	}
	a, err := staging.NewAssembler(staging.AssemblerConfig{Topic: "hits", Window: 10 * time.Minute},
		staging.AssemblerDeps{Store: w.store, Layout: w.layout, Coord: w.coord, Targets: w.routes,
			Partitions: func(context.Context) (int, error) { return w.parts, nil }, Spool: w.spool, Deliver: del, Logger: log, Metrics: m})
	if err != nil {
		w.t.Fatal(err)
	}
	return a
}

// rec is the record at (p, off).
func rec(p int, off int64) string { return fmt.Sprintf(`{"request_id":"p%d-o%d"}`, p, off) }

// segment stages the records of partition p at offs as one segment.
func (w *world) segment(t *integrations.Target, window, closeAt int64, p int, digest uint64, offs ...int64) string {
	w.t.Helper()
	var b strings.Builder
	for _, o := range offs {
		fmt.Fprintf(&b, "%d %s\n", o, rec(p, o))
	}
	key := w.layout.SegmentKey(staging.SegmentID{CloseAt: closeAt, Target: t.ID, Window: window, Partition: p, FirstOffset: offs[0], Digest: digest})
	if err := w.store.Put(context.Background(), key, sink.BytesBody(b.String()), sink.PutOptions{}); err != nil {
		w.t.Fatal(err)
	}
	return key
}

// passAll publishes mark m for every partition.
func (w *world) passAll(m int64) {
	w.t.Helper()
	marks := map[int]int64{}
	for p := range w.parts {
		marks[p] = m
	}
	if err := w.coord.Publish(context.Background(), marks); err != nil {
		w.t.Fatal(err)
	}
}

// dieAfterIntent makes the customer's bucket fail, lets a replica's assembly
// write its intent and fail a few attempts, then kills the replica (its
// context ends) before it delivers.
func (w *world) dieAfterIntent() {
	w.t.Helper()
	w.s3.FailBucket(custBkt, 503)
	ctx, cancel := context.WithCancel(context.Background())
	first := w.assembler(nil)
	if err := first.Tick(ctx); err != nil {
		w.t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(w.objects(stageBkt, "hitship/staging/obj/")) == 0 {
		if time.Now().After(deadline) {
			w.t.Fatal("no intent written")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // a few failed attempts
	cancel()
	first.Wait()
}

func (w *world) tick(a *staging.Assembler) {
	w.t.Helper()
	if err := a.Tick(context.Background()); err != nil {
		w.t.Fatal(err)
	}
	a.Wait()
}

func (w *world) objects(bucket, prefix string) map[string]string {
	w.t.Helper()
	objs, err := w.s3.Objects(context.Background(), bucket)
	if err != nil {
		w.t.Fatal(err)
	}
	out := map[string]string{}
	for k, v := range objs {
		if strings.HasPrefix(k, prefix) {
			out[k] = string(v)
		}
	}
	return out
}

// ndjson is the NDJSON object of the records (p, off) in the order given.
func ndjson(ids ...[2]int64) string {
	var b strings.Builder
	for _, id := range ids {
		b.WriteString(rec(int(id[0]), id[1]) + "\n")
	}
	return b.String()
}

// TestAssembleOneObjectInCanonicalOrder: three partitions' segments, one of
// them overlapping another of its partition (a replay under another digest),
// make one object: records by partition, then offset, each once; the intent
// and the manifest stay, the segments go.
func TestAssembleOneObjectInCanonicalOrder(t *testing.T) {
	w := newWorld(t, 3)
	a1 := w.target("a:1:aaaa", "a", 1, sink.FormatNDJSON)
	w.configure(a1)
	end := w0 + win
	w.segment(a1, w0, end, 2, 1, 5, 9)
	w.segment(a1, w0, end, 0, 2, 3, 4, 10)
	w.segment(a1, w0, end, 1, 3, 7, 8)
	w.segment(a1, w0, end, 1, 4, 8, 11) // overlaps: 8 twice
	w.passAll(w0 + win - 1)
	a := w.assembler(nil)
	w.tick(a)
	if objs := w.objects(custBkt, ""); len(objs) != 0 {
		t.Fatalf("assembled before every partition passed the window: %v", objs)
	}
	// Partitions 0 and 1 pass the window end; 2 has no mark (Redis lost it).
	w.rdb.HDel(context.Background(), "t:{g:hits}:staged", "2")
	if err := w.coord.Publish(context.Background(), map[int]int64{0: end, 1: end}); err != nil {
		t.Fatal(err)
	}
	w.tick(a)
	if objs := w.objects(custBkt, ""); len(objs) != 0 {
		t.Fatalf("assembled while partition 2 had no mark: %v", objs)
	}
	w.passAll(end)
	w.tick(a)
	objs := w.objects(custBkt, "")
	want := ndjson([2]int64{0, 3}, [2]int64{0, 4}, [2]int64{0, 10}, [2]int64{1, 7}, [2]int64{1, 8}, [2]int64{1, 11}, [2]int64{2, 5}, [2]int64{2, 9})
	if len(objs) != 1 || objs["a/wallarm_hits_1687240800.jsonl"] != want {
		t.Fatalf("objects %v, want one a/wallarm_hits_1687240800.jsonl holding\n%s", objs, want)
	}
	st := w.objects(stageBkt, "")
	if n := len(w.objects(stageBkt, "hitship/staging/seg/")); n != 0 {
		t.Errorf("%d segments left", n)
	}
	var m staging.Manifest
	if err := json.Unmarshal([]byte(st[w.layout.ManifestKey(staging.Namespace(a1.ID), w0, "main")]), &m); err != nil {
		t.Fatalf("manifest: %v (staging holds %v)", err, keysOf(st))
	}
	if m.State != "delivered" || m.Records != 8 || m.Key != "a/wallarm_hits_1687240800.jsonl" || len(m.Partitions) != 3 ||
		m.Partitions[1].First != 7 || m.Partitions[1].Last != 11 || m.Partitions[1].Count != 3 {
		t.Errorf("manifest %+v", m)
	}
	if _, ok := st[w.layout.IntentKey(staging.Namespace(a1.ID), w0, "main")]; !ok {
		t.Errorf("no intent kept: %v", keysOf(st))
	}
}

// slowSegments answers each GET of a segment after delay, and counts the
// most such GETs in flight at once.
type slowSegments struct {
	delay         time.Duration
	mu            sync.Mutex
	inFlight, max int
	fail          map[string]int // key suffix -> status, answered at once
}

func (s *slowSegments) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/staging/seg/") || r.URL.Query().Has("list-type") {
			next.ServeHTTP(rw, r)
			return
		}
		s.mu.Lock()
		for suffix, status := range s.fail {
			if strings.HasSuffix(r.URL.Path, suffix) {
				s.mu.Unlock()
				http.Error(rw, "injected", status)
				return
			}
		}
		s.inFlight++
		s.max = max(s.max, s.inFlight)
		s.mu.Unlock()
		time.Sleep(s.delay)
		s.mu.Lock()
		s.inFlight--
		s.mu.Unlock()
		next.ServeHTTP(rw, r)
	})
}

// TestSegmentsOpenedAhead: a window's segments over many partitions are not
// opened one after the other (each GET waits a round trip for its first
// byte, during which a Parquet build holds one of its few slots): they are
// opened together, ahead of their merge, and the object is the same.
func TestSegmentsOpenedAhead(t *testing.T) {
	slow := &slowSegments{delay: 150 * time.Millisecond}
	w := newWorldWrap(t, 6, slow.wrap)
	a1 := w.target("a:1:aaaa", "a", 1, sink.FormatNDJSON)
	w.configure(a1)
	end := w0 + win
	var want [][2]int64
	for p := range 6 {
		w.segment(a1, w0, end, p, uint64(p), 10, 11)
		want = append(want, [2]int64{int64(p), 10}, [2]int64{int64(p), 11})
		if p == 3 {
			w.segment(a1, w0, end, p, 99, 12)
			want = append(want, [2]int64{int64(p), 12})
		}
	}
	w.passAll(end)
	w.tick(w.assembler(nil))
	if objs := w.objects(custBkt, ""); len(objs) != 1 || objs["a/wallarm_hits_1687240800.jsonl"] != ndjson(want...) {
		t.Fatalf("objects %v, want one holding\n%s", objs, ndjson(want...))
	}
	if slow.max < 2 {
		t.Errorf("at most %d segment GET in flight at once: the segments were opened one after the other", slow.max)
	}
}

// TestSegmentOpenFails: a segment that cannot be read fails the assembly
// (no object, the segments stay), whatever partition it is in, and the next
// tick assembles the window once it can be read.
func TestSegmentOpenFails(t *testing.T) {
	slow := &slowSegments{delay: 10 * time.Millisecond, fail: map[string]int{}}
	w := newWorldWrap(t, 4, slow.wrap)
	a1 := w.target("a:1:aaaa", "a", 1, sink.FormatNDJSON)
	w.configure(a1)
	end := w0 + win
	var want [][2]int64
	var bad string
	for p := range 4 {
		k := w.segment(a1, w0, end, p, uint64(p), 10)
		want = append(want, [2]int64{int64(p), 10})
		if p == 2 {
			bad = k[strings.LastIndexByte(k, '/'):]
		}
	}
	slow.mu.Lock()
	slow.fail[bad] = http.StatusInternalServerError
	slow.mu.Unlock()
	w.passAll(end)
	a := w.assembler(nil)
	w.tick(a)
	if objs := w.objects(custBkt, ""); len(objs) != 0 {
		t.Fatalf("an object with a segment unread: %v", objs)
	}
	if n := len(w.objects(stageBkt, "hitship/staging/seg/")); n != 4 {
		t.Fatalf("%d segments left, want 4", n)
	}
	slow.mu.Lock()
	clear(slow.fail)
	slow.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for len(w.objects(custBkt, "")) == 0 && time.Now().Before(deadline) {
		w.tick(a)
		time.Sleep(50 * time.Millisecond)
	}
	if objs := w.objects(custBkt, ""); len(objs) != 1 || objs["a/wallarm_hits_1687240800.jsonl"] != ndjson(want...) {
		t.Fatalf("objects %v, want one holding\n%s", objs, ndjson(want...))
	}
}

// TestReplayAfterDeliveryIsWrittenOnce: segments staged again after their
// window was delivered (a replay after Redis lost the window state, a
// zombie) are deleted when they hold only delivered records, and their new
// records make a late object of their own.
func TestReplayAfterDeliveryIsWrittenOnce(t *testing.T) {
	w := newWorld(t, 2)
	a1 := w.target("a:1:aaaa", "a", 1, sink.FormatJSON)
	w.configure(a1)
	end := w0 + win
	w.segment(a1, w0, end, 0, 1, 1, 2, 3)
	w.segment(a1, w0, end, 1, 1, 4)
	w.passAll(end)
	a := w.assembler(nil)
	w.tick(a)
	// The replay: partition 0 from offset 2 with another digest, plus a record
	// the first run never read (6); partition 1 again, only delivered records.
	w.segment(a1, w0, end, 0, 9, 2, 3, 6)
	w.segment(a1, w0, end, 1, 9, 4)
	w.tick(a)
	objs := w.objects(custBkt, "")
	if len(objs) != 2 {
		t.Fatalf("objects %v", keysOf(objs))
	}
	late := objs["a/wallarm_hits_1687240800_late_1.json"]
	if late != "[\n"+rec(0, 6)+"\n]\n" {
		t.Errorf("late object %q, want only the record no object held", late)
	}
	if n := len(w.objects(stageBkt, "hitship/staging/seg/")); n != 0 {
		t.Errorf("%d segments left", n)
	}
	// Only delivered records again: deleted, no object.
	w.segment(a1, w0, end, 0, 10, 1, 6)
	w.tick(a)
	if objs := w.objects(custBkt, ""); len(objs) != 2 {
		t.Errorf("objects %v after a segment of delivered records", keysOf(objs))
	}
	if n := len(w.objects(stageBkt, "hitship/staging/seg/")); n != 0 {
		t.Errorf("%d segments left", n)
	}
}

// TestIntentFixesTheBytes: an assembly whose upload fails is resumed by
// another replica from its intent: the same records and bytes, although a
// segment with another record came meanwhile (it goes to a late object).
func TestIntentFixesTheBytes(t *testing.T) {
	w := newWorld(t, 1)
	a1 := w.target("a:1:aaaa", "a", 1, sink.FormatNDJSON)
	w.configure(a1)
	end := w0 + win
	w.segment(a1, w0, end, 0, 1, 1, 2)
	w.passAll(end)
	w.dieAfterIntent()
	w.rdb.FlushAll(context.Background()) // and Redis loses the lease and the marks
	w.segment(a1, w0, end, 0, 2, 1, 2, 3)
	w.s3.HealBucket(custBkt)
	w.passAll(end)
	second := w.assembler(nil)
	w.tick(second)
	w.tick(second)
	objs := w.objects(custBkt, "")
	if got := objs["a/wallarm_hits_1687240800.jsonl"]; got != ndjson([2]int64{0, 1}, [2]int64{0, 2}) {
		t.Errorf("main object %q: not what the intent fixed", got)
	}
	if got := objs["a/wallarm_hits_1687240800_late_1.jsonl"]; got != ndjson([2]int64{0, 3}) {
		t.Errorf("late object %q", got)
	}
	if len(objs) != 2 {
		t.Errorf("objects %v", keysOf(objs))
	}
}

// TestIntentKeepsItsFormat: an intent made before a reload changed the
// integration's format and compression is delivered as it was fixed, not
// stuck on a checksum that no longer matches.
func TestIntentKeepsItsFormat(t *testing.T) {
	w := newWorld(t, 1)
	before := w.target("a:1:aaaa", "a", 1, sink.FormatNDJSON)
	w.configure(before)
	end := w0 + win
	w.segment(before, w0, end, 0, 1, 1, 2)
	w.passAll(end)
	w.dieAfterIntent()
	// The reload: JSON array, gzip (another target of the same integration).
	after := w.target("a:1:bbbb", "a", 1, sink.FormatJSON)
	after.Compression = sink.CompressionGzip
	w.configure(after)
	w.s3.HealBucket(custBkt)
	w.tick(w.assembler(nil))
	objs := w.objects(custBkt, "")
	if got := objs["a/wallarm_hits_1687240800.jsonl"]; got != ndjson([2]int64{0, 1}, [2]int64{0, 2}) || len(objs) != 1 {
		t.Errorf("objects %v: want the NDJSON object the intent fixed", keysOf(objs))
	}
	if n := len(w.objects(stageBkt, "hitship/staging/seg/")); n != 0 {
		t.Errorf("%d segments left", n)
	}
}

// TestMovedIntegrationGetsItsSegments: segments of a target a reload replaced
// (same integration and client, another destination) go to the integration
// as configured now; those of an integration no longer configured wait, and
// never go to another tenant.
func TestMovedIntegrationGetsItsSegments(t *testing.T) {
	w := newWorld(t, 1)
	moved := w.target("a:1:new", "a", 1, sink.FormatNDJSON)
	moved.Prefix = "moved/"
	other := w.target("b:2:bbbb", "b", 2, sink.FormatNDJSON)
	w.configure(moved, other)
	end := w0 + win
	w.segment(&integrations.Target{ID: "a:1:old"}, w0, end, 0, 1, 1)
	w.segment(&integrations.Target{ID: "a:9:old"}, w0, end, 0, 1, 2) // another client named a: not ours
	w.segment(&integrations.Target{ID: "gone:3:x"}, w0, end, 0, 1, 3)
	w.passAll(end)
	w.tick(w.assembler(nil))
	objs := w.objects(custBkt, "")
	if len(objs) != 1 || objs["moved/wallarm_hits_1687240800.jsonl"] != ndjson([2]int64{0, 1}) {
		t.Errorf("objects %v", objs)
	}
	if n := len(w.objects(stageBkt, "hitship/staging/seg/")); n != 2 {
		t.Errorf("%d segments left, want the 2 no configured integration of their client takes", n)
	}
}

// TestMovedIntegrationIsOneNamespace: after a reload moved an integration, the
// segments its old target and its new target staged for one window are one
// window's records: numbered together (two late objects of one boundary would
// get one key, and the second would overwrite the first) and de-duplicated
// together (a record the old target's object holds, staged again by the new
// target in a replay, is not written twice).
func TestMovedIntegrationIsOneNamespace(t *testing.T) {
	w := newWorld(t, 1)
	moved := w.target("a:1:new", "a", 1, sink.FormatNDJSON)
	moved.Prefix = "moved/"
	w.configure(moved)
	old := &integrations.Target{ID: "a:1:old"}
	end := w0 + win
	w.segment(old, w0, end, 0, 1, 1, 2)
	w.passAll(end)
	a := w.assembler(nil)
	w.tick(a)
	later := end + 1000
	w.segment(old, w0, later, 0, 2, 5)
	w.segment(moved, w0, later, 0, 3, 2, 6) // 2: a replay of what the old target staged
	w.passAll(later)
	w.tick(a)
	objs := w.objects(custBkt, "")
	want := map[string]string{
		"moved/wallarm_hits_1687240800.jsonl":        ndjson([2]int64{0, 1}, [2]int64{0, 2}),
		"moved/wallarm_hits_1687240800_late_1.jsonl": ndjson([2]int64{0, 5}, [2]int64{0, 6}),
	}
	if len(objs) != len(want) {
		t.Errorf("objects %v; want %v", keysOf(objs), keysOf(want))
	}
	for k, v := range want {
		if objs[k] != v {
			t.Errorf("%s = %q; want %q", k, objs[k], v)
		}
	}
	if n := len(w.objects(stageBkt, "hitship/staging/seg/")); n != 0 {
		t.Errorf("%d segments left", n)
	}
}

func keysOf[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}
