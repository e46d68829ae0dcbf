package ocsf

import (
	"bytes"
	"context"
	"io"
	"slices"
	"strings"
	"testing"

	pq "github.com/parquet-go/parquet-go"

	"hitship/sink/parquet"
)

// fieldVariants are values of the hit fields the mapper reads, each taking
// another branch of the mapping ("" removes the field).
var fieldVariants = [][2]string{
	{"method", `"GET"`}, {"method", `"PATCH"`}, {"method", `""`}, {"method", `5`}, {"method", ""},
	{"domain", `"a-b.example.com:443"`}, {"domain", `"my_host"`}, {"domain", `""`}, {"domain", ""},
	{"uri", `"/a?b=1"`}, {"uri", `"/a"`}, {"uri", `7`}, {"uri", ""},
	{"ip", `"::1"`}, {"ip", `"nope"`}, {"ip", ""},
	{"remote_country", `"DE"`}, {"remote_country", `null`},
	{"status_code", `"404"`}, {"status_code", `"x"`}, {"status_code", ""},
	{"block_status", `"blocked"`}, {"block_status", `"weird"`}, {"block_status", ""},
	{"attack_type", `""`}, {"attack_type", ""}, {"payload", `[1]`}, {"payload", ""},
	{"request_id", `5`}, {"request_id", ""},
	{"client_id", `42`}, {"client_id", `"x"`},
	{"time", `1687241470.123`},
}

// everyRecord maps the sample hits, base with each variant, base with every
// variant at once of the first kind, through a mapper with and one without
// a product version.
func everyRecord(t *testing.T) [][]byte {
	t.Helper()
	hits := sampleHits(t)
	all := []string{"client_id", "1"}
	for _, v := range fieldVariants {
		hits = append(hits, []byte(with(v[0], v[1])))
		if !slices.Contains(all, v[0]) {
			all = append(all, v[0], v[1])
		}
	}
	hits = append(hits, []byte(with(all...)), []byte(`{"time":1,"x":{"y":[1,"é"]}}`))
	var recs [][]byte
	for _, opts := range []Options{{}, {ProductName: "p", VendorName: "v", ProductVersion: "1.2.3"}} {
		m, err := NewMapper(opts)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hits {
			rec, err := m.AppendRecord(nil, h)
			if err != nil {
				t.Fatalf("%s: %v", h, err)
			}
			recs = append(recs, rec)
		}
	}
	return recs
}

// leafPaths adds the dotted paths of v's leaves under path to seen: arrays
// and unmapped (open) end a path.
func leafPaths(path string, v any, seen map[string]bool) {
	o, ok := v.(map[string]any)
	if !ok || path == "unmapped" {
		seen[path] = true
		return
	}
	for k, kv := range o {
		leafPaths(join(path, k), kv, seen)
	}
}

// TestParquetSchemaMatchesMapper: parquet.OCSFSchema has a column for every
// attribute the mapper emits and none it never emits (so a new attribute in
// the mapper fails here until the Parquet schema has it), each column's
// Parquet type is the attribute's OCSF 1.1.0 type, and no mapped record
// has anything in the catch-all column.
func TestParquetSchemaMatchesMapper(t *testing.T) {
	ps := parquet.OCSFSchema()
	recs := everyRecord(t)
	emitted := map[string]bool{}
	for _, rec := range recs {
		leafPaths("", decode(t, rec), emitted)
	}
	cols := map[string]parquet.Column{}
	for _, c := range ps.Columns() {
		cols[strings.Join(c.Path, ".")] = c
	}
	for p := range emitted {
		if _, ok := cols[p]; !ok {
			t.Errorf("the mapper emits %s; parquet.OCSFSchema has no column for it", p)
		}
	}
	for p := range cols {
		if !emitted[p] {
			t.Errorf("parquet.OCSFSchema column %s: no record has it", p)
		}
	}

	// Types, from the schema files.
	s := schemaT(t)
	for p, c := range cols {
		spec := s.class
		var a *attrSpec
		for i, k := range c.Path {
			if a = spec.attrs[k]; a == nil {
				t.Fatalf("%s: %s is not an OCSF attribute", p, strings.Join(c.Path[:i+1], "."))
			}
			if i < len(c.Path)-1 {
				o, err := s.object(a.typ)
				if err != nil {
					t.Fatal(err)
				}
				spec = o
			}
		}
		var want parquet.Type
		switch {
		case a.dictType == "timestamp_t":
			want = parquet.TimeMillis
		case a.typ == "object":
			want = parquet.JSON
		case a.typ == "string_t" && a.isArray:
			want = parquet.StringList
		case a.typ == "string_t":
			want = parquet.String
		case a.typ == "integer_t" && !a.isArray:
			want = parquet.Int32
		case a.typ == "long_t" && !a.isArray:
			want = parquet.Int64
		default:
			t.Errorf("%s: OCSF type %s (array %v) has no Parquet type here", p, a.dictType, a.isArray)
			continue
		}
		if c.Type != want {
			t.Errorf("%s: Parquet type %s, OCSF %s wants %s", p, c.Type, a.dictType, want)
		}
	}

	// Nothing lands in the catch-all column.
	var in bytes.Buffer
	for _, rec := range recs {
		in.Write(rec)
		in.WriteByte('\n')
	}
	var out bytes.Buffer
	if _, err := parquet.Encode(context.Background(), &out, &in, ps, parquet.Options{TempDir: t.TempDir()}); err != nil {
		t.Fatal(err)
	}
	extra := slices.IndexFunc(ps.Parquet().Columns(), func(p []string) bool { return len(p) == 1 && p[0] == ps.Extra() })
	f, err := pq.OpenFile(bytes.NewReader(out.Bytes()), int64(out.Len()))
	if err != nil {
		t.Fatal(err)
	}
	r := pq.NewReader(f)
	defer r.Close()
	rows := make([]pq.Row, 64)
	n := 0
	for {
		k, err := r.ReadRows(rows)
		for _, row := range rows[:k] {
			n++
			for _, v := range row {
				if v.Column() == extra && !v.IsNull() {
					t.Errorf("%s holds %s", ps.Extra(), v)
				}
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if n != len(recs) {
		t.Fatalf("%d rows, want %d", n, len(recs))
	}
	if _, ok := s.class.attrs[ps.Extra()]; ok {
		t.Errorf("the catch-all column %s is an OCSF attribute", ps.Extra())
	}
}
