package parking_test

import (
	"slices"
	"testing"

	"hitship/sink"
)

// TestDeleteIntegration: the objects of one integration (parked and dead)
// are listed and deleted; another integration whose name starts the same is
// left alone.
func TestDeleteIntegration(t *testing.T) {
	st, s3 := newStore(t)
	ctx := t.Context()
	put := func(key string) {
		if err := st.Put(ctx, key, sink.BytesBody([]byte("x")), sink.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	put(st.ParkedKey("gone", "hits/a.json"))
	put(st.ParkedKey("gone", "hits/b.json"))
	put(st.DeadKey("gone", "hits/c.json"))
	put(st.ParkedKey("gone-2", "hits/a.json"))
	put(st.DeadKey("gone-2", "hits/c.json"))

	parked, dead, err := st.IntegrationObjects(ctx, "gone")
	if err != nil || len(parked) != 2 || len(dead) != 1 {
		t.Fatalf("objects of gone: %v %v, %v", parked, dead, err)
	}
	np, nd, err := st.DeleteIntegration(ctx, "gone")
	if err != nil || np != 2 || nd != 1 {
		t.Fatalf("deleted %d parked, %d dead, %v", np, nd, err)
	}
	objs, err := s3.Objects(ctx, "park")
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for k := range objs {
		left = append(left, k)
	}
	slices.Sort(left)
	want := []string{st.DeadKey("gone-2", "hits/c.json"), st.ParkedKey("gone-2", "hits/a.json")}
	if !slices.Equal(left, want) {
		t.Errorf("left %v, want %v", left, want)
	}
}
