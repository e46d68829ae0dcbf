package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/redis/go-redis/v9"

	"hitship/config"
	"hitship/delivery"
	"hitship/delivery/parking"
	"hitship/delivery/retry"
	"hitship/health"
	"hitship/integrations"
	"hitship/integrations/registry"
	"hitship/internal/redisconn"
	s3sink "hitship/sink/s3"
)

// DeadLetterEvent is the type of the system event written when an object
// becomes a dead letter (delivery.DeadLetterEvent).
const DeadLetterEvent = delivery.DeadLetterEvent

// MissingReason is the dead-letter reason of an entry whose parked object is
// gone without a dead-letter copy (delivery.MissingReason).
const MissingReason = delivery.MissingReason

// disabledHold is how long a retry entry of a disabled integration waits
// before it is looked at again. Enabling the integration wakes its entries at
// once (Service.onEnable), so this only bounds the work spent on entries that
// stay parked.
const disabledHold = time.Minute

// newHealth builds the health ledger, kept with or without a parking bucket.
func (s *Service) newHealth() (*health.Buffered, error) {
	l, err := health.New(s.rdb, health.Config{Prefix: s.cfg.Redis.KeyPrefix, MinAttempts: s.cfg.Delivery.HealthMinAttempts,
		MinFailing: s.cfg.Delivery.HealthMinFailing, Registry: s.registry})
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
		sp, err := s3sink.NewStaticProvider(p.Credentials.AccessKeyID, p.Credentials.SecretAccessKey())
		if err != nil {
			return nil, fmt.Errorf("parking.credentials: %w", err)
		}
		creds = sp
	} else {
		base, err := s3sink.DefaultBaseCredentials(ctx)
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
func (s *Service) newParked() (*delivery.Parked, error) {
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
	return delivery.NewParked(delivery.ParkedConfig{UploadTimeout: s.cfg.Delivery.UploadTimeout, Dir: s.cfg.Spool.Dir},
		delivery.ParkedDeps{Logger: s.log, Metrics: s.metrics, Health: s.health, Store: st, Queue: q,
			Redis: s.rdb, EventsKey: s.registry.EventsKey(), Target: s.parkedTarget, Hold: s.holdParked, Now: s.deps.Now,
			Delivered: s.parkedDelivered})
}

// parkedDelivered records a staged object that a retry worker delivered
// (staging.Assembler.ParkedDelivered); nothing to do for per-partition objects.
func (s *Service) parkedDelivered(ctx context.Context, c retry.Claimed) error {
	if s.assembler == nil {
		return nil
	}
	return s.assembler.ParkedDelivered(ctx, c.Integration, c.Target, c.Key, c.WindowStart)
}

// parkedTarget is the configured target a retry entry was built for: by its
// ID when the entry names one (the destination it was built for, or none),
// else by integration name (entries of earlier versions).
func (s *Service) parkedTarget(integration, target string) (*integrations.Target, bool) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	bt, ok := s.built.ByName[integration]
	if target != "" {
		bt, ok = s.built.ByID[target]
	}
	return bt.Target, ok
}

func (s *Service) now() time.Time {
	if s.deps.Now != nil {
		return s.deps.Now()
	}
	return time.Now()
}

// holdParked keeps the entries of a disabled integration (at runtime or in
// the config file) parked (DESIGN §5): no attempt, no health outcome, the
// schedule resumes where it stopped once the integration is enabled (by the
// admin API, or by a reload of a file that enables it: both wake the entries).
//
// The config file's state is read from the running config itself: a disabled
// integration has no built target. The runtime state is asked of Redis rather
// than this replica's watcher: an enable wakes the entries at once, and a
// watcher that has not polled since would postpone them again for a whole
// hold. If Redis does not answer, the watcher decides.
func (s *Service) holdParked(c retry.Claimed) (time.Duration, bool) {
	s.reloadMu.Lock()
	fileDisabled := false
	for _, in := range s.cfg.Integrations {
		if in.Name == c.Integration {
			fileDisabled = !in.Enabled
			break
		}
	}
	s.reloadMu.Unlock()
	if fileDisabled {
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

// wakeEnabledInFile asks the retry side (delivery.Parked.Wake) to wake the held entries of the
// integrations that cur enables and old disabled. It does not block: with
// the queue of names full, the entries wait for the end of their hold.
func (s *Service) wakeEnabledInFile(old, cur *config.Config) {
	if s.parked == nil {
		return
	}
	was := map[string]bool{}
	for _, in := range old.Integrations {
		was[in.Name] = !in.Enabled
	}
	for _, in := range cur.Integrations {
		if in.Enabled && was[in.Name] {
			s.parked.Wake(in.Name)
		}
	}
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

// NewRedisClient builds the Redis client of cfg (as Run does), for commands
// such as `hitship redeliver`. The caller closes it.
func NewRedisClient(cfg *config.Config) (redis.UniversalClient, error) {
	return redisconn.New(cfg.Redis)
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
	// CustomerFailures are the failures on the customer's side (the only
	// ones that count toward auto-disable); FailingSeconds is the time from
	// the first to the last of them.
	CustomerFailures int     `json:"customer_failures"`
	FailingSeconds   float64 `json:"customer_failing_seconds"`
	Degraded         bool    `json:"degraded"` // outcomes held in memory (Redis trouble)
}

// EntryView is one retry entry with its state.
type EntryView struct {
	retry.Entry
	State string `json:"state"`
}

func (s *Service) adminRetries(ctx context.Context, name string) (any, error) {
	now := s.now()
	c, err := s.health.Ledger().Counts(ctx, name, now)
	if err != nil {
		return nil, err
	}
	v := RetriesView{Integration: name, Entries: []EntryView{},
		Health: HealthView{Attempts: c.Attempts, Failures: c.Failures, CustomerFailures: c.CustomerFailures,
			FailingSeconds: c.FailingSpan.Seconds(), Degraded: s.health.Degraded()}}
	if c.Attempts > 0 {
		v.Health.Ratio = float64(c.Failures) / float64(c.Attempts)
	}
	if s.parked == nil {
		return v, nil
	}
	if v.Queue, err = s.parked.Queue().Stats(ctx, now); err != nil {
		return nil, err
	}
	es, err := s.parked.Queue().ListByIntegration(ctx, name)
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
// The hook itself, afterEnable (control.go), is shared with `hitship enable`.
func (s *Service) onEnable(ctx context.Context, name string) error {
	var q *retry.Queue
	if s.parked != nil {
		q = s.parked.Queue()
	}
	n, err := afterEnable(ctx, s.health.Ledger(), q, name, s.now())
	if n > 0 {
		s.log.Info("parked entries of the re-enabled integration are due now", "integration", name, "entries", n)
	}
	return err
}
