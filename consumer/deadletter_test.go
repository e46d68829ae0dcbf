package consumer

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

// downDLQ is the real dead-letter writer with an outage switch: while down,
// writes fail without reaching the broker.
type downDLQ struct {
	DeadLetters
	down   atomic.Bool
	failed atomic.Int64
}

func (d *downDLQ) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	if d.down.Load() {
		d.failed.Add(1)
		return errors.New("dead-letter topic unavailable (test outage)")
	}
	return d.DeadLetters.WriteMessages(ctx, msgs...)
}

// deadLetterOffsets reads the dead-letter topic: how often each source
// (partition, offset) is in it.
func (wd *world) deadLetterOffsets() map[string]int {
	wd.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msgs, err := wd.kafka.ReadAll(ctx, wDLQ)
	if err != nil {
		wd.t.Fatal(err)
	}
	n := map[string]int{}
	for _, m := range msgs {
		var p, o string
		for _, h := range m.Headers {
			switch h.Key {
			case "hitship_source_partition":
				p = string(h.Value)
			case "hitship_source_offset":
				o = string(h.Value)
			}
		}
		n[p+"/"+o]++
	}
	return n
}

// TestDeadLetterOutageCommitsGoOn (issue #11, defect 9): the dead-letter topic
// is down while one partition has 2,000 bad records. That partition stops
// fetching (back-pressure) without holding its lock; the other partition's
// commits go on. Before, the worker blocked on the full dead-letter channel
// holding the partition lock the committer needs, and every commit of the
// member stopped. When the topic is back, every bad record is dead-lettered
// once and the partition commits to its end.
func TestDeadLetterOutageCommitsGoOn(t *testing.T) {
	wd := newWorld(t, 2)
	var dlq *downDLQ
	bad := make([][]byte, 2000)
	for i := range bad {
		bad[i] = []byte("not json " + strconv.Itoa(i))
	}
	wd.produce(0, bad...)
	mb := wd.start("a", memberOpts{idle: time.Hour, deadLetters: func(w DeadLetters) DeadLetters {
		dlq = &downDLQ{DeadLetters: w}
		dlq.down.Store(true)
		return dlq
	}})
	waitUntil(t, 20*time.Second, "the bad records read and the partition paused", func() bool {
		return counter(mb.m.RecordsConsumed.WithLabelValues("0")) >= maxUnackedDeadLetters && counter(mb.m.PausedPartitions) == 1
	})
	if dlq.failed.Load() == 0 {
		t.Fatal("no dead-letter write failed")
	}
	base := time.Now().Add(-24*time.Hour).Unix() / 600 * 600
	for i := 0; i < 3; i++ {
		wd.produce(1, windowHits(2, base+int64(i)*600, 10, fmt.Sprintf("w%d", i))...)
		want := wd.committed(wGroup)[1]
		waitUntil(t, 15*time.Second, fmt.Sprintf("partition 1 committing past %d during the dead-letter outage", want), func() bool {
			return wd.committed(wGroup)[1] > want
		})
	}
	if c := wd.committed(wGroup)[0]; c != 0 {
		t.Fatalf("partition 0 committed %d past unacknowledged dead letters", c)
	}

	dlq.down.Store(false)
	waitUntil(t, 30*time.Second, "partition 0 committed to its end", func() bool { return wd.committed(wGroup)[0] == int64(len(bad)) })
	if got := counter(mb.m.PausedPartitions); got != 0 {
		t.Fatalf("paused partitions %v after the outage", got)
	}
	n := wd.deadLetterOffsets()
	for i := range bad {
		if c := n["0/"+strconv.Itoa(i)]; c != 1 {
			t.Fatalf("bad record at offset %d is %d times in the dead-letter topic", i, c)
		}
	}
}

// slowAckDLQ is the real dead-letter writer whose acknowledgement comes late:
// the write reaches the broker, then the answer takes delay; a context that
// ends meanwhile gets its error, as from a writer whose ack was still on its
// way when the caller gave up.
type slowAckDLQ struct {
	DeadLetters
	delay  time.Duration
	writes atomic.Int64
}

func (d *slowAckDLQ) WriteMessages(ctx context.Context, msgs ...kafka.Message) error {
	if err := d.DeadLetters.WriteMessages(ctx, msgs...); err != nil {
		return err
	}
	d.writes.Add(1)
	select {
	case <-time.After(d.delay):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestDeadLettersOnceAcrossRebalances (issue #11, defect 12): bad records
// flow while members join and leave (Redis up, nobody crashes). A dead-letter
// write in flight when a rebalance ends the generation finishes, with its
// Redis note, on a context of its own, so the next owner does not send those
// records again: the dead-letter topic holds each bad record exactly once.
// Before, the write and the note ran on the generation's context, and the
// records the topic had taken were sent again by the next owner.
func TestDeadLettersOnceAcrossRebalances(t *testing.T) {
	wd := newWorld(t, 2)
	slow := func(w DeadLetters) DeadLetters { return &slowAckDLQ{DeadLetters: w, delay: 700 * time.Millisecond} }
	a := wd.start("a", memberOpts{idle: time.Hour, deadLetters: slow})
	total := 0
	round := func() {
		for p := 0; p < 2; p++ {
			var bad [][]byte
			for i := 0; i < 20; i++ {
				bad = append(bad, []byte(fmt.Sprintf("bad %d/%d", p, total+i)))
			}
			wd.produce(p, bad...)
		}
		total += 20
		time.Sleep(300 * time.Millisecond)
	}
	waitUntil(t, 20*time.Second, "member a in the group", func() bool { return a.c.Assigned() == 2 })
	for i := 0; i < 4; i++ {
		round()
	}
	b := wd.start("b", memberOpts{idle: time.Hour, deadLetters: slow}) // a rebalance while writes are in flight
	for i := 0; i < 8; i++ {
		round()
	}
	b.stop(t) // and another
	for i := 0; i < 4; i++ {
		round()
	}
	waitUntil(t, 40*time.Second, "every partition committed to its end", func() bool {
		c := wd.committed(wGroup)
		return c[0] == int64(total) && c[1] == int64(total)
	})
	n := wd.deadLetterOffsets()
	dups := 0
	for p := 0; p < 2; p++ {
		for o := 0; o < total; o++ {
			switch c := n[fmt.Sprintf("%d/%d", p, o)]; {
			case c == 0:
				t.Errorf("bad record %d/%d is not in the dead-letter topic", p, o)
			case c > 1:
				dups += c - 1
			}
		}
	}
	if dups > 0 {
		t.Fatalf("%d extra dead letters after two rebalances", dups)
	}
}
