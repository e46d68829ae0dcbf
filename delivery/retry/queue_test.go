package retry

import (
	"context"
	"fmt"
	"testing"
	"time"

	"hitship/internal/testenv"

	"github.com/redis/go-redis/v9"
)

var t0 = time.Date(2023, 6, 20, 6, 10, 0, 0, time.UTC)

func newQueue(t *testing.T, persist bool) (*Queue, *testenv.Redis) {
	t.Helper()
	r := testenv.MustRedis(t, testenv.RedisOptions{Persist: persist})
	q, err := NewQueue(r.Client(), QueueConfig{Prefix: "test:"})
	if err != nil {
		t.Fatal(err)
	}
	return q, r
}

func entry(id, integration string, p Position, due time.Time) Entry {
	return Entry{
		ID: id, Integration: integration, ParkedKey: "parked/" + id, Key: "wallarm_hits_" + id + ".json",
		Cycle: p.Cycle, Attempt: p.Attempt, Due: due, Partition: 3, WindowStart: due.UnixMilli(), FirstOffset: 42, Records: 7,
	}
}

func mustStats(t *testing.T, q *Queue, now time.Time, want Stats) {
	t.Helper()
	got, err := q.Stats(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("Stats = %+v, want %+v", got, want)
	}
}

func mustClaim(t *testing.T, q *Queue, now time.Time, lease time.Duration, max, want int) []Claimed {
	t.Helper()
	cs, err := q.Claim(context.Background(), now, lease, max)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != want {
		t.Fatalf("Claim at %s got %d entries, want %d", now.Format(time.TimeOnly), len(cs), want)
	}
	return cs
}

func TestNewQueueInvalid(t *testing.T) {
	r := testenv.MustRedis(t, testenv.RedisOptions{})
	tests := []struct {
		name string
		cfg  QueueConfig
		nil_ bool
	}{
		{name: "nil client", nil_: true},
		{name: "brace in name", cfg: QueueConfig{Name: "x}"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c redis.UniversalClient = r.Client()
			if tt.nil_ {
				c = nil
			}
			_, err := NewQueue(c, tt.cfg)
			if !IsInvalid(err) {
				t.Fatalf("err = %v, want invalid", err)
			}
		})
	}
}

// TestNewQueueClusterPrefix: the prefix of redis.mode cluster holds a hash
// tag, which puts every key of the queue in its slot.
func TestNewQueueClusterPrefix(t *testing.T) {
	r := testenv.MustRedis(t, testenv.RedisOptions{})
	q, err := NewQueue(r.Client(), QueueConfig{Prefix: "{hitship}:"})
	if err != nil {
		t.Fatalf("NewQueue with the cluster prefix: %v", err)
	}
	if q.entries != "{hitship}:{retry}:entries" {
		t.Errorf("entries key %q", q.entries)
	}
}

func TestEnqueueInvalid(t *testing.T) {
	q, _ := newQueue(t, false)
	tests := []struct {
		name string
		e    Entry
	}{
		{name: "no id", e: entry("", "a", Position{2, 1}, t0)},
		{name: "bad position", e: entry("x", "a", Position{2, 6}, t0)},
		{name: "no due", e: entry("x", "a", Position{2, 1}, time.Time{})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := q.Enqueue(t.Context(), tt.e); !IsInvalid(err) {
				t.Fatalf("err = %v, want invalid", err)
			}
		})
	}
	mustStats(t, q, t0, Stats{})
}

func TestQueueLifecycle(t *testing.T) {
	ctx := t.Context()
	q, _ := newQueue(t, false)
	e := entry("w1", "acme", Position{2, 1}, t0)
	e.LastError = "AccessDenied"
	if ok, err := q.Enqueue(ctx, e); err != nil || !ok {
		t.Fatalf("Enqueue = %v, %v", ok, err)
	}
	dup := e
	dup.ParkedKey = "other"
	if ok, err := q.Enqueue(ctx, dup); err != nil || ok {
		t.Fatalf("second Enqueue of the same id = %v, %v; want false, nil", ok, err)
	}
	mustStats(t, q, t0.Add(-time.Second), Stats{Scheduled: 1})
	mustClaim(t, q, t0.Add(-time.Millisecond), time.Second, 10, 0)

	cs := mustClaim(t, q, t0, time.Second, 10, 1)
	c := cs[0]
	if c.ID != "w1" || c.ParkedKey != "parked/w1" || c.Position() != (Position{2, 1}) || c.LastError != "AccessDenied" ||
		c.Records != 7 || c.Reclaimed || !c.LeaseUntil.Equal(t0.Add(time.Second)) || c.Token == "" {
		t.Fatalf("claimed %+v", c)
	}
	mustClaim(t, q, t0.Add(500*time.Millisecond), time.Second, 10, 0) // leased
	mustStats(t, q, t0.Add(500*time.Millisecond), Stats{Leased: 1})

	stale := c
	stale.Token = "not-the-token"
	if err := q.Complete(ctx, stale); !IsLeaseLost(err) {
		t.Fatalf("Complete with a wrong token: %v, want lease lost", err)
	}
	if err := q.Complete(ctx, c); err != nil {
		t.Fatal(err)
	}
	mustStats(t, q, t0.Add(time.Hour), Stats{})
	if err := q.Complete(ctx, c); !IsLeaseLost(err) {
		t.Fatalf("second Complete: %v, want lease lost", err)
	}
	list, err := q.ListByIntegration(ctx, "")
	if err != nil || len(list) != 0 {
		t.Fatalf("List after Complete = %v, %v", list, err)
	}
}

// TestLeaseExpiry: an entry whose holder crashed is due again after the
// lease; the old holder's token is refused from then on.
func TestLeaseExpiry(t *testing.T) {
	ctx := t.Context()
	q, _ := newQueue(t, false)
	if _, err := q.Enqueue(ctx, entry("w1", "acme", Position{2, 3}, t0)); err != nil {
		t.Fatal(err)
	}
	lease := 500 * time.Millisecond
	old := mustClaim(t, q, t0, lease, 1, 1)[0]
	mustClaim(t, q, t0.Add(499*time.Millisecond), lease, 1, 0)
	mustStats(t, q, t0.Add(lease), Stats{Leased: 1, Expired: 1})

	cur := mustClaim(t, q, t0.Add(lease), lease, 1, 1)[0]
	if !cur.Reclaimed || cur.Token == old.Token {
		t.Fatalf("reclaimed %+v (old token %s)", cur, old.Token)
	}
	if err := q.Extend(ctx, &old, t0.Add(lease), lease); !IsLeaseLost(err) {
		t.Fatalf("stale Extend: %v", err)
	}
	if err := q.Complete(ctx, old); !IsLeaseLost(err) {
		t.Fatalf("stale Complete: %v", err)
	}
	if err := q.Reschedule(ctx, old, t0, Position{2, 4}, "x"); !IsLeaseLost(err) {
		t.Fatalf("stale Reschedule: %v", err)
	}
	if err := q.DeadLetter(ctx, old, t0, "x", ""); !IsLeaseLost(err) {
		t.Fatalf("stale DeadLetter: %v", err)
	}

	// The live holder extends, so a claim after the first deadline gets nothing.
	if err := q.Extend(ctx, &cur, t0.Add(900*time.Millisecond), lease); err != nil {
		t.Fatal(err)
	}
	if !cur.LeaseUntil.Equal(t0.Add(1400 * time.Millisecond)) {
		t.Fatalf("LeaseUntil = %s", cur.LeaseUntil)
	}
	mustClaim(t, q, t0.Add(1200*time.Millisecond), lease, 1, 0)

	// Reschedule: due again at the new time with the new position and error.
	due := t0.Add(5 * time.Second)
	if err := q.Reschedule(ctx, cur, due, Position{2, 4}, "NoSuchBucket"); err != nil {
		t.Fatal(err)
	}
	mustStats(t, q, t0.Add(2*time.Second), Stats{Scheduled: 1})
	mustClaim(t, q, due.Add(-time.Millisecond), lease, 1, 0)
	c := mustClaim(t, q, due, lease, 1, 1)[0]
	if c.Position() != (Position{2, 4}) || c.LastError != "NoSuchBucket" || !c.Due.Equal(due) || c.Reclaimed {
		t.Fatalf("after Reschedule claimed %+v", c)
	}
}

func TestDeadLetterAndRequeue(t *testing.T) {
	ctx := t.Context()
	q, _ := newQueue(t, false)
	for i, integ := range []string{"acme", "acme", "globex"} {
		if _, err := q.Enqueue(ctx, entry(fmt.Sprint("d", i), integ, Last, t0)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := q.Enqueue(ctx, entry("live", "acme", Position{3, 1}, t0.Add(time.Hour))); err != nil {
		t.Fatal(err)
	}
	cs := mustClaim(t, q, t0, time.Second, 10, 3)
	for i, c := range cs {
		at := t0.Add(time.Duration(i) * time.Minute)
		if err := q.DeadLetter(ctx, c, at, "AccessDenied after 17 attempts", "dead/"+c.ID); err != nil {
			t.Fatal(err)
		}
	}
	mustStats(t, q, t0, Stats{Scheduled: 1, Dead: 3})
	mustClaim(t, q, t0.Add(30*time.Minute), time.Second, 10, 0)

	tests := []struct {
		name        string
		integration string
		since       time.Time
		want        int
	}{
		{name: "all", since: time.Time{}, want: 3},
		{name: "acme", integration: "acme", want: 2},
		{name: "globex", integration: "globex", want: 1},
		{name: "since the last", since: t0.Add(2 * time.Minute), want: 1},
		{name: "since later", since: t0.Add(time.Hour), want: 0},
		{name: "unknown integration", integration: "nope", want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := q.DeadLetters(ctx, tt.integration, tt.since)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != tt.want {
				t.Fatalf("%d dead letters, want %d: %+v", len(got), tt.want, got)
			}
			for _, e := range got {
				if e.State != StateDead || e.DeadReason == "" || e.DeadAt.IsZero() || e.ParkedKey != "dead/"+e.ID {
					t.Fatalf("dead letter %+v", e)
				}
			}
		})
	}

	list, err := q.ListByIntegration(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, e := range list {
		states[e.ID] = e.State
	}
	if want := map[string]string{"d0": StateDead, "d1": StateDead, "live": StateScheduled}; fmt.Sprint(states) != fmt.Sprint(want) {
		t.Fatalf("ListByIntegration(acme) states %v, want %v", states, want)
	}

	dead, err := q.DeadLetters(ctx, "acme", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{dead[0].ID, dead[1].ID, "live", "missing"}
	now := t0.Add(2 * time.Hour)
	n, err := q.Requeue(ctx, ids, now, func(e Entry) string { return "parked/" + e.ID })
	if err != nil || n != 2 {
		t.Fatalf("Requeue = %d, %v; want 2 (live and missing are not dead letters)", n, err)
	}
	mustStats(t, q, now, Stats{Due: 3, Dead: 1}) // live is due too by now
	cs = mustClaim(t, q, now, time.Second, 10, 3)
	for _, c := range cs {
		if c.ID == "live" {
			continue
		}
		if c.Position() != Requeued || !c.Due.Equal(now) || c.ParkedKey != "parked/"+c.ID || !c.DeadAt.IsZero() || c.DeadReason != "" {
			t.Fatalf("requeued entry %+v", c)
		}
	}
}

// TestPersistence: the queue is plain Redis data and survives a restart of
// a redis-server with the append-only file on, leases and dead letters too.
func TestPersistence(t *testing.T) {
	ctx := t.Context()
	q, r := newQueue(t, true)
	if r.Miniredis() {
		t.Skip("no redis-server binary")
	}
	for i := range 5 {
		if _, err := q.Enqueue(ctx, entry(fmt.Sprint("p", i), "acme", Position{2, 1}, t0.Add(time.Duration(i)*time.Second))); err != nil {
			t.Fatal(err)
		}
	}
	cs := mustClaim(t, q, t0.Add(time.Second), time.Minute, 10, 2) // p0, p1 leased
	if err := q.DeadLetter(ctx, cs[0], t0, "gone", ""); err != nil {
		t.Fatal(err)
	}
	want := Stats{Due: 1, Scheduled: 2, Leased: 1, Dead: 1}
	at := t0.Add(2 * time.Second)
	mustStats(t, q, at, want)

	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	mustStats(t, q, at, want)
	// The lease survived with its token: the holder can still complete.
	if err := q.Complete(ctx, cs[1]); err != nil {
		t.Fatalf("Complete after restart: %v", err)
	}
	got := mustClaim(t, q, t0.Add(time.Hour), time.Minute, 10, 3)
	for _, c := range got {
		if c.Integration != "acme" || c.Records != 7 || c.Position() != (Position{2, 1}) {
			t.Fatalf("entry after restart %+v", c)
		}
	}
	if dl, err := q.DeadLetters(ctx, "", time.Time{}); err != nil || len(dl) != 1 || dl[0].ID != cs[0].ID {
		t.Fatalf("dead letters after restart = %+v, %v", dl, err)
	}
}

func ExampleQueue_Claim() {
	// A claimed entry carries the position of the attempt to make now; on
	// failure the next one follows the schedule.
	c := Claimed{Entry: Entry{ID: "acme/wallarm_hits_1687241400_3_42.json", Cycle: 2, Attempt: 5}}
	d, next, ok := Next(c.Position())
	fmt.Println(c.Position(), "failed: next", next, "in", d, ok)
	// Output: 2/5 failed: next 3/1 in 1m0s true
}
