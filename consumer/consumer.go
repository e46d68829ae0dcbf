package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"hitship/state"
)

// Consumer runs hitship's member of the consumer group.
type Consumer struct {
	cfg      Config
	deps     Deps
	log      *slog.Logger
	joined   atomic.Bool
	assigned atomic.Int64 // partitions of the current generation
	// skipped counts records of tenants without an integration: most records, so
	// the series is looked up once.
	skipped  prometheus.Counter
	disabled prometheus.Counter // (record, integration) pairs skipped because it is disabled
	removed  prometheus.Counter // (record, target) pairs skipped because the target is no longer configured
	pending  pendingSnapshots   // window snapshots Redis has not taken yet
	// incarnation is the topic incarnation of the last generation (logs).
	incarnation atomic.Pointer[string]
}

// Joined reports whether this member is in a live generation (it may have no
// partitions: more members than partitions is idle by design). Safe for concurrent use.
func (c *Consumer) Joined() bool { return c.joined.Load() }

// Assigned returns how many partitions the current generation gave this
// member (0 also when it is not a member). Safe for concurrent use.
func (c *Consumer) Assigned() int { return int(c.assigned.Load()) }

// New checks cfg and deps and returns a consumer; it does not connect.
func New(cfg Config, deps Deps) (*Consumer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if deps.Logger == nil || deps.Metrics == nil || deps.State == nil || deps.Routes == nil ||
		deps.Spool == nil || deps.Delivery == nil || deps.DeadLetters == nil {
		return nil, errors.New("consumer: every dependency except Now is required")
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 20 * time.Second
	}
	if cfg.MaxFetchBytes <= 0 {
		cfg.MaxFetchBytes = 4 << 20
	}
	if cfg.MaxFetchBytes < cfg.MaxRecordBytes {
		cfg.MaxFetchBytes = cfg.MaxRecordBytes
	}
	return &Consumer{cfg: cfg, deps: deps, log: deps.Logger.With("topic", cfg.Topic, "group", cfg.Group),
		skipped:  deps.Metrics.RecordsSkipped.WithLabelValues("no_integration"),
		disabled: deps.Metrics.RecordsSkipped.WithLabelValues("disabled"),
		removed:  deps.Metrics.RecordsSkipped.WithLabelValues("removed")}, nil
}

func (c *Consumer) now() time.Time {
	if c.deps.Now != nil {
		return c.deps.Now()
	}
	return time.Now()
}

// Run joins the group and consumes until ctx ends, then stops cleanly: it stops
// fetching, waits up to ShutdownTimeout for closed buffers to be delivered, commits
// what they allow, and leaves the group. Open buffers are dropped; the next owner
// replays them from the committed offset. Run blocks; call it once.
func (c *Consumer) Run(ctx context.Context) error {
	gcfg := kafka.ConsumerGroupConfig{
		ID:                    c.cfg.Group,
		Brokers:               c.cfg.Brokers,
		Dialer:                c.cfg.Dialer,
		Topics:                []string{c.cfg.Topic},
		HeartbeatInterval:     c.cfg.HeartbeatInterval,
		SessionTimeout:        c.cfg.SessionTimeout,
		RebalanceTimeout:      c.cfg.RebalanceTimeout,
		JoinGroupBackoff:      time.Second,
		StartOffset:           kafka.FirstOffset,
		WatchPartitionChanges: true,
		Logger:                kafka.LoggerFunc(func(msg string, args ...any) { c.log.Debug(fmt.Sprintf(msg, args...), "source", "kafka-go") }),
		ErrorLogger:           kafka.LoggerFunc(func(msg string, args ...any) { c.log.Warn(fmt.Sprintf(msg, args...), "source", "kafka-go") }),
	}
	if err := gcfg.Validate(); err != nil {
		return fmt.Errorf("consumer group config: %w", err)
	}
	group, err := kafka.NewConsumerGroup(gcfg)
	if err != nil {
		return fmt.Errorf("consumer group: %w", err)
	}
	defer group.Close()
	wbDone := make(chan struct{})
	go func() { defer close(wbDone); c.writeBackLoop(ctx) }()
	defer func() { <-wbDone }()
	for {
		gen, err := group.Next(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			c.log.Warn("joining the consumer group failed; retrying", "err", err)
			if !sleep(ctx, time.Second) {
				return nil
			}
			continue
		}
		done := make(chan struct{})
		gen.Start(func(gctx context.Context) {
			defer close(done)
			c.runGeneration(ctx, gctx, gen)
		})
		select {
		case <-done:
		case <-ctx.Done():
			<-done // the clean stop: let the generation drain and commit before Close
			return nil
		}
	}
}

// runGeneration runs one worker per assigned partition and the committer, and
// returns when all of them have stopped. kafka-go ends the generation as soon as the
// function given to Start returns, so this is the only one.
func (c *Consumer) runGeneration(ctx, gctx context.Context, gen *kafka.Generation) {
	owner := state.Owner{Generation: gen.ID, Member: gen.MemberID}
	log := c.log.With("generation", gen.ID)
	c.deps.Metrics.Generation.Set(float64(gen.ID))
	c.joined.Store(true)
	defer c.joined.Store(false)
	assigned := gen.Assignments[c.cfg.Topic]
	c.deps.Metrics.AssignedParts.Set(float64(len(assigned)))
	c.assigned.Store(int64(len(assigned)))
	defer c.assigned.Store(0)
	log.Info("generation started", "partitions", len(assigned))
	inc, st, ok := c.bind(ctx, gctx, log)
	if !ok {
		return // the generation or the member ended while waiting
	}

	// wctx ends the workers: on shutdown (ctx) they drain, on generation end (gctx)
	// or a fatal error of one of them they drop everything.
	wctx, cancel := context.WithCancelCause(gctx)
	defer cancel(nil)

	workers := make([]*worker, 0, len(assigned))
	for _, a := range assigned {
		workers = append(workers, &worker{
			c: c, topic: c.cfg.Topic, partition: a.ID, owner: owner, partLabel: strconv.Itoa(a.ID),
			inc: inc, st: st,
			log: log.With("partition", a.ID), dlq: make(chan deadLetter, 1024),
			consumed: c.deps.Metrics.RecordsConsumed.WithLabelValues(strconv.Itoa(a.ID)),
		})
	}
	var wg sync.WaitGroup
	for i, a := range assigned {
		w := workers[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.run(ctx, wctx, a.Offset); err != nil {
				w.log.Error("partition worker stopped; the generation ends and the group rebalances", "err", err)
				cancel(err)
			}
		}()
	}
	workersDone := make(chan struct{})
	go func() {
		wg.Wait()
		if len(workers) == 0 {
			// A member without partitions (more replicas than partitions) must stay
			// in the generation: returning would end it and make every member rejoin.
			select {
			case <-ctx.Done():
			case <-wctx.Done():
			}
		}
		close(workersDone)
	}()

	tick := time.NewTicker(c.cfg.CommitInterval)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			c.commit(gctx, gen, workers, log)
			reportLag(workers, c.now())
		case <-workersDone:
			if gctx.Err() == nil && context.Cause(wctx) == nil {
				c.commit(gctx, gen, workers, log) // the clean stop's final commit
			}
			if c.hasPending() {
				// Before rejoining: the next generation, and so the next owner's
				// start, waits for this member's JoinGroup.
				fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), stateTimeout)
				c.writeBackAll(fctx)
				cancel()
			}
			log.Info("generation ended")
			c.deps.Metrics.AssignedParts.Set(0)
			for _, w := range workers {
				w.forgetLag()
			}
			return
		}
	}
}

// bind learns the topic's incarnation and binds the partition state to it
// (Deps.Incarnations, Deps.StateFor). It retries every second while Kafka
// does not answer; ok is false when the generation or the member ended first.
func (c *Consumer) bind(ctx, gctx context.Context, log *slog.Logger) (inc string, st PartitionState, ok bool) {
	if c.deps.Incarnations == nil {
		return "", c.deps.State, true
	}
	for attempt := 1; ; attempt++ {
		ictx, cancel := context.WithTimeout(gctx, 15*time.Second)
		inc, err := c.deps.Incarnations.Incarnation(ictx, c.cfg.Topic)
		cancel()
		st := c.deps.State
		if err == nil && c.deps.StateFor != nil {
			st, err = c.deps.StateFor(inc)
		}
		if err == nil {
			if prev := c.incarnation.Swap(&inc); prev == nil || *prev != inc {
				log.Info("topic incarnation: replay state in Redis is kept per incarnation", "incarnation", inc)
				if prev != nil {
					log.Warn("the topic is another one than before (cluster rebuilt or topic re-created): the earlier incarnation's replay state is ignored", "was", *prev, "now", inc)
				}
				if !strings.Contains(inc, ".") {
					log.Warn("the brokers give no topic id (Kafka before 2.8): replay state is kept per cluster only, so a topic deleted and re-created in this cluster would find its predecessor's", "incarnation", inc)
				}
			}
			return inc, st, true
		}
		log.Warn("cannot learn the topic's incarnation; the partitions wait for it (their replay state in Redis is kept per incarnation)", "attempt", attempt, "err", err)
		if ctx.Err() != nil || !sleep(gctx, time.Second) {
			return "", nil, false
		}
	}
}

// stateTimeout bounds one Redis call of the committer and of the idle clock, so
// that an unreachable Redis (a dial that hangs) delays neither for long.
const stateTimeout = 2 * time.Second

// commit saves each partition's window snapshot at its committable offset, then
// commits those offsets through the live generation. When Redis does not take a
// snapshot, the snapshot is kept in memory (see Consumer.keepSnapshot) and the commit
// goes on without it; it is written back at a later tick, before any pruning.
func (c *Consumer) commit(gctx context.Context, gen *kafka.Generation, workers []*worker, log *slog.Logger) {
	type prepared struct {
		w      *worker
		offset int64
	}
	var ready []prepared
	offsets := map[int]int64{}
	// After one failed Redis call the tick stops asking: with several partitions an
	// outage would otherwise cost each of them a timeout at every tick.
	redisOK := c.writeBackAll(gctx) // this partition's and those of ended generations
	for _, w := range workers {
		off, snap, ok := w.prepareCommit()
		if !ok {
			continue
		}
		data, err := json.Marshal(snap)
		if err != nil {
			// Never happens with window.Snapshot; without bytes there is nothing to
			// keep either, so this commit waits.
			w.log.Error("cannot encode the window snapshot; the commit waits", "offset", off, "err", err)
			continue
		}
		if redisOK {
			sctx, cancel := context.WithTimeout(gctx, stateTimeout)
			err = w.st.SaveSnapshot(sctx, w.topic, w.partition, off, data)
			cancel()
		} else {
			err = errRedisDown
		}
		if err != nil {
			if gctx.Err() != nil {
				return
			}
			redisOK = false
			c.keepSnapshotIn(w.inc, w.st, w.partition, off, data, err)
		}
		ready = append(ready, prepared{w, off})
		offsets[w.partition] = off
	}
	if len(ready) == 0 || gctx.Err() != nil {
		return
	}
	if err := gen.CommitOffsets(map[string]map[int]int64{c.cfg.Topic: offsets}); err != nil {
		log.Warn("offset commit failed; retried at the next interval", "err", err)
		return
	}
	for _, p := range ready {
		p.w.committedAt(gctx, p.offset)
	}
}

// reportLag updates every worker's lag gauges (see lagState).
func reportLag(workers []*worker, now time.Time) {
	for _, w := range workers {
		w.reportLag(now)
	}
}

// errRedisDown stands for a failed Redis call earlier in the same tick.
var errRedisDown = errors.New("redis failed earlier in this commit tick")

// run is the worker's life: start, fetch and process until wctx ends (drop) or ctx
// ends (drain), and return an error only for what should end the generation.
func (w *worker) run(ctx, wctx context.Context, offset int64) error {
	w.deliverCtx = wctx
	// start may wait for Redis: a shutdown must end that wait too.
	sctx, scancel := context.WithCancel(wctx)
	unhook := context.AfterFunc(ctx, scancel)
	err := w.start(sctx, offset)
	unhook()
	scancel()
	if err != nil {
		if wctx.Err() != nil || ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer w.dropOpen()
	rctx, stop := context.WithCancel(wctx)
	defer stop()
	go func() {
		select {
		case <-ctx.Done(): // shutdown: stop fetching, keep delivering
			stop()
		case <-rctx.Done():
		}
	}()

	dctx, dstop := context.WithCancel(wctx)
	dlqDone := make(chan struct{})
	go func() { defer close(dlqDone); w.runDeadLetters(dctx) }()
	defer func() { dstop(); <-dlqDone }()
	tickDone := make(chan struct{})
	go func() { defer close(tickDone); w.runTicker(rctx) }()

	// The broker holds an idle fetch for up to a second (records return at once:
	// MinBytes 1); the read itself has batchTimeout of slack, so a busy broker
	// or a GC pause does not make idle fetches time out and reconnect. A stop
	// closes the connection at once.
	f := newFetcher(w.c.cfg.Dialer, w.c.cfg.Brokers, w.topic, w.partition, offset, w.c.cfg.MaxFetchBytes, time.Second, w.log)
	err = w.fetchLoop(rctx, f)
	f.close()
	<-tickDone

	if err == nil && ctx.Err() != nil && wctx.Err() == nil {
		w.drain(wctx)
	}
	return err
}

func (w *worker) fetchLoop(ctx context.Context, f *fetcher) error {
	paused := false
	for {
		for w.c.deps.Spool.Full() {
			if !paused {
				paused = true
				w.c.deps.Metrics.PausedPartitions.Inc()
				w.log.Warn("spool full: fetching paused until deliveries free space")
			}
			if !sleep(ctx, 100*time.Millisecond) {
				w.c.deps.Metrics.PausedPartitions.Dec()
				return nil
			}
		}
		if paused {
			paused = false
			w.c.deps.Metrics.PausedPartitions.Dec()
			f.touch()
		}
		m, err := f.next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			w.log.Warn("fetch failed; retrying", "err", err)
			if !sleep(ctx, 500*time.Millisecond) {
				return nil
			}
			continue
		}
		w.lag.observe(m.Offset, m.HighWaterMark, m.Time)
		if err := w.route(ctx, m); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		w.mu.Lock()
		w.process(ctx, m)
		fatal := w.fatal
		w.mu.Unlock()
		if fatal != nil {
			return fatal
		}
		if w.waitDeliveries(ctx) {
			f.touch()
		}
	}
}

func (w *worker) runTicker(ctx context.Context) {
	every := min(w.c.cfg.IdleTimeout/4, time.Second)
	t := time.NewTicker(max(every, 10*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			w.mu.Lock()
			w.idleTick(ctx)
			w.mu.Unlock()
		}
	}
}

// drain waits, up to the shutdown timeout, for the closed buffers to be delivered
// and the dead letters to be acknowledged.
func (w *worker) drain(ctx context.Context) {
	done := make(chan struct{})
	go func() { w.inflight.Wait(); close(done) }()
	t := time.NewTimer(w.c.cfg.ShutdownTimeout)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
		w.log.Warn("shutdown timeout: leaving undelivered objects to the next owner")
	case <-ctx.Done():
	}
}

// prepareCommit returns the committable offset and the window state just before it,
// if it moved since the last commit.
func (w *worker) prepareCommit() (int64, any, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.part == nil || w.next < 0 {
		return 0, nil, false
	}
	c := w.tr.committable()
	if c <= w.committed {
		return 0, nil, false
	}
	snap, ok := w.part.Snapshot(c)
	if !ok {
		w.log.Error("no window snapshot for the committable offset; not committing", "offset", c)
		return 0, nil, false
	}
	return c, snap, true
}

// committedAt forgets what the window kept for replays before offset.
func (w *worker) committedAt(ctx context.Context, offset int64) {
	w.mu.Lock()
	w.committed = offset
	w.part.Forget(offset)
	w.mu.Unlock()
	w.c.deps.Metrics.CommittedOffset.WithLabelValues(w.partLabel).Set(float64(offset))
	if !w.c.noteCommitted(w.partition, offset) { // else the write-back prunes once the snapshots are in Redis
		w.prune(ctx, offset)
	}
	w.touchRouteSet(ctx)
}

// prune drops the replay state below offset in Redis. Committer only.
func (w *worker) prune(ctx context.Context, offset int64) {
	if offset <= 0 {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, stateTimeout)
	defer cancel()
	if err := w.st.Prune(pctx, w.topic, w.partition, offset); err != nil {
		w.log.Debug("pruning replay state failed", "err", err)
	}
}
