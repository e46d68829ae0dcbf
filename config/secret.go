package config

import "hitship/secrets"

// Redacted is what every formatting of a Secret prints.
const Redacted = secrets.Redacted

// Secret holds a secret value read from an environment variable or a file:
// secrets.Secret, whose every way of printing (fmt verbs including %#v,
// slog, YAML, JSON, text marshalling) yields [Redacted]; only Reveal returns
// the value. The value lives behind a pointer so that printing a struct that
// embeds a Secret in an unexported field shows an address, never the bytes.
type Secret = secrets.Secret

// NewSecret wraps v.
func NewSecret(v string) Secret { return secrets.NewSecret(v) }
