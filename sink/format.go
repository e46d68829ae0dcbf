package sink

import (
	"fmt"
	"strings"
)

// Format is the layout of an object's records.
type Format int

const (
	// FormatJSON is a JSON array: "[\n", records joined by ",\n", "\n]\n".
	FormatJSON Format = iota
	// FormatNDJSON is newline-delimited JSON: every record followed by "\n".
	FormatNDJSON
)

// ParseFormat parses a configured format: "json" or "ndjson" (case-insensitive).
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "json":
		return FormatJSON, nil
	case "ndjson":
		return FormatNDJSON, nil
	}
	return 0, fmt.Errorf("sink: unknown format %q (want \"json\" or \"ndjson\"): %w", s, ErrInvalid)
}

// String returns the configuration name of f ("json" or "ndjson").
func (f Format) String() string {
	switch f {
	case FormatJSON:
		return "json"
	case FormatNDJSON:
		return "ndjson"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// Ext returns the file extension of f without the dot: "json" or "jsonl".
func (f Format) Ext() string {
	if f == FormatNDJSON {
		return "jsonl"
	}
	return "json"
}

// ContentType returns the HTTP Content-Type of objects in format f.
func (f Format) ContentType() string {
	if f == FormatNDJSON {
		return "application/x-ndjson"
	}
	return "application/json"
}

// Compression is the content encoding of an object.
type Compression int

const (
	// CompressionNone stores the records as they are.
	CompressionNone Compression = iota
	// CompressionGzip gzips the object (deterministic bytes: no name, zero mtime).
	CompressionGzip
)

// ParseCompression parses a configured compression: "none" (or "") or "gzip".
func ParseCompression(s string) (Compression, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "none":
		return CompressionNone, nil
	case "gzip":
		return CompressionGzip, nil
	}
	return 0, fmt.Errorf("sink: unknown compression %q (want \"none\" or \"gzip\"): %w", s, ErrInvalid)
}

// String returns the configuration name of c ("none" or "gzip").
func (c Compression) String() string {
	switch c {
	case CompressionNone:
		return "none"
	case CompressionGzip:
		return "gzip"
	}
	return fmt.Sprintf("Compression(%d)", int(c))
}

// Ext returns the extension suffix c adds to a key: "" or ".gz".
func (c Compression) Ext() string {
	if c == CompressionGzip {
		return ".gz"
	}
	return ""
}

// ContentEncoding returns the HTTP Content-Encoding of c: "" or "gzip".
func (c Compression) ContentEncoding() string {
	if c == CompressionGzip {
		return "gzip"
	}
	return ""
}

func (c Compression) valid() bool { return c == CompressionNone || c == CompressionGzip }
