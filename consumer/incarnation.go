package consumer

import (
	"context"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"hitship/sink"
)

// Incarnations names the incarnation of the consumed topic: what tells a
// topic apart from an earlier one of the same name (a rebuilt Kafka cluster,
// a deleted and re-created topic), whose offsets and generation ids start
// again. The partition state in Redis is kept per incarnation (see
// Deps.StateFor), so stale state is ignored, never applied to records it does
// not describe. KafkaIncarnations implements it. Safe for concurrent use.
type Incarnations interface {
	// Incarnation returns a string of letters, digits, '.', '_' and '-'
	// (at most 128) that changes when the topic is another one; "" when the
	// brokers give no identity at all.
	Incarnation(ctx context.Context, topic string) (string, error)
}

// KafkaIncarnations asks the brokers for the cluster id and the topic's id
// (a UUID: Kafka 2.8 and later, Metadata v10+). kafka-go's metadata request
// stops at v8, before topic ids, so it asks through a franz-go client built
// for the call. Opts carry what the consumer's connection has: SASL, TLS,
// client id, dial timeout. With brokers that give no topic id (older
// Kafka), the incarnation is the cluster id alone: a topic deleted and
// re-created in the same cluster then shares its predecessor's state.
type KafkaIncarnations struct {
	Brokers []string
	Opts    []kgo.Opt
}

var _ Incarnations = KafkaIncarnations{}

// Incarnation returns "<cluster id>.<topic id in hex>". It blocks for one
// metadata round trip (and the connection); it does not retry.
func (k KafkaIncarnations) Incarnation(ctx context.Context, topic string) (string, error) {
	opts := append([]kgo.Opt{kgo.SeedBrokers(k.Brokers...), kgo.DialTimeout(10 * time.Second)}, k.Opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return "", fmt.Errorf("topic incarnation: %w", err)
	}
	defer cl.Close()
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return "", fmt.Errorf("topic incarnation: metadata of %s: %w", topic, err)
	}
	for _, t := range resp.Topics {
		if t.Topic == nil || *t.Topic != topic {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return "", fmt.Errorf("topic incarnation: metadata of %s: %w", topic, err)
		}
		cluster := ""
		if resp.ClusterID != nil {
			cluster = *resp.ClusterID
		}
		return FormatIncarnation(cluster, t.TopicID), nil
	}
	return "", fmt.Errorf("topic incarnation: no metadata for topic %s", topic)
}

// FormatIncarnation renders a cluster id and a topic id as an incarnation:
// the cluster id as it is when it holds only letters, digits, '_' and '-'
// (Kafka's are base64url), else "c" and 16 hex digits of its FNV-1a hash;
// then "." and the topic id's 32 hex digits unless it is all zero (no topic
// id). "" when both are empty.
func FormatIncarnation(clusterID string, topicID [16]byte) string {
	c := clusterID
	if len(c) > 64 || strings.ContainsFunc(c, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
	}) {
		h := fnv.New64a()
		_, _ = h.Write([]byte(clusterID))
		c = fmt.Sprintf("c%016x", h.Sum64())
	}
	if topicID == ([16]byte{}) {
		return c
	}
	return c + "." + hex.EncodeToString(topicID[:])
}

// digestSeed is the {digest} seed of the objects of an incarnation: the same
// offsets of another incarnation hold other records, so their objects must
// not share keys (a conditional write would count the new records as
// delivered).
func digestSeed(inc string) uint64 {
	if inc == "" {
		return sink.DigestSeed
	}
	return sink.DigestString(sink.DigestSeed, inc)
}
