package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
)

// KafkaOptions configures StartKafka.
type KafkaOptions struct {
	// Partitions of every seeded topic (default 1).
	Partitions int
	// Topics created at start (only on the first start of a DataDir).
	Topics []string
	// DataDir, when set, persists the cluster there so that Restart (or a new
	// StartKafka on the same DataDir) keeps topics, records and committed
	// offsets. "" keeps everything in memory.
	DataDir string
	// GroupMinSessionTimeout lowers the broker's minimum consumer-group
	// session timeout (kfake's default is 6s) so that tests can use 1-6s
	// sessions. 0 keeps the default.
	GroupMinSessionTimeout time.Duration
	// Port to listen on; 0 picks a free one.
	Port int
}

// Kafka is an in-process single-broker Kafka (franz-go kfake) on 127.0.0.1.
//
// Cut and Restore simulate a network outage without losing broker state:
// while cut, every existing client connection is closed and new ones are
// closed as soon as they are accepted. All methods are safe for concurrent use.
type Kafka struct {
	opts KafkaOptions
	gate *gate

	mu      sync.Mutex
	cluster *kfake.Cluster
	port    int
	closed  bool
	expiry  *memberExpiry
}

// StartKafka starts the broker. The caller must Close it.
func StartKafka(opts KafkaOptions) (*Kafka, error) {
	if opts.Partitions <= 0 {
		opts.Partitions = 1
	}
	k := &Kafka{opts: opts, gate: newGate(), port: opts.Port}
	k.expiry = newMemberExpiry(k)
	if err := k.start(); err != nil {
		return nil, err
	}
	go k.expiry.run()
	return k, nil
}

func (k *Kafka) start() error {
	kopts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(k.port),
		kfake.ListenFn(k.gate.listen),
	}
	if len(k.opts.Topics) > 0 {
		kopts = append(kopts, kfake.SeedTopics(int32(k.opts.Partitions), k.opts.Topics...))
	}
	if k.opts.DataDir != "" {
		kopts = append(kopts, kfake.DataDir(k.opts.DataDir))
	}
	if k.opts.GroupMinSessionTimeout > 0 {
		kopts = append(kopts, kfake.GroupMinSessionTimeout(k.opts.GroupMinSessionTimeout))
	}
	c, err := kfake.NewCluster(kopts...)
	if err != nil {
		return fmt.Errorf("testenv: start kfake: %w", err)
	}
	addrs := c.ListenAddrs()
	if len(addrs) != 1 {
		c.Close()
		return fmt.Errorf("testenv: kfake listens on %d addresses, want 1", len(addrs))
	}
	_, portStr, err := net.SplitHostPort(addrs[0])
	if err != nil {
		c.Close()
		return fmt.Errorf("testenv: kfake address %q: %w", addrs[0], err)
	}
	k.port, _ = strconv.Atoi(portStr)
	k.cluster = c
	k.expiry.watch(c)
	return nil
}

// Addrs returns the bootstrap addresses (host:port). They stay the same
// across Restart.
func (k *Kafka) Addrs() []string {
	return []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(k.port))}
}

// Cluster returns the underlying kfake cluster (for group inspection and
// fault injection). It changes on Restart.
func (k *Kafka) Cluster() *kfake.Cluster {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.cluster
}

// Cut closes every open client connection and refuses new ones until
// Restore. Broker state (records, groups, offsets) is kept.
func (k *Kafka) Cut() { k.gate.cut() }

// Restore lets clients connect again after Cut.
func (k *Kafka) Restore() { k.gate.restore() }

// Slow makes the broker wait d before every write to a client (0: no wait),
// as a broker under load answers late.
func (k *Kafka) Slow(d time.Duration) { k.gate.slow.Store(int64(d)) }

// Restart closes the broker and starts it again on the same port. With a
// DataDir the state survives; without one Restart is refused, because an
// empty broker behind the same address would silently lose data.
func (k *Kafka) Restart() error {
	if k.opts.DataDir == "" {
		return errors.New("testenv: Kafka.Restart needs KafkaOptions.DataDir")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return errors.New("testenv: kafka is closed")
	}
	k.cluster.Close()
	k.gate.closeConns()
	var err error
	// The port is free again once the listener is closed; retry briefly.
	for attempt := 0; attempt < 50; attempt++ {
		if err = k.start(); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

// Close shuts the broker down and closes all client connections. It is safe
// to call more than once.
func (k *Kafka) Close() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return
	}
	k.closed = true
	k.mu.Unlock()
	k.expiry.close() // it takes k.mu (Cluster)
	k.mu.Lock()
	k.cluster.Close()
	k.gate.closeConns()
}

// transport returns a private kafka-go transport for one call: the package
// default one keeps background goroutines alive, which goleak would report.
// Made per call, its cached metadata is never stale, so MetadataTTL only
// matters as what kafka-go also makes of it, the timeout of each metadata
// request, which must outlast a broker slowed by load.
func (k *Kafka) transport() *kafka.Transport {
	return &kafka.Transport{DialTimeout: 2 * time.Second, IdleTimeout: time.Second, MetadataTTL: 5 * time.Second}
}

func (k *Kafka) client(tr *kafka.Transport) *kafka.Client {
	return &kafka.Client{Addr: kafka.TCP(k.Addrs()...), Transport: tr, Timeout: 10 * time.Second}
}

// Partitions returns the partition ids of topic in ascending order.
func (k *Kafka) Partitions(ctx context.Context, topic string) ([]int, error) {
	tr := k.transport()
	defer tr.CloseIdleConnections()
	return k.partitions(ctx, k.client(tr), topic)
}

func (k *Kafka) partitions(ctx context.Context, c *kafka.Client, topic string) ([]int, error) {
	md, err := c.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return nil, fmt.Errorf("testenv: metadata of %q: %w", topic, err)
	}
	for _, t := range md.Topics {
		if t.Name != topic {
			continue
		}
		if t.Error != nil {
			return nil, fmt.Errorf("testenv: metadata of %q: %w", topic, t.Error)
		}
		ps := make([]int, 0, len(t.Partitions))
		for _, p := range t.Partitions {
			ps = append(ps, p.ID)
		}
		sort.Ints(ps)
		return ps, nil
	}
	return nil, fmt.Errorf("testenv: topic %q not found", topic)
}

// Produce writes msgs to topic and waits for all acks. Each message goes to
// the partition in its Partition field (kafka-go's Writer would otherwise
// ignore it), so tests control placement exactly; Message.Topic must be empty
// or equal to topic.
func (k *Kafka) Produce(ctx context.Context, topic string, msgs []kafka.Message) error {
	out := make([]kafka.Message, len(msgs))
	for i, m := range msgs {
		if m.Topic != "" && m.Topic != topic {
			return fmt.Errorf("testenv: message %d has topic %q, producing to %q", i, m.Topic, topic)
		}
		m.Topic = ""
		out[i] = m
	}
	tr := k.transport()
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{
		Addr:         kafka.TCP(k.Addrs()...),
		Topic:        topic,
		Balancer:     explicitPartition{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: time.Millisecond,
		BatchSize:    len(out) + 1,
		Transport:    tr,
	}
	err := w.WriteMessages(ctx, out...)
	if cerr := w.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("testenv: produce to %q: %w", topic, err)
	}
	return nil
}

// explicitPartition sends a message to its Message.Partition.
type explicitPartition struct{}

func (explicitPartition) Balance(msg kafka.Message, partitions ...int) int {
	return msg.Partition
}

// Committed returns the offsets group has committed on topic, by partition.
// Partitions without a commit are absent from the map.
func (k *Kafka) Committed(ctx context.Context, group, topic string) (map[int]int64, error) {
	tr := k.transport()
	defer tr.CloseIdleConnections()
	c := k.client(tr)
	ps, err := k.partitions(ctx, c, topic)
	if err != nil {
		return nil, err
	}
	resp, err := c.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: ps}})
	if err != nil {
		return nil, fmt.Errorf("testenv: offset fetch %q/%q: %w", group, topic, err)
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("testenv: offset fetch %q/%q: %w", group, topic, resp.Error)
	}
	out := make(map[int]int64)
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			return nil, fmt.Errorf("testenv: offset fetch %q/%q[%d]: %w", group, topic, p.Partition, p.Error)
		}
		if p.CommittedOffset >= 0 {
			out[p.Partition] = p.CommittedOffset
		}
	}
	return out, nil
}

// Commit commits offset for partition of topic in group from outside the
// group (generation -1, as an admin tool does), e.g. to put a committed offset
// past the log end. The group must have no live members.
func (k *Kafka) Commit(ctx context.Context, group, topic string, partition int, offset int64) error {
	tr := k.transport()
	defer tr.CloseIdleConnections()
	resp, err := k.client(tr).OffsetCommit(ctx, &kafka.OffsetCommitRequest{GroupID: group, GenerationID: -1,
		Topics: map[string][]kafka.OffsetCommit{topic: {{Partition: partition, Offset: offset}}}})
	if err != nil {
		return fmt.Errorf("testenv: commit %q/%q[%d]: %w", group, topic, partition, err)
	}
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			return fmt.Errorf("testenv: commit %q/%q[%d]: %w", group, topic, partition, p.Error)
		}
	}
	return nil
}

// RecreateTopic deletes topic and creates it again, empty, with partitions
// partitions (a topic re-created by an operator: offsets start again at 0).
func (k *Kafka) RecreateTopic(ctx context.Context, topic string, partitions int) error {
	tr := k.transport()
	defer tr.CloseIdleConnections()
	c := k.client(tr)
	if _, err := c.DeleteTopics(ctx, &kafka.DeleteTopicsRequest{Topics: []string{topic}}); err != nil {
		return fmt.Errorf("testenv: delete topic %q: %w", topic, err)
	}
	for {
		resp, err := c.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: topic, NumPartitions: partitions, ReplicationFactor: 1}}})
		if err == nil {
			err = resp.Errors[topic]
		}
		if err == nil {
			return nil
		}
		if !errors.Is(err, kafka.TopicAlreadyExists) || ctx.Err() != nil {
			return fmt.Errorf("testenv: create topic %q: %w", topic, errors.Join(err, ctx.Err()))
		}
		time.Sleep(50 * time.Millisecond) // the deletion is still under way
	}
}

// offsets lists the first and the high-water offsets of every partition.
func (k *Kafka) offsets(ctx context.Context, topic string) (first, high map[int]int64, err error) {
	tr := k.transport()
	defer tr.CloseIdleConnections()
	c := k.client(tr)
	ps, err := k.partitions(ctx, c, topic)
	if err != nil {
		return nil, nil, err
	}
	reqs := make([]kafka.OffsetRequest, 0, 2*len(ps))
	for _, p := range ps {
		reqs = append(reqs, kafka.FirstOffsetOf(p), kafka.LastOffsetOf(p))
	}
	resp, err := c.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, nil, fmt.Errorf("testenv: list offsets of %q: %w", topic, err)
	}
	first, high = make(map[int]int64), make(map[int]int64)
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			return nil, nil, fmt.Errorf("testenv: list offsets of %q[%d]: %w", topic, po.Partition, po.Error)
		}
		first[po.Partition] = po.FirstOffset
		high[po.Partition] = po.LastOffset
	}
	if len(high) != len(ps) {
		return nil, nil, fmt.Errorf("testenv: list offsets of %q: %d of %d partitions answered", topic, len(high), len(ps))
	}
	return first, high, nil
}

// HighWater returns the high-water mark (offset of the next record) of every
// partition of topic.
func (k *Kafka) HighWater(ctx context.Context, topic string) (map[int]int64, error) {
	_, high, err := k.offsets(ctx, topic)
	return high, err
}

// ReadAll returns every record currently in topic, ordered by partition, then
// offset. It reads up to the high-water marks taken at the call.
func (k *Kafka) ReadAll(ctx context.Context, topic string) ([]kafka.Message, error) {
	var out []kafka.Message
	err := k.Scan(ctx, topic, func(m *kafka.Message) error {
		out = append(out, *m)
		return nil
	})
	return out, err
}

// Scan calls fn for every record currently in topic, partition by partition
// in offset order, up to the high-water marks taken at the call; an error of
// fn ends it.
func (k *Kafka) Scan(ctx context.Context, topic string, fn func(m *kafka.Message) error) error {
	first, high, err := k.offsets(ctx, topic)
	if err != nil {
		return err
	}
	ps := make([]int, 0, len(high))
	for p := range high {
		ps = append(ps, p)
	}
	sort.Ints(ps)
	for _, p := range ps {
		if high[p] <= first[p] {
			continue
		}
		if err := k.scanPartition(ctx, topic, p, first[p], high[p], fn); err != nil {
			return fmt.Errorf("testenv: read %q[%d]: %w", topic, p, err)
		}
	}
	return nil
}

// scanPartition reads [from, to) with Conn batches and deadlines of its own.
// Not kafka.Reader: it gives a fetch response MaxWait to start arriving and
// retries silently when it does not, so a short MaxWait never read a record
// once kfake (race-instrumented, on a loaded 2-core machine) took longer to
// build a response (CI, 2026-12-04), and a long one makes Close wait for the
// fetch it starts past the end.
func (k *Kafka) scanPartition(ctx context.Context, topic string, p int, from, to int64, fn func(m *kafka.Message) error) error {
	conn, err := (&kafka.Dialer{Timeout: 5 * time.Second}).DialLeader(ctx, "tcp", k.Addrs()[0], topic, p)
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	for off := from; off < to; {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := conn.Seek(off, kafka.SeekAbsolute|kafka.SeekDontCheck); err != nil {
			return err
		}
		_ = conn.SetReadDeadline(time.Now().Add(time.Minute))
		batch := conn.ReadBatchWith(kafka.ReadBatchConfig{MinBytes: 1, MaxBytes: 4 << 20, MaxWait: time.Second})
		for off < to {
			m, err := batch.ReadMessage()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					batch.Close()
					return errors.Join(err, ctx.Err())
				}
				break
			}
			if m.Offset < off {
				continue // a record batch the broker sent from its start
			}
			off = m.Offset + 1
			if err := fn(&m); err != nil {
				batch.Close()
				return err
			}
		}
		if err := batch.Close(); err != nil {
			return errors.Join(err, ctx.Err())
		}
	}
	return nil
}

// gate is the listener wrapper behind Cut and Restore: it tracks accepted
// connections so that cut can close them.
type gate struct {
	mu    sync.Mutex
	isCut bool
	conns map[*gatedConn]struct{}
	slow  atomic.Int64 // nanoseconds every write of the broker waits
}

func newGate() *gate { return &gate{conns: make(map[*gatedConn]struct{})} }

func (g *gate) listen(network, address string) (net.Listener, error) {
	l, err := net.Listen(network, address)
	if err != nil {
		return nil, err
	}
	return &gatedListener{Listener: l, g: g}, nil
}

func (g *gate) cut() {
	g.mu.Lock()
	g.isCut = true
	g.mu.Unlock()
	g.closeConns()
}

func (g *gate) restore() {
	g.mu.Lock()
	g.isCut = false
	g.mu.Unlock()
}

func (g *gate) closeConns() {
	g.mu.Lock()
	conns := make([]*gatedConn, 0, len(g.conns))
	for c := range g.conns {
		conns = append(conns, c)
	}
	g.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// admit registers c, or reports false while the gate is cut.
func (g *gate) admit(c *gatedConn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.isCut {
		return false
	}
	g.conns[c] = struct{}{}
	return true
}

func (g *gate) forget(c *gatedConn) {
	g.mu.Lock()
	delete(g.conns, c)
	g.mu.Unlock()
}

type gatedListener struct {
	net.Listener
	g *gate
}

// Accept closes connections that arrive while the gate is cut and keeps
// waiting, so the broker never sees them.
func (l *gatedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		gc := &gatedConn{Conn: c, g: l.g}
		if l.g.admit(gc) {
			return gc, nil
		}
		_ = c.Close()
	}
}

type gatedConn struct {
	net.Conn
	g    *gate
	once sync.Once
	err  error
}

func (c *gatedConn) Write(b []byte) (int, error) {
	if d := time.Duration(c.g.slow.Load()); d > 0 {
		time.Sleep(d)
	}
	return c.Conn.Write(b)
}

func (c *gatedConn) Close() error {
	c.once.Do(func() {
		c.g.forget(c)
		c.err = c.Conn.Close()
	})
	return c.err
}
