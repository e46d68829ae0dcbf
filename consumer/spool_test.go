package consumer

import (
	"fmt"
	"os"
	"testing"
	"time"

	"hitship/sink"
)

// TestSpoolFinishErrorOnIdlePartition (issue #11, defect 10): the last window
// of a partition that then goes quiet cannot be finished into an object (its
// spool directory is gone). The delivery reports a spool error; the worker,
// though its fetch loop waits for records, stops, waits until the spool takes
// writes again and starts over from its committed offset: once the directory
// is back, the window is delivered once and committed. Before, the failed
// finish was reported once and never retried: the offset stayed held for ever.
func TestSpoolFinishErrorOnIdlePartition(t *testing.T) {
	wd := newWorld(t, 1)
	dir := t.TempDir()
	sp, err := sink.NewSpool(sink.SpoolConfig{Dir: dir, MemoryBytes: 64 << 10, BufferMemoryBytes: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-24*time.Hour).Unix() / 600 * 600
	var recs [][]byte
	for i := 0; i < 50; i++ {
		recs = append(recs, hitAt(1, base+int64(i), fmt.Sprintf("h%d", i))) // spills: over 1 KiB
	}
	wd.produce(0, recs...)
	mb := wd.start("a", memberOpts{idle: 2 * time.Second, spool: sp})
	waitUntil(t, 20*time.Second, "the records read", func() bool {
		return counter(mb.m.RecordsConsumed.WithLabelValues("0")) == float64(len(recs))
	})
	if err := os.RemoveAll(dir); err != nil { // before the idle close finishes the window
		t.Fatal(err)
	}
	waitUntil(t, 20*time.Second, "a finish error counted and the partition paused", func() bool {
		return counter(mb.m.SpoolErrors.WithLabelValues("finish")) > 0 && counter(mb.m.PausedPartitions) == 1 &&
			mb.c.Status().SpoolErr != ""
	})
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 30*time.Second, "the window delivered and committed", func() bool {
		return wd.committed(wGroup)[0] == int64(len(recs))
	})
	got := wd.delivered()
	for i := range recs {
		if n := got[fmt.Sprintf("h%d", i)]; n != 1 {
			t.Errorf("hit h%d delivered %d times", i, n)
		}
	}
	if s := mb.c.Status(); s.SpoolErr != "" || counter(mb.m.PausedPartitions) != 0 {
		t.Errorf("still reported: %+v, paused %v", s, counter(mb.m.PausedPartitions))
	}
}
