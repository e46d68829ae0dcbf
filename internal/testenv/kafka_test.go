package testenv

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
)

func msgs(partition, n int, prefix string) []kafka.Message {
	out := make([]kafka.Message, n)
	for i := range out {
		out[i] = kafka.Message{
			Partition: partition,
			Key:       []byte("7"),
			Value:     []byte(fmt.Sprintf(`{"%s":%d}`, prefix, i)),
			Headers:   []kafka.Header{{Key: "client_id", Value: []byte("7")}},
		}
	}
	return out
}

func TestKafkaProduceReadAll(t *testing.T) {
	tests := []struct {
		name    string
		perPart map[int]int // records produced to each partition
	}{
		{name: "one partition", perPart: map[int]int{0: 3}},
		{name: "spread over three", perPart: map[int]int{0: 2, 1: 0, 2: 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			k := MustKafka(t, KafkaOptions{Partitions: 3, Topics: []string{"hits"}})
			for p := 0; p < 3; p++ {
				if n := tt.perPart[p]; n > 0 {
					if err := k.Produce(ctx, "hits", msgs(p, n, "v")); err != nil {
						t.Fatalf("Produce: %v", err)
					}
				}
			}
			hw, err := k.HighWater(ctx, "hits")
			if err != nil {
				t.Fatalf("HighWater: %v", err)
			}
			want := map[int]int64{0: int64(tt.perPart[0]), 1: int64(tt.perPart[1]), 2: int64(tt.perPart[2])}
			if !reflect.DeepEqual(hw, want) {
				t.Fatalf("HighWater = %v, want %v", hw, want)
			}
			all, err := k.ReadAll(ctx, "hits")
			if err != nil {
				t.Fatalf("ReadAll: %v", err)
			}
			var i int
			for p := 0; p < 3; p++ {
				for j := 0; j < tt.perPart[p]; j++ {
					if i >= len(all) {
						t.Fatalf("ReadAll returned %d records, want more", len(all))
					}
					m := all[i]
					if m.Partition != p || m.Offset != int64(j) || string(m.Value) != fmt.Sprintf(`{"v":%d}`, j) {
						t.Fatalf("record %d = p%d@%d %s, want p%d@%d", i, m.Partition, m.Offset, m.Value, p, j)
					}
					if len(m.Headers) != 1 || m.Headers[0].Key != "client_id" || string(m.Headers[0].Value) != "7" {
						t.Fatalf("record %d headers = %v", i, m.Headers)
					}
					i++
				}
			}
			if i != len(all) {
				t.Fatalf("ReadAll returned %d records, want %d", len(all), i)
			}
		})
	}
}

func TestKafkaProduceRejectsOtherTopic(t *testing.T) {
	k := MustKafka(t, KafkaOptions{Topics: []string{"hits"}})
	err := k.Produce(context.Background(), "hits", []kafka.Message{{Topic: "other", Value: []byte("{}")}})
	if err == nil {
		t.Fatal("Produce accepted a message for another topic")
	}
}

// joinGroup joins group on topic with kafka-go's consumer-group API, as the
// product does, and returns the first generation.
func joinGroup(ctx context.Context, t *testing.T, k *Kafka, group, topic string) (*kafka.ConsumerGroup, *kafka.Generation) {
	t.Helper()
	cg, err := kafka.NewConsumerGroup(kafka.ConsumerGroupConfig{
		ID:                group,
		Brokers:           k.Addrs(),
		Topics:            []string{topic},
		SessionTimeout:    2 * time.Second,
		RebalanceTimeout:  2 * time.Second,
		HeartbeatInterval: 200 * time.Millisecond,
		JoinGroupBackoff:  100 * time.Millisecond,
		StartOffset:       kafka.FirstOffset,
		Timeout:           5 * time.Second,
	})
	if err != nil {
		t.Fatalf("NewConsumerGroup: %v", err)
	}
	gen, err := cg.Next(ctx)
	if err != nil {
		cg.Close()
		t.Fatalf("consumer group join: %v", err)
	}
	return cg, gen
}

func TestKafkaConsumerGroupCommit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	k := MustKafka(t, KafkaOptions{Partitions: 2, Topics: []string{"hits"}, GroupMinSessionTimeout: time.Second})
	if err := k.Produce(ctx, "hits", msgs(1, 4, "v")); err != nil {
		t.Fatalf("Produce: %v", err)
	}
	cg, gen := joinGroup(ctx, t, k, "g1", "hits")
	defer cg.Close()
	var ids []int
	for _, a := range gen.Assignments["hits"] {
		ids = append(ids, a.ID)
	}
	if len(ids) != 2 {
		t.Fatalf("sole member got partitions %v, want both", ids)
	}
	if got, err := k.Committed(ctx, "g1", "hits"); err != nil || len(got) != 0 {
		t.Fatalf("Committed before any commit = %v, %v; want empty", got, err)
	}
	if err := gen.CommitOffsets(map[string]map[int]int64{"hits": {1: 3}}); err != nil {
		t.Fatalf("CommitOffsets: %v", err)
	}
	got, err := k.Committed(ctx, "g1", "hits")
	if err != nil {
		t.Fatalf("Committed: %v", err)
	}
	if want := map[int]int64{1: 3}; !reflect.DeepEqual(got, want) {
		t.Fatalf("Committed = %v, want %v", got, want)
	}
}

func TestKafkaCutRestore(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	k := MustKafka(t, KafkaOptions{Topics: []string{"hits"}})
	if err := k.Produce(ctx, "hits", msgs(0, 2, "before")); err != nil {
		t.Fatalf("Produce: %v", err)
	}
	k.Cut()
	short, cancelShort := context.WithTimeout(ctx, time.Second)
	_, err := k.HighWater(short, "hits")
	cancelShort()
	if err == nil {
		t.Fatal("HighWater succeeded while the broker was cut")
	}
	k.Restore()
	if err := k.Produce(ctx, "hits", msgs(0, 1, "after")); err != nil {
		t.Fatalf("Produce after Restore: %v", err)
	}
	all, err := k.ReadAll(ctx, "hits")
	if err != nil {
		t.Fatalf("ReadAll: %v", err)
	}
	if len(all) != 3 || string(all[0].Value) != `{"before":0}` || string(all[2].Value) != `{"after":0}` {
		t.Fatalf("after restore topic holds %d records, want the 2 before and 1 after the cut", len(all))
	}
}

func TestKafkaCutDropsOpenConnections(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	k := MustKafka(t, KafkaOptions{Topics: []string{"hits"}})
	conn, err := kafka.DialLeader(ctx, "tcp", k.Addrs()[0], "hits", 0)
	if err != nil {
		t.Fatalf("DialLeader: %v", err)
	}
	defer conn.Close()
	if _, err := conn.ReadLastOffset(); err != nil {
		t.Fatalf("ReadLastOffset before cut: %v", err)
	}
	k.Cut()
	defer k.Restore()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.ReadLastOffset(); err == nil {
		t.Fatal("an open connection kept working after Cut")
	}
}

func TestKafkaRestartKeepsState(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	k := MustKafka(t, KafkaOptions{Topics: []string{"hits"}, DataDir: t.TempDir(), GroupMinSessionTimeout: time.Second})
	if err := k.Produce(ctx, "hits", msgs(0, 3, "v")); err != nil {
		t.Fatalf("Produce: %v", err)
	}
	cg, gen := joinGroup(ctx, t, k, "g1", "hits")
	if err := gen.CommitOffsets(map[string]map[int]int64{"hits": {0: 2}}); err != nil {
		t.Fatalf("CommitOffsets: %v", err)
	}
	cg.Close()
	addrs := k.Addrs()
	if err := k.Restart(); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if !reflect.DeepEqual(k.Addrs(), addrs) {
		t.Fatalf("Addrs changed across restart: %v -> %v", addrs, k.Addrs())
	}
	hw, err := k.HighWater(ctx, "hits")
	if err != nil || hw[0] != 3 {
		t.Fatalf("HighWater after restart = %v, %v; want 3 on partition 0", hw, err)
	}
	got, err := k.Committed(ctx, "g1", "hits")
	if err != nil || got[0] != 2 {
		t.Fatalf("Committed after restart = %v, %v; want 2 on partition 0", got, err)
	}
}

func TestKafkaRestartNeedsDataDir(t *testing.T) {
	k := MustKafka(t, KafkaOptions{Topics: []string{"hits"}})
	if err := k.Restart(); err == nil {
		t.Fatal("Restart without DataDir succeeded")
	}
}

// TestKafkaReadAllSlowBroker: ReadAll finishes while the broker answers every
// request late. kafka-go's Reader gives a fetch response MaxWait to start
// arriving and retries silently when it does not; with a MaxWait shorter than
// the broker's delay it never read a record (seen in CI with kfake under load).
func TestKafkaReadAllSlowBroker(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	k := MustKafka(t, KafkaOptions{Topics: []string{"hits"}})
	if err := k.Produce(ctx, "hits", msgs(0, 50, "slow")); err != nil {
		t.Fatalf("Produce: %v", err)
	}
	k.Slow(300 * time.Millisecond)
	all, err := k.ReadAll(ctx, "hits")
	if err != nil {
		t.Fatalf("ReadAll from a slow broker: %v", err)
	}
	if len(all) != 50 {
		t.Fatalf("ReadAll returned %d records, want 50", len(all))
	}
}
