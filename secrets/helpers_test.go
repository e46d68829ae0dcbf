package secrets

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"
)

// testKey is a key encryption key as a test writes it into a keyring.
type testKey struct {
	id  string
	b   []byte
	b64 string
}

func newTestKey(id string) testKey {
	b := make([]byte, KeySize)
	_, _ = rand.Read(b)
	return testKey{id: id, b: b, b64: base64.StdEncoding.EncodeToString(b)}
}

func (k testKey) line() string { return k.id + ":" + k.b64 }

// keyringOf is a keyring of keys, the last the newest.
func keyringOf(t testing.TB, keys ...testKey) *Keyring {
	t.Helper()
	var lines []string
	for _, k := range keys {
		lines = append(lines, k.line())
	}
	kr, err := ParseKeyring(strings.Join(lines, "\n"), "test keys")
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// leaks says how text shows one of the secrets (raw, base64 with or without
// padding, URL base64, hex), "" when it shows none.
func leaks(text string, secrets ...[]byte) string {
	for _, s := range secrets {
		if len(s) == 0 {
			continue
		}
		forms := map[string]string{
			"raw":        string(s),
			"base64":     base64.StdEncoding.EncodeToString(s),
			"raw base64": base64.RawStdEncoding.EncodeToString(s),
			"url base64": base64.RawURLEncoding.EncodeToString(s),
			"hex":        hex.EncodeToString(s),
		}
		for how, form := range forms {
			if strings.Contains(text, form) {
				return how
			}
		}
	}
	return ""
}

func assertNoLeak(t testing.TB, text string, secrets ...[]byte) {
	t.Helper()
	if how := leaks(text, secrets...); how != "" {
		t.Fatalf("text shows a secret (%s): %s", how, text)
	}
}
