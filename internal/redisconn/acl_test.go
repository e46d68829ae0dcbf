package redisconn_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"hitship/delivery/retry"
	"hitship/health"
	"hitship/integrations/registry"
	"hitship/internal/redisconn"
	"hitship/internal/testenv"
	"hitship/state"
)

// scriptCall is a command a Lua script calls.
var scriptCall = regexp.MustCompile(`redis\.p?call\(\s*['"]([A-Za-z]+)['"]`)

// TestACLCoversScripts: every command a Lua script of hitship calls is in
// ACLCommands (Redis checks a script's commands against the user too).
func TestACLCoversScripts(t *testing.T) {
	root := filepath.Join("..", "..")
	seen := map[string]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		if d.IsDir() {
			switch rel {
			case "bench", "chaos", filepath.Join("internal", "testenv"), filepath.Join("internal", "embedded"), ".git":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range scriptCall.FindAllSubmatch(b, -1) {
			seen[strings.ToLower(string(m[1]))] = rel
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) < 10 {
		t.Fatalf("found only %d commands called by scripts: the scan no longer finds the scripts", len(seen))
	}
	for c, where := range seen {
		if !slices.Contains(redisconn.ACLCommands, c) {
			t.Errorf("a script in %s calls %s, which redisconn.ACLCommands does not allow", where, c)
		}
	}
}

func TestACLRule(t *testing.T) {
	for _, tc := range []struct {
		name, prefix string
		cluster      bool
		want         string
	}{
		{name: "default prefix", prefix: "hitship:", want: "resetkeys ~hitship:* resetchannels -@all +auth "},
		{name: "cluster prefix", prefix: "{hitship}:", cluster: true, want: "resetkeys ~{hitship}:* resetchannels -@all "},
		{name: "glob characters", prefix: "a*b?[c]:", want: `resetkeys ~a\*b\?\[c\]:* `},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := redisconn.ACLRule(tc.prefix, tc.cluster)
			if !strings.HasPrefix(got, tc.want) {
				t.Errorf("ACLRule(%q) = %q, want it to start with %q", tc.prefix, got, tc.want)
			}
			if has := strings.Contains(got, "+cluster|slots"); has != tc.cluster {
				t.Errorf("ACLRule(%q, %t) has +cluster|slots: %t", tc.prefix, tc.cluster, has)
			}
		})
	}
}

// TestACLUserRunsTheStores runs the stores' scripts and calls (partition
// state, routing, the retry queue, health ledger, registry and events) as a
// user with only redisconn.ACLRule, on a real redis-server: none is denied.
// bench/redis-sizing runs the whole of hitship as that user.
func TestACLUserRunsTheStores(t *testing.T) {
	srv := testenv.MustRedis(t, testenv.RedisOptions{})
	if srv.Miniredis() {
		t.Skip("no redis-server: miniredis has no ACL")
	}
	ctx := context.Background()
	const prefix = "hitship:"
	args := []any{"acl", "setuser", "hitship", "reset", "on", ">acl-test-password"}
	for _, f := range strings.Fields(redisconn.ACLRule(prefix, false)) {
		args = append(args, f)
	}
	if err := srv.Client().Do(ctx, args...).Err(); err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), Username: "hitship", Password: "acl-test-password"})
	defer c.Close()
	check := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	check("WAIT", c.Do(ctx, "wait", 0, 10).Err())
	check("INFO replication", c.Info(ctx, "replication").Err())
	if err := c.Do(ctx, "flushall").Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("FLUSHALL as the ACL user: %v, want NOPERM (the rule allows too much)", err)
	}
	if err := c.Set(ctx, "other:key", "x", 0).Err(); err == nil || !strings.Contains(err.Error(), "NOPERM") {
		t.Fatalf("a key outside the prefix: %v, want NOPERM", err)
	}

	now := time.Now()
	st, err := state.New(c, prefix, "g")
	check("state.New", err)
	st, err = st.ForIncarnation("c1.t1")
	check("ForIncarnation", err)
	o := state.Owner{Generation: 3, Member: "m1"}
	check("Claim", st.Claim(ctx, "hits", 0, o))
	_, err = st.Ownership(ctx, "hits", 0, o)
	check("Ownership", err)
	check("RecordIdleClose", st.RecordIdleClose(ctx, "hits", 0, o, state.IdleClose{NextOffset: 10, Boundary: 60_000}))
	_, err = st.IdleCloses(ctx, "hits", 0, 0)
	check("IdleCloses", err)
	check("SaveSnapshot", st.SaveSnapshot(ctx, "hits", 0, 10, []byte(`{"offset":10}`)))
	_, _, err = st.LoadSnapshot(ctx, "hits", 0, 10)
	check("LoadSnapshot", err)
	check("NoteDeadLettered", st.NoteDeadLettered(ctx, "hits", 0, []int64{4}))
	_, err = st.DeadLettered(ctx, "hits", 0, 0)
	check("DeadLettered", err)
	check("SaveRouteSet", st.SaveRouteSet(ctx, "set1", []string{"a", "b"}))
	_, _, err = st.LoadRouteSet(ctx, "set1")
	check("LoadRouteSet", err)
	check("RecordRoute", st.RecordRoute(ctx, "hits", 0, o, state.RouteEntry{Offset: 5, SetID: "set1"}))
	_, err = st.RouteLog(ctx, "hits", 0)
	check("RouteLog", err)
	check("RecordReadMark", st.RecordReadMark(ctx, "hits", 0, 128))
	_, _, err = st.ReadMark(ctx, "hits", 0)
	check("ReadMark", err)
	check("Prune", st.Prune(ctx, "hits", 0, 11))
	check("DropFrom", st.DropFrom(ctx, "hits", 0, o, 11))

	q, err := retry.NewQueue(c, retry.QueueConfig{Prefix: prefix})
	check("retry.NewQueue", err)
	for _, id := range []string{"e1", "e2"} {
		_, err = q.Enqueue(ctx, retry.Entry{ID: id, Integration: "acme", ParkedKey: "parked/" + id, Key: "k/" + id, Cycle: 2, Attempt: 1, Due: now, Enqueued: now})
		check("Enqueue", err)
	}
	cl, err := q.Claim(ctx, now, time.Minute, 10)
	check("Claim", err)
	if len(cl) != 2 {
		t.Fatalf("claimed %d entries, want 2", len(cl))
	}
	check("Extend", q.Extend(ctx, &cl[0], now, time.Minute))
	check("Complete", q.Complete(ctx, cl[0]))
	_, err = q.Completed(ctx, cl[0].ID)
	check("Completed", err)
	check("MarkDying", q.MarkDying(ctx, &cl[1], "test"))
	check("DeadLetter", q.DeadLetter(ctx, cl[1], now, "test", "dead/e2"))
	_, err = q.DeadLetters(ctx, "acme", now.Add(-time.Hour))
	check("DeadLetters", err)
	_, err = q.Requeue(ctx, []string{"e2"}, now, func(e retry.Entry) string { return e.ParkedKey })
	check("Requeue", err)
	cl, err = q.Claim(ctx, now.Add(time.Second), time.Minute, 10)
	check("Claim again", err)
	if len(cl) == 1 {
		check("Reschedule", q.Reschedule(ctx, cl[0], now.Add(time.Hour), retry.Position{Cycle: 2, Attempt: 2}, "still failing"))
	}
	_, err = q.Wake(ctx, "acme", now)
	check("Wake", err)
	_, err = q.Stats(ctx, now)
	check("Stats", err)
	_, err = q.ListByIntegration(ctx, "acme")
	check("ListByIntegration", err)
	_, err = q.NoteInlineFailure(ctx, "obj1", now)
	check("NoteInlineFailure", err)
	_, _, err = q.InlineFailure(ctx, "obj1")
	check("InlineFailure", err)
	_, err = q.InlineFailures(ctx, "acme")
	check("InlineFailures", err)
	_, err = q.ForgetInlineFailures(ctx, "acme")
	check("ForgetInlineFailures", err)
	_, err = q.RetireIntegration(ctx, "acme", "removed", now)
	check("RetireIntegration", err)
	_, err = q.DeleteIntegration(ctx, "acme")
	check("DeleteIntegration", err)

	reg, err := registry.New(c, prefix, time.Now)
	check("registry.New", err)
	_, _, err = reg.Disable(ctx, "acme", "test", "ops")
	check("Disable", err)
	_, _, err = reg.Enable(ctx, "acme", "ops")
	check("Enable", err)
	_, err = reg.Record(ctx, registry.CreateEventType, "acme", "", "ops")
	check("Record", err)
	_, err = reg.Events(ctx, 10)
	check("Events", err)
	_, err = reg.EventsAfter(ctx, "", 10)
	check("EventsAfter", err)
	_, err = reg.All(ctx, []string{"acme"})
	check("All", err)

	l, err := health.New(c, health.Config{Prefix: prefix})
	check("health.New", err)
	_, err = l.Record(ctx, "acme", health.FailCustomer, now)
	check("health Record", err)
	_, err = l.Counts(ctx, "acme", now)
	check("health Counts", err)

	denials, err := srv.Client().Do(ctx, "acl", "log").Slice()
	check("ACL LOG", err)
	// FLUSHALL and the key outside the prefix above.
	if len(denials) != 2 {
		t.Errorf("ACL LOG has %d entries, want the 2 this test provoked: %v", len(denials), denials)
	}
}
