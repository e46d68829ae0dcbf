package sink_test

import (
	"context"
	"errors"
	"testing"

	"hitship/sink"
	"hitship/sink/parquet"
)

func TestParseFormat(t *testing.T) {
	cases := []struct {
		name, in         string
		ok               bool
		want             sink.Format
		ext, contentType string
	}{
		{name: "json", in: "json", ok: true, want: sink.FormatJSON, ext: "json", contentType: "application/json"},
		{name: "ndjson", in: "ndjson", ok: true, want: sink.FormatNDJSON, ext: "jsonl", contentType: "application/x-ndjson"},
		{name: "upper case", in: "NDJSON", ok: true, want: sink.FormatNDJSON, ext: "jsonl", contentType: "application/x-ndjson"},
		{name: "ocsf", in: "ocsf", ok: true, want: sink.FormatOCSFNDJSON, ext: "jsonl", contentType: "application/x-ndjson"},
		{name: "ocsf-json", in: "OCSF-JSON", ok: true, want: sink.FormatOCSFJSON, ext: "json", contentType: "application/json"},
		{name: "parquet", in: "parquet", ok: true, want: sink.FormatParquet, ext: "parquet", contentType: "application/vnd.apache.parquet"},
		{name: "ocsf-parquet", in: "Ocsf-Parquet", ok: true, want: sink.FormatOCSFParquet, ext: "parquet", contentType: "application/vnd.apache.parquet"},
		{name: "jsonl is not a format name", in: "jsonl"},
		{name: "empty", in: ""},
		{name: "csv", in: "csv"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := sink.ParseFormat(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("ParseFormat(%q) = %v", tc.in, err)
			}
			if !tc.ok {
				if !sink.IsInvalid(err) {
					t.Errorf("error %v does not satisfy IsInvalid", err)
				}
				return
			}
			if f != tc.want || f.Ext() != tc.ext || f.ContentType() != tc.contentType {
				t.Errorf("got %v ext %q type %q", f, f.Ext(), f.ContentType())
			}
			if back, err := sink.ParseFormat(f.String()); err != nil || back != f {
				t.Errorf("String() %q does not parse back", f.String())
			}
		})
	}
}

// TestFormatKinds: which formats map hits to OCSF, which are Parquet files
// and of which schema.
func TestFormatKinds(t *testing.T) {
	for _, tc := range []struct {
		f             sink.Format
		ocsf, parquet bool
		schema        *parquet.Schema
	}{
		{sink.FormatJSON, false, false, nil},
		{sink.FormatNDJSON, false, false, nil},
		{sink.FormatOCSFNDJSON, true, false, nil},
		{sink.FormatOCSFJSON, true, false, nil},
		{sink.FormatParquet, false, true, parquet.HitSchema()},
		{sink.FormatOCSFParquet, true, true, parquet.OCSFSchema()},
	} {
		if tc.f.OCSF() != tc.ocsf || tc.f.Parquet() != tc.parquet || tc.f.ParquetSchema() != tc.schema {
			t.Errorf("%s: OCSF %v Parquet %v schema %v", tc.f, tc.f.OCSF(), tc.f.Parquet(), tc.f.ParquetSchema())
		}
		if tc.parquet && tc.f.Framing() != sink.FormatParquet {
			t.Errorf("%s: framing %s", tc.f, tc.f.Framing())
		}
	}
}

func TestParseCompression(t *testing.T) {
	cases := []struct {
		name, in      string
		ok            bool
		want          sink.Compression
		ext, encoding string
	}{
		{name: "none", in: "none", ok: true, want: sink.CompressionNone},
		{name: "empty is none", in: "", ok: true, want: sink.CompressionNone},
		{name: "gzip", in: "gzip", ok: true, want: sink.CompressionGzip, ext: ".gz", encoding: "gzip"},
		{name: "zstd", in: "zstd"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := sink.ParseCompression(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("ParseCompression(%q) = %v", tc.in, err)
			}
			if !tc.ok {
				if !sink.IsInvalid(err) {
					t.Errorf("error %v does not satisfy IsInvalid", err)
				}
				return
			}
			if c != tc.want || c.Ext() != tc.ext || c.ContentEncoding() != tc.encoding {
				t.Errorf("got %v ext %q encoding %q", c, c.Ext(), c.ContentEncoding())
			}
			if back, err := sink.ParseCompression(c.String()); err != nil || back != c {
				t.Errorf("String() %q does not parse back", c.String())
			}
		})
	}
}

func TestMemStoreFailures(t *testing.T) {
	m, err := sink.NewMemStore()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	denied := &sink.StoreError{Op: "PutObject", Key: "a", StatusCode: 403, Code: "AccessDenied", Err: errors.New("denied")}
	m.SetFail(func(key string) error {
		if key == "a" {
			return denied
		}
		return nil
	})
	err = m.Put(ctx, "a", sink.BytesBody("x"), sink.PutOptions{})
	if !sink.IsAccessDenied(err) || sink.IsRetryable(err) {
		t.Errorf("Put = %v, want access denied", err)
	}
	if err := m.Put(ctx, "b", sink.BytesBody("y"), sink.PutOptions{ContentType: "t"}); err != nil {
		t.Fatal(err)
	}
	m.SetFail(nil)
	if err := m.Put(ctx, "a", sink.BytesBody("z"), sink.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := m.Keys(); len(got) != 2 || got[0] != "a" || got[1] != "b" {
		t.Errorf("Keys() = %q", got)
	}
	if o, ok := m.Get("b"); !ok || string(o.Data) != "y" || o.ContentType != "t" {
		t.Errorf("Get(b) = %+v, %v", o, ok)
	}
	if m.Puts() != 3 {
		t.Errorf("Puts() = %d, want 3", m.Puts())
	}
}
