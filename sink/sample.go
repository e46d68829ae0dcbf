package sink

import (
	"bytes"
	"compress/gzip"
	"context"
	_ "embed" // the sample hits
	"fmt"

	"hitship/sink/parquet"
)

// sampleHits are the two canonical hits of DESIGN §1 in NDJSON form (a copy
// of ../shared/testdata/sample_hits.jsonl).
//
//go:embed testdata/sample_hits.jsonl
var sampleHits []byte

// SampleObject returns the two sample hits encoded exactly as the spool
// encodes them in format f with compression c (for FormatJSON without
// compression: the bytes of testdata/sample_hits.json; for the OCSF formats
// their OCSF records, as an assembled object holds them; for the Parquet
// formats the file of the format's schema, which is not compressed again).
func SampleObject(f Format, c Compression) ([]byte, error) {
	if !f.valid() {
		return nil, invalidf("unknown format %d", int(f))
	}
	if !c.valid() {
		return nil, invalidf("unknown compression %d", int(c))
	}
	if f.Parquet() && c != CompressionNone {
		return nil, invalidf("a Parquet object is not compressed again (zstd inside)")
	}
	var raw bytes.Buffer
	lines := bytes.Split(bytes.TrimRight(sampleHits, "\n"), newline)
	for i, rec := range lines {
		if f.OCSF() {
			var err error
			if rec, err = AppendOCSF(nil, rec); err != nil {
				return nil, fmt.Errorf("sink: sample object: %w", err)
			}
		}
		switch {
		case f.Parquet(): // NDJSON, the encoder's input
			raw.Write(rec)
			raw.Write(newline)
			continue
		case f.Framing() == FormatNDJSON:
			raw.Write(rec)
			raw.Write(newline)
			continue
		case i == 0:
			raw.Write(sepJSONFirst)
		default:
			raw.Write(sepJSON)
		}
		raw.Write(rec)
	}
	if f.Parquet() {
		var out bytes.Buffer
		if _, err := parquet.Encode(context.Background(), &out, &raw, f.ParquetSchema(), parquet.Options{}); err != nil {
			return nil, fmt.Errorf("sink: sample object: %w", err)
		}
		return out.Bytes(), nil
	}
	if f.Framing() == FormatJSON {
		raw.Write(trailerJSON)
	}
	if c == CompressionNone {
		return raw.Bytes(), nil
	}
	var out bytes.Buffer
	zw := gzip.NewWriter(&out) // no name, zero mtime, as the spool
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return nil, fmt.Errorf("sink: sample object: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("sink: sample object: %w", err)
	}
	return out.Bytes(), nil
}

// EmptyObject returns an object of format f without records: a Parquet file
// of f's schema and no rows, which readers take as an empty table. A
// Security Lake source's test write (s3.TestParams.SecurityLake) uses it,
// since sample hits there would be read as real ones. Only Parquet formats,
// without compression, have one.
func EmptyObject(f Format, c Compression) ([]byte, error) {
	if !f.Parquet() || c != CompressionNone {
		return nil, invalidf("no empty object of format %s with compression %s: only Parquet formats, uncompressed", f, c)
	}
	var out bytes.Buffer
	enc, err := parquet.NewEncoder(&out, f.ParquetSchema(), parquet.Options{})
	if err != nil {
		return nil, fmt.Errorf("sink: empty object: %w", err)
	}
	if err := enc.Finish(context.Background()); err != nil {
		return nil, fmt.Errorf("sink: empty object: %w", err)
	}
	return out.Bytes(), nil
}
