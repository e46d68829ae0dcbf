package window_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"hitship/window"
)

// The replay-determinism property of doc.go, checked on random runs: a record
// sequence with out-of-order and late timestamps, several integrations, dead
// letters and idle advances at random positions; random deliveries decide the
// committed offsets; every snapshot taken at a commit is restored and replayed.

type evKind int

const (
	evRecord evKind = iota
	evDead          // dead-lettered record: Mark only
	evIdle          // idle advance (offset = nextOffset, ts = boundary)
	evCommit        // the consumer committed offset (snapshot taken there)
)

type event struct {
	kind   evKind
	offset int64
	ts     int64
	integs []string
}

// outBuf is what a run records of one buffer (the Payload).
type outBuf struct {
	key      window.Key
	first    int64
	records  []int64
	closedAt int // event index of the close, -1 while open
	// delivered is set by the delivery simulation of the original run.
	delivered bool
}

type bufID struct {
	key   window.Key
	first int64
}

type recID struct {
	offset int64
	integ  string
}

type genParams struct {
	n         int
	grace     int64
	skewLate  int64 // how late out-of-order records can be
	pIdle     float64
	pDead     float64
	pDeliver  float64
	integs    []string
	gapChance float64
}

// original is the first run: the events it generated, its buffers, which buffer
// each record went to, and the snapshots at commit events (by event index).
type original struct {
	cfg       window.Config
	events    []event
	bufs      map[bufID]*outBuf
	recTo     map[recID]*outBuf
	snaps     map[int]window.Snapshot
	commitIdx []int
}

func runOriginal(t testing.TB, r *rand.Rand, gp genParams) *original {
	t.Helper()
	cfg := window.Config{Size: 100, Grace: gp.grace, MaxFutureSkew: 1000}
	p, err := window.NewPartition(cfg)
	if err != nil {
		t.Fatal(err)
	}
	o := &original{cfg: cfg, bufs: map[bufID]*outBuf{}, recTo: map[recID]*outBuf{}, snaps: map[int]window.Snapshot{}}
	var (
		offset    int64     = int64(r.IntN(5))
		lastRead  int64     = -1
		clock     int64     = int64(r.IntN(1000)) - 500 // negative times too
		pending   []*outBuf                             // open or closed-undelivered
		deadPend  []int64
		committed int64 = -1
	)
	onClose := func(closed []*window.Buffer, idx int) {
		for _, b := range closed {
			ob := b.Payload.(*outBuf)
			if ob.closedAt != -1 {
				t.Fatalf("buffer %+v closed twice", ob.key)
			}
			if b.CloseAt > p.Watermark() {
				t.Fatalf("buffer %+v closed with CloseAt %d > W %d", b.Key, b.CloseAt, p.Watermark())
			}
			ob.closedAt = idx
		}
	}
	for len(o.events) < gp.n {
		idx := len(o.events)
		switch x := r.Float64(); {
		case x < gp.pIdle:
			now := p.MaxTs() + int64(r.IntN(400)) - 100
			if p.MaxTs() == -1<<63 {
				now = clock
			}
			b, ok := p.IdleBoundary(now)
			if !ok {
				continue
			}
			next := lastRead + 1
			o.events = append(o.events, event{kind: evIdle, offset: next, ts: b})
			wBefore := p.Watermark()
			onClose(p.ApplyIdle(next, b), idx)
			if p.Watermark() != max(wBefore, b) {
				t.Fatalf("ApplyIdle(%d): W %d, want %d", b, p.Watermark(), max(wBefore, b))
			}
			if again := p.ApplyIdle(next, b); len(again) != 0 {
				t.Fatalf("ApplyIdle not idempotent: %d buffers closed again", len(again))
			}
		case x < gp.pIdle+gp.pDeliver:
			for _, ob := range pending {
				if ob.closedAt >= 0 && r.Float64() < 0.6 {
					ob.delivered = true
				}
			}
			pending = slices.DeleteFunc(pending, func(ob *outBuf) bool { return ob.delivered })
			deadPend = slices.DeleteFunc(deadPend, func(int64) bool { return r.Float64() < 0.6 })
			c := lastRead + 1
			for _, ob := range pending {
				c = min(c, ob.first)
			}
			for _, d := range deadPend {
				c = min(c, d)
			}
			if c < committed {
				t.Fatalf("committable went back from %d to %d", committed, c)
			}
			if c == committed || c == 0 {
				continue
			}
			committed = c
			s, ok := p.Snapshot(c)
			if !ok {
				t.Fatalf("Snapshot(%d) not available at commit", c)
			}
			p.Forget(c)
			o.events = append(o.events, event{kind: evCommit, offset: c})
			o.snaps[idx] = jsonRoundTrip(t, s)
			o.commitIdx = append(o.commitIdx, idx)
		default:
			offset++
			if r.Float64() < gp.gapChance {
				offset += int64(1 + r.IntN(3))
			}
			lastRead = offset
			if r.Float64() < gp.pDead {
				o.events = append(o.events, event{kind: evDead, offset: offset})
				p.Mark(offset)
				deadPend = append(deadPend, offset)
				continue
			}
			clock += int64(r.IntN(15))
			ts := clock
			switch y := r.Float64(); {
			case y < 0.15:
				ts -= int64(r.IntN(int(gp.skewLate)))
			case y < 0.18:
				ts -= int64(r.IntN(int(gp.skewLate) * 5))
			case y < 0.19:
				ts += int64(r.IntN(300))
			}
			var integs []string
			for _, in := range gp.integs {
				if r.Float64() < 0.6 {
					integs = append(integs, in)
				}
			}
			o.events = append(o.events, event{kind: evRecord, offset: offset, ts: ts, integs: integs})
			wBefore := p.Watermark()
			onClose(p.Advance(offset, ts), idx)
			if p.Watermark() < wBefore {
				t.Fatalf("watermark moved back from %d to %d", wBefore, p.Watermark())
			}
			for _, in := range integs {
				b := p.Assign(offset, ts, in)
				checkAssigned(t, cfg, p, b, ts, in)
				ob, _ := b.Payload.(*outBuf)
				if ob == nil {
					if b.FirstOffset != offset {
						t.Fatalf("new buffer %+v has first offset %d, want %d", b.Key, b.FirstOffset, offset)
					}
					ob = &outBuf{key: b.Key, first: b.FirstOffset, closedAt: -1}
					b.Payload = ob
					o.bufs[bufID{b.Key, b.FirstOffset}] = ob
					pending = append(pending, ob)
				}
				ob.records = append(ob.records, offset)
				o.recTo[recID{offset, in}] = ob
			}
		}
	}
	return o
}

// checkAssigned checks the invariants of one assignment.
func checkAssigned(t testing.TB, cfg window.Config, p *window.Partition, b *window.Buffer, ts int64, integ string) {
	t.Helper()
	start, end := cfg.Window(ts)
	if b.Key.Target != integ || b.Key.Start != start {
		t.Fatalf("record ts %d integ %q went to %+v", ts, integ, b.Key)
	}
	if late := end <= p.Watermark(); b.Key.Late != late {
		t.Fatalf("record ts %d (end %d, W %d) went to %+v", ts, end, p.Watermark(), b.Key)
	}
	if b.CloseAt <= p.Watermark() {
		t.Fatalf("record went to buffer %+v closing at %d <= W %d", b.Key, b.CloseAt, p.Watermark())
	}
}

func jsonRoundTrip(t testing.TB, s window.Snapshot) window.Snapshot {
	t.Helper()
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var out window.Snapshot
	if err := json.Unmarshal(data, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s, out) {
		t.Fatalf("snapshot JSON round trip: %+v became %+v", s, out)
	}
	return out
}

// replayFrom restores the snapshot of commit event ci and replays everything at
// offsets >= its offset, checking the replay against the original.
func replayFrom(t testing.TB, o *original, ci int) {
	t.Helper()
	snap := o.snaps[ci]
	c := snap.Offset
	p, err := window.Restore(o.cfg, snap)
	if err != nil {
		t.Fatalf("Restore(%+v): %v", snap, err)
	}
	got := map[bufID]*outBuf{}
	seen := map[recID]bool{}
	start := slices.IndexFunc(o.events, func(e event) bool { return e.kind != evCommit && e.offset >= c })
	if start < 0 {
		start = len(o.events)
	}
	onClose := func(closed []*window.Buffer, idx int) {
		for _, b := range closed {
			if b.Ghost {
				ob := o.bufs[bufID{b.Key, b.FirstOffset}]
				if ob == nil || ob.first >= c || ob.closedAt != idx {
					t.Fatalf("from %d: ghost %+v first %d closed at event %d; original %+v", c, b.Key, b.FirstOffset, idx, ob)
				}
				continue
			}
			b.Payload.(*outBuf).closedAt = idx
		}
	}
	for idx := start; idx < len(o.events); idx++ {
		e := o.events[idx]
		switch e.kind {
		case evIdle:
			onClose(p.ApplyIdle(e.offset, e.ts), idx)
		case evDead:
			p.Mark(e.offset)
		case evCommit:
			if e.offset < c {
				continue
			}
			s, ok := p.Snapshot(e.offset)
			if !ok {
				t.Fatalf("from %d: replay has no Snapshot(%d)", c, e.offset)
			}
			if want := o.snaps[idx]; !reflect.DeepEqual(s, want) {
				t.Fatalf("from %d: replay Snapshot(%d) = %+v, original %+v", c, e.offset, s, want)
			}
			p.Forget(e.offset)
		case evRecord:
			onClose(p.Advance(e.offset, e.ts), idx)
			for _, in := range e.integs {
				id := recID{e.offset, in}
				if seen[id] {
					t.Fatalf("record %v assigned twice", id)
				}
				seen[id] = true
				b := p.Assign(e.offset, e.ts, in)
				orig := o.recTo[id]
				if b.Ghost {
					if orig.first >= c || orig.key != b.Key || orig.first != b.FirstOffset {
						t.Fatalf("from %d: record %v discarded in ghost %+v/%d, original buffer %+v/%d", c, id, b.Key, b.FirstOffset, orig.key, orig.first)
					}
					continue
				}
				ob, _ := b.Payload.(*outBuf)
				if ob == nil {
					ob = &outBuf{key: b.Key, first: b.FirstOffset, closedAt: -1}
					b.Payload = ob
					got[bufID{b.Key, b.FirstOffset}] = ob
				}
				ob.records = append(ob.records, e.offset)
				if orig.key != b.Key || orig.first != b.FirstOffset {
					t.Fatalf("from %d: record %v went to %+v/%d, originally %+v/%d", c, id, b.Key, b.FirstOffset, orig.key, orig.first)
				}
			}
		}
	}
	// Every replayed buffer is an original one, same records, same close point;
	// every original buffer at or after c was reproduced.
	for id, g := range got {
		ob := o.bufs[id]
		if ob == nil {
			t.Fatalf("from %d: replay made buffer %+v that the original did not", c, id)
		}
		if !slices.Equal(g.records, ob.records) || g.closedAt != ob.closedAt {
			t.Fatalf("from %d: buffer %+v: replay records %v closed at %d, original %v closed at %d",
				c, id, g.records, g.closedAt, ob.records, ob.closedAt)
		}
	}
	for id, ob := range o.bufs {
		if id.first >= c && got[id] == nil {
			t.Fatalf("from %d: original buffer %+v (records %v) not reproduced", c, id, ob.records)
		}
		if id.first < c && !ob.delivered {
			t.Fatalf("committed %d past undelivered buffer %+v", c, id)
		}
	}
}

func checkReplayDeterminism(t testing.TB, seed uint64, gp genParams) {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	o := runOriginal(t, r, gp)
	// The original run: every record of every integration in exactly one buffer.
	var n int
	for _, ob := range o.bufs {
		n += len(ob.records)
	}
	if n != len(o.recTo) {
		t.Fatalf("%d records in buffers, %d assigned", n, len(o.recTo))
	}
	for _, ci := range o.commitIdx {
		replayFrom(t, o, ci)
	}
}

func TestReplayDeterminism(t *testing.T) {
	tests := []struct {
		name string
		gp   genParams
	}{
		{"ordered, no grace", genParams{n: 400, grace: 0, skewLate: 50, pIdle: 0.02, pDead: 0.03, pDeliver: 0.1, integs: []string{"a", "b"}}},
		{"grace and late data", genParams{n: 800, grace: 30, skewLate: 300, pIdle: 0.03, pDead: 0.05, pDeliver: 0.08, integs: []string{"a", "b", "c"}, gapChance: 0.1}},
		{"grace over a window", genParams{n: 800, grace: 250, skewLate: 600, pIdle: 0.05, pDead: 0.02, pDeliver: 0.1, integs: []string{"a", "b", "c"}, gapChance: 0.05}},
		{"idle heavy", genParams{n: 600, grace: 10, skewLate: 200, pIdle: 0.2, pDead: 0.1, pDeliver: 0.2, integs: []string{"x"}, gapChance: 0.3}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for seed := range uint64(30) {
				t.Run(fmt.Sprint(seed), func(t *testing.T) { checkReplayDeterminism(t, seed, tt.gp) })
			}
		})
	}
}

func FuzzReplayDeterminism(f *testing.F) {
	f.Add(uint64(1), uint16(300), uint8(30), uint16(200), uint8(5), uint8(3))
	f.Add(uint64(7), uint16(500), uint8(0), uint16(50), uint8(30), uint8(1))
	f.Add(uint64(42), uint16(900), uint8(250), uint16(900), uint8(10), uint8(3))
	f.Fuzz(func(t *testing.T, seed uint64, n uint16, grace uint8, late uint16, idlePct uint8, nInteg uint8) {
		gp := genParams{
			n:         int(n % 1500),
			grace:     int64(grace),
			skewLate:  int64(late%2000) + 1,
			pIdle:     float64(idlePct%40) / 100,
			pDead:     0.05,
			pDeliver:  0.1,
			integs:    []string{"a", "b", "c", "d"}[:nInteg%4+1],
			gapChance: 0.1,
		}
		checkReplayDeterminism(t, seed, gp)
	})
}
