package staging_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"hitship/internal/testenv"
	"hitship/staging"
)

func TestMarksNeverMoveBack(t *testing.T) {
	c := staging.NewCoord(testenv.MustRedis(t, testenv.RedisOptions{}).Client(), "t:", "g", "hits")
	ctx := context.Background()
	if err := c.Publish(ctx, map[int]int64{0: 600_000, 1: 1_200_000}); err != nil {
		t.Fatal(err)
	}
	if err := c.Publish(ctx, map[int]int64{0: 0, 1: 1_800_000}); err != nil {
		t.Fatal(err)
	}
	m, err := c.Marks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m[0] != 600_000 || m[1] != 1_800_000 {
		t.Errorf("marks %v", m)
	}
	if g, ok := staging.Complete(m, 2); !ok || g != 600_000 {
		t.Errorf("Complete = %d, %v; want the least mark", g, ok)
	}
	if _, ok := staging.Complete(m, 3); ok {
		t.Error("complete although partition 2 published nothing")
	}
}

func TestLeaseIsExclusive(t *testing.T) {
	c := staging.NewCoord(testenv.MustRedis(t, testenv.RedisOptions{}).Client(), "t:", "g", "hits")
	ctx := context.Background()
	release, err := c.Lease(ctx, "a:1:x", 0, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Lease(ctx, "a:1:x", 0, time.Minute); !errors.Is(err, staging.ErrLeaseHeld) {
		t.Fatalf("second lease: %v", err)
	}
	if r, err := c.Lease(ctx, "a:1:x", 600_000, time.Minute); err != nil {
		t.Fatalf("another window's lease: %v", err)
	} else {
		r()
	}
	release()
	if _, err := c.Lease(ctx, "a:1:x", 0, time.Minute); err != nil {
		t.Fatalf("lease after release: %v", err)
	}
}

func TestOffsetsRoundTrip(t *testing.T) {
	o := staging.Offsets{}
	for _, off := range []int64{0, 1, 5, 1 << 40} {
		o.Add(3, off)
	}
	o.Add(0, 7)
	enc := o.Encode()
	if len(enc) != 2 || enc[0].Partition != 0 || enc[1].First != 0 || enc[1].Last != 1<<40 || enc[1].Count != 4 {
		t.Fatalf("encoded %+v", enc)
	}
	back, err := staging.DecodeOffsets(enc)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Has(3, 5) || back.Has(3, 4) || !back.Has(0, 7) || back.Len() != 5 {
		t.Errorf("decoded %v", back)
	}
	enc[1].Count = 5
	if _, err := staging.DecodeOffsets(enc); err == nil {
		t.Error("a count that does not match its offsets was accepted")
	}
}

func TestSegmentKeyRoundTrip(t *testing.T) {
	l := staging.Layout{Prefix: "p/"}
	id := staging.SegmentID{CloseAt: 1687241400000, Target: "a b/c:1:00ff", Window: 1687240800000, Partition: 11, FirstOffset: 42, Digest: 0xdeadbeef}
	k := l.SegmentKey(id)
	back, err := l.ParseSegmentKey(k)
	if err != nil || back != id {
		t.Fatalf("%q parsed as %+v, %v", k, back, err)
	}
	if _, err := l.ParseSegmentKey("p/staging/seg/x"); err == nil {
		t.Error("a foreign key parsed")
	}
}

// TestLeaseRenewedWhileHeld: a lease outlives its TTL while its holder runs,
// and expires within the TTL once the holder is gone.
func TestLeaseRenewedWhileHeld(t *testing.T) {
	rdb := testenv.MustRedis(t, testenv.RedisOptions{}).Client()
	c := staging.NewCoord(rdb, "t:", "g", "hits")
	other := staging.NewCoord(rdb, "t:", "g", "hits")
	ctx, cancel := context.WithCancel(context.Background())
	release, err := c.Lease(ctx, "a:1:x", 0, 300*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if _, err := other.Lease(context.Background(), "a:1:x", 0, time.Minute); !errors.Is(err, staging.ErrLeaseHeld) {
		t.Fatalf("lease lost while its holder runs: %v", err)
	}
	cancel() // the holder dies: no renewal, no release
	time.Sleep(500 * time.Millisecond)
	r, err := other.Lease(context.Background(), "a:1:x", 0, time.Minute)
	if err != nil {
		t.Fatalf("lease of a dead holder not expired: %v", err)
	}
	r()
	release()
}
