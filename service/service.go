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
	"hitship/integrations"
	"hitship/integrations/defs"
	"hitship/integrations/events"
	"hitship/integrations/registry"
	"hitship/internal/kafkaconn"
	"hitship/internal/redisconn"
	"hitship/kstore"
	"hitship/metrics"
	"hitship/sink"
	s3sink "hitship/sink/s3"
	"hitship/staging"
	"hitship/state"
	"hitship/ui"
	"hitship/window"
)

// Deps are what the caller owns: logger, metrics registry, and optional overrides.
type Deps struct {
	Logger   *slog.Logger
	Registry *prometheus.Registry
	// Redis, if set, is used instead of a client built from cfg.Redis (the caller closes it).
	Redis redis.UniversalClient
	// Stores, if set, builds integration stores instead of S3Stores with one
	// shared HTTP client (s3sink.NewHTTPClient).
	Stores integrations.StoreFactory
	// Delivered, if set, is told about every object written.
	Delivered func(j *delivery.Job, size int64)
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
	dialer   *kafka.Dialer // the consumer group's, for the start-up check
	consumer *consumer.Consumer
	routes   *integrations.Routes
	keys     *sink.KeyTemplate
	stores   integrations.StoreFactory

	reloadMu sync.Mutex
	built    *integrations.Built // the targets of the running config

	// Integrations created through the API (definitions.go).
	defs     *defs.Store
	defsPoke chan struct{}
	applyMu  sync.Mutex        // one apply at a time; guards file and leftOut
	file     *config.Config    // the config file as loaded last
	leftOut  map[string]string // definitions left out, and why (logged once)

	registry *registry.Store   // runtime state of integrations, shared by replicas
	relay    *events.Relay     // nil unless kafka.events_topic
	eventsW  *kafka.Writer     // the relay's writer
	watcher  *registry.Watcher // this replica's view of it
	intstore *kstore.Map       // the durable copy of it (kafka.integrations_topic)
	admin    *admin.API        // nil when no admin token is configured
	console  *ui.Handler       // the console over admin (nil with it)
	parked   *delivery.Parked  // nil when no parking bucket is configured
	// assembler is staged delivery's half that makes customer objects (nil
	// unless delivery.staged).
	assembler *staging.Assembler
	// manifests names the integrations of the running config with manifest: true.
	manifests atomic.Pointer[map[string]bool]
	health    *health.Buffered // the 12-hour ledger of every integration

	redisDown atomic.Bool // as seen by the last probe; only for logging the edges
}

// New builds a service from cfg, which must have passed Validate. It connects to
// nothing yet, but takes spool.dir's lock (sink.NewSpool): a second service on
// the same directory, in this process or another, is refused with an error
// naming spool.dir and the holder's pid. Run releases the lock when it returns.
func New(cfg *config.Config, deps Deps) (_ *Service, err error) {
	if deps.Logger == nil || deps.Registry == nil {
		return nil, errors.New("service: logger and registry are required")
	}
	s := &Service{cfg: cfg, file: cfg, deps: deps, log: deps.Logger, defsPoke: make(chan struct{}, 1)}
	s.metrics = metrics.New(deps.Registry)
	s.setBuildInfo()
	parse := sink.ParseKeyTemplate
	if cfg.StagedDelivery() {
		parse = sink.ParseStagedKeyTemplate
	}
	keys, err := parse(cfg.EffectiveKeyTemplate())
	if err != nil {
		return nil, fmt.Errorf("s3.key_template: %w", err)
	}
	s.keys, s.stores = keys, deps.Stores
	if s.stores == nil {
		s.stores = integrations.S3Stores(s3sink.NewHTTPClient())
	}
	if s.built, err = integrations.Build(cfg, keys, s.stores, nil); err != nil {
		return nil, err
	}
	s.setManifests(cfg)
	if s.rdb = deps.Redis; s.rdb == nil {
		if s.rdb, err = redisconn.New(cfg.Redis); err != nil {
			return nil, err
		}
		s.ownRedis = true
	}
	mech, tc, err := kafkaconn.Auth(cfg.Kafka)
	if err != nil {
		return nil, err
	}
	s.dialer = kafkaconn.Dialer(cfg.Kafka, mech, tc)
	if err := s.newRegistry(mech, tc); err != nil {
		return nil, err
	}
	if cfg.Kafka.EventsTopic != "" {
		s.eventsW = kafkaconn.EventsWriter(cfg.Kafka, mech, tc)
		lease, cursor := state.EventRelayKeys(cfg.Redis.KeyPrefix)
		if s.relay, err = events.New(events.Config{Registry: s.registry, Redis: s.rdb, Lease: lease, Cursor: cursor,
			Writer: s.eventsW, Logger: s.log.With("topic", cfg.Kafka.EventsTopic)}); err != nil {
			return nil, err
		}
	}
	s.routes = &integrations.Routes{}
	s.routes.Set(s.built.RouteTargets(), s.watcher.Disabled)
	if len(s.built.Unbuilt) > 0 {
		s.log.Warn("integrations disabled in the config whose store cannot be built are left out", "integrations", s.built.Unbuilt)
	}
	if s.health, err = s.newHealth(); err != nil {
		return nil, err
	}
	if s.parked, err = s.newParked(); err != nil {
		return nil, err
	}
	if token, named := cfg.HTTP.AdminToken(), cfg.HTTP.NamedTokens(); token != "" || len(named) > 0 {
		ad := admin.Deps{Logger: s.log, Registry: s.registry, Integrations: s.adminIntegrations, Tester: s.TestIntegration}
		ad.Retries, ad.OnEnable, ad.Forget = s.adminRetries, s.onEnable, s.adminForget
		ad.Definitions = apiDefinitions{s}
		ad.Onboarding = s.onboarding
		ad.Health = s.adminHealth
		if s.admin, err = admin.New(admin.Config{Token: token, Tokens: named}, ad); err != nil {
			return nil, err
		}
		if s.console, err = ui.New(); err != nil {
			return nil, err
		}
	}
	for _, t := range s.built.All {
		s.metrics.Integration(t.Name)
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
		if sink.IsSpoolLocked(err) {
			return nil, fmt.Errorf("spool.dir: %w; every hitship process needs a spool directory of its own: set another spool.dir, or stop the other process", err)
		}
		return nil, fmt.Errorf("spool.dir: %w", err)
	}
	// From here on a failure releases the spool directory again.
	defer func() {
		if err != nil {
			_ = s.spool.Close()
		}
	}()
	ddeps := delivery.Deps{Logger: s.log, Metrics: s.metrics, Now: deps.Now, Delivered: deps.Delivered, Health: s.health}
	if s.parked != nil {
		ddeps.Parking = &delivery.Parking{Store: s.parked.Store(), Queue: s.parked.Queue()}
	}
	del, err := delivery.NewInline(delivery.Config{Concurrency: cfg.Delivery.Concurrency, UploadTimeout: cfg.Delivery.UploadTimeout,
		RetryMin: cfg.Delivery.RetryMin, RetryMax: cfg.Delivery.RetryMax}, ddeps)
	if err != nil {
		return nil, err
	}
	var cdel consumer.Delivery = del
	var marks consumer.Marks
	if cfg.StagedDelivery() {
		if s.parked == nil {
			return nil, errors.New("delivery.staged: parking.bucket (the staging bucket) is required")
		}
		layout := staging.Layout{Prefix: cfg.Parking.Prefix}
		coord := staging.NewCoord(s.rdb, cfg.Redis.KeyPrefix, cfg.Kafka.Group, cfg.Kafka.Topic)
		cdel = staging.NewStager(staging.StagerConfig{Concurrency: cfg.Delivery.Concurrency, UploadTimeout: cfg.Delivery.UploadTimeout,
			RetryMin: cfg.Delivery.RetryMin, RetryMax: cfg.Delivery.RetryMax}, s.parked.Store(), layout, s.log, s.metrics)
		marks = coord
		if s.assembler, err = staging.NewAssembler(staging.AssemblerConfig{Topic: cfg.Kafka.Topic, Window: cfg.Window.Size,
			Concurrency: cfg.Delivery.Concurrency}, staging.AssemblerDeps{Store: s.parked.Store(), Layout: layout, Coord: coord,
			Targets: s.routes, Partitions: partitionCounter(cfg, kafkaconn.Dialer(cfg.Kafka, mech, tc)), Spool: s.spool,
			Deliver: del, Logger: s.log, Metrics: s.metrics, Manifest: s.wantsManifest}); err != nil {
			return nil, err
		}
	}
	s.dlq = kafkaconn.DeadLetterWriter(cfg.Kafka, mech, tc, consumer.DeadLetterBatchBytes(int(cfg.Kafka.MaxRecordBytes))) // every batch fits a topic limit of max_record_bytes
	fopts, err := kafkaconn.FranzOpts(cfg.Kafka, tc)
	if err != nil {
		return nil, err
	}
	incs := consumer.KafkaIncarnations{Brokers: cfg.Kafka.Brokers, Opts: fopts}
	wc := window.Config{Size: cfg.Window.Size.Milliseconds(), Grace: cfg.Window.Grace.Milliseconds(),
		MaxFutureSkew: cfg.Window.MaxFutureSkew.Milliseconds(), UseRecordTime: cfg.Window.Timestamp == config.TimestampRecord}
	s.consumer, err = consumer.New(consumer.Config{
		Brokers:           cfg.Kafka.Brokers,
		Topic:             cfg.Kafka.Topic,
		Group:             cfg.Kafka.Group,
		Dialer:            s.dialer,
		SessionTimeout:    cfg.Kafka.SessionTimeout,
		RebalanceTimeout:  cfg.Kafka.RebalanceTimeout,
		HeartbeatInterval: cfg.Kafka.HeartbeatInterval,
		CommitInterval:    cfg.Kafka.CommitInterval,
		IdleTimeout:       cfg.Window.IdleTimeout,
		MaxRecordBytes:    int(cfg.Kafka.MaxRecordBytes),
		MaxDepth:          cfg.Kafka.MaxDepth,
		Window:            wc,
		Staged:            cfg.StagedDelivery(),
	}, consumer.Deps{Logger: s.log, Metrics: s.metrics, State: st, Routes: s.routes, Spool: s.spool,
		Delivery: cdel, Marks: marks, DeadLetters: s.dlq, Now: deps.Now, Incarnations: incs,
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
	// First the brokers must accept hitship's SASL and TLS settings (a wrong
	// password or an untrusted certificate ends the start in plain words);
	// then the durable copy of the integrations' runtime state is read to its
	// end before the first record: a Redis that lost the states must not
	// route records of disabled integrations.
	err := s.checkKafka(ctx)
	if err == nil {
		err = s.startIntegrationsTopic(ctx)
	}
	if err != nil {
		close(stopStats)
		if srv != nil {
			_ = srv.Close()
		}
		wg.Wait()
		if ctx.Err() != nil {
			return nil // stopped while starting
		}
		return err
	}
	// Know which integrations are disabled before the first record; if Redis does
	// not answer, the durable copy decides until it does.
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if err := s.watcher.Refresh(rctx); err != nil {
		s.log.Warn("integration states not read from Redis yet; the integrations topic's copy is in force until Redis answers", "err", err)
	}
	cancel()
	// The integrations created through the API, before the first record.
	if err := s.apply(nil); err != nil {
		s.log.Error("integrations created through the API not applied", "err", err)
	}
	wctx, stopWatch := context.WithCancel(context.Background())
	wg.Add(1)
	go func() { defer wg.Done(); s.runDefinitions(wctx) }()
	wg.Add(1)
	go func() { defer wg.Done(); s.rewrapSecrets(wctx) }()
	wg.Add(1)
	go func() { defer wg.Done(); _ = s.watcher.Run(wctx) }()
	wg.Add(2)
	go func() { defer wg.Done(); s.runHealth(wctx) }()
	go func() { defer wg.Done(); s.runGauges(wctx) }()
	if s.parked != nil {
		wg.Add(1)
		go func() { defer wg.Done(); s.parked.Run(wctx) }()
	}
	if s.assembler != nil {
		wg.Add(1)
		go func() { defer wg.Done(); _ = s.assembler.Run(wctx) }()
	}
	if s.relay != nil {
		wg.Add(1)
		go func() { defer wg.Done(); s.relay.Run(wctx) }()
	}
	err = s.consumer.Run(ctx)
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
			s.log.Warn("degraded: Redis unreachable; partitions already running go on delivering and committing (window snapshots kept in memory, idle closes wait), partitions starting now are not consumed until Redis answers (they need their claim and replay state)", "err", err)
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
	if err := s.intstore.Close(); err != nil {
		s.log.Warn("closing the integrations topic", "err", err)
	}
	if err := s.dlq.Close(); err != nil {
		s.log.Warn("closing the dead-letter writer", "err", err)
	}
	// Writer.Close leaves a Transport it did not create open: close its
	// connections and metadata goroutine, or every Service leaks them.
	if tr, ok := s.dlq.Transport.(*kafka.Transport); ok {
		tr.CloseIdleConnections()
	}
	if s.eventsW != nil {
		_ = s.eventsW.Close()
		if tr, ok := s.eventsW.Transport.(*kafka.Transport); ok {
			tr.CloseIdleConnections()
		}
	}
	if s.ownRedis {
		_ = s.rdb.Close()
	}
	if err := s.spool.Close(); err != nil {
		s.log.Warn("releasing the spool directory", "err", err)
	}
}

// Handler serves /metrics, /healthz and /readyz, and with an admin token
// the admin API under /v1/ and its console under /ui/.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.deps.Registry, promhttp.HandlerOpts{Registry: s.deps.Registry}))
	if s.admin != nil {
		mux.Handle("/v1/", s.admin)
		mux.Handle(ui.Prefix, s.console)
		mux.Handle("GET /ui", http.RedirectHandler(ui.Prefix, http.StatusMovedPermanently))
	}
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		code, msg := s.readiness(r.Context())
		w.WriteHeader(code)
		_, _ = w.Write([]byte(msg + "\n"))
	})
	return mux
}

// readiness is /readyz: 503 while this replica is not a member of the group,
// while one of its partitions waits for the spool's disk after a spool error,
// or while partitions are not consumed because they wait for Redis (a worker
// starting needs its claim and replay state; an idle close in doubt holds its
// partition) — those partitions do not move. 200 "degraded" while Redis is
// unreachable but every partition runs: deliveries and commits go on
// (DESIGN §5), so the replica stays in service and says what is missing.
func (s *Service) readiness(ctx context.Context) (int, string) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	st := s.consumer.Status()
	if !st.Joined {
		return http.StatusServiceUnavailable, "not ready: not yet a member of the consumer group"
	}
	if st.SpoolErr != "" {
		return http.StatusServiceUnavailable, fmt.Sprintf("not ready: spool: %s (%d of %d partitions wait for the spool's disk, then start again from their committed offset)",
			st.SpoolErr, st.SpoolPartitions, st.Assigned)
	}
	if st.WaitingRedis > 0 {
		return http.StatusServiceUnavailable, fmt.Sprintf("not ready: %d of %d partitions wait for Redis (their claim and replay state, or an idle close in doubt) and are not consumed: %s",
			st.WaitingRedis, st.Assigned, st.RedisErr)
	}
	if err := s.pingRedis(ctx); err != nil {
		return http.StatusOK, fmt.Sprintf("degraded: redis unreachable: %v", err)
	}
	if st.Assigned > 0 {
		return http.StatusOK, fmt.Sprintf("ready: %d partitions", st.Assigned)
	}
	// More replicas than partitions: a spare member, ready to take over.
	return http.StatusOK, "ready: member without partitions (more replicas than partitions)"
}

// Reload applies a new, validated config without a restart: integrations added,
// changed and removed take effect at once; the targets of unchanged integrations
// are kept as they are, so their open buffers go on. Buffers are keyed by target
// ID (integrations.Target): when a reload changes what decides where and for whom
// an integration's records go (client id, bucket, region, endpoint, path style,
// prefix, format, compression), records read after it go to new buffers, and
// the open buffers close as usual and go to the old destination with the old
// tenant's records only; a removed integration's open buffers are still
// delivered. Every partition worker records the new membership in its
// routing log before it routes with it (consumer/membership.go), so a replay
// after a crash routes each record as the first run did. Only
// the integrations and the s3 settings other than key_template may change; any
// other difference refuses the whole reload and the running config stays. Safe
// for concurrent use. For every integration it removed, it logs what hitship
// still keeps for it and the command that deletes that (hitship forget).
func (s *Service) Reload(cfg *config.Config) error {
	return s.apply(cfg) // the file's integrations with the API's (definitions.go)
}

func (s *Service) reload(cfg *config.Config) (removed []string, err error) {
	s.reloadMu.Lock()
	defer s.reloadMu.Unlock()
	if err := reloadable(s.cfg, cfg); err != nil {
		return nil, err
	}
	b, err := integrations.Build(cfg, s.keys, s.stores, s.built)
	if err != nil {
		return nil, fmt.Errorf("reload refused, the running config stays: %w", err)
	}
	added, changed, removed := integrations.Diff(s.built, b)
	s.wakeEnabledInFile(s.cfg, cfg)
	for _, t := range b.All {
		s.metrics.Integration(t.Name)
	}
	s.registry.SetConfigured(configuredClients(cfg)) // before the routes read it
	b.Activate()
	s.routes.Set(b.RouteTargets(), nil)
	if len(b.Unbuilt) > 0 {
		s.log.Warn("integrations disabled in the config whose store cannot be built are left out", "integrations", b.Unbuilt)
	}
	gone := removedNames(s.cfg, cfg)
	s.built, s.cfg = b, cfg
	s.setManifests(cfg)
	s.log.Info("config reloaded", "added", added, "changed", changed, "removed", removed, "integrations", len(b.All))
	return gone, nil
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
	check("secrets", old.Secrets, cfg.Secrets)
	check("s3.key_template", old.S3.KeyTemplate, cfg.S3.KeyTemplate)
	if len(diffs) > 0 {
		return fmt.Errorf("reload refused, the running config stays: %s changed; only integrations and the s3 settings other than key_template can change without a restart", strings.Join(diffs, ", "))
	}
	return nil
}

// adminIntegrations is the admin API's view of the configured integrations
// (no secrets: an access key's id, never its secret).
func (s *Service) adminIntegrations() []admin.Integration {
	s.reloadMu.Lock()
	cfg := s.cfg
	s.reloadMu.Unlock()
	out := make([]admin.Integration, 0, len(cfg.Integrations))
	for _, in := range cfg.Integrations {
		v := admin.Integration{Name: in.Name, ClientID: in.ClientID, Region: in.Region, Bucket: in.Bucket,
			Prefix: in.Prefix, Format: in.Format, Compression: in.Compression, RoleARN: in.Credentials.RoleARN,
			AccessKeyID: in.Credentials.AccessKeyID, ConfigEnabled: in.Enabled, Source: "file",
			Type: in.Type, SecurityLake: in.SecurityLake}
		if in.IsSecurityLake() {
			v.Location = "s3://" + in.Bucket + "/" + in.KeyPrefix()
		}
		if in.Source == config.SourceAPI {
			v.Source = config.SourceAPI
			if d, ok := s.defs.Get(in.Name); ok {
				v.Version = d.Version
			}
		}
		out = append(out, v)
	}
	return out
}

// TestIntegration is the console's "Test integration": it writes the two sample
// hits to the integration's bucket as wallarm_hits_{now}_test.{ext} and answers
// success or what is wrong in plain words. The error is for an unknown
// integration or one whose store cannot be built. Safe for concurrent use.
func (s *Service) TestIntegration(ctx context.Context, name string) (s3sink.Answer, error) {
	s.reloadMu.Lock()
	cfg := s.cfg
	s.reloadMu.Unlock()
	return integrations.Test(ctx, cfg, name, s.stores)
}

// partitionCounter returns the topic's partition count, asked of the brokers
// at most every 30 s (the assembler asks at every tick).
func partitionCounter(cfg *config.Config, d *kafka.Dialer) func(ctx context.Context) (int, error) {
	var mu sync.Mutex
	var n int
	var at time.Time
	return func(ctx context.Context) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		if n > 0 && time.Since(at) < 30*time.Second {
			return n, nil
		}
		var last error
		for _, b := range cfg.Kafka.Brokers {
			ps, err := d.LookupPartitions(ctx, "tcp", b, cfg.Kafka.Topic)
			if err == nil && len(ps) > 0 {
				n, at = len(ps), time.Now()
				return n, nil
			}
			if err == nil {
				err = fmt.Errorf("topic %s has no partitions", cfg.Kafka.Topic)
			}
			last = err
		}
		return 0, last
	}
}

func (s *Service) setManifests(cfg *config.Config) {
	m := map[string]bool{}
	for _, in := range cfg.Integrations {
		if in.Manifest {
			m[in.Name] = true
		}
	}
	s.manifests.Store(&m)
}

// wantsManifest reports whether integration has manifest: true in the running config.
func (s *Service) wantsManifest(integration string) bool {
	m := s.manifests.Load()
	return m != nil && (*m)[integration]
}
