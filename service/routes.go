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
	"hitship/sink"
)

// table maps client ids to their integrations. Immutable once built, so
// partition workers read it without locks.
type table struct {
	byClient map[int64][]*consumer.Target // enabled in the config and at runtime
	disabled map[int64]int                // per client: integrations disabled at runtime
}

// routes is the live routing table: the integrations of the config (replaced on
// reload) filtered by the runtime state (disabled integrations). Targets is
// lock-free; rebuilds are serialised by mu.
type routes struct {
	cur atomic.Pointer[table]

	mu         sync.Mutex
	all        []*consumer.Target // enabled in the config
	isDisabled func(name string) bool
}

var _ consumer.Routes = (*routes)(nil)

func (r *routes) Targets(clientID int64) ([]*consumer.Target, int) {
	t := r.cur.Load()
	return t.byClient[clientID], t.disabled[clientID]
}

// set installs the config's targets (nil isDisabled keeps the current one) and
// rebuilds the table.
func (r *routes) set(all []*consumer.Target, isDisabled func(string) bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if all != nil {
		r.all = all
	}
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
	t := &table{byClient: map[int64][]*consumer.Target{}, disabled: map[int64]int{}}
	for _, x := range r.all {
		if r.isDisabled != nil && r.isDisabled(x.Name) {
			t.disabled[x.ClientID]++
			continue
		}
		t.byClient[x.ClientID] = append(t.byClient[x.ClientID], x)
	}
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

// buildTargets makes the targets of the config's enabled integrations. A target
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
		if !in.Enabled {
			continue
		}
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
		t := &consumer.Target{ID: id, Name: in.Name, ClientID: in.ClientID, Prefix: in.Prefix, Format: f, Compression: c,
			Keys: keys, Store: sw, IfNoneMatch: cfg.S3.IfNoneMatch}
		b.add(builtTarget{cfg: in, target: t, store: sw})
	}
	return b, nil
}

// targetID is the consumer.Target ID of integration in under cfg: what decides
// where and for whom its records go (the credentials do not).
func targetID(cfg *config.Config, in config.Integration) string {
	endpoint, pathStyle := cfg.EndpointFor(in)
	return consumer.NewTargetID(in.Name, in.ClientID, in.Bucket, in.Region, endpoint, strconv.FormatBool(pathStyle),
		in.Prefix, in.Format, in.Compression)
}

// built is the targets of one config, with what they were built from.
type built struct {
	s3     config.S3
	byName map[string]builtTarget
	byID   map[string]builtTarget
	all    []*consumer.Target
	// swaps put the stores of reused targets whose credentials changed in
	// place; activate runs them once the config is accepted.
	swaps []func()
}

func (b *built) add(bt builtTarget) {
	b.byName[bt.cfg.Name] = bt
	b.byID[bt.target.ID] = bt
	b.all = append(b.all, bt.target)
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
	target *consumer.Target
	store  *sink.SwapStore // target.Store
}
