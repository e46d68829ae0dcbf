// Package defs keeps the integrations defined at runtime (issue #13, through
// the admin API) in the integrations topic, the compacted Kafka topic every
// replica already follows for the runtime states (kstore, registry): the
// durable, shared, versioned store. Redis only coordinates writers.
//
// # Records
//
// One record per integration, key "def/{name}", value the Definition as JSON;
// deleting an integration writes a tombstone. Every replica reads the whole
// topic at start and follows it, so a definition written through any replica
// is on every replica as soon as its follower applied it (the topic's
// MaxWait, 1 s by default), with no restart and no group rebalance; it
// survives the loss of Redis and of any replica (acks=all).
//
// # Versions and concurrent writers
//
// Each definition carries a version, max(previous + 1, now in Unix ms): it
// grows with every write and never repeats, across a delete and a create of
// the same name, so a version a client read before a delete never matches
// the integration created after it. Create, Replace and Delete run under a
// per-name lock in Redis (SET NX with a token, LockTTL): the writer syncs its
// follower to the end of the topic, compares the current version with the
// one the client sent (If-Match), writes, and releases the lock. Two writers
// with the same version: one writes, the other gets ErrVersion (HTTP 412).
// Redis is a coordinator, not a vault: if it loses the lock while a write is
// in flight (FLUSHALL, a failover), two such writers may both succeed. The
// topic stays consistent (the last record by offset wins on every replica
// and survives compaction); only the loser's 412 is lost. Without Redis no
// definition can be written (ErrCoordinator); reads and delivery go on.
//
// # Secrets
//
// A definition never holds a plaintext secret: the access key's secret is
// sealed (envelope encryption, Sealer: package secrets) with the additional
// data secrets.AAD("integration", name, "secret_access_key"), so a sealed
// secret copied into another integration's record does not open.
package defs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"hitship/config"
	"hitship/kstore"
	"hitship/secrets"
)

// KeyPrefix starts the key of every definition in the integrations topic.
const KeyPrefix = "def/"

// LockTTL bounds how long a writer holds a name's lock.
const LockTTL = 30 * time.Second

// Definition is an integration created through the API: the fields of the
// config file's integration (config.Integration), its sealed secret, and
// who wrote it when.
type Definition struct {
	Name        string `json:"name"`
	ClientID    int64  `json:"client_id"`
	Region      string `json:"region"`
	Bucket      string `json:"bucket"`
	Prefix      string `json:"prefix,omitempty"`
	Format      string `json:"format"`
	Compression string `json:"compression,omitempty"`
	// Type is config.Integration's; SecurityLake is set for type
	// security_lake.
	Type         string               `json:"type,omitempty"`
	SecurityLake *config.SecurityLake `json:"security_lake,omitempty"`
	Events       []string             `json:"events,omitempty"`
	Endpoint     string               `json:"endpoint,omitempty"`
	PathStyle    bool                 `json:"path_style,omitempty"`
	Manifest     bool                 `json:"manifest,omitempty"`
	RoleARN      string               `json:"role_arn,omitempty"`
	AccessKeyID  string               `json:"access_key_id,omitempty"`
	// SealedSecret is the access key's secret, sealed (Sealer); empty for a
	// role. Never the plaintext.
	SealedSecret json.RawMessage `json:"sealed_secret,omitempty"`

	Version   int64     `json:"version"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by"`
	UpdatedAt time.Time `json:"updated_at"`
	UpdatedBy string    `json:"updated_by"`
}

// Sealer seals and opens secrets (envelope encryption: package secrets).
type Sealer interface {
	Seal(plaintext, aad []byte) (json.RawMessage, error)
	Open(sealed json.RawMessage, aad []byte) ([]byte, error)
	// Rewrap re-wraps a sealed secret under the newest key; false when it is
	// under it already (nothing to write).
	Rewrap(sealed json.RawMessage, aad []byte) (json.RawMessage, bool, error)
}

// Envelopes is the Sealer of a secrets.Sealer: its envelopes as JSON.
func Envelopes(s *secrets.Sealer) Sealer { return envelopes{s} }

type envelopes struct{ s *secrets.Sealer }

func (e envelopes) Seal(p, aad []byte) (json.RawMessage, error) {
	sealed, err := e.s.Seal(p, aad)
	if err != nil {
		return nil, err
	}
	return json.Marshal(sealed)
}

func (e envelopes) Open(raw json.RawMessage, aad []byte) ([]byte, error) {
	var sealed secrets.Sealed
	if err := json.Unmarshal(raw, &sealed); err != nil {
		return nil, fmt.Errorf("the sealed secret is not an envelope: %w", secrets.ErrMalformed)
	}
	return e.s.Open(sealed, aad)
}

func (e envelopes) Rewrap(raw json.RawMessage, aad []byte) (json.RawMessage, bool, error) {
	var sealed secrets.Sealed
	if err := json.Unmarshal(raw, &sealed); err != nil {
		return nil, false, fmt.Errorf("the sealed secret is not an envelope: %w", secrets.ErrMalformed)
	}
	if !e.s.NeedsRewrap(sealed) {
		return raw, false, nil
	}
	re, err := e.s.Rewrap(sealed, aad)
	if err != nil {
		return nil, false, err
	}
	out, err := json.Marshal(re)
	return out, err == nil, err
}

// Errors of the writes.
var (
	ErrExists      = errors.New("an integration of that name exists")
	ErrNotFound    = errors.New("no integration of that name was created through the API")
	ErrVersion     = errors.New("the integration changed since that version was read")
	ErrBusy        = errors.New("another change of this integration is in progress")
	ErrCoordinator = errors.New("redis, which coordinates changes of integrations, cannot be reached")
)

// secretAAD binds a sealed secret to its integration and field.
func secretAAD(name string) []byte { return secrets.AAD("integration", name, "secret_access_key") }

// Config configures a Store.
type Config struct {
	Map    *kstore.Map // the integrations topic, started
	Redis  redis.UniversalClient
	Lock   func(name string) string // the Redis key of name's writer lock (state.DefinitionLockKey)
	Sealer Sealer
	Now    func() time.Time // default time.Now
	// LockWait is how long a writer waits for another writer of the same
	// name before ErrBusy (default 5 s).
	LockWait time.Duration
}

// Store reads and writes definitions. Safe for concurrent use.
type Store struct{ cfg Config }

// New returns a Store.
func New(cfg Config) (*Store, error) {
	if cfg.Map == nil || cfg.Redis == nil || cfg.Lock == nil || cfg.Sealer == nil {
		return nil, errors.New("defs: Map, Redis, Lock and Sealer are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.LockWait <= 0 {
		cfg.LockWait = 5 * time.Second
	}
	return &Store{cfg: cfg}, nil
}

// IsKey reports whether a key of the integrations topic is a definition's,
// and of which integration.
func IsKey(key string) (name string, ok bool) { return strings.CutPrefix(key, KeyPrefix) }

// Get returns the definition of name as this replica's follower has it.
func (s *Store) Get(name string) (*Definition, bool) {
	v, ok := s.cfg.Map.Get(KeyPrefix + name)
	if !ok {
		return nil, false
	}
	d, err := decode(v)
	if err != nil {
		return nil, false // written by a newer version; List reports it
	}
	return d, true
}

// List returns every definition, by name. A record this version cannot read
// is left out and reported in the error (the others are returned).
func (s *Store) List() ([]*Definition, error) {
	var out []*Definition
	var bad []string
	for k, v := range s.cfg.Map.All() {
		name, ok := IsKey(k)
		if !ok {
			continue
		}
		d, err := decode(v)
		if err != nil {
			bad = append(bad, name)
			continue
		}
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b *Definition) int { return strings.Compare(a.Name, b.Name) })
	if len(bad) > 0 {
		slices.Sort(bad)
		return out, fmt.Errorf("defs: the definitions of %s cannot be read by this version of hitship; upgrade it", strings.Join(bad, ", "))
	}
	return out, nil
}

func decode(v []byte) (*Definition, error) {
	var d Definition
	if err := json.Unmarshal(v, &d); err != nil {
		return nil, err
	}
	if d.Name == "" || d.Version <= 0 {
		return nil, errors.New("defs: a definition without name or version")
	}
	return &d, nil
}

// Secret opens d's sealed secret ("" for a role).
func (s *Store) Secret(d *Definition) (string, error) {
	if len(d.SealedSecret) == 0 {
		return "", nil
	}
	p, err := s.cfg.Sealer.Open(d.SealedSecret, secretAAD(d.Name))
	if err != nil {
		return "", fmt.Errorf("integration %s: the stored secret access key cannot be opened: %w", d.Name, err)
	}
	return string(p), nil
}

// Create stores d as a new integration (by is who asks). secret is the access
// key's secret ("" for a role): it is sealed, never stored as it is.
// ErrExists if the name has a definition.
func (s *Store) Create(ctx context.Context, d Definition, secret, by string) (*Definition, error) {
	return s.write(ctx, d.Name, func(cur *Definition) (*Definition, error) {
		if cur != nil {
			return nil, ErrExists
		}
		now := s.cfg.Now().UTC()
		d.CreatedAt, d.CreatedBy, d.UpdatedAt, d.UpdatedBy = now, by, now, by
		return &d, s.seal(&d, secret, nil)
	})
}

// Replace replaces the definition of d.Name if its version is ifMatch.
// secret "" keeps the stored secret if the access key id did not change.
func (s *Store) Replace(ctx context.Context, d Definition, ifMatch int64, secret, by string) (*Definition, error) {
	return s.write(ctx, d.Name, func(cur *Definition) (*Definition, error) {
		if cur == nil {
			return nil, ErrNotFound
		}
		if cur.Version != ifMatch {
			return nil, ErrVersion
		}
		d.CreatedAt, d.CreatedBy = cur.CreatedAt, cur.CreatedBy
		d.UpdatedAt, d.UpdatedBy = s.cfg.Now().UTC(), by
		return &d, s.seal(&d, secret, cur)
	})
}

// RewrapAll re-wraps every stored secret that is not under the key ring's
// newest key (package secrets, "Rotating the key encryption key", step 4),
// each in a write of its own under the definition's lock; the rest of the
// definition and its version's meaning stay (a new version, by). It returns
// how many it rewrote; a definition that changed meanwhile is left to the
// next run.
func (s *Store) RewrapAll(ctx context.Context, by string) (int, error) {
	list, err := s.List()
	n := 0
	for _, d := range list {
		if len(d.SealedSecret) == 0 {
			continue
		}
		if _, need, rerr := s.cfg.Sealer.Rewrap(d.SealedSecret, secretAAD(d.Name)); rerr != nil || !need {
			err = errors.Join(err, rerr)
			continue
		}
		_, werr := s.write(ctx, d.Name, func(cur *Definition) (*Definition, error) {
			if cur == nil || cur.Version != d.Version {
				return nil, ErrVersion
			}
			re, need, err := s.cfg.Sealer.Rewrap(cur.SealedSecret, secretAAD(cur.Name))
			if err != nil || !need {
				return nil, errors.Join(err, ErrVersion)
			}
			next := *cur
			next.SealedSecret, next.UpdatedAt, next.UpdatedBy = re, s.cfg.Now().UTC(), by
			return &next, nil
		})
		switch {
		case werr == nil:
			n++
		case errors.Is(werr, ErrVersion): // changed meanwhile, or rewrapped by another replica
		default:
			err = errors.Join(err, fmt.Errorf("integration %s: %w", d.Name, werr))
		}
	}
	return n, err
}

// Delete removes name's definition if its version is ifMatch (0: any).
// It returns the definition removed.
func (s *Store) Delete(ctx context.Context, name string, ifMatch int64) (*Definition, error) {
	var gone *Definition
	_, err := s.write(ctx, name, func(cur *Definition) (*Definition, error) {
		if cur == nil {
			return nil, ErrNotFound
		}
		if ifMatch != 0 && cur.Version != ifMatch {
			return nil, ErrVersion
		}
		gone = cur
		return nil, nil
	})
	return gone, err
}

func (s *Store) seal(d *Definition, secret string, cur *Definition) error {
	d.SealedSecret = nil
	switch {
	case d.AccessKeyID == "":
	case secret != "":
		sealed, err := s.cfg.Sealer.Seal([]byte(secret), secretAAD(d.Name))
		if err != nil {
			return fmt.Errorf("integration %s: sealing the secret access key: %w", d.Name, err)
		}
		d.SealedSecret = sealed
	case cur != nil && cur.AccessKeyID == d.AccessKeyID && len(cur.SealedSecret) > 0:
		d.SealedSecret = cur.SealedSecret
	default:
		return fmt.Errorf("integration %s: an access key needs its secret_access_key (send it; it is stored sealed and never shown)", d.Name)
	}
	return nil
}

// write runs change under name's lock against the current definition (nil:
// none) and stores what it returns (nil: delete).
func (s *Store) write(ctx context.Context, name string, change func(cur *Definition) (*Definition, error)) (*Definition, error) {
	release, err := s.lock(ctx, name)
	if err != nil {
		return nil, err
	}
	defer release()
	if err := s.cfg.Map.Sync(ctx); err != nil {
		return nil, fmt.Errorf("reading the integrations topic to its end: %w", err)
	}
	cur, _ := s.Get(name)
	next, err := change(cur)
	if err != nil {
		return nil, err
	}
	if next == nil {
		return nil, s.cfg.Map.Delete(ctx, KeyPrefix+name)
	}
	next.Name = name
	next.Version = s.cfg.Now().UnixMilli()
	if cur != nil {
		next.Version = max(next.Version, cur.Version+1)
	}
	if e, ok := s.cfg.Map.Lookup(KeyPrefix + name); ok && e.Deleted() {
		next.Version = max(next.Version, e.Time.UnixMilli()+1) // after a delete, never a version seen before it
	}
	v, err := json.Marshal(next)
	if err != nil {
		return nil, err
	}
	if err := s.cfg.Map.Put(ctx, KeyPrefix+name, v); err != nil {
		return nil, err
	}
	return next, nil
}

var unlockScript = redis.NewScript(`if redis.call("GET", KEYS[1]) == ARGV[1] then return redis.call("DEL", KEYS[1]) end return 0`)

// lock takes name's writer lock, waiting up to LockWait for another writer.
func (s *Store) lock(ctx context.Context, name string) (release func(), err error) {
	var b [16]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	key := s.cfg.Lock(name)
	deadline := time.Now().Add(s.cfg.LockWait)
	for {
		ok, err := s.cfg.Redis.SetNX(ctx, key, token, LockTTL).Result()
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrCoordinator, err)
		}
		if ok {
			return func() {
				ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				defer cancel()
				_ = unlockScript.Run(ctx, s.cfg.Redis, []string{key}, token).Err()
			}, nil
		}
		if time.Now().After(deadline) {
			return nil, ErrBusy
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}
