package service

import (
	"context"
	"hitship/sink"
	"maps"
	"slices"
	"time"

	"hitship/delivery/retry"
	"hitship/integrations/registry"
	"hitship/internal/buildinfo"
)

// gaugeInterval is how often the shared-state gauges (integration state and
// health, retry queue) are read from Redis. Each replica reads them: the
// figures are the same everywhere, dashboards aggregate them with max.
const gaugeInterval = 15 * time.Second

// setBuildInfo sets hitship_build_info from the binary's build information
// (internal/buildinfo: what the build set at link time, else Go's VCS stamp).
func (s *Service) setBuildInfo() {
	bi := buildinfo.Get()
	s.metrics.BuildInfo.WithLabelValues(bi.Version, bi.Revision, bi.GoVersion).Set(1)
}

// configuredIntegrations returns the configured integrations' names, each
// with whether the config file enables it.
func (s *Service) configuredIntegrations() map[string]bool {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	out := make(map[string]bool, len(s.built.ByName))
	for n, bt := range s.built.ByName {
		out[n] = bt.Cfg.Enabled
	}
	return out
}

// stateGauges sets the integration state gauges from this replica's view of
// the registry (no Redis call).
func (s *Service) stateGauges() {
	for n, enabled := range s.configuredIntegrations() {
		st := s.watcher.Status(n)
		on, auto := 0.0, 0.0
		if enabled && st.State != registry.Disabled && st.State != registry.AutoDisabled {
			on = 1
		}
		if st.State == registry.AutoDisabled {
			auto = 1
		}
		s.metrics.IntegrationEnabled.WithLabelValues(n).Set(on)
		s.metrics.IntegrationAutoDisabled.WithLabelValues(n).Set(auto)
	}
	s.reloadMu.Lock()
	built := s.built
	s.reloadMu.Unlock()
	for _, t := range built.All {
		prev := 0.0
		if sw, ok := t.Store.(*sink.SwapStore); ok {
			if st, ok := sw.Current().(interface{ UsesPreviousExternalID() bool }); ok && st.UsesPreviousExternalID() {
				prev = 1
			}
		}
		s.metrics.IntegrationPreviousExternalID.WithLabelValues(t.Name).Set(prev)
	}
}

// sharedGauges reads the health ledger's 12-hour ratios and the retry queue
// from Redis. Errors leave the gauges as they were (hitship_redis_up says why).
func (s *Service) sharedGauges(ctx context.Context) {
	names := slices.Collect(maps.Keys(s.configuredIntegrations()))
	now := s.now()
	for _, n := range names {
		att, fail, err := s.health.Ledger().Ratio(ctx, n, now)
		if err != nil {
			return
		}
		ratio := 1.0
		if att > 0 {
			ratio = float64(att-fail) / float64(att)
		}
		s.metrics.IntegrationSuccessRatio.WithLabelValues(n).Set(ratio)
	}
	if s.parked == nil {
		return
	}
	es, err := s.parked.Queue().ListByIntegration(ctx, "")
	if err != nil {
		return
	}
	count := make(map[string]int, len(names))
	for _, e := range es {
		if e.State != retry.StateDead {
			count[e.Integration]++
		}
	}
	for _, n := range names {
		s.metrics.RetryQueueEntries.WithLabelValues(n).Set(float64(count[n]))
	}
}

// runGauges keeps the shared-state gauges current until ctx ends.
func (s *Service) runGauges(ctx context.Context) {
	t := time.NewTicker(gaugeInterval)
	defer t.Stop()
	for {
		s.stateGauges()
		rctx, cancel := context.WithTimeout(ctx, gaugeInterval)
		s.sharedGauges(rctx)
		cancel()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
