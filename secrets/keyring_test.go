package secrets

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseKeyring(t *testing.T) {
	k1, k2, k3 := newTestKey("k1"), newTestKey("2026-12_b.x"), newTestKey("k3")
	tests := []struct {
		name string
		text string
		ids  []string
	}{
		{"one key", k1.line(), []string{"k1"}},
		{"last line is newest", k1.line() + "\n" + k2.line() + "\n", []string{"k1", "2026-12_b.x"}},
		{"comments, blank lines, CRLF, spaces", "# keys for hitship\r\n\r\n  " + k1.id + " : " + k1.b64 + "  \r\n# rotated 2026-12; k1 stays until rewrapped\r\n" + k2.line() + "\r\n", []string{"k1", "2026-12_b.x"}},
		{"';' separates entries", k1.line() + ";" + k2.line() + "; " + k3.line() + ";", []string{"k1", "2026-12_b.x", "k3"}},
		{"';' and newlines mixed, '#' entry skipped", k1.line() + ";#old\n" + k2.line() + ";;" + k3.line(), []string{"k1", "2026-12_b.x", "k3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kr, err := ParseKeyring(tt.text, "test keys")
			if err != nil {
				t.Fatal(err)
			}
			if got := kr.IDs(); !reflect.DeepEqual(got, tt.ids) {
				t.Fatalf("IDs = %v, want %v", got, tt.ids)
			}
			if got, want := kr.Newest(), tt.ids[len(tt.ids)-1]; got != want {
				t.Fatalf("Newest = %q, want %q", got, want)
			}
		})
	}
}

func TestParseKeyringProblems(t *testing.T) {
	k1, k2, k3 := newTestKey("k1"), newTestKey("k2"), newTestKey("k3")
	short := make([]byte, 24)
	copy(short, k2.b)
	shortB64 := base64.StdEncoding.EncodeToString(short)
	zeroB64 := base64.StdEncoding.EncodeToString(make([]byte, KeySize))
	tests := []struct {
		name string
		text string
		want []string // substrings of the message, the line first
		line int      // the KeyringError's Line
	}{
		{
			name: "wrong length (the issue's example, exactly)",
			text: k1.line() + "\n# next\nk2:" + shortB64 + "\n",
			want: []string{`keys file /x line 3: key "k2" is 24 bytes after base64; AES-256 needs 32 — generate one with: head -c32 /dev/urandom | base64`},
			line: 3,
		},
		{
			name: "no colon: a key pasted without an id",
			text: k1.line() + "\n" + k2.b64,
			want: []string{"keys file /x line 2:", "no ':'", "k1:<key>", "head -c32 /dev/urandom | base64"},
			line: 2,
		},
		{
			name: "empty id",
			text: ":" + k1.b64,
			want: []string{"line 1:", "no key id before ':'", "1-64 of A-Z a-z 0-9 . _ -"},
			line: 1,
		},
		{
			name: "id too long",
			text: strings.Repeat("a", 65) + ":" + k1.b64,
			want: []string{"line 1:", "key id of 65 characters", "1-64 of"},
			line: 1,
		},
		{
			name: "a key pasted as the id",
			text: k2.b64 + ":" + k1.b64,
			want: []string{"line 1:", "a character other than A-Z a-z 0-9 . _ -", "such as k1"},
			line: 1,
		},
		{
			name: "nothing after the colon",
			text: "\n\nk1:  ",
			want: []string{"line 3:", `key "k1" has nothing after ':'`, "head -c32 /dev/urandom | base64"},
			line: 3,
		},
		{
			name: "bad base64",
			text: "k1:" + strings.TrimSuffix(k1.b64, "=") + "*",
			want: []string{"line 1:", `key "k1" is not valid base64`, "head -c32 /dev/urandom | base64"},
			line: 1,
		},
		{
			name: "URL alphabet is not accepted",
			text: "k1:" + base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xfb, 0xff}, 16)),
			want: []string{"line 1:", "standard alphabet"},
			line: 1,
		},
		{
			name: "all zero bytes",
			text: "k1:" + zeroB64,
			want: []string{"line 1:", `key "k1" is all zero bytes`, "head -c32 /dev/urandom | base64"},
			line: 1,
		},
		{
			name: "duplicate id",
			text: k1.line() + "\n" + k2.line() + "\nk1:" + k3.b64,
			want: []string{"line 3:", `key id "k1" is already used on line 1`, "its own id"},
			line: 3,
		},
		{
			name: "same bytes under two ids",
			text: k1.line() + "\nk2:" + k1.b64,
			want: []string{"line 2:", `key "k2" has the same bytes as key "k1" on line 1`, "new random bytes"},
			line: 2,
		},
		{
			name: "empty",
			text: "",
			want: []string{"keys file /x: holds no keys", "ID:BASE64KEY", "head -c32 /dev/urandom | base64"},
		},
		{
			name: "only comments",
			text: "# keys\n\n# none yet\n",
			want: []string{"keys file /x: holds no keys"},
		},
		{
			name: "entry of a ';' line",
			text: k1.line() + ";k2:" + shortB64,
			want: []string{"keys file /x line 1 entry 2:", `key "k2" is 24 bytes`},
			line: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			kr, err := ParseKeyring(tt.text, "keys file /x")
			if err == nil {
				t.Fatalf("parsed into %v, want an error", kr)
			}
			msg := err.Error()
			for _, w := range tt.want {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q\ndoes not contain %q", msg, w)
				}
			}
			var ke *KeyringError
			if !errors.As(err, &ke) {
				t.Fatalf("error %T is not a *KeyringError", err)
			}
			if ke.Line != tt.line || ke.Source != "keys file /x" {
				t.Errorf("KeyringError at %q line %d, want %q line %d", ke.Source, ke.Line, "keys file /x", tt.line)
			}
			assertNoLeak(t, msg, k1.b, k2.b, k3.b, short)
			if strings.Contains(msg, shortB64) {
				t.Fatalf("error shows the short key's base64: %s", msg)
			}
		})
	}
}

func TestParseKeyringReportsEveryProblem(t *testing.T) {
	k1 := newTestKey("k1")
	_, err := ParseKeyring("k1:nope\n"+k1.line()+"\nk3", "env HITSHIP_KEYS")
	if err == nil {
		t.Fatal("no error, want two problems")
	}
	for _, w := range []string{"env HITSHIP_KEYS line 1:", "env HITSHIP_KEYS line 3:"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not contain %q", err, w)
		}
	}
	assertNoLeak(t, err.Error(), k1.b)
}

func writeKeys(t *testing.T, mode os.FileMode, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestLoadKeyringFileModes(t *testing.T) {
	k1, k2 := newTestKey("k1"), newTestKey("k2")
	text := "# hitship keys\n" + k1.line() + "\n" + k2.line() + "\n"
	for _, mode := range []os.FileMode{0o400, 0o600, 0o440, 0o640, 0o700} {
		t.Run(fmt.Sprintf("%04o loads", mode), func(t *testing.T) {
			kr, err := LoadKeyringFile(writeKeys(t, mode, text))
			if err != nil {
				t.Fatal(err)
			}
			if kr.Newest() != "k2" {
				t.Fatalf("Newest = %q, want k2", kr.Newest())
			}
		})
	}
	for _, mode := range []os.FileMode{0o644, 0o604, 0o660, 0o602, 0o620, 0o401} {
		t.Run(fmt.Sprintf("%04o refused", mode), func(t *testing.T) {
			path := writeKeys(t, mode, text)
			_, err := LoadKeyringFile(path)
			if err == nil {
				t.Fatalf("mode %04o loaded, want it refused", mode)
			}
			for _, w := range []string{"keys file " + path + ":", fmt.Sprintf("has mode %04o", mode), "chmod 0400 " + path, "defaultMode: 0400"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			assertNoLeak(t, err.Error(), k1.b, k2.b)
		})
	}
}

func TestLoadKeyringFileProblems(t *testing.T) {
	k1 := newTestKey("k1")
	t.Run("a symlink to the file is followed", func(t *testing.T) {
		target := writeKeys(t, 0o400, k1.line())
		link := filepath.Join(t.TempDir(), "keys")
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadKeyringFile(link); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("parse errors name the file and line", func(t *testing.T) {
		path := writeKeys(t, 0o400, k1.line()+"\nk2:"+k1.b64)
		_, err := LoadKeyringFile(path)
		if err == nil || !strings.Contains(err.Error(), "keys file "+path+" line 2: ") {
			t.Fatalf("error %v, want one naming keys file %s line 2", err, path)
		}
		assertNoLeak(t, err.Error(), k1.b)
	})
	t.Run("missing", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "nope")
		_, err := LoadKeyringFile(path)
		want := "keys file " + path + ": cannot be opened: no such file or directory; give the path of a file of ID:BASE64KEY lines"
		if err == nil || err.Error() != want {
			t.Fatalf("error %v, want %q", err, want)
		}
	})
	t.Run("a key pasted as the path is not shown", func(t *testing.T) {
		_, err := LoadKeyringFile(k1.line())
		if err == nil || !strings.Contains(err.Error(), "path not shown") {
			t.Fatalf("error %v, want one saying the path is not shown", err)
		}
		assertNoLeak(t, err.Error(), k1.b)
	})
	t.Run("a directory", func(t *testing.T) {
		dir := t.TempDir()
		_, err := LoadKeyringFile(dir)
		if err == nil || !strings.Contains(err.Error(), "is not a regular file") {
			t.Fatalf("error %v, want one saying it is not a regular file", err)
		}
	})
}

func TestLoadKeyringEnv(t *testing.T) {
	k1, k2 := newTestKey("k1"), newTestKey("k2")
	const name = "HITSHIP_SECRETS_TEST_KEYS"
	t.Run("entries separated by ';'", func(t *testing.T) {
		t.Setenv(name, k1.line()+";"+k2.line())
		kr, err := LoadKeyringEnv(name)
		if err != nil {
			t.Fatal(err)
		}
		if got := kr.IDs(); !reflect.DeepEqual(got, []string{"k1", "k2"}) || kr.Newest() != "k2" {
			t.Fatalf("IDs %v newest %q, want [k1 k2] newest k2", got, kr.Newest())
		}
	})
	t.Run("a bad entry is named", func(t *testing.T) {
		t.Setenv(name, k1.line()+";k2:"+k1.b64)
		_, err := LoadKeyringEnv(name)
		if err == nil || !strings.Contains(err.Error(), "env "+name+" line 1 entry 2: ") {
			t.Fatalf("error %v, want one naming env %s line 1 entry 2", err, name)
		}
		assertNoLeak(t, err.Error(), k1.b)
	})
	t.Run("unset", func(t *testing.T) {
		t.Setenv(name, "")
		if err := os.Unsetenv(name); err != nil {
			t.Fatal(err)
		}
		_, err := LoadKeyringEnv(name)
		if err == nil || !strings.Contains(err.Error(), "env "+name+": is not set; set it to ID:BASE64KEY entries") {
			t.Fatalf("error %v, want one saying %s is not set and how to set it", err, name)
		}
	})
	t.Run("empty", func(t *testing.T) {
		t.Setenv(name, "")
		_, err := LoadKeyringEnv(name)
		if err == nil || !strings.Contains(err.Error(), "env "+name+": holds no keys") {
			t.Fatalf("error %v, want one saying %s holds no keys", err, name)
		}
	})
}

func TestKeyringNeverPrintsAKey(t *testing.T) {
	k1, k2 := newTestKey("k1"), newTestKey("k2")
	kr := keyringOf(t, k1, k2)
	type unexported struct{ kr *Keyring }
	type value struct{ kr Keyring }
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("keys", "keyring", kr, "inside", struct{ K *Keyring }{kr})
	js, err := json.Marshal(kr)
	if err != nil {
		t.Fatal(err)
	}
	out := []string{
		fmt.Sprintf("%v", kr), fmt.Sprintf("%+v", kr), fmt.Sprintf("%#v", kr), fmt.Sprintf("%s", kr), fmt.Sprintf("%x", kr),
		fmt.Sprintf("%+v", unexported{kr}), fmt.Sprintf("%#v", unexported{kr}),
		fmt.Sprintf("%+v", value{*kr}), fmt.Sprintf("%#v", value{*kr}),
		fmt.Sprintf("%+v", *kr), fmt.Sprintf("%#v", *kr),
		string(js), logged.String(),
	}
	for _, o := range out {
		assertNoLeak(t, o, k1.b, k2.b)
	}
	if got, want := kr.String(), "keyring [k1 k2] newest k2"; got != want {
		t.Fatalf("String = %q, want %q", got, want)
	}
	if got, want := string(js), `{"ids":["k1","k2"],"newest":"k2"}`; got != want {
		t.Fatalf("JSON = %s, want %s", got, want)
	}
	if !strings.Contains(logged.String(), `"keyring":{"ids":["k1","k2"],"newest":"k2"}`) {
		t.Fatalf("slog JSON = %s, want the ids and the newest", logged.String())
	}
}

func TestKeyringUnwrapProblems(t *testing.T) {
	k1, k2 := newTestKey("k1"), newTestKey("k2")
	kr := keyringOf(t, k1, k2)
	dek := newTestKey("dek").b
	aad := []byte("integration acme secret_access_key")
	kid, wrapped, err := kr.Wrap(dek, aad)
	if err != nil {
		t.Fatal(err)
	}
	if kid != "k2" || len(wrapped) != wrappedLen {
		t.Fatalf("Wrap gave key %q and %d bytes, want k2 and %d", kid, len(wrapped), wrappedLen)
	}
	got, err := kr.Unwrap(kid, wrapped, aad)
	if err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("Unwrap = %x, %v; want the data key", got, err)
	}
	tests := []struct {
		name    string
		id      string
		wrapped []byte
		aad     []byte
		kind    error
		want    string
	}{
		{"unknown id", "k9", wrapped, aad, ErrUnknownKey, `sealed under key "k9", which is not in the keyring (it holds k1, k2); add the line for "k9"`},
		{"invalid id is not echoed", "k9\n" + k1.b64, wrapped, aad, ErrMalformed, "the envelope's key id is not a key id"},
		{"the other key's id", "k1", wrapped, aad, ErrNotAuthentic, `the data key wrapped under key "k1" does not authenticate`},
		{"other aad", kid, wrapped, []byte("integration other secret_access_key"), ErrNotAuthentic, "the AAD differs"},
		{"short", kid, wrapped[:wrappedLen-1], aad, ErrMalformed, "the wrapped data key is 59 bytes; one wrapped by a keyring key is 60"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := kr.Unwrap(tt.id, tt.wrapped, tt.aad)
			if !errors.Is(err, tt.kind) {
				t.Fatalf("error %v, want one that is %v", err, tt.kind)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
			assertNoLeak(t, err.Error(), k1.b, k2.b, dek)
		})
	}
	t.Run("the key id is bound, not only the key", func(t *testing.T) {
		// ParseKeyring refuses one key under two ids, so build that by hand:
		// a data key wrapped under "a" must not unwrap under "b".
		twin := &Keyring{ids: []string{"b", "a"}, keys: map[string]*kek{"a": {b: k1.b}, "b": {b: k1.b}}}
		kid, wrapped, err := twin.Wrap(dek, aad)
		if err != nil || kid != "a" {
			t.Fatalf("Wrap = %q, %v; want key a", kid, err)
		}
		if _, err := twin.Unwrap("b", wrapped, aad); !errors.Is(err, ErrNotAuthentic) {
			t.Fatalf("Unwrap under the twin id: %v, want ErrNotAuthentic", err)
		}
	})
	if _, _, err := kr.Wrap(dek[:16], aad); err == nil {
		t.Fatal("Wrap of a 16-byte data key succeeded, want an error")
	}
}
