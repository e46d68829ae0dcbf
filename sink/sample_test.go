package sink_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"io"
	"os"
	"reflect"
	"testing"

	pq "github.com/parquet-go/parquet-go"

	"hitship/sink"
)

// spoolEncode encodes the sample hits with the real spool encoder.
func spoolEncode(t *testing.T, f sink.Format, c sink.Compression) []byte {
	t.Helper()
	sp, err := sink.NewSpool(sink.SpoolConfig{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile("testdata/sample_hits.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	b := sp.NewBuffer(f)
	for _, rec := range bytes.Split(bytes.TrimRight(data, "\n"), []byte("\n")) {
		if err := b.Append(rec); err != nil {
			t.Fatal(err)
		}
	}
	obj, err := b.Finish(c)
	if err != nil {
		t.Fatal(err)
	}
	defer obj.Release()
	r, err := obj.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func twGunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSampleObject(t *testing.T) {
	cases := []struct {
		name   string
		format sink.Format
		comp   sink.Compression
		file   string
	}{
		{name: "json", format: sink.FormatJSON, comp: sink.CompressionNone, file: "testdata/sample_hits.json"},
		{name: "ndjson", format: sink.FormatNDJSON, comp: sink.CompressionNone, file: "testdata/sample_hits.jsonl"},
		{name: "json gzip", format: sink.FormatJSON, comp: sink.CompressionGzip, file: "testdata/sample_hits.json"},
		{name: "ndjson gzip", format: sink.FormatNDJSON, comp: sink.CompressionGzip, file: "testdata/sample_hits.jsonl"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := sink.SampleObject(tc.format, tc.comp)
			if err != nil {
				t.Fatal(err)
			}
			if want := spoolEncode(t, tc.format, tc.comp); !bytes.Equal(got, want) {
				t.Errorf("SampleObject differs from the spool encoder:\n%q\n%q", got, want)
			}
			want, err := os.ReadFile(tc.file)
			if err != nil {
				t.Fatal(err)
			}
			if tc.comp == sink.CompressionGzip {
				got = twGunzip(t, got)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("SampleObject = %q, want the bytes of %s", got, tc.file)
			}
		})
	}
	if _, err := sink.SampleObject(sink.Format(9), sink.CompressionNone); !sink.IsInvalid(err) {
		t.Errorf("unknown format: err = %v, want IsInvalid", err)
	}
	if _, err := sink.SampleObject(sink.FormatJSON, sink.Compression(9)); !sink.IsInvalid(err) {
		t.Errorf("unknown compression: err = %v, want IsInvalid", err)
	}
}

// TestSampleObjectOCSF: in the OCSF formats the sample object holds the two
// sample hits as OCSF HTTP Activity records of OCSFProduct, framed as the
// format says (package ocsf validates the records themselves).
func TestSampleObjectOCSF(t *testing.T) {
	nd, err := sink.SampleObject(sink.FormatOCSFNDJSON, sink.CompressionNone)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimRight(nd, "\n"), []byte("\n"))
	arr, err := sink.SampleObject(sink.FormatOCSFJSON, sink.CompressionNone)
	if err != nil {
		t.Fatal(err)
	}
	var recs []map[string]any
	if err := json.Unmarshal(arr, &recs); err != nil || len(recs) != 2 || len(lines) != 2 {
		t.Fatalf("ocsf-json: %d records, %v; ocsf: %d lines", len(recs), err, len(lines))
	}
	for i, line := range lines {
		var r map[string]any
		if err := json.Unmarshal(line, &r); err != nil {
			t.Fatal(err)
		}
		md, _ := r["metadata"].(map[string]any)
		prod, _ := md["product"].(map[string]any)
		if r["class_uid"] != float64(4002) || md["version"] != "1.1.0" || prod["name"] != sink.OCSFProduct.ProductName || prod["vendor_name"] != sink.OCSFProduct.VendorName {
			t.Errorf("record %d: %s", i, line)
		}
		if !reflect.DeepEqual(r, recs[i]) {
			t.Errorf("record %d differs between ocsf and ocsf-json", i)
		}
	}
}

// TestEmptyObject: a Parquet file of the format's schema without rows, and
// no empty object of the other formats.
func TestEmptyObject(t *testing.T) {
	for _, f := range []sink.Format{sink.FormatParquet, sink.FormatOCSFParquet} {
		data, err := sink.EmptyObject(f, sink.CompressionNone)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		file, err := pq.OpenFile(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if file.NumRows() != 0 {
			t.Errorf("%s: %d rows", f, file.NumRows())
		}
		sample, err := sink.SampleObject(f, sink.CompressionNone)
		if err != nil {
			t.Fatal(err)
		}
		full, err := pq.OpenFile(bytes.NewReader(sample), int64(len(sample)))
		if err != nil {
			t.Fatal(err)
		}
		if got, want := file.Schema().String(), full.Schema().String(); got != want {
			t.Errorf("%s: schema\n%s\nwant the sample object's\n%s", f, got, want)
		}
	}
	for _, f := range []sink.Format{sink.FormatJSON, sink.FormatNDJSON, sink.FormatOCSFNDJSON} {
		if _, err := sink.EmptyObject(f, sink.CompressionNone); err == nil {
			t.Errorf("%s: an empty object", f)
		}
	}
	if _, err := sink.EmptyObject(sink.FormatParquet, sink.CompressionGzip); err == nil {
		t.Error("gzipped Parquet: an empty object")
	}
}

// TestSampleObjectParquet: the Parquet sample objects are the encoder's
// golden files (sink/parquet/testdata), so the bytes a test write shows a
// customer are the ones pinned there: format ocsf-parquet holds the sample
// hits' OCSF records of OCSFProduct.
func TestSampleObjectParquet(t *testing.T) {
	for f, file := range map[sink.Format]string{
		sink.FormatParquet:     "parquet/testdata/sample_hits.parquet",
		sink.FormatOCSFParquet: "parquet/testdata/sample_hits.ocsf.parquet",
	} {
		got, err := sink.SampleObject(f, sink.CompressionNone)
		if err != nil {
			t.Fatal(err)
		}
		want, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: SampleObject differs from %s", f, file)
		}
		if _, err := sink.SampleObject(f, sink.CompressionGzip); !sink.IsInvalid(err) {
			t.Errorf("%s gzipped: err = %v, want IsInvalid", f, err)
		}
	}
}
