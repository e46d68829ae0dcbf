package secrets

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const (
	goldenKeys = "golden-1:AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=\n" +
		"golden-2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=\n"
	goldenEnvelope  = `{"v":1,"kid":"golden-1","wdek":"9Hov9e5Aes2Ykr55mWf5WEqkGL64TCEEeH+CdPHqfRWeonotFh7S1G5ahMFiLRPSZx5IuKfVboLAeGP7","nonce":"JgU4HihnJujnFlDy","ct":"cZZw2Q2i8Ar1A+1uU2oNn+5cweOzfWObss0kv/hhID0Ozl8="}`
	goldenPlaintext = "golden secret value"
)

// FuzzOpen feeds arbitrary envelopes to Open and Rewrap. Neither may panic;
// only the one authentic envelope (the golden one, with its AAD) may open,
// since anything else would be a GCM forgery; and no error may show the
// plaintext or a key.
func FuzzOpen(f *testing.F) {
	kr, err := ParseKeyring(goldenKeys, "golden keys")
	if err != nil {
		f.Fatal(err)
	}
	s := sealerOf(f, kr)
	var golden Sealed
	if err := json.Unmarshal([]byte(goldenEnvelope), &golden); err != nil {
		f.Fatal(err)
	}
	aad := AAD("integration", "acme", "secret_access_key")
	keyBytes := [][]byte{kr.keys["golden-1"].b, kr.keys["golden-2"].b}

	f.Add(golden.Version, golden.KeyID, golden.WrappedKey, golden.Nonce, golden.Ciphertext, aad)
	f.Add(golden.Version, "golden-2", golden.WrappedKey, golden.Nonce, golden.Ciphertext, aad)
	f.Add(golden.Version, "nope", golden.WrappedKey, golden.Nonce, golden.Ciphertext, aad)
	f.Add(2, golden.KeyID, golden.WrappedKey, golden.Nonce, golden.Ciphertext, aad)
	f.Add(golden.Version, golden.KeyID, golden.WrappedKey[:40], golden.Nonce[:3], golden.Ciphertext[:4], aad[:5])
	f.Add(0, "", []byte{}, []byte{}, []byte{}, []byte{})

	f.Fuzz(func(t *testing.T, version int, kid string, wdek, nonce, ct, aadIn []byte) {
		in := Sealed{Version: version, KeyID: kid, WrappedKey: wdek, Nonce: nonce, Ciphertext: ct}
		authentic := version == golden.Version && kid == golden.KeyID && bytes.Equal(wdek, golden.WrappedKey) &&
			bytes.Equal(nonce, golden.Nonce) && bytes.Equal(ct, golden.Ciphertext) && bytes.Equal(aadIn, aad)

		got, err := s.Open(in, aadIn)
		switch {
		case err == nil && !authentic:
			t.Fatalf("Open accepted an envelope that is not the authentic one: %+v aad %x", in, aadIn)
		case err == nil && string(got) != goldenPlaintext:
			t.Fatalf("Open = %q, want %q", got, goldenPlaintext)
		case err != nil && authentic:
			t.Fatalf("Open refused the authentic envelope: %v", err)
		case err != nil:
			assertNoLeak(t, err.Error(), append(keyBytes, []byte(goldenPlaintext))...)
		}

		out, err := s.Rewrap(in, aadIn)
		switch {
		case err == nil && !authentic:
			t.Fatalf("Rewrap accepted an envelope that is not the authentic one: %+v", in)
		case err == nil:
			if out.KeyID != "golden-2" || !bytes.Equal(out.Ciphertext, ct) {
				t.Fatalf("Rewrap gave key %q, want golden-2 with the ciphertext kept", out.KeyID)
			}
		case authentic:
			t.Fatalf("Rewrap refused the authentic envelope: %v", err)
		default:
			assertNoLeak(t, err.Error(), append(keyBytes, []byte(goldenPlaintext))...)
		}
	})
}

// FuzzParseKeyring feeds arbitrary text to ParseKeyring. It must not panic;
// a keyring it returns has valid ids, the last one newest; and its errors
// never quote the key part of an entry (what follows the ':', or a whole
// entry without one), which may be key material.
func FuzzParseKeyring(f *testing.F) {
	f.Add("k1:AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=")
	f.Add("# keys\nk1:AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=\r\nk2:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=\n")
	f.Add("k1:AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=;k1:ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=")
	f.Add("k1:AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=\nk2:AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=")
	f.Add("ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=")
	f.Add("ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=:AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=")
	f.Add("k2:AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcY")
	f.Add("k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
	f.Add("k1:%%%\n:x\n;;\n")
	f.Add("")

	const source = "fuzz keys"
	f.Fuzz(func(t *testing.T, text string) {
		kr, err := ParseKeyring(text, source)
		if err == nil {
			ids := kr.IDs()
			if len(ids) == 0 || kr.Newest() != ids[len(ids)-1] {
				t.Fatalf("keyring ids %v newest %q", ids, kr.Newest())
			}
			for _, id := range ids {
				if p := idProblem(id); p != "" {
					t.Fatalf("keyring holds an invalid id %q: %s", id, p)
				}
				if len(kr.keys[id].b) != KeySize {
					t.Fatalf("key %q is %d bytes", id, len(kr.keys[id].b))
				}
			}
			return
		}
		msg := err.Error()
		// What an error may legitimately contain: valid ids (the error names
		// them) and the fixed text around them.
		var allowed []string
		var keyParts []string
		for _, line := range strings.Split(text, "\n") {
			for _, entry := range strings.Split(line, ";") {
				entry = strings.TrimSpace(entry)
				id, key, ok := strings.Cut(entry, ":")
				if !ok {
					keyParts = append(keyParts, entry)
					continue
				}
				if id = strings.TrimSpace(id); idProblem(id) == "" {
					allowed = append(allowed, id)
				}
				keyParts = append(keyParts, strings.TrimSpace(key))
			}
		}
		allowed = append(allowed, source, generateHint, "1-64 of A-Z a-z 0-9 . _ -, such as k1 or 2026-12", "ID:BASE64KEY")
		// What is left of the message without the allowed parts (ids as the
		// error quotes them, the fixed text) must not hold a key part: a
		// key part may be a substring of an id plus its closing quote
		// ("000…0:" beside an id "000…000"), which quotes nothing.
		rest := msg
		slices.SortFunc(allowed, func(a, b string) int { return len(b) - len(a) }) // longest first
		for _, a := range allowed {
			rest = strings.ReplaceAll(rest, strconv.Quote(a), "")
			rest = strings.ReplaceAll(rest, a, "")
		}
	parts:
		for _, p := range keyParts {
			if len(p) < 12 || strings.HasPrefix(p, "#") || !strings.Contains(rest, p) {
				continue
			}
			for _, a := range allowed {
				if strings.Contains(a, p) {
					continue parts
				}
			}
			t.Fatalf("error quotes %q from the input: %s", p, msg)
		}
	})
}
