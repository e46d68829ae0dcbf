package delivery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"hitship/delivery/parking"
	"hitship/delivery/retry"
	"hitship/health"
	"hitship/integrations"
	"hitship/integrations/registry"
	"hitship/metrics"
	"hitship/sink"
	s3sink "hitship/sink/s3"
)

// The retry side of a replica (DESIGN §5): objects that failed cycle 1 wait
// in the parking bucket with an entry in the Redis retry queue (Parking,
// above); Parked sends them on the product's schedule. Every replica runs one:
// a retry.Worker that claims due entries with a lease (one goroutine per
// entry), streams the parked object through a file to the customer's bucket,
// completes the entry and then deletes the parked copy, and reschedules on
// failure; after the last attempt it keeps a dead-letter copy, writes a
// dead_letter event and records the dead letter. A retry.Scanner queues again
// the parked objects whose entry Redis lost.

// DeadLetterEvent is the type of the system event written when an object
// becomes a dead letter.
const DeadLetterEvent = "dead_letter"

// ParkedConfig tunes Parked.
type ParkedConfig struct {
	// UploadTimeout bounds the read of a parked object and each upload (and
	// the dead-letter copy); the lease of an entry is twice as long.
	UploadTimeout time.Duration
	// Dir receives parked objects downloaded for an attempt: the spool
	// directory (a local disk sized for windows; its *.obj leftovers of a
	// crash are removed when the spool starts).
	Dir string
}

// ParkedDeps are Parked's collaborators.
type ParkedDeps struct {
	Logger  *slog.Logger
	Metrics *metrics.Metrics
	Health  *health.Buffered // every attempt's outcome
	Store   *parking.Store   // the parking bucket
	Queue   *retry.Queue
	// Redis and EventsKey are where the dead_letter system event goes (the
	// registry's events stream, registry.Store.EventsKey).
	Redis     redis.UniversalClient
	EventsKey string
	// Target returns the configured target an entry was built for (by its ID
	// when the entry names one, else by integration name); false: none, and
	// the object is never sent elsewhere.
	Target func(integration, target string) (*integrations.Target, bool)
	// Hold keeps an entry parked without an attempt (retry.WorkerConfig.Hold):
	// the entries of a disabled integration.
	Hold func(retry.Claimed) (time.Duration, bool)
	Now  func() time.Time // nil: time.Now
	// Delivered, if set, runs after an entry's object reached its customer
	// and before its parked copy is deleted (staged delivery records it); an
	// error makes the worker try the completion again.
	Delivered func(ctx context.Context, c retry.Claimed) error
}

// Parked is the retry side of a replica: the parking bucket, the Redis retry
// queue, this replica's retry worker and the bucket's scanner. Safe for
// concurrent use.
type Parked struct {
	cfg     ParkedConfig
	deps    ParkedDeps
	worker  *retry.Worker
	scanner *retry.Scanner
	// wake takes the names of integrations a reload enabled in the config
	// file: their held entries are made due at once (wakeLoop).
	wake chan string
}

// NewParked builds the retry side over deps.Store and deps.Queue.
func NewParked(cfg ParkedConfig, deps ParkedDeps) (*Parked, error) {
	if deps.Logger == nil || deps.Metrics == nil || deps.Health == nil || deps.Store == nil || deps.Queue == nil ||
		deps.Redis == nil || deps.Target == nil || deps.Hold == nil {
		return nil, errors.New("delivery: parked needs a logger, metrics, health, a parking store, a queue, Redis, targets and a hold")
	}
	p := &Parked{cfg: cfg, deps: deps, wake: make(chan string, 64)}
	var err error
	p.worker, err = retry.NewWorker(retry.WorkerConfig{
		Queue:  deps.Queue,
		Handle: p.handleParked,
		Lease:  2 * cfg.UploadTimeout,
		// Keeping a dead copy is a server-side copy (parking.Store.Copy), which
		// hardly depends on the object's size; it gets an upload's time anyway.
		HookTimeout:      cfg.UploadTimeout,
		Logger:           deps.Logger,
		OnOutcome:        p.parkedOutcome,
		AfterComplete:    p.afterDelivered,
		BeforeDeadLetter: p.beforeDeadLetter,
		AfterDeadLetter:  p.afterDeadLetter,
		Hold:             deps.Hold,
	})
	if err != nil {
		return nil, err
	}
	p.scanner, err = NewScanner(deps.Store, deps.Queue, deps.Logger, func(e retry.Entry, dead bool) {
		kind := "parked"
		if dead {
			kind = "dead"
		}
		deps.Metrics.RetryEntriesRestored.WithLabelValues(e.Integration, kind).Inc()
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// Store returns the parking bucket.
func (p *Parked) Store() *parking.Store { return p.deps.Store }

// Queue returns the retry queue.
func (p *Parked) Queue() *retry.Queue { return p.deps.Queue }

// Wake asks Run to make the held entries of integration due at once (it was
// enabled in the config file). It does not block: with the queue of names
// full, the entries wait for the end of their hold.
func (p *Parked) Wake(integration string) {
	select {
	case p.wake <- integration:
	default:
	}
}

func (p *Parked) now() time.Time {
	if p.deps.Now != nil {
		return p.deps.Now()
	}
	return time.Now()
}

// NewScanner returns the scanner of the parking bucket st for q (restored,
// if set, is told about every entry it gives back).
func NewScanner(st *parking.Store, q *retry.Queue, log *slog.Logger, restored func(retry.Entry, bool)) (*retry.Scanner, error) {
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

// entryAttrs names an entry's integration, partition and window in a log
// line, as the delivery's own lines do (the caller adds the key).
func entryAttrs(c retry.Claimed) slog.Attr {
	return slog.Group("", "integration", c.Integration, "partition", c.Partition,
		"window", time.UnixMilli(c.WindowStart).UTC().Format(time.RFC3339))
}

// wakeLoop wakes the entries of integrations sent to p.wake (Wake) until ctx
// ends.
func (p *Parked) wakeLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case name := <-p.wake:
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			n, err := p.deps.Queue.Wake(wctx, name, p.now())
			cancel()
			switch {
			case err != nil:
				p.deps.Logger.Warn("parked entries of an integration enabled in the config file wait for their hold", "integration", name, "err", err)
			case n > 0:
				p.deps.Logger.Info("parked entries of the integration enabled in the config file are due now", "integration", name, "entries", n)
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
func (p *Parked) handleParked(ctx context.Context, c retry.Claimed) error {
	inProgress := p.deps.Metrics.RetriesInProgress.WithLabelValues(c.Integration)
	inProgress.Inc()
	defer inProgress.Dec()
	t, ok := p.deps.Target(c.Integration, c.Target) // the destination it was built for, or none
	if !ok {
		return sink.OwnFailure(fmt.Errorf("integration %s is no longer configured for the tenant and destination this object was built for (target %s): it is never sent elsewhere", c.Integration, c.Target))
	}
	// The read has a bound of its own, apart from the upload's; the object
	// goes to a file, never into memory as a whole.
	rctx, rcancel := context.WithTimeout(ctx, AttemptTimeout(p.cfg.UploadTimeout, c.Bytes))
	obj, err := p.deps.Store.Download(rctx, c.ParkedKey, p.cfg.Dir)
	rcancel()
	if parking.IsNotFound(err) {
		return p.parkedMissing(ctx, c)
	}
	if err != nil {
		return sink.OwnFailure(fmt.Errorf("reading the parked object: %w", err))
	}
	defer func() {
		if err := obj.Close(); err != nil {
			p.deps.Logger.Warn("removing a downloaded parked object", "err", err)
		}
	}()
	actx, cancel := context.WithTimeout(ctx, AttemptTimeout(p.cfg.UploadTimeout, obj.Size()))
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
	p.deps.Metrics.ObjectsWritten.WithLabelValues(c.Integration, result).Inc()
	p.deps.Metrics.HitsDelivered.WithLabelValues(c.Integration, result).Add(float64(c.Records))
	p.deps.Metrics.UploadBytes.WithLabelValues(c.Integration).Add(float64(obj.Size()))
	if result == metrics.ResultOK {
		countDelivered(ctx, p.deps.Logger, p.deps.Health, c.Integration, c.Records, p.now())
	}
	p.deps.Logger.Info("parked object delivered", entryAttrs(c), "key", c.Key, "attempt", c.Position().String(), "result", result)
	return nil
}

// MissingReason is the dead-letter reason of an entry whose parked object is
// gone without a dead-letter copy.
const MissingReason = "parked object missing"

// parkedMissing decides what an entry whose parked object is gone is: a
// dead-lettering to finish, or a lost object to report. Either way the worker
// dead-letters the entry (retry.DeadLetterNow); never is it delivered.
func (p *Parked) parkedMissing(ctx context.Context, c retry.Claimed) error {
	dead := p.deps.Store.DeadKey(c.Integration, c.Key)
	ok, err := p.deps.Store.Exists(ctx, dead)
	if err != nil {
		return sink.OwnFailure(fmt.Errorf("parked object missing; looking for its dead-letter copy: %w", err))
	}
	if ok {
		p.deps.Logger.Warn("parked object gone but its dead-letter copy is there; finishing the dead-lettering", entryAttrs(c),
			"key", c.Key, "parked_key", c.ParkedKey, "dead_key", dead)
		reason := c.LastError
		if reason == "" {
			reason = "dead-lettering interrupted"
		}
		return retry.DeadLetterNow(reason)
	}
	p.deps.Metrics.ParkedMissing.WithLabelValues(c.Integration).Inc()
	p.deps.Logger.Error("parked object missing and no dead-letter copy: its records may not have been delivered; dead-lettering the entry",
		entryAttrs(c), "key", c.Key, "parked_key", c.ParkedKey, "records", c.Records, "first_offset", c.FirstOffset)
	return retry.DeadLetterNow(MissingReason)
}

// afterDelivered deletes the parked copy of a delivered entry, after the
// worker completed it.
func (p *Parked) afterDelivered(ctx context.Context, c retry.Claimed) error {
	if p.deps.Delivered != nil {
		if err := p.deps.Delivered(ctx, c); err != nil {
			return err
		}
	}
	return p.deps.Store.Delete(ctx, c.ParkedKey)
}

// parkedOutcome records a worker attempt in the health ledger and metrics.
func (p *Parked) parkedOutcome(c retry.Claimed, err error) {
	result := metrics.ResultOK
	if err != nil {
		result = metrics.ResultError
		p.deps.Logger.Warn("parked object not delivered", entryAttrs(c), "key", c.Key, "attempt", c.Position().String(),
			"problem", s3sink.Explain(err).Message, "err", err)
	}
	p.deps.Metrics.UploadAttempts.WithLabelValues(c.Integration, result).Inc()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	recordHealth(ctx, p.deps.Logger, p.deps.Health, c.Integration, err, p.now())
}

func recordHealth(ctx context.Context, log *slog.Logger, hb *health.Buffered, name string, attemptErr error, at time.Time) {
	o := HealthOutcome(attemptErr)
	dec, err := hb.Record(ctx, name, o, at)
	if err != nil {
		log.Warn("health outcome not recorded", "integration", name, "err", err)
	}
	note(ctx, log, hb, name, o, at, attemptErr)
	if dec.Disabled {
		log.Warn("integration auto-disabled by its failure ratio", "integration", name, "attempts", dec.Attempts, "failures", dec.Failures, "event", dec.Event)
	}
}

// beforeDeadLetter keeps a copy of the object under the dead-letter prefix
// (the parked copy stays until afterDeadLetter) and writes a system event. It
// is called on an entry already marked dying, and again by the next holder if
// anything after the mark failed: the copy is idempotent, and a repeated call
// can repeat the event (a crash between the event and the dead-letter record).
func (p *Parked) beforeDeadLetter(ctx context.Context, c retry.Claimed, reason string) (string, error) {
	dead := p.deps.Store.DeadKey(c.Integration, c.Key)
	if c.ParkedKey != dead {
		err := p.deps.Store.Copy(ctx, c.ParkedKey, dead)
		if parking.IsNotFound(err) {
			// An earlier holder copied it and deleted the parked copy, or it is
			// lost (reason MissingReason): the record is written either way.
			if _, herr := p.deps.Store.Exists(ctx, dead); herr != nil {
				return "", herr
			}
		} else if err != nil {
			return "", err
		}
	}
	at := p.now().UTC()
	id, err := p.deps.Redis.XAdd(ctx, &redis.XAddArgs{Stream: p.deps.EventsKey, MaxLen: registry.MaxEvents, Approx: true,
		Values: []any{"type", DeadLetterEvent, "integration", c.Integration, "reason", reason, "by", "hitship-retry",
			"key", c.Key, "parked_key", dead, "at", at.Format("2006-01-02T15:04:05.000Z07:00")}}).Result()
	if err != nil {
		return "", fmt.Errorf("writing the dead-letter event: %w", err)
	}
	p.deps.Metrics.ObjectsDeadLettered.WithLabelValues(c.Integration).Inc()
	p.deps.Logger.Error("object moved to dead letters", entryAttrs(c), "key", c.Key,
		"parked_key", dead, "reason", reason, "event", id)
	return dead, nil
}

// afterDeadLetter deletes the parked copy once the dead letter is recorded.
func (p *Parked) afterDeadLetter(ctx context.Context, c retry.Claimed, dead string) error {
	if dead == "" || c.ParkedKey == dead {
		return nil
	}
	return p.deps.Store.Delete(ctx, c.ParkedKey)
}

// Run runs the retry worker, the parking bucket's scanner and the wake-ups
// (Wake) until ctx ends. It blocks; call it once.
func (p *Parked) Run(ctx context.Context) {
	var wg sync.WaitGroup
	wg.Go(func() { _ = p.scanner.Run(ctx) })
	wg.Go(func() { p.wakeLoop(ctx) })
	_ = p.worker.Run(ctx)
	wg.Wait()
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
	sc, err := NewScanner(st, q, nil, nil)
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
