package parquet

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"hitship/ocsf"
)

// ocsfProduct is sink.OCSFProduct (sink imports this package, so the test
// cannot import sink); TestSampleObjectOCSFParquet in sink compares its
// sample object with the golden file below.
var ocsfProduct = ocsf.Options{ProductName: "Wallarm", VendorName: "Wallarm"}

// toOCSF maps NDJSON hits to NDJSON OCSF records.
func toOCSF(t testing.TB, hits []byte) []byte {
	t.Helper()
	m, err := ocsf.NewMapper(ocsfProduct)
	if err != nil {
		t.Fatal(err)
	}
	var out []byte
	for _, h := range bytes.Split(bytes.TrimSpace(hits), []byte("\n")) {
		if out, err = m.AppendRecord(out, h); err != nil {
			t.Fatalf("%s: %v", h, err)
		}
		out = append(out, '\n')
	}
	return out
}

func TestOCSFSchema(t *testing.T) {
	s := OCSFSchema()
	if s != OCSFSchema() || s.Name() != "ocsf_http_activity" || s.Extra() != "hitship_extra" {
		t.Fatalf("OCSFSchema %s extra %s", s.Name(), s.Extra())
	}
	var names []string
	for _, f := range s.Parquet().Fields() {
		names = append(names, f.Name())
	}
	want := "action action_id activity_id activity_name category_name category_uid class_name class_uid disposition disposition_id dst_endpoint firewall_rule hitship_extra http_request http_response metadata severity severity_id src_endpoint time timezone_offset type_name type_uid unmapped"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("top-level fields\n got %s\nwant %s", got, want)
	}
	leaves := map[string]bool{}
	for _, p := range s.Parquet().Columns() {
		leaves[strings.Join(p, ".")] = true
	}
	for _, p := range []string{"http_request.url.path", "metadata.product.vendor_name", "metadata.profiles.list.element", "src_endpoint.location.country"} {
		if !leaves[p] {
			t.Errorf("no leaf %s in %v", p, leaves)
		}
	}
}

// TestGoldenOCSF pins the bytes of the two sample hits in format
// ocsf-parquet (regenerate with go test -update).
func TestGoldenOCSF(t *testing.T) {
	data, _ := encode(t, toOCSF(t, sampleHits(t)), OCSFSchema(), Options{})
	checkGolden(t, data, filepath.Join("testdata", "sample_hits.ocsf.parquet"))
}

// TestAddValuesOCSF: the sample hits' records given as column values, as the
// assembler gives them, make the golden bytes.
func TestAddValuesOCSF(t *testing.T) {
	var out bytes.Buffer
	e, err := NewEncoder(&out, OCSFSchema(), Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	m, err := ocsf.NewMapper(ocsfProduct)
	if err != nil {
		t.Fatal(err)
	}
	v := NewValues(OCSFSchema())
	for i, hit := range bytes.Split(bytes.TrimSpace(sampleHits(t)), []byte("\n")) {
		v.Reset()
		if _, _, err := m.MapColumns(hit, v, nil); err != nil {
			t.Fatal(err)
		}
		if err := e.AddValues(v, uint64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Finish(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := e.AddValues(v, 9); !errors.Is(err, ErrInvalid) {
		t.Fatalf("AddValues after Finish: %v, want ErrInvalid", err)
	}
	want, err := os.ReadFile(filepath.Join("testdata", "sample_hits.ocsf.parquet"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatalf("AddValues: %d bytes, the golden file %d: they differ", out.Len(), len(want))
	}
}
