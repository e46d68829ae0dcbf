package kstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
)

// Defaults of Config.
const (
	DefaultStartTimeout = 30 * time.Second
	DefaultWriteTimeout = 10 * time.Second
	DefaultMaxWait      = 5 * time.Second
)

// maxFetchBytes bounds one fetch of the follower.
const maxFetchBytes = 4 << 20

// firstMaxWait is the MaxWait of the follower's fetches until one succeeded.
const firstMaxWait = 100 * time.Millisecond

// ErrInvalid marks a bad configuration or argument.
var ErrInvalid = errors.New("kstore: invalid")

// permanent marks an error that waiting does not cure: the topic has the
// wrong shape, or the principal lacks a right.
type permanent struct{ error }

func (p permanent) Unwrap() error { return p.error }

// IsPermanent reports whether err (of Start, Put, Delete or Sync) will not
// go away by trying again: an authorization failure, or a topic of the wrong
// shape (partitions, cleanup.policy) or missing with NoCreate. Other errors
// (Kafka unreachable, leader elections, time-outs) may.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p) || isDenied(err) || errors.Is(err, ErrInvalid)
}

// ErrNotStarted is returned by Put, Delete and Sync before Start succeeded
// or after Close.
var ErrNotStarted = errors.New("kstore: not started")

// Config configures a Map.
type Config struct {
	// Brokers are the bootstrap addresses (host:port). Required.
	Brokers []string
	// Topic holds the map. Required.
	Topic string
	// Key is the name of the config key that names Topic, used in errors
	// ("kafka.integrations_topic"); default "topic".
	Key string
	// ClientID, SASL and TLS configure every connection (as for the
	// dead-letter writer). nil SASL and TLS: plain text without SASL.
	ClientID string
	SASL     sasl.Mechanism
	TLS      *tls.Config
	// NoCreate makes Start fail instead of creating a missing topic.
	NoCreate bool
	// StartTimeout bounds Start (default DefaultStartTimeout).
	StartTimeout time.Duration
	// WriteTimeout bounds Put and Delete, acknowledgement and read-back
	// included (default DefaultWriteTimeout).
	WriteTimeout time.Duration
	// MaxWait is how long the broker holds an idle fetch of the follower
	// (default DefaultMaxWait): the delay before the follower notices that a
	// connection died while nothing is written.
	MaxWait time.Duration
	// OnChange, if set, is called by the follower after it applied a record
	// of key (read it with Lookup), and with "" after the map was emptied
	// because the topic was re-created. It runs in the follower's goroutine:
	// it must not block for long and must not call Put, Delete or Sync.
	OnChange func(key string)
	// Now stamps the records written (default time.Now).
	Now func() time.Time
	// Logger receives follower failures (once per outage) and resets; nil
	// discards them.
	Logger *slog.Logger
}

// Entry is the last record of one key.
type Entry struct {
	// Value is nil when the key was deleted (a tombstone).
	Value []byte
	// Time is the record's timestamp: when it was written or deleted.
	Time time.Time
	// Offset is the record's offset in the partition.
	Offset int64
}

// Deleted reports whether the entry is a tombstone.
func (e Entry) Deleted() bool { return e.Value == nil }

// Map is the replicated map. See the package documentation for its
// guarantees.
type Map struct {
	cfg    Config
	log    *slog.Logger
	dialer *kafka.Dialer
	tr     *kafka.Transport
	client *kafka.Client
	writer *kafka.Writer

	mu       sync.RWMutex
	entries  map[string]Entry
	next     int64         // offset of the next record to read
	advanced chan struct{} // closed and replaced whenever next moves or the follower fails
	err      error         // the follower's last failure, nil once a fetch succeeded
	fetched  bool          // a fetch succeeded since Start
	started  bool

	stop context.CancelFunc
	done chan struct{}
}

// New checks cfg and builds the clients. It connects to nothing.
func New(cfg Config) (*Map, error) {
	if len(cfg.Brokers) == 0 || cfg.Topic == "" {
		return nil, fmt.Errorf("kstore: brokers and topic are required: %w", ErrInvalid)
	}
	if cfg.StartTimeout < 0 || cfg.WriteTimeout < 0 || cfg.MaxWait < 0 {
		return nil, fmt.Errorf("kstore: negative timeout: %w", ErrInvalid)
	}
	if cfg.Key == "" {
		cfg.Key = "topic"
	}
	if cfg.StartTimeout == 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.MaxWait == 0 {
		cfg.MaxWait = DefaultMaxWait
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	tr := &kafka.Transport{ClientID: cfg.ClientID, SASL: cfg.SASL, TLS: cfg.TLS}
	m := &Map{
		cfg:      cfg,
		log:      log.With("topic", cfg.Topic),
		dialer:   &kafka.Dialer{ClientID: cfg.ClientID, Timeout: 10 * time.Second, DualStack: true, SASLMechanism: cfg.SASL, TLS: cfg.TLS},
		tr:       tr,
		client:   &kafka.Client{Addr: kafka.TCP(cfg.Brokers...), Transport: tr, Timeout: 10 * time.Second},
		entries:  map[string]Entry{},
		advanced: make(chan struct{}),
	}
	m.writer = &kafka.Writer{
		Addr:         kafka.TCP(cfg.Brokers...),
		Topic:        cfg.Topic,
		Balancer:     &kafka.RoundRobin{}, // one partition
		RequiredAcks: kafka.RequireAll,
		BatchSize:    1, // a write is one record: send it at once
		BatchTimeout: time.Millisecond,
		MaxAttempts:  3,
		WriteTimeout: cfg.WriteTimeout,
		Transport:    tr,
	}
	return m, nil
}

// Topic returns the topic's name.
func (m *Map) Topic() string { return m.cfg.Topic }

// Start makes sure the topic exists (creating it unless NoCreate), reads it
// to the end offset it has now and starts following it. It blocks until
// then, at most StartTimeout, trying again after transient failures (see
// IsPermanent); on failure nothing keeps running and Start may be called
// again.
func (m *Map) Start(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, m.cfg.StartTimeout)
	defer cancel()
	var first, end int64
	var err error
	for attempt := 1; ; attempt++ { // transient failures are tried again until StartTimeout
		if err = m.ensureTopic(ctx); err == nil {
			if first, end, err = m.offsets(ctx); err != nil {
				err = m.explain("read the end offset of", err)
			}
		}
		if err == nil || IsPermanent(err) {
			break
		}
		// kafka-go's Transport keeps a broken connection pool until its
		// metadata expires (6 s): start the next attempt afresh.
		m.tr.CloseIdleConnections()
		if !sleep(ctx, backoff(attempt)) {
			break
		}
	}
	if err != nil {
		return err
	}
	fctx, stop := context.WithCancel(context.Background())
	m.mu.Lock()
	m.next, m.started, m.fetched, m.err = first, true, false, nil
	m.mu.Unlock()
	m.stop, m.done = stop, make(chan struct{})
	go m.follow(fctx)
	// Even an empty topic is read once: Start proves the principal may read it.
	if err := m.waitFor(ctx, end, true); err != nil {
		m.stopFollower()
		if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
			return fmt.Errorf("%s %q: not read to its end (offset %d) within %s: %w", m.cfg.Key, m.cfg.Topic, end, m.cfg.StartTimeout, err)
		}
		return err
	}
	return nil
}

// Close stops the follower and closes the connections. The map keeps what
// it read. Safe to call more than once.
func (m *Map) Close() error {
	m.stopFollower()
	err := m.writer.Close()
	m.tr.CloseIdleConnections()
	return err
}

func (m *Map) stopFollower() {
	m.mu.Lock()
	m.started = false
	m.mu.Unlock()
	if m.stop != nil {
		m.stop()
		<-m.done
		m.stop = nil
	}
}

// Get returns the value of key, if it has one.
func (m *Map) Get(key string) ([]byte, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	e, ok := m.entries[key]
	if !ok || e.Deleted() {
		return nil, false
	}
	return e.Value, true
}

// Lookup returns the last record read for key: a value, or a tombstone
// (Entry.Deleted). found is false when the map never saw the key.
func (m *Map) Lookup(key string) (e Entry, found bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	e, found = m.entries[key]
	return e, found
}

// All returns a copy of the map's values (tombstones left out). The values
// are shared: do not modify them.
func (m *Map) All() map[string][]byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make(map[string][]byte, len(m.entries))
	for k, e := range m.entries {
		if !e.Deleted() {
			out[k] = e.Value
		}
	}
	return out
}

// Entries returns a copy of every entry read, tombstones included.
func (m *Map) Entries() map[string]Entry {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return maps.Clone(m.entries)
}

// Err returns the follower's last failure, or nil when its last fetch
// succeeded (or it was never started).
func (m *Map) Err() error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.err
}

// Put writes value under key and returns once the broker acknowledged it
// (acks=all) and this replica's map holds it. value must not be empty.
func (m *Map) Put(ctx context.Context, key string, value []byte) error {
	if len(value) == 0 {
		return fmt.Errorf("kstore: put %q: empty value: %w", key, ErrInvalid)
	}
	return m.write(ctx, key, value)
}

// Delete writes a tombstone for key and returns once the broker
// acknowledged it and this replica's map applied it.
func (m *Map) Delete(ctx context.Context, key string) error {
	return m.write(ctx, key, nil)
}

func (m *Map) write(ctx context.Context, key string, value []byte) error {
	if key == "" {
		return fmt.Errorf("kstore: empty key: %w", ErrInvalid)
	}
	if !m.isStarted() {
		return ErrNotStarted
	}
	ctx, cancel := context.WithTimeout(ctx, m.cfg.WriteTimeout)
	defer cancel()
	if err := m.writer.WriteMessages(ctx, kafka.Message{Key: []byte(key), Value: value, Time: m.cfg.Now()}); err != nil {
		m.tr.CloseIdleConnections() // the next write starts afresh (see Start)
		return m.explain("write to", err)
	}
	if err := m.Sync(ctx); err != nil {
		m.tr.CloseIdleConnections()
		return err
	}
	return nil
}

// Sync blocks until the map holds every record the topic has now (read your
// writes after another replica's acknowledged write).
func (m *Map) Sync(ctx context.Context) error {
	if !m.isStarted() {
		return ErrNotStarted
	}
	_, end, err := m.offsets(ctx)
	if err != nil {
		return m.explain("read the end offset of", err)
	}
	return m.waitFor(ctx, end, false)
}

func (m *Map) isStarted() bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.started
}

// waitFor blocks until the follower's position reaches end (and, with
// fetched, until one of its fetches succeeded). It returns the follower's
// error with ctx's when ctx ends first.
func (m *Map) waitFor(ctx context.Context, end int64, fetched bool) error {
	for {
		m.mu.RLock()
		next, ch, ferr, ok := m.next, m.advanced, m.err, m.fetched
		m.mu.RUnlock()
		if next >= end && (ok || !fetched) {
			return nil
		}
		if fetched && ferr != nil && isDenied(ferr) {
			return ferr // waiting will not help
		}
		select {
		case <-ctx.Done():
			if ferr != nil {
				return ferr // in plain words already (explain)
			}
			return ctx.Err()
		case <-ch:
		}
	}
}

// signalLocked wakes every waiter; m.mu must be held.
func (m *Map) signalLocked() {
	close(m.advanced)
	m.advanced = make(chan struct{})
}

// offsets returns the partition's first offset and its end (the offset of
// the next record).
func (m *Map) offsets(ctx context.Context) (first, end int64, err error) {
	res, err := m.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{
		m.cfg.Topic: {kafka.FirstOffsetOf(0), kafka.LastOffsetOf(0)},
	}})
	if err != nil {
		return 0, 0, err
	}
	ps := res.Topics[m.cfg.Topic]
	if len(ps) == 0 {
		return 0, 0, fmt.Errorf("no offsets for partition 0: %w", kafka.UnknownTopicOrPartition)
	}
	first, end = -1, -1
	for _, p := range ps {
		if p.Error != nil {
			return 0, 0, p.Error
		}
		if p.FirstOffset >= 0 {
			first = p.FirstOffset
		}
		if p.LastOffset >= 0 {
			end = p.LastOffset
		}
	}
	if first < 0 || end < 0 {
		return 0, 0, fmt.Errorf("incomplete offsets of partition 0: %+v", ps)
	}
	return first, end, nil
}

// follow reads the partition from m.next until ctx ends.
func (m *Map) follow(ctx context.Context) {
	defer close(m.done)
	var conn *kafka.Conn
	unhook := func() bool { return false }
	drop := func() {
		if conn != nil {
			unhook()
			_ = conn.Close()
			conn = nil
		}
	}
	defer drop()
	fails := 0
	for ctx.Err() == nil {
		if conn == nil {
			if fails > 0 && !sleep(ctx, backoff(fails)) {
				return
			}
			c, err := m.dialer.DialLeader(ctx, "tcp", m.cfg.Brokers[fails%len(m.cfg.Brokers)], m.cfg.Topic, 0)
			if err != nil {
				fails++
				m.failed(ctx, fails, fmt.Errorf("connect to the leader of %s: %w", m.cfg.Topic, err))
				continue
			}
			conn = c
			unhook = context.AfterFunc(ctx, func() { _ = c.Close() })
		}
		err := m.fetch(conn)
		switch {
		case err == nil:
			if fails > 0 {
				m.log.Info("kstore: reading the topic again")
			}
			fails = 0
			m.setErr(nil)
			continue
		case ctx.Err() != nil:
			return
		case errors.Is(err, kafka.RequestTimedOut):
			// Nothing new within MaxWait: the topic was read to its end. As
			// consumer/fetch.go does, the next fetch uses a new connection.
			drop()
			fails = 0
			m.setErr(nil)
			continue
		case errors.Is(err, kafka.OffsetOutOfRange):
			if rerr := m.outOfRange(ctx); rerr != nil {
				err = rerr
			} else {
				drop()
				continue
			}
		}
		drop()
		fails++
		m.failed(ctx, fails, err)
	}
}

// fetch reads one batch on conn and applies its records.
func (m *Map) fetch(conn *kafka.Conn) error {
	m.mu.RLock()
	next, wait := m.next, m.cfg.MaxWait
	if !m.fetched {
		// Start waits for one answer, even from an empty topic: do not
		// make it wait MaxWait for records that are not coming.
		wait = min(wait, firstMaxWait)
	}
	m.mu.RUnlock()
	if _, err := conn.Seek(next, kafka.SeekAbsolute|kafka.SeekDontCheck); err != nil {
		return err
	}
	_ = conn.SetReadDeadline(time.Now().Add(wait + 30*time.Second))
	batch := conn.ReadBatchWith(kafka.ReadBatchConfig{MinBytes: 1, MaxBytes: maxFetchBytes, MaxWait: wait})
	for {
		msg, err := batch.ReadMessage()
		if err != nil {
			if !errors.Is(err, io.EOF) {
				_ = batch.Close()
				return err
			}
			break
		}
		if msg.Offset < next {
			continue // a record batch the broker sent from its start
		}
		next = msg.Offset + 1
		m.apply(msg)
	}
	if err := batch.Close(); err != nil {
		return err
	}
	// Past records compacted away at a batch's end.
	if off, _ := conn.Offset(); off > next {
		m.mu.Lock()
		if off > m.next {
			m.next = off
			m.signalLocked()
		}
		m.mu.Unlock()
	}
	return nil
}

func (m *Map) apply(msg kafka.Message) {
	key := string(msg.Key)
	m.mu.Lock()
	if key != "" { // a record without a key is not ours: skip it
		m.entries[key] = Entry{Value: msg.Value, Time: msg.Time, Offset: msg.Offset}
	}
	m.next = msg.Offset + 1
	m.signalLocked()
	m.mu.Unlock()
	if key != "" && m.cfg.OnChange != nil {
		m.cfg.OnChange(key)
	}
}

// outOfRange handles a fetch past the partition's range: before its first
// offset (records gone) it moves up to the first; past its end the topic was
// re-created or truncated, so the map is emptied and read again from the
// start.
func (m *Map) outOfRange(ctx context.Context) error {
	octx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	first, end, err := m.offsets(octx)
	if err != nil {
		return err
	}
	m.mu.Lock()
	next := m.next
	reset := next > end
	switch {
	case reset:
		m.entries = map[string]Entry{}
		m.next = first
	case next < first:
		m.next = first
	}
	m.signalLocked()
	m.mu.Unlock()
	if reset {
		m.log.Error("kstore: the topic ends before the offset already read: it was re-created or truncated; reading it again from its start",
			"read_up_to", next, "end", end)
		if m.cfg.OnChange != nil {
			m.cfg.OnChange("")
		}
	}
	return nil
}

func (m *Map) setErr(err error) {
	m.mu.Lock()
	m.err = err
	if err != nil || !m.fetched {
		m.fetched = m.fetched || err == nil
		m.signalLocked()
	}
	m.mu.Unlock()
}

// failed records a follower failure; the first of an outage is logged.
func (m *Map) failed(ctx context.Context, fails int, err error) {
	if ctx.Err() != nil {
		return
	}
	err = m.explain("read", err)
	m.setErr(err)
	if fails == 1 {
		m.log.Warn("kstore: cannot read the topic; keeping what was read and retrying", "err", err)
	}
}

// explain turns an error of an operation on the topic into plain words that
// name the config key and, for authorization failures, the ACL needed.
func (m *Map) explain(op string, err error) error {
	if errors.Is(err, ErrInvalid) || errors.Is(err, ErrNotStarted) {
		return err
	}
	key, topic := m.cfg.Key, m.cfg.Topic
	switch {
	case isDenied(err):
		return fmt.Errorf("%s %q: hitship is not allowed to %s the topic: grant its principal Describe, Read and Write on topic %q (and Create, or create the topic yourself with one partition and cleanup.policy=compact): %w",
			key, topic, op, topic, err)
	case errors.Is(err, kafka.UnknownTopicOrPartition):
		return fmt.Errorf("%s %q: the topic does not exist (cannot %s it): create it with one partition and cleanup.policy=compact, or let hitship create it: %w",
			key, topic, op, err)
	}
	return fmt.Errorf("%s %q: cannot %s the topic: %w", key, topic, op, err)
}

// isDenied reports an authentication or authorization failure.
func isDenied(err error) bool {
	return errors.Is(err, kafka.TopicAuthorizationFailed) || errors.Is(err, kafka.SASLAuthenticationFailed) ||
		errors.Is(err, kafka.GroupAuthorizationFailed) || errors.Is(err, kafka.ClusterAuthorizationFailed)
}

// ensureTopic creates the topic when missing and checks its shape.
func (m *Map) ensureTopic(ctx context.Context) error {
	for {
		md, err := m.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{m.cfg.Topic}})
		if err != nil {
			return fmt.Errorf("%s %q: cannot read the topic's metadata from Kafka (%s): %w", m.cfg.Key, m.cfg.Topic,
				strings.Join(m.cfg.Brokers, ","), err)
		}
		var t *kafka.Topic
		for i := range md.Topics {
			if md.Topics[i].Name == m.cfg.Topic {
				t = &md.Topics[i]
			}
		}
		switch {
		case t == nil || errors.Is(t.Error, kafka.UnknownTopicOrPartition):
			if m.cfg.NoCreate {
				return permanent{m.explain("read", kafka.UnknownTopicOrPartition)}
			}
			created, err := m.create(ctx)
			if err != nil {
				return err
			}
			if created {
				m.log.Info("kstore: created the topic", "partitions", 1, "cleanup.policy", "compact")
			}
			continue // read its metadata again
		case t.Error != nil && !errors.Is(t.Error, kafka.LeaderNotAvailable):
			return m.explain("describe", t.Error)
		case len(t.Partitions) != 1:
			return permanent{fmt.Errorf("%s %q: the topic has %d partitions; it must have exactly one (the map's order is the partition's): use a new topic with one partition and cleanup.policy=compact",
				m.cfg.Key, m.cfg.Topic, len(t.Partitions))}
		}
		return m.checkPolicy(ctx)
	}
}

// create creates the topic; created is false when another replica was
// faster.
func (m *Map) create(ctx context.Context) (created bool, err error) {
	res, err := m.client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{
		Topic: m.cfg.Topic, NumPartitions: 1, ReplicationFactor: -1,
		ConfigEntries: []kafka.ConfigEntry{{ConfigName: "cleanup.policy", ConfigValue: "compact"}},
	}}})
	if err == nil {
		err = res.Errors[m.cfg.Topic]
	}
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, kafka.TopicAlreadyExists):
		return false, nil
	case errors.Is(err, kafka.TopicAuthorizationFailed), errors.Is(err, kafka.ClusterAuthorizationFailed):
		return false, fmt.Errorf("%s %q: the topic is missing and hitship is not allowed to create it: grant its principal Create on topic %q (or the cluster) besides Describe, Read and Write, or create it yourself: kafka-topics.sh --create --topic %s --partitions 1 --config cleanup.policy=compact: %w",
			m.cfg.Key, m.cfg.Topic, m.cfg.Topic, m.cfg.Topic, err)
	}
	return false, fmt.Errorf("%s %q: cannot create the topic (one partition, cleanup.policy=compact): %w", m.cfg.Key, m.cfg.Topic, err)
}

// checkPolicy refuses a topic whose cleanup.policy does not compact. A
// principal without DescribeConfigs is warned about, not refused.
func (m *Map) checkPolicy(ctx context.Context) error {
	res, err := m.client.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: []kafka.DescribeConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: m.cfg.Topic, ConfigNames: []string{"cleanup.policy"},
	}}})
	if err == nil && len(res.Resources) == 1 {
		err = res.Resources[0].Error
	}
	if err != nil {
		m.log.Warn("kstore: cannot read the topic's cleanup.policy; make sure it is compact, or its values expire with the retention",
			"key", m.cfg.Key, "err", err)
		return nil
	}
	for _, r := range res.Resources {
		for _, c := range r.ConfigEntries {
			if c.ConfigName == "cleanup.policy" && !strings.Contains(c.ConfigValue, "compact") {
				return permanent{fmt.Errorf("%s %q: the topic has cleanup.policy=%s, so its values would expire with the retention: set cleanup.policy=compact (kafka-configs.sh --alter --entity-type topics --entity-name %s --add-config cleanup.policy=compact)",
					m.cfg.Key, m.cfg.Topic, c.ConfigValue, m.cfg.Topic)}
			}
		}
	}
	return nil
}

// backoff is the wait before reconnecting after n consecutive failures:
// 100 ms doubling to 5 s.
func backoff(n int) time.Duration {
	return min(100*time.Millisecond<<min(n-1, 6), 5*time.Second)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
