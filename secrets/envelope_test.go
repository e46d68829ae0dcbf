package secrets

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func sealerOf(t testing.TB, kr *Keyring) *Sealer {
	t.Helper()
	s, err := NewSealer(kr)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var acmeKey = AAD("integration", "acme", "secret_access_key")

func TestSealOpenRoundTrip(t *testing.T) {
	s := sealerOf(t, keyringOf(t, newTestKey("k1")))
	for _, plaintext := range [][]byte{
		[]byte(plainSecret),
		{},
		bytes.Repeat([]byte{0, 1, 2, 0xff}, 1<<14),
	} {
		sealed, err := s.Seal(plaintext, acmeKey)
		if err != nil {
			t.Fatal(err)
		}
		if sealed.Version != 1 || sealed.KeyID != "k1" || len(sealed.WrappedKey) != 60 || len(sealed.Nonce) != 12 ||
			len(sealed.Ciphertext) != len(plaintext)+16 {
			t.Fatalf("sealed v%d kid %q wdek %d nonce %d ct %d; want v1 k1 60 12 %d",
				sealed.Version, sealed.KeyID, len(sealed.WrappedKey), len(sealed.Nonce), len(sealed.Ciphertext), len(plaintext)+16)
		}
		if len(plaintext) > 0 && bytes.Contains(sealed.Ciphertext, plaintext[:min(len(plaintext), 16)]) {
			t.Fatal("the ciphertext contains the plaintext")
		}
		// Through the JSON form, as it is stored.
		js, err := json.Marshal(sealed)
		if err != nil {
			t.Fatal(err)
		}
		var back Sealed
		if err := json.Unmarshal(js, &back); err != nil {
			t.Fatal(err)
		}
		got, err := s.Open(back, acmeKey)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, plaintext) {
			t.Fatalf("Open gave %d bytes, not the %d sealed", len(got), len(plaintext))
		}
	}
}

func TestSealedJSONForm(t *testing.T) {
	s := sealerOf(t, keyringOf(t, newTestKey("k1")))
	sealed, err := s.Seal([]byte(plainSecret), acmeKey)
	if err != nil {
		t.Fatal(err)
	}
	js, err := json.Marshal(sealed)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(js), `{"v":1,"kid":"k1","wdek":"`) {
		t.Fatalf("JSON %s does not start with the version and key id", js)
	}
	var fields map[string]any
	if err := json.Unmarshal(js, &fields); err != nil {
		t.Fatal(err)
	}
	var names []string
	for k := range fields {
		names = append(names, k)
	}
	if len(names) != 5 || fields["v"] != 1.0 || fields["kid"] != "k1" ||
		fields["wdek"] == nil || fields["nonce"] == nil || fields["ct"] == nil {
		t.Fatalf("JSON fields %v, want exactly v kid wdek nonce ct", fields)
	}
}

// TestOpenGolden opens an envelope sealed by this package when the format
// was made: what is stored today must open after any change to the code.
func TestOpenGolden(t *testing.T) {
	kr, err := ParseKeyring(goldenKeys, "golden keys")
	if err != nil {
		t.Fatal(err)
	}
	var sealed Sealed
	if err := json.Unmarshal([]byte(goldenEnvelope), &sealed); err != nil {
		t.Fatal(err)
	}
	got, err := sealerOf(t, kr).Open(sealed, acmeKey)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != goldenPlaintext {
		t.Fatalf("Open = %q, want %q", got, goldenPlaintext)
	}
	again, err := json.Marshal(sealed)
	if err != nil {
		t.Fatal(err)
	}
	if string(again) != goldenEnvelope {
		t.Fatalf("the JSON form changed:\n got %s\nwant %s", again, goldenEnvelope)
	}
}

func TestSealTwiceDiffers(t *testing.T) {
	s := sealerOf(t, keyringOf(t, newTestKey("k1")))
	a, err := s.Seal([]byte(plainSecret), acmeKey)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Seal([]byte(plainSecret), acmeKey)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.Nonce, b.Nonce) || bytes.Equal(a.Ciphertext, b.Ciphertext) || bytes.Equal(a.WrappedKey, b.WrappedKey) {
		t.Fatal("two Seals of one plaintext share a nonce, ciphertext or wrapped key")
	}
	// Fresh data keys, not only fresh nonces: the unwrapped keys differ.
	kr := s.keys.(*Keyring)
	dekA, err := kr.Unwrap(a.KeyID, a.WrappedKey, append([]byte(labelWrap), acmeKey...))
	if err != nil {
		t.Fatal(err)
	}
	dekB, err := kr.Unwrap(b.KeyID, b.WrappedKey, append([]byte(labelWrap), acmeKey...))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(dekA, dekB) {
		t.Fatal("two Seals used one data key")
	}
}

// TestOpenRefusesTampering alters each field of an envelope in turn; every
// alteration fails with the kind and message expected, and no error shows
// the plaintext, a key encryption key or the data key.
func TestOpenRefusesTampering(t *testing.T) {
	k1, k2 := newTestKey("k1"), newTestKey("k2")
	kr := keyringOf(t, k1, k2)
	s := sealerOf(t, kr)
	sealed, err := s.Seal([]byte(plainSecret), acmeKey)
	if err != nil {
		t.Fatal(err)
	}
	dek, err := kr.Unwrap(sealed.KeyID, sealed.WrappedKey, append([]byte(labelWrap), acmeKey...))
	if err != nil {
		t.Fatal(err)
	}
	flip := func(b []byte, i int) []byte {
		c := bytes.Clone(b)
		c[(i+len(c))%len(c)] ^= 0x01
		return c
	}
	tests := []struct {
		name   string
		change func(*Sealed)
		kind   error
		want   string
	}{
		{"ciphertext first byte", func(s *Sealed) { s.Ciphertext = flip(s.Ciphertext, 0) }, ErrNotAuthentic, `the ciphertext sealed under key "k2" does not authenticate`},
		{"ciphertext tag", func(s *Sealed) { s.Ciphertext = flip(s.Ciphertext, -1) }, ErrNotAuthentic, "does not authenticate"},
		{"ciphertext truncated", func(s *Sealed) { s.Ciphertext = s.Ciphertext[:len(s.Ciphertext)-1] }, ErrNotAuthentic, "does not authenticate"},
		{"ciphertext shorter than a tag", func(s *Sealed) { s.Ciphertext = s.Ciphertext[:15] }, ErrMalformed, "ciphertext is 15 bytes, shorter than the 16-byte tag"},
		{"ciphertext missing", func(s *Sealed) { s.Ciphertext = nil }, ErrMalformed, "ciphertext is 0 bytes"},
		{"wrapped key nonce", func(s *Sealed) { s.WrappedKey = flip(s.WrappedKey, 0) }, ErrNotAuthentic, `the data key wrapped under key "k2" does not authenticate`},
		{"wrapped key body", func(s *Sealed) { s.WrappedKey = flip(s.WrappedKey, 20) }, ErrNotAuthentic, "does not authenticate"},
		{"wrapped key tag", func(s *Sealed) { s.WrappedKey = flip(s.WrappedKey, -1) }, ErrNotAuthentic, "does not authenticate"},
		{"wrapped key truncated", func(s *Sealed) { s.WrappedKey = s.WrappedKey[:59] }, ErrMalformed, "the wrapped data key is 59 bytes"},
		{"wrapped key missing", func(s *Sealed) { s.WrappedKey = nil }, ErrMalformed, "the wrapped data key is 0 bytes"},
		{"nonce", func(s *Sealed) { s.Nonce = flip(s.Nonce, 5) }, ErrNotAuthentic, "nonce or ciphertext was altered"},
		{"nonce short", func(s *Sealed) { s.Nonce = s.Nonce[:11] }, ErrMalformed, "nonce is 11 bytes, not 12"},
		{"nonce missing", func(s *Sealed) { s.Nonce = nil }, ErrMalformed, "nonce is 0 bytes"},
		{"key id of the other key", func(s *Sealed) { s.KeyID = "k1" }, ErrNotAuthentic, `the data key wrapped under key "k1" does not authenticate`},
		{"key id unknown", func(s *Sealed) { s.KeyID = "k9" }, ErrUnknownKey, `sealed under key "k9", which is not in the keyring`},
		{"key id missing", func(s *Sealed) { s.KeyID = "" }, ErrMalformed, `no key id ("kid")`},
		{"key id not an id", func(s *Sealed) { s.KeyID = k1.b64 }, ErrMalformed, "the envelope's key id is not a key id"},
		{"version newer", func(s *Sealed) { s.Version = 2 }, ErrMalformed, "the envelope is version 2; this build reads version 1"},
		{"version missing", func(s *Sealed) { s.Version = 0 }, ErrMalformed, `no version ("v")`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bad := sealed
			tt.change(&bad)
			got, err := s.Open(bad, acmeKey)
			if err == nil {
				t.Fatalf("Open of a tampered envelope gave %q, want an error", got)
			}
			if !errors.Is(err, tt.kind) {
				t.Fatalf("error %v, want one that is %v", err, tt.kind)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
			assertNoLeak(t, err.Error(), []byte(plainSecret), k1.b, k2.b, dek)
			if _, err := s.Rewrap(bad, acmeKey); !errors.Is(err, tt.kind) {
				t.Fatalf("Rewrap of the tampered envelope: %v, want one that is %v", err, tt.kind)
			}
		})
	}
	if got, err := s.Open(sealed, acmeKey); err != nil || string(got) != plainSecret {
		t.Fatalf("the untouched envelope: %v, want it to open", err)
	}
}

func TestOpenChecksAAD(t *testing.T) {
	k1 := newTestKey("k1")
	s := sealerOf(t, keyringOf(t, k1))
	sealed, err := s.Seal([]byte(plainSecret), acmeKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, aad := range [][]byte{
		AAD("integration", "globex", "secret_access_key"), // another integration
		AAD("integration", "acme", "external_id"),         // another field
		AAD("integration", "acme", "secret_access_key", ""),
		acmeKey[:len(acmeKey)-1],
	} {
		_, err := s.Open(sealed, aad)
		if !errors.Is(err, ErrNotAuthentic) || !strings.Contains(err.Error(), "another record or field (the AAD differs)") {
			t.Fatalf("Open with AAD %q: %v, want ErrNotAuthentic naming the AAD", aad, err)
		}
		assertNoLeak(t, err.Error(), []byte(plainSecret), k1.b)
	}
	// The AAD is bound into the data encryption too, not only the key
	// wrapping: a data key re-wrapped for another AAD still does not open
	// the ciphertext under that AAD.
	kr := s.keys.(*Keyring)
	dek, err := kr.Unwrap(sealed.KeyID, sealed.WrappedKey, append([]byte(labelWrap), acmeKey...))
	if err != nil {
		t.Fatal(err)
	}
	other := AAD("integration", "globex", "secret_access_key")
	moved := sealed
	if moved.KeyID, moved.WrappedKey, err = kr.Wrap(dek, append([]byte(labelWrap), other...)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Open(moved, other); !errors.Is(err, ErrNotAuthentic) || !strings.Contains(err.Error(), "the ciphertext sealed under key") {
		t.Fatalf("Open of a ciphertext under another AAD with its key re-wrapped: %v, want the ciphertext to fail", err)
	}
	for name, f := range map[string]func() error{
		"Seal":   func() error { _, err := s.Seal([]byte(plainSecret), nil); return err },
		"Open":   func() error { _, err := s.Open(sealed, nil); return err },
		"Rewrap": func() error { _, err := s.Rewrap(sealed, []byte{}); return err },
	} {
		err := f()
		if err == nil || !strings.Contains(err.Error(), name+" needs an AAD naming where the value belongs") {
			t.Fatalf("%s without an AAD: %v, want an error saying it needs one", name, err)
		}
		assertNoLeak(t, err.Error(), []byte(plainSecret), k1.b)
	}
}

func TestAADIsUnambiguous(t *testing.T) {
	pairs := [][2][]string{
		{{"ab", "c"}, {"a", "bc"}},
		{{"a", ""}, {"a"}},
		{{"", "a"}, {"a"}},
		{{"integration", "acme", "key"}, {"integration", "acmekey"}},
	}
	for _, p := range pairs {
		if bytes.Equal(AAD(p[0]...), AAD(p[1]...)) {
			t.Errorf("AAD(%q) == AAD(%q)", p[0], p[1])
		}
	}
	if !bytes.Equal(AAD("a", "b"), AAD("a", "b")) {
		t.Error("AAD is not deterministic")
	}
}

// TestRotation walks the operator's procedure in the package doc.
func TestRotation(t *testing.T) {
	k1, k2 := newTestKey("k1"), newTestKey("k2")
	old := sealerOf(t, keyringOf(t, k1))
	rewrapMe, err := old.Seal([]byte(plainSecret), acmeKey)
	if err != nil {
		t.Fatal(err)
	}
	leaveMe, err := old.Seal([]byte("not rewrapped"), AAD("integration", "globex", "secret_access_key"))
	if err != nil {
		t.Fatal(err)
	}
	if old.NeedsRewrap(rewrapMe) {
		t.Fatal("NeedsRewrap = true for an envelope under the newest key")
	}

	// k2 added as the last line: it wraps, k1 still opens.
	both := sealerOf(t, keyringOf(t, k1, k2))
	if got, err := both.Open(rewrapMe, acmeKey); err != nil || string(got) != plainSecret {
		t.Fatalf("Open under k1 after adding k2: %q, %v", got, err)
	}
	if !both.NeedsRewrap(rewrapMe) {
		t.Fatal("NeedsRewrap = false for an envelope under k1 when k2 is newest")
	}
	fresh, err := both.Seal([]byte(plainSecret), acmeKey)
	if err != nil || fresh.KeyID != "k2" {
		t.Fatalf("Seal after adding k2 used key %q (%v), want k2", fresh.KeyID, err)
	}
	rewrapped, err := both.Rewrap(rewrapMe, acmeKey)
	if err != nil {
		t.Fatal(err)
	}
	if rewrapped.KeyID != "k2" || both.NeedsRewrap(rewrapped) {
		t.Fatalf("Rewrap gave key %q, want k2", rewrapped.KeyID)
	}
	if !bytes.Equal(rewrapped.Ciphertext, rewrapMe.Ciphertext) || !bytes.Equal(rewrapped.Nonce, rewrapMe.Nonce) {
		t.Fatal("Rewrap changed the nonce or ciphertext")
	}
	if bytes.Equal(rewrapped.WrappedKey, rewrapMe.WrappedKey) {
		t.Fatal("Rewrap did not change the wrapped key")
	}
	if got, err := both.Open(rewrapped, acmeKey); err != nil || string(got) != plainSecret {
		t.Fatalf("Open of the rewrapped envelope: %q, %v", got, err)
	}
	again, err := both.Rewrap(rewrapped, acmeKey)
	if err != nil || !reflect.DeepEqual(again, rewrapped) {
		t.Fatalf("Rewrap of an envelope under the newest key changed it (%v)", err)
	}
	if _, err := both.Rewrap(rewrapMe, AAD("integration", "globex", "secret_access_key")); !errors.Is(err, ErrNotAuthentic) {
		t.Fatalf("Rewrap with another AAD: %v, want ErrNotAuthentic", err)
	}

	// k1's line removed: the rewrapped envelope opens, the other names k1.
	onlyK2 := sealerOf(t, keyringOf(t, k2))
	if got, err := onlyK2.Open(rewrapped, acmeKey); err != nil || string(got) != plainSecret {
		t.Fatalf("Open of the rewrapped envelope without k1: %q, %v", got, err)
	}
	_, err = onlyK2.Open(leaveMe, AAD("integration", "globex", "secret_access_key"))
	want := `sealed under key "k1", which is not in the keyring (it holds k2); add the line for "k1" from the old keys file back ` +
		`(anywhere above the last line, so the newest key stays newest) and restart — remove a key only once nothing is sealed under it`
	if !errors.Is(err, ErrUnknownKey) || err.Error() != want {
		t.Fatalf("Open of an envelope under a removed key:\n got %v\nwant %s", err, want)
	}
	assertNoLeak(t, err.Error(), []byte("not rewrapped"), k1.b, k2.b)
	if _, err := onlyK2.Rewrap(leaveMe, AAD("integration", "globex", "secret_access_key")); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Rewrap of an envelope under a removed key: %v, want ErrUnknownKey", err)
	}
}

func TestNewSealerNeedsKeys(t *testing.T) {
	s, err := NewSealer(nil)
	if err == nil || s != nil || !strings.Contains(err.Error(), "NewSealer needs a KeyEncrypter") {
		t.Fatalf("NewSealer(nil) = %v, %v; want nil and an error naming what it needs", s, err)
	}
}

// TestSealerConcurrent backs the doc's "safe for concurrent use" under -race.
func TestSealerConcurrent(t *testing.T) {
	s := sealerOf(t, keyringOf(t, newTestKey("k1"), newTestKey("k2")))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			aad := AAD("integration", fmt.Sprint(g), "secret_access_key")
			for i := range 50 {
				want := fmt.Sprintf("secret %d/%d", g, i)
				sealed, err := s.Seal([]byte(want), aad)
				if err != nil {
					errs <- err
					return
				}
				got, err := s.Open(sealed, aad)
				if err != nil || string(got) != want {
					errs <- fmt.Errorf("Open = %q, %v; want %q", got, err, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
