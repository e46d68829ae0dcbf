package retry

import (
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestQueueKeys pins the queue's Redis keys for a sample prefix: they are the
// layout replicas of every version share (retry/doc.go), so a change here is a
// change of stored state, never a refactoring.
func TestQueueKeys(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer rdb.Close()
	q, err := NewQueue(rdb, QueueConfig{Prefix: "hitship:"})
	if err != nil {
		t.Fatal(err)
	}
	got := []string{q.entries, q.due, q.leased, q.tokens, q.dead, q.inline, q.done, q.scanLease}
	want := []string{"hitship:{retry}:entries", "hitship:{retry}:due", "hitship:{retry}:leased", "hitship:{retry}:tokens",
		"hitship:{retry}:dead", "hitship:{retry}:inline:", "hitship:{retry}:done:", "hitship:{retry}:scan"}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("key %d = %q, want %q", i, got[i], want[i])
		}
	}
}
