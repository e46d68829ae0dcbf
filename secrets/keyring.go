package secrets

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"
)

// KeySize is the length in bytes of a key encryption key and of a data key
// (AES-256).
const KeySize = 32

// maxIDLen is the longest key id; ids are written into every envelope.
const maxIDLen = 64

// generateHint ends every problem that a fresh key fixes.
const generateHint = "generate one with: head -c32 /dev/urandom | base64"

// KeyEncrypter wraps and unwraps data keys under key encryption keys. It is
// the seam between the envelope (Sealer) and where the key encryption keys
// live: [Keyring] holds them in memory; an AWS KMS implementation would call
// KMS Encrypt/Decrypt with the aad as encryption context (not built).
//
// Implementations are safe for concurrent use. Wrap and Unwrap may block (a
// KMS call would); the Keyring's never do. Errors never contain a data key
// or a key encryption key.
type KeyEncrypter interface {
	// Newest returns the id of the key Wrap uses now.
	Newest() string
	// Wrap encrypts dek (KeySize bytes) under the newest key, bound to aad,
	// and returns that key's id with the wrapped bytes. It returns the id
	// itself, not relying on Newest, so a concurrent rotation cannot make
	// the two disagree.
	Wrap(dek, aad []byte) (keyID string, wrapped []byte, err error)
	// Unwrap decrypts wrapped under the key keyID, checking aad. An id it
	// does not hold fails with an error for which errors.Is(err,
	// ErrUnknownKey); wrapped bytes that do not authenticate under that key
	// and aad fail with ErrNotAuthentic; bytes of an impossible shape fail
	// with ErrMalformed.
	Unwrap(keyID string, wrapped, aad []byte) (dek []byte, err error)
}

var _ KeyEncrypter = (*Keyring)(nil)

// Keyring holds the key encryption keys read from a keys file or variable:
// every listed key unwraps, the last one listed (Newest) wraps. Make one with
// ParseKeyring, LoadKeyringFile or LoadKeyringEnv; the zero Keyring holds no
// key and is not usable. It is immutable once made and safe for concurrent
// use; formatting, logging or marshalling it shows the key ids, never a key.
type Keyring struct {
	ids  []string // as listed; the last is the newest
	keys map[string]*kek
}

// kek is one key encryption key's bytes, behind a pointer so that even a
// Keyring printed by reflection (a copy held in an unexported field) shows
// addresses, not bytes.
type kek struct{ b []byte }

// KeyringError is one problem in a keyring's text. Its message names the
// source and the line and says how to fix it; it never contains key bytes
// or their base64, and names a key id only once the id is a valid one.
type KeyringError struct {
	Source  string // such as "keys file /etc/hitship/keys" or "env HITSHIP_KEYS"
	Line    int    // 1-based; 0 when the problem is the source as a whole
	Entry   int    // 1-based place among a line's ';'-separated entries; 0 when the line holds one
	Problem string // what is wrong and the fix
}

func (e *KeyringError) Error() string {
	switch {
	case e.Line == 0:
		return e.Source + ": " + e.Problem
	case e.Entry == 0:
		return fmt.Sprintf("%s line %d: %s", e.Source, e.Line, e.Problem)
	default:
		return fmt.Sprintf("%s line %d entry %d: %s", e.Source, e.Line, e.Entry, e.Problem)
	}
}

// ParseKeyring reads key encryption keys from text: one key per line as
// ID:BASE64KEY, where ID is 1-64 of A-Z a-z 0-9 . _ - and BASE64KEY is
// KeySize random bytes in standard base64 with padding (the output of
// head -c32 /dev/urandom | base64). A line may hold several entries
// separated by ';' (the form an environment variable takes). Blank lines,
// empty entries and lines or entries starting with '#' are skipped. The last
// key listed is the newest.
//
// source names where text came from in errors ("keys file /x", "env
// HITSHIP_KEYS"). Every problem is reported, each as a *KeyringError, joined:
// a malformed line, an invalid id, bad base64, a key that is not KeySize
// bytes or is all zero bytes, an id listed twice, the same key bytes under
// two ids, and no keys at all.
func ParseKeyring(text, source string) (*Keyring, error) {
	kr := &Keyring{keys: map[string]*kek{}}
	var problems []error
	idLine := map[string]int{}
	for i, line := range strings.Split(text, "\n") {
		lineNo := i + 1
		if t := strings.TrimSpace(line); t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		entries := strings.Split(line, ";")
		for j, entry := range entries {
			entry = strings.TrimSpace(entry)
			if entry == "" || strings.HasPrefix(entry, "#") {
				continue
			}
			at := &KeyringError{Source: source, Line: lineNo}
			if len(entries) > 1 {
				at.Entry = j + 1
			}
			id, key, problem := parseEntry(entry)
			if problem == "" {
				if prev, dup := idLine[id]; dup {
					problem = fmt.Sprintf("key id %q is already used on line %d; give each key its own id (the new key a new one)", id, prev)
				}
			}
			if problem == "" {
				for _, other := range kr.ids {
					if bytes.Equal(kr.keys[other].b, key) {
						problem = fmt.Sprintf("key %q has the same bytes as key %q on line %d; a new key needs new random bytes — %s", id, other, idLine[other], generateHint)
						break
					}
				}
			}
			if problem != "" {
				at.Problem = problem
				problems = append(problems, at)
				continue
			}
			idLine[id] = lineNo
			kr.ids = append(kr.ids, id)
			kr.keys[id] = &kek{b: key}
		}
	}
	if len(problems) > 0 {
		return nil, errors.Join(problems...)
	}
	if len(kr.ids) == 0 {
		return nil, &KeyringError{Source: source, Problem: "holds no keys; add a line ID:BASE64KEY such as k1:<key> (" + generateHint + ")"}
	}
	return kr, nil
}

// parseEntry splits one ID:BASE64KEY entry. problem is "" when it is valid.
// No problem quotes the entry's text: only a validated id is named.
func parseEntry(entry string) (id string, key []byte, problem string) {
	rawID, rawKey, ok := strings.Cut(entry, ":")
	if !ok {
		return "", nil, "is not ID:BASE64KEY (no ':'); write a key id, a colon, then the key, such as k1:<key> (" + generateHint + ")"
	}
	id, rawKey = strings.TrimSpace(rawID), strings.TrimSpace(rawKey)
	if p := idProblem(id); p != "" {
		return "", nil, p
	}
	if rawKey == "" {
		return "", nil, fmt.Sprintf("key %q has nothing after ':'; put the key there — %s", id, generateHint)
	}
	key, err := base64.StdEncoding.DecodeString(rawKey)
	if err != nil {
		return "", nil, fmt.Sprintf("key %q is not valid base64 (standard alphabet with '=' padding); %s", id, generateHint)
	}
	if len(key) != KeySize {
		return "", nil, fmt.Sprintf("key %q is %d bytes after base64; AES-256 needs %d — %s", id, len(key), KeySize, generateHint)
	}
	if isZero(key) {
		return "", nil, fmt.Sprintf("key %q is all zero bytes, not a random key; %s", id, generateHint)
	}
	return id, key, ""
}

// idProblem says what is wrong with id as a key id, "" when nothing is. It
// does not quote an invalid id: that may be key material pasted in its place.
func idProblem(id string) string {
	const rule = "a key id is 1-64 of A-Z a-z 0-9 . _ -, such as k1 or 2026-12"
	if id == "" {
		return "has no key id before ':'; " + rule
	}
	if len(id) > maxIDLen {
		return fmt.Sprintf("has a key id of %d characters; %s", len(id), rule)
	}
	for i := 0; i < len(id); i++ {
		if !isIDByte(id[i]) {
			return fmt.Sprintf("has a key id with a character other than A-Z a-z 0-9 . _ - at position %d; %s", i+1, rule)
		}
	}
	return ""
}

func isIDByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-'
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// LoadKeyringFile reads a keys file (the format of ParseKeyring). Errors
// name the file as "keys file PATH".
//
// The file must be a regular file (a symlink to one, as Kubernetes mounts
// secrets, is followed) that others cannot read or write and its group cannot
// write: a mode of 0400, 0600 or 0440 passes; 0644, 0604 or 0660 is refused
// with the chmod that fixes it. Group read is allowed because Kubernetes adds
// it to secret volume files when the pod sets fsGroup (deploy/kubernetes does).
//
// When the file cannot be opened and the path contains ':', the error does
// not show the path: it may be a key pasted where the path belongs.
func LoadKeyringFile(path string) (*Keyring, error) {
	source := "keys file " + path
	f, err := os.Open(path)
	if err != nil {
		if strings.Contains(path, ":") {
			source = "keys file (path not shown: it contains ':' and may be a key pasted in place of a path)"
		}
		return nil, &KeyringError{Source: source, Problem: "cannot be opened: " + pathErrorText(err) + "; give the path of a file of ID:BASE64KEY lines"}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, &KeyringError{Source: source, Problem: "cannot be inspected: " + pathErrorText(err)}
	}
	if !fi.Mode().IsRegular() {
		return nil, &KeyringError{Source: source, Problem: fmt.Sprintf("is not a regular file (%s); give the path of a file of ID:BASE64KEY lines", fi.Mode().Type())}
	}
	if perm := fi.Mode().Perm(); perm&0o027 != 0 {
		return nil, &KeyringError{Source: source, Problem: fmt.Sprintf(
			"has mode %04o: others can read or write it, or its group can write it; "+
				"key encryption keys must be readable only by hitship's user (and group) — chmod 0400 %s "+
				"(Kubernetes: defaultMode: 0400 on the secret volume)", perm, path)}
	}
	text, err := io.ReadAll(f)
	if err != nil {
		return nil, &KeyringError{Source: source, Problem: "cannot be read: " + pathErrorText(err)}
	}
	return ParseKeyring(string(text), source)
}

// pathErrorText is err without the path an *fs.PathError repeats.
func pathErrorText(err error) string {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// LoadKeyringEnv reads key encryption keys from the environment variable
// name (the format of ParseKeyring; entries separated by ';' or newlines).
// Errors name it as "env NAME". An unset variable is an error.
func LoadKeyringEnv(name string) (*Keyring, error) {
	source := "env " + name
	text, ok := os.LookupEnv(name)
	if !ok {
		return nil, &KeyringError{Source: source, Problem: "is not set; set it to ID:BASE64KEY entries separated by ';', the newest last (" + generateHint + ")"}
	}
	return ParseKeyring(text, source)
}

// Newest returns the id of the last key listed, which wraps new data keys.
func (kr *Keyring) Newest() string { return kr.ids[len(kr.ids)-1] }

// IDs returns the key ids in the order listed, the newest last.
func (kr *Keyring) IDs() []string { return append([]string(nil), kr.ids...) }

// wrappedLen is the length of a data key wrapped by a Keyring key: the GCM
// nonce, the key, the GCM tag.
const wrappedLen = nonceSize + KeySize + tagSize

const (
	nonceSize = 12
	tagSize   = 16
)

// Wrap implements KeyEncrypter: dek encrypted with AES-256-GCM under the
// newest key and a fresh random nonce, bound to the key id and aad. The
// result is the nonce followed by the GCM ciphertext and tag (wrappedLen
// bytes). It does not block.
func (kr *Keyring) Wrap(dek, aad []byte) (string, []byte, error) {
	if len(dek) != KeySize {
		return "", nil, fmt.Errorf("a data key to wrap is %d bytes; it must be %d (this is a bug in the caller)", len(dek), KeySize)
	}
	id := kr.Newest()
	gcm, err := newGCM(kr.keys[id].b)
	if err != nil {
		return "", nil, err
	}
	out := make([]byte, nonceSize, wrappedLen)
	_, _ = rand.Read(out) // never fails: crypto/rand crashes the program instead
	return id, gcm.Seal(out, out[:nonceSize], dek, wrapAAD(id, aad)), nil
}

// Unwrap implements KeyEncrypter. It does not block.
func (kr *Keyring) Unwrap(id string, wrapped, aad []byte) ([]byte, error) {
	if idProblem(id) != "" {
		return nil, &envelopeError{kind: ErrMalformed, msg: "the envelope's key id is not a key id (1-64 of A-Z a-z 0-9 . _ -); the envelope is damaged"}
	}
	k, ok := kr.keys[id]
	if !ok {
		return nil, &envelopeError{kind: ErrUnknownKey, msg: fmt.Sprintf(
			"sealed under key %q, which is not in the keyring (it holds %s); "+
				"add the line for %q from the old keys file back (anywhere above the last line, so the newest key stays newest) "+
				"and restart — remove a key only once nothing is sealed under it",
			id, strings.Join(kr.ids, ", "), id)}
	}
	if len(wrapped) != wrappedLen {
		return nil, &envelopeError{kind: ErrMalformed, msg: fmt.Sprintf(
			"the wrapped data key is %d bytes; one wrapped by a keyring key is %d — the envelope is damaged", len(wrapped), wrappedLen)}
	}
	gcm, err := newGCM(k.b)
	if err != nil {
		return nil, err
	}
	dek, err := gcm.Open(nil, wrapped[:nonceSize], wrapped[nonceSize:], wrapAAD(id, aad))
	if err != nil {
		return nil, &envelopeError{kind: ErrNotAuthentic, msg: fmt.Sprintf(
			"the data key wrapped under key %q does not authenticate: the envelope was altered, "+
				"or it belongs to another record or field (the AAD differs), "+
				"or key %q in the keyring is not the key it was sealed under", id, id)}
	}
	return dek, nil
}

// wrapAAD binds the key id to the caller's aad: a one-byte length, the id,
// then aad (the id is at most maxIDLen bytes, so the split is unambiguous).
func wrapAAD(id string, aad []byte) []byte {
	b := make([]byte, 0, 1+len(id)+len(aad))
	b = append(b, byte(len(id)))
	b = append(b, id...)
	return append(b, aad...)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		// Unreachable with KeySize keys; the message names no key bytes.
		return nil, fmt.Errorf("AES key setup failed: %w", err)
	}
	return cipher.NewGCM(block)
}

// String shows the key ids and the newest, never a key.
func (kr *Keyring) String() string {
	if kr == nil || len(kr.ids) == 0 {
		return "keyring (empty)"
	}
	return fmt.Sprintf("keyring [%s] newest %s", strings.Join(kr.ids, " "), kr.Newest())
}

// GoString implements fmt.GoStringer like String.
func (kr *Keyring) GoString() string { return kr.String() }

// Format implements fmt.Formatter like String for every verb.
func (kr *Keyring) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, kr.String()) }

// LogValue implements slog.LogValuer: the ids and the newest.
func (kr *Keyring) LogValue() slog.Value {
	if kr == nil || len(kr.ids) == 0 {
		return slog.StringValue(kr.String())
	}
	return slog.GroupValue(slog.Any("ids", kr.IDs()), slog.String("newest", kr.Newest()))
}

// MarshalJSON implements json.Marshaler: {"ids":[...],"newest":"..."}.
func (kr *Keyring) MarshalJSON() ([]byte, error) {
	v := struct {
		IDs    []string `json:"ids"`
		Newest string   `json:"newest,omitempty"`
	}{IDs: []string{}}
	if kr != nil && len(kr.ids) > 0 {
		v.IDs, v.Newest = kr.ids, kr.Newest()
	}
	return json.Marshal(v)
}

// MarshalText implements encoding.TextMarshaler like String.
func (kr *Keyring) MarshalText() ([]byte, error) { return []byte(kr.String()), nil }
