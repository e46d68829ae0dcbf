package registry

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestStoreKeys pins the registry's Redis keys for a sample prefix: a change
// here is a change of stored state, never a refactoring.
func TestStoreKeys(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer rdb.Close()
	s, err := New(rdb, "hitship:", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if s.hash != "hitship:integrations" || s.stream != "hitship:events" || s.EventsKey() != "hitship:events" {
		t.Errorf("keys = %q, %q (events %q), want hitship:integrations, hitship:events", s.hash, s.stream, s.EventsKey())
	}
}
