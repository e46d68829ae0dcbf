package retry

import (
	"context"
	"testing"
	"time"
)

// TestForgetIntegration: retiring an integration turns its waiting and
// leased entries into dead letters (a lease holder loses it) and leaves
// other integrations alone; deleting removes its entries in every state;
// its inline-failure notes go, glob characters in the name included.
func TestForgetIntegration(t *testing.T) {
	q, _ := newQueue(t, false)
	ctx := context.Background()
	for _, e := range []Entry{
		entry("gone/1", "gone", Position{2, 1}, t0),
		entry("gone/2", "gone", Position{2, 1}, t0),
		entry("gone/3", "gone", Position{3, 6}, t0.Add(time.Hour)),
		entry("kept/1", "kept", Position{2, 1}, t0),
	} {
		if _, err := q.Enqueue(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	leased := mustClaim(t, q, t0, time.Minute, 1, 1)[0] // gone/1 or gone/2 or kept/1
	for _, name := range []string{"gone", "kept", "g*ne"} {
		if _, err := q.NoteInlineFailure(ctx, name+"/wallarm_hits_1.json", t0); err != nil {
			t.Fatal(err)
		}
	}

	n, err := q.RetireIntegration(ctx, "gone", "integration gone forgotten", t0.Add(time.Minute))
	if err != nil || n != 3 {
		t.Fatalf("retired %d, %v; want 3", n, err)
	}
	if leased.Integration == "gone" {
		if err := q.Complete(ctx, leased); !IsLeaseLost(err) {
			t.Errorf("the lease holder of a retired entry completed it: %v", err)
		}
	}
	dead, err := q.DeadLetters(ctx, "gone", time.Time{})
	if err != nil || len(dead) != 3 || dead[0].DeadReason != "integration gone forgotten" {
		t.Fatalf("dead letters of gone = %+v, %v", dead, err)
	}
	if n, _ := q.RetireIntegration(ctx, "gone", "again", t0.Add(2*time.Minute)); n != 0 {
		t.Errorf("retiring again moved %d dead letters", n)
	}
	kept, err := q.ListByIntegration(ctx, "kept")
	if err != nil || len(kept) != 1 || kept[0].State == StateDead {
		t.Fatalf("kept's entries = %+v, %v; want its one entry untouched", kept, err)
	}
	// A retired entry can be redelivered if the integration comes back.
	if k, err := q.Requeue(ctx, []string{"gone/3"}, t0.Add(3*time.Minute), nil); err != nil || k != 1 {
		t.Fatalf("requeue a retired entry: %d, %v", k, err)
	}

	deleted, err := q.DeleteIntegration(ctx, "gone")
	if err != nil || len(deleted) != 3 {
		t.Fatalf("deleted %d, %v; want 3 (2 dead, 1 requeued)", len(deleted), err)
	}
	if es, _ := q.ListByIntegration(ctx, "gone"); len(es) != 0 {
		t.Errorf("entries left after delete: %+v", es)
	}
	st, err := q.Stats(ctx, t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if st.Dead != 0 || st.Due+st.Scheduled+st.Leased != 1 {
		t.Errorf("stats after delete = %+v, want kept's one entry only", st)
	}

	keys, err := q.InlineFailures(ctx, "g*ne")
	if err != nil || len(keys) != 1 {
		t.Fatalf("inline notes of g*ne = %v, %v; want its own only (no glob)", keys, err)
	}
	if n, err := q.ForgetInlineFailures(ctx, "gone"); err != nil || n != 1 {
		t.Fatalf("forgot %d inline notes, %v; want 1", n, err)
	}
	if _, ok, _ := q.InlineFailure(ctx, "gone/wallarm_hits_1.json"); ok {
		t.Error("gone's inline note is still there")
	}
	for _, name := range []string{"kept", "g*ne"} {
		if _, ok, _ := q.InlineFailure(ctx, name+"/wallarm_hits_1.json"); !ok {
			t.Errorf("%s's inline note was deleted", name)
		}
	}
	if _, err := q.RetireIntegration(ctx, "", "x", t0); !IsInvalid(err) {
		t.Errorf("retire without a name: %v", err)
	}
}
