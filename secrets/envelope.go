package secrets

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
)

// Version is the envelope format Seal writes and Open reads.
const Version = 1

// Sealed is one encrypted value at rest. Its JSON form is compact and stable
// ([]byte fields are standard base64 with padding):
//
//	{"v":1,"kid":"k2","wdek":"<base64>","nonce":"<base64>","ct":"<base64>"}
//
// Nothing in it is secret: printing, logging or storing a Sealed is safe.
// Unknown JSON fields are ignored; Open checks every field it uses.
type Sealed struct {
	// Version is the format, 1 ([Version]).
	Version int `json:"v"`
	// KeyID names the key encryption key the data key is wrapped under.
	KeyID string `json:"kid"`
	// WrappedKey is the data key wrapped by the KeyEncrypter. For a Keyring
	// key: a 12-byte GCM nonce, then the 32-byte key encrypted with
	// AES-256-GCM and its 16-byte tag (60 bytes).
	WrappedKey []byte `json:"wdek"`
	// Nonce is the 12-byte GCM nonce of Ciphertext.
	Nonce []byte `json:"nonce"`
	// Ciphertext is the plaintext encrypted with AES-256-GCM under the data
	// key, followed by the 16-byte tag.
	Ciphertext []byte `json:"ct"`
}

// Domain labels bound into the two GCM operations' additional data, so a
// wrapped data key can never be opened as data or the reverse, and a future
// format version cannot be confused with this one.
const (
	labelWrap = "hitship/secrets v1 data-key\x00"
	labelData = "hitship/secrets v1 data\x00"
)

// AAD builds additional authenticated data from parts, each prefixed with
// its length, so that AAD("ab", "c") and AAD("a", "bc") differ where plain
// concatenation would not. Name where a value belongs, such as
// AAD("integration", name, "secret_access_key").
func AAD(parts ...string) []byte {
	var b []byte
	for _, p := range parts {
		b = binary.AppendUvarint(b, uint64(len(p)))
		b = append(b, p...)
	}
	return b
}

// Sealer seals and opens values under the keys of a KeyEncrypter. It is
// safe for concurrent use; its methods block only as long as the
// KeyEncrypter's (a Keyring's never block).
type Sealer struct {
	keys KeyEncrypter
}

// NewSealer returns a Sealer over keys (a *Keyring).
func NewSealer(keys KeyEncrypter) (*Sealer, error) {
	if keys == nil {
		return nil, errors.New("secrets: NewSealer needs a KeyEncrypter, such as a Keyring from LoadKeyringFile")
	}
	return &Sealer{keys: keys}, nil
}

// Seal encrypts plaintext under a fresh random data key with AES-256-GCM and
// a fresh random nonce, and wraps the data key under the newest key
// encryption key. aad is bound into both encryptions: Open succeeds only with
// the same aad, so an envelope copied to another record or field fails.
// aad must not be empty (use AAD). Two Seals of one plaintext differ.
func (s *Sealer) Seal(plaintext, aad []byte) (Sealed, error) {
	if len(aad) == 0 {
		return Sealed{}, errEmptyAAD("Seal")
	}
	dek := make([]byte, KeySize)
	_, _ = rand.Read(dek) // never fails: crypto/rand crashes the program instead
	defer clear(dek)
	kid, wrapped, err := s.keys.Wrap(dek, append([]byte(labelWrap), aad...))
	if err != nil {
		return Sealed{}, fmt.Errorf("wrapping a data key: %w", err)
	}
	gcm, err := newGCM(dek)
	if err != nil {
		return Sealed{}, err
	}
	nonce := make([]byte, nonceSize)
	_, _ = rand.Read(nonce)
	return Sealed{
		Version:    Version,
		KeyID:      kid,
		WrappedKey: wrapped,
		Nonce:      nonce,
		Ciphertext: gcm.Seal(nil, nonce, plaintext, append([]byte(labelData), aad...)),
	}, nil
}

// Open checks and decrypts sealed, which must have been sealed with this
// aad under a key the KeyEncrypter holds. Errors wrap ErrMalformed,
// ErrUnknownKey or ErrNotAuthentic and never contain the plaintext or a key.
// Wrap the result in a Secret when it is a credential.
func (s *Sealer) Open(sealed Sealed, aad []byte) ([]byte, error) {
	dek, err := s.unwrap(sealed, aad, "Open")
	if err != nil {
		return nil, err
	}
	defer clear(dek)
	return openData(dek, sealed, aad)
}

// NeedsRewrap reports whether sealed is wrapped under a key other than the
// newest, so Rewrap would change it. It does not check the envelope.
func (s *Sealer) NeedsRewrap(sealed Sealed) bool {
	return sealed.KeyID != s.keys.Newest()
}

// Rewrap returns sealed with its data key wrapped under the newest key
// encryption key; the nonce and ciphertext are unchanged. It first checks the
// whole envelope as Open does (so a rewrap never blesses a damaged one) and
// fails as Open would. When sealed is already under the newest key it
// returns sealed unchanged, so rewrapping twice rewrites nothing.
func (s *Sealer) Rewrap(sealed Sealed, aad []byte) (Sealed, error) {
	dek, err := s.unwrap(sealed, aad, "Rewrap")
	if err != nil {
		return Sealed{}, err
	}
	defer clear(dek)
	plaintext, err := openData(dek, sealed, aad)
	if err != nil {
		return Sealed{}, err
	}
	clear(plaintext)
	if !s.NeedsRewrap(sealed) {
		return sealed, nil
	}
	kid, wrapped, err := s.keys.Wrap(dek, append([]byte(labelWrap), aad...))
	if err != nil {
		return Sealed{}, fmt.Errorf("rewrapping the data key of an envelope sealed under key %q: %w", sealed.KeyID, err)
	}
	out := sealed
	out.KeyID, out.WrappedKey = kid, wrapped
	return out, nil
}

// unwrap checks the envelope's shape and returns its data key.
func (s *Sealer) unwrap(sealed Sealed, aad []byte, op string) ([]byte, error) {
	if len(aad) == 0 {
		return nil, errEmptyAAD(op)
	}
	if sealed.Version != Version {
		if sealed.Version == 0 {
			return nil, malformed("the envelope has no version (\"v\"); it was not written by Seal, or it is damaged")
		}
		return nil, malformed(fmt.Sprintf("the envelope is version %d; this build reads version %d — it was written by a newer hitship, so run that one", sealed.Version, Version))
	}
	if sealed.KeyID == "" {
		return nil, malformed("the envelope has no key id (\"kid\"); it is damaged")
	}
	if len(sealed.Nonce) != nonceSize {
		return nil, malformed(fmt.Sprintf("the envelope's nonce is %d bytes, not %d; it is damaged", len(sealed.Nonce), nonceSize))
	}
	if len(sealed.Ciphertext) < tagSize {
		return nil, malformed(fmt.Sprintf("the envelope's ciphertext is %d bytes, shorter than the %d-byte tag; it is damaged", len(sealed.Ciphertext), tagSize))
	}
	dek, err := s.keys.Unwrap(sealed.KeyID, sealed.WrappedKey, append([]byte(labelWrap), aad...))
	if err != nil {
		return nil, err
	}
	if len(dek) != KeySize {
		clear(dek)
		return nil, malformed(fmt.Sprintf("the data key unwrapped under key %q is %d bytes, not %d", sealed.KeyID, len(dek), KeySize))
	}
	return dek, nil
}

// openData decrypts the ciphertext under the data key.
func openData(dek []byte, sealed Sealed, aad []byte) ([]byte, error) {
	gcm, err := newGCM(dek)
	if err != nil {
		return nil, err
	}
	plaintext, err := gcm.Open(nil, sealed.Nonce, sealed.Ciphertext, append([]byte(labelData), aad...))
	if err != nil {
		return nil, &envelopeError{kind: ErrNotAuthentic, msg: fmt.Sprintf(
			"the ciphertext sealed under key %q does not authenticate: the envelope's nonce or ciphertext was altered, "+
				"or it belongs to another record or field (the AAD differs)", sealed.KeyID)}
	}
	return plaintext, nil
}

func errEmptyAAD(op string) error {
	return fmt.Errorf("secrets: %s needs an AAD naming where the value belongs, such as AAD(\"integration\", name, field); "+
		"without one an envelope could be moved to another record unnoticed", op)
}
