// Package delivery uploads closed window buffers to their integration's bucket.
//
// Inline is the delivery of the core pipeline: every object is retried in-process,
// with capped exponential backoff, until it is written, the worker's generation
// ends, or the worker is fenced. While it retries, the object holds its partition's
// offset (nothing is committed past it) and occupies no upload slot, so other
// integrations' objects go on being uploaded. The product's retry schedule, parking
// and integration health replace it behind the same consumer.Delivery seam.
//
// Guarantees: an object is written under its deterministic key, with
// `If-None-Match: *` where the integration asks for it; a 412 counts as delivered
// (the same object is already there). done is called exactly once per job.
package delivery

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"hitship/consumer"
	"hitship/metrics"
	"hitship/sink"
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
	Delivered func(j *consumer.Job, size int64)
}

// Inline is the in-process retrying delivery. Safe for concurrent use.
type Inline struct {
	cfg  Config
	deps Deps
	sem  chan struct{}
}

var _ consumer.Delivery = (*Inline)(nil)

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
	return &Inline{cfg: cfg, deps: deps, sem: make(chan struct{}, cfg.Concurrency)}, nil
}

// Deliver starts the upload of j in its own goroutine and returns at once.
func (d *Inline) Deliver(ctx context.Context, j *consumer.Job, done func(error)) {
	go func() { done(d.deliver(ctx, j)) }()
}

func (d *Inline) deliver(ctx context.Context, j *consumer.Job) error {
	name := j.Target.Name
	log := d.deps.Logger.With("integration", name, "partition", j.Partition,
		"window", time.UnixMilli(j.WindowStart).UTC().Format(time.RFC3339), "key", j.Key)
	m := d.deps.Metrics
	obj, err := j.Buffer.Finish(j.Target.Compression)
	if err != nil {
		// The spool could not finish the object (local disk). The offset stays held
		// and the next owner replays; nothing is lost.
		log.Error("cannot finish object from the spool", "err", err)
		m.ObjectsWritten.WithLabelValues(name, metrics.ResultAborted).Inc()
		return err
	}
	defer obj.Release()
	opts := sink.PutOptions{ContentType: obj.ContentType, ContentEncoding: obj.ContentEncoding, IfNoneMatch: j.Target.IfNoneMatch}
	backoff := d.cfg.RetryMin
	for attempt := 1; ; attempt++ {
		if err := j.Fence(ctx); err != nil {
			log.Warn("not uploading: this member no longer owns the partition", "err", err)
			m.ObjectsWritten.WithLabelValues(name, metrics.ResultAborted).Inc()
			return err
		}
		select {
		case d.sem <- struct{}{}:
		case <-ctx.Done():
			m.ObjectsWritten.WithLabelValues(name, metrics.ResultAborted).Inc()
			return ctx.Err()
		}
		start := d.deps.Now()
		actx, cancel := context.WithTimeout(ctx, d.cfg.UploadTimeout)
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
		m.UploadAttempts.WithLabelValues(name, result).Inc()
		if result != metrics.ResultError {
			m.ObjectsWritten.WithLabelValues(name, result).Inc()
			m.HitsDelivered.WithLabelValues(name, result).Add(float64(obj.Records))
			m.UploadBytes.WithLabelValues(name).Add(float64(obj.Size()))
			if !j.Late {
				m.DeliveryLatency.WithLabelValues(name).Observe(max(0, d.deps.Now().Sub(time.UnixMilli(j.WindowEnd)).Seconds()))
			}
			log.Info("object delivered", "records", obj.Records, "bytes", obj.Size(), "result", result, "attempts", attempt)
			if d.deps.Delivered != nil {
				d.deps.Delivered(j, obj.Size())
			}
			return nil
		}
		if ctx.Err() != nil || state.IsFenced(err) {
			m.ObjectsWritten.WithLabelValues(name, metrics.ResultAborted).Inc()
			return errors.Join(ctx.Err(), err)
		}
		log.Warn("upload failed; retrying while the object holds the partition's offset", "attempt", attempt, "retry_in", backoff,
			"problem", sink.Explain(err).Message, "err", err)
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
