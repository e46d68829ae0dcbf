package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"hitship/delivery"
	"hitship/hit"
	"hitship/integrations"
	"hitship/sink"
	"hitship/state"
	"hitship/window"
)

// bufState is what a worker hangs on a window.Buffer.
type bufState struct {
	target *integrations.Target
	w      *window.Buffer
	buf    *sink.Buffer
	// digest names the records appended so far (sink.DigestOffset over their
	// offsets): the object's key carries it, so that an object with other
	// records never takes the key of one already written.
	digest uint64
}

// worker consumes one partition for one generation. The fetch loop and the ticker
// (idle closes, commit preparation) share the window state under mu; deliveries
// report back through the tracker, which has its own lock. Nothing that waits for
// Redis, Kafka or a delivery holds mu: the committer needs it at every tick.
type worker struct {
	c         *Consumer
	topic     string
	partition int
	owner     state.Owner
	// inc is the topic's incarnation and st the partition state of it (see
	// Deps.StateFor); seed starts every buffer's digest (digestSeed).
	inc       string
	st        PartitionState
	seed      uint64
	log       *slog.Logger
	partLabel string
	consumed  prometheus.Counter // this partition's records-consumed series, looked up once

	mu      sync.Mutex
	part    *window.Partition
	tr      *tracker
	open    map[*window.Buffer]*bufState
	scratch []byte
	idle    []state.IdleClose // recorded idle closes not yet reached by the replay
	// deadDone are offsets at or after the start whose bad records an earlier
	// owner already had acknowledged by the dead-letter topic: a replay does
	// not send them again.
	deadDone map[int64]struct{}
	next     int64 // offset after the last record read; -1 before the first
	// The idle clock, without a time.Now per record: process counts records, the
	// ticker notes when the count last changed. It runs only while the partition
	// is caught up (its last record was at the high-water mark) and the fetch loop
	// is not held (idle.go).
	received  uint64
	seen      uint64
	quietFrom time.Time
	caughtUp  bool
	held      bool
	// spoolHeldSince: the fetch loop has been held by a full spool since then
	// (zero: it is not); see pressureClose.
	spoolHeldSince time.Time
	fatal          error

	// Replay memory: what this worker knows of the replay state at and after
	// its committed offset, to restart on it (a spool error, restart.go) or to
	// write it back after Redis lost it (owner.go). Under mu.
	lastSnap []byte            // the snapshot saved for committed (nil: the empty state)
	taken    []state.IdleClose // idle closes at NextOffset >= committed, loaded or recorded
	// mustCommit: committed was set by a restart below what Kafka holds (a log
	// truncation); the next committable offset is committed even if equal.
	mustCommit bool
	// epoch counts the window states begin built; a commit prepared in one
	// epoch does not make a later one forget (committedAt).
	epoch uint64

	// idle close on its way to Redis (idle.go). Under mu.
	idlePending  *state.IdleClose
	idleDoubt    bool      // the last attempt may have recorded it: never drop it
	doubtRetryAt time.Time // the next attempt while in doubt (real clock: a backoff)
	doubtBackoff time.Duration
	idleMu       sync.Mutex // one attempt at a time

	// deliverCtx is what deliveries run under: the run's, not the fetch loop's, so
	// that a clean stop lets closed buffers finish uploading. A local restart
	// cancels it after its grace (restart.go).
	deliverCtx context.Context

	committed int64 // last committed offset; the committer writes it under mu
	// undelivered counts this partition's closed buffers handed to the delivery
	// and not done yet (the fetch loop holds past maxUndelivered, worker.hold).
	undelivered atomic.Int64
	// ownsUntil (Unix ns) caches a positive ownership answer (or a Redis error) for fenceCacheTTL;
	// fenced is final once Redis said another generation owns the partition.
	ownsUntil atomic.Int64
	fenced    atomic.Bool
	reclaimMu sync.Mutex
	// abort ends the worker's run with a cause (fenced): set once by run before
	// anything can call it.
	abort context.CancelCauseFunc
	// stopFetch ends the current life's fetch loop (under mu; spoolFailed).
	stopFetch context.CancelCauseFunc
	lag       lagState
	inflight  sync.WaitGroup
	dl        deadLetterQueue
	// staging holds, with staged delivery, the CloseAt of every closed buffer
	// handed to the delivery and not yet staged (stagedMark); stagingFailed
	// those whose staging failed (the worker restarts, or stops), until the
	// next life begins and stages them again.
	stagingMu     sync.Mutex
	staging       map[uint64]int64
	stagingFailed map[uint64]int64
	stagingSeq    uint64
	tag           []byte // the offset of the record being appended, in decimal (staged)

	// spool is the state of a spool-error episode (restart.go).
	spool spoolTrouble

	// idleRetryAt: after Redis failed to record an idle close, the ticker does not
	// ask again before this time.
	idleRetryAt time.Time
	// lastRead is the Kafka time of the newest record read (fetch loop only): a
	// log truncation resumes at the first record written after it (truncate.go).
	lastRead time.Time

	// Routing (membership.go). The fetch goroutine alone uses these, except
	// curSet (read by the committer), routeTouchedAt (the committer's) and
	// routeHist.
	mem            *membership
	liveSeen       *integrations.RouteSet // the live set last found equal to mem, or adopted
	routeLog       []loggedRoute          // recorded changes not reached yet
	replayEnd      int64                  // live changes are adopted from this offset on
	needHWM        bool                   // replayEnd waits for the first fetched high-water mark
	routeRetryAt   time.Time              // after Redis failed to record a change
	routeDegraded  bool
	readMark       int64                  // the read mark recorded (fetch loop only)
	deferBase      bool                   // the start's conservative membership is not recorded yet
	baseOffset     int64                  // the start offset it is recorded at
	deferSet       *integrations.RouteSet // the set it routes with meanwhile
	readMarkAt     time.Time              // when a failed read-mark write may be tried again
	readMarkLost   atomic.Bool            // Redis lost the mark: record it again
	curSet         atomic.Pointer[routeSetRef]
	routeTouchedAt time.Time
	loggedRemoved  map[string]bool // removed target IDs already logged
	// routeHist is the routing log as this worker knows it (loaded at start,
	// recorded since), oldest first, from the latest entry at or below the
	// committed offset: what a restart replans from and a re-claim writes
	// back. Under routeMu.
	routeMu   sync.Mutex
	routeHist []loggedRoute
}

// start claims the partition, restores the window state saved at the committed
// offset and loads the recorded idle closes after it. While Redis is unreachable it
// waits with backoff (logged as degraded) until Redis answers or ctx ends: without
// the claim and the replay state the worker could neither fence a zombie nor replay
// exactly. A refused claim (IsFenced) returns at once.
func (w *worker) start(ctx context.Context, offset int64) error {
	var (
		data []byte
		ok   bool
		idle []state.IdleClose
		dead []int64
		plan routePlan
	)
	if w.st == nil { // built without a generation's binding (tests)
		w.st = w.c.deps.State
	}
	w.seed = digestSeed(w.inc)
	err := w.waitRedis(ctx, func(ctx context.Context) error {
		if err := w.st.Claim(ctx, w.topic, w.partition, w.owner); err != nil {
			return fmt.Errorf("claim partition %d: %w", w.partition, err)
		}
		var err error
		from := max(offset, 0)
		if offset >= 0 {
			if data, ok, err = w.st.LoadSnapshot(ctx, w.topic, w.partition, offset); err != nil {
				return fmt.Errorf("load window snapshot at offset %d: %w", offset, err)
			}
		}
		// From the start too: an earlier owner may have closed windows on idle and
		// died before its first commit; the replay must close at the same places.
		if idle, err = w.st.IdleCloses(ctx, w.topic, w.partition, from); err != nil {
			return fmt.Errorf("load idle closes from offset %d: %w", from, err)
		}
		if dead, err = w.st.DeadLettered(ctx, w.topic, w.partition, from); err != nil {
			return fmt.Errorf("load dead letters from offset %d: %w", from, err)
		}
		if plan, err = w.loadRoutes(ctx, offset); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}
	if offset >= 0 && !ok {
		data, ok = w.awaitSnapshot(ctx, offset)
	}
	if !ok {
		data = nil
	}
	// The committer reads this state (prepareCommit) from its first tick on.
	w.mu.Lock()
	defer w.mu.Unlock()
	w.committed = max(offset, -1) // kafka-go says -2 (FirstOffset) for "nothing committed"
	return w.begin(w.committed, data, idle, dead, plan, true)
}

// begin builds the window state at offset (nothing committed when < 0) from
// the snapshot data (nil: empty) and the recorded idle closes and dead letters
// at or after it, installs the routing plan (membership.go), and sets the
// tracker there. start and restart use it; logged says whether a missing or
// unusable snapshot is worth a warning. Called with mu held.
func (w *worker) begin(offset int64, data []byte, idle []state.IdleClose, dead []int64, plan routePlan, logged bool) error {
	var err error
	w.epoch++
	w.tr = newTracker(offset)
	w.open = make(map[*window.Buffer]*bufState)
	w.next = -1
	w.quietFrom = w.c.now()
	w.received, w.seen = 0, 0
	w.caughtUp = false
	w.fatal = nil
	w.stagingMu.Lock()
	w.stagingFailed = nil // their records are read again in this life
	w.stagingMu.Unlock()
	w.idle = slices.Clone(idle)
	w.taken = slices.Clone(idle)
	w.deadDone = make(map[int64]struct{}, len(dead))
	for _, o := range dead {
		w.deadDone[o] = struct{}{}
	}
	w.dl.resetAcked(dead)
	w.lastSnap = nil
	w.applyPlan(plan)
	if offset < 0 { // nothing committed yet: a fresh partition, an empty state
		w.part, err = window.NewPartition(w.c.cfg.Window)
		return err
	}
	w.next = offset
	ok := data != nil
	if ok {
		var s window.Snapshot
		if err = json.Unmarshal(data, &s); err == nil {
			w.part, err = window.Restore(w.c.cfg.Window, s)
		}
		if err != nil {
			// A snapshot taken under other window settings (size, grace, max
			// future skew, timestamp mode: the config changed, or an earlier
			// version that did not record them wrote it) or a corrupt one cannot
			// be replayed exactly, and its ghosts could swallow records the first
			// run put into other buffers; failing here would only end every
			// generation. Start empty and say so: duplicates possible, no loss.
			w.log.Warn("window snapshot unusable: starting from an empty window state; records of windows open at that offset may be written again under new keys", "offset", offset, "err", err)
			ok = false
		} else {
			w.lastSnap = data
		}
	} else if logged {
		w.log.Warn("no window snapshot for the committed offset: starting from an empty window state; records of windows open at that offset may be written again under new keys", "offset", offset)
	}
	if !ok {
		if w.part, err = window.NewPartition(w.c.cfg.Window); err != nil {
			return err
		}
	}
	w.applyRecordedIdle(offset)
	return nil
}

// snapshotWait is how long a starting worker waits for the snapshot of its
// committed offset when Redis has none: the previous owner may hold it in
// memory after a Redis outage and be writing it back (pendingSnapshots).
const snapshotWait = 3 * time.Second

// awaitSnapshot asks Redis for the snapshot of offset every writeBackEvery for
// up to snapshotWait; ok is false when it never came (a first start on a group
// with offsets but no replay state, Redis flushed, or the previous owner died
// holding it).
func (w *worker) awaitSnapshot(ctx context.Context, offset int64) (data []byte, ok bool) {
	w.log.Info("no window snapshot for the committed offset yet: waiting in case the previous owner is writing it back after a Redis outage", "offset", offset, "wait", snapshotWait)
	for deadline := time.Now().Add(snapshotWait); time.Now().Before(deadline); {
		if !sleep(ctx, writeBackEvery) {
			return nil, false
		}
		lctx, cancel := context.WithTimeout(ctx, stateTimeout)
		data, ok, err := w.st.LoadSnapshot(lctx, w.topic, w.partition, offset)
		cancel()
		if err == nil && ok {
			w.log.Info("window snapshot of the committed offset arrived", "offset", offset)
			return data, true
		}
	}
	return nil, false
}

// waitRedis runs fn until it succeeds, fails with a fenced error, or ctx ends;
// other errors (Redis unreachable) are retried with backoff from 100 ms to 5 s.
// While it waits the partition counts as waiting for Redis (Consumer.Status).
func (w *worker) waitRedis(ctx context.Context, fn func(context.Context) error) error {
	waiting := false
	defer func() {
		if waiting {
			w.c.waitingRedis.Add(-1)
		}
	}()
	for backoff, attempt := 100*time.Millisecond, 1; ; backoff, attempt = min(2*backoff, 5*time.Second), attempt+1 {
		actx, cancel := context.WithTimeout(ctx, stateTimeout)
		err := fn(actx)
		cancel()
		if err == nil {
			if attempt > 1 {
				w.log.Info("Redis answers: the partition starts", "attempts", attempt)
			}
			return nil
		}
		if state.IsFenced(err) || ctx.Err() != nil {
			return err
		}
		if !waiting {
			waiting = true
			n := w.c.waitingRedis.Add(1)
			w.c.noteRedisError(err)
			w.log.Warn("degraded: Redis unreachable: this partition is not consumed until Redis answers (it needs its claim and replay state); partitions already running go on delivering and committing",
				"waiting_partitions", n, "assigned_partitions", w.c.Assigned(), "err", err)
		} else {
			w.c.noteRedisError(err)
			w.log.Debug("Redis still unreachable; the partition keeps waiting for its claim and replay state", "attempt", attempt, "retry_in", backoff, "err", err)
		}
		if !sleep(ctx, backoff) {
			return ctx.Err()
		}
	}
}

// process handles one record. Called with mu held.
func (w *worker) process(ctx context.Context, m *kafka.Message) {
	off := m.Offset
	w.applyRecordedIdle(off)
	w.received++
	if w.next < 0 {
		w.tr.read(off) // the first record: from now on commits have a base
	}
	met := w.c.deps.Metrics
	w.consumed.Inc()

	rec := m.Value
	var (
		info hit.Info
		err  error
	)
	if len(rec) > w.c.cfg.MaxRecordBytes {
		err = &hit.Error{Reason: hit.ReasonTooLarge, Msg: fmt.Sprintf("record of %d bytes is over max_record_bytes %d", len(rec), w.c.cfg.MaxRecordBytes)}
	} else {
		info, err = hit.Scan(rec, w.c.cfg.MaxDepth)
	}
	client, hasClient := headerClientID(m.Headers)
	if err == nil && !hasClient {
		client, hasClient = info.ClientID, info.HasClientID
		if !hasClient {
			err = &hit.Error{Reason: hit.ReasonNoTenant, Msg: "no client_id header and no top-level client_id field"}
		}
	}
	if err != nil {
		w.deadLetter(ctx, m, err)
		w.advanceRead(off)
		return
	}

	recMs := m.Time.UnixMilli()
	ts, fallback, clamped := w.c.cfg.Window.Timestamp(info.TimeMs, info.HasTime, recMs)
	if fallback && !w.c.cfg.Window.UseRecordTime {
		met.FallbackTimes.Inc()
	}
	if clamped {
		met.ClampedTimes.Inc()
	}
	w.closeAll(w.part.Advance(off, ts))

	// The worker's own membership (membership.go), never the live table.
	tr := w.mem.byClient[client]
	if tr == nil {
		w.c.skipped.Inc()
		w.advanceRead(off)
		return
	}
	if tr.others > 0 {
		w.c.disabled.Add(float64(tr.others))
	}
	if len(tr.removed) > 0 {
		w.skipRemoved(tr.removed)
	}
	targets := tr.targets
	if len(targets) == 0 {
		w.advanceRead(off)
		return
	}
	if !info.Compact {
		w.scratch = hit.AppendCompact(w.scratch[:0], rec)
		rec = w.scratch
	}
	late := false
	for _, t := range targets {
		b := w.part.Assign(off, ts, t.ID)
		if b.Ghost {
			continue // already delivered before the committed offset
		}
		late = late || b.Key.Late
		bs, _ := b.Payload.(*bufState)
		if bs == nil {
			f := t.Format
			if w.c.cfg.Staged {
				f = sink.FormatNDJSON // a segment: "offset record" lines
			}
			bs = &bufState{target: t, w: b, buf: w.c.deps.Spool.NewBuffer(f), digest: w.seed}
			b.Payload = bs
			w.open[b] = bs
			w.tr.hold(b.FirstOffset)
			met.OpenBuffers.Inc()
		}
		var err error
		if w.c.cfg.Staged {
			w.tag = strconv.AppendInt(w.tag[:0], off, 10)
			err = bs.buf.AppendTagged(w.tag, rec)
		} else {
			err = bs.buf.Append(rec)
		}
		if err != nil {
			// The spool cannot take the record (disk error). The worker restarts
			// from its committed offset once the spool works (restart.go): the
			// offset is held meanwhile. Never drop it.
			w.fatal = spoolFailure(opAppend, fmt.Errorf("spool append for %s: %w", t.Name, err))
			return
		}
		bs.digest = sink.DigestOffset(bs.digest, off)
	}
	if late {
		met.LateHits.Inc()
	}
	w.advanceRead(off)
}

// skipRemoved counts a record of members no configured integration has any
// more, and logs each such member once. Called with mu held.
func (w *worker) skipRemoved(ids []string) {
	w.c.removed.Add(float64(len(ids)))
	for _, id := range ids {
		if !w.loggedRemoved[id] {
			if w.loggedRemoved == nil {
				w.loggedRemoved = map[string]bool{}
			}
			w.loggedRemoved[id] = true
			w.log.Warn("records routed to an integration that is no longer configured (removed, or changed into another target by a reload) are skipped: removing an integration is final for what it had not delivered", "target", id)
		}
	}
}

// advanceRead marks off as read and applies the idle closes recorded right after it.
func (w *worker) advanceRead(off int64) {
	w.next = off + 1
	w.tr.read(w.next)
	w.applyRecordedIdle(w.next)
}

// applyRecordedIdle applies the idle closes an earlier owner recorded at or before
// the read position pos, so a replay closes where the original run did.
func (w *worker) applyRecordedIdle(pos int64) {
	for len(w.idle) > 0 && w.idle[0].NextOffset <= pos {
		c := w.idle[0]
		w.idle = w.idle[1:]
		w.closeAll(w.part.ApplyIdle(c.NextOffset, c.Boundary))
	}
}

// closeAll hands closed buffers to the delivery. Called with mu held.
func (w *worker) closeAll(closed []*window.Buffer) {
	for _, b := range closed {
		if b.Ghost {
			continue
		}
		bs, _ := b.Payload.(*bufState)
		if bs == nil {
			continue
		}
		delete(w.open, b)
		b.Payload = nil
		w.c.deps.Metrics.OpenBuffers.Dec()
		w.hand(bs)
	}
}

func (w *worker) hand(bs *bufState) {
	t, b := bs.target, bs.w
	size := w.c.cfg.Window.Size
	start := b.Key.Start
	j := &delivery.Job{
		Target:      t,
		Topic:       w.topic,
		Partition:   w.partition,
		WindowStart: start,
		WindowEnd:   start + size,
		FirstOffset: b.FirstOffset,
		CloseAt:     b.CloseAt,
		Digest:      bs.digest,
		Late:        b.Key.Late,
		Records:     bs.buf.Records(),
		Buffer:      bs.buf,
		Fence:       w.fence,
	}
	j.Key = t.Keys.Key(keyParams(t, w.topic, w.partition, start, b.FirstOffset, bs.digest))
	first := b.FirstOffset
	w.inflight.Add(1)
	w.undelivered.Add(1)
	w.c.deps.Metrics.Undelivered.Inc()
	w.stagingMu.Lock()
	w.stagingSeq++
	seq := w.stagingSeq
	if w.staging == nil {
		w.staging = map[uint64]int64{}
	}
	w.staging[seq] = b.CloseAt
	w.stagingMu.Unlock()
	w.c.deps.Delivery.Deliver(w.deliverCtx, j, func(err error) {
		w.stagingMu.Lock()
		if err != nil {
			// Not staged: until this life ends the partition must not pass
			// its boundary, or the window would be assembled without it and
			// its records, staged again after the restart, be late.
			if w.stagingFailed == nil {
				w.stagingFailed = map[uint64]int64{}
			}
			w.stagingFailed[seq] = w.staging[seq]
		}
		delete(w.staging, seq)
		w.stagingMu.Unlock()
		w.undelivered.Add(-1)
		w.c.deps.Metrics.Undelivered.Dec()
		if err == nil {
			w.tr.release(first)
		} else if sink.IsSpoolError(err) {
			w.spoolFailed(opFinish, err) // the fetch loop restarts the worker (restart.go)
		}
		w.inflight.Done()
	})
}

// stagedMark is what the partition publishes for staged delivery: the
// greatest window boundary its watermark passed, lowered below the CloseAt of
// every closed buffer not yet staged. Every segment of this partition that
// closes at or below the mark is in the staging bucket, and none can be made
// any more (new buffers close above the watermark). false before the
// partition has a watermark.
func (w *worker) stagedMark() (int64, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.part == nil {
		return 0, false
	}
	size := w.c.cfg.Window.Size
	mark := int64(math.MinInt64)
	if wm := w.part.Watermark(); wm != math.MinInt64 {
		mark = window.Start(wm, size) // floor to a boundary
	}
	// A partition that has read nothing in this life and is quiet (an empty
	// or idle partition the idle close cannot move: it has no read position)
	// passes the wall clock's boundary: every record it had is below its
	// committed offset, so staged. A record that comes later for a window
	// already complete is staged into a segment the assembler delivers as a
	// late object.
	if now := w.c.now(); w.next < 0 && w.caughtUp && len(w.open) == 0 && now.Sub(w.quietFrom) >= w.c.cfg.IdleTimeout {
		mark = max(mark, window.Start(now.UnixMilli()-w.c.cfg.Window.Grace, size))
	}
	if mark == math.MinInt64 {
		return 0, false
	}
	w.stagingMu.Lock()
	for _, c := range w.staging {
		mark = min(mark, c-1)
	}
	for _, c := range w.stagingFailed {
		mark = min(mark, c-1)
	}
	w.stagingMu.Unlock()
	return mark, true
}

// maxUndelivered bounds the closed buffers of one partition waiting for the
// delivery. Every one is a goroutine and a finished object; with 1,000 tenants
// a backlog closes thousands of windows a second, more than the uploads keep
// up with, and without a bound the pile (stacks to scan, objects over the
// memory budget) drives the GC to take most of the CPU (bench/README.md).
const maxUndelivered = 256

// deadLetter queues a bad record for the dead-letter topic; its offset is held
// until the topic acknowledged it. Called with mu held.
func (w *worker) deadLetter(_ context.Context, m *kafka.Message, err error) {
	reason := string(hit.ReasonNotJSON)
	var he *hit.Error
	if errors.As(err, &he) {
		reason = string(he.Reason)
	}
	w.c.deps.Metrics.BadRecords.WithLabelValues(reason).Inc()
	w.part.Mark(m.Offset)
	if _, done := w.deadDone[m.Offset]; done {
		// A replay: an earlier owner's dead letter of this record was acknowledged.
		delete(w.deadDone, m.Offset)
		w.log.Debug("bad record already in the dead-letter topic", "offset", m.Offset, "reason", reason)
		return
	}
	w.log.Debug("bad record to the dead-letter topic", "offset", m.Offset, "reason", reason, "err", err)
	w.tr.hold(m.Offset)
	value := m.Value
	headers := []kafka.Header{
		{Key: "hitship_reason", Value: []byte(reason)},
		{Key: "hitship_error", Value: []byte(err.Error())},
		{Key: "hitship_source_topic", Value: []byte(w.topic)},
		{Key: "hitship_source_partition", Value: []byte(strconv.Itoa(w.partition))},
		{Key: "hitship_source_offset", Value: []byte(strconv.FormatInt(m.Offset, 10))},
	}
	// The dead-letter topic has the same size limits as any topic: the whole
	// dead letter (key, headers, value) fits DeadLetterBatchBytes, or the
	// write would fail forever and block the partition. The record's own
	// headers are copied while they fit (64 headers in all at most); the
	// value keeps its head and says so.
	budget := DeadLetterBatchBytes(w.c.cfg.MaxRecordBytes)
	key := m.Key
	if len(key) > budget/8 {
		key = key[:budget/8]
	}
	used := 64 + len(key) + headerBytes(headers) + headerBytes([]kafka.Header{{Key: "hitship_truncated_from", Value: []byte("18446744073709551615")}})
	for _, h := range m.Headers {
		n := len(h.Key) + len(h.Value) + 10
		if len(headers) >= 64 || used+n > budget/4 {
			break
		}
		headers = append(headers, kafka.Header{Key: h.Key, Value: h.Value})
		used += n
	}
	if room := budget - used; len(value) > w.c.cfg.MaxRecordBytes || len(value) > room {
		headers = append(headers, kafka.Header{Key: "hitship_truncated_from", Value: []byte(strconv.Itoa(len(value)))})
		value = value[:min(len(value), w.c.cfg.MaxRecordBytes, room)]
	}
	// Never blocks (mu is held): the fetch loop waits, without mu, while too many
	// dead letters are unacknowledged (deadletter.go).
	w.inflight.Add(1)
	w.dl.push(deadLetter{offset: m.Offset, msg: kafka.Message{Key: key, Value: value, Headers: headers, Time: m.Time}})
}

// dropOpen discards every open buffer (the generation ended: the next owner replays).
func (w *worker) dropOpen() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for b, bs := range w.open {
		bs.buf.Discard()
		b.Payload = nil
		w.c.deps.Metrics.OpenBuffers.Dec()
	}
	clear(w.open)
}

// DeadLetterBatchBytes is the most bytes (as kafka-go counts them) one
// dead-letter produce request carries, and so the most one dead letter takes:
// max_record_bytes less room for the batch framing, so that a dead-letter
// topic whose broker limit is max_record_bytes or more (Kafka's default
// message.max.bytes, 1048588, holds the default 1 MiB) accepts every batch.
func DeadLetterBatchBytes(maxRecordBytes int) int {
	return max(maxRecordBytes-16<<10, maxRecordBytes/2)
}

// headerBytes is an upper bound of the encoded size of hs.
func headerBytes(hs []kafka.Header) int {
	n := 5
	for _, h := range hs {
		n += len(h.Key) + len(h.Value) + 10
	}
	return n
}

func headerClientID(hs []kafka.Header) (int64, bool) {
	for i := range hs {
		if hs[i].Key == "client_id" {
			return parseClientID(hs[i].Value)
		}
	}
	return 0, false
}

// parseClientID parses a positive decimal client id without allocating.
func parseClientID(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, n > 0
}

func keyParams(t *integrations.Target, topic string, partition int, start, first int64, digest uint64) sink.KeyParams {
	return sink.KeyParams{
		Prefix:      t.Prefix,
		WindowStart: start,
		Partition:   partition,
		FirstOffset: first,
		Digest:      digest,
		Format:      t.Format,
		Compression: t.Compression,
		ClientID:    t.ClientID,
		Integration: t.Name,
		Topic:       topic,
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
