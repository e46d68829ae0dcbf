package consumer

import (
	"context"
	"fmt"
	"testing"
	"time"

	"hitship/state"
)

// TestCommittedPastLogEnd (issue #11): the group's committed offset is far past
// the partition's end (its log was truncated by an unclean leader election, or
// the topic re-created) and records are written below it. Every record is
// delivered: the worker finds the offset past the end, says so (error log,
// hitship_log_truncations_total), resumes where records may be new — with no
// reference time, the log start — and drops the replay state Redis holds for
// offsets it will read again: after a restart of the member, a stale
// dead-letter note does not swallow the bad record now at its offset, and a
// stale idle close does not close a window early. Before, the worker waited
// for the log to reach the committed offset and the records below it were
// never read.
func TestCommittedPastLogEnd(t *testing.T) {
	wd := newWorld(t, 1)
	ctx := context.Background()
	if err := wd.kafka.Commit(ctx, wGroup, wTopic, 0, 1000); err != nil {
		t.Fatal(err)
	}
	// Replay state of the lost log, as a previous owner left it.
	old := state.Owner{Generation: 0, Member: "old"}
	if err := wd.st.Claim(ctx, wTopic, 0, old); err != nil {
		t.Fatal(err)
	}
	if err := wd.st.NoteDeadLettered(ctx, wTopic, 0, []int64{35}); err != nil {
		t.Fatal(err)
	}
	if err := wd.st.RecordIdleClose(ctx, wTopic, 0, old, state.IdleClose{NextOffset: 40, Boundary: time.Now().UnixMilli() / 600_000 * 600_000}); err != nil {
		t.Fatal(err)
	}
	base := time.Now().Add(-24*time.Hour).Unix() / 600 * 600
	hits := func(from, to int) [][]byte {
		var recs [][]byte
		for i := from; i < to; i++ {
			if i == 5 || i == 35 {
				recs = append(recs, []byte("not json"))
				continue
			}
			recs = append(recs, hitAt(1, base+int64(i), fmt.Sprintf("h%d", i)))
		}
		return recs
	}
	wd.produce(0, hits(0, 30)...)

	a := wd.start("a", memberOpts{idle: time.Hour})
	waitUntil(t, 30*time.Second, "the records below the old committed offset read", func() bool {
		return counter(a.m.RecordsConsumed.WithLabelValues("0")) == 30
	})
	if n := counter(a.m.LogTruncations); n != 1 {
		t.Errorf("hitship_log_truncations_total = %v, want 1", n)
	}
	waitUntil(t, 10*time.Second, "the truncation point committed", func() bool { return wd.committed(wGroup)[0] == 0 })
	a.stop(t)

	// The next owner starts at the committed offset with what Redis holds.
	wd.produce(0, hits(30, 50)...)
	wd.produce(0, hitAt(1, base+600+61, "closer"))
	b := wd.start("b", memberOpts{idle: time.Hour})
	waitUntil(t, 30*time.Second, "the window closed and committed", func() bool { return wd.committed(wGroup)[0] == 50 })
	if n := counter(b.m.LateHits); n != 0 {
		t.Errorf("%v late hits: a stale idle close was applied", n)
	}
	got := wd.delivered()
	for i := 0; i < 50; i++ {
		if i != 5 && i != 35 && got[fmt.Sprintf("h%d", i)] != 1 {
			t.Errorf("hit h%d delivered %d times", i, got[fmt.Sprintf("h%d", i)])
		}
	}
	dl := wd.deadLetterOffsets()
	for _, o := range []string{"0/5", "0/35"} {
		if dl[o] != 1 {
			t.Errorf("the bad record at %s is %d times in the dead-letter topic", o, dl[o])
		}
	}
}

// TestTopicRecreatedMidRun (issue #11): the topic is deleted and created again
// while a member reads it; the worker's read offset is now past the new log's
// end. It resumes at the first record written after the newest one it read
// (less a minute) — here the new log's first — so every record of the new
// topic is delivered.
func TestTopicRecreatedMidRun(t *testing.T) {
	wd := newWorld(t, 1)
	base := time.Now().Add(-24*time.Hour).Unix() / 600 * 600
	var first [][]byte
	for i := 0; i < 40; i++ {
		first = append(first, hitAt(1, base+int64(i), fmt.Sprintf("old%d", i)))
	}
	first = append(first, hitAt(1, base+600+61, "old-closer"))
	wd.produce(0, first...)
	mb := wd.start("a", memberOpts{idle: time.Hour})
	waitUntil(t, 30*time.Second, "the first topic read", func() bool {
		return counter(mb.m.RecordsConsumed.WithLabelValues("0")) == float64(len(first))
	})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := wd.kafka.RecreateTopic(ctx, wTopic, 1); err != nil {
		t.Fatal(err)
	}
	var second [][]byte
	for i := 0; i < 20; i++ {
		second = append(second, hitAt(1, base+1200+int64(i), fmt.Sprintf("new%d", i)))
	}
	second = append(second, hitAt(1, base+1800+61, "new-closer"))
	wd.produce(0, second...)
	waitUntil(t, 40*time.Second, "the new topic's window delivered", func() bool {
		got := wd.delivered()
		for i := 0; i < 20; i++ {
			if got[fmt.Sprintf("new%d", i)] == 0 {
				return false
			}
		}
		return true
	})
	if n := counter(mb.m.LogTruncations); n < 1 {
		t.Errorf("hitship_log_truncations_total = %v, want at least 1", n)
	}
}
