package staging

import (
	"sync"
	"sync/atomic"
	"testing"
)

// TestQueueBoundsGoroutinesAndRunsAll: 1,000 functions pushed at once run on
// at most max goroutines, all of them, each once.
func TestQueueBoundsGoroutinesAndRunsAll(t *testing.T) {
	q := newQueue(4)
	var running, peak, ran atomic.Int64
	release := make(chan struct{})
	var wg sync.WaitGroup
	const n = 1000
	wg.Add(n)
	for range n {
		q.push(func() {
			defer wg.Done()
			r := running.Add(1)
			for p := peak.Load(); r > p && !peak.CompareAndSwap(p, r); p = peak.Load() {
			}
			<-release
			ran.Add(1)
			running.Add(-1)
		})
	}
	if w := q.waiting(); w != n-4 {
		t.Fatalf("%d waiting, want %d (4 running)", w, n-4)
	}
	close(release)
	wg.Wait()
	if ran.Load() != n || peak.Load() > 4 {
		t.Fatalf("ran %d of %d, at most %d at once; want all, at most 4", ran.Load(), n, peak.Load())
	}
	// Idle again: the next push starts a goroutine.
	done := make(chan struct{})
	q.push(func() { close(done) })
	<-done
}
