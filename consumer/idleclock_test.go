package consumer

import (
	"fmt"
	"testing"
	"time"

	"hitship/sink"
)

// TestPauseDuringCatchUpTakesNoIdleClose (issue #11): a partition catching up
// on a backlog is held (back-pressure: its closed objects wait for a stalled
// bucket and fill the spool's disk budget) for many idle timeouts. The idle
// clock does not run while the partition is held or behind, so no wall-clock
// close happens and the rest of the backlog is not late: every window is one
// object and no hit is late. Before, the pause looked like a quiet partition:
// an idle close moved the watermark to the wall clock and every later record
// of the backlog went into late objects.
func TestPauseDuringCatchUpTakesNoIdleClose(t *testing.T) {
	wd := newWorld(t, 1)
	sp, err := sink.NewSpool(sink.SpoolConfig{Dir: t.TempDir(), MaxBytes: 16 << 10, MemoryBytes: 64 << 10, BufferMemoryBytes: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-24*time.Hour).Unix() / 600 * 600
	var backlog [][]byte
	for w := int64(0); w < 6; w++ {
		for i := int64(0); i < 100; i++ {
			backlog = append(backlog, hitAt(1, base+w*600+i*5, fmt.Sprintf("w%d-%d", w, i)))
		}
	}
	wd.produce(0, backlog...)
	gate := make(chan struct{})
	mb := wd.start("a", memberOpts{idle: 300 * time.Millisecond, spool: sp, gate: gate})
	waitUntil(t, 20*time.Second, "the partition held by the full spool", func() bool { return counter(mb.m.PausedPartitions) == 1 })
	time.Sleep(3 * time.Second) // ten idle timeouts
	close(gate)
	waitUntil(t, 30*time.Second, "the backlog read", func() bool {
		return counter(mb.m.RecordsConsumed.WithLabelValues("0")) == float64(len(backlog))
	})
	if n := counter(mb.m.LateHits); n != 0 {
		t.Fatalf("%v late hits: the pause turned the backlog late (%v idle closes)", n, counter(mb.m.IdleCloses))
	}
	waitUntil(t, 30*time.Second, "the backlog committed to its end", func() bool { return wd.committed(wGroup)[0] == int64(len(backlog)) })
	if len(wd.store.Keys()) != 6 {
		t.Errorf("objects %v, want one per window", wd.store.Keys())
	}
	for id, n := range wd.delivered() {
		if n != 1 {
			t.Errorf("hit %s delivered %d times", id, n)
		}
	}
}

// TestSpoolFullOfOpenBuffersMovesOn: the spool's disk budget is filled by the
// partition's own open buffers (one big window), so no delivery can free it.
// With the idle clock stopped during pauses, the worker closes its oldest
// window early after an idle timeout of that (recorded like an idle close, at
// the next window boundary rather than the wall clock) and goes on: the
// backlog is delivered once and committed to its end.
func TestSpoolFullOfOpenBuffersMovesOn(t *testing.T) {
	wd := newWorld(t, 1)
	sp, err := sink.NewSpool(sink.SpoolConfig{Dir: t.TempDir(), MaxBytes: 8 << 10, MemoryBytes: 64 << 10, BufferMemoryBytes: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-24*time.Hour).Unix() / 600 * 600
	var backlog [][]byte
	for i := int64(0); i < 400; i++ {
		backlog = append(backlog, hitAt(1+i%2, base+i, fmt.Sprintf("h%d", i)))
	}
	backlog = append(backlog, hitAt(1, base+600+61, "closer"))
	wd.produce(0, backlog...)
	mb := wd.start("a", memberOpts{idle: 300 * time.Millisecond, spool: sp})
	waitUntil(t, 30*time.Second, "the backlog committed to its end", func() bool { return wd.committed(wGroup)[0] == int64(len(backlog)) })
	if counter(mb.m.IdleCloses) == 0 {
		t.Error("no early close recorded")
	}
	for id, n := range wd.delivered() {
		if n != 1 {
			t.Errorf("hit %s delivered %d times", id, n)
		}
	}
	if got := len(wd.delivered()); got != len(backlog) {
		t.Errorf("%d hits delivered, want %d", got, len(backlog))
	}
}
