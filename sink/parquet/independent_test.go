package parquet

// An independent check of what the encoder writes: every field of every
// record is read back with arrow-go (a second Parquet implementation, not
// parquet-go, which writes the files) and compared with the source record
// through a model of the conversion rules written from the package doc, not
// from the converter.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/parquet/file"

	"hitship/ocsf"
)

// decodeAny decodes one JSON value keeping numbers as written.
func decodeAny(t testing.TB, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	return v
}

// member is one member of a JSON object, in order.
type member struct {
	key string
	raw json.RawMessage
}

func members(t testing.TB, obj []byte) []member {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(obj))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	var ms []member
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			t.Fatal(err)
		}
		ms = append(ms, member{k.(string), raw})
	}
	return ms
}

func canonicalIntRE(s string) bool {
	if s == "" || s == "-" {
		return false
	}
	d := strings.TrimPrefix(s, "-")
	if d != "0" && d[0] == '0' {
		return false
	}
	for _, c := range d {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// modelInt is the rule for integer columns: a JSON integer, or a string of
// its canonical form, within [lo, hi].
func modelInt(raw json.RawMessage, lo, hi int64) (json.Number, bool) {
	s := string(raw)
	if s[0] == '"' {
		s = s[1 : len(s)-1]
	}
	if !canonicalIntRE(s) {
		return "", false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < lo || n > hi {
		return "", false
	}
	return json.Number(strconv.FormatInt(n, 10)), true // the value, not its form ("-0" is 0)
}

// modelHit is what the row of hit must read as with HitSchema: column ->
// value (json-comparable; times in Unix ms), "extra" -> the JSON object of
// what no column took, or nil; and the ordering time (math.MinInt64: none).
func modelHit(t testing.TB, hit []byte) (map[string]any, int64) {
	t.Helper()
	row := map[string]any{}
	extra := map[string]any{}
	cols := map[string]Column{}
	for _, c := range HitSchema().Columns() {
		cols[c.Path[0]] = c
		row[c.Name] = nil
	}
	tm := int64(math.MinInt64)
	for _, m := range members(t, hit) {
		c, ok := cols[m.key]
		if _, dup := row[m.key]; ok && dup && row[m.key] != nil {
			ok = false // a later duplicate (the sources here have none)
		}
		v, fits := any(nil), false
		if ok && string(m.raw) == "null" {
			continue
		}
		if ok {
			v, fits = modelValue(t, c.Type, m.raw)
		}
		if !fits {
			extra[m.key] = decodeAny(t, m.raw)
			continue
		}
		row[c.Name] = v
		if c.Name == "time" {
			tm = v.(int64)
		}
	}
	row[HitColumn] = nil
	if len(extra) > 0 {
		row[HitColumn] = extra
	}
	return row, tm
}

func modelValue(t testing.TB, typ Type, raw json.RawMessage) (any, bool) {
	s := string(raw)
	switch typ {
	case String:
		if s[0] != '"' {
			return nil, false
		}
		var v string
		_ = json.Unmarshal(raw, &v)
		return v, true
	case Int32:
		return modelInt(raw, math.MinInt32, math.MaxInt32)
	case Int64:
		return modelInt(raw, math.MinInt64, math.MaxInt64)
	case JSON:
		return decodeAny(t, raw), true
	case TimeSeconds:
		if s[0] == '"' {
			s = s[1 : len(s)-1]
		}
		sec, frac, _ := strings.Cut(s, ".")
		if sec == "" || strings.Trim(sec, "0123456789") != "" || strings.Trim(frac, "0123456789") != "" ||
			strings.Contains(s, ".") && (len(frac) == 0 || len(frac) > 3) {
			return nil, false
		}
		var ms int64
		fmt.Sscan(sec, &ms)
		frac = (frac + "000")[:3]
		var f int64
		fmt.Sscan(frac, &f)
		return ms*1000 + f, true
	case StringList, Int64List:
		if s[0] != '[' {
			return nil, false
		}
		var elems []json.RawMessage
		_ = json.Unmarshal(raw, &elems)
		out := []any{}
		for _, e := range elems {
			var v any
			var ok bool
			if typ == StringList {
				v, ok = modelValue(t, String, e)
			} else {
				v, ok = modelInt(e, math.MinInt64, math.MaxInt64)
			}
			if !ok {
				return nil, false
			}
			out = append(out, v)
		}
		return out, true
	}
	t.Fatalf("no model for %s", typ)
	return nil, false
}

// normal turns what arrow-go reads (RecordToJSON, decoded with UseNumber)
// into the model's terms: timestamps as Unix ms, JSON columns parsed,
// nulls dropped from groups when drop (nested schemas: null is absent).
func normal(t testing.TB, v any, jsonCols map[string]bool, timeCol, path string, drop bool) any {
	t.Helper()
	switch {
	case v == nil:
		return nil
	case path == timeCol:
		tm, err := time.Parse(time.RFC3339Nano, v.(string))
		if err != nil {
			t.Fatalf("%s = %v: %v", path, v, err)
		}
		return tm.UnixMilli()
	case jsonCols[path]:
		return decodeAny(t, []byte(v.(string)))
	}
	if o, ok := v.(map[string]any); ok {
		out := map[string]any{}
		for k, kv := range o {
			n := normal(t, kv, jsonCols, timeCol, strings.TrimPrefix(path+"."+k, "."), drop)
			if n == nil && drop {
				continue
			}
			out[k] = n
		}
		if drop && len(out) == 0 {
			return nil
		}
		return out
	}
	return v
}

// oddHits are hits of every field with odd values: unicode, escapes, huge
// integers, nulls, wrong types (which go to extra), unknown fields.
func oddHits() []string {
	return []string{
		`{"time":"1687241470.5","request_id":"ü–🙂\u00e9\"\\\/\n\t","ip":"::1","datacenter":"","tor":"none","remote_country":"DE","application_id":[9223372036854775807,-9223372036854775808,"7",0],"domain":"xn--bcher-kva.example:8443","method":"PATCH","uri":"/a?b=\u003cscript\u003e","protocol":"grpc","status_code":"2147483647","attack_type":"xss","block_status":"blocked","payload":["\u0000","é",""],"point":["post",["json_doc","hash","q"]],"tags":{"lom_id":1e400,"x":[null,true]}}`,
		`{"time":1687241471,"request_id":null,"ip":7,"datacenter":null,"tor":["a"],"remote_country":null,"application_id":[9223372036854775808],"domain":{"a":1},"method":5,"uri":"/?","protocol":false,"status_code":2147483648,"attack_type":"","block_status":"weird","payload":"x","point":null,"tags":"s","new":{"deep":[{"x":1}]}}`,
		`{"time":"1687241469","status_code":-0,"application_id":[],"payload":[],"uri":"/\ud83d\ude42","x\u0041":"\n"}`,
		`{"time":"1687241472.1234","request_id":"t4","status_code":"0499","application_id":[1.5]}`,
		`{"request_id":"no time","status_code":499.0}`,
		`{"time":"x","request_id":"bad time","tags":{}}`,
	}
}

// readArrow reads data with arrow-go, every row normalized.
func readArrow(t testing.TB, data []byte, s *Schema) []any {
	t.Helper()
	jsonCols := map[string]bool{s.Extra(): true}
	var timeCol string
	for _, c := range s.Columns() {
		p := c.Name
		if s.spec.Nested {
			p = strings.Join(c.Path, ".")
		}
		if c.Type == JSON {
			jsonCols[p] = true
		}
		if c.Name == s.spec.Time {
			timeCol = p
		}
	}
	var out []any
	for _, r := range readRows(t, data) {
		out = append(out, normal(t, r, jsonCols, timeCol, "", s.spec.Nested))
	}
	return out
}

// rowGroups returns the number of row groups arrow-go's file reader sees.
func rowGroups(t testing.TB, data []byte) (int, string) {
	t.Helper()
	r, err := file.NewParquetReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var b strings.Builder
	for i := range r.MetaData().Schema.NumColumns() {
		c := r.MetaData().Schema.Column(i)
		fmt.Fprintf(&b, "%s %s %v def%d rep%d\n", c.Path(), c.PhysicalType(), c.LogicalType(), c.MaxDefinitionLevel(), c.MaxRepetitionLevel())
	}
	return r.NumRowGroups(), b.String()
}

// ordered sorts expected rows as the encoder does: by time, then by seq
// (their index).
func ordered[T any](rows []T, times []int64) []T {
	idx := make([]int, len(rows))
	for i := range idx {
		idx[i] = i
	}
	slices.SortStableFunc(idx, func(a, b int) int {
		switch {
		case times[a] < times[b]:
			return -1
		case times[a] > times[b]:
			return 1
		}
		return 0
	})
	out := make([]T, len(rows))
	for i, j := range idx {
		out[i] = rows[j]
	}
	return out
}

func independentInput(t testing.TB) []string {
	var in []string
	in = append(in, strings.Split(strings.TrimSpace(string(sampleHits(t))), "\n")...)
	in = append(in, oddHits()...)
	in = append(in, strings.Split(strings.TrimSpace(string(genHits(2500, 3))), "\n")...)
	return in
}

// TestIndependentReaderHits: every field of every hit, read by arrow-go from
// a HitSchema file of several row groups and many pages, is what the rules
// say (typed, or in extra).
func TestIndependentReaderHits(t *testing.T) {
	in := independentInput(t)
	var want []any
	var times []int64
	for _, h := range in {
		row, tm := modelHit(t, []byte(h))
		want = append(want, decodeAny(t, mustJSON(t, row)))
		times = append(times, tm)
	}
	want = ordered(want, times)
	data, _ := encode(t, []byte(strings.Join(in, "\n")), HitSchema(), Options{PageBytes: 8 << 10, RowGroupBytes: 64 << 10})
	if n, _ := rowGroups(t, data); n < 3 {
		t.Fatalf("%d row groups, want several", n)
	}
	compareRows(t, readArrow(t, data, HitSchema()), want)
}

// TestIndependentReaderOCSF: every attribute of every OCSF record, read by
// arrow-go from an OCSFSchema file of several row groups, equals the
// mapper's JSON (groups as nested objects, nulls absent, time in Unix ms,
// unmapped as JSON), and hitship_extra is null.
func TestIndependentReaderOCSF(t *testing.T) {
	m, err := ocsf.NewMapper(ocsf.Options{ProductName: "p\u00e9", VendorName: "v", ProductVersion: "1"})
	if err != nil {
		t.Fatal(err)
	}
	var recs []string
	var want []any
	var times []int64
	for _, h := range independentInput(t) {
		rec, err := m.AppendRecord(nil, []byte(h))
		if err != nil {
			continue // no usable time: staging keeps such a hit another way (sink.AppendOCSFOrKeep)
		}
		recs = append(recs, string(rec))
		v := decodeAny(t, rec).(map[string]any)
		tm, _ := v["time"].(json.Number).Int64()
		v["time"] = tm
		want, times = append(want, v), append(times, tm)
	}
	if len(recs) < 2500 {
		t.Fatalf("%d records mapped", len(recs))
	}
	want = ordered(want, times)
	data, _ := encode(t, []byte(strings.Join(recs, "\n")), OCSFSchema(), Options{PageBytes: 8 << 10, RowGroupBytes: 64 << 10})
	if n, _ := rowGroups(t, data); n < 3 {
		t.Fatalf("%d row groups, want several", n)
	}
	compareRows(t, readArrow(t, data, OCSFSchema()), want)
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func compareRows(t testing.TB, got, want []any) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d rows, want %d", len(got), len(want))
	}
	bad := 0
	for i := range got {
		g, w := mustJSON(t, got[i]), mustJSON(t, want[i])
		if !bytes.Equal(g, w) {
			t.Errorf("row %d\n got %s\nwant %s", i, g, w)
			if bad++; bad > 5 {
				t.FailNow()
			}
		}
	}
}

// TestSchemaSameAcrossWindows: two windows whose records have different
// fields (one has none of the optional ones) make files of one schema, as
// arrow-go reads it, for both schemas.
func TestSchemaSameAcrossWindows(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    *Schema
		a, b string
	}{
		{"hit", HitSchema(), string(sampleHits(t)), `{"time":"5"}` + "\n" + `{"foo":1}`},
		{"ocsf", OCSFSchema(), string(toOCSF(t, sampleHits(t))), `{"time":5,"unmapped":{"x":1}}` + "\n" + `{"time":6,"http_request":{"uid":"u"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			da, _ := encode(t, []byte(tc.a), tc.s, Options{})
			db, _ := encode(t, []byte(tc.b), tc.s, Options{})
			_, sa := rowGroups(t, da)
			_, sb := rowGroups(t, db)
			if sa != sb || sa == "" {
				t.Fatalf("schemas differ:\n%s\n%s", sa, sb)
			}
			if got := strings.Count(sa, "\n"); got != len(tc.s.Parquet().Columns()) {
				t.Fatalf("%d leaves, want %d", got, len(tc.s.Parquet().Columns()))
			}
		})
	}
}
