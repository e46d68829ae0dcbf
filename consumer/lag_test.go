package consumer

import (
	"testing"
	"time"
)

func TestLagStateOldest(t *testing.T) {
	var l lagState
	base := time.Unix(1_687_240_800, 0)
	// Ten records per second of Kafka time, offsets 100..199.
	for i := range 100 {
		l.observe(int64(100+i), 500, base.Add(time.Duration(i)*100*time.Millisecond))
	}
	if got := l.high.Load(); got != 500 {
		t.Fatalf("high-water mark %d, want 500", got)
	}
	if len(l.samples) != 10 {
		t.Fatalf("%d samples, want one per second (10)", len(l.samples))
	}
	tests := []struct {
		name   string
		offset int64
		want   int64
		ok     bool
	}{
		{name: "before the first sample", offset: 99, ok: false},
		{name: "first record", offset: 100, want: base.Unix(), ok: true},
		{name: "inside the 4th second", offset: 135, want: base.Unix() + 3, ok: true},
		{name: "same again (samples before it were dropped)", offset: 135, want: base.Unix() + 3, ok: true},
		{name: "last second", offset: 199, want: base.Unix() + 9, ok: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := l.oldest(tc.offset)
			if ok != tc.ok || got != tc.want {
				t.Fatalf("oldest(%d) = %d, %v; want %d, %v", tc.offset, got, ok, tc.want, tc.ok)
			}
		})
	}
	if len(l.samples) != 1 {
		t.Fatalf("%d samples kept after the last commit point, want 1", len(l.samples))
	}
}

// TestLagStateBounded: without commits the samples stay bounded and still
// answer with a time at or before the record's.
func TestLagStateBounded(t *testing.T) {
	var l lagState
	base := time.Unix(1_000_000, 0)
	for i := range 3 * maxTimeSamples {
		l.observe(int64(i), int64(i+1), base.Add(time.Duration(i)*time.Second))
	}
	if len(l.samples) > maxTimeSamples {
		t.Fatalf("%d samples, want at most %d", len(l.samples), maxTimeSamples)
	}
	for i := 1; i < len(l.samples); i++ {
		if l.samples[i].offset <= l.samples[i-1].offset {
			t.Fatalf("samples out of order at %d: %v then %v", i, l.samples[i-1], l.samples[i])
		}
	}
	off := int64(maxTimeSamples)
	got, ok := l.oldest(off)
	if !ok || got > base.Unix()+off {
		t.Fatalf("oldest(%d) = %d, %v; want a time at or before %d", off, got, ok, base.Unix()+off)
	}
}
