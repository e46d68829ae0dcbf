package consumer

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// windowHits returns n hits of client in the 10-minute window starting at
// start (Unix s), then one hit 61 s into the next window, whose watermark
// (less the 1-minute grace) closes the window.
func windowHits(client, start int64, n int, tag string) [][]byte {
	var out [][]byte
	for i := 0; i < n; i++ {
		out = append(out, hitAt(client, start+int64(i), fmt.Sprintf("%s-%d", tag, i)))
	}
	return append(out, hitAt(client, start+600+61, tag+"-closer"))
}

// TestRedisFlushKeepsConsuming (issue #11, defect 2): FLUSHALL while records
// flow. The workers find their owner keys gone, claim their partitions again
// and go on: objects keep arriving and offsets keep being committed. Before,
// a missing key read as "another owner": every upload was aborted and nothing
// committed again (busy partitions make no idle close, the only path that
// ended the generation).
func TestRedisFlushKeepsConsuming(t *testing.T) {
	wd := newWorld(t, 2)
	// A long idle timeout: the partitions are busy, no idle close happens.
	wd.start("a", memberOpts{idle: time.Hour})
	base := time.Now().Add(-24*time.Hour).Unix() / 600 * 600
	for p := 0; p < 2; p++ {
		wd.produce(p, windowHits(int64(p+1), base, 20, fmt.Sprintf("p%d-w0", p))...)
	}
	waitUntil(t, 30*time.Second, "the first window's objects and commits", func() bool {
		c := wd.committed(wGroup)
		return len(wd.store.Keys()) >= 2 && c[0] > 0 && c[1] > 0
	})
	before := wd.committed(wGroup)
	objs := len(wd.store.Keys())

	if err := wd.redis.Client().FlushAll(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	flushed := time.Now()
	// Records go on arriving; the window of the closer hits closes with them.
	for i := 1; i <= 3; i++ {
		time.Sleep(700 * time.Millisecond)
		for p := 0; p < 2; p++ {
			wd.produce(p, windowHits(int64(p+1), base+int64(i)*600+61, 20, fmt.Sprintf("p%d-w%d", p, i))...)
		}
	}
	waitUntil(t, 15*time.Second, "objects and commits after FLUSHALL", func() bool {
		c := wd.committed(wGroup)
		return len(wd.store.Keys()) >= objs+4 && c[0] > before[0] && c[1] > before[1]
	})
	t.Logf("objects and commits resumed %s after FLUSHALL", time.Since(flushed).Round(100*time.Millisecond))
	// The owner keys are back: the workers claimed their partitions again.
	for p := 0; p < 2; p++ {
		n, err := wd.redis.Client().Exists(context.Background(), fmt.Sprintf("hitship:{%s:%s:%d}:owner", wGroup, wTopic, p)).Result()
		if err != nil || n != 1 {
			t.Fatalf("partition %d: owner key exists = %d, %v", p, n, err)
		}
	}
	// Every hit is delivered once.
	for id, n := range wd.delivered() {
		if n != 1 {
			t.Errorf("hit %s delivered %d times", id, n)
		}
	}
}
