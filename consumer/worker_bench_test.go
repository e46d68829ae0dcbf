package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"hitship/delivery"
	"hitship/hitgen"
	"hitship/integrations"
	"hitship/metrics"
	"hitship/sink"
	"hitship/state"
	"hitship/window"
)

// The hot path is worker.process: validate and scan the record (hit.Scan), route
// it (Routes.Targets), place it in its window (window.Partition Advance and
// Assign) and encode it into the object's buffer (sink.Buffer.Append). These
// benchmarks run it on seed-shaped records without Kafka, S3 or Redis.

const (
	hotTenants = 10                   // each with one integration, half JSON, half NDJSON
	hotRecords = 6000                 // distinct records, replayed with growing offsets
	hotBase    = int64(1_687_241_400) // Unix seconds, on a window boundary
	hotSpan    = int64(10 * 60)       // the records' event times cover ten 1-minute windows ...
	hotCycle   = int64(200_000)       // ... over this many records (~2,000 per object), then go on
)

// staticRoutes routes to a fixed set of targets, all of them live.
type staticRoutes struct{ set *integrations.RouteSet }

func newStaticRoutes(targets ...*integrations.Target) staticRoutes {
	return staticRoutes{set: integrations.NewRouteSet(targets)}
}

func (r staticRoutes) Live() *integrations.RouteSet { return r.set }
func (r staticRoutes) All() *integrations.RouteSet  { return r.set }
func (r staticRoutes) Target(id string) (*integrations.Target, bool) {
	for _, t := range r.set.Members {
		if t.ID == id {
			return t, true
		}
	}
	return nil, false
}

// discardDelivery finishes every closed buffer into an object and releases it,
// as a delivery does after a successful upload.
type discardDelivery struct{ objects, records int }

func (d *discardDelivery) Deliver(_ context.Context, j *delivery.Job, done func(error)) {
	o, err := j.Buffer.Finish(j.Target.Compression)
	if err == nil {
		o.Release()
	}
	d.objects++
	d.records += j.Records
	done(err)
}

// hotMessages returns seed-shaped records with the client_id header, in event-time
// order over hotSpan.
func hotMessages(tb testing.TB) []kafka.Message {
	tb.Helper()
	g := hitgen.New(hitgen.Config{Seed: 6, Tenants: hotTenants})
	msgs := make([]kafka.Message, hotRecords)
	for i := range msgs {
		r := g.Next(hotBase)
		msgs[i] = kafka.Message{Value: r.Value, Time: time.Unix(hotBase, 0),
			Headers: []kafka.Header{{Key: "client_id", Value: []byte(strconv.FormatInt(r.ClientID, 10))}}}
	}
	return msgs
}

// hotWorker is a started worker on one partition whose buffers go to d.
func hotWorker(tb testing.TB, d Delivery) *worker {
	tb.Helper()
	// Sized as the service sizes it with the default spool.memory_bytes.
	sp, err := sink.NewSpool(sink.SpoolConfig{Dir: tb.TempDir(), MemoryBytes: 64 << 20, BufferMemoryBytes: 2 << 20})
	if err != nil {
		tb.Fatal(err)
	}
	var targets []*integrations.Target
	for c := int64(1); c <= hotTenants; c++ {
		keys, err := sink.ParseKeyTemplate(sink.DefaultKeyTemplate)
		if err != nil {
			tb.Fatal(err)
		}
		f := sink.FormatJSON
		if c%2 == 0 {
			f = sink.FormatNDJSON
		}
		name := "tenant-" + strconv.FormatInt(c, 10)
		targets = append(targets, &integrations.Target{ID: integrations.NewTargetID(name, c, "bucket-"+name), Name: name, ClientID: c, Format: f, Keys: keys})
	}
	routes := newStaticRoutes(targets...)
	m := metrics.New(prometheus.NewRegistry())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	wcfg := window.DefaultConfig()
	wcfg.Size = 60_000
	c := &Consumer{
		cfg:  Config{Window: wcfg, MaxRecordBytes: 1 << 20, MaxDepth: 64, IdleTimeout: time.Minute},
		deps: Deps{Logger: log, Metrics: m, State: &fakeState{}, Routes: routes, Spool: sp, Delivery: d},
		log:  log, skipped: m.RecordsSkipped.WithLabelValues("no_integration"),
		disabled: m.RecordsSkipped.WithLabelValues("disabled"), removed: m.RecordsSkipped.WithLabelValues("removed"),
	}
	w := &worker{c: c, topic: "hits", partition: 0, log: log, owner: state.Owner{Generation: 1, Member: "m"},
		consumed: m.RecordsConsumed.WithLabelValues("0")}
	w.deliverCtx = context.Background()
	if err := w.start(context.Background(), -1); err != nil {
		tb.Fatal(err)
	}
	return w
}

// feed processes the i-th record of the endless stream: offsets grow by one,
// event times move forward (windows close as they would in a live partition).
func feed(w *worker, msgs []kafka.Message, i int64) {
	m := &msgs[i%hotRecords]
	m.Offset = i
	// Rewrite the time digits in place: "time":"1687241400" starts at byte 9.
	ts := hotBase + (i%hotCycle)*hotSpan/hotCycle + (i/hotCycle)*hotSpan
	strconv.AppendInt(m.Value[9:9], ts, 10)
	m.Time = time.Unix(ts, 0)
	_ = w.route(context.Background(), m) // what the fetch loop does before process
	w.process(context.Background(), m)
}

// BenchmarkHotPath is route + window + encode per record (worker.process), with
// a json.Valid-only pass over the same records as the baseline: ns/record of
// both and their ratio are reported beside the usual figures.
func BenchmarkHotPath(b *testing.B) {
	msgs := hotMessages(b)
	d := &discardDelivery{}
	w := hotWorker(b, d)
	var bytes int64
	for _, m := range msgs {
		bytes += int64(len(m.Value))
	}
	b.SetBytes(bytes / hotRecords)
	b.ReportAllocs()
	i := int64(0)
	for b.Loop() {
		feed(w, msgs, i)
		i++
	}
	if w.fatal != nil {
		b.Fatal(w.fatal)
	}
	perRecord := float64(b.Elapsed().Nanoseconds()) / float64(b.N)

	// The baseline, timed here so that both figures come from the same run.
	start := time.Now()
	n := max(b.N, hotRecords)
	for j := range n {
		if !json.Valid(msgs[j%hotRecords].Value) {
			b.Fatal("invalid record")
		}
	}
	valid := float64(time.Since(start).Nanoseconds()) / float64(n)
	b.ReportMetric(perRecord, "ns/record")
	b.ReportMetric(valid, "json.Valid-ns/record")
	b.ReportMetric(perRecord/valid, "x-json.Valid")
}

// BenchmarkJSONValid is the baseline alone: json.Valid over the same records.
func BenchmarkJSONValid(b *testing.B) {
	msgs := hotMessages(b)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if !json.Valid(msgs[i%hotRecords].Value) {
			b.Fatal("invalid record")
		}
		i++
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/record")
}

// TestHotPathAllocations: the hot path allocates at most once per record in the
// steady state (window closes and object finishing included, amortised), and
// every record fed reaches an object.
func TestHotPathAllocations(t *testing.T) {
	msgs := hotMessages(t)
	d := &discardDelivery{}
	w := hotWorker(t, d)
	i := int64(0)
	for ; i < hotCycle; i++ { // warm up: buffers grown, windows closed
		feed(w, msgs, i)
	}
	const runs = int(hotCycle)
	allocs := testing.AllocsPerRun(runs, func() {
		feed(w, msgs, i)
		i++
	})
	if w.fatal != nil {
		t.Fatal(w.fatal)
	}
	if allocs > 1 {
		t.Fatalf("the hot path allocates %.3f times per record, want at most 1", allocs)
	}
	t.Logf("%.3f allocations per record; %d objects of %d records so far", allocs, d.objects, d.records)
	if d.objects == 0 {
		t.Fatal("no window closed: the benchmark does not exercise closes")
	}
	// Everything closed so far plus what is open is everything fed.
	open := 0
	for _, bs := range w.open {
		open += bs.buf.Records()
	}
	if got := int64(d.records + open); got != i {
		t.Fatalf("objects and open buffers hold %d records, fed %d", got, i)
	}
}

// failingDelivery fails every job as a stager does when the worker's context
// ends or the spool fails: the buffer is not staged.
type failingDelivery struct{ closes []int64 }

func (d *failingDelivery) Deliver(_ context.Context, j *delivery.Job, done func(error)) {
	j.Buffer.Discard()
	d.closes = append(d.closes, j.CloseAt)
	done(errors.New("staging: context canceled"))
}

// TestStagedMarkHeldBelowAFailedSegment: a closed buffer whose staging failed
// keeps the partition's staged mark below its boundary until the worker's
// next life stages it again. Before, the entry went with the failure, the
// mark passed the boundary while the watermark moved on, and the window was
// assembled without that segment (its records, staged again after the
// restart, became late objects).
func TestStagedMarkHeldBelowAFailedSegment(t *testing.T) {
	msgs := hotMessages(t)
	d := &failingDelivery{}
	w := hotWorker(t, d)
	w.c.cfg.Staged = true
	i := int64(0)
	for ; len(d.closes) == 0; i++ {
		feed(w, msgs, i)
	}
	first := d.closes[0]
	for end := i + 3*hotCycle; i < end; i++ { // the watermark moves windows on
		feed(w, msgs, i)
	}
	mark, ok := w.stagedMark()
	if !ok || mark >= first {
		t.Fatalf("staged mark %d (%v) with the segment closing at %d not staged; want below it", mark, ok, first)
	}
	if wm := w.part.Watermark(); wm < first+60_000 {
		t.Fatalf("watermark %d did not move past %d: the test proves nothing", wm, first)
	}
	w.mu.Lock()
	err := w.begin(-1, nil, nil, nil, routePlan{}, false) // the next life
	w.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if len(w.stagingFailed) != 0 {
		t.Fatalf("the next life still holds %d failed segments", len(w.stagingFailed))
	}
}
