package state

import (
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestStoreKeys pins a partition's Redis keys and a route set's for a sample
// prefix, group and topic, with and without an incarnation (state/doc.go,
// "Keys"): a change here is a change of stored state, never a refactoring.
func TestStoreKeys(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer rdb.Close()
	s, err := New(rdb, "hitship:", "hitship")
	if err != nil {
		t.Fatal(err)
	}
	si, err := s.ForIncarnation("c1.t2")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		s    *Store
		base string
	}{
		{"no incarnation", s, "hitship:{hitship:hits:7}:"},
		{"incarnation", si, "hitship:{hitship:hits:7}:c1.t2:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := tc.s.keys("hits", 7)
			if err != nil {
				t.Fatal(err)
			}
			got := []string{k.owner, k.idle, k.snaps, k.snap, k.dead, k.route}
			want := []string{"owner", "idle", "snaps", "snap:", "dead", "routes"}
			for i := range want {
				if got[i] != tc.base+want[i] {
					t.Errorf("key %d = %q, want %q", i, got[i], tc.base+want[i])
				}
			}
		})
	}
	for _, st := range []*Store{s, si} {
		if got, err := st.routeSetKey("0123abcd"); err != nil || got != "hitship:routeset:hitship:0123abcd" {
			t.Errorf("routeSetKey = %q, %v; want hitship:routeset:hitship:0123abcd", got, err)
		}
	}
}
