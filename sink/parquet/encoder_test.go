package parquet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/compress"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
)

var update = flag.Bool("update", false, "rewrite the golden files testdata/sample_hits.parquet and testdata/sample_hits.ocsf.parquet")

func sampleHits(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/sample_hits.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// encode encodes NDJSON records with opts (TempDir defaulting to a test
// directory) and returns the file and the stats.
func encode(t testing.TB, ndjson []byte, s *Schema, opts Options) ([]byte, Stats) {
	t.Helper()
	if opts.TempDir == "" {
		opts.TempDir = t.TempDir()
	}
	var out bytes.Buffer
	st, err := Encode(context.Background(), &out, bytes.NewReader(ndjson), s, opts)
	if err != nil {
		t.Fatal(err)
	}
	left, _ := os.ReadDir(opts.TempDir)
	if len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
	return out.Bytes(), st
}

// readRows reads data back with arrow-go (an independent reader): every row
// as a map from column name to the value arrow marshals to JSON.
func readRows(t testing.TB, data []byte) []map[string]any {
	t.Helper()
	tbl, err := pqarrow.ReadTable(context.Background(), bytes.NewReader(data), nil, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		t.Fatal(err)
	}
	defer tbl.Release()
	tr := array.NewTableReader(tbl, 4096)
	defer tr.Release()
	var rows []map[string]any
	for tr.Next() {
		var b bytes.Buffer
		if err := array.RecordToJSON(tr.RecordBatch(), &b); err != nil {
			t.Fatal(err)
		}
		dec := json.NewDecoder(&b)
		dec.UseNumber()
		for {
			var m map[string]any
			if err := dec.Decode(&m); err == io.EOF {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			rows = append(rows, m)
		}
	}
	return rows
}

func decode(t testing.TB, s string) map[string]any {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return m
}

func jsonEqual(t testing.TB, a, b any) bool {
	t.Helper()
	ja, _ := json.Marshal(a)
	jb, _ := json.Marshal(b)
	return bytes.Equal(ja, jb)
}

func TestHitSchema(t *testing.T) {
	s := HitSchema()
	if s != HitSchema() {
		t.Fatal("HitSchema is not one value")
	}
	var names []string
	for _, c := range s.Parquet().Fields() {
		names = append(names, c.Name())
	}
	want := "application_id attack_type block_status datacenter domain extra ip method payload point protocol remote_country request_id status_code tags time tor uri"
	if got := strings.Join(names, " "); got != want {
		t.Fatalf("columns\n got %s\nwant %s", got, want)
	}
}

func TestNewSchemaRefuses(t *testing.T) {
	col := func(name string, typ Type, path ...string) Column { return Column{Name: name, Path: path, Type: typ} }
	tm := col("time", TimeMillis, "time")
	for _, tc := range []struct {
		name string
		spec SchemaSpec
	}{
		{"no name", SchemaSpec{Columns: []Column{tm}, Extra: "x", Time: "time"}},
		{"no extra", SchemaSpec{Name: "s", Columns: []Column{tm}, Time: "time"}},
		{"no time", SchemaSpec{Name: "s", Columns: []Column{tm}, Extra: "x", Time: "t"}},
		{"time not a time", SchemaSpec{Name: "s", Columns: []Column{col("time", Int64, "time")}, Extra: "x", Time: "time"}},
		{"duplicate name", SchemaSpec{Name: "s", Columns: []Column{tm, col("time", String, "a")}, Extra: "x", Time: "time"}},
		{"name is extra", SchemaSpec{Name: "s", Columns: []Column{tm, col("x", String, "a")}, Extra: "x", Time: "time"}},
		{"empty path", SchemaSpec{Name: "s", Columns: []Column{tm, col("a", String)}, Extra: "x", Time: "time"}},
		{"unknown type", SchemaSpec{Name: "s", Columns: []Column{tm, col("a", Type(99), "a")}, Extra: "x", Time: "time"}},
		{"path taken twice", SchemaSpec{Name: "s", Columns: []Column{tm, col("a", String, "a"), col("b", String, "a")}, Extra: "x", Time: "time"}},
		{"path under a column", SchemaSpec{Name: "s", Columns: []Column{tm, col("a", String, "a"), col("b", String, "a", "b")}, Extra: "x", Time: "time"}},
		{"column over a path", SchemaSpec{Name: "s", Columns: []Column{tm, col("b", String, "a", "b"), col("a", String, "a")}, Extra: "x", Time: "time"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := NewSchema(tc.spec); !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

// TestSampleHitsRoundTrip reads the two sample hits back with arrow-go and
// checks every field of every record against the JSON.
func TestSampleHitsRoundTrip(t *testing.T) {
	in := sampleHits(t)
	data, _ := encode(t, in, HitSchema(), Options{})
	rows := readRows(t, data)
	lines := strings.Split(strings.TrimSpace(string(in)), "\n")
	if len(rows) != len(lines) {
		t.Fatalf("%d rows, want %d", len(rows), len(lines))
	}
	times := []string{"2023-06-20T06:11:10Z", "2023-06-20T06:11:15Z"}
	for i, line := range lines {
		hit, row := decode(t, line), rows[i]
		if len(row) != len(HitSchema().Columns())+1 {
			t.Errorf("row %d has %d columns", i, len(row))
		}
		for k, v := range hit {
			got := row[k]
			switch k {
			case "time":
				got, v = row[k], times[i]
			case "point", "tags":
				s, ok := got.(string)
				if !ok {
					t.Errorf("row %d %s = %#v, want JSON text", i, k, got)
					continue
				}
				got = decode(t, `{"v":`+s+`}`)["v"]
			}
			if !jsonEqual(t, got, v) {
				t.Errorf("row %d %s = %v, want %v", i, k, got, v)
			}
		}
		if row["extra"] != nil {
			t.Errorf("row %d extra = %v, want null", i, row["extra"])
		}
	}
}

// TestMetadata checks zstd, created_by, no key-value metadata, and the page
// and row-group limits on an input that needs many of both.
func TestMetadata(t *testing.T) {
	const pageBytes, groupBytes = 4 << 10, 64 << 10
	in := genHits(3000, 1)
	data, st := encode(t, in, HitSchema(), Options{PageBytes: pageBytes, RowGroupBytes: groupBytes})
	r, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	md := r.MetaData()
	if md.GetCreatedBy() != CreatedBy {
		t.Errorf("created_by %q, want %q", md.GetCreatedBy(), CreatedBy)
	}
	if kv := md.KeyValueMetadata(); len(kv.Keys()) != 0 {
		t.Errorf("key-value metadata %v, want none", kv.Keys())
	}
	if md.NumRowGroups() < 3 || md.NumRowGroups() != st.RowGroups {
		t.Errorf("%d row groups (stats %d), want several", md.NumRowGroups(), st.RowGroups)
	}
	if md.NumRows != 3000 {
		t.Errorf("%d rows, want 3000", md.NumRows)
	}
	pages, biggest := 0, 0
	for g := range md.NumRowGroups() {
		rg := md.RowGroup(g)
		if rg.TotalCompressedSize() > groupBytes {
			t.Errorf("row group %d: %d bytes compressed, limit %d", g, rg.TotalCompressedSize(), groupBytes)
		}
		rgr := r.RowGroup(g)
		for c := range rg.NumColumns() {
			cc, err := rg.ColumnChunk(c)
			if err != nil {
				t.Fatal(err)
			}
			if cc.Compression() != compress.Codecs.Zstd {
				t.Errorf("row group %d column %s: compression %v", g, cc.PathInSchema(), cc.Compression())
			}
			pr, err := rgr.GetColumnPageReader(c)
			if err != nil {
				t.Fatal(err)
			}
			for pr.Next() {
				p, ok := pr.Page().(*file.DataPageV2)
				if !ok {
					t.Fatalf("page %T, want data page v2", pr.Page())
				}
				pages++
				biggest = max(biggest, int(p.UncompressedSize()))
				if p.UncompressedSize() > pageBytes {
					t.Errorf("row group %d column %s: page of %d bytes, limit %d", g, cc.PathInSchema(), p.UncompressedSize(), pageBytes)
				}
			}
			if err := pr.Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("%d bytes, %d row groups, %d pages, biggest page %d bytes", len(data), md.NumRowGroups(), pages, biggest)
	if pages < 3*len(HitSchema().Columns()) {
		t.Errorf("%d pages: the limit was not exercised", pages)
	}
}

// genHits returns n hits whose times go round in a 600-second window
// (out of order), every step-th one with a fresh request id.
func genHits(n, step int) []byte {
	var b bytes.Buffer
	for i := range n {
		fmt.Fprintf(&b, `{"time":"%d","request_id":"%032x","ip":"10.0.%d.%d","datacenter":"dc%d","tor":"none","remote_country":null,`+
			`"application_id":[%d],"domain":"shop%d.example.com","method":"POST","uri":"/api/v1/items/%d?q=%%27or%%201=1","protocol":"https",`+
			`"status_code":%d,"attack_type":"sqli","block_status":"blocked","payload":["' or 1=1 --","%d"],"point":["post",["json_doc","hash","q"]],`+
			`"tags":{"lom_id":%d,"libproton_version":"4.4.11"}}`+"\n",
			1687241400+(i*7919)%600, i/step, i%256, i%199, i%3, i%5, i%11, i, 200+i%300, i, i%13)
	}
	return b.Bytes()
}

func TestOrderedByTime(t *testing.T) {
	in := strings.Join([]string{
		`{"time":"30","request_id":"a"}`,
		`{"time":10,"request_id":"b"}`,
		`{"time":"20.5","request_id":"c"}`,
		`{"time":"10","request_id":"d"}`, // same time as b, later: after b
		`{"request_id":"e"}`,             // no time: first
		`{"time":"x","request_id":"f"}`,  // unusable time: first, after e
		`{"time":"20.500","request_id":"g"}`,
	}, "\n")
	data, _ := encode(t, []byte(in), HitSchema(), Options{})
	var got []string
	for _, r := range readRows(t, data) {
		got = append(got, fmt.Sprint(r["request_id"], "@", r["time"]))
	}
	want := "e@<nil> f@<nil> b@1970-01-01T00:00:10Z d@1970-01-01T00:00:10Z c@1970-01-01T00:00:20.5Z g@1970-01-01T00:00:20.5Z a@1970-01-01T00:00:30Z"
	if strings.Join(got, " ") != want {
		t.Fatalf("order\n got %s\nwant %s", strings.Join(got, " "), want)
	}
}

// TestSeqBreaksTies: records of equal time follow seq, not the order they
// were added in; equal seq falls back to that order.
func TestSeqBreaksTies(t *testing.T) {
	for _, tc := range []struct {
		name   string
		memory int
	}{{"in memory", 0}, {"spilled", 1}} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			e, err := NewEncoder(&out, HitSchema(), Options{MemoryBytes: tc.memory, TempDir: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range []struct {
				id  string
				seq uint64
			}{{"a", 5}, {"b", 3}, {"c", 4}, {"d", 3}, {"e", 0}} {
				tm := 100
				if r.id == "e" {
					tm = 200
				}
				if err := e.Add(fmt.Appendf(nil, `{"time":%d,"request_id":%q}`, tm, r.id), r.seq); err != nil {
					t.Fatal(err)
				}
			}
			if err := e.Finish(context.Background()); err != nil {
				t.Fatal(err)
			}
			if tc.memory > 0 && e.Stats().Runs == 0 {
				t.Fatal("no spill")
			}
			var got []string
			for _, r := range readRows(t, out.Bytes()) {
				got = append(got, r["request_id"].(string))
			}
			if s := strings.Join(got, ""); s != "bdcae" {
				t.Fatalf("order %s, want bdcae", s)
			}
		})
	}
}

// TestSameBytes: the same input gives the same bytes twice, and whatever the
// memory budget: sorted in memory, spilled to a few runs, or to more runs
// than one merge takes.
func TestSameBytes(t *testing.T) {
	in := genHits(4000, 3)
	opts := Options{PageBytes: 8 << 10, RowGroupBytes: 256 << 10}
	want, st := encode(t, in, HitSchema(), opts)
	if st.Runs != 0 {
		t.Fatalf("%d runs with the default budget", st.Runs)
	}
	again, _ := encode(t, in, HitSchema(), opts)
	if !bytes.Equal(want, again) {
		t.Fatal("two encodings differ")
	}
	for _, tc := range []struct {
		name     string
		memory   int
		wantRuns int
	}{
		{"few runs", 1 << 20, 2},
		{"more runs than one merge", 32 << 10, mergeFanIn + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := opts
			o.MemoryBytes = tc.memory
			got, st := encode(t, in, HitSchema(), o)
			if st.Runs < tc.wantRuns {
				t.Errorf("%d runs, want at least %d", st.Runs, tc.wantRuns)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("bytes differ from the in-memory encoding (%d vs %d bytes)", len(got), len(want))
			}
		})
	}
	t.Run("a run per record", func(t *testing.T) {
		small := genHits(300, 2)
		want, _ := encode(t, small, HitSchema(), opts)
		o := opts
		o.MemoryBytes = 1
		got, st := encode(t, small, HitSchema(), o)
		if st.Runs != 300 {
			t.Errorf("%d runs, want 300", st.Runs)
		}
		if !bytes.Equal(got, want) {
			t.Fatal("bytes differ from the in-memory encoding")
		}
	})
}

// TestNothingDropped: unknown fields, wrong-typed values and duplicate keys
// go to extra, in record order; coercible values are coerced.
func TestNothingDropped(t *testing.T) {
	for _, tc := range []struct {
		name  string
		rec   string
		want  map[string]any // typed columns expected (others null)
		extra string         // "" for null
	}{
		{"unknown field", `{"time":"1","new_field":{"a":[1,2]},"ip":"1.2.3.4"}`,
			map[string]any{"ip": "1.2.3.4"}, `{"new_field":{"a":[1,2]}}`},
		{"status_code as a canonical string is coerced", `{"time":"1","status_code":"499"}`,
			map[string]any{"status_code": json.Number("499")}, ``},
		{"status_code not an integer", `{"time":"1","status_code":"abc"}`, nil, `{"status_code":"abc"}`},
		{"status_code with a leading zero", `{"time":"1","status_code":"0499"}`, nil, `{"status_code":"0499"}`},
		{"status_code a fraction", `{"time":"1","status_code":499.5}`, nil, `{"status_code":499.5}`},
		{"status_code out of int32", `{"time":"1","status_code":4294967296}`, nil, `{"status_code":4294967296}`},
		{"string column given a number", `{"time":"1","ip":7}`, nil, `{"ip":7}`},
		{"string column given an object", `{"time":"1","uri":{"a":1}}`, nil, `{"uri":{"a":1}}`},
		{"list given a string", `{"time":"1","payload":"x"}`, nil, `{"payload":"x"}`},
		{"list with a wrong element", `{"time":"1","payload":["x",1]}`, nil, `{"payload":["x",1]}`},
		{"int list with a string integer", `{"time":"1","application_id":["7",-1]}`,
			map[string]any{"application_id": []any{json.Number("7"), json.Number("-1")}}, ``},
		{"int list with a float", `{"time":"1","application_id":[1.5]}`, nil, `{"application_id":[1.5]}`},
		{"empty list is not null", `{"time":"1","payload":[]}`, map[string]any{"payload": []any{}}, ``},
		{"null is null", `{"time":"1","payload":null,"ip":null}`, nil, ``},
		{"duplicate key: the first fitting one is the column's", `{"time":"1","ip":"a","ip":"b"}`,
			map[string]any{"ip": "a"}, `{"ip":"b"}`},
		{"duplicate key after a misfit", `{"time":"1","ip":1,"ip":"b"}`, map[string]any{"ip": "b"}, `{"ip":1}`},
		{"time with four fraction digits", `{"time":"1.2345","ip":"a"}`, map[string]any{"ip": "a", "time": nil}, `{"time":"1.2345"}`},
		{"time negative", `{"time":-5}`, map[string]any{"time": nil}, `{"time":-5}`},
		{"escapes are decoded in columns, kept in extra", `{"time":"1","uri":"\u003cscript\u003e\/x","x\u0041":"\n"}`,
			map[string]any{"uri": "<script>/x"}, `{"x\u0041":"\n"}`},
		{"a key named extra", `{"time":"1","extra":5}`, nil, `{"extra":5}`},
		{"point and tags of any type", `{"time":"1","point":"uri","tags":[1]}`,
			map[string]any{"point": `"uri"`, "tags": `[1]`}, ``},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, _ := encode(t, []byte(tc.rec), HitSchema(), Options{})
			rows := readRows(t, data)
			if len(rows) != 1 {
				t.Fatalf("%d rows", len(rows))
			}
			row := rows[0]
			if _, ok := tc.want["time"]; !ok {
				if row["time"] != "1970-01-01T00:00:01Z" {
					t.Errorf("time = %v", row["time"])
				}
			}
			for k, v := range row {
				if k == "time" || k == "extra" {
					continue
				}
				if !jsonEqual(t, v, tc.want[k]) {
					t.Errorf("%s = %#v, want %#v", k, v, tc.want[k])
				}
			}
			var extra string
			if row["extra"] != nil {
				extra = row["extra"].(string)
			}
			if extra != tc.extra {
				t.Errorf("extra = %s, want %s", extra, tc.extra)
			}
		})
	}
}

// TestNestedPaths: a schema of nested paths (as the OCSF one will be) takes
// the leaves and keeps what is left of each object in extra, nested.
func TestNestedPaths(t *testing.T) {
	s, err := NewSchema(SchemaSpec{
		Name: "ocsf_like",
		Columns: []Column{
			{Name: "time", Path: []string{"time"}, Type: TimeMillis},
			{Name: "class_uid", Path: []string{"class_uid"}, Type: Int32},
			{Name: "http_request_url_path", Path: []string{"http_request", "url", "path"}, Type: String},
			{Name: "http_request_http_method", Path: []string{"http_request", "http_method"}, Type: String},
			{Name: "severity", Path: []string{"severity_id"}, Type: Int64},
			{Name: "score", Path: []string{"score"}, Type: Double},
			{Name: "blocked", Path: []string{"blocked"}, Type: Bool},
			{Name: "unmapped", Path: []string{"unmapped"}, Type: JSON},
		},
		Extra: "extra",
		Time:  "time",
	})
	if err != nil {
		t.Fatal(err)
	}
	in := `{"time":1687241470123,"class_uid":4002,"http_request":{"http_method":"GET","url":{"path":"/a","port":80},"x":1},"score":0.5,"blocked":true,"unmapped":{"k":"v"}}
{"time":1687241470000,"class_uid":4002,"http_request":{"url":{"path":"/b"}},"severity_id":"2","blocked":"yes","score":"1"}
{"time":"1687241469999","http_request":7}`
	data, _ := encode(t, []byte(in), s, Options{})
	rows := readRows(t, data)
	want := []string{
		`{"blocked":null,"class_uid":null,"extra":"{\"http_request\":7}","http_request_http_method":null,"http_request_url_path":null,"score":null,"severity":null,"time":"2023-06-20T06:11:09.999Z","unmapped":null}`,
		`{"blocked":null,"class_uid":4002,"extra":"{\"blocked\":\"yes\",\"score\":\"1\"}","http_request_http_method":null,"http_request_url_path":"/b","score":null,"severity":2,"time":"2023-06-20T06:11:10Z","unmapped":null}`,
		`{"blocked":true,"class_uid":4002,"extra":"{\"http_request\":{\"url\":{\"port\":80},\"x\":1}}","http_request_http_method":"GET","http_request_url_path":"/a","score":0.5,"severity":null,"time":"2023-06-20T06:11:10.123Z","unmapped":"{\"k\":\"v\"}"}`,
	}
	if len(rows) != len(want) {
		t.Fatalf("%d rows", len(rows))
	}
	for i, r := range rows {
		got, _ := json.Marshal(r)
		if string(got) != want[i] {
			t.Errorf("row %d\n got %s\nwant %s", i, got, want[i])
		}
	}
}

func TestAddRefusesNonObjects(t *testing.T) {
	e, err := NewEncoder(io.Discard, HitSchema(), Options{TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Discard()
	for _, rec := range []string{``, `[1]`, `"x"`, `{"a":`, `{"a":1} {}`, "{\"a\":\"\xff\"}"} {
		if err := e.Add([]byte(rec), 0); !errors.Is(err, ErrRecord) {
			t.Errorf("Add(%q) = %v, want ErrRecord", rec, err)
		}
	}
	if err := e.Add([]byte(` {"a":1} `), 0); err != nil {
		t.Errorf("Add of an object with spaces around: %v", err)
	}
}

func TestOptionsRefused(t *testing.T) {
	for _, o := range []Options{{MemoryBytes: -1}, {PageBytes: 100}, {PageBytes: 1 << 20, RowGroupBytes: 1 << 10}} {
		if _, err := NewEncoder(io.Discard, HitSchema(), o); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: err = %v, want ErrInvalid", o, err)
		}
	}
	if _, err := NewEncoder(nil, HitSchema(), Options{}); !errors.Is(err, ErrInvalid) {
		t.Errorf("nil writer: err = %v", err)
	}
}

// TestLongLines: Encode reads records longer than its read buffer, values
// larger than a page, and skips blank lines.
func TestLongLines(t *testing.T) {
	big := strings.Repeat("x", 200<<10)
	in := fmt.Sprintf("{\"time\":\"2\",\"uri\":%q}\n\n{\"time\":\"1\",\"payload\":[%q]}\n", big, big)
	data, st := encode(t, []byte(in), HitSchema(), Options{PageBytes: 4 << 10, RowGroupBytes: 8 << 10, MemoryBytes: 1})
	if st.Records != 2 || st.Runs != 2 {
		t.Fatalf("stats %+v", st)
	}
	rows := readRows(t, data)
	if len(rows) != 2 || !jsonEqual(t, rows[0]["payload"], []string{big}) || rows[1]["uri"] != big {
		t.Fatal("long records did not round trip")
	}
}

func TestContextCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	dir := t.TempDir()
	_, err := Encode(ctx, io.Discard, bytes.NewReader(genHits(3000, 1)), HitSchema(), Options{TempDir: dir, MemoryBytes: 64 << 10})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

// TestGolden pins the bytes of the two sample hits across versions of this
// code and its dependencies: a change here changes every replayed object.
func TestGolden(t *testing.T) {
	data, _ := encode(t, sampleHits(t), HitSchema(), Options{})
	checkGolden(t, data, filepath.Join("testdata", "sample_hits.parquet"))
}

// checkGolden compares data with the golden file at path, writing it first
// with -update.
func checkGolden(t *testing.T, data []byte, path string) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(data, want) {
		t.Fatalf("bytes differ from %s (%d vs %d bytes); if the change is intended, run go test -update and say so in the commit", path, len(data), len(want))
	}
}
