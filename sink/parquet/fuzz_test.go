package parquet

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"
	"testing"

	"hitship/hit"
)

// topLevel returns the members of the JSON object rec in order, and whether
// a key appears twice.
func topLevel(t *testing.T, rec []byte) (keys []string, vals []json.RawMessage, dup bool) {
	dec := json.NewDecoder(bytes.NewReader(rec))
	if _, err := dec.Token(); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		k := tok.(string)
		dup = dup || seen[k]
		seen[k] = true
		keys, vals = append(keys, k), append(vals, v)
	}
	return keys, vals, dup
}

func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	ja, _ := json.Marshal(x)
	jb, _ := json.Marshal(y)
	return bytes.Equal(ja, jb)
}

// FuzzConvert: any record staging passes on is encoded, and every top-level
// field survives: either a column took it (string columns hold the decoded
// string) or extra holds it with the same value; extra is a JSON object.
func FuzzConvert(f *testing.F) {
	for _, l := range bytes.Split(bytes.TrimSpace(sampleHits(f)), []byte("\n")) {
		f.Add(l)
	}
	for _, s := range []string{
		`{"time":"1.5","status_code":"499","ip":7,"x":{"y":[1,"2",null]}}`,
		`{"uri":"a\"b\\\\","uri":"c","payload":["\u00e9",""],"application_id":[1,"2",-0]}`,
		`{"time":1e3,"tags":{},"point":null,"remote_country":"\ud800"}`,
	} {
		f.Add([]byte(s))
	}
	s := HitSchema()
	byName := map[string]int{}
	for i, c := range s.spec.Columns {
		byName[c.Path[0]] = i
	}
	f.Fuzz(func(t *testing.T, rec []byte) {
		if _, err := hit.Scan(rec, 64); err != nil {
			return
		}
		rec = bytes.TrimSpace(rec)
		c := newConverter(s)
		c.convert(rec)
		var extra map[string]json.RawMessage
		if len(c.extra) > 0 {
			if err := json.Unmarshal(c.extra, &extra); err != nil {
				t.Fatalf("extra %s is not a JSON object: %v", c.extra, err)
			}
		}
		keys, vals, dup := topLevel(t, rec)
		if !dup {
			for i, k := range keys {
				if x, ok := extra[k]; ok {
					if !sameJSON(x, vals[i]) {
						t.Fatalf("extra[%s] = %s, want %s", k, x, vals[i])
					}
					continue
				}
				ci, ok := byName[k]
				if !ok || !c.cols[ci].set {
					t.Fatalf("%s = %s is lost (extra %s)", k, vals[i], c.extra)
				}
				st := c.cols[ci]
				if s.spec.Columns[ci].Type == String && !st.null {
					var want string
					_ = json.Unmarshal(vals[i], &want)
					if string(st.val.ByteArray()) != want {
						t.Fatalf("%s = %q, want %q", k, st.val.ByteArray(), want)
					}
				}
			}
		}
		// The whole encoder takes it too.
		e, err := NewEncoder(io.Discard, s, Options{TempDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Add(rec, 0); err != nil {
			t.Fatal(err)
		}
		if err := e.Finish(t.Context()); err != nil && !strings.Contains(err.Error(), "context") {
			t.Fatal(err)
		}
	})
}
