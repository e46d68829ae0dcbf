package state

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"hitship/internal/testenv"
)

const topic = "hits"

// newStore returns a Store on a fresh Redis (a real redis-server when one is
// installed) and its client.
func newStore(t *testing.T) (*Store, *redis.Client, *testenv.Redis) {
	t.Helper()
	r := testenv.MustRedis(t, testenv.RedisOptions{})
	s, err := New(r.Client(), "hitship:", "g1")
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s, r.Client(), r
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestNew(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"}) // never dialled
	defer rdb.Close()
	tests := []struct {
		name    string
		rdb     redis.UniversalClient
		prefix  string
		group   string
		wantErr bool
	}{
		{name: "ok", rdb: rdb, prefix: "hitship:", group: "g"},
		{name: "empty prefix ok", rdb: rdb, prefix: "", group: "g"},
		{name: "nil client", rdb: nil, prefix: "hitship:", group: "g", wantErr: true},
		{name: "empty group", rdb: rdb, prefix: "hitship:", group: "", wantErr: true},
		{name: "brace in group breaks hash tag", rdb: rdb, prefix: "hitship:", group: "g}", wantErr: true},
		{name: "hash tag in prefix (redis.mode cluster)", rdb: rdb, prefix: "{hitship}:", group: "g"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.rdb, tt.prefix, tt.group)
			if (err != nil) != tt.wantErr {
				t.Fatalf("New err = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && s == nil {
				t.Fatal("New returned nil store without error")
			}
		})
	}
}

func TestClaim(t *testing.T) {
	type step struct {
		o          Owner
		wantFenced bool
	}
	tests := []struct {
		name  string
		steps []step
		owner Owner // expected owner at the end
	}{
		{
			name:  "first claim wins",
			steps: []step{{o: Owner{1, "a"}}},
			owner: Owner{1, "a"},
		},
		{
			name:  "newer generation takes over",
			steps: []step{{o: Owner{1, "a"}}, {o: Owner{2, "b"}}},
			owner: Owner{2, "b"},
		},
		{
			name:  "older generation refused",
			steps: []step{{o: Owner{5, "b"}}, {o: Owner{4, "a"}, wantFenced: true}},
			owner: Owner{5, "b"},
		},
		{
			name:  "same generation other member refused",
			steps: []step{{o: Owner{3, "a"}}, {o: Owner{3, "b"}, wantFenced: true}},
			owner: Owner{3, "a"},
		},
		{
			name:  "owner re-claims idempotently",
			steps: []step{{o: Owner{3, "a"}}, {o: Owner{3, "a"}}},
			owner: Owner{3, "a"},
		},
		{
			name:  "same member new generation",
			steps: []step{{o: Owner{3, "a"}}, {o: Owner{4, "a"}}, {o: Owner{3, "a"}, wantFenced: true}},
			owner: Owner{4, "a"},
		},
	}
	s, _, _ := newStore(t)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := ctxT(t)
			partition := i // one partition per case
			for j, st := range tt.steps {
				err := s.Claim(ctx, topic, partition, st.o)
				if st.wantFenced != IsFenced(err) || (!st.wantFenced && err != nil) {
					t.Fatalf("step %d Claim(%+v) = %v, wantFenced %v", j, st.o, err, st.wantFenced)
				}
			}
			for _, st := range tt.steps {
				owns, err := s.Owns(ctx, topic, partition, st.o)
				if err != nil {
					t.Fatalf("Owns: %v", err)
				}
				if want := st.o == tt.owner; owns != want {
					t.Fatalf("Owns(%+v) = %v, want %v", st.o, owns, want)
				}
			}
		})
	}
}

func TestOwnsUnclaimed(t *testing.T) {
	s, _, _ := newStore(t)
	owns, err := s.Owns(ctxT(t), topic, 0, Owner{1, "a"})
	if err != nil || owns {
		t.Fatalf("Owns on an unclaimed partition = %v, %v; want false", owns, err)
	}
}

// TestOwnership: the owner key says owned, not owned (a newer generation or
// another member of ours) or unclaimed (no key, or an older generation's:
// Redis lost data) — never "not owned" for a key that is gone.
func TestOwnership(t *testing.T) {
	s, rdb, _ := newStore(t)
	ctx := ctxT(t)
	me := Owner{5, "me"}
	tests := []struct {
		name  string
		claim *Owner // nil: no key
		flush bool   // FLUSHALL after the claim
		want  Ownership
	}{
		{name: "never claimed", want: Unclaimed},
		{name: "mine", claim: &me, want: Owned},
		{name: "flushed after my claim", claim: &me, flush: true, want: Unclaimed},
		{name: "newer generation", claim: &Owner{6, "other"}, want: NotOwned},
		{name: "other member of my generation", claim: &Owner{5, "other"}, want: NotOwned},
		{name: "older generation (a zombie re-created the key)", claim: &Owner{4, "zombie"}, want: Unclaimed},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.claim != nil {
				if err := s.Claim(ctx, topic, i, *tt.claim); err != nil {
					t.Fatal(err)
				}
			}
			if tt.flush {
				if err := rdb.FlushAll(ctx).Err(); err != nil {
					t.Fatal(err)
				}
			}
			got, err := s.Ownership(ctx, topic, i, me)
			if err != nil || got != tt.want {
				t.Fatalf("Ownership = %v, %v; want %v", got, err, tt.want)
			}
			if got == Unclaimed {
				// A re-claim succeeds and makes it ours again.
				if err := s.Claim(ctx, topic, i, me); err != nil {
					t.Fatalf("re-claim of an unclaimed partition: %v", err)
				}
				if got, err := s.Ownership(ctx, topic, i, me); err != nil || got != Owned {
					t.Fatalf("after the re-claim: %v, %v", got, err)
				}
			}
		})
	}
}

// TestRecordIdleCloseReclaims: after Redis lost the owner key, recording an
// idle close claims the partition again in the same script and says so; a
// newer generation's claim in between still refuses it.
func TestRecordIdleCloseReclaims(t *testing.T) {
	s, rdb, _ := newStore(t)
	ctx := ctxT(t)
	me := Owner{3, "me"}
	c := IdleClose{NextOffset: 10, Boundary: 1687241400000}
	if err := s.Claim(ctx, topic, 0, me); err != nil {
		t.Fatal(err)
	}
	if re, err := s.RecordIdleCloseClaim(ctx, topic, 0, me, c); err != nil || re {
		t.Fatalf("owner's record = reclaimed %v, %v; want false, nil", re, err)
	}
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	c.NextOffset = 20
	if re, err := s.RecordIdleCloseClaim(ctx, topic, 0, me, c); err != nil || !re {
		t.Fatalf("record after FLUSHALL = reclaimed %v, %v; want true, nil", re, err)
	}
	if got, err := s.Ownership(ctx, topic, 0, me); err != nil || got != Owned {
		t.Fatalf("ownership after the reclaiming record: %v, %v", got, err)
	}
	if got, err := s.IdleCloses(ctx, topic, 0, 0); err != nil || len(got) != 1 || got[0] != c {
		t.Fatalf("idle log %v, %v; want [%v]", got, err, c)
	}
	// A zombie of an older generation re-created the key after a loss: the
	// newer owner takes it back.
	if err := rdb.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.Claim(ctx, topic, 0, Owner{2, "zombie"}); err != nil {
		t.Fatal(err)
	}
	if re, err := s.RecordIdleCloseClaim(ctx, topic, 0, me, c); err != nil || !re {
		t.Fatalf("record over an older generation's key = reclaimed %v, %v; want true, nil", re, err)
	}
	// A newer generation claimed: refused, nothing recorded.
	if err := s.Claim(ctx, topic, 0, Owner{4, "next"}); err != nil {
		t.Fatal(err)
	}
	c.NextOffset = 30
	if re, err := s.RecordIdleCloseClaim(ctx, topic, 0, me, c); !IsFenced(err) || re {
		t.Fatalf("record after a newer claim = reclaimed %v, %v; want fenced", re, err)
	}
	if got, _ := s.IdleCloses(ctx, topic, 0, 30); len(got) != 0 {
		t.Fatalf("a refused close was recorded: %v", got)
	}
}

func TestInvalidArguments(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := ctxT(t)
	tests := []struct {
		name string
		call func() error
	}{
		{name: "empty member", call: func() error { return s.Claim(ctx, topic, 0, Owner{1, ""}) }},
		{name: "negative partition", call: func() error { return s.Claim(ctx, topic, -1, Owner{1, "a"}) }},
		{name: "empty topic", call: func() error { return s.Claim(ctx, "", 0, Owner{1, "a"}) }},
		{name: "negative boundary", call: func() error {
			return s.RecordIdleClose(ctx, topic, 0, Owner{1, "a"}, IdleClose{NextOffset: 1, Boundary: -1})
		}},
		{name: "negative snapshot offset", call: func() error { return s.SaveSnapshot(ctx, topic, 0, -1, nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if err == nil || IsFenced(err) {
				t.Fatalf("err = %v, want a non-fencing argument error", err)
			}
		})
	}
}

func TestRecordIdleCloseFencing(t *testing.T) {
	tests := []struct {
		name       string
		claims     []Owner
		recorder   Owner
		wantFenced bool
	}{
		{name: "owner records", claims: []Owner{{1, "a"}}, recorder: Owner{1, "a"}},
		{name: "zombie of older generation fenced", claims: []Owner{{1, "a"}, {2, "b"}}, recorder: Owner{1, "a"}, wantFenced: true},
		// No owner key: Redis lost it (or nobody claimed yet). The recorder
		// takes the partition and records (see TestRecordIdleCloseReclaims).
		{name: "never claimed: claimed and recorded", claims: nil, recorder: Owner{1, "a"}},
		{name: "other member fenced", claims: []Owner{{1, "a"}}, recorder: Owner{1, "b"}, wantFenced: true},
	}
	s, _, _ := newStore(t)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := ctxT(t)
			for _, o := range tt.claims {
				if err := s.Claim(ctx, topic, i, o); err != nil {
					t.Fatalf("Claim(%+v): %v", o, err)
				}
			}
			c := IdleClose{NextOffset: 10, Boundary: 1687241400000}
			err := s.RecordIdleClose(ctx, topic, i, tt.recorder, c)
			if IsFenced(err) != tt.wantFenced || (!tt.wantFenced && err != nil) {
				t.Fatalf("RecordIdleClose = %v, wantFenced %v", err, tt.wantFenced)
			}
			got, err := s.IdleCloses(ctx, topic, i, 0)
			if err != nil {
				t.Fatalf("IdleCloses: %v", err)
			}
			var want []IdleClose
			if !tt.wantFenced {
				want = []IdleClose{c}
			}
			if len(got) != len(want) || (len(want) > 0 && got[0] != want[0]) {
				t.Fatalf("IdleCloses = %v, want %v", got, want)
			}
		})
	}
}

func TestIdleClosesOrderAndFrom(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := ctxT(t)
	o := Owner{7, "m"}
	if err := s.Claim(ctx, topic, 0, o); err != nil {
		t.Fatal(err)
	}
	big := int64(1) << 60 // beyond float64 precision: must not be rounded
	in := []IdleClose{
		{NextOffset: 100, Boundary: 1_200_000},
		{NextOffset: 9, Boundary: 600_000},
		{NextOffset: 100, Boundary: 600_000},
		{NextOffset: big + 1, Boundary: 0},
		{NextOffset: big, Boundary: math.MaxInt64},
		{NextOffset: 10, Boundary: 0},
		{NextOffset: 9, Boundary: 600_000}, // duplicate collapses
	}
	for _, c := range in {
		if err := s.RecordIdleClose(ctx, topic, 0, o, c); err != nil {
			t.Fatalf("RecordIdleClose(%+v): %v", c, err)
		}
	}
	all := []IdleClose{
		{9, 600_000}, {10, 0}, {100, 600_000}, {100, 1_200_000}, {big, math.MaxInt64}, {big + 1, 0},
	}
	tests := []struct {
		name string
		from int64
		want []IdleClose
	}{
		{name: "from zero: all, ordered", from: 0, want: all},
		{name: "negative from means all", from: -5, want: all},
		{name: "from is inclusive", from: 10, want: all[1:]},
		{name: "between offsets", from: 11, want: all[2:]},
		{name: "huge offsets exact", from: big + 1, want: all[5:]},
		{name: "past the end", from: big + 2, want: []IdleClose{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.IdleCloses(ctx, topic, 0, tt.from)
			if err != nil {
				t.Fatalf("IdleCloses: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("IdleCloses(from %d) = %v, want %v", tt.from, got, tt.want)
			}
		})
	}
}

func TestSnapshotRoundTrip(t *testing.T) {
	s, rdb, _ := newStore(t)
	ctx := ctxT(t)
	tests := []struct {
		name   string
		offset int64
		data   []byte
	}{
		{name: "binary with zero bytes", offset: 0, data: []byte{0, 1, 2, 0xff, 0, '\n'}},
		{name: "empty", offset: 5, data: []byte{}},
		{name: "large", offset: 1 << 40, data: bytes.Repeat([]byte("w"), 1<<20)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.SaveSnapshot(ctx, topic, 3, tt.offset, tt.data); err != nil {
				t.Fatalf("SaveSnapshot: %v", err)
			}
			got, ok, err := s.LoadSnapshot(ctx, topic, 3, tt.offset)
			if err != nil || !ok {
				t.Fatalf("LoadSnapshot = ok %v, err %v", ok, err)
			}
			if !bytes.Equal(got, tt.data) {
				t.Fatalf("LoadSnapshot returned %d bytes, want the %d saved", len(got), len(tt.data))
			}
		})
	}
	t.Run("overwrite replaces", func(t *testing.T) {
		if err := s.SaveSnapshot(ctx, topic, 3, 0, []byte("new")); err != nil {
			t.Fatal(err)
		}
		got, ok, err := s.LoadSnapshot(ctx, topic, 3, 0)
		if err != nil || !ok || string(got) != "new" {
			t.Fatalf("LoadSnapshot after overwrite = %q, %v, %v", got, ok, err)
		}
	})
	t.Run("missing offset", func(t *testing.T) {
		_, ok, err := s.LoadSnapshot(ctx, topic, 3, 6)
		if err != nil || ok {
			t.Fatalf("LoadSnapshot of unsaved offset = ok %v, err %v; want not ok", ok, err)
		}
	})
	t.Run("other partition is separate", func(t *testing.T) {
		_, ok, err := s.LoadSnapshot(ctx, topic, 4, 5)
		if err != nil || ok {
			t.Fatalf("LoadSnapshot on another partition = ok %v, err %v", ok, err)
		}
	})
	t.Run("expires after 14 days", func(t *testing.T) {
		keys, err := rdb.Keys(ctx, "hitship:{g1:hits:3}:snap*").Result()
		if err != nil || len(keys) != 4 { // 3 snapshots + index
			t.Fatalf("snapshot keys = %v, %v; want 3 snapshots and the index", keys, err)
		}
		for _, k := range keys {
			ttl, err := rdb.PTTL(ctx, k).Result()
			if err != nil {
				t.Fatal(err)
			}
			if ttl <= SnapshotTTL-time.Minute || ttl > SnapshotTTL {
				t.Fatalf("TTL of %s = %v, want about %v", k, ttl, SnapshotTTL)
			}
		}
	})
}

func TestPrune(t *testing.T) {
	s, rdb, _ := newStore(t)
	ctx := ctxT(t)
	o := Owner{1, "a"}
	if err := s.Claim(ctx, topic, 0, o); err != nil {
		t.Fatal(err)
	}
	for _, c := range []IdleClose{{5, 1}, {9, 2}, {10, 3}, {10, 4}, {20, 5}} {
		if err := s.RecordIdleClose(ctx, topic, 0, o, c); err != nil {
			t.Fatal(err)
		}
	}
	for _, off := range []int64{0, 9, 10, 20} {
		if err := s.SaveSnapshot(ctx, topic, 0, off, []byte(fmt.Sprint(off))); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name      string
		committed int64
		wantIdle  []IdleClose
		wantSnaps []int64 // offsets still loadable among 0, 9, 10, 20
	}{
		{name: "zero prunes nothing", committed: 0, wantIdle: []IdleClose{{5, 1}, {9, 2}, {10, 3}, {10, 4}, {20, 5}}, wantSnaps: []int64{0, 9, 10, 20}},
		{name: "strictly below committed", committed: 10, wantIdle: []IdleClose{{10, 3}, {10, 4}, {20, 5}}, wantSnaps: []int64{10, 20}},
		{name: "idempotent", committed: 10, wantIdle: []IdleClose{{10, 3}, {10, 4}, {20, 5}}, wantSnaps: []int64{10, 20}},
		{name: "past everything", committed: 21, wantIdle: []IdleClose{}, wantSnaps: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.Prune(ctx, topic, 0, tt.committed); err != nil {
				t.Fatalf("Prune: %v", err)
			}
			got, err := s.IdleCloses(ctx, topic, 0, 0)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.wantIdle) {
				t.Fatalf("IdleCloses after Prune(%d) = %v, want %v", tt.committed, got, tt.wantIdle)
			}
			var snaps []int64
			for _, off := range []int64{0, 9, 10, 20} {
				_, ok, err := s.LoadSnapshot(ctx, topic, 0, off)
				if err != nil {
					t.Fatal(err)
				}
				if ok {
					snaps = append(snaps, off)
				}
			}
			if !reflect.DeepEqual(snaps, tt.wantSnaps) {
				t.Fatalf("snapshots after Prune(%d) = %v, want %v", tt.committed, snaps, tt.wantSnaps)
			}
		})
	}
	// Nothing is left behind: only the owner key remains.
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"hitship:{g1:hits:0}:owner"}; !reflect.DeepEqual(keys, want) {
		t.Fatalf("keys after full prune = %v, want %v", keys, want)
	}
}

func TestKeysShareHashTag(t *testing.T) {
	s, rdb, _ := newStore(t)
	ctx := ctxT(t)
	o := Owner{1, "a"}
	if err := s.Claim(ctx, "hits.v2", 12, o); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordIdleClose(ctx, "hits.v2", 12, o, IdleClose{1, 2}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveSnapshot(ctx, "hits.v2", 12, 1, []byte("x")); err != nil {
		t.Fatal(err)
	}
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(keys)
	want := []string{
		"hitship:{g1:hits.v2:12}:idle",
		"hitship:{g1:hits.v2:12}:owner",
		"hitship:{g1:hits.v2:12}:snap:0000000000000000001",
		"hitship:{g1:hits.v2:12}:snaps",
	}
	if !reflect.DeepEqual(keys, want) {
		t.Fatalf("keys = %v, want %v", keys, want)
	}
	// Redis Cluster hashes only the text between the first '{' and the
	// next '}': every key must carry the same tag, so one slot holds them.
	for _, k := range keys {
		_, rest, _ := strings.Cut(k, "{")
		tag, _, ok := strings.Cut(rest, "}")
		if !ok || tag != "g1:hits.v2:12" {
			t.Fatalf("key %s has hash tag %q, want g1:hits.v2:12", k, tag)
		}
	}
}

func TestClaimRace(t *testing.T) {
	tests := []struct {
		name string
		// owners race to claim; with equal generations exactly one wins,
		// with distinct ones the newest must end as owner.
		owners  []Owner
		wantWin int // claims expected to succeed; -1: any number
	}{
		{
			name:    "same generation, one winner",
			owners:  []Owner{{4, "a"}, {4, "b"}, {4, "c"}, {4, "d"}, {4, "e"}, {4, "f"}, {4, "g"}, {4, "h"}},
			wantWin: 1,
		},
		{
			name:    "rising generations, newest ends owner",
			owners:  []Owner{{1, "a"}, {2, "b"}, {3, "c"}, {4, "d"}, {5, "e"}, {6, "f"}, {7, "g"}, {8, "h"}},
			wantWin: -1,
		},
	}
	s, _, _ := newStore(t)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := ctxT(t)
			for round := 0; round < 20; round++ {
				partition := i*100 + round
				errs := make([]error, len(tt.owners))
				var wg sync.WaitGroup
				start := make(chan struct{})
				for j, o := range tt.owners {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						errs[j] = s.Claim(ctx, topic, partition, o)
					}()
				}
				close(start)
				wg.Wait()
				var winners []Owner
				for j, err := range errs {
					switch {
					case err == nil:
						winners = append(winners, tt.owners[j])
					case !IsFenced(err):
						t.Fatalf("Claim: unexpected error %v", err)
					}
				}
				if tt.wantWin >= 0 && len(winners) != tt.wantWin {
					t.Fatalf("round %d: %d claims won (%v), want %d", round, len(winners), winners, tt.wantWin)
				}
				// The owner is a winner; with distinct generations it is the newest.
				var owner *Owner
				for j := range tt.owners {
					ok, err := s.Owns(ctx, topic, partition, tt.owners[j])
					if err != nil {
						t.Fatal(err)
					}
					if ok {
						if owner != nil {
							t.Fatalf("round %d: two owners %+v and %+v", round, *owner, tt.owners[j])
						}
						owner = &tt.owners[j]
					}
				}
				if owner == nil {
					t.Fatalf("round %d: no owner after the race", round)
				}
				if tt.wantWin < 0 && *owner != tt.owners[len(tt.owners)-1] {
					t.Fatalf("round %d: owner %+v, want the newest generation", round, *owner)
				}
				if !containsOwner(winners, *owner) {
					t.Fatalf("round %d: owner %+v did not win its claim", round, *owner)
				}
			}
		})
	}
}

func containsOwner(os []Owner, o Owner) bool {
	for _, x := range os {
		if x == o {
			return true
		}
	}
	return false
}

func TestRedisDownIsNotFenced(t *testing.T) {
	s, _, r := newStore(t)
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	err := s.Claim(ctx, topic, 0, Owner{1, "a"})
	if err == nil || IsFenced(err) {
		t.Fatalf("Claim with Redis down = %v, want a non-fencing error", err)
	}
	err = s.RecordIdleClose(ctx, topic, 0, Owner{1, "a"}, IdleClose{1, 1})
	if err == nil || IsFenced(err) {
		t.Fatalf("RecordIdleClose with Redis down = %v, want a non-fencing error", err)
	}
	if !strings.Contains(err.Error(), "hits/0") {
		t.Fatalf("error %q does not name the partition", err)
	}
}

func TestEncodeIdleRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		c    IdleClose
	}{
		{name: "zero", c: IdleClose{}},
		{name: "typical", c: IdleClose{NextOffset: 123456, Boundary: 1687241400000}},
		{name: "max", c: IdleClose{NextOffset: math.MaxInt64, Boundary: math.MaxInt64}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := decodeIdle(encodeIdle(tt.c))
			if err != nil || got != tt.c {
				t.Fatalf("decodeIdle(encodeIdle(%+v)) = %+v, %v", tt.c, got, err)
			}
		})
	}
}

// FuzzDecodeIdle: idle-log members come back from Redis, i.e. from outside
// the process. decodeIdle must never panic, and whatever it accepts must be
// the canonical encoding.
func FuzzDecodeIdle(f *testing.F) {
	f.Add(encodeIdle(IdleClose{NextOffset: 5, Boundary: 600000}))
	f.Add("")
	f.Add(":")
	f.Add("-000000000000000001:0000000000000000001")
	f.Add("9999999999999999999:0000000000000000000")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := decodeIdle(s)
		if err != nil {
			return
		}
		if c.NextOffset < 0 || c.Boundary < 0 {
			t.Fatalf("decodeIdle(%q) accepted negative %+v", s, c)
		}
		if enc := encodeIdle(c); enc != s {
			t.Fatalf("decodeIdle(%q) = %+v, which encodes as %q", s, c, enc)
		}
	})
}

func TestDeadLettered(t *testing.T) {
	s, rdb, _ := newStore(t)
	ctx := ctxT(t)
	if err := s.NoteDeadLettered(ctx, topic, 2, []int64{7, 3, 12}); err != nil {
		t.Fatal(err)
	}
	if err := s.NoteDeadLettered(ctx, topic, 2, []int64{12, 40}); err != nil { // a replay notes again
		t.Fatal(err)
	}
	if err := s.NoteDeadLettered(ctx, topic, 2, nil); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		from int64
		want []int64
	}{
		{name: "all, in order", from: 0, want: []int64{3, 7, 12, 40}},
		{name: "negative is from the start", from: -1, want: []int64{3, 7, 12, 40}},
		{name: "from an offset, inclusive", from: 7, want: []int64{7, 12, 40}},
		{name: "past all", from: 41, want: []int64{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.DeadLettered(ctx, topic, 2, tt.from)
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("DeadLettered(%d) = %v, %v; want %v", tt.from, got, err, tt.want)
			}
		})
	}
	if got, err := s.DeadLettered(ctx, topic, 1, 0); err != nil || len(got) != 0 {
		t.Fatalf("another partition: %v, %v; want none", got, err)
	}
	if err := s.Prune(ctx, topic, 2, 12); err != nil {
		t.Fatal(err)
	}
	if got, err := s.DeadLettered(ctx, topic, 2, 0); err != nil || !reflect.DeepEqual(got, []int64{12, 40}) {
		t.Fatalf("after Prune(12): %v, %v; want [12 40]", got, err)
	}
	keys, err := rdb.Keys(ctx, "*:dead").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("dead-letter record keys %v, %v; want one", keys, err)
	}
	if ttl, err := rdb.PTTL(ctx, keys[0]).Result(); err != nil || ttl <= 0 || ttl > SnapshotTTL {
		t.Fatalf("dead-letter record TTL %s, %v; want it to expire within %s", ttl, err, SnapshotTTL)
	}
}

// TestRecordIdleCloseInDoubt: an idle close whose reply is lost after Redis ran
// it returns an error that does not claim it was not executed — even from a
// client that retries by default and whose retry is refused — and recording
// it again is idempotent. A refused connection proves it was not run.
func TestRecordIdleCloseInDoubt(t *testing.T) {
	r := testenv.MustRedis(t, testenv.RedisOptions{})
	if r.Miniredis() {
		t.Skip("needs a redis-server binary")
	}
	p := testenv.MustProxy(t, r.Addr())
	// go-redis's defaults: MaxRetries 3, so a lost reply would be retried.
	rdb := redis.NewClient(&redis.Options{Addr: p.Addr(), DialTimeout: time.Second})
	defer rdb.Close()
	s, err := New(rdb, "hitship:", "g1")
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxT(t)
	me := Owner{1, "me"}
	if err := s.Claim(ctx, topic, 0, me); err != nil {
		t.Fatal(err)
	}
	c := IdleClose{NextOffset: 42, Boundary: 1687241400000}
	entry := []byte(encodeIdle(c))
	// Not the NOSCRIPT answer to EVALSHA: the reply of the script that ran.
	ran := func(req, reply []byte) bool { return bytes.Contains(req, entry) && len(reply) > 0 && reply[0] != '-' }

	p.LoseReplyThenRefuse(ran)
	_, err = s.RecordIdleCloseClaim(ctx, topic, 0, me, c)
	if err == nil || IsNotExecuted(err) || IsFenced(err) {
		t.Fatalf("lost reply then refused: err = %v (not executed: %v); want an error in doubt", err, IsNotExecuted(err))
	}
	if p.Lost() != 1 {
		t.Fatalf("the proxy lost %d replies, want 1", p.Lost())
	}
	if _, err := s.IdleCloses(ctx, topic, 0, 0); err == nil {
		t.Fatal("IdleCloses answered through a refusing proxy")
	}
	direct, _ := New(r.Client(), "hitship:", "g1")
	got, err := direct.IdleCloses(ctx, topic, 0, 0)
	if err != nil || len(got) != 1 || got[0] != c {
		t.Fatalf("idle log %v, %v: the close whose reply was lost did not run", got, err)
	}
	// While refused: proof of non-execution.
	if _, err := s.RecordIdleCloseClaim(ctx, topic, 0, me, IdleClose{NextOffset: 50, Boundary: c.Boundary}); !IsNotExecuted(err) {
		t.Fatalf("refused connection: err = %v, want IsNotExecuted", err)
	}
	if err := p.Refuse(false); err != nil {
		t.Fatal(err)
	}
	// Recording the close in doubt again settles it: one entry.
	if re, err := s.RecordIdleCloseClaim(ctx, topic, 0, me, c); err != nil || re {
		t.Fatalf("again: reclaimed %v, %v", re, err)
	}
	if got, err = s.IdleCloses(ctx, topic, 0, 0); err != nil || len(got) != 1 || got[0] != c {
		t.Fatalf("idle log after recording again: %v, %v", got, err)
	}
}

// TestDropFrom: after a log truncation the replay state at and after the new
// position is dropped (idle closes, dead letters, snapshots), what lies before
// stays, and only the owner may drop.
func TestDropFrom(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := ctxT(t)
	me := Owner{2, "me"}
	if err := s.Claim(ctx, topic, 0, me); err != nil {
		t.Fatal(err)
	}
	for _, off := range []int64{10, 20, 30} {
		if err := s.RecordIdleClose(ctx, topic, 0, me, IdleClose{NextOffset: off, Boundary: 1687241400000}); err != nil {
			t.Fatal(err)
		}
		if err := s.SaveSnapshot(ctx, topic, 0, off, []byte("snap")); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.NoteDeadLettered(ctx, topic, 0, []int64{15, 20, 25}); err != nil {
		t.Fatal(err)
	}
	if err := s.DropFrom(ctx, topic, 0, Owner{1, "zombie"}, 20); !IsFenced(err) {
		t.Fatalf("a zombie's drop: %v, want fenced", err)
	}
	if err := s.DropFrom(ctx, topic, 0, me, 20); err != nil {
		t.Fatal(err)
	}
	idle, err := s.IdleCloses(ctx, topic, 0, 0)
	if err != nil || len(idle) != 1 || idle[0].NextOffset != 10 {
		t.Fatalf("idle closes after the drop: %v, %v", idle, err)
	}
	dead, err := s.DeadLettered(ctx, topic, 0, 0)
	if err != nil || !reflect.DeepEqual(dead, []int64{15}) {
		t.Fatalf("dead letters after the drop: %v, %v", dead, err)
	}
	for off, want := range map[int64]bool{10: true, 20: false, 30: false} {
		if _, ok, err := s.LoadSnapshot(ctx, topic, 0, off); err != nil || ok != want {
			t.Fatalf("snapshot %d after the drop: %v, %v; want %v", off, ok, err, want)
		}
	}
}

// TestIncarnationsDoNotShareState: the state of one incarnation of a topic (a
// rebuilt cluster, a re-created topic) is invisible to another: its owner
// claim refuses nothing, its dead letters, idle closes and snapshots are not
// read back; its keys keep the partition's hash tag.
func TestIncarnationsDoNotShareState(t *testing.T) {
	base, rdb, _ := newStore(t)
	ctx := ctxT(t)
	old, err := base.ForIncarnation("kfake.0123456789abcdef0123456789abcdef")
	if err != nil {
		t.Fatal(err)
	}
	cur, err := base.ForIncarnation("kfake.fedcba9876543210fedcba9876543210")
	if err != nil {
		t.Fatal(err)
	}
	if err := old.Claim(ctx, topic, 0, Owner{7, "m-old"}); err != nil {
		t.Fatal(err)
	}
	if err := old.RecordIdleClose(ctx, topic, 0, Owner{7, "m-old"}, IdleClose{40, 600}); err != nil {
		t.Fatal(err)
	}
	if err := old.NoteDeadLettered(ctx, topic, 0, []int64{1, 2}); err != nil {
		t.Fatal(err)
	}
	if err := old.SaveSnapshot(ctx, topic, 0, 40, []byte("old")); err != nil {
		t.Fatal(err)
	}
	// Generation ids start again at 1 in a new cluster.
	if err := cur.Claim(ctx, topic, 0, Owner{1, "m-new"}); err != nil {
		t.Fatalf("claim in the new incarnation refused by the old one's owner: %v", err)
	}
	if idle, err := cur.IdleCloses(ctx, topic, 0, 0); err != nil || len(idle) != 0 {
		t.Fatalf("new incarnation sees idle closes %v (%v)", idle, err)
	}
	if dead, err := cur.DeadLettered(ctx, topic, 0, 0); err != nil || len(dead) != 0 {
		t.Fatalf("new incarnation sees dead letters %v (%v)", dead, err)
	}
	if _, ok, err := cur.LoadSnapshot(ctx, topic, 0, 40); err != nil || ok {
		t.Fatalf("new incarnation sees the old snapshot (%v)", err)
	}
	if ok, err := old.Owns(ctx, topic, 0, Owner{7, "m-old"}); err != nil || !ok {
		t.Fatalf("the old incarnation's owner changed: %v %v", ok, err)
	}
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		_, rest, _ := strings.Cut(k, "{")
		tag, after, ok := strings.Cut(rest, "}")
		if !ok || tag != "g1:hits:0" || !strings.HasPrefix(after, ":kfake.") {
			t.Fatalf("key %s: hash tag %q, then %q; want g1:hits:0 then the incarnation", k, tag, after)
		}
	}
	for _, bad := range []string{"a}b", "a{b", "a:b", "a b", strings.Repeat("x", 129)} {
		if _, err := base.ForIncarnation(bad); err == nil {
			t.Fatalf("incarnation %q accepted", bad)
		}
	}
}
