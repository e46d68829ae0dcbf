package sink

import (
	"context"
	"sync/atomic"
)

// SwapStore is a Store whose underlying Store can be replaced while uploads
// run: a reload that rotates an integration's credentials swaps in a store
// built with the new ones, and every later Put (a retry of an object closed
// before the reload included) uses it. A Put in progress finishes with the
// store it started with. Safe for concurrent use.
type SwapStore struct {
	cur atomic.Pointer[storeRef]
}

type storeRef struct{ s Store }

var _ Store = (*SwapStore)(nil)

// NewSwapStore returns a SwapStore over s.
func NewSwapStore(s Store) *SwapStore {
	w := &SwapStore{}
	w.Swap(s)
	return w
}

// Swap makes s the store of every later Put.
func (w *SwapStore) Swap(s Store) { w.cur.Store(&storeRef{s: s}) }

// Current returns the store Put uses now.
func (w *SwapStore) Current() Store { return w.cur.Load().s }

// Put puts through the current store.
func (w *SwapStore) Put(ctx context.Context, key string, obj Body, opts PutOptions) error {
	return w.cur.Load().s.Put(ctx, key, obj, opts)
}
