package consumer

import "sync"

// tracker knows, for one partition, which offsets still hold the commit: the first
// offsets of buffers that are open or closed-but-undelivered, and the offsets of
// dead letters not yet acknowledged. Several buffers may share a first offset (a
// record routed to several integrations), so it counts. Safe for concurrent use.
type tracker struct {
	mu      sync.Mutex
	pending map[int64]int
	next    int64 // offset after the last record read
}

func newTracker(start int64) *tracker {
	return &tracker{pending: make(map[int64]int), next: start}
}

// hold adds one holder at offset.
func (t *tracker) hold(offset int64) {
	t.mu.Lock()
	t.pending[offset]++
	t.mu.Unlock()
}

// release removes one holder at offset.
func (t *tracker) release(offset int64) {
	t.mu.Lock()
	if n := t.pending[offset]; n <= 1 {
		delete(t.pending, offset)
	} else {
		t.pending[offset] = n - 1
	}
	t.mu.Unlock()
}

// read records that every offset before next has been read.
func (t *tracker) read(next int64) {
	t.mu.Lock()
	t.next = next
	t.mu.Unlock()
}

// committable is the smallest held offset, or the offset after the last record read.
func (t *tracker) committable() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	c := t.next
	for o := range t.pending {
		if o < c {
			c = o
		}
	}
	return c
}
