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
			got := []string{k.owner, k.idle, k.snaps, k.snap, k.dead, k.route, k.read}
			want := []string{"owner", "idle", "snaps", "snap:", "dead", "routes", "read"}
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

// TestKeyLayout pins every key name of the layout (keys.go) for a sample
// prefix, group, topic, partition, incarnation, queue and integration.
func TestKeyLayout(t *testing.T) {
	p := PartitionKeys("hitship:", "hitship", "hits", 7, "c1.t2")
	r := RetryQueueKeys("hitship:", "retry")
	for _, tc := range []struct{ name, got, want string }{
		{"owner", p.Owner, "hitship:{hitship:hits:7}:c1.t2:owner"},
		{"idle", p.Idle, "hitship:{hitship:hits:7}:c1.t2:idle"},
		{"snaps", p.Snaps, "hitship:{hitship:hits:7}:c1.t2:snaps"},
		{"snap", p.Snap, "hitship:{hitship:hits:7}:c1.t2:snap:"},
		{"dead", p.Dead, "hitship:{hitship:hits:7}:c1.t2:dead"},
		{"routes", p.Routes, "hitship:{hitship:hits:7}:c1.t2:routes"},
		{"read mark", p.Read, "hitship:{hitship:hits:7}:c1.t2:read"},
		{"owner without incarnation", PartitionKeys("hitship:", "hitship", "hits", 7, "").Owner, "hitship:{hitship:hits:7}:owner"},
		{"route set", RouteSetKey("hitship:", "hitship", "0123abcd"), "hitship:routeset:hitship:0123abcd"},
		{"retry entries", r.Entries, "hitship:{retry}:entries"},
		{"retry due", r.Due, "hitship:{retry}:due"},
		{"retry leased", r.Leased, "hitship:{retry}:leased"},
		{"retry tokens", r.Tokens, "hitship:{retry}:tokens"},
		{"retry dead", r.Dead, "hitship:{retry}:dead"},
		{"retry inline", r.Inline, "hitship:{retry}:inline:"},
		{"retry done", r.Done, "hitship:{retry}:done:"},
		{"retry scan", r.Scan, "hitship:{retry}:scan"},
		{"health", HealthKey("hitship:", "acme-s3"), "hitship:health:acme-s3"},
		{"integrations", IntegrationsKey("hitship:"), "hitship:integrations"},
		{"events", EventsKey("hitship:"), "hitship:events"},
		{"staged marks", StagingKeys("hitship:", "hitship", "hits").Marks, "hitship:{hitship:hits}:staged"},
		{"assembly lease", StagingKeys("hitship:", "hitship", "hits").Lease, "hitship:{hitship:hits}:assemble:"},
		{"last notes", LastKey("hitship:", "acme"), "hitship:last:acme"},
		{"definition lock", DefinitionLockKey("hitship:", "acme"), "hitship:deflock:acme"},
		{"event relay lease", first(EventRelayKeys("hitship:")), "hitship:events:relay"},
		{"event relay cursor", second(EventRelayKeys("hitship:")), "hitship:events:relayed"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.name, tc.got, tc.want)
		}
	}
}

func first(a, _ string) string  { return a }
func second(_, b string) string { return b }
