package parquet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	pq "github.com/parquet-go/parquet-go"
)

// nestedT is a Nested schema with groups three deep, a list inside a group
// and a list at the top.
func nestedT(t testing.TB) *Schema {
	t.Helper()
	s, err := NewSchema(SchemaSpec{
		Name:   "nested",
		Nested: true,
		Extra:  "hitship_extra",
		Time:   "time",
		Columns: []Column{
			{Name: "time", Path: []string{"time"}, Type: TimeMillis},
			{Name: "a.b.c", Path: []string{"a", "b", "c"}, Type: String},
			{Name: "a.b.d", Path: []string{"a", "b", "d"}, Type: Int64},
			{Name: "a.l", Path: []string{"a", "l"}, Type: StringList},
			{Name: "a.n", Path: []string{"a", "n"}, Type: Int32},
			{Name: "top", Path: []string{"top"}, Type: Int64List},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// levels reads data with parquet-go's row reader and renders every row as
// "leaf:rep/def=value ..." in leaf order.
func levels(t testing.TB, data []byte) []string {
	t.Helper()
	f, err := pq.OpenFile(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	r := pq.NewReader(f)
	defer r.Close()
	var out []string
	buf := make([]pq.Row, 16)
	for {
		n, err := r.ReadRows(buf)
		for _, row := range buf[:n] {
			var b strings.Builder
			for i, v := range row {
				if i > 0 {
					b.WriteByte(' ')
				}
				fmt.Fprintf(&b, "%d:%d/%d", v.Column(), v.RepetitionLevel(), v.DefinitionLevel())
				if !v.IsNull() {
					fmt.Fprintf(&b, "=%v", v)
				}
			}
			out = append(out, b.String())
		}
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestNestedSchema: the Parquet schema is a tree of optional groups; the
// definition levels say which groups are present (a group is non-null iff a
// leaf under it has a value), nulls sit at every depth, lists add their
// levels below their group's; parquet-go's reader and arrow-go read the
// same nesting back.
func TestNestedSchema(t *testing.T) {
	s := nestedT(t)
	want := `message nested {
	optional group a {
		optional group b {
			optional binary c (STRING);
			optional int64 d (INT(64,true));
		}
		optional group l (LIST) {
			repeated group list {
				required binary element (STRING);
			}
		}
		optional int32 n (INT(32,true));
	}
	optional binary hitship_extra (STRING);
	optional int64 time (TIMESTAMP(isAdjustedToUTC=true,unit=MILLIS));
	optional group top (LIST) {
		repeated group list {
			required int64 element (INT(64,true));
		}
	}
}`
	if got := s.Parquet().String(); got != want {
		t.Fatalf("schema\n%s\nwant\n%s", got, want)
	}
	// Leaves: 0 a.b.c, 1 a.b.d, 2 a.l, 3 a.n, 4 hitship_extra, 5 time, 6 top.
	for _, tc := range []struct {
		name   string
		rec    string
		levels string
		arrow  string // what arrow-go reads, as JSON
	}{
		{"everything", `{"time":1,"a":{"b":{"c":"x","d":5},"l":["p","q"],"n":7},"top":[1,2]}`,
			"0:0/3=x 1:0/3=5 2:0/3=p 2:1/3=q 3:0/2=7 4:0/0 5:0/1=1 6:0/2=1 6:1/2=2",
			`{"a":{"b":{"c":"x","d":5},"l":["p","q"],"n":7},"hitship_extra":null,"time":"1970-01-01T00:00:00.001Z","top":[1,2]}`},
		{"a leaf deep down: its groups present, its siblings null at their depth", `{"time":1,"a":{"b":{"c":"x"}}}`,
			"0:0/3=x 1:0/2 2:0/1 3:0/1 4:0/0 5:0/1=1 6:0/0",
			`{"a":{"b":{"c":"x","d":null},"l":null,"n":null},"hitship_extra":null,"time":"1970-01-01T00:00:00.001Z","top":null}`},
		{"a leaf one down: the inner group null", `{"time":1,"a":{"n":-3}}`,
			"0:0/1 1:0/1 2:0/1 3:0/2=-3 4:0/0 5:0/1=1 6:0/0",
			`{"a":{"b":null,"l":null,"n":-3},"hitship_extra":null,"time":"1970-01-01T00:00:00.001Z","top":null}`},
		{"an empty list is a value", `{"time":1,"a":{"l":[]}}`,
			"0:0/1 1:0/1 2:0/2 3:0/1 4:0/0 5:0/1=1 6:0/0",
			`{"a":{"b":null,"l":[],"n":null},"hitship_extra":null,"time":"1970-01-01T00:00:00.001Z","top":null}`},
		{"empty and null-only objects are null groups", `{"time":1,"a":{"b":{"c":null,"d":null},"l":null}}`,
			"0:0/0 1:0/0 2:0/0 3:0/0 4:0/0 5:0/1=1 6:0/0",
			`{"a":null,"hitship_extra":null,"time":"1970-01-01T00:00:00.001Z","top":null}`},
		{"misfits go to extra under their parents; their group is null", `{"time":1,"a":{"b":{"d":"x","e":1},"n":1e3},"z":true}`,
			"0:0/0 1:0/0 2:0/0 3:0/0 4:0/1={\"a\":{\"b\":{\"d\":\"x\",\"e\":1},\"n\":1e3},\"z\":true} 5:0/1=1 6:0/0",
			`{"a":null,"hitship_extra":"{\"a\":{\"b\":{\"d\":\"x\",\"e\":1},\"n\":1e3},\"z\":true}","time":"1970-01-01T00:00:00.001Z","top":null}`},
		{"a group given a scalar goes to extra; a null list is null", `{"time":1,"a":{"b":"s"},"top":null}`,
			"0:0/0 1:0/0 2:0/0 3:0/0 4:0/1={\"a\":{\"b\":\"s\"}} 5:0/1=1 6:0/0",
			`{"a":null,"hitship_extra":"{\"a\":{\"b\":\"s\"}}","time":"1970-01-01T00:00:00.001Z","top":null}`},
		{"no time, one list element", `{"a":{"b":{"d":"9"},"l":["é\n"]}}`,
			"0:0/2 1:0/3=9 2:0/3=é\n 3:0/1 4:0/0 5:0/0 6:0/0",
			`{"a":{"b":{"c":null,"d":9},"l":["é\n"],"n":null},"hitship_extra":null,"time":null,"top":null}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			data, _ := encode(t, []byte(tc.rec), s, Options{})
			if got := levels(t, data); len(got) != 1 || got[0] != tc.levels {
				t.Errorf("levels\n got %q\nwant %q", got, tc.levels)
			}
			rows := readRows(t, data)
			got, _ := json.Marshal(rows[0])
			if string(got) != tc.arrow {
				t.Errorf("arrow-go reads\n %s\nwant\n %s", got, tc.arrow)
			}
		})
	}
}

// TestNestedManyPages: nested columns keep the page and row-group limits,
// the time order, and their bytes when spilled.
func TestNestedManyPages(t *testing.T) {
	s := nestedT(t)
	var in bytes.Buffer
	for i := range 3000 {
		switch i % 4 {
		case 0:
			fmt.Fprintf(&in, `{"time":%d,"a":{"b":{"c":"%0100d","d":%d},"l":["x","%d"]},"top":[%d]}`+"\n", (i*7919)%3000, i, i, i, i)
		case 1:
			fmt.Fprintf(&in, `{"time":%d,"a":{"n":%d}}`+"\n", (i*7919)%3000, i)
		case 2:
			fmt.Fprintf(&in, `{"time":%d,"a":{"b":{"d":"bad%d"}}}`+"\n", (i*7919)%3000, i)
		default:
			fmt.Fprintf(&in, `{"time":%d}`+"\n", (i*7919)%3000)
		}
	}
	opts := Options{PageBytes: 4 << 10, RowGroupBytes: 32 << 10}
	data, st := encode(t, in.Bytes(), s, opts)
	if st.RowGroups < 3 {
		t.Errorf("%d row groups", st.RowGroups)
	}
	opts.MemoryBytes = 16 << 10
	spilled, st := encode(t, in.Bytes(), s, opts)
	if st.Runs < 2 || !bytes.Equal(spilled, data) {
		t.Errorf("spilled (%d runs) bytes differ", st.Runs)
	}
	rows := readRows(t, data)
	if len(rows) != 3000 {
		t.Fatalf("%d rows", len(rows))
	}
	for i, r := range rows {
		tm, err := time.Parse(time.RFC3339Nano, r["time"].(string))
		if err != nil || tm.UnixMilli() != int64(i) {
			t.Fatalf("row %d time %v, want %d ms", i, r["time"], i)
		}
		if i%4 == 0 && r["a"] == nil {
			t.Fatalf("row %d: %v", i, r)
		}
	}
}

func TestNestedSchemaRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		cols []Column
	}{
		{"a path through extra", []Column{{Name: "x", Path: []string{"hitship_extra", "x"}, Type: String}}},
		{"a leaf named extra", []Column{{Name: "x", Path: []string{"hitship_extra"}, Type: String}}},
		{"a leaf over a group", []Column{{Name: "x", Path: []string{"a"}, Type: String}, {Name: "y", Path: []string{"a", "b"}, Type: String}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cols := append([]Column{{Name: "time", Path: []string{"time"}, Type: TimeMillis}}, tc.cols...)
			_, err := NewSchema(SchemaSpec{Name: "n", Nested: true, Extra: "hitship_extra", Time: "time", Columns: cols})
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
}
