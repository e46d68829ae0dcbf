package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/redis/go-redis/v9"

	"hitship/config"
	"hitship/health"
	"hitship/metrics"
	"hitship/parking"
	"hitship/registry"
	"hitship/retry"
	"hitship/sink"
)

// DeadLetterEvent is the type of the system event written when an object
// becomes a dead letter.
const DeadLetterEvent = "dead_letter"

// parked is the retry side of a replica: the parking bucket, the Redis retry
// queue and this replica's retry worker. nil when no parking bucket is
// configured.
type parked struct {
	store  *parking.Store
	queue  *retry.Queue
	worker *retry.Worker
}

// disabledHold is how long a retry entry of a disabled integration waits
// before it is looked at again. Enabling the integration wakes its entries at
// once (Service.onEnable), so this only bounds the work spent on entries that
// stay parked.
const disabledHold = time.Minute

// newHealth builds the health ledger, kept with or without a parking bucket.
func (s *Service) newHealth() (*health.Buffered, error) {
	l, err := health.New(s.rdb, health.Config{Prefix: s.cfg.Redis.KeyPrefix, MinAttempts: s.cfg.Delivery.HealthMinAttempts})
	if err != nil {
		return nil, err
	}
	return health.NewBuffered(l, 0)
}

// NewParkingStore builds the parking bucket of cfg (which must have parking
// enabled): static credentials when configured, else hitship's own AWS identity.
func NewParkingStore(ctx context.Context, cfg *config.Config) (*parking.Store, error) {
	p := cfg.Parking
	if !p.Enabled() {
		return nil, errors.New("parking: no parking bucket configured")
	}
	var creds aws.CredentialsProvider
	if p.Credentials.AccessKeyID != "" {
		sp, err := sink.NewStaticProvider(p.Credentials.AccessKeyID, p.Credentials.SecretAccessKey())
		if err != nil {
			return nil, fmt.Errorf("parking.credentials: %w", err)
		}
		creds = sp
	} else {
		base, err := sink.DefaultBaseCredentials(ctx)
		if err != nil {
			return nil, fmt.Errorf("parking: hitship's own AWS identity: %w", err)
		}
		creds = base
	}
	return parking.New(parking.Config{Bucket: p.Bucket, Region: p.Region, Endpoint: p.Endpoint, PathStyle: p.PathStyle,
		Prefix: p.Prefix, Credentials: creds})
}

// NewRetryQueue returns the retry queue of cfg over rdb.
func NewRetryQueue(cfg *config.Config, rdb redis.UniversalClient) (*retry.Queue, error) {
	return retry.NewQueue(rdb, retry.QueueConfig{Prefix: cfg.Redis.KeyPrefix})
}

// newParked builds the retry side when parking is configured (nil otherwise).
func (s *Service) newParked() (*parked, error) {
	if !s.cfg.Parking.Enabled() {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	st, err := NewParkingStore(ctx, s.cfg)
	if err != nil {
		return nil, err
	}
	q, err := NewRetryQueue(s.cfg, s.rdb)
	if err != nil {
		return nil, err
	}
	p := &parked{store: st, queue: q}
	p.worker, err = retry.NewWorker(retry.WorkerConfig{
		Queue:            q,
		Handle:           s.handleParked,
		Lease:            2 * s.cfg.Delivery.UploadTimeout,
		Logger:           s.log,
		OnOutcome:        s.parkedOutcome,
		BeforeDeadLetter: s.beforeDeadLetter,
		Hold:             s.holdParked,
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

func (s *Service) now() time.Time {
	if s.deps.Now != nil {
		return s.deps.Now()
	}
	return time.Now()
}

// entryAttrs names an entry's integration, partition and window in a log
// line, as the delivery's own lines do (the caller adds the key).
func entryAttrs(c retry.Claimed) slog.Attr {
	return slog.Group("", "integration", c.Integration, "partition", c.Partition,
		"window", time.UnixMilli(c.WindowStart).UTC().Format(time.RFC3339))
}

// holdParked keeps the entries of a disabled integration (at runtime or in
// the config file) parked (DESIGN §5):
// no attempt, no health outcome, the schedule resumes where it stopped once
// the integration is enabled.
//
// It asks Redis rather than this replica's watcher: an enable wakes the
// entries at once, and a watcher that has not polled since would postpone
// them again for a whole hold. If Redis does not answer, the watcher decides.
func (s *Service) holdParked(c retry.Claimed) (time.Duration, bool) {
	s.reloadMu.Lock()
	bt, ok := s.built.byName[c.Integration]
	s.reloadMu.Unlock()
	if ok && !bt.cfg.Enabled { // disabled in the config file
		return disabledHold, true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	st, err := s.registry.Status(ctx, c.Integration)
	if err != nil {
		return disabledHold, s.watcher.Disabled(c.Integration)
	}
	return disabledHold, st.State == registry.Disabled || st.State == registry.AutoDisabled
}

// handleParked is one retry worker attempt: copy the parked object to the
// customer's bucket (a 412 counts as delivered), then delete it.
func (s *Service) handleParked(ctx context.Context, c retry.Claimed) error {
	inProgress := s.metrics.RetriesInProgress.WithLabelValues(c.Integration)
	inProgress.Inc()
	defer inProgress.Dec()
	s.reloadMu.Lock()
	bt, ok := s.built.byName[c.Integration]
	if c.Target != "" { // the destination it was built for, or none
		bt, ok = s.built.byID[c.Target]
	}
	s.reloadMu.Unlock()
	if !ok {
		return fmt.Errorf("integration %s is no longer configured for the tenant and destination this object was built for (target %s): it is never sent elsewhere", c.Integration, c.Target)
	}
	t := bt.target
	obj, err := s.parked.store.Get(ctx, c.ParkedKey)
	if parking.IsNotFound(err) {
		// Only a delivery deletes a parked object: a holder whose lease was lost
		// after it delivered. Nothing is left to send.
		s.log.Warn("parked object already gone; counting it as delivered", entryAttrs(c), "key", c.Key, "parked_key", c.ParkedKey)
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the parked object: %w", err)
	}
	actx, cancel := context.WithTimeout(ctx, s.cfg.Delivery.UploadTimeout)
	defer cancel()
	err = t.Store.Put(actx, c.Key, sink.BytesBody(obj.Data), sink.PutOptions{ContentType: obj.ContentType,
		ContentEncoding: obj.ContentEncoding, IfNoneMatch: t.IfNoneMatch})
	result := metrics.ResultOK
	if sink.IsAlreadyExists(err) {
		result, err = metrics.ResultExists, nil
	}
	if err != nil {
		return err
	}
	s.metrics.ObjectsWritten.WithLabelValues(c.Integration, result).Inc()
	s.metrics.HitsDelivered.WithLabelValues(c.Integration, result).Add(float64(c.Records))
	s.metrics.UploadBytes.WithLabelValues(c.Integration).Add(float64(len(obj.Data)))
	s.log.Info("parked object delivered", entryAttrs(c), "key", c.Key, "attempt", c.Position().String(), "result", result)
	if err := s.parked.store.Delete(ctx, c.ParkedKey); err != nil {
		// Delivered; the next attempt finds the object there (412) and deletes again.
		return fmt.Errorf("deleting the delivered parked object: %w", err)
	}
	return nil
}

// parkedOutcome records a worker attempt in the health ledger and metrics.
func (s *Service) parkedOutcome(c retry.Claimed, err error) {
	result := metrics.ResultOK
	if err != nil {
		result = metrics.ResultError
		s.log.Warn("parked object not delivered", entryAttrs(c), "key", c.Key, "attempt", c.Position().String(),
			"problem", sink.Explain(err).Message, "err", err)
	}
	s.metrics.UploadAttempts.WithLabelValues(c.Integration, result).Inc()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	recordHealth(ctx, s.log, s.health, c.Integration, err == nil, s.now())
}

func recordHealth(ctx context.Context, log *slog.Logger, hb *health.Buffered, name string, ok bool, at time.Time) {
	dec, err := hb.Record(ctx, name, ok, at)
	if err != nil {
		log.Warn("health outcome not recorded", "integration", name, "err", err)
	}
	if dec.Disabled {
		log.Warn("integration auto-disabled by its failure ratio", "integration", name, "attempts", dec.Attempts, "failures", dec.Failures, "event", dec.Event)
	}
}

// beforeDeadLetter moves the object to the dead-letter prefix and writes a
// system event.
func (s *Service) beforeDeadLetter(ctx context.Context, c retry.Claimed, reason string) (string, error) {
	dead := s.parked.store.DeadKey(c.Integration, c.Key)
	if err := s.parked.store.Move(ctx, c.ParkedKey, dead); err != nil {
		return "", err
	}
	at := s.now().UTC()
	id, err := s.rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.registry.EventsKey(), MaxLen: registry.MaxEvents, Approx: true,
		Values: []any{"type", DeadLetterEvent, "integration", c.Integration, "reason", reason, "by", "hitship-retry",
			"key", c.Key, "parked_key", dead, "at", at.Format("2006-01-02T15:04:05.000Z07:00")}}).Result()
	if err != nil {
		return "", fmt.Errorf("writing the dead-letter event: %w", err)
	}
	s.metrics.ObjectsDeadLettered.WithLabelValues(c.Integration).Inc()
	s.log.Error("object moved to dead letters after the last retry", entryAttrs(c), "key", c.Key,
		"parked_key", dead, "reason", reason, "event", id)
	return dead, nil
}

// runParked runs the retry worker until ctx ends.
func (s *Service) runParked(ctx context.Context) {
	_ = s.parked.worker.Run(ctx)
}

// healthFlushInterval is how often outcomes held in memory during a Redis
// outage are offered to Redis again.
const healthFlushInterval = 5 * time.Second

// runHealth writes back the health outcomes held in memory while Redis was
// unreachable, every healthFlushInterval until ctx ends.
func (s *Service) runHealth(ctx context.Context) {
	t := time.NewTicker(healthFlushInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if !s.health.Degraded() {
				continue
			}
			decs, err := s.health.Flush(ctx, s.now())
			if err != nil {
				s.log.Warn("health outcomes still held in memory", "pending", s.health.Pending(), "err", err)
			}
			for _, d := range decs {
				if d.Disabled {
					s.log.Warn("integration auto-disabled by its failure ratio", "integration", d.Integration,
						"attempts", d.Attempts, "failures", d.Failures, "event", d.Event)
				}
			}
		}
	}
}

// Redeliver queues the dead letters of integration ("" for all) that died at
// or after since again: each object is moved back from the dead-letter prefix
// to the parked prefix and its entry is requeued at retry.Requeued, due now.
// It returns how many were requeued.
func Redeliver(ctx context.Context, st *parking.Store, q *retry.Queue, integration string, since, now time.Time) (int, error) {
	dead, err := q.DeadLetters(ctx, integration, since)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range dead {
		back := st.ParkedKey(e.Integration, e.Key)
		if err := st.Move(ctx, e.ParkedKey, back); err != nil {
			return n, fmt.Errorf("redeliver %s: %w", e.ID, err)
		}
		k, err := q.Requeue(ctx, []string{e.ID}, now, func(retry.Entry) string { return back })
		if err != nil {
			return n, err
		}
		n += k
	}
	return n, nil
}

// NewRedisClient builds the Redis client of cfg (as Run does), for commands
// such as `hitship redeliver`. The caller closes it.
func NewRedisClient(cfg *config.Config) (*redis.Client, error) {
	rtls, err := tlsConfig(cfg.Redis.TLS)
	if err != nil {
		return nil, fmt.Errorf("redis.tls: %w", err)
	}
	return redis.NewClient(&redis.Options{Addr: cfg.Redis.Addr, Username: cfg.Redis.Username,
		Password: cfg.Redis.Password(), DB: cfg.Redis.DB, TLSConfig: rtls}), nil
}

// RetriesView is the admin API's view of one integration's health ledger and
// retry queue (GET /v1/integrations/{name}/retries).
type RetriesView struct {
	Integration string      `json:"integration"`
	Health      HealthView  `json:"health"`
	Queue       retry.Stats `json:"queue"` // the whole queue, all integrations
	Entries     []EntryView `json:"entries"`
}

// HealthView is the ledger of one integration over the last health.Window.
type HealthView struct {
	Attempts int     `json:"attempts"`
	Failures int     `json:"failures"`
	Ratio    float64 `json:"failure_ratio"`
	Degraded bool    `json:"degraded"` // outcomes held in memory (Redis trouble)
}

// EntryView is one retry entry with its state.
type EntryView struct {
	retry.Entry
	State string `json:"state"`
}

func (s *Service) adminRetries(ctx context.Context, name string) (any, error) {
	now := s.now()
	att, fail, err := s.health.Ledger().Ratio(ctx, name, now)
	if err != nil {
		return nil, err
	}
	v := RetriesView{Integration: name, Entries: []EntryView{},
		Health: HealthView{Attempts: att, Failures: fail, Degraded: s.health.Degraded()}}
	if att > 0 {
		v.Health.Ratio = float64(fail) / float64(att)
	}
	if s.parked == nil {
		return v, nil
	}
	if v.Queue, err = s.parked.queue.Stats(ctx, now); err != nil {
		return nil, err
	}
	es, err := s.parked.queue.ListByIntegration(ctx, name)
	if err != nil {
		return nil, err
	}
	for _, e := range es {
		v.Entries = append(v.Entries, EntryView{Entry: e, State: e.State})
	}
	return v, nil
}

// onEnable resets the ledger of a re-enabled integration (DESIGN §5) and
// makes its parked entries due now, so they do not sit out their hold.
func (s *Service) onEnable(ctx context.Context, name string) error {
	if err := s.health.Ledger().Reset(ctx, name); err != nil {
		return err
	}
	if s.parked == nil {
		return nil
	}
	n, err := s.parked.queue.Wake(ctx, name, s.now())
	if err != nil {
		return err
	}
	if n > 0 {
		s.log.Info("parked entries of the re-enabled integration are due now", "integration", name, "entries", n)
	}
	return nil
}
