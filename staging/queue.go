package staging

import "sync"

// queue runs the functions pushed to it in FIFO order on at most max
// goroutines, started on demand and ended when nothing waits. A pending
// function is a closure in a slice, not a parked goroutine: with 1,000
// tenants a backlog queues thousands of segments and windows, and a goroutine
// each (stacks for the GC to scan) took most of the CPU (bench/README.md).
type queue struct {
	mu      sync.Mutex
	pending []func()
	head    int
	running int
	max     int
}

func newQueue(max int) *queue { return &queue{max: max} }

// push queues f; it never blocks.
func (q *queue) push(f func()) {
	q.mu.Lock()
	if q.running < q.max {
		q.running++
		q.mu.Unlock()
		go q.run(f)
		return
	}
	q.pending = append(q.pending, f)
	q.mu.Unlock()
}

func (q *queue) run(f func()) {
	for {
		f()
		q.mu.Lock()
		if q.head == len(q.pending) {
			q.pending, q.head = q.pending[:0], 0
			q.running--
			q.mu.Unlock()
			return
		}
		f = q.pending[q.head]
		q.pending[q.head] = nil
		q.head++
		if q.head >= 1024 && 2*q.head >= len(q.pending) { // never empty: keep it from growing
			n := copy(q.pending, q.pending[q.head:])
			clear(q.pending[n:])
			q.pending, q.head = q.pending[:n], 0
		}
		q.mu.Unlock()
	}
}

// waiting is the number of functions queued and not started.
func (q *queue) waiting() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.pending) - q.head
}
