package sink

import (
	"fmt"
	"strings"

	"hitship/sink/parquet"
)

// Format is the layout of an object's records: how they are framed (a JSON
// array, NDJSON, or a Parquet file: Framing) and which schema each record
// has (the hit as Kafka carried it, or the hit as an OCSF HTTP Activity
// record: OCSF).
type Format int

const (
	// FormatJSON is a JSON array: "[\n", records joined by ",\n", "\n]\n".
	FormatJSON Format = iota
	// FormatNDJSON is newline-delimited JSON: every record followed by "\n".
	FormatNDJSON
	// FormatOCSFNDJSON is NDJSON of OCSF records (package ocsf): "ocsf".
	FormatOCSFNDJSON
	// FormatOCSFJSON is a JSON array of OCSF records: "ocsf-json".
	FormatOCSFJSON
	// FormatParquet is the hits as one Parquet file, typed, ordered by time
	// (package sink/parquet, HitSchema): "parquet". A Parquet buffer takes
	// the file's bytes (Buffer.Write), not records.
	FormatParquet
	// FormatOCSFParquet is the hits' OCSF records as one Parquet file in
	// OCSF's nesting (http_request.url.path), typed, ordered by time
	// (parquet.OCSFSchema): "ocsf-parquet", for Amazon Security Lake and
	// Athena. Its buffer takes the file's bytes, as FormatParquet's.
	FormatOCSFParquet
)

// ParseFormat parses a configured format: "json", "ndjson", "ocsf" (NDJSON of
// OCSF records), "ocsf-json", "parquet" or "ocsf-parquet" (case-insensitive).
func ParseFormat(s string) (Format, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "json":
		return FormatJSON, nil
	case "ndjson":
		return FormatNDJSON, nil
	case "ocsf":
		return FormatOCSFNDJSON, nil
	case "ocsf-json":
		return FormatOCSFJSON, nil
	case "parquet":
		return FormatParquet, nil
	case "ocsf-parquet":
		return FormatOCSFParquet, nil
	}
	return 0, fmt.Errorf("sink: unknown format %q (want \"json\", \"ndjson\", \"ocsf\", \"ocsf-json\", \"parquet\" or \"ocsf-parquet\"): %w", s, ErrInvalid)
}

// String returns the configuration name of f.
func (f Format) String() string {
	switch f {
	case FormatJSON:
		return "json"
	case FormatNDJSON:
		return "ndjson"
	case FormatOCSFNDJSON:
		return "ocsf"
	case FormatOCSFJSON:
		return "ocsf-json"
	case FormatParquet:
		return "parquet"
	case FormatOCSFParquet:
		return "ocsf-parquet"
	}
	return fmt.Sprintf("Format(%d)", int(f))
}

// Framing returns how f frames records: FormatJSON, FormatNDJSON, or
// FormatParquet (a file, not a sequence of records).
func (f Format) Framing() Format {
	switch f {
	case FormatNDJSON, FormatOCSFNDJSON:
		return FormatNDJSON
	case FormatParquet, FormatOCSFParquet:
		return FormatParquet
	}
	return FormatJSON
}

// Parquet reports whether f's objects are Parquet files (ParquetSchema
// says of which records).
func (f Format) Parquet() bool { return f == FormatParquet || f == FormatOCSFParquet }

// ParquetSchema returns the schema of f's Parquet files: parquet.HitSchema
// for FormatParquet, parquet.OCSFSchema for FormatOCSFParquet, nil for the
// formats that are not Parquet.
func (f Format) ParquetSchema() *parquet.Schema {
	switch f {
	case FormatParquet:
		return parquet.HitSchema()
	case FormatOCSFParquet:
		return parquet.OCSFSchema()
	}
	return nil
}

// OCSF reports whether f's records are OCSF records, mapped from the hits
// when an object is assembled (staging; package ocsf).
func (f Format) OCSF() bool {
	return f == FormatOCSFNDJSON || f == FormatOCSFJSON || f == FormatOCSFParquet
}

func (f Format) valid() bool { return f >= FormatJSON && f <= FormatOCSFParquet }

// Ext returns the file extension of f without the dot: "json", "jsonl" or
// "parquet".
func (f Format) Ext() string {
	switch f.Framing() {
	case FormatNDJSON:
		return "jsonl"
	case FormatParquet:
		return "parquet"
	case FormatOCSFParquet:
		return "ocsf-parquet"
	}
	return "json"
}

// ContentType returns the HTTP Content-Type of objects in format f.
func (f Format) ContentType() string {
	switch f.Framing() {
	case FormatNDJSON:
		return "application/x-ndjson"
	case FormatParquet:
		return "application/vnd.apache.parquet"
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
