package config

import (
	"fmt"
	"log/slog"
)

// Redacted is what every formatting of a Secret prints.
const Redacted = "[REDACTED]"

// Secret holds a secret value read from an environment variable or a file.
// Every way of printing it (fmt verbs including %#v, slog, YAML, JSON, text
// marshalling) yields [Redacted]; only Reveal returns the value. The value
// lives behind a pointer so that printing a struct that embeds a Secret in
// an unexported field shows an address, never the bytes.
type Secret struct {
	p *string
}

// NewSecret wraps v.
func NewSecret(v string) Secret { return Secret{p: &v} }

// Reveal returns the secret value, "" when unset.
func (s Secret) Reveal() string {
	if s.p == nil {
		return ""
	}
	return *s.p
}

// IsSet reports whether a value was stored.
func (s Secret) IsSet() bool { return s.p != nil }

// String implements fmt.Stringer.
func (s Secret) String() string { return Redacted }

// GoString implements fmt.GoStringer.
func (s Secret) GoString() string { return Redacted }

// Format implements fmt.Formatter for every verb.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(Redacted)) }

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(Redacted) }

// MarshalText implements encoding.TextMarshaler (JSON, slog JSON handler).
func (s Secret) MarshalText() ([]byte, error) { return []byte(Redacted), nil }

// MarshalYAML implements yaml.Marshaler.
func (s Secret) MarshalYAML() (any, error) { return Redacted, nil }
