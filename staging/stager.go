package staging

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"hitship/delivery"
	"hitship/delivery/parking"
	"hitship/metrics"
	"hitship/sink"
	"hitship/state"
)

// StagerConfig tunes a Stager.
type StagerConfig struct {
	Concurrency   int           // segment writes at once (default 16)
	UploadTimeout time.Duration // per attempt (default 60s)
	RetryMin      time.Duration // first backoff (default 1s)
	RetryMax      time.Duration // backoff cap (default 30s)
}

// Stager is the Kafka half's delivery (a consumer.Delivery): it writes each
// closed per-partition buffer as a segment to the staging bucket and reports
// it delivered once the bucket has it, which releases the partition's offset.
// A write that fails is retried with capped exponential backoff for as long
// as the generation lasts: the offset is held (back-pressure, never loss). A
// customer's bucket is never on this path. Safe for concurrent use.
type Stager struct {
	cfg    StagerConfig
	store  *parking.Store
	layout Layout
	log    *slog.Logger
	m      *metrics.Metrics
	q      *queue
}

// NewStager returns a Stager writing under layout to store.
func NewStager(cfg StagerConfig, store *parking.Store, layout Layout, log *slog.Logger, m *metrics.Metrics) *Stager {
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
	return &Stager{cfg: cfg, store: store, layout: layout, log: log, m: m, q: newQueue(cfg.Concurrency)}
}

// Deliver stages j (see Stager); done is called once.
func (s *Stager) Deliver(ctx context.Context, j *delivery.Job, done func(error)) {
	s.q.push(func() { done(s.stage(ctx, j)) })
}

func (s *Stager) stage(ctx context.Context, j *delivery.Job) error {
	if err := ctx.Err(); err != nil {
		j.Buffer.Discard()
		return err
	}
	obj, err := j.Buffer.Finish(sink.CompressionNone)
	if err != nil {
		return err // a spool error: the worker restarts from its committed offset
	}
	defer obj.Release()
	key := s.layout.SegmentKey(SegmentID{CloseAt: j.CloseAt, Target: j.Target.ID, Window: j.WindowStart,
		Partition: j.Partition, FirstOffset: j.FirstOffset, Digest: j.Digest})
	backoff := s.cfg.RetryMin
	for attempt := 1; ; attempt++ {
		if err := j.Fence(ctx); err != nil {
			if state.IsFenced(err) {
				s.log.Warn("not staging: this member no longer owns the partition", "partition", j.Partition, "err", err)
			}
			return err
		}
		actx, cancel := context.WithTimeout(ctx, delivery.AttemptTimeout(s.cfg.UploadTimeout, obj.Size()))
		err := s.store.Put(actx, key, obj, sink.PutOptions{ContentType: "application/x-ndjson"})
		cancel()
		if err == nil {
			s.m.SegmentsStaged.WithLabelValues(metrics.ResultOK).Inc()
			s.m.StagedBytes.Add(float64(obj.Size()))
			return nil
		}
		if ctx.Err() != nil {
			return errors.Join(ctx.Err(), err)
		}
		s.m.SegmentsStaged.WithLabelValues(metrics.ResultError).Inc()
		s.log.Warn("cannot write a segment to the staging bucket; the partition's offset is held until it can",
			"partition", j.Partition, "integration", j.Target.Name, "attempt", attempt, "retry_in", backoff, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, s.cfg.RetryMax)
	}
}
