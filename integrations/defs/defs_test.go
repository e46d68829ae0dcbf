package defs_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"hitship/integrations/defs"
	"hitship/internal/testenv"
	"hitship/kstore"
	"hitship/secrets"
	"hitship/state"
)

const topic = "hitship-integrations"

// newSealer is the production envelope encryption under a fresh key ring.
func newSealer(t *testing.T) defs.Sealer {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	kr, err := secrets.ParseKeyring("k1:"+base64.StdEncoding.EncodeToString(key), "test")
	if err != nil {
		t.Fatal(err)
	}
	sl, err := secrets.NewSealer(kr)
	if err != nil {
		t.Fatal(err)
	}
	return defs.Envelopes(sl)
}

// replica is one hitship replica's store: its own follower of the topic.
type replica struct {
	m *kstore.Map
	s *defs.Store
}

func newReplica(t *testing.T, k *testenv.Kafka, r *testenv.Redis, sealer defs.Sealer) *replica {
	t.Helper()
	m, err := kstore.New(kstore.Config{Brokers: k.Addrs(), Topic: topic, MaxWait: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = m.Close() })
	s, err := defs.New(defs.Config{Map: m, Redis: r.Client(), Sealer: sealer, LockWait: time.Second,
		Lock: func(n string) string { return state.DefinitionLockKey("t:", n) }})
	if err != nil {
		t.Fatal(err)
	}
	return &replica{m, s}
}

func acme() defs.Definition {
	return defs.Definition{Name: "acme", ClientID: 7, Region: "us-east-1", Bucket: "acme-hits", Format: "ndjson",
		AccessKeyID: "AKIAEXAMPLEKEY000001"}
}

const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzSECRET01"

// TestCreatedThroughOneReplicaOnAll: a definition written through replica A
// is on replica B within 2 s, holds no plaintext secret, opens on B, and a
// second create of the name is refused.
func TestCreatedThroughOneReplicaOnAll(t *testing.T) {
	k := testenv.MustKafka(t, testenv.KafkaOptions{})
	r := testenv.MustRedis(t, testenv.RedisOptions{})
	sealer := newSealer(t)
	a, b := newReplica(t, k, r, sealer), newReplica(t, k, r, sealer)
	ctx := t.Context()
	d, err := a.s.Create(ctx, acme(), secret, "token:ops")
	if err != nil {
		t.Fatal(err)
	}
	if d.Version <= 0 || d.CreatedBy != "token:ops" || len(d.SealedSecret) == 0 {
		t.Fatalf("created %+v", d)
	}
	deadline := time.Now().Add(2 * time.Second)
	var got *defs.Definition
	for ok := false; !ok; got, ok = b.s.Get("acme") {
		if time.Now().After(deadline) {
			t.Fatal("replica B does not have the definition 2 s after A wrote it")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got.Version != d.Version || got.Bucket != "acme-hits" {
		t.Fatalf("B has %+v", got)
	}
	if s, err := b.s.Secret(got); err != nil || s != secret {
		t.Fatalf("B opens the secret: %q, %v", s, err)
	}
	for key, v := range b.m.All() {
		if bytes.Contains(v, []byte(secret)) || bytes.Contains(v, []byte("wJalrXUtnFEMI")) {
			t.Fatalf("record %s holds the plaintext secret: %s", key, v)
		}
	}
	if _, err := b.s.Create(ctx, acme(), secret, "token:ops"); !errors.Is(err, defs.ErrExists) {
		t.Fatalf("second create: %v, want ErrExists", err)
	}
	// A sealed secret copied into another integration does not open there.
	other := *got
	other.Name = "other"
	if _, err := b.s.Secret(&other); err == nil {
		t.Fatal("a sealed secret opened under another integration's name")
	}
}

// TestReplaceIsConditional: a replace with the version read succeeds and
// moves the version on; one with a stale version gets ErrVersion; of two
// concurrent replaces from two replicas with the same version exactly one
// succeeds; the secret is kept when the key id stays, required when it
// changes.
func TestReplaceIsConditional(t *testing.T) {
	k := testenv.MustKafka(t, testenv.KafkaOptions{})
	r := testenv.MustRedis(t, testenv.RedisOptions{})
	sealer := newSealer(t)
	a, b := newReplica(t, k, r, sealer), newReplica(t, k, r, sealer)
	ctx := t.Context()
	v1, err := a.s.Create(ctx, acme(), secret, "a")
	if err != nil {
		t.Fatal(err)
	}
	moved := acme()
	moved.Bucket = "acme-hits-2"
	v2, err := b.s.Replace(ctx, moved, v1.Version, "", "b")
	if err != nil {
		t.Fatal(err)
	}
	if v2.Version <= v1.Version || v2.CreatedBy != "a" || v2.UpdatedBy != "b" {
		t.Fatalf("replaced %+v after %+v", v2, v1)
	}
	if s, err := a.s.Secret(v2); err != nil || s != secret {
		t.Fatalf("secret kept across the replace: %q, %v", s, err)
	}
	if _, err := a.s.Replace(ctx, acme(), v1.Version, "", "a"); !errors.Is(err, defs.ErrVersion) {
		t.Fatalf("stale replace: %v, want ErrVersion", err)
	}
	rekey := moved
	rekey.AccessKeyID = "AKIAEXAMPLEKEY000002"
	if _, err := a.s.Replace(ctx, rekey, v2.Version, "", "a"); err == nil || errors.Is(err, defs.ErrVersion) {
		t.Fatalf("a new key id without its secret: %v, want a plain-words refusal", err)
	}

	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, rep := range []*replica{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			d := moved
			d.Prefix = []string{"a/", "b/"}[i]
			_, errs[i] = rep.s.Replace(ctx, d, v2.Version, "", "x")
		}()
	}
	wg.Wait()
	ok, stale := 0, 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, defs.ErrVersion):
			stale++
		default:
			t.Fatalf("concurrent replace: %v", err)
		}
	}
	if ok != 1 || stale != 1 {
		t.Fatalf("concurrent replaces with one version: %d succeeded, %d refused; want 1 and 1", ok, stale)
	}
}

// TestDeleteAndCreateAgain: a delete with a stale version is refused; after
// a delete the name is free, and the new integration's version is above
// every version the old one had, so an old If-Match never matches it.
func TestDeleteAndCreateAgain(t *testing.T) {
	k := testenv.MustKafka(t, testenv.KafkaOptions{})
	r := testenv.MustRedis(t, testenv.RedisOptions{})
	sealer := newSealer(t)
	a := newReplica(t, k, r, sealer)
	ctx := t.Context()
	v1, err := a.s.Create(ctx, acme(), secret, "a")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.s.Delete(ctx, "acme", v1.Version-1); !errors.Is(err, defs.ErrVersion) {
		t.Fatalf("stale delete: %v", err)
	}
	if gone, err := a.s.Delete(ctx, "acme", v1.Version); err != nil || gone.Version != v1.Version {
		t.Fatalf("delete: %v, %v", gone, err)
	}
	if _, ok := a.s.Get("acme"); ok {
		t.Fatal("deleted definition still read")
	}
	if _, err := a.s.Delete(ctx, "acme", 0); !errors.Is(err, defs.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	v2, err := a.s.Create(ctx, acme(), secret, "a")
	if err != nil || v2.Version <= v1.Version {
		t.Fatalf("created again: %+v, %v (before: version %d)", v2, err, v1.Version)
	}
	if list, err := a.s.List(); err != nil || len(list) != 1 || list[0].Version != v2.Version {
		t.Fatalf("list %v, %v", list, err)
	}
}

// TestWritesNeedRedisReadsDoNot: without Redis no definition is written
// (ErrCoordinator, no record), and every replica still reads them all.
func TestWritesNeedRedisReadsDoNot(t *testing.T) {
	k := testenv.MustKafka(t, testenv.KafkaOptions{})
	r := testenv.MustRedis(t, testenv.RedisOptions{})
	sealer := newSealer(t)
	a := newReplica(t, k, r, sealer)
	ctx := t.Context()
	if _, err := a.s.Create(ctx, acme(), secret, "a"); err != nil {
		t.Fatal(err)
	}
	if err := r.Stop(); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	other := acme()
	other.Name = "other"
	if _, err := a.s.Create(cctx, other, secret, "a"); !errors.Is(err, defs.ErrCoordinator) {
		t.Fatalf("create without Redis: %v, want ErrCoordinator", err)
	}
	if _, ok := a.s.Get("other"); ok {
		t.Fatal("a definition was written without its lock")
	}
	if _, ok := a.s.Get("acme"); !ok {
		t.Fatal("reads need Redis")
	}
}

// TestRewrapAllMovesSecretsToTheNewestKey: after a key is added as the
// newest, RewrapAll re-wraps every stored secret under it (once: a second run
// rewrites nothing), after which the old key can leave the key ring.
func TestRewrapAllMovesSecretsToTheNewestKey(t *testing.T) {
	k := testenv.MustKafka(t, testenv.KafkaOptions{})
	r := testenv.MustRedis(t, testenv.RedisOptions{})
	line := func(id string) string {
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		return id + ":" + base64.StdEncoding.EncodeToString(key)
	}
	k1, k2 := line("k1"), line("k2")
	sealerOf := func(text string) defs.Sealer {
		kr, err := secrets.ParseKeyring(text, "test")
		if err != nil {
			t.Fatal(err)
		}
		sl, err := secrets.NewSealer(kr)
		if err != nil {
			t.Fatal(err)
		}
		return defs.Envelopes(sl)
	}
	old := newReplica(t, k, r, sealerOf(k1))
	if _, err := old.s.Create(t.Context(), acme(), secret, "a"); err != nil {
		t.Fatal(err)
	}
	rotated := newReplica(t, k, r, sealerOf(k1+"\n"+k2))
	if n, err := rotated.s.RewrapAll(t.Context(), "hitship-rewrap"); err != nil || n != 1 {
		t.Fatalf("RewrapAll: %d, %v; want 1 rewritten", n, err)
	}
	if n, err := rotated.s.RewrapAll(t.Context(), "hitship-rewrap"); err != nil || n != 0 {
		t.Fatalf("second RewrapAll: %d, %v; want nothing to do", n, err)
	}
	only2 := newReplica(t, k, r, sealerOf(k2))
	d, ok := only2.s.Get("acme")
	if !ok || d.UpdatedBy != "hitship-rewrap" || !strings.Contains(string(d.SealedSecret), `"kid":"k2"`) {
		t.Fatalf("after RewrapAll: %+v", d)
	}
	if got, err := only2.s.Secret(d); err != nil || got != secret {
		t.Fatalf("with k2 alone: %q, %v", got, err)
	}
}
