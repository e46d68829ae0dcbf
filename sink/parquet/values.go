package parquet

import (
	"encoding/binary"
	"fmt"
	"math"

	pq "github.com/parquet-go/parquet-go"
)

// valuesTag starts a record held as column values (Values) instead of JSON:
// a JSON object, trimmed, starts with '{', so the two never mix up.
const valuesTag = 0

// Values is one record given as its columns' values, for a producer that
// has them at hand (package ocsf's mapper does): the Encoder then skips
// writing JSON and reading it back, the most of encoding such a record
// (bench/README.md, "ocsf-parquet"). The row is the one Add would make of
// the JSON object with the same values: a column not set is null, and there
// is nothing for the extra column. A column takes one value (or one list).
//
// Columns are the indexes of Schema.Columns. The setters check a value
// against its column's type; the first mismatch is the error AddValues
// returns. Reset makes a Values ready for the next record.
type Values struct {
	s    *Schema
	b    []byte // valuesTag, then frames: column (uvarint), value or list
	time int64
	err  error
	// list is the list column whose elements are being added, and left
	// how many more List announced.
	list, left int
	set        []bool // per column: given a value (or a list)
}

// NewValues returns an empty Values of schema s.
func NewValues(s *Schema) *Values {
	v := &Values{s: s, set: make([]bool, len(s.spec.Columns))}
	v.Reset()
	return v
}

// Reset empties v.
func (v *Values) Reset() {
	v.b = append(v.b[:0], valuesTag)
	v.time, v.err = noTime, nil
	v.list, v.left = -1, 0
	clear(v.set)
}

func (v *Values) fail(col int, format string, args ...any) {
	if v.err == nil {
		v.err = fmt.Errorf("parquet: values: column %d: %s: %w", col, fmt.Sprintf(format, args...), ErrInvalid)
	}
}

// column returns col's type and starts its frame (an element of the list
// being added has none), or returns 0 (and the error) when col is out of
// range or is not the list whose elements are due.
func (v *Values) column(col int) Type {
	if col < 0 || col >= len(v.s.spec.Columns) {
		v.fail(col, "no such column in %s", v.s.spec.Name)
		return 0
	}
	t := v.s.spec.Columns[col].Type
	switch {
	case v.left > 0 && col == v.list:
		v.left--
		return t
	case v.left > 0:
		v.fail(v.list, "%d elements of the list still due", v.left)
		return 0
	case t.isList():
		v.fail(col, "an element of a list not announced with List")
		return 0
	case v.set[col]:
		v.fail(col, "a second value (a record has one per column)")
		return 0
	}
	v.set[col] = true
	v.b = binary.AppendUvarint(v.b, uint64(col))
	return t
}

// List sets the list column col to a list of n elements, which the next n
// calls of String (StringList) or Int (Int64List) on col give. A list of 0
// is an empty list, not a null.
func (v *Values) List(col, n int) {
	if col < 0 || col >= len(v.s.spec.Columns) || !v.s.spec.Columns[col].Type.isList() || n < 0 || v.left > 0 || v.set[col] {
		v.fail(col, "not a list column, a negative length, a list's elements still due, or a second list")
		return
	}
	v.set[col] = true
	v.b = binary.AppendUvarint(v.b, uint64(col))
	v.b = binary.AppendUvarint(v.b, uint64(n))
	v.list, v.left = col, n
}

// Double and Bool columns have no setter: no producer needs one yet.

// Int sets an Int32, Int64 or time column (Unix milliseconds for either
// time type, at least 0), or adds an element to an Int64List column.
func (v *Values) Int(col int, n int64) {
	switch t := v.column(col); t {
	case 0:
		return
	case Int32:
		if n < math.MinInt32 || n > math.MaxInt32 {
			v.fail(col, "%d out of Int32's range", n)
		}
	case TimeMillis, TimeSeconds:
		if n < 0 {
			v.fail(col, "time %d before 1970", n)
		}
		if col == v.s.time && v.time == noTime {
			v.time = n
		}
	case Int64, Int64List:
	default:
		v.fail(col, "an integer for a column of type %v", t)
	}
	v.b = binary.AppendVarint(v.b, n)
}

// String sets a String column to s (the value itself, valid UTF-8, not JSON),
// or a JSON column to the JSON text s, or adds the element s to a
// StringList column. s is copied.
func (v *Values) String(col int, s []byte) { setString(v, col, s) }

// Text is String for a string.
func (v *Values) Text(col int, s string) { setString(v, col, s) }

func setString[S string | []byte](v *Values, col int, s S) {
	switch t := v.column(col); t {
	case 0:
		return
	case String, JSON, StringList:
	default:
		v.fail(col, "a string for a column of type %v", t)
	}
	v.b = binary.AppendUvarint(v.b, uint64(len(s)))
	v.b = append(v.b, s...)
}

// takeValues takes the columns of frames (Values.b after its tag), whose
// bytes the values then point into.
func (c *converter) takeValues(frames []byte) {
	i := 0
	value := func(t Type) pq.Value {
		switch t {
		case String, JSON, StringList:
			l, n := binary.Uvarint(frames[i:])
			i += n
			v := pq.ByteArrayValue(frames[i : i+int(l) : i+int(l)])
			i += int(l)
			return v
		}
		x, n := binary.Varint(frames[i:])
		i += n
		if t == Int32 {
			return pq.Int32Value(int32(x))
		}
		return pq.Int64Value(x)
	}
	for i < len(frames) {
		col, n := binary.Uvarint(frames[i:])
		i += n
		st := &c.cols[col]
		t := c.s.spec.Columns[col].Type
		st.set = true // once per column: Values refuses a second value
		if !t.isList() {
			st.val = value(t)
			continue
		}
		items, n := binary.Uvarint(frames[i:])
		i += n
		for range items {
			st.items = append(st.items, value(t))
		}
	}
}
