// Package service wires hitship together from a validated config: the consumer
// group, window buffers in the spool, the delivery to every integration's bucket,
// the Redis state and the HTTP endpoints. `hitship run`, `hitship demo` and the
// end-to-end tests all build the service through New, so they run the same code.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"hitship/admin"
	"hitship/config"
	"hitship/consumer"
	"hitship/delivery"
	"hitship/health"
	"hitship/metrics"
	"hitship/registry"
	"hitship/sink"
	"hitship/state"
	"hitship/window"
)

// Deps are what the caller owns: logger, metrics registry, and optional overrides.
type Deps struct {
	Logger   *slog.Logger
	Registry *prometheus.Registry
	// Redis, if set, is used instead of a client built from cfg.Redis (the caller closes it).
	Redis redis.UniversalClient
	// Stores, if set, builds integration stores instead of S3Stores with one
	// shared HTTP client (sink.NewHTTPClient).
	Stores StoreFactory
	// Delivered, if set, is told about every object written.
	Delivered func(j *consumer.Job, size int64)
	// Now is the wall clock; nil: time.Now.
	Now func() time.Time
	// Listener, if set, serves HTTP instead of listening on cfg.HTTP.Listen.
	Listener net.Listener
}

// Service is one hitship replica.
type Service struct {
	cfg      *config.Config
	deps     Deps
	log      *slog.Logger
	metrics  *metrics.Metrics
	rdb      redis.UniversalClient
	ownRedis bool
	spool    *sink.Spool
	dlq      *kafka.Writer
	consumer *consumer.Consumer
	routes   *routes
	keys     *sink.KeyTemplate
	stores   StoreFactory

	reloadMu sync.Mutex
	built    *built // the targets of the running config

	registry *registry.Store   // runtime state of integrations, shared by replicas
	watcher  *registry.Watcher // this replica's view of it
	admin    *admin.API        // nil when no admin token is configured
	parked   *parked           // nil when no parking bucket is configured
	health   *health.Buffered  // the 12-hour ledger of every integration

	redisDown atomic.Bool // as seen by the last probe; only for logging the edges
}

// New builds a service from cfg, which must have passed Validate. It connects to
// nothing yet.
func New(cfg *config.Config, deps Deps) (*Service, error) {
	if deps.Logger == nil || deps.Registry == nil {
		return nil, errors.New("service: logger and registry are required")
	}
	s := &Service{cfg: cfg, deps: deps, log: deps.Logger}
	s.metrics = metrics.New(deps.Registry)
	s.setBuildInfo()
	keys, err := sink.ParseKeyTemplate(cfg.S3.KeyTemplate)
	if err != nil {
		return nil, fmt.Errorf("s3.key_template: %w", err)
	}
	s.keys, s.stores = keys, deps.Stores
	if s.stores == nil {
		s.stores = S3Stores(sink.NewHTTPClient())
	}
	if s.built, err = buildTargets(cfg, keys, s.stores, nil); err != nil {
		return nil, err
	}
	if s.rdb = deps.Redis; s.rdb == nil {
		rtls, err := tlsConfig(cfg.Redis.TLS)
		if err != nil {
			return nil, fmt.Errorf("redis.tls: %w", err)
		}
		s.rdb = redis.NewClient(&redis.Options{Addr: cfg.Redis.Addr, Username: cfg.Redis.Username,
			Password: cfg.Redis.Password(), DB: cfg.Redis.DB, TLSConfig: rtls})
		s.ownRedis = true
	}
	if s.registry, err = registry.New(s.rdb, cfg.Redis.KeyPrefix, time.Now); err != nil {
		return nil, err
	}
	if s.watcher, err = registry.NewWatcher(s.registry, registry.WatcherConfig{Logger: s.log, OnChange: func(st registry.Status) {
		s.log.Info("integration state", "integration", st.Name, "state", st.State, "reason", st.Reason, "by", st.By, "since", st.Since)
		s.routes.rebuild()
		s.stateGauges()
	}}); err != nil {
		return nil, err
	}
	s.routes = &routes{}
	s.routes.set(s.built.routeTargets(), s.watcher.Disabled)
	if len(s.built.unbuilt) > 0 {
		s.log.Warn("integrations disabled in the config whose store cannot be built are left out", "integrations", s.built.unbuilt)
	}
	if s.health, err = s.newHealth(); err != nil {
		return nil, err
	}
	if s.parked, err = s.newParked(); err != nil {
		return nil, err
	}
	if token := cfg.HTTP.AdminToken(); token != "" {
		ad := admin.Deps{Logger: s.log, Registry: s.registry, Integrations: s.adminIntegrations, Tester: s.TestIntegration}
		ad.Retries, ad.OnEnable = s.adminRetries, s.onEnable
		if s.admin, err = admin.New(admin.Config{Token: token}, ad); err != nil {
			return nil, err
		}
	}
	for _, t := range s.built.all {
		s.metrics.Integration(t.Name)
	}
	mech, tc, err := kafkaAuth(cfg.Kafka)
	if err != nil {
		return nil, err
	}
	st, err := state.New(s.rdb, cfg.Redis.KeyPrefix, cfg.Kafka.Group)
	if err != nil {
		return nil, err
	}
	// A buffer keeps up to 1/32 of the spool's memory budget in memory before it
	// spills (2 MiB of the default 64 MiB): most objects are written and uploaded
	// without touching the disk, the budget still bounds the total, and past it
	// the largest buffers spill first (measured in bench/README.md).
	mem := int64(cfg.Spool.MemoryBytes)
	if s.spool, err = sink.NewSpool(sink.SpoolConfig{Dir: cfg.Spool.Dir, MaxBytes: int64(cfg.Spool.MaxBytes),
		MemoryBytes: mem, BufferMemoryBytes: min(mem/32, 2<<20)}); err != nil {
		return nil, fmt.Errorf("spool.dir: %w", err)
	}
	ddeps := delivery.Deps{Logger: s.log, Metrics: s.metrics, Now: deps.Now, Delivered: deps.Delivered, Health: s.health}
	if s.parked != nil {
		ddeps.Parking = &delivery.Parking{Store: s.parked.store, Queue: s.parked.queue}
	}
	del, err := delivery.NewInline(delivery.Config{Concurrency: cfg.Delivery.Concurrency, UploadTimeout: cfg.Delivery.UploadTimeout,
		RetryMin: cfg.Delivery.RetryMin, RetryMax: cfg.Delivery.RetryMax}, ddeps)
	if err != nil {
		return nil, err
	}
	s.dlq = deadLetterWriter(cfg.Kafka, mech, tc)
	incs, err := incarnations(cfg.Kafka, tc)
	if err != nil {
		return nil, err
	}
	wc := window.Config{Size: cfg.Window.Size.Milliseconds(), Grace: cfg.Window.Grace.Milliseconds(),
		MaxFutureSkew: cfg.Window.MaxFutureSkew.Milliseconds(), UseRecordTime: cfg.Window.Timestamp == config.TimestampRecord}
	s.consumer, err = consumer.New(consumer.Config{
		Brokers:           cfg.Kafka.Brokers,
		Topic:             cfg.Kafka.Topic,
		Group:             cfg.Kafka.Group,
		Dialer:            kafkaDialer(cfg.Kafka, mech, tc),
		SessionTimeout:    cfg.Kafka.SessionTimeout,
		RebalanceTimeout:  cfg.Kafka.RebalanceTimeout,
		HeartbeatInterval: cfg.Kafka.HeartbeatInterval,
		CommitInterval:    cfg.Kafka.CommitInterval,
		IdleTimeout:       cfg.Window.IdleTimeout,
		MaxRecordBytes:    int(cfg.Kafka.MaxRecordBytes),
		MaxDepth:          cfg.Kafka.MaxDepth,
		Window:            wc,
	}, consumer.Deps{Logger: s.log, Metrics: s.metrics, State: st, Routes: s.routes, Spool: s.spool,
		Delivery: del, DeadLetters: s.dlq, Now: deps.Now, Incarnations: incs,
		StateFor: func(inc string) (consumer.PartitionState, error) { return st.ForIncarnation(inc) }})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Run serves HTTP on cfg.HTTP.Listen (unless it is "") and consumes until ctx
// ends, then stops cleanly. It blocks.
func (s *Service) Run(ctx context.Context) error {
	defer s.close()
	var wg sync.WaitGroup
	var srv *http.Server
	if ln := s.deps.Listener; ln != nil || s.cfg.HTTP.Listen != "" {
		if ln == nil {
			var err error
			if ln, err = net.Listen("tcp", s.cfg.HTTP.Listen); err != nil {
				return fmt.Errorf("http.listen %s: %w", s.cfg.HTTP.Listen, err)
			}
		}
		srv = &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				s.log.Error("http server", "err", err)
			}
		}()
	}
	stopStats := make(chan struct{})
	wg.Add(2)
	go func() { defer wg.Done(); s.spoolStats(stopStats) }()
	go func() { defer wg.Done(); s.probeRedis(stopStats) }()
	// Know which integrations are disabled before the first record; if Redis does
	// not answer, start with all enabled and let the watcher catch up.
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if err := s.watcher.Refresh(rctx); err != nil {
		s.log.Warn("integration states not read yet; all integrations count as enabled until Redis answers", "err", err)
	}
	cancel()
	wctx, stopWatch := context.WithCancel(context.Background())
	wg.Add(1)
	go func() { defer wg.Done(); _ = s.watcher.Run(wctx) }()
	wg.Add(2)
	go func() { defer wg.Done(); s.runHealth(wctx) }()
	go func() { defer wg.Done(); s.runGauges(wctx) }()
	if s.parked != nil {
		wg.Add(1)
		go func() { defer wg.Done(); s.runParked(wctx) }()
	}
	err := s.consumer.Run(ctx)
	stopWatch()
	close(stopStats)
	if srv != nil {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = srv.Shutdown(sctx)
		cancel()
	}
	wg.Wait()
	return err
}

func (s *Service) spoolStats(stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			st := s.spool.Stats()
			s.metrics.SpoolBytes.WithLabelValues("memory").Set(float64(st.MemoryBytes))
			s.metrics.SpoolBytes.WithLabelValues("disk").Set(float64(st.DiskBytes))
		}
	}
}

// redisProbeInterval is how often probeRedis pings Redis for hitship_redis_up.
const redisProbeInterval = time.Second

// probeRedis keeps hitship_redis_up current with a PING every
// redisProbeInterval until stop is closed.
func (s *Service) probeRedis(stop <-chan struct{}) {
	t := time.NewTicker(redisProbeInterval)
	defer t.Stop()
	for {
		ctx, cancel := context.WithTimeout(context.Background(), redisProbeInterval)
		err := s.pingRedis(ctx)
		cancel()
		if err != nil && s.redisDown.CompareAndSwap(false, true) {
			s.log.Warn("degraded: Redis unreachable; deliveries and commits go on, idle closes wait, snapshots are kept in memory", "err", err)
		} else if err == nil && s.redisDown.CompareAndSwap(true, false) {
			s.log.Info("Redis answers again")
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// pingRedis pings Redis and sets hitship_redis_up from the answer.
func (s *Service) pingRedis(ctx context.Context) error {
	err := s.rdb.Ping(ctx).Err()
	if err != nil {
		s.metrics.RedisUp.Set(0)
		return err
	}
	s.metrics.RedisUp.Set(1)
	return nil
}

func (s *Service) close() {
	if err := s.dlq.Close(); err != nil {
		s.log.Warn("closing the dead-letter writer", "err", err)
	}
	// Writer.Close leaves a Transport it did not create open: close its
	// connections and metadata goroutine, or every Service leaks them.
	if tr, ok := s.dlq.Transport.(*kafka.Transport); ok {
		tr.CloseIdleConnections()
	}
	if s.ownRedis {
		_ = s.rdb.Close()
	}
}

// Handler serves /metrics, /healthz and /readyz.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.deps.Registry, promhttp.HandlerOpts{Registry: s.deps.Registry}))
	if s.admin != nil {
		mux.Handle("/v1/", s.admin)
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if !s.consumer.Joined() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: not yet a member of the consumer group\n"))
			return
		}
		// Without Redis the pipeline still delivers and commits (DESIGN §5): the
		// replica stays in the load balancer, and says it is degraded.
		if err := s.pingRedis(ctx); err != nil {
			_, _ = fmt.Fprintf(w, "degraded: redis unreachable: %v\n", err)
			return
		}
		if n := s.consumer.Assigned(); n > 0 {
			_, _ = fmt.Fprintf(w, "ready: %d partitions\n", n)
		} else {
			// More replicas than partitions: a spare member, ready to take over.
			_, _ = w.Write([]byte("ready: member without partitions (more replicas than partitions)\n"))
		}
	})
	return mux
}

// Reload applies a new, validated config without a restart: integrations added,
// changed and removed take effect at once; the targets of unchanged integrations
// are kept as they are, so their open buffers go on. Buffers are keyed by target
// ID (consumer.Target): when a reload changes what decides where and for whom
// an integration's records go (client id, bucket, region, endpoint, path style,
// prefix, format, compression), records read after it go to new buffers, and
// the open buffers close as usual and go to the old destination with the old
// tenant's records only; a removed integration's open buffers are still
// delivered. Every partition worker records the new membership in its
// routing log before it routes with it (consumer/membership.go), so a replay
// after a crash routes each record as the first run did. Only
// the integrations and the s3 settings other than key_template may change; any
// other difference refuses the whole reload and the running config stays. Safe
// for concurrent use.
func (s *Service) Reload(cfg *config.Config) error {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if err := reloadable(s.cfg, cfg); err != nil {
		return err
	}
	b, err := buildTargets(cfg, s.keys, s.stores, s.built)
	if err != nil {
		return fmt.Errorf("reload refused, the running config stays: %w", err)
	}
	added, changed, removed := diffTargets(s.built, b)
	for _, t := range b.all {
		s.metrics.Integration(t.Name)
	}
	b.activate()
	s.routes.set(b.routeTargets(), nil)
	if len(b.unbuilt) > 0 {
		s.log.Warn("integrations disabled in the config whose store cannot be built are left out", "integrations", b.unbuilt)
	}
	s.built, s.cfg = b, cfg
	s.log.Info("config reloaded", "added", added, "changed", changed, "removed", removed, "integrations", len(b.all))
	return nil
}

// reloadable refuses a new config that differs in what cannot change at runtime.
func reloadable(old, cfg *config.Config) error {
	var diffs []string
	check := func(name string, a, b any) {
		if !reflect.DeepEqual(a, b) {
			diffs = append(diffs, name)
		}
	}
	check("kafka", old.Kafka, cfg.Kafka)
	check("window", old.Window, cfg.Window)
	check("spool", old.Spool, cfg.Spool)
	check("delivery", old.Delivery, cfg.Delivery)
	check("redis", old.Redis, cfg.Redis)
	check("http", old.HTTP, cfg.HTTP)
	check("log", old.Log, cfg.Log)
	check("external_id", old.ExternalID, cfg.ExternalID)
	check("s3.key_template", old.S3.KeyTemplate, cfg.S3.KeyTemplate)
	if len(diffs) > 0 {
		return fmt.Errorf("reload refused, the running config stays: %s changed; only integrations and the s3 settings other than key_template can change without a restart", strings.Join(diffs, ", "))
	}
	return nil
}

func diffTargets(old, cur *built) (added, changed, removed []string) {
	for name, t := range cur.byName {
		switch o, ok := old.byName[name]; {
		case !ok:
			added = append(added, name)
		case o.target != t.target || !reflect.DeepEqual(o.cfg, t.cfg):
			changed = append(changed, name)
		}
	}
	for name := range old.byName {
		if _, ok := cur.byName[name]; !ok {
			removed = append(removed, name)
		}
	}
	slices.Sort(added)
	slices.Sort(changed)
	slices.Sort(removed)
	return added, changed, removed
}

// adminIntegrations is the admin API's view of the configured integrations
// (no secrets: an access key's id, never its secret).
func (s *Service) adminIntegrations() []admin.Integration {
	s.reloadMu.Lock()
	cfg := s.cfg
	s.reloadMu.Unlock()
	out := make([]admin.Integration, 0, len(cfg.Integrations))
	for _, in := range cfg.Integrations {
		out = append(out, admin.Integration{Name: in.Name, ClientID: in.ClientID, Region: in.Region, Bucket: in.Bucket,
			Prefix: in.Prefix, Format: in.Format, Compression: in.Compression, RoleARN: in.Credentials.RoleARN,
			AccessKeyID: in.Credentials.AccessKeyID, ConfigEnabled: in.Enabled})
	}
	return out
}

// TestIntegration is the console's "Test integration": it writes the two sample
// hits to the integration's bucket as wallarm_hits_{now}_test.{ext} and answers
// success or what is wrong in plain words. The error is for an unknown
// integration or one whose store cannot be built. Safe for concurrent use.
func (s *Service) TestIntegration(ctx context.Context, name string) (sink.Answer, error) {
	s.reloadMu.Lock()
	cfg := s.cfg
	s.reloadMu.Unlock()
	return TestIntegration(ctx, cfg, name, s.stores)
}

// TestIntegration tests integration name of cfg with stores (nil: S3Stores(nil)).
func TestIntegration(ctx context.Context, cfg *config.Config, name string, stores StoreFactory) (sink.Answer, error) {
	if stores == nil {
		stores = S3Stores(nil)
	}
	for _, in := range cfg.Integrations {
		if in.Name != name {
			continue
		}
		f, err := sink.ParseFormat(in.Format)
		if err != nil {
			return sink.Answer{}, err
		}
		c, err := sink.ParseCompression(in.Compression)
		if err != nil {
			return sink.Answer{}, err
		}
		st, err := stores(cfg, in)
		if err != nil {
			return sink.Explain(err), nil
		}
		_, err = sink.TestWrite(ctx, st, sink.TestParams{Prefix: in.Prefix, Format: f, Compression: c, Now: time.Now()})
		return sink.Explain(err), nil
	}
	return sink.Answer{}, fmt.Errorf("no integration named %q", name)
}
