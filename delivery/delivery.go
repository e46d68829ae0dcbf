// Package delivery uploads closed window buffers to their integration's bucket.
//
// Inline is the delivery of the core pipeline: every object is retried in-process,
// with capped exponential backoff, until it is written, the worker's generation
// ends, or the worker is fenced. While it retries, the object holds its partition's
// offset (nothing is committed past it) and occupies no upload slot, so other
// integrations' objects go on being uploaded. This is the behaviour when no parking
// bucket is configured.
//
// With Deps.Parking set, the product's schedule (DESIGN §5) applies instead: cycle 1
// (1, 3, 5, 10, 10 s) runs inline, holding the offset for at most ~30 s. When it
// fails, the object is written to the parking bucket and a retry entry (due at
// once, position 2/1) is enqueued; only after both succeeded is done(nil) called,
// and from then on the retry workers own the object. If parking fails the delivery
// keeps trying to park, holding the offset (back-pressure, never loss), until it
// succeeds, ctx ends or the worker is fenced. With Deps.Health set, every attempt's
// outcome (not aborts) is recorded in the health ledger, classified by the side
// of its cause (HealthOutcome). Parked (parked.go) is the other half: every
// replica's retry worker that sends parked objects on cycles 2 and 3, then
// dead-letters them.
//
// Guarantees: an object is written under its deterministic key, with
// `If-None-Match: *` where the integration asks for it; a 412 counts as delivered
// (keys name the records an object holds, sink.DigestOffset: an object with
// exactly these records is already there). done is called exactly once per job.
//
// Goroutines: jobs wait in one FIFO queue and at most Config.Concurrency runner
// goroutines take them; a runner whose job has to wait before a retry gives up its
// place (another runner starts for the queue) and finishes that job on its own.
// So a healthy delivery costs Concurrency goroutines however many buffers close at
// once (with 1,000 tenants a window end closes thousands per partition: one
// goroutine each was tens of MB of stacks and most of the GC's work), and a
// failing bucket holds a goroutine per object in backoff, never a runner.
package delivery

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"hitship/delivery/retry"
	"hitship/health"
	"hitship/metrics"
	"hitship/sink"
	s3sink "hitship/sink/s3"
	"hitship/state"
)

// Config tunes Inline.
type Config struct {
	Concurrency   int           // uploads at once (default 16)
	UploadTimeout time.Duration // per attempt (default 60s)
	RetryMin      time.Duration // first backoff (default 1s)
	RetryMax      time.Duration // backoff cap (default 30s)
}

// Deps are Inline's collaborators.
type Deps struct {
	Logger  *slog.Logger
	Metrics *metrics.Metrics
	Now     func() time.Time // nil: time.Now (delivery latency)
	// Delivered, if set, is called after each object is written (the demo prints it).
	Delivered func(j *Job, size int64)
	// Parking, if set, replaces in-process retries with cycle 1 and parking.
	Parking *Parking
	// Health, if set, records every attempt's outcome.
	Health *health.Buffered
}

// ParkStore is the parking bucket as the delivery sees it (*parking.Store).
type ParkStore interface {
	Put(ctx context.Context, key string, obj sink.Body, opts sink.PutOptions) error
	ParkedKey(integration, key string) string
}

// Parking is where objects go after a failed cycle 1.
type Parking struct {
	Store ParkStore
	Queue *retry.Queue
	// Clock drives cycle 1 and the waits between parking attempts (nil: RealClock).
	Clock retry.Clock
}

// Inline is the in-process retrying delivery. Safe for concurrent use.
type Inline struct {
	cfg  Config
	deps Deps
	sem  chan struct{}

	mu      sync.Mutex
	queue   []queued // FIFO; queue[0] is next
	runners int      // goroutines taking jobs from queue, at most cfg.Concurrency
}

// queued is one Deliver call waiting for a runner.
type queued struct {
	ctx  context.Context
	j    *Job
	done func(error)
}

// NewInline returns an Inline delivery.
func NewInline(cfg Config, deps Deps) (*Inline, error) {
	if deps.Logger == nil || deps.Metrics == nil {
		return nil, errors.New("delivery: logger and metrics are required")
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 16
	}
	if cfg.UploadTimeout <= 0 {
		cfg.UploadTimeout = 60 * time.Second
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = time.Second
	}
	if cfg.RetryMax < cfg.RetryMin {
		cfg.RetryMax = max(cfg.RetryMin, 30*time.Second)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if p := deps.Parking; p != nil {
		if p.Store == nil || p.Queue == nil {
			return nil, errors.New("delivery: parking needs a store and a queue")
		}
		if p.Clock == nil {
			p.Clock = retry.RealClock{}
		}
	}
	return &Inline{cfg: cfg, deps: deps, sem: make(chan struct{}, cfg.Concurrency)}, nil
}

// Deliver queues j for a runner and returns at once (see the package doc).
func (d *Inline) Deliver(ctx context.Context, j *Job, done func(error)) {
	d.mu.Lock()
	d.queue = append(d.queue, queued{ctx: ctx, j: j, done: done})
	start := d.runners < d.cfg.Concurrency
	if start {
		d.runners++
	}
	d.mu.Unlock()
	if start {
		go d.run()
	}
}

// run takes queued jobs until the queue is empty or its job gave up its place.
func (d *Inline) run() {
	for {
		d.mu.Lock()
		if len(d.queue) == 0 {
			d.runners--
			d.queue = nil // the backing array of a burst goes with it
			d.mu.Unlock()
			return
		}
		q := d.queue[0]
		d.queue[0] = queued{}
		d.queue = d.queue[1:]
		d.mu.Unlock()

		left := false
		leave := func() {
			if !left {
				left = true
				d.leave()
			}
		}
		q.done(d.deliver(q.ctx, q.j, leave))
		if left {
			return
		}
	}
}

// leave gives up a runner's place before its job waits for a retry; a new
// runner takes the queue if it is not empty.
func (d *Inline) leave() {
	d.mu.Lock()
	d.runners--
	start := len(d.queue) > 0 && d.runners < d.cfg.Concurrency
	if start {
		d.runners++
	}
	d.mu.Unlock()
	if start {
		go d.run()
	}
}

// leavingClock is a Clock that gives up the runner's place before its first sleep.
type leavingClock struct {
	retry.Clock
	leave func()
}

func (c leavingClock) Sleep(ctx context.Context, dur time.Duration) error {
	c.leave()
	return c.Clock.Sleep(ctx, dur)
}

// deliver delivers j; it calls leave before it first waits for a retry.
func (d *Inline) deliver(ctx context.Context, j *Job, leave func()) error {
	name := j.Target.Name
	m := d.deps.Metrics
	if err := ctx.Err(); err != nil {
		// The generation ended while the job was queued: the next owner replays it.
		if j.Buffer != nil {
			j.Buffer.Discard()
		}
		m.ObjectsWritten.WithLabelValues(name, metrics.ResultAborted).Inc()
		return err
	}
	log := d.deps.Logger.With("integration", name, "partition", j.Partition,
		"window", time.UnixMilli(j.WindowStart).UTC().Format(time.RFC3339), "key", j.Key)
	obj := j.Object
	if obj == nil {
		var err error
		obj, err = j.Buffer.Finish(j.Target.Compression)
		if err != nil {
			// The spool could not finish the object (local disk). The error satisfies
			// sink.IsSpoolError: the worker restarts from its committed offset once
			// the disk takes writes (it logs the episode at error level); the offset
			// stays held meanwhile, nothing is lost.
			log.Warn("cannot finish object from the spool", "err", err)
			m.ObjectsWritten.WithLabelValues(name, metrics.ResultAborted).Inc()
			return err
		}
		defer obj.Release()
	}
	opts := sink.PutOptions{ContentType: obj.ContentType, ContentEncoding: obj.ContentEncoding, IfNoneMatch: j.Target.IfNoneMatch}
	if d.deps.Parking != nil {
		return d.deliverParking(ctx, j, obj, opts, log, leave)
	}
	backoff := d.cfg.RetryMin
	for attempt := 1; ; attempt++ {
		// Without parking there is no schedule: Position only numbers the attempt.
		err := d.upload(ctx, j, obj, opts, log, retry.Position{Attempt: attempt})
		if err == nil {
			return nil
		}
		if se, ok := errors.AsType[*stopError](err); ok {
			if state.IsFenced(se.err) {
				log.Warn("not uploading: this member no longer owns the partition", "err", se.err)
			}
			m.ObjectsWritten.WithLabelValues(name, metrics.ResultAborted).Inc()
			return se.err
		}
		log.Info("retrying while the object holds the partition's offset", "attempt", attempt, "retry_in", backoff)
		leave()
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			m.ObjectsWritten.WithLabelValues(name, metrics.ResultAborted).Inc()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, d.cfg.RetryMax)
	}
}

// stopError marks an attempt that must not be followed by another (ctx ended, fenced).
type stopError struct{ err error }

func (e *stopError) Error() string { return e.err.Error() }
func (e *stopError) Unwrap() error { return e.err }

// upload makes one attempt. It returns nil when the object is written (or was
// already there), a *stopError when no further attempt may be made.
func (d *Inline) upload(ctx context.Context, j *Job, obj *sink.Object, opts sink.PutOptions, log *slog.Logger, p retry.Position) error {
	name := j.Target.Name
	m := d.deps.Metrics
	if err := j.Fence(ctx); err != nil {
		return &stopError{err}
	}
	select {
	case d.sem <- struct{}{}:
	case <-ctx.Done():
		return &stopError{ctx.Err()}
	}
	start := d.deps.Now()
	actx, cancel := context.WithTimeout(ctx, AttemptTimeout(d.cfg.UploadTimeout, obj.Size()))
	err := j.Target.Store.Put(actx, j.Key, obj, opts)
	cancel()
	<-d.sem
	m.UploadDuration.WithLabelValues(name).Observe(d.deps.Now().Sub(start).Seconds())
	result := metrics.ResultOK
	switch {
	case err == nil:
	case sink.IsAlreadyExists(err):
		result = metrics.ResultExists
	default:
		result = metrics.ResultError
	}
	if result == metrics.ResultError && (ctx.Err() != nil || state.IsFenced(err)) {
		return &stopError{errors.Join(ctx.Err(), err)}
	}
	m.UploadAttempts.WithLabelValues(name, result).Inc()
	d.recordHealth(ctx, log, name, err)
	if result == metrics.ResultError {
		log.Warn("upload failed", "attempt", p.String(), "problem", s3sink.Explain(err).Message, "err", err)
		return err
	}
	m.ObjectsWritten.WithLabelValues(name, result).Inc()
	m.HitsDelivered.WithLabelValues(name, result).Add(float64(obj.Records))
	m.UploadBytes.WithLabelValues(name).Add(float64(obj.Size()))
	if d.deps.Health != nil && result == metrics.ResultOK {
		countDelivered(ctx, log, d.deps.Health, name, obj.Records, d.deps.Now())
	}
	if !j.Late {
		m.DeliveryLatency.WithLabelValues(name).Observe(max(0, d.deps.Now().Sub(time.UnixMilli(j.WindowEnd)).Seconds()))
	}
	log.Info("object delivered", "records", obj.Records, "bytes", obj.Size(), "result", result, "attempt", p.String())
	if d.deps.Delivered != nil {
		d.deps.Delivered(j, obj.Size())
	}
	return nil
}

// inlineStateTimeout bounds the Redis calls that carry cycle 1 across owners.
const inlineStateTimeout = 2 * time.Second

// deliverParking runs cycle 1 inline and parks the object when it fails.
//
// The time of the object's first failed attempt is kept in Redis: when a
// rebalance hands the partition to another member (which replays the same
// object under the same key), the new owner resumes cycle 1 where the
// schedule stands instead of starting it again, so churn in the group cannot
// make one failing bucket hold the offset for longer than cycle 1. Without
// Redis each owner starts cycle 1 afresh (longer, never lossy).
func (d *Inline) deliverParking(ctx context.Context, j *Job, obj *sink.Object, opts sink.PutOptions, log *slog.Logger, leave func()) error {
	name := j.Target.Name
	m := d.deps.Metrics
	pk := d.deps.Parking
	clock := leavingClock{Clock: pk.Clock, leave: leave}
	id := name + "/" + j.Key
	from := retry.First
	var failedAt time.Time
	rctx, cancel := context.WithTimeout(ctx, inlineStateTimeout)
	if at, ok, err := pk.Queue.InlineFailure(rctx, id); err == nil && ok {
		failedAt = at
		from = retry.ResumeInline(pk.Clock.Now().Sub(at))
		log.Info("resuming retry cycle 1 where an earlier owner left it", "first_failure", at.UTC().Format(time.RFC3339Nano), "attempt", from.String())
	}
	cancel()
	var stop error
	keep := func(p retry.Position) bool { return stop == nil && retry.Inline(p) }
	last, err := retry.Run(ctx, clock, from, keep, func(ctx context.Context, p retry.Position) error {
		err := d.upload(ctx, j, obj, opts, log, p)
		if se, ok := errors.AsType[*stopError](err); ok {
			stop = se.err
		} else if err != nil && failedAt.IsZero() {
			nctx, cancel := context.WithTimeout(ctx, inlineStateTimeout)
			if at, nerr := pk.Queue.NoteInlineFailure(nctx, id, pk.Clock.Now()); nerr == nil {
				failedAt = at
			}
			cancel()
		}
		return err
	})
	forget := func() {
		if failedAt.IsZero() {
			return
		}
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), inlineStateTimeout)
		defer cancel()
		_ = pk.Queue.ForgetInlineFailure(fctx, id) // else it expires (retry.inlineFailureTTL)
	}
	switch {
	case err == nil:
		forget()
		return nil
	case stop != nil:
		log.Warn("not uploading: stopped or no longer the partition's owner", "err", stop)
		m.ObjectsWritten.WithLabelValues(name, metrics.ResultAborted).Inc()
		return stop
	case !retry.IsExhausted(err):
		m.ObjectsWritten.WithLabelValues(name, metrics.ResultAborted).Inc()
		return err
	}
	delay, next, _ := retry.Next(last)
	backoff := d.cfg.RetryMin
	for {
		if ferr := j.Fence(ctx); ferr != nil {
			log.Warn("not parking: this member no longer owns the partition", "err", ferr)
			m.ObjectsWritten.WithLabelValues(name, metrics.ResultAborted).Inc()
			return ferr
		}
		perr := d.park(ctx, j, obj, pk, next, pk.Clock.Now().Add(delay), err)
		if perr == nil {
			forget()
			if j.Parked != nil {
				j.Parked()
			}
			m.ObjectsParked.WithLabelValues(name).Inc()
			log.Info("object parked after retry cycle 1; the retry workers take over", "next_attempt", next.String(), "last_error", err)
			return nil
		}
		log.Error("cannot park the object; it keeps holding the partition's offset", "retry_in", backoff, "err", perr)
		if serr := clock.Sleep(ctx, backoff); serr != nil {
			m.ObjectsWritten.WithLabelValues(name, metrics.ResultAborted).Inc()
			return serr
		}
		backoff = min(2*backoff, d.cfg.RetryMax)
	}
}

// park writes obj to the parking bucket and enqueues its retry entry. The
// object carries the entry's fields as metadata, so that a scanner can make
// the entry again if Redis loses it (retry.Scanner).
func (d *Inline) park(ctx context.Context, j *Job, obj *sink.Object, pk *Parking, next retry.Position, due time.Time, lastErr error) error {
	key := pk.Store.ParkedKey(j.Target.Name, j.Key)
	e := retry.Entry{
		ID: j.Target.Name + "/" + j.Key, Integration: j.Target.Name, Target: j.Target.ID, ParkedKey: key, Key: j.Key,
		Cycle: next.Cycle, Attempt: next.Attempt, Due: due, LastError: lastErr.Error(),
		Topic: j.Topic, Partition: j.Partition, WindowStart: j.WindowStart, FirstOffset: j.FirstOffset,
		Records: obj.Records, Bytes: obj.Size(), ContentType: obj.ContentType, Enqueued: pk.Clock.Now(),
	}
	actx, cancel := context.WithTimeout(ctx, AttemptTimeout(d.cfg.UploadTimeout, obj.Size()))
	defer cancel()
	if err := pk.Store.Put(actx, key, obj, sink.PutOptions{ContentType: obj.ContentType, ContentEncoding: obj.ContentEncoding,
		Metadata: e.Metadata()}); err != nil {
		return err
	}
	_, err := pk.Queue.Enqueue(actx, e)
	return err
}

// HealthOutcome is the health ledger's outcome of an attempt that ended with
// err (nil or a 412: success), classified by s3sink.Blame: only failures on
// the customer's side count toward auto-disable.
func HealthOutcome(err error) health.Outcome {
	switch s3sink.Blame(err) {
	case sink.SideNone:
		return health.Success
	case sink.SideCustomer:
		return health.FailCustomer
	case sink.SideProvider:
		return health.FailProvider
	default:
		return health.FailHitship
	}
}

// recordHealth records the outcome of one attempt that ended with err;
// Redis trouble is buffered by health.Buffered, so an error here is only
// logged.
func (d *Inline) recordHealth(ctx context.Context, log *slog.Logger, name string, err error) {
	if d.deps.Health == nil {
		return
	}
	// The first call after Redis went away waits for its timeout; later ones
	// are held in memory at once (health.Buffered).
	hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	o, now := HealthOutcome(err), d.deps.Now()
	dec, rerr := d.deps.Health.Record(hctx, name, o, now)
	if rerr != nil {
		log.Warn("health outcome not recorded", "err", rerr)
	}
	note(hctx, log, d.deps.Health, name, o, now, err)
	if dec.Disabled {
		log.Warn("integration auto-disabled by its failure ratio", "attempts", dec.Attempts, "failures", dec.Failures, "event", dec.Event)
	}
}

// note records the attempt as the integration's latest success or failure,
// in plain words (s3sink.Explain: never the error's raw text), for its status.
func note(ctx context.Context, log *slog.Logger, hb *health.Buffered, name string, o health.Outcome, at time.Time, err error) {
	var problem, message, fix string
	if o != health.Success {
		a := s3sink.Explain(err)
		problem, message, fix = a.Problem, a.Message, a.Fix
	}
	if nerr := hb.Note(ctx, name, o, at, problem, message, fix); nerr != nil {
		log.Debug("latest outcome not noted", "integration", name, "err", nerr)
	}
}

// countDelivered counts an object that reached its customer in the
// integration's last hour (the console's "objects and hits in the last
// hour"); best effort, as note.
func countDelivered(ctx context.Context, log *slog.Logger, hb *health.Buffered, name string, records int, at time.Time) {
	hctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if err := hb.Delivered(hctx, name, records, at); err != nil {
		log.Debug("delivery not counted", "integration", name, "err", err)
	}
}

// MinUploadRate is the slowest transfer an upload attempt is given time for
// beyond delivery.upload_timeout (AttemptTimeout).
const MinUploadRate = 4 << 20 // bytes per second

// AttemptTimeout bounds one upload (or download) attempt of size bytes:
// base (delivery.upload_timeout), plus one second per MinUploadRate bytes.
// A fixed bound made an object bigger than base allows at the link's speed
// fail every attempt for ever (a 2 GiB window staged in 2 minutes against the
// default 60 s: the partition's offset held until an operator raised it).
func AttemptTimeout(base time.Duration, size int64) time.Duration {
	if size <= 0 {
		return base
	}
	return base + time.Duration(size/MinUploadRate)*time.Second
}
