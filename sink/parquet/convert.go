package parquet

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"

	pq "github.com/parquet-go/parquet-go"
)

// The walker below reads records that hit.Scan has already validated (Add
// does), so it does not check syntax:
// it only finds where values end.

func skipWS(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index after the closing quote of the string at b[i]
// and whether it holds an escape. A quote closes the string unless an odd
// number of backslashes precede it; bytes.IndexByte finds the candidates
// many bytes at a time.
func stringEnd(b []byte, i int) (int, bool) {
	start := i + 1
	for j := start; ; {
		q := bytes.IndexByte(b[j:], '"')
		if q < 0 {
			return len(b), true
		}
		j += q
		k := j
		for k > start && b[k-1] == '\\' {
			k--
		}
		if (j-k)%2 == 0 {
			return j + 1, bytes.IndexByte(b[start:j], '\\') >= 0
		}
		j++
	}
}

// valueEnd returns the index after the value starting at b[i].
func valueEnd(b []byte, i int) int {
	switch b[i] {
	case '"':
		end, _ := stringEnd(b, i)
		return end
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i, _ = stringEnd(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}

// unquote returns the content of the JSON string s (quotes included),
// unescaped; without escapes it is a subslice of s.
func unquote(s []byte, esc bool) []byte {
	if !esc {
		return s[1 : len(s)-1]
	}
	var v string
	if err := json.Unmarshal(s, &v); err != nil {
		return s[1 : len(s)-1] // unreachable for validated input
	}
	return []byte(v)
}

// canonicalInt parses "-?(0|[1-9][0-9]*)" into an int64.
func canonicalInt(s []byte) (int64, bool) {
	neg := len(s) > 0 && s[0] == '-'
	d := s
	if neg {
		d = s[1:]
	}
	if len(d) == 0 || len(d) > 19 || (d[0] == '0' && len(d) > 1) {
		return 0, false
	}
	var u uint64
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, false
		}
		u = u*10 + uint64(c-'0')
	}
	switch {
	case !neg && u <= math.MaxInt64:
		return int64(u), true
	case neg && u <= 1<<63:
		return int64(-u), true // -(1<<63) wraps to itself
	}
	return 0, false
}

// jsonInt reads a JSON integer or a string holding its canonical form.
func jsonInt(v []byte) (int64, bool) {
	if v[0] == '"' {
		return canonicalInt(v[1 : len(v)-1])
	}
	return canonicalInt(v)
}

// secondsMillis reads DIGITS or DIGITS.DIGITS (at most three fractional
// digits) of Unix seconds into Unix milliseconds.
func secondsMillis(s []byte) (int64, bool) {
	if len(s) == 0 {
		return 0, false
	}
	var sec, frac int64
	i := 0
	for ; i < len(s) && s[i] >= '0' && s[i] <= '9'; i++ {
		if sec > (math.MaxInt64/1000-9)/10 {
			return 0, false
		}
		sec = sec*10 + int64(s[i]-'0')
	}
	if i == 0 {
		return 0, false
	}
	if i < len(s) {
		if s[i] != '.' || len(s)-i-1 < 1 || len(s)-i-1 > 3 {
			return 0, false
		}
		scale := int64(100)
		for _, c := range s[i+1:] {
			if c < '0' || c > '9' {
				return 0, false
			}
			frac += int64(c-'0') * scale
			scale /= 10
		}
	}
	return sec*1000 + frac, true
}

// timeMillis converts the value v of a time column of type t; ok is false
// when v does not fit (null included).
func timeMillis(t Type, v []byte) (int64, bool) {
	if t == TimeSeconds {
		if v[0] == '"' {
			return secondsMillis(v[1 : len(v)-1])
		}
		return secondsMillis(v)
	}
	if v[0] != '"' && (v[0] < '0' || v[0] > '9') {
		return 0, false
	}
	ms, ok := jsonInt(v)
	return ms, ok && ms >= 0
}

// findTime finds the value the time column takes in the object at b[i]
// (path under it), with the converter's rules: the first occurrence that is
// null or fits the type. found is false when there is none.
func findTime(b []byte, i int, path []string, t Type) (ms int64, found bool) {
	if i >= len(b) || b[i] != '{' {
		return 0, false
	}
	i = skipWS(b, i+1)
	for i < len(b) && b[i] == '"' {
		kend, esc := stringEnd(b, i)
		key := unquote(b[i:kend], esc)
		i = skipWS(b, kend)
		i = skipWS(b, i+1) // ':'
		vend := valueEnd(b, i)
		if string(key) == path[0] {
			if len(path) == 1 {
				if string(b[i:vend]) == "null" {
					return noTime, true
				}
				if ms, ok := timeMillis(t, b[i:vend]); ok {
					return ms, true
				}
			} else if ms, ok := findTime(b, i, path[1:], t); ok {
				return ms, true
			}
		}
		i = skipWS(b, vend)
		if i < len(b) && b[i] == ',' {
			i = skipWS(b, i+1)
		}
	}
	return 0, false
}

// colState is one column's value in the row being built.
type colState struct {
	set   bool       // a value (null included) was taken
	null  bool       // the value was JSON null
	val   pq.Value   // scalar columns
	items []pq.Value // list columns, nil slice kept for reuse
}

// converter turns records into Parquet rows. It is reused from record to
// record; the values of a row point into the record and into scratch space
// (the extra column's JSON, the rows' values) that lives until reset, so
// that a batch of rows can be written at once. Scratch space grows by
// appending: a row already returned keeps pointing at the old bytes, which
// nothing writes again before reset.
type converter struct {
	s       *Schema
	cols    []colState
	present []bool // per group of a Nested schema: a leaf under it has a value
	extra   []byte // the extra column's JSON of the rows since reset
	vals    []pq.Value
	owned   [][]byte // unescaped strings of the current record
}

func newConverter(s *Schema) *converter {
	return &converter{s: s, cols: make([]colState, len(s.spec.Columns)), present: make([]bool, s.groups)}
}

// reset lets the next convert reuse the scratch space of the rows returned
// so far: call it once they are written.
func (c *converter) reset() {
	c.extra = c.extra[:0]
	c.vals = c.vals[:0]
}

// convert builds the row of rec (a validated JSON object). The row stays
// valid until reset, as long as rec does not change.
//
// Definition levels: a value is at its leaf's def (the optional nodes on its
// path); an empty list too, a list's elements one deeper. A group is present
// when a leaf under it has a value, so a null is at the number of its
// leaf's present ancestor groups (0 in a flat schema).
//
// A record that starts with valuesTag is not JSON but column values (see
// Values): they are taken as they are, with no extra column.
func (c *converter) convert(rec []byte) pq.Row {
	c.clearCols()
	if len(rec) > 0 && rec[0] == valuesTag {
		c.takeValues(rec[1:])
		return c.row(nil)
	}
	mark := len(c.extra)
	c.extra, _ = c.object(rec, skipWS(rec, 0), c.s.root, c.extra)
	return c.row(c.extra[mark:len(c.extra):len(c.extra)])
}

func (c *converter) clearCols() {
	for i := range c.cols {
		c.cols[i].set, c.cols[i].null = false, false
		c.cols[i].items = c.cols[i].items[:0]
	}
	c.owned = c.owned[:0]
}

// row builds the row of the columns taken, with extra as the extra column's
// JSON (none when empty).
func (c *converter) row(extra []byte) pq.Row {
	if len(c.present) > 0 {
		clear(c.present)
		for _, l := range c.s.leaves {
			if l.col < len(c.cols) && c.cols[l.col].set && !c.cols[l.col].null {
				for _, g := range l.groups {
					c.present[g] = true
				}
			}
		}
	}
	start := len(c.vals)
	row := c.vals
	for li, l := range c.s.leaves {
		if l.col == len(c.cols) {
			if len(extra) == 0 {
				row = append(row, pq.NullValue().Level(0, 0, li))
			} else {
				row = append(row, pq.ByteArrayValue(extra).Level(0, l.def, li))
			}
			continue
		}
		st := &c.cols[l.col]
		switch {
		case !st.set || st.null:
			def := 0
			for _, g := range l.groups {
				if !c.present[g] {
					break
				}
				def++
			}
			row = append(row, pq.NullValue().Level(0, def, li))
		case c.s.spec.Columns[l.col].Type.isList():
			if len(st.items) == 0 {
				row = append(row, pq.NullValue().Level(0, l.def, li))
			}
			for j, v := range st.items {
				rep := 1
				if j == 0 {
					rep = 0
				}
				row = append(row, v.Level(rep, l.def+1, li))
			}
		default:
			row = append(row, st.val.Level(0, l.def, li))
		}
	}
	c.vals = row
	return row[start:len(row):len(row)]
}

// object walks the object at b[i] whose keys are looked up under n, takes
// the values of columns and appends every other member to out as a JSON
// object (nothing when there is none). It returns out and the index after
// the object. Recursion follows the schema's paths, so its depth is the
// schema's, whatever the record's.
func (c *converter) object(b []byte, i int, n *node, out []byte) ([]byte, int) {
	mark := len(out)
	out = append(out, '{')
	empty := true
	member := func(key, val []byte) {
		if !empty {
			out = append(out, ',')
		}
		empty = false
		out = append(out, key...)
		out = append(out, ':')
		out = append(out, val...)
	}
	i = skipWS(b, i+1)
	for i < len(b) && b[i] == '"' {
		kend, esc := stringEnd(b, i)
		rawKey := b[i:kend]
		i = skipWS(b, kend)
		i = skipWS(b, i+1) // ':'
		var kid *node
		if n.kids != nil {
			kid = n.kids[string(unquote(rawKey, esc))]
		}
		var vend int
		if kid != nil && kid.col < 0 && b[i] == '{' {
			// A group: walked once, by the recursion, which finds its end.
			save := len(out)
			if !empty {
				out = append(out, ',')
			}
			out = append(out, rawKey...)
			out = append(out, ':')
			before := len(out)
			out, vend = c.object(b, i, kid, out)
			if len(out) == before {
				out = out[:save]
			} else {
				empty = false
			}
		} else {
			vend = valueEnd(b, i)
			val := b[i:vend]
			if kid == nil || kid.col < 0 || !c.take(kid.col, val) {
				member(rawKey, val)
			}
		}
		i = skipWS(b, vend)
		if i < len(b) && b[i] == ',' {
			i = skipWS(b, i+1)
		}
	}
	if i < len(b) && b[i] == '}' {
		i++
	}
	if empty {
		return out[:mark], i
	}
	return append(out, '}'), i
}

// take stores val in column ci when it fits the column's type and the column
// has no value yet; otherwise the caller keeps val in the extra column.
func (c *converter) take(ci int, val []byte) bool {
	st := &c.cols[ci]
	if st.set {
		return false // a duplicate key: the first one is the column's
	}
	if string(val) == "null" {
		st.set, st.null = true, true
		return true
	}
	t := c.s.spec.Columns[ci].Type
	var v pq.Value
	switch t {
	case String:
		if val[0] != '"' {
			return false
		}
		v = pq.ByteArrayValue(c.str(val))
	case JSON:
		v = pq.ByteArrayValue(val)
	case Int32:
		n, ok := jsonInt(val)
		if !ok || n < math.MinInt32 || n > math.MaxInt32 {
			return false
		}
		v = pq.Int32Value(int32(n))
	case Int64:
		n, ok := jsonInt(val)
		if !ok {
			return false
		}
		v = pq.Int64Value(n)
	case Double:
		if val[0] != '-' && (val[0] < '0' || val[0] > '9') {
			return false
		}
		f, err := strconv.ParseFloat(string(val), 64)
		if err != nil {
			return false // out of range
		}
		v = pq.DoubleValue(f)
	case Bool:
		switch string(val) {
		case "true":
			v = pq.BooleanValue(true)
		case "false":
			v = pq.BooleanValue(false)
		default:
			return false
		}
	case TimeSeconds, TimeMillis:
		ms, ok := timeMillis(t, val)
		if !ok {
			return false
		}
		v = pq.Int64Value(ms)
	case StringList, Int64List:
		if !c.list(st, t, val) {
			st.items = st.items[:0]
			return false
		}
		st.set = true
		return true
	}
	st.set, st.val = true, v
	return true
}

// list reads the JSON array val into st.items; false when an element does
// not fit the list's type.
func (c *converter) list(st *colState, t Type, val []byte) bool {
	if val[0] != '[' {
		return false
	}
	i := skipWS(val, 1)
	for i < len(val) && val[i] != ']' {
		end := valueEnd(val, i)
		e := val[i:end]
		if t == StringList {
			if e[0] != '"' {
				return false
			}
			st.items = append(st.items, pq.ByteArrayValue(c.str(e)))
		} else {
			n, ok := jsonInt(e)
			if !ok {
				return false
			}
			st.items = append(st.items, pq.Int64Value(n))
		}
		i = skipWS(val, end)
		if i < len(val) && val[i] == ',' {
			i = skipWS(val, i+1)
		}
	}
	return true
}

// str returns the unescaped content of the JSON string s.
func (c *converter) str(s []byte) []byte {
	_, esc := stringEnd(s, 0)
	u := unquote(s, esc)
	if esc {
		c.owned = append(c.owned, u)
	}
	return u
}

// sortTime is the ordering key of rec: its time in Unix milliseconds, or
// noTime when the time column is absent or does not fit (such records come
// first).
func (s *Schema) sortTime(rec []byte) int64 {
	col := s.spec.Columns[s.time]
	ms, ok := findTime(rec, skipWS(rec, 0), col.Path, col.Type)
	if !ok {
		return noTime
	}
	return ms
}

const noTime = math.MinInt64
