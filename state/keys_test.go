package state

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"hitship/config"
	"hitship/internal/rediskey"
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

// TestClusterLayout: under the cluster prefix every key hitship writes is in
// the one hash slot of its tag, so no script or MULTI block can be refused
// with CROSSSLOT (internal/redisconn, "Cluster"); under the default prefix of
// the other modes they are not (the reason the cluster prefix exists).
func TestClusterLayout(t *testing.T) {
	keys := func(prefix string) map[string]string {
		p := PartitionKeys(prefix, "hitship", "hits", 7, "c1.t2")
		r := RetryQueueKeys(prefix, "retry")
		s := StagingKeys(prefix, "hitship", "hits")
		lease, cursor := EventRelayKeys(prefix)
		return map[string]string{"owner": p.Owner, "idle": p.Idle, "snaps": p.Snaps, "snap": p.Snap + "0001", "dead": p.Dead,
			"routes": p.Routes, "read": p.Read, "route set": RouteSetKey(prefix, "hitship", "0123abcd"),
			"retry entries": r.Entries, "retry due": r.Due, "retry inline": r.Inline + "x", "retry scan": r.Scan,
			"health": HealthKey(prefix, "acme"), "last": LastKey(prefix, "acme"), "integrations": IntegrationsKey(prefix),
			"events": EventsKey(prefix), "staged": s.Marks, "assembly lease": s.Lease + "acme:2:1", "definition lock": DefinitionLockKey(prefix, "acme"),
			"relay lease": lease, "relay cursor": cursor}
	}
	want := rediskey.Slot(config.ClusterKeyPrefix)
	for name, k := range keys(config.ClusterKeyPrefix) {
		if got := rediskey.Slot(k); got != want {
			t.Errorf("%s: %q is in slot %d, the prefix's tag in %d", name, k, got, want)
		}
	}
	slots := map[int]bool{}
	for _, k := range keys(config.DefaultKeyPrefix) {
		slots[rediskey.Slot(k)] = true
	}
	if len(slots) < 2 {
		t.Errorf("the default prefix puts every key in one slot: the test no longer tells layouts apart")
	}
}
