package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/redis/go-redis/v9"

	"hitship/config"
	"hitship/delivery"
	"hitship/health"
	"hitship/internal/kafkaconn"
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
	store   *parking.Store
	queue   *retry.Queue
	worker  *retry.Worker
	scanner *retry.Scanner
	// dir receives parked objects downloaded for an attempt: the spool
	// directory (a local disk sized for windows; its *.obj leftovers of a
	// crash are removed when the spool starts).
	dir string
	// wake takes the names of integrations a reload enabled in the config
	// file: their held entries are made due at once (runParked).
	wake chan string
}

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
	p := &parked{store: st, queue: q, dir: s.cfg.Spool.Dir, wake: make(chan string, 64)}
	p.worker, err = retry.NewWorker(retry.WorkerConfig{
		Queue:  q,
		Handle: s.handleParked,
		Lease:  2 * s.cfg.Delivery.UploadTimeout,
		// Keeping a dead copy is a server-side copy (parking.Store.Copy), which
		// hardly depends on the object's size; it gets an upload's time anyway.
		HookTimeout:      s.cfg.Delivery.UploadTimeout,
		Logger:           s.log,
		OnOutcome:        s.parkedOutcome,
		AfterComplete:    s.afterDelivered,
		BeforeDeadLetter: s.beforeDeadLetter,
		AfterDeadLetter:  s.afterDeadLetter,
		Hold:             s.holdParked,
	})
	if err != nil {
		return nil, err
	}
	p.scanner, err = newScanner(st, q, s.log, func(e retry.Entry, dead bool) {
		kind := "parked"
		if dead {
			kind = "dead"
		}
		s.metrics.RetryEntriesRestored.WithLabelValues(e.Integration, kind).Inc()
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// newScanner returns the scanner of the parking bucket st for q.
func newScanner(st *parking.Store, q *retry.Queue, log *slog.Logger, restored func(retry.Entry, bool)) (*retry.Scanner, error) {
	return retry.NewScanner(retry.ScannerConfig{Queue: q, Bucket: scanBucket{st}, ParkedPrefix: st.ParkedPrefix(),
		DeadPrefix: st.DeadPrefix(), Logger: log, OnRestored: restored})
}

// scanBucket is the parking bucket as retry.Scanner sees it.
type scanBucket struct{ st *parking.Store }

func (b scanBucket) List(ctx context.Context, prefix string, fn func([]string) error) error {
	return b.st.List(ctx, prefix, fn)
}

func (b scanBucket) Head(ctx context.Context, key string) (retry.ObjectInfo, bool, error) {
	i, ok, err := b.st.Head(ctx, key)
	return retry.ObjectInfo{ContentType: i.ContentType, Size: i.Size, Modified: i.Modified, Metadata: i.Metadata}, ok, err
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

// wakeEnabledInFile asks runParked to wake the held entries of the
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
			select {
			case s.parked.wake <- in.Name:
			default:
			}
		}
	}
}

// wakeLoop wakes the entries of integrations sent to s.parked.wake until ctx
// ends.
func (s *Service) wakeLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case name := <-s.parked.wake:
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			n, err := s.parked.queue.Wake(wctx, name, s.now())
			cancel()
			switch {
			case err != nil:
				s.log.Warn("parked entries of an integration enabled in the config file wait for their hold", "integration", name, "err", err)
			case n > 0:
				s.log.Info("parked entries of the integration enabled in the config file are due now", "integration", name, "entries", n)
			}
		}
	}
}

// handleParked is one retry worker attempt: copy the parked object to the
// customer's bucket (a 412 counts as delivered). The worker then completes the
// entry and only after that deletes the parked copy (afterDelivered).
//
// A missing parked object is never taken for a delivery: the copy is deleted
// only after its entry was completed or became a dead letter. When it is
// missing anyway, the object was dead-lettered by a holder that stopped half-way
// (a dead copy exists: the dead-lettering is finished), or it was lost (the
// entry becomes a dead letter with reason MissingReason, loudly).
func (s *Service) handleParked(ctx context.Context, c retry.Claimed) error {
	inProgress := s.metrics.RetriesInProgress.WithLabelValues(c.Integration)
	inProgress.Inc()
	defer inProgress.Dec()
	s.reloadMu.Lock()
	bt, ok := s.built.ByName[c.Integration]
	if c.Target != "" { // the destination it was built for, or none
		bt, ok = s.built.ByID[c.Target]
	}
	s.reloadMu.Unlock()
	if !ok {
		return sink.OwnFailure(fmt.Errorf("integration %s is no longer configured for the tenant and destination this object was built for (target %s): it is never sent elsewhere", c.Integration, c.Target))
	}
	t := bt.Target
	// The read has a bound of its own, apart from the upload's; the object
	// goes to a file, never into memory as a whole.
	rctx, rcancel := context.WithTimeout(ctx, s.cfg.Delivery.UploadTimeout)
	obj, err := s.parked.store.Download(rctx, c.ParkedKey, s.parked.dir)
	rcancel()
	if parking.IsNotFound(err) {
		return s.parkedMissing(ctx, c)
	}
	if err != nil {
		return sink.OwnFailure(fmt.Errorf("reading the parked object: %w", err))
	}
	defer func() {
		if err := obj.Close(); err != nil {
			s.log.Warn("removing a downloaded parked object", "err", err)
		}
	}()
	actx, cancel := context.WithTimeout(ctx, s.cfg.Delivery.UploadTimeout)
	defer cancel()
	err = t.Store.Put(actx, c.Key, obj, sink.PutOptions{ContentType: obj.ContentType,
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
	s.metrics.UploadBytes.WithLabelValues(c.Integration).Add(float64(obj.Size()))
	s.log.Info("parked object delivered", entryAttrs(c), "key", c.Key, "attempt", c.Position().String(), "result", result)
	return nil
}

// MissingReason is the dead-letter reason of an entry whose parked object is
// gone without a dead-letter copy.
const MissingReason = "parked object missing"

// parkedMissing decides what an entry whose parked object is gone is: a
// dead-lettering to finish, or a lost object to report. Either way the worker
// dead-letters the entry (retry.DeadLetterNow); never is it delivered.
func (s *Service) parkedMissing(ctx context.Context, c retry.Claimed) error {
	dead := s.parked.store.DeadKey(c.Integration, c.Key)
	ok, err := s.parked.store.Exists(ctx, dead)
	if err != nil {
		return sink.OwnFailure(fmt.Errorf("parked object missing; looking for its dead-letter copy: %w", err))
	}
	if ok {
		s.log.Warn("parked object gone but its dead-letter copy is there; finishing the dead-lettering", entryAttrs(c),
			"key", c.Key, "parked_key", c.ParkedKey, "dead_key", dead)
		reason := c.LastError
		if reason == "" {
			reason = "dead-lettering interrupted"
		}
		return retry.DeadLetterNow(reason)
	}
	s.metrics.ParkedMissing.WithLabelValues(c.Integration).Inc()
	s.log.Error("parked object missing and no dead-letter copy: its records may not have been delivered; dead-lettering the entry",
		entryAttrs(c), "key", c.Key, "parked_key", c.ParkedKey, "records", c.Records, "first_offset", c.FirstOffset)
	return retry.DeadLetterNow(MissingReason)
}

// afterDelivered deletes the parked copy of a delivered entry, after the
// worker completed it.
func (s *Service) afterDelivered(ctx context.Context, c retry.Claimed) error {
	return s.parked.store.Delete(ctx, c.ParkedKey)
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
	recordHealth(ctx, s.log, s.health, c.Integration, delivery.HealthOutcome(err), s.now())
}

func recordHealth(ctx context.Context, log *slog.Logger, hb *health.Buffered, name string, o health.Outcome, at time.Time) {
	dec, err := hb.Record(ctx, name, o, at)
	if err != nil {
		log.Warn("health outcome not recorded", "integration", name, "err", err)
	}
	if dec.Disabled {
		log.Warn("integration auto-disabled by its failure ratio", "integration", name, "attempts", dec.Attempts, "failures", dec.Failures, "event", dec.Event)
	}
}

// beforeDeadLetter keeps a copy of the object under the dead-letter prefix
// (the parked copy stays until afterDeadLetter) and writes a system event. It
// is called on an entry already marked dying, and again by the next holder if
// anything after the mark failed: the copy is idempotent, and a repeated call
// can repeat the event (a crash between the event and the dead-letter record).
func (s *Service) beforeDeadLetter(ctx context.Context, c retry.Claimed, reason string) (string, error) {
	dead := s.parked.store.DeadKey(c.Integration, c.Key)
	if c.ParkedKey != dead {
		err := s.parked.store.Copy(ctx, c.ParkedKey, dead)
		if parking.IsNotFound(err) {
			// An earlier holder copied it and deleted the parked copy, or it is
			// lost (reason MissingReason): the record is written either way.
			if _, herr := s.parked.store.Exists(ctx, dead); herr != nil {
				return "", herr
			}
		} else if err != nil {
			return "", err
		}
	}
	at := s.now().UTC()
	id, err := s.rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.registry.EventsKey(), MaxLen: registry.MaxEvents, Approx: true,
		Values: []any{"type", DeadLetterEvent, "integration", c.Integration, "reason", reason, "by", "hitship-retry",
			"key", c.Key, "parked_key", dead, "at", at.Format("2006-01-02T15:04:05.000Z07:00")}}).Result()
	if err != nil {
		return "", fmt.Errorf("writing the dead-letter event: %w", err)
	}
	s.metrics.ObjectsDeadLettered.WithLabelValues(c.Integration).Inc()
	s.log.Error("object moved to dead letters", entryAttrs(c), "key", c.Key,
		"parked_key", dead, "reason", reason, "event", id)
	return dead, nil
}

// afterDeadLetter deletes the parked copy once the dead letter is recorded.
func (s *Service) afterDeadLetter(ctx context.Context, c retry.Claimed, dead string) error {
	if dead == "" || c.ParkedKey == dead {
		return nil
	}
	return s.parked.store.Delete(ctx, c.ParkedKey)
}

// runParked runs the retry worker and the parking bucket's scanner until ctx
// ends.
func (s *Service) runParked(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { _ = s.parked.scanner.Run(ctx) })
	wg.Go(func() { s.wakeLoop(ctx) })
	_ = s.parked.worker.Run(ctx)
	wg.Wait()
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
// or after since again: each entry is requeued at retry.Requeued, due now,
// with its object where it is (under the dead-letter prefix; the retry worker
// deletes it once delivered). Nothing is moved, so no crash or concurrent
// dead-lettering can leave an entry without its object. It returns how many
// were requeued.
//
// It first gives back their record to dead letters whose record Redis lost
// (retry.Scanner.ScanDead: an object under the dead-letter prefix without an
// entry), so that they are found too.
func Redeliver(ctx context.Context, st *parking.Store, q *retry.Queue, integration string, since, now time.Time) (int, error) {
	sc, err := newScanner(st, q, nil, nil)
	if err != nil {
		return 0, err
	}
	if _, err := sc.ScanDead(ctx); err != nil {
		return 0, fmt.Errorf("looking for dead letters without a record: %w", err)
	}
	dead, err := q.DeadLetters(ctx, integration, since)
	if err != nil {
		return 0, err
	}
	ids := make([]string, 0, len(dead))
	for _, e := range dead {
		ids = append(ids, e.ID)
	}
	return q.Requeue(ctx, ids, now, nil)
}

// NewRedisClient builds the Redis client of cfg (as Run does), for commands
// such as `hitship redeliver`. The caller closes it.
func NewRedisClient(cfg *config.Config) (*redis.Client, error) {
	rtls, err := kafkaconn.TLSConfig(cfg.Redis.TLS)
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
// The hook itself, afterEnable (control.go), is shared with `hitship enable`.
func (s *Service) onEnable(ctx context.Context, name string) error {
	var q *retry.Queue
	if s.parked != nil {
		q = s.parked.queue
	}
	n, err := afterEnable(ctx, s.health.Ledger(), q, name, s.now())
	if n > 0 {
		s.log.Info("parked entries of the re-enabled integration are due now", "integration", name, "entries", n)
	}
	return err
}
