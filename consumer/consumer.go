package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
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

	// For Status (/readyz): partitions not consumed because they wait for Redis
	// (start, an idle close in doubt) or for the spool's disk.
	waitingRedis atomic.Int64
	inDoubt      atomic.Int64
	redisErr     atomic.Pointer[string]
	spoolMu      sync.Mutex
	spoolErrs    map[int]string
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
	var leaving sync.WaitGroup
	defer leaving.Wait()
	lastMember := "" // this member's id in its last generation
	for {
		gen, err := group.Next(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			c.log.Warn("joining the consumer group failed; retrying", "err", err)
			if lastMember != "" && !errors.Is(err, kafka.RebalanceInProgress) {
				// kafka-go gave the member id up after this error and joins as a
				// new member (ConsumerGroup.run); the coordinator keeps the old one
				// until its session times out and holds the rebalance for it.
				leaving.Add(1)
				go func(id string) { defer leaving.Done(); c.leaveAbandoned(ctx, id) }(lastMember)
				lastMember = ""
			}
			// kafka-go backs off (JoinGroupBackoff) before its next attempt.
			if !sleep(ctx, 100*time.Millisecond) {
				return nil
			}
			continue
		}
		lastMember = gen.MemberID
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

// leaveAbandoned removes this process's member id of an ended generation from
// the group, once the coordinator answers. kafka-go gives its member id up when
// it cannot rejoin at once (the coordinator unreachable: a broker cut, a
// network outage) and joins again as a new member; the coordinator keeps the
// old member until its session times out and holds the next rebalance for it,
// so after a cut the group sat idle for up to a session timeout (30 s by
// default) plus a rebalance. The LeaveGroup kafka-go itself sends for it fails
// while the coordinator is unreachable; this one is retried until it is
// answered or a session timeout has passed (the coordinator dropped the member
// by then).
func (c *Consumer) leaveAbandoned(ctx context.Context, memberID string) {
	d := c.cfg.Dialer
	if d == nil {
		d = kafka.DefaultDialer
	}
	tr := &kafka.Transport{Dial: d.DialFunc, DialTimeout: d.Timeout, TLS: d.TLS, SASL: d.SASLMechanism, ClientID: d.ClientID,
		IdleTimeout: time.Second, MetadataTTL: 5 * time.Second}
	defer tr.CloseIdleConnections()
	cl := &kafka.Client{Addr: kafka.TCP(c.cfg.Brokers...), Transport: tr, Timeout: 5 * time.Second}
	deadline := time.Now().Add(max(c.cfg.SessionTimeout, 10*time.Second))
	for attempt := 1; time.Now().Before(deadline); attempt++ {
		lctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		resp, err := cl.LeaveGroup(lctx, &kafka.LeaveGroupRequest{GroupID: c.cfg.Group, Members: []kafka.LeaveGroupRequestMember{{ID: memberID}}})
		cancel()
		if err == nil && resp.Error == nil {
			for _, m := range resp.Members {
				if m.Error != nil {
					err = m.Error
				}
			}
		}
		if err == nil {
			err = resp.Error
		}
		switch {
		case err == nil:
			c.log.Info("the member id kafka-go gave up after losing the coordinator has left the group: the rebalance need not wait for its session to time out", "member", memberID, "attempts", attempt)
			return
		case errors.Is(err, kafka.UnknownMemberId) || errors.Is(err, kafka.InvalidGroupId):
			return // gone already
		}
		if !sleep(ctx, 500*time.Millisecond) {
			return
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
			log:      log.With("partition", a.ID),
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
		data   []byte
		epoch  uint64
	}
	var ready []prepared
	offsets := map[int]int64{}
	// After one failed Redis call the tick stops asking: with several partitions an
	// outage would otherwise cost each of them a timeout at every tick.
	redisOK := c.writeBackAll(gctx) // this partition's and those of ended generations
	for _, w := range workers {
		off, snap, epoch, ok := w.prepareCommit()
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
		ready = append(ready, prepared{w, off, data, epoch})
		offsets[w.partition] = off
	}
	if c.cfg.Staged && c.deps.Marks != nil && redisOK {
		// Published at every tick, changed or not: a Redis that lost them has
		// them back within a tick.
		marks := map[int]int64{}
		for _, w := range workers {
			if m, ok := w.stagedMark(); ok {
				marks[w.partition] = m
			}
		}
		mctx, cancel := context.WithTimeout(gctx, stateTimeout)
		if err := c.deps.Marks.Publish(mctx, marks); err != nil && gctx.Err() == nil {
			log.Debug("staged marks not published; again at the next tick", "err", err)
		}
		cancel()
	}
	if len(ready) == 0 || gctx.Err() != nil {
		return
	}
	if err := gen.CommitOffsets(map[string]map[int]int64{c.cfg.Topic: offsets}); err != nil {
		log.Warn("offset commit failed; retried at the next interval", "err", err)
		return
	}
	for _, p := range ready {
		p.w.committedAt(gctx, p.offset, p.data, p.epoch)
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
// ends (drain), and return an error only for what should end the generation:
// another member owns the partition, or a failure no local restart mends. A
// spool error or a log truncation restarts the worker in place (restart.go).
func (w *worker) run(ctx, wctx context.Context, offset int64) error {
	wctx, abort := context.WithCancelCause(wctx)
	defer abort(nil)
	w.abort = abort
	defer func() { // a close left in doubt goes to the next owner: Status forgets it
		w.mu.Lock()
		w.endDoubt(w.idleDoubt)
		w.mu.Unlock()
	}()
	// start may wait for Redis: a shutdown must end that wait too.
	sctx, scancel := context.WithCancel(wctx)
	unhook := context.AfterFunc(ctx, scancel)
	err := w.start(sctx, offset)
	unhook()
	scancel()
	if err != nil {
		if wctx.Err() != nil || ctx.Err() != nil {
			return w.stopCause(wctx)
		}
		return err
	}
	defer w.dropOpen()
	if err := w.runLives(ctx, wctx, offset); err != nil {
		return err
	}
	return w.stopCause(wctx)
}

// stopCause is the error that ended the run from inside (stopFenced), nil when
// the generation or the member ended it.
func (w *worker) stopCause(wctx context.Context) error {
	if w.fenced.Load() {
		if cause := context.Cause(wctx); cause != nil && state.IsFenced(cause) {
			return cause
		}
		return fmt.Errorf("partition %d: %w", w.partition, state.ErrFenced)
	}
	return nil
}

// life runs the fetch loop, the idle ticker and the dead-letter writer from
// offset until the fetch loop ends, and stops all of them before it returns
// (the ticker too: it used to be waited for before it was told to stop, a
// silent deadlock after a fatal error). On a clean stop it lets the closed
// buffers and dead letters finish first; before a restart it drops the open
// buffers and waits for what is in flight (quiesce).
func (w *worker) life(ctx, wctx context.Context, offset int64) error {
	lctx, lcancel := context.WithCancel(wctx) // this life's deliveries
	defer lcancel()
	w.mu.Lock()
	w.deliverCtx = lctx
	w.mu.Unlock()
	rctx, stopCause := context.WithCancelCause(lctx)
	stop := func() { stopCause(nil) }
	defer stop()
	unhook := context.AfterFunc(ctx, stop) // shutdown: stop fetching, keep delivering
	defer unhook()
	// A delivery's spool error must reach a fetch loop blocked in a fetch (an
	// idle partition): it ends the fetch (spoolFailed).
	w.mu.Lock()
	w.stopFetch = stopCause
	w.mu.Unlock()

	dctx, dstop := context.WithCancel(lctx)
	dlqDone := make(chan struct{})
	go func() { defer close(dlqDone); w.runDeadLetters(dctx) }()
	tickDone := make(chan struct{})
	go func() { defer close(tickDone); w.runTicker(rctx) }()

	// The broker holds an idle fetch for up to a second (records return at once:
	// MinBytes 1); the read itself has batchTimeout of slack, so a busy broker
	// or a GC pause does not make idle fetches time out and reconnect. A stop
	// closes the connection at once.
	f := newFetcher(w.c.cfg.Dialer, w.c.cfg.Brokers, w.topic, w.partition, offset, w.c.cfg.MaxFetchBytes, time.Second, w.log)
	f.truncRef = w.truncationRef
	f.idle = func() { // a fetch found nothing to hand out: the partition is caught up
		w.mu.Lock()
		w.caughtUp = true
		w.mu.Unlock()
	}
	err := w.fetchLoop(rctx, f)
	f.close()
	stop()
	<-tickDone
	if err == nil && ctx.Err() == nil && wctx.Err() == nil {
		if se := w.spool.take(); se != nil {
			err = &restartError{spool: se} // spoolFailed ended the fetch
		}
	}

	var rs *restartError
	switch {
	case errors.As(err, &rs):
		dstop()
		<-dlqDone
		w.quiesce(lcancel)
		return err
	case err == nil && ctx.Err() != nil && wctx.Err() == nil:
		w.drain(wctx)
	}
	dstop()
	<-dlqDone
	return err
}

func (w *worker) fetchLoop(ctx context.Context, f *fetcher) error {
	for {
		if err := w.hold(ctx, f); err != nil || ctx.Err() != nil {
			return err
		}
		m, err := f.next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var te *truncatedError
			if errors.As(err, &te) {
				return &restartError{truncated: te}
			}
			w.log.Warn("fetch failed; retrying", "err", err)
			if !sleep(ctx, 500*time.Millisecond) {
				return nil
			}
			continue
		}
		w.lag.observe(m.Offset, m.HighWaterMark, m.Time)
		if m.Time.After(w.lastRead) {
			w.lastRead = m.Time
		}
		// A routing change decided before this record is recorded before it
		// (membership.go); the wait holds no lock.
		if err := w.route(ctx, m); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		// An idle close decided before this record happens before it, once Redis
		// has it (idle.go); the wait holds no lock.
		for {
			if !w.settleIdle(ctx) {
				return nil
			}
			w.mu.Lock()
			if w.idlePending == nil {
				break // with mu held
			}
			w.mu.Unlock()
		}
		if w.held {
			w.held = false
			f.touch()
		}
		w.caughtUp = m.Offset+1 >= m.HighWaterMark
		w.process(ctx, m)
		fatal := w.fatal
		w.mu.Unlock()
		if fatal != nil {
			var se *spoolError
			if errors.As(fatal, &se) {
				w.c.deps.Metrics.SpoolErrors.WithLabelValues(se.op).Inc()
				return &restartError{spool: se}
			}
			return fatal
		}
	}
}

const spoolFullReason = "spool full: fetching paused until deliveries free space"

// hold makes the fetch loop wait, without mu, while the partition must not read
// on: the spool is over its disk limit, more than maxUndelivered closed buffers
// wait for the delivery, or maxUnackedDeadLetters dead letters wait for the
// topic. Commits go on meanwhile. It returns a restartError when a delivery
// reported a spool error, and nil when the fetch loop may go on or ctx ended.
// The idle clock does not run while it holds.
func (w *worker) hold(ctx context.Context, f *fetcher) error {
	held, gauged, logged, spoolFull := false, false, "", false
	defer func() {
		if gauged {
			w.c.deps.Metrics.PausedPartitions.Dec()
		}
		if held {
			w.mu.Lock()
			w.held, w.spoolHeldSince = false, time.Time{}
			w.mu.Unlock()
			f.touch()
		}
	}()
	for {
		if se := w.spool.take(); se != nil {
			return &restartError{spool: se}
		}
		reason := ""
		switch {
		case w.c.deps.Spool.Full():
			reason = spoolFullReason
		case w.dl.over():
			reason = "dead-letter topic behind: fetching paused until it acknowledges the queued bad records (other partitions, and this one's commits up to its first unacknowledged dead letter, go on)"
		case w.undelivered.Load() > maxUndelivered:
			reason = "deliveries" // short and frequent during a catch-up: neither logged nor gauged
		}
		if reason == "" {
			return nil
		}
		if !held {
			held = true
			w.setHeld(true)
		}
		if full := reason == spoolFullReason; full != spoolFull {
			spoolFull = full
			w.mu.Lock()
			if full {
				w.spoolHeldSince = w.c.now()
			} else {
				w.spoolHeldSince = time.Time{}
			}
			w.mu.Unlock()
		}
		if reason != "deliveries" {
			if !gauged {
				gauged = true
				w.c.deps.Metrics.PausedPartitions.Inc()
			}
			if logged != reason {
				logged = reason
				w.log.Warn(reason)
			}
		}
		if !sleep(ctx, 5*time.Millisecond) {
			return nil
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
// if it moved since the last commit, and the epoch of the window state it came
// from (a restart begins a new one).
func (w *worker) prepareCommit() (int64, any, uint64, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.part == nil || w.next < 0 {
		return 0, nil, 0, false
	}
	c := w.tr.committable()
	if c < w.committed || c == w.committed && !w.mustCommit {
		return 0, nil, 0, false
	}
	snap, ok := w.part.Snapshot(c)
	if !ok {
		w.log.Error("no window snapshot for the committable offset; not committing", "offset", c)
		return 0, nil, 0, false
	}
	return c, snap, w.epoch, true
}

// committedAt notes that Kafka took offset, whose window snapshot is data, and
// forgets what the window and the replay memory kept for replays before it.
// When the window state was rebuilt since the offset was prepared (a restart,
// epoch), the commit still stands: offset and data become what a later restart
// starts from, and the new state forgets nothing yet.
func (w *worker) committedAt(ctx context.Context, offset int64, data []byte, epoch uint64) {
	w.mu.Lock()
	w.committed, w.lastSnap, w.mustCommit = offset, data, false
	if epoch == w.epoch {
		w.part.Forget(offset)
	}
	w.taken = slices.DeleteFunc(w.taken, func(c state.IdleClose) bool { return c.NextOffset < offset })
	w.mu.Unlock()
	w.dl.forgetBelow(offset)
	w.pruneRoutes(offset)
	w.spool.mu.Lock()
	if offset > w.spool.restartAt {
		w.spool.backoff = 0 // a restart that got this far worked
	}
	w.spool.mu.Unlock()
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
