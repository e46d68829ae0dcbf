package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/segmentio/kafka-go"

	"hitship/internal/embedded"
)

// KafkaOptions configures StartKafka (embedded.KafkaOptions).
type KafkaOptions = embedded.KafkaOptions

// Kafka is the embedded broker (embedded.Kafka: Addrs, Cluster, Cut,
// Restore, Slow, Restart, Close) with what tests need on top: producing to
// chosen partitions, reading topics back, committed offsets, committing from
// outside the group, re-creating a topic. All methods are safe for concurrent
// use.
type Kafka struct {
	*embedded.Kafka
}

// StartKafka starts the broker (embedded.StartKafka). The caller must Close it.
func StartKafka(opts KafkaOptions) (*Kafka, error) {
	k, err := embedded.StartKafka(opts)
	if err != nil {
		return nil, err
	}
	return &Kafka{Kafka: k}, nil
}

// transport returns a private kafka-go transport for one call: the package
// default one keeps background goroutines alive, which goleak would report.
// Made per call, its cached metadata is never stale, so MetadataTTL only
// matters as what kafka-go also makes of it, the timeout of each metadata
// request, which must outlast a broker slowed by load.
func (k *Kafka) transport() *kafka.Transport {
	return &kafka.Transport{DialTimeout: 2 * time.Second, IdleTimeout: time.Second, MetadataTTL: 5 * time.Second,
		SASL: k.ClientSASL(), TLS: k.ClientTLS()}
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
	conn, err := (&kafka.Dialer{Timeout: 5 * time.Second, SASLMechanism: k.ClientSASL(), TLS: k.ClientTLS()}).DialLeader(ctx, "tcp", k.Addrs()[0], topic, p)
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
