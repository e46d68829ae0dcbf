package integrations

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"

	"hitship/config"
	"hitship/sink"
)

// Build makes the targets of the config's integrations, those disabled
// in the file included (records routed to one while it was enabled are
// delivered to it, and a replay must find it by ID; the routing table keeps
// it out of the live membership). A disabled integration whose store cannot
// be built is left out and named in unbuilt (records a replay routes to it
// are skipped as removed); for an enabled one it is an error. A target
// whose integration (and the shared S3 settings) did not change since prev is
// reused as it is, so the buffers collecting for it are untouched by a reload.
// A target whose ID did not change (same tenant and destination) but whose
// credentials or shared S3 settings did is reused too, with a store built
// from the new settings that activate swaps in once the whole reload is
// accepted: its open windows and in-process retries go on with the new
// credentials. (Target.IfNoneMatch stays as it was built; the store's own
// setting follows the reload, and a Put is conditional if either asks.)
func Build(cfg *config.Config, keys *sink.KeyTemplate, stores StoreFactory, prev *Built) (*Built, error) {
	b := &Built{s3: cfg.S3, ByName: map[string]BuiltTarget{}, ByID: map[string]BuiltTarget{}}
	for _, in := range cfg.Integrations {
		id := targetID(cfg, in)
		var old BuiltTarget
		reuse := false
		if prev != nil {
			old, reuse = prev.ByID[id]
		}
		if reuse && reflect.DeepEqual(prev.s3, cfg.S3) && reflect.DeepEqual(old.Cfg, in) {
			b.add(old)
			continue
		}
		f, err := sink.ParseFormat(in.Format)
		if err != nil {
			return nil, fmt.Errorf("integrations %s: %w", in.Name, err)
		}
		c, err := sink.ParseCompression(in.Compression)
		if err != nil {
			return nil, fmt.Errorf("integrations %s: %w", in.Name, err)
		}
		st, err := stores(cfg, in)
		if err != nil && !in.Enabled {
			b.Unbuilt = append(b.Unbuilt, fmt.Sprintf("%s: %v", in.Name, err))
			continue
		}
		if err != nil {
			return nil, err
		}
		if reuse {
			sw := old.Store
			b.swaps = append(b.swaps, func() { sw.Swap(st) })
			b.add(BuiltTarget{Cfg: in, Target: old.Target, Store: old.Store})
			continue
		}
		sw := sink.NewSwapStore(st)
		t := &Target{ID: id, Name: in.Name, ClientID: in.ClientID, Prefix: in.KeyPrefix(), Format: f, Compression: c,
			Keys: keys, Store: sw, IfNoneMatch: cfg.S3.IfNoneMatch}
		if in.IsSecurityLake() {
			t.Keys = securityLakeKeys
		}
		b.add(BuiltTarget{Cfg: in, Target: t, Store: sw})
	}
	return b, nil
}

// targetID is the Target ID of integration in under cfg: what decides
// where and for whom its records go (the credentials do not).
//
// An integration created through the API carries its incarnation (when it
// was created) in the name part, "name~incarnation": what the staging bucket
// and the parking bucket keep for a deleted integration never goes to a later
// one of the same name and client (staging.Namespace, delivery/parked.go
// match the target). A replace keeps the incarnation, so a moved integration
// still gets what it had staged.
func targetID(cfg *config.Config, in config.Integration) string {
	endpoint, pathStyle := cfg.EndpointFor(in)
	name := in.Name
	if in.Incarnation != "" {
		name += "~" + in.Incarnation
	}
	return NewTargetID(name, in.ClientID, in.Bucket, in.Region, endpoint, strconv.FormatBool(pathStyle),
		in.KeyPrefix(), in.Format, in.Compression)
}

// securityLakeKeys renders the keys of every security_lake target, whatever
// s3.key_template says: Security Lake's layout is not the operator's choice.
var securityLakeKeys = func() *sink.KeyTemplate {
	t, err := sink.ParseStagedKeyTemplate(sink.SecurityLakeKeyTemplate)
	if err != nil {
		panic(err) // a constant: every test of the package would panic
	}
	return t
}()

// Built is the targets of one config, with what they were built from.
// Read-only once Build returned it, but for Activate.
type Built struct {
	s3     config.S3
	ByName map[string]BuiltTarget
	ByID   map[string]BuiltTarget
	All    []*Target // every built target, disabled in the file or not
	// Unbuilt names the disabled integrations whose store could not be built.
	Unbuilt []string
	// swaps put the stores of reused targets whose credentials changed in
	// place; Activate runs them once the config is accepted.
	swaps []func()
}

func (b *Built) add(bt BuiltTarget) {
	b.ByName[bt.Cfg.Name] = bt
	b.ByID[bt.Target.ID] = bt
	b.All = append(b.All, bt.Target)
}

// RouteTargets returns the targets for the routing table (Routes.Set).
func (b *Built) RouteTargets() []RouteTarget {
	out := make([]RouteTarget, 0, len(b.All))
	for _, t := range b.All {
		out = append(out, RouteTarget{Target: t, Enabled: b.ByID[t.ID].Cfg.Enabled})
	}
	return out
}

// Activate swaps the new stores of reused targets in. Call it once, when the
// config these targets were built from is accepted.
func (b *Built) Activate() {
	for _, swap := range b.swaps {
		swap()
	}
	b.swaps = nil
}

// BuiltTarget is one built target with the integration it was built from.
type BuiltTarget struct {
	Cfg    config.Integration
	Target *Target
	Store  *sink.SwapStore // Target.Store
}

// Diff names the integrations cur adds to old, changes (another target, or
// another integration config) and removes, each sorted.
func Diff(old, cur *Built) (added, changed, removed []string) {
	for name, t := range cur.ByName {
		switch o, ok := old.ByName[name]; {
		case !ok:
			added = append(added, name)
		case o.Target != t.Target || !reflect.DeepEqual(o.Cfg, t.Cfg):
			changed = append(changed, name)
		}
	}
	for name := range old.ByName {
		if _, ok := cur.ByName[name]; !ok {
			removed = append(removed, name)
		}
	}
	slices.Sort(added)
	slices.Sort(changed)
	slices.Sort(removed)
	return added, changed, removed
}
