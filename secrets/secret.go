package secrets

import (
	"encoding"
	"encoding/json"
	"fmt"
	"log/slog"
)

// Redacted is what every formatting of a [Secret] prints. It is the same
// text config.Secret prints, so one grep finds both in logs.
const Redacted = "[REDACTED]"

// Secret holds a decrypted secret (an S3 secret access key, an ExternalId)
// while it is passed around. Every way of printing it — fmt verbs including
// %#v and %x, slog with any handler, JSON and text marshalling — yields
// [Redacted]; only Reveal returns the value.
//
// The value lives behind a pointer so that printing a struct holding a
// Secret in an unexported field (where fmt cannot call its methods) shows an
// address, never the bytes. The zero Secret is unset. A Secret is immutable
// and safe to share between goroutines.
//
// Secret has no UnmarshalJSON on purpose: marshalling yields [Redacted], so a
// round trip through JSON would silently replace the secret with that text.
type Secret struct {
	p *string
}

// NewSecret wraps v.
func NewSecret(v string) Secret { return Secret{p: &v} }

// Reveal returns the secret value, "" when unset. Call it only where the
// value is handed to what needs it (an AWS credentials provider); never to
// build a message.
func (s Secret) Reveal() string {
	if s.p == nil {
		return ""
	}
	return *s.p
}

// IsSet reports whether a value was stored (an empty string counts as set).
func (s Secret) IsSet() bool { return s.p != nil }

// String implements fmt.Stringer.
func (s Secret) String() string { return Redacted }

// GoString implements fmt.GoStringer.
func (s Secret) GoString() string { return Redacted }

// Format implements fmt.Formatter for every verb, so %x and %q redact too.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(Redacted)) }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalJSON implements json.Marshaler: the JSON string "[REDACTED]".
func (s Secret) MarshalJSON() ([]byte, error) { return json.Marshal(Redacted) }

// MarshalText implements encoding.TextMarshaler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// MarshalYAML implements yaml.Marshaler (a config printed as YAML).
func (s Secret) MarshalYAML() (any, error) { return Redacted, nil }

var (
	_ fmt.Stringer           = Secret{}
	_ fmt.GoStringer         = Secret{}
	_ fmt.Formatter          = Secret{}
	_ slog.LogValuer         = Secret{}
	_ json.Marshaler         = Secret{}
	_ encoding.TextMarshaler = Secret{}
)
