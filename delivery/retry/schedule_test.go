package retry

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"
)

// wantOffsets are the 17 attempt times, in seconds after the first upload,
// when every attempt fails at once: DESIGN §5.
var wantOffsets = []int{
	0, 1, 4, 9, 19, 29, // cycle 1: +1 +3 +5 +10 +10 s
	29, 30, 33, 38, 68, // cycle 2: +0 +1 +3 +5 +30 s
	128, 188, 368, 668, 1268, 3068, // cycle 3: +1 +1 +3 +5 +10 +30 min
}

func TestScheduleTimes(t *testing.T) {
	start := time.Date(2023, 6, 20, 6, 0, 0, 0, time.UTC)
	at := start
	p := First
	var got []time.Time
	var positions []Position
	for {
		got = append(got, at)
		positions = append(positions, p)
		delay, next, ok := Next(p)
		if !ok {
			break
		}
		if Inline(next) != (next.Cycle == 1) {
			t.Errorf("Inline(%s) = %v", next, Inline(next))
		}
		at, p = at.Add(delay), next
	}
	if len(got) != Attempts || len(got) != len(wantOffsets) {
		t.Fatalf("%d attempts, want %d", len(got), Attempts)
	}
	for i, off := range wantOffsets {
		want := start.Add(time.Duration(off) * time.Second)
		if !got[i].Equal(want) {
			t.Errorf("attempt %d (%s) at %s, want %s", i+1, positions[i], got[i].Format(time.TimeOnly), want.Format(time.TimeOnly))
		}
		if positions[i].Index() != i+1 {
			t.Errorf("attempt %d: Index() = %d", i+1, positions[i].Index())
		}
	}
	if p != Last {
		t.Errorf("last position %s, want %s", p, Last)
	}
	if total := got[len(got)-1].Sub(start); total != 51*time.Minute+8*time.Second {
		t.Errorf("schedule spans %s, want 51m8s", total)
	}
}

func TestNext(t *testing.T) {
	tests := []struct {
		name      string
		p         Position
		wantDelay time.Duration
		wantNext  Position
		wantOK    bool
	}{
		{name: "first retry", p: First, wantDelay: time.Second, wantNext: Position{1, 2}, wantOK: true},
		{name: "end of cycle 1 parks at once", p: Position{1, 6}, wantDelay: 0, wantNext: Position{2, 1}, wantOK: true},
		{name: "end of cycle 2", p: Position{2, 5}, wantDelay: time.Minute, wantNext: Position{3, 1}, wantOK: true},
		{name: "before the last", p: Position{3, 5}, wantDelay: 30 * time.Minute, wantNext: Last, wantOK: true},
		{name: "after the last: dead letter", p: Last},
		{name: "attempt past cycle 2", p: Position{2, 6}},
		{name: "cycle 0", p: Position{0, 1}},
		{name: "cycle 4", p: Position{4, 1}},
		{name: "attempt 0", p: Position{1, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, n, ok := Next(tt.p)
			if d != tt.wantDelay || n != tt.wantNext || ok != tt.wantOK {
				t.Fatalf("Next(%s) = %s, %s, %v; want %s, %s, %v", tt.p, d, n, ok, tt.wantDelay, tt.wantNext, tt.wantOK)
			}
		})
	}
}

func TestInline(t *testing.T) {
	tests := []struct {
		name string
		p    Position
		want bool
	}{
		{name: "first", p: First, want: true},
		{name: "last of cycle 1", p: Position{1, 6}, want: true},
		{name: "cycle 2", p: Position{2, 1}, want: false},
		{name: "cycle 3", p: Last, want: false},
		{name: "invalid", p: Position{1, 7}, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Inline(tt.p); got != tt.want {
				t.Fatalf("Inline(%s) = %v, want %v", tt.p, got, tt.want)
			}
		})
	}
}

// TestRunSynctest runs the whole schedule on the fake clock of a synctest
// bubble: the 17 attempts happen at exactly the promised times, and after
// the last Run reports exhaustion with the last error.
func TestRunSynctest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		var offsets []int
		var positions []Position
		boom := errors.New("503 SlowDown")
		last, err := Run(t.Context(), RealClock{}, First, nil, func(ctx context.Context, p Position) error {
			d := time.Since(start)
			if d%time.Second != 0 {
				t.Errorf("attempt %s at %s, not on a second", p, d)
			}
			offsets = append(offsets, int(d/time.Second))
			positions = append(positions, p)
			return boom
		})
		if !IsExhausted(err) || !errors.Is(err, boom) {
			t.Fatalf("Run err = %v, want exhausted wrapping %v", err, boom)
		}
		if last != Last {
			t.Fatalf("last = %s, want %s", last, Last)
		}
		if fmt.Sprint(offsets) != fmt.Sprint(wantOffsets) {
			t.Fatalf("attempt offsets (s)\n got %v\nwant %v", offsets, wantOffsets)
		}
		if time.Since(start) != 3068*time.Second {
			t.Fatalf("Run returned at +%s, want right after the last attempt", time.Since(start))
		}
		for i, p := range positions {
			if p.Index() != i+1 {
				t.Errorf("attempt %d at %s", i+1, p)
			}
		}
	})
}

func TestRunInlineCycle(t *testing.T) {
	tests := []struct {
		name      string
		succeedAt int // 1-based attempt that succeeds; 0: none
		wantLast  Position
		wantErr   bool
		wantSince time.Duration
	}{
		{name: "first attempt succeeds", succeedAt: 1, wantLast: First, wantSince: 0},
		{name: "third attempt succeeds", succeedAt: 3, wantLast: Position{1, 3}, wantSince: 4 * time.Second},
		{name: "cycle 1 exhausted, park", succeedAt: 0, wantLast: Position{1, 6}, wantErr: true, wantSince: 29 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				n := 0
				last, err := Run(t.Context(), RealClock{}, First, Inline, func(context.Context, Position) error {
					n++
					if n == tt.succeedAt {
						return nil
					}
					return errors.New("AccessDenied")
				})
				if (err != nil) != tt.wantErr || (err != nil && !IsExhausted(err)) {
					t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
				}
				if last != tt.wantLast {
					t.Fatalf("last = %s, want %s", last, tt.wantLast)
				}
				if got := time.Since(start); got != tt.wantSince {
					t.Fatalf("Run took %s, want %s", got, tt.wantSince)
				}
				if tt.wantErr {
					if d, next, _ := Next(last); d != 0 || next != (Position{2, 1}) {
						t.Fatalf("after cycle 1: Next = %s, %s; want park due now at 2/1", d, next)
					}
				}
			})
		})
	}
}

func TestRunCancelled(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		go func() {
			time.Sleep(2 * time.Second) // during the 3s wait before attempt 3
			cancel()
		}()
		n := 0
		last, err := Run(ctx, RealClock{}, First, nil, func(context.Context, Position) error {
			n++
			return errors.New("fail")
		})
		if !errors.Is(err, context.Canceled) || IsExhausted(err) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if n != 2 || last != (Position{1, 2}) {
			t.Fatalf("%d attempts, last %s; want 2, 1/2", n, last)
		}
	})
}

func FuzzNext(f *testing.F) {
	f.Add(1, 1)
	f.Add(3, 6)
	f.Add(-1, 1000)
	f.Fuzz(func(t *testing.T, c, a int) {
		p := Position{Cycle: c, Attempt: a}
		d, n, ok := Next(p)
		if !ok {
			if p.Valid() && p != Last {
				t.Fatalf("Next(%s) not ok for a valid non-last position", p)
			}
			return
		}
		if !p.Valid() || !n.Valid() || d < 0 || n.Index() != p.Index()+1 {
			t.Fatalf("Next(%s) = %s, %s", p, d, n)
		}
	})
}

func ExampleNext() {
	p := First
	for {
		d, next, ok := Next(p)
		if !ok {
			fmt.Printf("after %s: dead letter\n", p)
			return
		}
		if next.Attempt == 1 {
			fmt.Printf("cycle %d starts %s after %s\n", next.Cycle, d, p)
		}
		p = next
	}
	// Output:
	// cycle 2 starts 0s after 1/6
	// cycle 3 starts 1m0s after 2/5
	// after 3/6: dead letter
}
