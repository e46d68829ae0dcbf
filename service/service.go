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
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"hitship/config"
	"hitship/consumer"
	"hitship/delivery"
	"hitship/metrics"
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
	// Stores, if set, builds integration stores instead of S3Stores(nil).
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
}

// New builds a service from cfg, which must have passed Validate. It connects to
// nothing yet.
func New(cfg *config.Config, deps Deps) (*Service, error) {
	if deps.Logger == nil || deps.Registry == nil {
		return nil, errors.New("service: logger and registry are required")
	}
	s := &Service{cfg: cfg, deps: deps, log: deps.Logger}
	s.metrics = metrics.New(deps.Registry)
	keys, err := sink.ParseKeyTemplate(cfg.S3.KeyTemplate)
	if err != nil {
		return nil, fmt.Errorf("s3.key_template: %w", err)
	}
	stores := deps.Stores
	if stores == nil {
		stores = S3Stores(nil)
	}
	if s.routes, err = buildRoutes(cfg, keys, stores); err != nil {
		return nil, err
	}
	for _, t := range s.routes.all {
		s.metrics.Integration(t.Name)
	}
	mech, tc, err := kafkaAuth(cfg.Kafka)
	if err != nil {
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
	st, err := state.New(s.rdb, cfg.Redis.KeyPrefix, cfg.Kafka.Group)
	if err != nil {
		return nil, err
	}
	// A buffer keeps up to 1/8 of the spool's memory budget in memory before it
	// spills (8 MiB of the default 64 MiB): most objects are written and uploaded
	// without touching the disk, the budget still bounds the total, and past it
	// the largest buffers spill first.
	mem := int64(cfg.Spool.MemoryBytes)
	if s.spool, err = sink.NewSpool(sink.SpoolConfig{Dir: cfg.Spool.Dir, MaxBytes: int64(cfg.Spool.MaxBytes),
		MemoryBytes: mem, BufferMemoryBytes: min(mem/32, 2<<20)}); err != nil {
		return nil, fmt.Errorf("spool.dir: %w", err)
	}
	del, err := delivery.NewInline(delivery.Config{Concurrency: cfg.Delivery.Concurrency, UploadTimeout: cfg.Delivery.UploadTimeout,
		RetryMin: cfg.Delivery.RetryMin, RetryMax: cfg.Delivery.RetryMax},
		delivery.Deps{Logger: s.log, Metrics: s.metrics, Now: deps.Now, Delivered: deps.Delivered})
	if err != nil {
		return nil, err
	}
	s.dlq = deadLetterWriter(cfg.Kafka, mech, tc)
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
		Delivery: del, DeadLetters: s.dlq, Now: deps.Now})
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
	wg.Add(1)
	go func() { defer wg.Done(); s.spoolStats(stopStats) }()
	err := s.consumer.Run(ctx)
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
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.rdb.Ping(ctx).Err(); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = fmt.Fprintf(w, "not ready: redis unreachable: %v\n", err)
			return
		}
		if !s.consumer.Joined() {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte("not ready: not yet a member of the consumer group\n"))
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	})
	return mux
}
