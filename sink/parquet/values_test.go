package parquet

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"hitship/ocsf"
)

// columnsCorpus is every hit the OCSF tests here use, and the mapping's own
// odd cases: escapes where strings are decoded (method, block_status, uri's
// '?', request_id, payload), an empty payload (an empty list, not a null),
// ports, non-hostnames, duplicate keys, pretty-printed JSON, U+2028.
func columnsCorpus(t testing.TB) []string {
	in := independentInput(t)
	return append(in,
		`{"time":"1","method":"G\u0045T","block_status":"bl\u006fcked"}`,
		`{"time":"1","method":"P\u0041TCH","block_status":"p\u0061ssed","request_id":"a\"b","remote_country":"D\u0045"}`,
		`{"time":"1","uri":"/a\u003fb=\"1\"","domain":"shop.example:8443","payload":["x\ny","\u00e9",""],"attack_type":"x\u0073s"}`,
		`{"time":"1","uri":"/a?","domain":"my_host.example","payload":[],"attack_type":"sqli"}`,
		`{"time":"1","domain":"[::1]:443","ip":"2001:db8::1","client_id":"42","status_code":"404"}`,
		`{"time":"1","domain":"","ip":"unknown","client_id":-1,"method":"","request_id":"","remote_country":""}`,
		`{"time":"1","ip":"1.1.1.1","z":1,"ip":"2.2.2.2","z":2,"time":"2"}`,
		"{\n  \"time\" : \"1\",\n  \"tags\" : { \"a\" : [ 1 , \"b c\" ] },\n  \"payload\" : [ \"x y\" ],\n  \"attack_type\" : \"xss\"\n}\n",
		`{"time":"1","uri":"/é?ü=☃","domain":"xn--d1acufc.xn--p1ai","note":"\u2028","d\u00e9":"\ud800"}`,
		`{"time":"0"}`,
		`{"time":1687241470.5,"method":"PATCH","uri":"/a\u003fb?c","x":[1, 2],"x":{"a" : 1}}`,
	)
}

// TestColumnsMatchJSON: a hit's OCSF record given as column values
// (ocsf.Mapper.MapColumns into Values, AddValues) makes the bytes its JSON
// record makes (AppendRecord, Add): for all the hits in one file of
// several pages and spilled runs, and for each hand-written one alone (a
// difference then names its hit), with and without a product version.
func TestColumnsMatchJSON(t *testing.T) {
	in := columnsCorpus(t)
	alone := map[string]bool{}
	for _, h := range in {
		alone[h] = true
	}
	for _, h := range strings.Split(strings.TrimSpace(string(genHits(2500, 3))), "\n") {
		delete(alone, h)
	}
	for _, opts := range []ocsf.Options{ocsfProduct, {ProductName: "p\"é", VendorName: "v", ProductVersion: "1.2\u2028"}} {
		m, err := ocsf.NewMapper(opts)
		if err != nil {
			t.Fatal(err)
		}
		var hits [][]byte
		for _, h := range in {
			if _, err := m.AppendRecord(nil, []byte(h)); err == nil {
				hits = append(hits, []byte(h))
			}
		}
		if len(hits) < 2500 {
			t.Fatalf("%d hits mapped", len(hits))
		}
		for i, h := range hits {
			if t.Failed() {
				break
			}
			if !alone[string(h)] {
				continue
			}
			viaJSON, viaColumns := encodeBoth(t, m, hits[i:i+1], Options{})
			if !bytes.Equal(viaJSON, viaColumns) {
				rec, _ := m.AppendRecord(nil, h)
				t.Errorf("hit %d %s\nrecord %s\ncolumns and JSON give different files:\n%s", i, h, rec, rowDiff(t, viaJSON, viaColumns))
			}
		}
		viaJSON, viaColumns := encodeBoth(t, m, hits, Options{PageBytes: 16 << 10, MemoryBytes: 256 << 10, TempDir: t.TempDir()})
		if !bytes.Equal(viaJSON, viaColumns) {
			t.Errorf("%d hits in one file: columns and JSON give different files", len(hits))
		}
	}
}

// encodeBoth encodes hits' OCSF records both ways.
func encodeBoth(t testing.TB, m *ocsf.Mapper, hits [][]byte, opts Options) (viaJSON, viaColumns []byte) {
	t.Helper()
	var a, b bytes.Buffer
	ej, err := NewEncoder(&a, OCSFSchema(), opts)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := NewEncoder(&b, OCSFSchema(), opts)
	if err != nil {
		t.Fatal(err)
	}
	v := NewValues(OCSFSchema())
	var rec, scratch []byte
	for i, h := range hits {
		if rec, err = m.AppendRecord(rec[:0], h); err != nil {
			t.Fatal(err)
		}
		if err := ej.Add(rec, uint64(i%7)); err != nil {
			t.Fatal(err)
		}
		v.Reset()
		var ms int64
		if ms, scratch, err = m.MapColumns(h, v, scratch); err != nil {
			t.Fatal(err)
		}
		if ms != v.time {
			t.Fatalf("MapColumns says time %d, the time column %d", ms, v.time)
		}
		if err := ec.AddValues(v, uint64(i%7)); err != nil {
			t.Fatal(err)
		}
	}
	for _, e := range []*Encoder{ej, ec} {
		if err := e.Finish(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	return a.Bytes(), b.Bytes()
}

// rowDiff shows the rows of two files that differ, as arrow-go reads them.
func rowDiff(t testing.TB, a, b []byte) string {
	ra, rb := readArrow(t, a, OCSFSchema()), readArrow(t, b, OCSFSchema())
	return "JSON:    " + string(mustJSON(t, ra)) + "\ncolumns: " + string(mustJSON(t, rb))
}

// TestValuesRefused: a value that does not fit its column, a column out of
// range, a list's elements missing or unannounced, and another schema's
// values are refused by AddValues with ErrInvalid, and the encoder goes on.
func TestValuesRefused(t *testing.T) {
	s := OCSFSchema()
	var out bytes.Buffer
	e, err := NewEncoder(&out, s, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for name, fill := range map[string]func(v *Values){
		"string for an int":    func(v *Values) { v.Text(ocsf.AttrActivityID, "3") },
		"int for a string":     func(v *Values) { v.Int(ocsf.AttrActivityName, 3) },
		"int32 out of range":   func(v *Values) { v.Int(ocsf.AttrActivityID, 1<<31) },
		"time before 1970":     func(v *Values) { v.Int(ocsf.AttrTime, -1) },
		"no such column":       func(v *Values) { v.Int(ocsf.AttrUnmapped+2, 1) },
		"list not announced":   func(v *Values) { v.Text(ocsf.AttrMetadataProfiles, "x") },
		"list elements due":    func(v *Values) { v.List(ocsf.AttrMetadataProfiles, 2); v.Text(ocsf.AttrMetadataProfiles, "x") },
		"other column in list": func(v *Values) { v.List(ocsf.AttrMetadataProfiles, 1); v.Text(ocsf.AttrSeverity, "x") },
		"List of a scalar":     func(v *Values) { v.List(ocsf.AttrSeverity, 1) },
		"a column set twice":   func(v *Values) { v.Int(ocsf.AttrActivityID, 1); v.Int(ocsf.AttrActivityID, 2) },
		"a list given twice": func(v *Values) {
			v.List(ocsf.AttrMetadataProfiles, 0)
			v.List(ocsf.AttrMetadataProfiles, 0)
		},
	} {
		v := NewValues(s)
		fill(v)
		if err := e.AddValues(v, 0); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if err := e.AddValues(NewValues(HitSchema()), 0); !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "schema") {
		t.Errorf("another schema's values: %v", err)
	}
	v := NewValues(s)
	v.Int(ocsf.AttrTime, 5)
	if err := e.AddValues(v, 0); err != nil {
		t.Fatal(err)
	}
	if err := e.Finish(context.Background()); err != nil {
		t.Fatal(err)
	}
	if e.Stats().Records != 1 {
		t.Fatalf("%d records, want the one good one", e.Stats().Records)
	}
}

// TestAttributesAreColumns: ocsf's column numbers are this schema's.
func TestAttributesAreColumns(t *testing.T) {
	cols := OCSFSchema().Columns()
	if len(cols) != len(ocsf.Attributes) {
		t.Fatalf("%d columns, %d attributes", len(cols), len(ocsf.Attributes))
	}
	for i, c := range cols {
		if p := strings.Join(c.Path, "."); p != ocsf.Attributes[i] {
			t.Errorf("column %d is %s, attribute %d is %s", i, p, i, ocsf.Attributes[i])
		}
	}
}

// FuzzColumnsMatchJSON: for any input, MapColumns refuses what
// AppendRecord refuses, and otherwise the two make the same file.
func FuzzColumnsMatchJSON(f *testing.F) {
	for _, h := range append(oddHits(), strings.Split(strings.TrimSpace(string(sampleHits(f))), "\n")...) {
		f.Add([]byte(h))
	}
	for _, h := range columnsCorpus(f)[len(independentInput(f)):] {
		f.Add([]byte(h))
	}
	f.Add([]byte(`[1]`))
	f.Add([]byte("{\"time\":\"1\",\"x\":\"\xff\"}"))
	m, err := ocsf.NewMapper(ocsfProduct)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, hit []byte) {
		_, jerr := m.AppendRecord(nil, hit)
		v := NewValues(OCSFSchema())
		_, _, cerr := m.MapColumns(hit, v, nil)
		if (jerr == nil) != (cerr == nil) {
			t.Fatalf("AppendRecord: %v, MapColumns: %v", jerr, cerr)
		}
		if cerr != nil {
			if len(v.b) != 1 || v.err != nil {
				t.Fatalf("MapColumns failed (%v) but gave values", cerr)
			}
			return
		}
		viaJSON, viaColumns := encodeBoth(t, m, [][]byte{hit}, Options{})
		if !bytes.Equal(viaJSON, viaColumns) {
			t.Fatalf("hit %q: columns and JSON give different files:\n%s", hit, rowDiff(t, viaJSON, viaColumns))
		}
	})
}
