package consumer

import (
	"sync"
	"sync/atomic"
	"time"
)

// lagState feeds a partition's hitship_consumer_lag_records and
// hitship_oldest_uncommitted_record_age_seconds. The fetch loop notes the
// high-water mark of every record and, once per second of Kafka time, an
// (offset, timestamp) sample; the committer reads them at every tick. The age
// of the oldest uncommitted record is therefore known to within a second of
// Kafka time, for the price of one comparison per record.
type lagState struct {
	high    atomic.Int64 // partition high-water mark from the last fetch; 0 before it
	lastSec int64        // fetch loop only: second of the last sample

	mu      sync.Mutex
	samples []timeSample // increasing offsets
}

type timeSample struct {
	offset int64
	unix   int64 // Kafka timestamp, seconds
}

// maxTimeSamples bounds the samples of one partition (about an hour of Kafka
// time with no commit); past it the oldest are thinned out, which only makes
// the age coarser.
const maxTimeSamples = 4096

// observe notes a fetched record. Fetch loop only.
func (l *lagState) observe(offset, high int64, ts time.Time) {
	l.high.Store(high)
	sec := ts.Unix()
	if sec == l.lastSec {
		return
	}
	l.lastSec = sec
	l.mu.Lock()
	if len(l.samples) >= maxTimeSamples {
		// Keep every other sample of the older half.
		half := len(l.samples) / 2
		k := 0
		for i := 0; i < half; i += 2 {
			l.samples[k] = l.samples[i]
			k++
		}
		k += copy(l.samples[k:], l.samples[half:])
		l.samples = l.samples[:k]
	}
	l.samples = append(l.samples, timeSample{offset: offset, unix: sec})
	l.mu.Unlock()
}

// oldest returns the Kafka time (Unix seconds) of the record at offset as
// estimated from the samples (the latest sample at or before offset), and
// drops the samples before it. ok is false when nothing was sampled there.
func (l *lagState) oldest(offset int64) (unix int64, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := 0
	for i < len(l.samples) && l.samples[i].offset <= offset {
		i++
	}
	if i == 0 {
		return 0, false
	}
	unix = l.samples[i-1].unix
	l.samples = l.samples[:copy(l.samples, l.samples[i-1:])]
	return unix, true
}

// reportLag sets the partition's lag gauges at a commit tick: lag is the
// high-water mark minus the committed offset; the oldest uncommitted record
// is the one at the committed offset if it was read, else there is none.
// Committer only.
func (w *worker) reportLag(now time.Time) {
	w.mu.Lock()
	committed, next := w.committed, w.next
	w.mu.Unlock()
	high := w.lag.high.Load()
	if high <= 0 || committed < 0 {
		return
	}
	m := w.c.deps.Metrics
	m.ConsumerLag.WithLabelValues(w.partLabel).Set(float64(max(high-committed, 0)))
	age := 0.0
	if committed < next {
		if unix, ok := w.lag.oldest(committed); ok {
			age = max(float64(now.Unix()-unix), 0)
		}
	}
	m.OldestUncommittedAge.WithLabelValues(w.partLabel).Set(age)
}

// forgetLag removes the partition's lag series when this replica no longer
// owns it, so that the sum over replicas counts each partition once.
func (w *worker) forgetLag() {
	m := w.c.deps.Metrics
	m.ConsumerLag.DeleteLabelValues(w.partLabel)
	m.OldestUncommittedAge.DeleteLabelValues(w.partLabel)
}
