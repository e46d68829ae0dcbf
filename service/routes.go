package service

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"hitship/config"
	"hitship/consumer"
	"hitship/integrations"
	"hitship/sink"
)

// table is the routing table of one config and one runtime state. Immutable
// once built, so partition workers read it without locks.
type table struct {
	live *integrations.RouteSet          // enabled in the config and at runtime
	all  *integrations.RouteSet          // every configured target, disabled ones included
	byID map[string]*integrations.Target // all, by target ID
}

// routes is the live routing table: the integrations of the config (replaced on
// reload) filtered by the runtime state (disabled integrations), plus the
// lookup by ID of every configured target. Partition workers route with
// memberships of their own (consumer/membership.go) and compare them with
// Live at every record; reads are lock-free, rebuilds are serialised by mu.
type routes struct {
	cur atomic.Pointer[table]

	mu         sync.Mutex
	all        []routeTarget // every configured target
	isDisabled func(name string) bool
}

// routeTarget is a configured target and whether the config file enables it.
type routeTarget struct {
	target  *integrations.Target
	enabled bool
}

var _ consumer.Routes = (*routes)(nil)

// Live returns the live membership. One atomic load.
func (r *routes) Live() *integrations.RouteSet { return r.cur.Load().live }

// All returns every configured target, disabled ones included.
func (r *routes) All() *integrations.RouteSet { return r.cur.Load().all }

// Target looks a configured target up by ID, disabled or not.
func (r *routes) Target(id string) (*integrations.Target, bool) {
	t, ok := r.cur.Load().byID[id]
	return t, ok
}

// set installs the config's targets (nil isDisabled keeps the current one) and
// rebuilds the table.
func (r *routes) set(all []routeTarget, isDisabled func(string) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all = all
	if isDisabled != nil {
		r.isDisabled = isDisabled
	}
	r.rebuildLocked()
}

// rebuild re-reads the runtime state (call it when it changed).
func (r *routes) rebuild() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.rebuildLocked()
}

func (r *routes) rebuildLocked() {
	t := &table{byID: make(map[string]*integrations.Target, len(r.all))}
	var live, all []*integrations.Target
	for _, x := range r.all {
		all = append(all, x.target)
		t.byID[x.target.ID] = x.target
		if !x.enabled || r.isDisabled != nil && r.isDisabled(x.target.Name) {
			continue
		}
		live = append(live, x.target)
	}
	t.live, t.all = integrations.NewRouteSet(live), integrations.NewRouteSet(all)
	r.cur.Store(t)
}

// StoreFactory builds the object store of one integration; tests and the demo
// may replace it.
type StoreFactory func(cfg *config.Config, in config.Integration) (sink.Store, error)

// S3Stores builds S3 stores, with httpClient if not nil. Integrations with
// access keys sign with them; integrations with role_arn assume the role with
// sts:AssumeRole and the external ID derived for their client, from hitship's own
// identity (the default AWS credential chain, loaded once when first needed).
func S3Stores(httpClient *http.Client) StoreFactory {
	var (
		once    sync.Once
		base    aws.CredentialsProvider
		baseErr error
	)
	return func(cfg *config.Config, in config.Integration) (sink.Store, error) {
		endpoint, pathStyle := cfg.EndpointFor(in)
		var creds aws.CredentialsProvider
		switch {
		case in.Credentials.AccessKeyID != "":
			p, err := sink.NewStaticProvider(in.Credentials.AccessKeyID, in.Credentials.SecretAccessKey())
			if err != nil {
				return nil, fmt.Errorf("integration %s: %w", in.Name, err)
			}
			creds = p
		case in.Credentials.RoleARN != "":
			once.Do(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				base, baseErr = sink.DefaultBaseCredentials(ctx)
			})
			if baseErr != nil {
				return nil, fmt.Errorf("integration %s: hitship's own AWS identity: %w", in.Name, baseErr)
			}
			p, err := sink.NewAssumeRoleProvider(sink.AssumeRoleConfig{
				Base: base, RoleARN: in.Credentials.RoleARN, ClientID: in.ClientID,
				ExternalIDSecret: []byte(cfg.ExternalID.Secret()), Region: in.Region,
				STSEndpoint: cfg.ExternalID.STSEndpoint, TrustedPrincipal: cfg.ExternalID.AccountID,
				HTTPClient: httpClient,
			})
			if err != nil {
				return nil, fmt.Errorf("integration %s: %w", in.Name, err)
			}
			creds = p
		default:
			return nil, fmt.Errorf("integration %s: no credentials", in.Name)
		}
		return sink.NewS3Store(sink.S3Config{
			Bucket:             in.Bucket,
			Region:             in.Region,
			Endpoint:           endpoint,
			PathStyle:          pathStyle,
			Credentials:        creds,
			HTTPClient:         httpClient,
			IfNoneMatch:        cfg.S3.IfNoneMatch,
			MultipartThreshold: int64(cfg.S3.MultipartThreshold),
			PartSize:           int64(cfg.S3.PartSize),
			AllowAbort:         cfg.S3.AllowAbort,
		})
	}
}

// buildTargets makes the targets of the config's integrations, those disabled
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
func buildTargets(cfg *config.Config, keys *sink.KeyTemplate, stores StoreFactory, prev *built) (*built, error) {
	b := &built{s3: cfg.S3, byName: map[string]builtTarget{}, byID: map[string]builtTarget{}}
	for _, in := range cfg.Integrations {
		id := targetID(cfg, in)
		var old builtTarget
		reuse := false
		if prev != nil {
			old, reuse = prev.byID[id]
		}
		if reuse && reflect.DeepEqual(prev.s3, cfg.S3) && reflect.DeepEqual(old.cfg, in) {
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
			b.unbuilt = append(b.unbuilt, fmt.Sprintf("%s: %v", in.Name, err))
			continue
		}
		if err != nil {
			return nil, err
		}
		if reuse {
			sw := old.store
			b.swaps = append(b.swaps, func() { sw.Swap(st) })
			b.add(builtTarget{cfg: in, target: old.target, store: old.store})
			continue
		}
		sw := sink.NewSwapStore(st)
		t := &integrations.Target{ID: id, Name: in.Name, ClientID: in.ClientID, Prefix: in.Prefix, Format: f, Compression: c,
			Keys: keys, Store: sw, IfNoneMatch: cfg.S3.IfNoneMatch}
		b.add(builtTarget{cfg: in, target: t, store: sw})
	}
	return b, nil
}

// targetID is the integrations.Target ID of integration in under cfg: what decides
// where and for whom its records go (the credentials do not).
func targetID(cfg *config.Config, in config.Integration) string {
	endpoint, pathStyle := cfg.EndpointFor(in)
	return integrations.NewTargetID(in.Name, in.ClientID, in.Bucket, in.Region, endpoint, strconv.FormatBool(pathStyle),
		in.Prefix, in.Format, in.Compression)
}

// built is the targets of one config, with what they were built from.
type built struct {
	s3     config.S3
	byName map[string]builtTarget
	byID   map[string]builtTarget
	all    []*integrations.Target // every built target, disabled in the file or not
	// unbuilt names the disabled integrations whose store could not be built.
	unbuilt []string
	// swaps put the stores of reused targets whose credentials changed in
	// place; activate runs them once the config is accepted.
	swaps []func()
}

func (b *built) add(bt builtTarget) {
	b.byName[bt.cfg.Name] = bt
	b.byID[bt.target.ID] = bt
	b.all = append(b.all, bt.target)
}

// routeTargets returns the targets for the routing table.
func (b *built) routeTargets() []routeTarget {
	out := make([]routeTarget, 0, len(b.all))
	for _, t := range b.all {
		out = append(out, routeTarget{target: t, enabled: b.byID[t.ID].cfg.Enabled})
	}
	return out
}

// activate swaps the new stores of reused targets in. Call it once, when the
// config these targets were built from is accepted.
func (b *built) activate() {
	for _, swap := range b.swaps {
		swap()
	}
	b.swaps = nil
}

type builtTarget struct {
	cfg    config.Integration
	target *integrations.Target
	store  *sink.SwapStore // target.Store
}
