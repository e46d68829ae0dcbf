package integrations

import (
	"sync"
	"sync/atomic"
)

// table is the routing table of one config and one runtime state. Immutable
// once built, so partition workers read it without locks.
type table struct {
	live *RouteSet          // enabled in the config and at runtime
	all  *RouteSet          // every configured target, disabled ones included
	byID map[string]*Target // all, by target ID
}

// Routes is the live routing table: the integrations of the config (replaced on
// reload) filtered by the runtime state (disabled integrations), plus the
// lookup by ID of every configured target. Partition workers route with
// memberships of their own (consumer/membership.go) and compare them with
// Live at every record; reads are lock-free, rebuilds are serialised by mu.
// It implements consumer.Routes. Set it before the first read (the zero
// value holds no table). Safe for concurrent use.
type Routes struct {
	cur atomic.Pointer[table]

	mu         sync.Mutex
	all        []RouteTarget // every configured target
	isDisabled func(name string) bool
}

// RouteTarget is a configured target and whether the config file enables it.
type RouteTarget struct {
	Target  *Target
	Enabled bool
}

// Live returns the live membership. One atomic load.
func (r *Routes) Live() *RouteSet { return r.cur.Load().live }

// All returns every configured target, disabled ones included.
func (r *Routes) All() *RouteSet { return r.cur.Load().all }

// Target looks a configured target up by ID, disabled or not.
func (r *Routes) Target(id string) (*Target, bool) {
	t, ok := r.cur.Load().byID[id]
	return t, ok
}

// Set installs the config's targets (nil isDisabled keeps the current one) and
// rebuilds the table. isDisabled reports an integration disabled at runtime.
func (r *Routes) Set(all []RouteTarget, isDisabled func(string) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all = all
	if isDisabled != nil {
		r.isDisabled = isDisabled
	}
	r.rebuildLocked()
}

// Rebuild re-reads the runtime state (call it when it changed).
func (r *Routes) Rebuild() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rebuildLocked()
}

func (r *Routes) rebuildLocked() {
	t := &table{byID: make(map[string]*Target, len(r.all))}
	var live, all []*Target
	for _, x := range r.all {
		all = append(all, x.Target)
		t.byID[x.Target.ID] = x.Target
		if !x.Enabled || r.isDisabled != nil && r.isDisabled(x.Target.Name) {
			continue
		}
		live = append(live, x.Target)
	}
	t.live, t.all = NewRouteSet(live), NewRouteSet(all)
	r.cur.Store(t)
}
