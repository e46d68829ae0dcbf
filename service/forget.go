package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"hitship/config"
	"hitship/delivery/parking"
	"hitship/delivery/retry"
	"hitship/health"
	"hitship/integrations/registry"
	"hitship/internal/kafkaconn"
	"hitship/staging"
)

// ErrStillConfigured is wrapped by Forget's error for an integration that is
// still in the config.
var ErrStillConfigured = errors.New("still configured")

// Forgetter removes what hitship keeps for integrations that are no longer
// configured (DESIGN §4 "deleting removes the configuration and everything
// hitship keeps for it"): `hitship forget` and DELETE /v1/integrations/{name}.
// Safe for concurrent use.
type Forgetter struct {
	Registry *registry.Store
	Ledger   *health.Ledger
	// Queue and Parking are nil without a parking bucket.
	Queue   *retry.Queue
	Parking *parking.Store
	// Staging is the staging bucket's layout with staged delivery (nil
	// without): the integration's segments, intents and manifests there.
	Staging *staging.Layout
	// Configured reports whether name is in the (running) config.
	Configured func(name string) bool
	Now        func() time.Time
}

// Remains is what hitship keeps for one integration.
type Remains struct {
	Integration string `json:"integration"`
	// State is its recorded runtime state, if any (whatever client it was
	// recorded for).
	State          *registry.Status `json:"state,omitempty"`
	LedgerAttempts int              `json:"ledger_attempts"`
	// RetryEntries wait for an attempt (or are leased); DeadLetters are
	// entries after their last attempt.
	RetryEntries int `json:"retry_entries"`
	DeadLetters  int `json:"dead_letters"`
	InlineNotes  int `json:"inline_failure_notes"`
	// ParkedObjects and DeadObjects are objects in the parking bucket.
	ParkedObjects int `json:"parked_objects"`
	DeadObjects   int `json:"dead_objects"`
	// StagedSegments are its segments in the staging bucket, not delivered
	// (staged delivery: they go out if the integration comes back for the
	// same client); StagedRecords its intents and manifests.
	StagedSegments int `json:"staged_segments"`
	StagedRecords  int `json:"staged_records"`
}

// Empty reports whether nothing is kept.
func (r Remains) Empty() bool {
	return r.State == nil && r.LedgerAttempts == 0 && r.RetryEntries == 0 && r.DeadLetters == 0 &&
		r.InlineNotes == 0 && r.ParkedObjects == 0 && r.DeadObjects == 0 && r.StagedSegments == 0 && r.StagedRecords == 0
}

// LogValue names only what is kept, for one log line.
func (r Remains) LogValue() slog.Value {
	var as []slog.Attr
	if r.State != nil {
		as = append(as, slog.String("state", string(r.State.State)), slog.Int64("state_client_id", r.State.ClientID))
	}
	for _, kv := range []struct {
		k string
		v int
	}{{"ledger_attempts", r.LedgerAttempts}, {"retry_entries", r.RetryEntries}, {"dead_letters", r.DeadLetters},
		{"inline_failure_notes", r.InlineNotes}, {"parked_objects", r.ParkedObjects}, {"dead_objects", r.DeadObjects},
		{"staged_segments", r.StagedSegments}, {"staged_records", r.StagedRecords}} {
		if kv.v > 0 {
			as = append(as, slog.Int(kv.k, kv.v))
		}
	}
	return slog.GroupValue(as...)
}

// Forgotten answers Forget.
type Forgotten struct {
	Integration string `json:"integration"`
	Purged      bool   `json:"purged"`
	// Removed is what Forget deleted. Without purge, waiting retry entries
	// became dead letters (counted in Removed.RetryEntries and in
	// Kept.DeadLetters).
	Removed Remains `json:"removed"`
	// Kept is what stays without purge: dead letters and their objects, which
	// `hitship redeliver` can send if the integration comes back.
	Kept  Remains        `json:"kept"`
	Event registry.Event `json:"event"`
}

// Remains returns what hitship keeps for name (nothing is changed). It
// scans the retry queue and lists the parking bucket's prefixes of name.
func (f *Forgetter) Remains(ctx context.Context, name string) (Remains, error) {
	r := Remains{Integration: name}
	st, found, err := f.Registry.Recorded(ctx, name)
	if err != nil {
		return r, err
	}
	if found {
		r.State = &st
	}
	if r.LedgerAttempts, _, err = f.Ledger.Ratio(ctx, name, f.now()); err != nil {
		return r, err
	}
	if f.Queue != nil {
		es, err := f.Queue.ListByIntegration(ctx, name)
		if err != nil {
			return r, err
		}
		for _, e := range es {
			if e.State == retry.StateDead {
				r.DeadLetters++
			} else {
				r.RetryEntries++
			}
		}
		notes, err := f.Queue.InlineFailures(ctx, name)
		if err != nil {
			return r, err
		}
		r.InlineNotes = len(notes)
	}
	if f.Parking != nil {
		parked, dead, err := f.Parking.IntegrationObjects(ctx, name)
		if err != nil {
			return r, err
		}
		r.ParkedObjects, r.DeadObjects = len(parked), len(dead)
		if f.Staging != nil {
			segs, recs, err := f.Staging.IntegrationObjects(ctx, f.Parking, name)
			if err != nil {
				return r, err
			}
			r.StagedSegments, r.StagedRecords = len(segs), len(recs)
		}
	}
	return r, nil
}

// Forget removes everything hitship keeps for name, which must not be
// configured (ErrStillConfigured): its retry entries and inline-failure
// notes, its health ledger, and last its runtime state (a tombstone in the
// integrations topic, the Redis entry) with a delete_integration event naming
// by. With purge its parked and dead objects and every retry entry are
// deleted too; without, waiting retry entries become dead letters and the
// objects stay, so that `hitship redeliver` can send them if the name comes
// back. Every step is idempotent: after an error, calling Forget again
// finishes the job. It blocks for many Redis round trips, a scan of the
// retry queue, listings of the parking bucket and one acknowledged write to
// the integrations topic.
func (f *Forgetter) Forget(ctx context.Context, name string, purge bool, by string) (Forgotten, error) {
	out := Forgotten{Integration: name, Purged: purge}
	if f.Configured(name) {
		return out, fmt.Errorf("integration %q is still configured: remove it from the config file and reload every replica, then forget it: %w",
			name, ErrStillConfigured)
	}
	before, err := f.Remains(ctx, name)
	if err != nil {
		return out, err
	}
	out.Removed = Remains{Integration: name, State: before.State, LedgerAttempts: before.LedgerAttempts, InlineNotes: before.InlineNotes}
	out.Kept = Remains{Integration: name}
	now := f.now()
	if f.Queue != nil {
		if purge {
			es, err := f.Queue.DeleteIntegration(ctx, name)
			if err != nil {
				return out, err
			}
			for _, e := range es {
				if e.State == retry.StateDead {
					out.Removed.DeadLetters++
				} else {
					out.Removed.RetryEntries++
				}
			}
		} else {
			n, err := f.Queue.RetireIntegration(ctx, name, fmt.Sprintf("integration %s forgotten by %s; kept for hitship redeliver", name, by), now)
			if err != nil {
				return out, err
			}
			out.Removed.RetryEntries = n
			out.Kept.DeadLetters = before.DeadLetters + n
		}
		if _, err := f.Queue.ForgetInlineFailures(ctx, name); err != nil {
			return out, err
		}
	}
	if err := f.Ledger.Reset(ctx, name); err != nil {
		return out, err
	}
	if err := f.Ledger.ForgetLast(ctx, name); err != nil {
		return out, err
	}
	if f.Parking != nil {
		if purge {
			if out.Removed.ParkedObjects, out.Removed.DeadObjects, err = f.Parking.DeleteIntegration(ctx, name); err != nil {
				return out, err
			}
		} else {
			out.Kept.ParkedObjects, out.Kept.DeadObjects = before.ParkedObjects, before.DeadObjects
		}
		if f.Staging != nil {
			if purge {
				segs, recs, err := f.Staging.IntegrationObjects(ctx, f.Parking, name)
				if err != nil {
					return out, err
				}
				for _, k := range append(segs, recs...) {
					if err := f.Parking.Delete(ctx, k); err != nil {
						return out, err
					}
				}
				out.Removed.StagedSegments, out.Removed.StagedRecords = len(segs), len(recs)
			} else {
				out.Kept.StagedSegments, out.Kept.StagedRecords = before.StagedSegments, before.StagedRecords
			}
		}
	}
	reason := "removed from the config; runtime state, health ledger and retry entries forgotten"
	if purge {
		reason += "; parked and dead objects (and staged segments, intents and manifests) deleted"
	} else if !out.Kept.Empty() {
		reason += "; dead letters and their objects kept for hitship redeliver"
	}
	if out.Event, err = f.Registry.Forget(ctx, name, reason, by); err != nil {
		return out, err
	}
	return out, nil
}

func (f *Forgetter) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

// forgetter is the Forgetter of the running service: "configured" means in
// the running config.
func (s *Service) forgetter() *Forgetter {
	f := &Forgetter{Registry: s.registry, Ledger: s.health.Ledger(), Now: s.now, Configured: func(name string) bool {
		s.reloadMu.Lock()
		defer s.reloadMu.Unlock()
		return slices.ContainsFunc(s.cfg.Integrations, func(in config.Integration) bool { return in.Name == name })
	}}
	if s.parked != nil {
		f.Queue, f.Parking = s.parked.Queue(), s.parked.Store()
	}
	if s.cfg.StagedDelivery() {
		f.Staging = &staging.Layout{Prefix: s.cfg.Parking.Prefix}
	}
	return f
}

// adminForget answers DELETE /v1/integrations/{name}.
func (s *Service) adminForget(ctx context.Context, name string, purge bool, by string) (any, error) {
	out, err := s.forgetter().Forget(ctx, name, purge, by)
	if err != nil {
		return nil, err
	}
	s.log.Info("integration forgotten", "integration", name, "purged", purge, "removed", out.Removed, "kept", out.Kept, "event", out.Event)
	return out, nil
}

// noteRemoved logs, for every integration a reload removed, what hitship
// still keeps for it and how to delete it. Errors are logged.
func (s *Service) noteRemoved(removed []string) {
	if len(removed) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f := s.forgetter()
	for _, name := range removed {
		r, err := f.Remains(ctx, name)
		switch {
		case err != nil:
			s.log.Warn("integration removed from the config; cannot tell what hitship still keeps for it", "integration", name,
				"delete_with", forgetCommand(name), "err", err)
		case r.Empty():
			s.log.Info("integration removed from the config; hitship keeps nothing else for it", "integration", name)
		default:
			s.log.Warn("integration removed from the config; hitship still keeps state for it (its open windows are still delivered). Once no replica runs it, delete the rest with the command given",
				"integration", name, "remains", r, "delete_with", forgetCommand(name))
		}
	}
}

// removedNames returns the integrations of old that cur no longer has
// (enabled in the file or not).
func removedNames(old, cur *config.Config) []string {
	now := configuredClients(cur)
	var out []string
	for _, in := range old.Integrations {
		if _, ok := now[in.Name]; !ok {
			out = append(out, in.Name)
		}
	}
	return out
}

func forgetCommand(name string) string {
	return fmt.Sprintf("hitship forget --config FILE %s (add --purge to delete its parked and dead objects too), or DELETE /v1/integrations/%s", name, name)
}

// OpenRegistry returns the registry store a replica has, for commands
// (hitship forget; enable and disable from the command line): over cfg's
// Redis and the integrations topic, read to its end (so it creates the topic
// when it is missing), with cfg's integrations as the configured ones. It
// returns the Redis client too. The caller calls close.
func OpenRegistry(ctx context.Context, cfg *config.Config, log *slog.Logger) (reg *registry.Store, rdb redis.UniversalClient, close func(), err error) {
	var closers []func()
	close = func() {
		for _, c := range slices.Backward(closers) {
			c()
		}
	}
	defer func() {
		if err != nil {
			close()
		}
	}()
	if rdb, err = NewRedisClient(cfg); err != nil {
		return nil, nil, close, err
	}
	closers = append(closers, func() { _ = rdb.Close() })
	mech, tc, err := kafkaconn.Auth(cfg.Kafka)
	if err != nil {
		return nil, nil, close, err
	}
	kv, err := newIntegrationsTopic(cfg, mech, tc, log, nil)
	if err != nil {
		return nil, nil, close, err
	}
	if err := kv.Start(ctx); err != nil {
		return nil, nil, close, err
	}
	closers = append(closers, func() { _ = kv.Close() })
	if reg, err = registry.NewStore(rdb, registry.Config{Prefix: cfg.Redis.KeyPrefix, Now: time.Now, Durable: kv, Logger: log}); err != nil {
		return nil, nil, close, err
	}
	reg.SetConfigured(configuredClients(cfg))
	return reg, rdb, close, nil
}

// OpenForgetter builds a Forgetter from cfg for `hitship forget`:
// "configured" means in cfg. See OpenRegistry. The caller calls close.
func OpenForgetter(ctx context.Context, cfg *config.Config, log *slog.Logger) (f *Forgetter, close func(), err error) {
	reg, rdb, close, err := OpenRegistry(ctx, cfg, log)
	if err != nil {
		return nil, close, err
	}
	defer func() {
		if err != nil {
			close()
		}
	}()
	l, err := health.New(rdb, health.Config{Prefix: cfg.Redis.KeyPrefix, MinAttempts: cfg.Delivery.HealthMinAttempts, Registry: reg})
	if err != nil {
		return nil, close, err
	}
	f = &Forgetter{Registry: reg, Ledger: l, Configured: func(name string) bool {
		return slices.ContainsFunc(cfg.Integrations, func(in config.Integration) bool { return in.Name == name })
	}}
	if cfg.Parking.Enabled() {
		if f.Queue, err = NewRetryQueue(cfg, rdb); err != nil {
			return nil, close, err
		}
		if f.Parking, err = NewParkingStore(ctx, cfg); err != nil {
			return nil, close, err
		}
		if cfg.StagedDelivery() {
			f.Staging = &staging.Layout{Prefix: cfg.Parking.Prefix}
		}
	}
	return f, close, nil
}
