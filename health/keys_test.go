package health

import (
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestLedgerKey pins the ledger's Redis key for a sample prefix: a change here
// is a change of stored state, never a refactoring.
func TestLedgerKey(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer rdb.Close()
	l, err := New(rdb, Config{Prefix: "hitship:"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := l.Key("acme-s3"), "hitship:health:acme-s3"; got != want {
		t.Errorf("Key = %q, want %q", got, want)
	}
}
