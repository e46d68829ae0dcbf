package staging_test

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"runtime"
	"slices"
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
	again, err := c.Lease(ctx, "a:1:x", 0, time.Minute)
	if err != nil {
		t.Fatalf("lease after release: %v", err)
	}
	again() // its renewer stops (goleak)
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

// refEncode is the intent's offsets encoding written out plainly: base64 of
// each offset's unsigned varint difference to the one before (0 first).
func refEncode(offs []int64) string {
	var buf []byte
	prev := int64(0)
	for _, o := range offs {
		buf = binary.AppendUvarint(buf, uint64(o-prev))
		prev = o
	}
	return base64.StdEncoding.EncodeToString(buf)
}

// TestOffsetsRunsAndMerge: offsets held as runs encode exactly as the list
// they stand for (intents already written stay readable, and new ones read
// the same), merge overlapping and adjacent sets, and a run of four million
// offsets costs almost nothing: before, each took 8 bytes plus the slice's
// growth (25 bytes per record of assembly memory at 2 GiB).
func TestOffsetsRunsAndMerge(t *testing.T) {
	offs := []int64{3, 4, 5, 9, 10, 12, 100, 101, 102, 103}
	o := staging.Offsets{}
	for _, off := range offs {
		o.Add(1, off)
	}
	enc := o.Encode()
	if enc[0].Offsets != refEncode(offs) || enc[0].Count != len(offs) || enc[0].First != 3 || enc[0].Last != 103 {
		t.Fatalf("encoded %+v, want offsets %s", enc[0], refEncode(offs))
	}
	for off := int64(0); off < 110; off++ {
		if got, want := o.Has(1, off), slices.Contains(offs, off); got != want {
			t.Errorf("Has(1, %d) = %v, want %v", off, got, want)
		}
	}
	other := staging.Offsets{}
	for _, off := range []int64{1, 2, 6, 11, 50} {
		other.Add(1, off)
	}
	other.Add(2, 7)
	o.Merge(other)
	all := []int64{1, 2, 3, 4, 5, 6, 9, 10, 11, 12, 50, 100, 101, 102, 103}
	if enc := o.Encode(); len(enc) != 2 || enc[0].Offsets != refEncode(all) || o.Len() != len(all)+1 || !o.Has(2, 7) {
		t.Fatalf("merged %+v, want partition 1 = %v and (2, 7)", enc, all)
	}

	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	big := staging.Offsets{}
	for off := int64(0); off < 4_000_000; off++ {
		big.Add(0, off)
	}
	runtime.ReadMemStats(&after)
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 1<<20 || big.Len() != 4_000_000 || !big.Has(0, 3_999_999) {
		t.Errorf("four million consecutive offsets allocated %d bytes (len %d)", grown, big.Len())
	}
}
