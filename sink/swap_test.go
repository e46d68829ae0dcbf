package sink_test

import (
	"context"
	"sync"
	"testing"

	"hitship/sink"
)

// TestSwapStore: every Put after a Swap goes to the new store, also while
// other Puts run concurrently (race detector).
func TestSwapStore(t *testing.T) {
	a, _ := sink.NewMemStore()
	b, _ := sink.NewMemStore()
	s := sink.NewSwapStore(a)
	ctx := context.Background()
	if err := s.Put(ctx, "k1", sink.BytesBody("x"), sink.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { _ = s.Put(ctx, "busy", sink.BytesBody("y"), sink.PutOptions{}) })
	}
	s.Swap(b)
	wg.Wait()
	if err := s.Put(ctx, "k2", sink.BytesBody("z"), sink.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := a.Get("k2"); ok {
		t.Fatal("a Put after the swap went to the old store")
	}
	if _, ok := b.Get("k2"); !ok || s.Current() != b {
		t.Fatal("a Put after the swap did not reach the new store")
	}
	if _, ok := a.Get("k1"); !ok {
		t.Fatal("the Put before the swap did not reach the old store")
	}
}
