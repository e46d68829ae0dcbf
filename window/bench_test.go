package window_test

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"

	"hitship/window"
)

var benchIntegrations = []string{"acme", "globex", "initech"}

// steady builds a partition whose buffers for the window [base, base+Size) exist.
func steady(tb testing.TB) (*window.Partition, int64) {
	tb.Helper()
	p, err := window.NewPartition(window.DefaultConfig())
	if err != nil {
		tb.Fatal(err)
	}
	const base = 1_687_241_400_000
	p.Advance(0, base)
	for _, in := range benchIntegrations {
		p.Assign(0, base, in)
	}
	return p, base
}

func BenchmarkAdvanceAssign(b *testing.B) {
	p, base := steady(b)
	b.ReportAllocs()
	off := int64(1)
	for b.Loop() {
		ts := base + off%500_000 // stays inside the open window, out of order
		p.Advance(off, ts)
		p.Assign(off, ts, benchIntegrations[off%3])
		off++
	}
}

func TestAdvanceAssignDoesNotAllocate(t *testing.T) {
	p, base := steady(t)
	off := int64(1)
	allocs := testing.AllocsPerRun(10_000, func() {
		ts := base + off%500_000
		p.Advance(off, ts)
		p.Assign(off, ts, benchIntegrations[off%3])
		off++
	})
	if allocs != 0 {
		t.Fatalf("Advance+Assign allocate %.2f times per record in the steady state", allocs)
	}
	if p.Open() != 3 {
		t.Fatalf("Open() = %d, want 3", p.Open())
	}
}

// FuzzRestore feeds Restore snapshots as they would come back from Redis: it
// must reject or accept them without panicking, and an accepted snapshot must
// read back unchanged and drive a working partition.
func FuzzRestore(f *testing.F) {
	f.Add([]byte(`{"offset":1,"size_ms":100,"grace_ms":10,"max_future_skew_ms":0,"timestamp":"event","watermark_ms":60,"max_ts_ms":120,"ghosts":[{"target":"a","start_ms":0,"late":false,"close_at_ms":100,"first_offset":0}]}`))
	f.Add([]byte(`{"offset":0,"size_ms":100,"grace_ms":10,"max_future_skew_ms":0,"timestamp":"event","watermark_ms":-9223372036854775808,"max_ts_ms":-9223372036854775808,"ghosts":[]}`))
	f.Add([]byte(`{"offset":9,"size_ms":100,"grace_ms":10,"max_future_skew_ms":0,"timestamp":"event","watermark_ms":250,"max_ts_ms":255,"ghosts":[{"target":"a","start_ms":100,"late":true,"close_at_ms":300,"first_offset":3},{"target":"a","start_ms":200,"close_at_ms":300,"first_offset":4}]}`))
	f.Add([]byte(`{"offset":5,"size_ms":100,"grace_ms":10,"max_future_skew_ms":0,"timestamp":"event","ghosts":null}`))
	f.Add([]byte(`{"offset":5,"size_ms":100,"ghosts":null}`)) // an earlier version's: refused
	f.Add([]byte(`{"offset":1,"size_ms":100,"grace_ms":11,"max_future_skew_ms":0,"timestamp":"event","watermark_ms":60,"max_ts_ms":120,"ghosts":[]}`))
	cfg := window.Config{Size: 100, Grace: 10}
	f.Fuzz(func(t *testing.T, data []byte) {
		var s window.Snapshot
		if err := json.Unmarshal(data, &s); err != nil {
			return
		}
		p, err := window.Restore(cfg, s)
		if err != nil {
			if !window.IsBadSnapshot(err) {
				t.Fatalf("Restore error %v not classified", err)
			}
			return
		}
		got, ok := p.Snapshot(s.Offset)
		if !ok {
			t.Fatalf("restored partition has no Snapshot(%d)", s.Offset)
		}
		want := s.Ghosts
		if want == nil {
			want = []window.GhostBuffer{}
		}
		if got.Offset != s.Offset || got.Watermark != s.Watermark || got.MaxTs != s.MaxTs ||
			len(got.Ghosts) != len(want) {
			t.Fatalf("Snapshot after Restore = %+v, want %+v", got, s)
		}
		for _, g := range want {
			if !slices.Contains(got.Ghosts, g) {
				t.Fatalf("ghost %+v lost: %+v", g, got.Ghosts)
			}
		}
		// The partition works: the ghosts close once W passes them (all but
		// those of the last windows before MaxTimestamp).
		closed := 0
		for _, b := range p.Advance(s.Offset, window.MaxTimestamp) {
			if !b.Ghost || b.CloseAt > p.Watermark() {
				t.Fatalf("closed %+v ghost %t at W %d", b.Key, b.Ghost, p.Watermark())
			}
			closed++
		}
		wantClosed := 0
		for _, g := range want {
			if g.CloseAt <= p.Watermark() {
				wantClosed++
			}
		}
		if closed != wantClosed || p.Open() != len(want)-closed {
			t.Fatalf("%d of %d ghosts closed, %d open", closed, wantClosed, p.Open())
		}
		if again, ok := p.Snapshot(s.Offset); !ok || !reflect.DeepEqual(again, got) {
			t.Fatalf("Snapshot(%d) changed after processing: %+v vs %+v", s.Offset, again, got)
		}
	})
}
