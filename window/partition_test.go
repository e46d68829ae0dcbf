package window_test

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"hitship/window"
)

type rec struct {
	offset, ts int64
	integ      string
}

func newPartition(t *testing.T, cfg window.Config) *window.Partition {
	t.Helper()
	p, err := window.NewPartition(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// feed advances and assigns the records, returning every buffer closed.
func feed(p *window.Partition, recs ...rec) (closed []window.Buffer) {
	for _, r := range recs {
		for _, b := range p.Advance(r.offset, r.ts) {
			closed = append(closed, *b)
		}
		if r.integ != "" {
			p.Assign(r.offset, r.ts, r.integ)
		}
	}
	return closed
}

func TestAssign(t *testing.T) {
	cfg := window.Config{Size: 100, Grace: 10}
	tests := []struct {
		name      string
		before    []rec
		r         rec
		want      window.Key
		wantFirst int64
		wantClose int64
	}{
		{"first record opens its window", nil, rec{5, 150, "a"}, window.Key{"a", 100, false}, 5, 200},
		{"same window joins the open buffer", []rec{{5, 150, "a"}}, rec{6, 199, "a"}, window.Key{"a", 100, false}, 5, 200},
		{"other integration gets its own buffer", []rec{{5, 150, "a"}}, rec{6, 160, "b"}, window.Key{"b", 100, false}, 6, 200},
		{"out of order but on time", []rec{{1, 150, "a"}, {2, 205, "a"}}, rec{3, 120, "a"}, window.Key{"a", 100, false}, 1, 200},
		{"negative timestamp", nil, rec{0, -1, "a"}, window.Key{"a", -100, false}, 0, 0},
		{"window end just past W is on time", []rec{{1, 305, ""}}, rec{2, 250, "a"}, window.Key{"a", 200, false}, 2, 300},
		{"window end at W is late", []rec{{1, 310, ""}}, rec{2, 250, "a"}, window.Key{"a", 200, true}, 2, 400},
		{"late record closes at the next boundary", []rec{{1, 360, ""}}, rec{2, 50, "a"}, window.Key{"a", 0, true}, 2, 400},
		{"late records of a window share a buffer", []rec{{1, 360, ""}, {2, 50, "a"}}, rec{3, 10, "a"}, window.Key{"a", 0, true}, 2, 400},
		{"late windows are kept apart", []rec{{1, 360, ""}, {2, 50, "a"}}, rec{3, 150, "a"}, window.Key{"a", 100, true}, 3, 400},
		{"a late record after the late buffer closed opens another", []rec{{1, 360, ""}, {2, 50, "a"}, {3, 420, ""}}, rec{4, 60, "a"}, window.Key{"a", 0, true}, 4, 500},
		{"future timestamps are clamped", nil, rec{1, math.MaxInt64, "a"}, window.Key{"a", window.Start(window.MaxTimestamp, 100), false}, 1, window.Start(window.MaxTimestamp, 100) + 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPartition(t, cfg)
			feed(p, tt.before...)
			p.Advance(tt.r.offset, tt.r.ts)
			b := p.Assign(tt.r.offset, tt.r.ts, tt.r.integ)
			if b.Key != tt.want || b.FirstOffset != tt.wantFirst || b.CloseAt != tt.wantClose || b.Ghost {
				t.Fatalf("Assign() = %+v first %d close %d ghost %t, want %+v first %d close %d",
					b.Key, b.FirstOffset, b.CloseAt, b.Ghost, tt.want, tt.wantFirst, tt.wantClose)
			}
			if again := p.Assign(tt.r.offset, tt.r.ts, tt.r.integ); again != b {
				t.Fatalf("second Assign returned another buffer")
			}
		})
	}
}

func TestWatermarkMonotonic(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, grace := range []int64{0, 7, 1000} {
		p := newPartition(t, window.Config{Size: 100, Grace: grace})
		if p.Watermark() != math.MinInt64 {
			t.Fatalf("new partition has watermark %d", p.Watermark())
		}
		want := int64(math.MinInt64)
		for off := range int64(2000) {
			ts := int64(r.IntN(10_000)) - 5_000
			if off%97 == 0 {
				if b, ok := p.IdleBoundary(ts + int64(r.IntN(3000))); ok {
					p.ApplyIdle(off, b)
					want = max(want, b)
				}
			}
			p.Advance(off, ts)
			want = max(want, ts-grace)
			if p.Watermark() != want {
				t.Fatalf("grace %d offset %d: W = %d, want %d", grace, off, p.Watermark(), want)
			}
		}
	}
}

func keys(bs []window.Buffer) []window.Key {
	var ks []window.Key
	for _, b := range bs {
		ks = append(ks, b.Key)
	}
	return ks
}

func TestLateBatching(t *testing.T) {
	p := newPartition(t, window.Config{Size: 100})
	steps := []struct {
		name       string
		r          rec
		wantClosed []window.Key
		wantKey    window.Key
		wantFirst  int64
	}{
		{"on time", rec{0, 50, "a"}, nil, window.Key{"a", 0, false}, 0},
		{"next window closes the first", rec{1, 120, "a"}, []window.Key{{"a", 0, false}}, window.Key{"a", 100, false}, 1},
		{"late record", rec{2, 30, "a"}, nil, window.Key{"a", 0, true}, 2},
		{"late record batched", rec{3, 60, "a"}, nil, window.Key{"a", 0, true}, 2},
		{"late record of another integration", rec{4, 10, "b"}, nil, window.Key{"b", 0, true}, 4},
		{"no boundary crossed", rec{5, 199, "a"}, nil, window.Key{"a", 100, false}, 1},
		{"boundary crossed closes late buffers with the window", rec{6, 205, "a"},
			[]window.Key{{"a", 0, true}, {"a", 100, false}, {"b", 0, true}}, window.Key{"a", 200, false}, 6},
		{"late again: a new late buffer", rec{7, 40, "a"}, nil, window.Key{"a", 0, true}, 7},
	}
	assigned := map[int64]bool{}
	for _, s := range steps {
		var closed []window.Buffer
		for _, b := range p.Advance(s.r.offset, s.r.ts) {
			closed = append(closed, *b)
		}
		if got := keys(closed); !slices.Equal(got, s.wantClosed) {
			t.Fatalf("%s: closed %v, want %v", s.name, got, s.wantClosed)
		}
		b := p.Assign(s.r.offset, s.r.ts, s.r.integ)
		if b.Key != s.wantKey || b.FirstOffset != s.wantFirst {
			t.Fatalf("%s: assigned to %+v/%d, want %+v/%d", s.name, b.Key, b.FirstOffset, s.wantKey, s.wantFirst)
		}
		assigned[s.r.offset] = true
	}
	if len(assigned) != len(steps) {
		t.Fatalf("some records were not assigned")
	}
	if p.Open() != 2 {
		t.Fatalf("Open() = %d, want 2 (a/200, a/0 late)", p.Open())
	}
}

func TestIdleBoundary(t *testing.T) {
	cfg := window.Config{Size: 100, Grace: 10}
	tests := []struct {
		name   string
		lastTs *int64
		now    int64
		want   int64
		wantOK bool
	}{
		{"no watermark yet", nil, 1234, 1200, true},
		{"crosses the next boundary", ptr(260), 310, 300, true},
		{"not yet", ptr(260), 309, 0, false},
		{"W on a boundary needs the next one", ptr(310), 409, 0, false},
		{"W on a boundary, next crossed", ptr(310), 410, 400, true},
		{"several windows at once", ptr(260), 1_015, 1000, true},
		{"clock behind the watermark", ptr(900), 100, 0, false},
		{"negative times", ptr(-260), -140, -200, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPartition(t, cfg)
			if tt.lastTs != nil {
				p.Advance(0, *tt.lastTs)
			}
			w := p.Watermark()
			b, ok := p.IdleBoundary(tt.now)
			if b != tt.want || ok != tt.wantOK {
				t.Fatalf("IdleBoundary(%d) = (%d, %t), want (%d, %t)", tt.now, b, ok, tt.want, tt.wantOK)
			}
			if p.Watermark() != w {
				t.Fatalf("IdleBoundary changed W")
			}
		})
	}
}

func ptr(v int64) *int64 { return &v }

func TestApplyIdle(t *testing.T) {
	p := newPartition(t, window.Config{Size: 100, Grace: 10})
	feed(p, rec{0, 150, "a"}, rec{1, 260, "b"}, rec{2, 120, "c"})
	b, ok := p.IdleBoundary(320)
	if !ok || b != 300 {
		t.Fatalf("IdleBoundary = (%d, %t), want (300, true)", b, ok)
	}
	var got []window.Key
	for _, c := range p.ApplyIdle(3, b) {
		if c.Ghost {
			t.Fatalf("closed buffer %+v is a ghost", c.Key)
		}
		got = append(got, c.Key)
	}
	if want := []window.Key{{"b", 200, false}, {"c", 100, true}}; !slices.Equal(got, want) {
		t.Fatalf("ApplyIdle closed %v, want %v (a closed at offset 1)", got, want)
	}
	if p.Watermark() != 300 || p.Open() != 0 {
		t.Fatalf("after idle: W %d open %d, want 300 and 0", p.Watermark(), p.Open())
	}
	if again := p.ApplyIdle(3, b); len(again) != 0 || p.Watermark() != 300 {
		t.Fatalf("ApplyIdle again closed %d, W %d", len(again), p.Watermark())
	}
	if lower := p.ApplyIdle(3, 200); len(lower) != 0 || p.Watermark() != 300 {
		t.Fatalf("lower idle boundary moved W to %d", p.Watermark())
	}
	if _, ok := p.IdleBoundary(320); ok {
		t.Fatalf("IdleBoundary after ApplyIdle still reports a crossing")
	}
	// A record of window [200,300) is now late.
	p.Advance(3, 250)
	if bb := p.Assign(3, 250, "a"); !bb.Key.Late || bb.CloseAt != 400 {
		t.Fatalf("record after idle advance: %+v close %d, want late closing at 400", bb.Key, bb.CloseAt)
	}
}

func TestSnapshotAvailability(t *testing.T) {
	p := newPartition(t, window.Config{Size: 100})
	feed(p, rec{10, 50, "a"}, rec{11, 60, "b"}, rec{12, 70, ""})
	p.Mark(13) // dead letter
	feed(p, rec{14, 150, "a"}, rec{16, 160, "a"})
	p.ApplyIdle(17, 200)
	tests := []struct {
		name       string
		offset     int64
		wantOK     bool
		wantW      int64
		wantGhosts []window.GhostBuffer
	}{
		{"first offset of the first buffer", 10, true, math.MinInt64, []window.GhostBuffer{}},
		{"first offset of a second buffer", 11, true, 50, []window.GhostBuffer{{"a", 0, false, 100, 10}}},
		{"record without buffer", 12, false, 0, nil},
		{"marked dead letter", 13, true, 70, []window.GhostBuffer{{"a", 0, false, 100, 10}, {"b", 0, false, 100, 11}}},
		{"buffer started by the record that closed others", 14, true, 70,
			[]window.GhostBuffer{{"a", 0, false, 100, 10}, {"b", 0, false, 100, 11}}},
		{"a joining record", 16, false, 0, nil},
		{"next offset includes the idle advance", 17, true, 200, []window.GhostBuffer{}},
		{"offset gap after it", 30, true, 200, []window.GhostBuffer{}},
		{"negative", -1, false, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, ok := p.Snapshot(tt.offset)
			if ok != tt.wantOK {
				t.Fatalf("Snapshot(%d) ok = %t, want %t", tt.offset, ok, tt.wantOK)
			}
			if !ok {
				return
			}
			if s.Offset != tt.offset || s.Watermark != tt.wantW || s.Size != 100 || !reflect.DeepEqual(s.Ghosts, tt.wantGhosts) {
				t.Fatalf("Snapshot(%d) = %+v, want W %d ghosts %+v", tt.offset, s, tt.wantW, tt.wantGhosts)
			}
		})
	}
	p.Forget(14)
	if _, ok := p.Snapshot(13); ok {
		t.Fatalf("Snapshot below the committed offset still available")
	}
	if s, ok := p.Snapshot(14); !ok || len(s.Ghosts) != 2 {
		t.Fatalf("Snapshot(14) after Forget(14) = %+v, %t; want the two ghosts", s, ok)
	}
	p.Forget(17)
	if s, ok := p.Snapshot(17); !ok || len(s.Ghosts) != 0 {
		t.Fatalf("Snapshot(17) after Forget(17) = %+v, %t", s, ok)
	}
}

func TestIdleAfterMarkUpdatesIt(t *testing.T) {
	p := newPartition(t, window.Config{Size: 100})
	feed(p, rec{0, 50, "a"})
	p.Mark(1)
	p.ApplyIdle(1, 100) // the idle advance happened before record 1 was read
	s, ok := p.Snapshot(1)
	if !ok || s.Watermark != 100 || len(s.Ghosts) != 0 {
		t.Fatalf("Snapshot(1) = %+v, %t; want W 100 and no ghost", s, ok)
	}
}

func TestRestore(t *testing.T) {
	cfg := window.Config{Size: 100, Grace: 5}
	good := window.Snapshot{Offset: 20, Size: 100, Grace: 5, Timestamp: "event", Watermark: 250, MaxTs: 255, Ghosts: []window.GhostBuffer{
		{"a", 100, true, 300, 12}, {"a", 200, false, 300, 15},
	}}
	with := func(f func(*window.Snapshot)) window.Snapshot {
		s := good
		s.Ghosts = slices.Clone(good.Ghosts)
		f(&s)
		return s
	}
	tests := []struct {
		name    string
		s       window.Snapshot
		wantErr bool
	}{
		{"good", good, false},
		{"empty", window.Snapshot{Offset: 0, Size: 100, Grace: 5, Timestamp: "event", Watermark: math.MinInt64, MaxTs: math.MinInt64}, false},
		{"other window size", with(func(s *window.Snapshot) { s.Size = 60 }), true},
		{"other grace", with(func(s *window.Snapshot) { s.Grace = 6 }), true},
		{"other max future skew", with(func(s *window.Snapshot) { s.MaxFutureSkew = 1 }), true},
		{"record time", with(func(s *window.Snapshot) { s.Timestamp = "record" }), true},
		{"unknown timestamp mode", with(func(s *window.Snapshot) { s.Timestamp = "wall" }), true},
		{"settings not recorded (an earlier version's snapshot)", with(func(s *window.Snapshot) { s.Grace, s.Timestamp = 0, "" }), true},
		{"negative offset", with(func(s *window.Snapshot) { s.Offset = -1 }), true},
		{"ghost at the offset", with(func(s *window.Snapshot) { s.Ghosts[0].FirstOffset = 20 }), true},
		{"ghost already closed", with(func(s *window.Snapshot) { s.Watermark = 300 }), true},
		{"unaligned start", with(func(s *window.Snapshot) { s.Ghosts[1].Start = 201 }), true},
		{"on-time close not the window end", with(func(s *window.Snapshot) { s.Ghosts[1].CloseAt = 400 }), true},
		{"late close inside the window", with(func(s *window.Snapshot) { s.Ghosts[0].CloseAt = 200 }), true},
		{"duplicate ghost", with(func(s *window.Snapshot) { s.Ghosts = append(s.Ghosts, s.Ghosts[0]) }), true},
		{"watermark out of range", with(func(s *window.Snapshot) { s.Watermark = math.MaxInt64 }), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := window.Restore(cfg, tt.s)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Restore() = %v, want error %t", err, tt.wantErr)
			}
			if err != nil {
				if !window.IsBadSnapshot(err) {
					t.Fatalf("error %v not classified as bad snapshot", err)
				}
				return
			}
			s, ok := p.Snapshot(tt.s.Offset)
			if !ok || s.Watermark != tt.s.Watermark || s.MaxTs != tt.s.MaxTs || len(s.Ghosts) != len(tt.s.Ghosts) {
				t.Fatalf("Snapshot after Restore = %+v, %t; want %+v", s, ok, tt.s)
			}
		})
	}
	if _, err := window.Restore(window.Config{}, good); !window.IsInvalidConfig(err) || window.IsBadSnapshot(err) {
		t.Fatalf("Restore with bad config: %v", err)
	}
}

// TestRestoreUnderOtherSettings is defect 4 of issue #11: only the window size
// used to be checked. A first run with a small grace closes a window on a
// record and puts a later record of that window into a late buffer; the
// snapshot at the commit holds the closed window as a ghost. Restored under a
// larger grace (a rolling deploy), the ghost is still open when that record
// comes and swallows it: the record was in no delivered object, so it is
// lost. Such a snapshot must be refused (the caller starts empty: possible
// duplicates, never loss); the same settings (and a skew change under record
// time, which ignores it) restore.
func TestRestoreUnderOtherSettings(t *testing.T) {
	taken := window.Config{Size: 100, Grace: 5, MaxFutureSkew: 50}
	p := newPartition(t, taken)
	feed(p, rec{0, 50, "a"}, rec{1, 108, "b"}) // W 103: window [0,100) of a closes
	if b := p.Assign(2, 60, "a"); !b.Key.Late || b.FirstOffset != 2 {
		t.Fatalf("record 2 went to %+v, want a late buffer of its own", b)
	}
	s, ok := p.Snapshot(1) // committed once a's first object was delivered
	if !ok || len(s.Ghosts) != 1 {
		t.Fatalf("Snapshot(1) = %+v, %t; want a's window as a ghost", s, ok)
	}
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var saved window.Snapshot
	if err := json.Unmarshal(data, &saved); err != nil {
		t.Fatal(err)
	}
	recordTime := taken
	recordTime.UseRecordTime = true
	tests := []struct {
		name   string
		cfg    window.Config
		usable bool
	}{
		{"same settings", taken, true},
		{"larger grace", window.Config{Size: 100, Grace: 50, MaxFutureSkew: 50}, false},
		{"smaller grace", window.Config{Size: 100, Grace: 0, MaxFutureSkew: 50}, false},
		{"other max future skew", window.Config{Size: 100, Grace: 5, MaxFutureSkew: 10}, false},
		{"record time", recordTime, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, err := window.Restore(tt.cfg, saved)
			if !tt.usable {
				if err == nil || !window.IsBadSnapshot(err) {
					t.Fatalf("Restore under %+v = %v, want a bad snapshot", tt.cfg, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			q.Advance(1, 108)
			q.Assign(1, 108, "b")
			q.Advance(2, 60)
			if b := q.Assign(2, 60, "a"); b.Ghost || b.FirstOffset != 2 || !b.Key.Late {
				t.Fatalf("replayed record 2 went to %+v ghost %t, want the late buffer the first run made", b.Key, b.Ghost)
			}
		})
	}
	// Under record time the skew changes nothing.
	rs, ok := newPartitionSnapshot(t, recordTime)
	if !ok {
		t.Fatal("no snapshot")
	}
	other := recordTime
	other.MaxFutureSkew = 7
	if _, err := window.Restore(other, rs); err != nil {
		t.Fatalf("record time, other skew: %v", err)
	}
}

func newPartitionSnapshot(t *testing.T, cfg window.Config) (window.Snapshot, bool) {
	t.Helper()
	p := newPartition(t, cfg)
	feed(p, rec{0, 50, "a"})
	return p.Snapshot(1)
}

func TestRestoredGhosts(t *testing.T) {
	cfg := window.Config{Size: 100, Grace: 5}
	p, err := window.Restore(cfg, window.Snapshot{Offset: 20, Size: 100, Grace: 5, Timestamp: "event", Watermark: 250, MaxTs: 255, Ghosts: []window.GhostBuffer{
		{"a", 100, true, 300, 12}, {"a", 200, false, 300, 15},
	}})
	if err != nil {
		t.Fatal(err)
	}
	p.Advance(20, 270)
	if b := p.Assign(20, 280, "a"); !b.Ghost || b.FirstOffset != 15 {
		t.Fatalf("record of a ghost window went to %+v/%d ghost %t", b.Key, b.FirstOffset, b.Ghost)
	}
	if b := p.Assign(20, 150, "a"); !b.Ghost || !b.Key.Late {
		t.Fatalf("late record of a ghost late window went to %+v ghost %t", b.Key, b.Ghost)
	}
	if b := p.Assign(20, 280, "b"); b.Ghost || b.FirstOffset != 20 {
		t.Fatalf("other integration went to %+v/%d ghost %t", b.Key, b.FirstOffset, b.Ghost)
	}
	closed := p.Advance(21, 310)
	var got []string
	for _, b := range closed {
		got = append(got, b.Key.Target)
		if b.Ghost != (b.Key.Target == "a") {
			t.Fatalf("closed %+v ghost %t", b.Key, b.Ghost)
		}
	}
	if !slices.Equal(got, []string{"a", "a", "b"}) {
		t.Fatalf("closed %v, want the two ghosts then b", got)
	}
}
