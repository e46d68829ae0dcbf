package secrets

import "errors"

// Errors of Open, Rewrap and Keyring.Unwrap wrap one of these; test with
// errors.Is. The messages around them name the key id and the fix, never key
// material or plaintext.
var (
	// ErrUnknownKey: the envelope was sealed under a key id the keyring
	// does not hold. Adding that key back fixes it.
	ErrUnknownKey = errors.New("sealed under a key not in the keyring")
	// ErrNotAuthentic: GCM authentication failed. The envelope was altered,
	// opened with another AAD than it was sealed with, or the keyring holds
	// other bytes under the envelope's key id.
	ErrNotAuthentic = errors.New("envelope does not authenticate")
	// ErrMalformed: the envelope cannot be one Seal wrote (unknown version,
	// missing field, wrong length).
	ErrMalformed = errors.New("malformed envelope")
)

// envelopeError is an error whose message is a plain sentence and which
// errors.Is matches against its kind.
type envelopeError struct {
	kind error
	msg  string
}

func (e *envelopeError) Error() string { return e.msg }
func (e *envelopeError) Unwrap() error { return e.kind }

func malformed(msg string) error { return &envelopeError{kind: ErrMalformed, msg: msg} }
