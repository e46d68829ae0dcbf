package embedded

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
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

// TestMemberExpiry: a member the broker keeps although it has sent nothing for
// longer than its session timeout is removed with a LeaveGroup, and a member
// that keeps heartbeating is left alone. (The kfake defect itself, a member
// whose JoinGroup or SyncGroup reply found its connection gone, depends on
// timing; the expiry's bookkeeping is aged here instead.)
func TestMemberExpiry(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	k, err := StartKafka(KafkaOptions{Partitions: 2, Topics: []string{"hits"}, GroupMinSessionTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	cg, gen := joinGroup(ctx, t, k, "g1", "hits")
	defer cg.Close()
	members := func() []string {
		var ids []string
		if info := k.Cluster().GroupInfo("g1"); info != nil {
			for _, m := range info.Members {
				ids = append(ids, m.MemberID)
			}
		}
		return ids
	}
	if got := members(); len(got) != 1 || got[0] != gen.MemberID {
		t.Fatalf("members %v, want [%s]", got, gen.MemberID)
	}
	// A live member: checked a few times, never removed.
	for range 3 {
		time.Sleep(time.Second)
		k.expiry.check()
	}
	if got := members(); len(got) != 1 || got[0] != gen.MemberID {
		t.Fatalf("a heartbeating member was removed: members %v", got)
	}
	// The same member as if silent for an hour: removed.
	k.expiry.mu.Lock()
	k.expiry.seen[gen.MemberID] = time.Now().Add(-time.Hour)
	k.expiry.mu.Unlock()
	k.expiry.check()
	deadline := time.Now().Add(10 * time.Second)
	for slices.Contains(members(), gen.MemberID) {
		if time.Now().After(deadline) {
			t.Fatalf("silent member %s still in the group: %v", gen.MemberID, members())
		}
		time.Sleep(50 * time.Millisecond)
	}
}
