package service

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go/sasl"

	"hitship/config"
	"hitship/integrations/defs"
	"hitship/integrations/registry"
	"hitship/internal/kafkaconn"
	"hitship/kstore"
	"hitship/state"
)

// newIntegrationsTopic returns the durable copy of the integrations' runtime
// state: a kstore.Map over kafka.integrations_topic, connecting with the
// SASL and TLS settings of kafka: as the dead-letter writer does. It
// connects to nothing until Start.
func newIntegrationsTopic(cfg *config.Config, mech sasl.Mechanism, tc *tls.Config, log *slog.Logger, onChange func(string)) (*kstore.Map, error) {
	return kstore.New(kstore.Config{
		Brokers:  cfg.Kafka.Brokers,
		Topic:    cfg.Kafka.IntegrationsTopic,
		Key:      "kafka.integrations_topic",
		ClientID: cfg.Kafka.ClientID,
		SASL:     mech,
		TLS:      tc,
		OnChange: onChange,
		Logger:   log,
	})
}

// newRegistry builds the registry of a replica: the durable copy, the Store
// over Redis and it, and the watcher routing reads. The durable copy is read
// by Run (Start), before the first record.
func (s *Service) newRegistry(mech sasl.Mechanism, tc *tls.Config) error {
	kv, err := newIntegrationsTopic(s.cfg, mech, tc, s.log, func(key string) {
		// The follower runs from Run on, after New set the watcher.
		if _, ok := defs.IsKey(key); ok || key == "" {
			s.pokeDefinitions()
		}
		s.watcher.Poke()
	})
	if err != nil {
		return err
	}
	s.intstore = kv
	sealer, err := newSealer(s.cfg)
	if err != nil {
		return err
	}
	// The prefix as New saw it: a reload replaces s.cfg under reloadMu, which
	// an API write taking the lock does not hold (a race the race detector
	// found in TestIntegrationsOnThreeReplicas); reloadable keeps the prefix.
	prefix := s.cfg.Redis.KeyPrefix
	if s.defs, err = defs.New(defs.Config{Map: kv, Redis: s.rdb, Sealer: sealer,
		Lock: func(name string) string { return state.DefinitionLockKey(prefix, name) }}); err != nil {
		return err
	}
	if s.registry, err = registry.NewStore(s.rdb, registry.Config{Prefix: s.cfg.Redis.KeyPrefix, Now: time.Now,
		Durable: kv, Logger: s.log}); err != nil {
		return err
	}
	s.registry.SetConfigured(configuredClients(s.cfg))
	s.watcher, err = registry.NewWatcher(s.registry, registry.WatcherConfig{Logger: s.log,
		OnChange: func(st registry.Status) {
			s.log.Info("integration state", "integration", st.Name, "state", st.State, "reason", st.Reason, "by", st.By,
				"since", st.Since, "client_id", st.ClientID)
			s.routes.Rebuild()
			s.stateGauges()
		},
		OnReconcile: func(r registry.Reconciled) {
			s.metrics.StatesReconciled.WithLabelValues("restored").Add(float64(len(r.Restored)))
			s.metrics.StatesReconciled.WithLabelValues("published").Add(float64(len(r.Published)))
			s.metrics.StatesReconciled.WithLabelValues("removed").Add(float64(len(r.Removed)))
		},
	})
	return err
}

// configuredClients maps every integration of cfg (enabled in the file or
// not) to its client id, for registry.Store.SetConfigured.
func configuredClients(cfg *config.Config) map[string]int64 {
	out := make(map[string]int64, len(cfg.Integrations))
	for _, in := range cfg.Integrations {
		out[in.Name] = in.ClientID
	}
	return out
}

// kafkaCheckTimeout bounds the start-up check of the Kafka connection.
const kafkaCheckTimeout = 15 * time.Second

// checkKafka connects to the brokers once with the consumer's dialer
// (kafkaconn.Check) and returns an error naming the setting to fix when they
// refuse hitship's SASL or TLS settings: no retry would cure that, and the
// integrations topic would otherwise wait for Kafka forever (an untrusted
// certificate) or blame the topic's ACLs (a wrong password). Anything else
// (brokers unreachable) is left to startIntegrationsTopic, which waits.
func (s *Service) checkKafka(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, kafkaCheckTimeout)
	defer cancel()
	err := kafkaconn.Check(cctx, s.cfg.Kafka, s.dialer)
	if kafkaconn.IsMisconfigured(err) {
		return fmt.Errorf("cannot connect to Kafka: %w", err)
	}
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		// What a TLS listener does to plain text, and a SASL listener to a
		// client that does not log in, but also a broker going down: a hint.
		s.log.Warn("Kafka closed the connection without an answer; waiting for it. If the broker listens with TLS, set kafka.tls.enabled: true; if it requires SASL, set kafka.sasl.mechanism and the credentials",
			"tls", s.cfg.Kafka.TLS.Enabled, "sasl", s.cfg.Kafka.SASL.Mechanism, "err", err)
	case err != nil:
		s.log.Debug("start-up check of the Kafka connection inconclusive; waiting for Kafka", "err", err)
	}
	return nil
}

// topicRetry is how long Run waits before it tries the integrations topic
// again after a transient failure.
const topicRetry = 5 * time.Second

// startIntegrationsTopic reads the integrations topic to its end (creating it
// when missing) before the replica consumes. A failure waiting cannot cure
// (rights, the topic's shape) is returned in plain words; others (Kafka
// unreachable) are logged once and tried again until ctx ends, as the
// consumer itself would wait for Kafka.
func (s *Service) startIntegrationsTopic(ctx context.Context) error {
	for attempt := 1; ; attempt++ {
		err := s.intstore.Start(ctx)
		switch {
		case err == nil:
			if attempt > 1 {
				s.log.Info("integrations topic read; consuming", "topic", s.cfg.Kafka.IntegrationsTopic)
			}
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case kstore.IsPermanent(err):
			return err
		case attempt == 1:
			s.log.Warn("cannot read the integrations topic yet; this replica waits for it before it consumes", "err", err)
		}
		t := time.NewTimer(topicRetry)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
