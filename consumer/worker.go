package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"hitship/hit"
	"hitship/sink"
	"hitship/state"
	"hitship/window"
)

// bufState is what a worker hangs on a window.Buffer.
type bufState struct {
	target *Target
	w      *window.Buffer
	buf    *sink.Buffer
	// digest names the records appended so far (sink.DigestOffset over their
	// offsets): the object's key carries it, so that an object with other
	// records never takes the key of one already written.
	digest uint64
}

// worker consumes one partition for one generation. The fetch loop and the ticker
// (idle closes, commit preparation) share the window state under mu; deliveries
// report back through the tracker, which has its own lock.
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
	// ticker notes when the count last changed.
	received  uint64
	seen      uint64
	quietFrom time.Time
	fatal     error

	// deliverCtx is what deliveries run under: the generation's, not the fetch
	// loop's, so that a clean stop lets closed buffers finish uploading.
	deliverCtx context.Context

	committed int64 // last committed offset; only the committer touches it
	// undelivered counts this partition's closed buffers handed to the delivery
	// and not done yet (see waitDeliveries).
	undelivered atomic.Int64
	// ownsUntil (Unix ns) caches a positive ownership answer (or a Redis error) for fenceCacheTTL;
	// fenced is final once Redis said another generation owns the partition.
	ownsUntil atomic.Int64
	fenced    atomic.Bool
	lag       lagState
	inflight  sync.WaitGroup
	dlq       chan deadLetter

	// idleRetryAt: after Redis failed to record an idle close, the ticker does not
	// ask again before this time (the fetch loop waits for mu meanwhile).
	idleRetryAt time.Time

	// Routing (membership.go). The fetch goroutine alone uses these, except
	// rerecord (any goroutine), curSet (read by the committer) and
	// routeTouchedAt (the committer's).
	mem            *membership
	liveSeen       *RouteSet     // the live set last found equal to mem, or adopted
	routeLog       []loggedRoute // recorded changes not reached yet
	replayEnd      int64         // live changes are adopted from this offset on
	needHWM        bool          // replayEnd waits for the first fetched high-water mark
	routeRetryAt   time.Time     // after Redis failed to record a change
	routeDegraded  bool
	rerecord       atomic.Bool // onReclaimed
	curSet         atomic.Pointer[routeSetRef]
	routeTouchedAt time.Time
	loggedRemoved  map[string]bool // removed target IDs already logged
}

type deadLetter struct {
	msg    kafka.Message
	offset int64
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

	// The committer reads this state (prepareCommit) from its first tick on.
	w.mu.Lock()
	defer w.mu.Unlock()
	w.tr = newTracker(offset)
	w.open = make(map[*window.Buffer]*bufState)
	w.next, w.committed = -1, -1
	w.quietFrom = w.c.now()
	w.idle = idle
	w.deadDone = make(map[int64]struct{}, len(dead))
	for _, o := range dead {
		w.deadDone[o] = struct{}{}
	}
	w.applyPlan(plan)
	if offset < 0 { // nothing committed yet: a fresh partition, an empty state
		w.part, err = window.NewPartition(w.c.cfg.Window)
		return err
	}
	w.next, w.committed = offset, offset
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
		}
	} else {
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
func (w *worker) waitRedis(ctx context.Context, fn func(context.Context) error) error {
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
		w.log.Warn("degraded: Redis unreachable, the partition waits for its claim and replay state", "attempt", attempt, "retry_in", backoff, "err", err)
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
			bs = &bufState{target: t, w: b, buf: w.c.deps.Spool.NewBuffer(t.Format), digest: w.seed}
			b.Payload = bs
			w.open[b] = bs
			w.tr.hold(b.FirstOffset)
			met.OpenBuffers.Inc()
		}
		if err := bs.buf.Append(rec); err != nil {
			// The spool cannot take the record (disk error). Stop the worker: the
			// offset is held, the next owner replays. Never drop it.
			w.fatal = fmt.Errorf("spool append for %s: %w", t.Name, err)
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

// idleRetry is how long the idle clock waits after Redis failed to record a close.
const idleRetry = 5 * time.Second

// idleTick advances the watermark on the wall clock when the partition has been
// quiet for the idle timeout. The advance is recorded (fenced) before any buffer
// closes. Called with mu held.
func (w *worker) idleTick(ctx context.Context) {
	if len(w.idle) > 0 || w.next < 0 || w.fatal != nil {
		return // still replaying recorded closes, or nothing read yet
	}
	now := w.c.now()
	if w.received != w.seen {
		w.seen, w.quietFrom = w.received, now
		return
	}
	if now.Sub(w.quietFrom) < w.c.cfg.IdleTimeout {
		return
	}
	b, ok := w.part.IdleBoundary(now.UnixMilli())
	if !ok {
		return
	}
	if now.Before(w.idleRetryAt) {
		return // Redis failed lately: do not hold mu on it at every tick
	}
	c := state.IdleClose{NextOffset: w.next, Boundary: b}
	rctx, cancel := context.WithTimeout(ctx, stateTimeout)
	err := w.st.RecordIdleClose(rctx, w.topic, w.partition, w.owner, c)
	cancel()
	if err != nil {
		if state.IsFenced(err) {
			w.fatal = fmt.Errorf("idle close refused, another member owns partition %d: %w", w.partition, err)
			return
		}
		// An idle close must be in the fenced log before it happens, or a replay
		// could not close at the same place: without Redis the windows wait for
		// records (which close them as usual) or for Redis.
		w.idleRetryAt = now.Add(idleRetry)
		w.log.Warn("degraded: cannot record the idle close, buffers stay open until a record or Redis comes", "retry_in", idleRetry, "err", err)
		return
	}
	w.c.deps.Metrics.IdleCloses.Inc()
	w.closeAll(w.part.ApplyIdle(c.NextOffset, c.Boundary))
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
	j := &Job{
		Target:      t,
		Topic:       w.topic,
		Partition:   w.partition,
		WindowStart: start,
		WindowEnd:   start + size,
		FirstOffset: b.FirstOffset,
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
	w.c.deps.Delivery.Deliver(w.deliverCtx, j, func(err error) {
		w.undelivered.Add(-1)
		w.c.deps.Metrics.Undelivered.Dec()
		if err == nil {
			w.tr.release(first)
		}
		w.inflight.Done()
	})
}

// maxUndelivered bounds the closed buffers of one partition waiting for the
// delivery. Every one is a goroutine and a finished object; with 1,000 tenants
// a backlog closes thousands of windows a second, more than the uploads keep
// up with, and without a bound the pile (stacks to scan, objects over the
// memory budget) drives the GC to take most of the CPU (bench/README.md).
const maxUndelivered = 256

// waitDeliveries blocks while more than maxUndelivered closed buffers of this
// partition wait for the delivery, or until ctx ends: back-pressure on the fetch
// loop. It reports whether it waited. Call it without mu (deliveries finish
// without it).
func (w *worker) waitDeliveries(ctx context.Context) bool {
	waited := false
	for w.undelivered.Load() > maxUndelivered {
		waited = true
		if !sleep(ctx, 5*time.Millisecond) {
			break
		}
	}
	return waited
}

// fence reports a lost claim. A Redis error does not fence: the write is
// deterministic and conditional, a zombie's upload is harmless.
//
// A positive answer (or an error) is reused for fenceCacheTTL: with many tenants a window
// end closes thousands of objects per partition, and one Redis round trip
// each was a sixth of their cost (bench/README.md). The check is advisory for
// uploads (see above), so a second's delay in noticing a newer owner changes
// nothing; a refusal is final.
func (w *worker) fence(ctx context.Context) error {
	if w.fenced.Load() {
		return fmt.Errorf("partition %d: %w", w.partition, state.ErrFenced)
	}
	now := time.Now().UnixNano()
	if now < w.ownsUntil.Load() {
		return nil
	}
	octx, cancel := context.WithTimeout(ctx, stateTimeout)
	defer cancel()
	ok, err := w.st.Owns(octx, w.topic, w.partition, w.owner)
	if err == nil && !ok {
		w.fenced.Store(true)
		return fmt.Errorf("partition %d: %w", w.partition, state.ErrFenced)
	}
	// A Redis error is reused like a positive answer: when Redis hangs, every
	// object would otherwise wait out the time-out in one of the delivery's few
	// runners.
	w.ownsUntil.Store(now + int64(fenceCacheTTL))
	return nil
}

// fenceCacheTTL is how long worker.fence trusts a positive ownership answer.
const fenceCacheTTL = time.Second

// deadLetter queues a bad record for the dead-letter topic; its offset is held
// until the topic acknowledged it. Called with mu held.
func (w *worker) deadLetter(ctx context.Context, m *kafka.Message, err error) {
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
	dl := deadLetter{offset: m.Offset, msg: kafka.Message{Key: key, Value: value, Headers: headers, Time: m.Time}}
	w.inflight.Add(1)
	select {
	case w.dlq <- dl:
	case <-ctx.Done():
		w.inflight.Done() // never acknowledged: the offset stays held
	}
}

// runDeadLetters writes queued bad records in batches, retrying until the topic
// acknowledges them or the worker stops.
func (w *worker) runDeadLetters(ctx context.Context) {
	defer func() { // what was not written stays held; only the accounting ends
		for {
			select {
			case <-w.dlq:
				w.inflight.Done()
			default:
				return
			}
		}
	}()
	batch := make([]deadLetter, 0, 256)
	msgs := make([]kafka.Message, 0, 256)
	for {
		batch, msgs = batch[:0], msgs[:0]
		select {
		case <-ctx.Done():
			return
		case d := <-w.dlq:
			batch = append(batch, d)
		}
	fill:
		for len(batch) < cap(batch) {
			select {
			case d := <-w.dlq:
				batch = append(batch, d)
			default:
				break fill
			}
		}
		for _, d := range batch {
			msgs = append(msgs, d.msg)
		}
		for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 10*time.Second) {
			err := w.c.deps.DeadLetters.WriteMessages(ctx, msgs...)
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				for range batch {
					w.inflight.Done()
				}
				return
			}
			w.log.Warn("dead-letter write failed; the partition's offset is held until it succeeds", "records", len(msgs), "err", err)
			if !sleep(ctx, backoff) {
				for range batch {
					w.inflight.Done()
				}
				return
			}
		}
		// Record the acknowledged offsets before releasing them: once released, a
		// commit may pass them, and a replay from an earlier commit must know.
		// Without Redis they are released anyway; a replay may send them again.
		offs := make([]int64, len(batch))
		for i, d := range batch {
			offs[i] = d.offset
		}
		nctx, cancel := context.WithTimeout(ctx, stateTimeout)
		if err := w.st.NoteDeadLettered(nctx, w.topic, w.partition, offs); err != nil && ctx.Err() == nil {
			w.log.Debug("dead letters not recorded in Redis; a replay may send them again", "err", err)
		}
		cancel()
		for _, d := range batch {
			w.tr.release(d.offset)
			w.inflight.Done()
		}
		w.c.deps.Metrics.DeadLettered.Add(float64(len(batch)))
	}
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

func keyParams(t *Target, topic string, partition int, start, first int64, digest uint64) sink.KeyParams {
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
