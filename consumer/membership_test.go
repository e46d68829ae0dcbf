package consumer

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"

	"hitship/integrations"
	"hitship/internal/testenv"
	"hitship/metrics"
	"hitship/state"
	"hitship/window"
)

// liveRoutes is a routing table whose live membership the test changes.
type liveRoutes struct {
	all  *integrations.RouteSet // set before the workers start, or by setAll
	live atomic.Pointer[integrations.RouteSet]
}

// setAll replaces the configured targets (a reload) and makes them all live.
// Not safe while a worker routes.
func (r *liveRoutes) setAll(ts ...*integrations.Target) {
	r.all = integrations.NewRouteSet(ts)
	r.live.Store(r.all)
}

func newLiveRoutes(all ...*integrations.Target) *liveRoutes {
	r := &liveRoutes{all: integrations.NewRouteSet(all)}
	r.live.Store(r.all)
	return r
}

func (r *liveRoutes) setLive(ts ...*integrations.Target) { r.live.Store(integrations.NewRouteSet(ts)) }
func (r *liveRoutes) Live() *integrations.RouteSet       { return r.live.Load() }
func (r *liveRoutes) All() *integrations.RouteSet        { return r.all }
func (r *liveRoutes) Target(id string) (*integrations.Target, bool) {
	for _, t := range r.all.Members {
		if t.ID == id {
			return t, true
		}
	}
	return nil, false
}

func testTarget(name string, client int64) *integrations.Target {
	return &integrations.Target{ID: integrations.NewTargetID(name, client, "bucket-"+name), Name: name, ClientID: client}
}

// routingState is a real Redis and the partition state over it.
func routingState(t *testing.T) (*testenv.Redis, *state.Store) {
	t.Helper()
	rd := testenv.MustRedis(t, testenv.RedisOptions{})
	st, err := state.New(rd.Client(), "test:", "g")
	if err != nil {
		t.Fatal(err)
	}
	return rd, st
}

// routingWorker is a worker of generation gen on partition 0 over a real
// Redis, started at committed offset `from`.
func routingWorker(t *testing.T, st *state.Store, r Routes, gen int32, from int64, opts ...func(*Config)) (*worker, *metrics.Metrics) {
	t.Helper()
	m := metrics.New(prometheus.NewRegistry())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg := Config{Window: window.DefaultConfig()}
	for _, o := range opts {
		o(&cfg)
	}
	c := &Consumer{cfg: cfg, deps: Deps{Logger: log, Metrics: m, State: st, Routes: r}, log: log,
		removed: m.RecordsSkipped.WithLabelValues("removed")}
	w := &worker{c: c, topic: "hits", partition: 0, log: log, owner: state.Owner{Generation: gen, Member: "m"}}
	if err := w.start(t.Context(), from); err != nil {
		t.Fatal(err)
	}
	return w, m
}

// routeAt runs the fetch loop's routing step for a record at off.
func routeAt(t *testing.T, w *worker, off, hwm int64) {
	t.Helper()
	if err := w.route(t.Context(), &kafka.Message{Offset: off, HighWaterMark: hwm}); err != nil {
		t.Fatal(err)
	}
}

// routesTo returns the names of the targets the worker routes tenant c to.
func routesTo(w *worker, c int64) []string {
	var out []string
	if tr := w.mem.byClient[c]; tr != nil {
		for _, t := range tr.targets {
			out = append(out, t.Name)
		}
	}
	return out
}

func routeLog(t *testing.T, st *state.Store) []state.RouteEntry {
	t.Helper()
	log, err := st.RouteLog(t.Context(), "hits", 0)
	if err != nil {
		t.Fatal(err)
	}
	return log
}

// TestRoutingLogReplay: a first owner records its membership at the start and
// every live change at the record it applies from; the next owner, starting
// at a committed offset, routes with the first owner's membership at every
// offset up to the high-water mark it found, whatever the live table says,
// and adopts the live membership (recording it) only from there.
func TestRoutingLogReplay(t *testing.T) {
	_, st := routingState(t)
	a, b := testTarget("a", 1), testTarget("b", 2)
	r := newLiveRoutes(a, b)

	w1, _ := routingWorker(t, st, r, 1, -1) // the partition's first start
	if got := routeLog(t, st); len(got) != 1 || got[0].Offset != 0 {
		t.Fatalf("first start recorded %v, want the live set at 0", got)
	}
	for off := int64(0); off < 5; off++ {
		routeAt(t, w1, off, 10)
	}
	r.setLive(a) // b disabled
	routeAt(t, w1, 5, 10)
	if got := routesTo(w1, 2); len(got) != 0 {
		t.Fatalf("after the change tenant 2 goes to %v", got)
	}
	log := routeLog(t, st)
	if len(log) != 2 || log[1].Offset != 5 || log[1].SetID != r.Live().ID {
		t.Fatalf("routing log %v, want the change at 5", log)
	}

	// b enabled again while nobody owns the partition; a new owner replays
	// from committed offset 3, finding records up to 10. The first owner
	// recorded its read mark readMarkAhead past its first record: it may
	// have routed that far with its last membership, so the new owner
	// follows the log up to there.
	r.setLive(a, b)
	w2, _ := routingWorker(t, st, r, 2, 3)
	want := map[int64][]string{3: {"b"}, 4: {"b"}, 5: nil, 9: nil, 10: nil, readMarkAhead - 1: nil, readMarkAhead: {"b"}, readMarkAhead + 2: {"b"}}
	for off := int64(3); off <= readMarkAhead+2; off++ {
		routeAt(t, w2, off, 10)
		if exp, ok := want[off]; ok && !slices.Equal(routesTo(w2, 2), exp) {
			t.Fatalf("offset %d: tenant 2 goes to %v, want %v", off, routesTo(w2, 2), exp)
		}
	}
	log = routeLog(t, st)
	if n := len(log); n != 3 || log[n-1].Offset != readMarkAhead || log[n-1].SetID != r.Live().ID {
		t.Fatalf("routing log %v, want the live set adopted at %d", log, readMarkAhead)
	}
	// The first owner is fenced: it can record no change any more.
	r.setLive(b)
	if err := w1.route(t.Context(), &kafka.Message{Offset: 6}); !state.IsFenced(err) {
		t.Fatalf("a zombie's routing change: %v, want fenced", err)
	}

	// Pruning at a commit keeps the membership at the committed offset.
	if err := st.Prune(t.Context(), "hits", 0, 8); err != nil {
		t.Fatal(err)
	}
	w3, _ := routingWorker(t, st, r, 3, 8)
	routeAt(t, w3, 8, 12)
	if got := routesTo(w3, 2); len(got) != 0 {
		t.Fatalf("replay from 8 routes tenant 2 to %v, want nothing (b was out from 5 to 10)", got)
	}
}

// TestReplayOfAMovedIntegration: a reload moved integration a (same name and
// client, another bucket) while records it had been routed were not yet
// committed. A new owner replaying them with the logged membership finds
// a's old target gone. Per partition the old target's objects may hold them:
// skipped as removed, as documented. With staged delivery they are staged for
// a as configured now, and the assembler takes each once (staging.Namespace);
// before, they were skipped there too, and a hit never staged was lost
// (the long staged chaos run lost 1,538 hits of its moved integration).
func TestReplayOfAMovedIntegration(t *testing.T) {
	for _, staged := range []bool{false, true} {
		t.Run(fmt.Sprintf("staged=%v", staged), func(t *testing.T) {
			_, st := routingState(t)
			a, b := testTarget("a", 1), testTarget("b", 2)
			r := newLiveRoutes(a, b)
			w1, _ := routingWorker(t, st, r, 1, -1)
			for off := int64(0); off < 5; off++ {
				routeAt(t, w1, off, 5)
			}
			moved := &integrations.Target{ID: integrations.NewTargetID("a", 1, "bucket-moved"), Name: "a", ClientID: 1}
			r.setAll(moved, b)
			w2, _ := routingWorker(t, st, r, 2, 2, func(c *Config) { c.Staged = staged })
			routeAt(t, w2, 2, 5)
			tr := w2.mem.byClient[1]
			if tr == nil {
				t.Fatal("no route for tenant 1")
			}
			if staged {
				if len(tr.targets) != 1 || tr.targets[0] != moved || len(tr.removed) != 0 || tr.others != 0 {
					t.Fatalf("replay routes tenant 1 to %v (removed %v, others %d), want the moved target only",
						routesTo(w2, 1), tr.removed, tr.others)
				}
				if got := routesTo(w2, 2); !slices.Equal(got, []string{"b"}) {
					t.Fatalf("tenant 2 goes to %v", got)
				}
				return
			}
			if len(tr.targets) != 0 || !slices.Equal(tr.removed, []string{a.ID}) || tr.others != 1 {
				t.Fatalf("per partition, replay routes tenant 1 to %v (removed %v, others %d), want the old target removed", routesTo(w2, 1), tr.removed, tr.others)
			}
		})
	}
}

// TestTakeoverFollowsReadMark: a new owner follows the routing log only as
// far as earlier owners may have read (their read mark), not to the
// high-water mark. Before, it followed the log to the high-water mark at its
// first fetch: in a catch-up with owners changing (kills, broker cuts), no
// owner read past that before the next takeover, and a reload that added an
// integration, or gave one to another tenant, was never taken — records
// that arrived long after it went to the old routing, or nowhere (chaos).
func TestTakeoverFollowsReadMark(t *testing.T) {
	rd, st := routingState(t)
	a, b := testTarget("a", 1), testTarget("b", 2)
	r := newLiveRoutes(a, b)
	r.setLive(a) // b not live yet
	w1, _ := routingWorker(t, st, r, 1, -1)
	for off := int64(0); off < 10; off++ {
		routeAt(t, w1, off, 1000)
	}
	// b is added while the next owner takes over from committed offset 5;
	// the topic holds 1,000 records by then.
	r.setLive(a, b)
	w2, _ := routingWorker(t, st, r, 2, 5)
	for off := int64(5); off <= 200; off++ {
		routeAt(t, w2, off, 1000)
		switch got := routesTo(w2, 2); {
		case off < readMarkAhead && len(got) != 0:
			t.Fatalf("offset %d (below the first owner's read mark): tenant 2 goes to %v, want nowhere", off, got)
		case off >= readMarkAhead && !slices.Equal(got, []string{"b"}):
			t.Fatalf("offset %d (past the first owner's read mark, high-water mark 1000): tenant 2 goes to %v, want b", off, got)
		}
	}
	// Without a read mark (Redis lost it, or an older version's log), the
	// high-water mark stands in for it.
	if err := rd.Client().Del(t.Context(), "test:{g:hits:0}:read").Err(); err != nil {
		t.Fatal(err)
	}
	r.setLive(a)
	w3, _ := routingWorker(t, st, r, 3, 5)
	routeAt(t, w3, 300, 400)
	if got := routesTo(w3, 2); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("without a read mark, offset 300 (below the high-water mark 400) goes to %v, want b as logged", got)
	}
}

// TestConservativeStartRecordedWhenUsed: a start without routing state (Redis
// lost it) records its conservative membership when it routes its first
// record, with the integrations configured then. Before, it recorded it at the
// start: an owner that routed nothing (a takeover cut short by the next
// rebalance) left the set of that moment in the log, and every later owner
// followed it to its own high-water mark, so an integration a reload added
// meanwhile got nothing of the partition's backlog (seen in the chaos run:
// FLUSHALL, a reload, kills; the added integration got no record at all).
func TestConservativeStartRecordedWhenUsed(t *testing.T) {
	_, st := routingState(t)
	a, b := testTarget("a", 1), testTarget("b", 1)
	r := newLiveRoutes(a)
	routingWorker(t, st, r, 1, 7) // committed 7, no routing state; it routes nothing
	if got := routeLog(t, st); len(got) != 0 {
		t.Fatalf("a start that routed nothing recorded %v", got)
	}
	r.setAll(a, b) // a reload adds b
	w2, _ := routingWorker(t, st, r, 2, 7)
	routeAt(t, w2, 7, 1000)
	if got := routesTo(w2, 1); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("tenant 1 goes to %v, want every integration configured now (a, b)", got)
	}
	log := routeLog(t, st)
	if len(log) != 1 || log[0].Offset != 7 || log[0].SetID != r.All().ID {
		t.Fatalf("routing log %v, want the set of a and b at 7", log)
	}
	// Its read mark is the high-water mark it followed the log to: the next
	// owner follows it no further, whatever the topic holds by then.
	mark, ok, err := st.ReadMark(t.Context(), "hits", 0)
	if err != nil || !ok || mark != 1000 {
		t.Fatalf("read mark %d %v %v, want 1000", mark, ok, err)
	}
}

// TestRoutingWithoutState: a committed offset but no routing log (Redis lost
// its data) routes conservatively, to every configured target disabled ones
// included, until the high-water mark, recording that at the committed
// offset; a member no configured target has any more is skipped as removed.
func TestRoutingWithoutState(t *testing.T) {
	_, st := routingState(t)
	a, b := testTarget("a", 1), testTarget("b", 2)
	r := newLiveRoutes(a, b)
	r.setLive(a) // b disabled
	w, _ := routingWorker(t, st, r, 1, 7)
	if !w.mem.conservative && w.mem.id != r.All().ID {
		t.Fatal("no conservative membership")
	}
	routeAt(t, w, 7, 9)
	if got := routesTo(w, 2); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("conservative routing sends tenant 2 to %v, want b", got)
	}
	routeAt(t, w, 8, 9)
	routeAt(t, w, 9, 9)
	if got := routesTo(w, 2); len(got) != 0 {
		t.Fatalf("from the high-water mark on tenant 2 goes to %v, want the live set", got)
	}
	if log := routeLog(t, st); len(log) != 2 || log[0].Offset != 7 || log[0].SetID != r.All().ID || log[1].Offset != 9 {
		t.Fatalf("routing log %v, want the conservative set at 7 and the live one at 9", log)
	}

	// A configured integration removed: its records are skipped, counted.
	gone := testTarget("gone", 2)
	ids := []string{a.ID, gone.ID}
	slices.Sort(ids)
	if err := st.SaveRouteSet(t.Context(), integrations.RouteSetID(ids), ids); err != nil {
		t.Fatal(err)
	}
	if err := st.Claim(t.Context(), "hits", 0, state.Owner{Generation: 2, Member: "m"}); err != nil {
		t.Fatal(err)
	}
	if err := st.RecordRoute(t.Context(), "hits", 0, state.Owner{Generation: 2, Member: "m"}, state.RouteEntry{Offset: 20, SetID: integrations.RouteSetID(ids)}); err != nil {
		t.Fatal(err)
	}
	w2, m := routingWorker(t, st, r, 3, 20)
	routeAt(t, w2, 20, 30)
	tr := w2.mem.byClient[2]
	if tr == nil || len(tr.targets) != 0 || !slices.Equal(tr.removed, []string{gone.ID}) {
		t.Fatalf("tenant 2 under a set with a removed target: %+v", tr)
	}
	w2.skipRemoved(tr.removed)
	if got := testutil.ToFloat64(m.RecordsSkipped.WithLabelValues("removed")); got != 1 {
		t.Fatalf("removed skips counted %v, want 1", got)
	}
}

// TestRoutingChangeWaitsForRedis: while Redis does not take the change, the
// worker keeps its membership; the change is recorded and adopted once it
// does. After a re-claim the entries it knows are recorded again.
func TestRoutingChangeWaitsForRedis(t *testing.T) {
	st := &fakeState{}
	a, b := testTarget("a", 1), testTarget("b", 2)
	r := newLiveRoutes(a, b)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := metrics.New(prometheus.NewRegistry())
	c := &Consumer{cfg: Config{Window: window.DefaultConfig()}, deps: Deps{Logger: log, Metrics: m, State: st, Routes: r}, log: log}
	w := &worker{c: c, topic: "hits", partition: 0, log: log, owner: state.Owner{Generation: 1, Member: "m"}}
	if err := w.start(t.Context(), -1); err != nil {
		t.Fatal(err)
	}
	routeAt(t, w, 0, 5)
	st.mu.Lock()
	st.down = true
	st.mu.Unlock()
	r.setLive(a)
	routeAt(t, w, 1, 5)
	if got := routesTo(w, 2); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("with Redis down tenant 2 goes to %v, want b still", got)
	}
	st.mu.Lock()
	st.down = false
	st.mu.Unlock()
	w.routeRetryAt = w.routeRetryAt.AddDate(-1, 0, 0) // the retry delay has passed
	routeAt(t, w, 2, 5)
	if got := routesTo(w, 2); len(got) != 0 {
		t.Fatalf("after Redis answered tenant 2 goes to %v, want nothing", got)
	}
	// After a re-claim (Redis lost the log) the worker records again what it
	// knows, at the offsets it applied from: the start's set at 0, the change
	// at 2.
	first := st.routes[0]
	n := len(st.routes)
	if err := w.rerecordRoutes(t.Context(), w.committed); err != nil {
		t.Fatal(err)
	}
	want := []state.RouteEntry{first, {Offset: 2, SetID: w.mem.id}}
	if got := st.routes[n:]; !slices.Equal(got, want) {
		t.Fatalf("after a re-claim the log got %v, want %v", got, want)
	}
}

// lostReply is the real state store whose next RecordRouteClaim calls run in
// Redis and then report a time-out, as when the reply is lost.
type lostReply struct {
	*state.Store
	lose atomic.Int32
}

func (l *lostReply) RecordRouteClaim(ctx context.Context, topic string, partition int, o state.Owner, e state.RouteEntry) (bool, error) {
	re, err := l.Store.RecordRouteClaim(ctx, topic, partition, o, e)
	if err == nil && l.lose.Add(-1) >= 0 {
		return false, fmt.Errorf("redis: i/o timeout (reply lost): %w", context.DeadlineExceeded)
	}
	return re, err
}

// TestRoutingChangeInDoubt: Redis ran the routing change but its reply was
// lost. The log holds the new membership at that offset, so the worker must
// route the record with it, not keep the old one (a replay would apply the
// change there): it records it again until Redis confirms, then adopts it.
func TestRoutingChangeInDoubt(t *testing.T) {
	rd := testenv.MustRedis(t, testenv.RedisOptions{})
	base, err := state.New(rd.Client(), "test:", "g")
	if err != nil {
		t.Fatal(err)
	}
	st := &lostReply{Store: base}
	a, b := testTarget("a", 1), testTarget("b", 2)
	r := newLiveRoutes(a, b)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := metrics.New(prometheus.NewRegistry())
	c := &Consumer{cfg: Config{Window: window.DefaultConfig()}, deps: Deps{Logger: log, Metrics: m, State: st, Routes: r}, log: log}
	w := &worker{c: c, topic: "hits", partition: 0, log: log, owner: state.Owner{Generation: 1, Member: "m"}}
	if err := w.start(t.Context(), -1); err != nil {
		t.Fatal(err)
	}
	routeAt(t, w, 0, 5)
	r.setLive(a)
	st.lose.Store(2)
	routeAt(t, w, 1, 5)
	if got := routesTo(w, 2); len(got) != 0 {
		t.Fatalf("the record after a change Redis holds goes to %v, want the new membership", got)
	}
	if got := routeLog(t, base); len(got) != 2 || got[1].Offset != 1 || got[1].SetID != r.Live().ID {
		t.Fatalf("routing log %v, want the change once at 1", got)
	}
}

// refusedRoutes is the real state store whose RecordRouteClaim fails (Redis
// unreachable) while refuse is set.
type refusedRoutes struct {
	*state.Store
	refuse atomic.Bool
}

func (r *refusedRoutes) RecordRouteClaim(ctx context.Context, topic string, partition int, o state.Owner, e state.RouteEntry) (bool, error) {
	if r.refuse.Load() {
		return false, fmt.Errorf("dial tcp: connection refused")
	}
	return r.Store.RecordRouteClaim(ctx, topic, partition, o, e)
}

// TestDeferredBaseRetryKeepsTheLog: a conservative start whose routing entry
// Redis does not take routes with every configured target and tries to record
// it again later; a later entry of the log reached meanwhile decides the
// routing from its offset on, and the retry must not undo it.
func TestDeferredBaseRetryKeepsTheLog(t *testing.T) {
	_, base := routingState(t)
	a, b := testTarget("a", 1), testTarget("b", 2)
	r := newLiveRoutes(a, b)
	// An earlier owner recorded {a} at offset 10; nothing at or below 5.
	onlyA := integrations.NewRouteSet([]*integrations.Target{a})
	if err := base.SaveRouteSet(t.Context(), onlyA.ID, onlyA.IDs); err != nil {
		t.Fatal(err)
	}
	if _, err := base.RecordRouteClaim(t.Context(), "hits", 0, state.Owner{Generation: 1, Member: "old"}, state.RouteEntry{Offset: 10, SetID: onlyA.ID}); err != nil {
		t.Fatal(err)
	}
	st := &refusedRoutes{Store: base}
	st.refuse.Store(true)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := metrics.New(prometheus.NewRegistry())
	c := &Consumer{cfg: Config{Window: window.DefaultConfig()}, deps: Deps{Logger: log, Metrics: m, State: st, Routes: r}, log: log,
		removed: m.RecordsSkipped.WithLabelValues("removed")}
	w := &worker{c: c, topic: "hits", partition: 0, log: log, owner: state.Owner{Generation: 2, Member: "m"}}
	if err := w.start(t.Context(), 5); err != nil {
		t.Fatal(err)
	}
	routeAt(t, w, 5, 20)
	if got := routesTo(w, 2); !slices.Equal(got, []string{"b"}) {
		t.Fatalf("conservative start: tenant 2 goes to %v, want b", got)
	}
	routeAt(t, w, 10, 20)
	if got := routesTo(w, 2); len(got) != 0 {
		t.Fatalf("at the logged entry: tenant 2 goes to %v, want nowhere", got)
	}
	w.routeRetryAt = time.Time{} // the retry is due
	routeAt(t, w, 11, 20)
	if got := routesTo(w, 2); len(got) != 0 {
		t.Fatalf("after the retry of the start's entry: tenant 2 goes to %v, want nowhere (the log's entry at 10)", got)
	}
	st.refuse.Store(false)
	w.routeRetryAt = time.Time{}
	routeAt(t, w, 12, 20)
	if w.deferBase {
		t.Fatal("the start's entry is still not recorded with Redis answering")
	}
	if got := routeLog(t, base); len(got) != 2 || got[0].Offset != 5 || got[0].SetID != r.All().ID {
		t.Fatalf("routing log %v, want every target at 5 and {a} at 10", got)
	}
}
