package parquet

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	pq "github.com/parquet-go/parquet-go"
)

// ErrInvalid marks a schema or options that cannot work.
var ErrInvalid = errors.New("parquet: invalid")

// Type is how a column's JSON value becomes a Parquet value. Every column is
// optional (null when the field is absent, null, or does not fit the type);
// see the package doc for the conversion rules.
type Type int

const (
	// String is a JSON string, stored as BYTE_ARRAY (UTF8), unescaped.
	String Type = iota + 1
	// Int32 is a JSON integer (or a string holding its canonical decimal
	// form) that fits in 32 bits, stored as INT32.
	Int32
	// Int64 is a JSON integer (or a string holding its canonical decimal
	// form) that fits in 64 bits, stored as INT64.
	Int64
	// Double is a JSON number, stored as DOUBLE.
	Double
	// Bool is a JSON true or false, stored as BOOLEAN.
	Bool
	// TimeSeconds is Unix seconds, a JSON number or a string, DIGITS or
	// DIGITS.DIGITS with at most three fractional digits (the hit's "time"),
	// stored as TIMESTAMP(MILLIS, UTC).
	TimeSeconds
	// TimeMillis is Unix milliseconds, a non-negative JSON integer (or its
	// canonical decimal string; OCSF's timestamp_t), stored as
	// TIMESTAMP(MILLIS, UTC).
	TimeMillis
	// StringList is a JSON array of strings, stored as LIST<STRING>.
	StringList
	// Int64List is a JSON array of integers, stored as LIST<INT64>.
	Int64List
	// JSON is any JSON value but null, stored as its JSON text in a STRING
	// column (values that mix types, objects with open keys).
	JSON
)

func (t Type) String() string {
	switch t {
	case String:
		return "string"
	case Int32:
		return "int32"
	case Int64:
		return "int64"
	case Double:
		return "double"
	case Bool:
		return "bool"
	case TimeSeconds:
		return "time_seconds"
	case TimeMillis:
		return "time_millis"
	case StringList:
		return "list<string>"
	case Int64List:
		return "list<int64>"
	case JSON:
		return "json"
	}
	return fmt.Sprintf("Type(%d)", int(t))
}

func (t Type) isList() bool { return t == StringList || t == Int64List }
func (t Type) isTime() bool { return t == TimeSeconds || t == TimeMillis }

func (t Type) node() pq.Node {
	switch t {
	case String, JSON:
		return pq.String()
	case Int32:
		return pq.Int(32)
	case Int64:
		return pq.Int(64)
	case Double:
		return pq.Leaf(pq.DoubleType)
	case Bool:
		return pq.Leaf(pq.BooleanType)
	case TimeSeconds, TimeMillis:
		return pq.Timestamp(pq.Millisecond)
	case StringList:
		return pq.List(pq.String())
	case Int64List:
		return pq.List(pq.Int(64))
	}
	return nil
}

// Column maps the JSON value at Path (keys from the record's root: ["time"],
// or ["http_request", "url", "path"]) to the Parquet column Name.
type Column struct {
	Name string
	Path []string
	Type Type
}

// SchemaSpec describes a Schema: a table of columns, the catch-all column and
// the column records are ordered by.
type SchemaSpec struct {
	// Name is the Parquet schema's root name ("hit", "ocsf_http_activity").
	Name    string
	Columns []Column
	// Extra names the catch-all column: a JSON object holding every field
	// that no column took (unknown fields, wrong-typed values, duplicate
	// keys), null when there is none. Nothing in a record is dropped.
	Extra string
	// Time names the column (of type TimeSeconds or TimeMillis) records are
	// ordered by within an object.
	Time string
	// Nested lays the columns out as the records are: a tree of optional
	// groups following the Paths (["http_request", "url", "path"] is the
	// leaf "path" in the group "url" in the group "http_request"), so that
	// an engine reads http_request.url.path. Leaves are named by their
	// path's last element; Column.Name then only identifies the column in
	// the spec (Time names it). The extra column stays a top-level leaf, and
	// no path may start with its name. A group is null when no leaf under it
	// has a value, and non-null otherwise (an empty list is a value).
	// Without Nested every column is a top-level leaf named Column.Name.
	Nested bool
}

// Schema is a validated SchemaSpec with its Parquet schema. It is immutable
// and safe for concurrent use by any number of Encoders.
type Schema struct {
	spec SchemaSpec
	pq   *pq.Schema
	root *node
	time int // index in spec.Columns
	// leaves are the Parquet leaf columns in file order.
	leaves []leaf
	groups int // optional groups above the leaves (Nested), numbered 0..groups-1
}

// leaf is one Parquet leaf column.
type leaf struct {
	col int // index into spec.Columns, or len(spec.Columns) for extra
	// def is the definition level of a present value (of an empty list; a
	// list's elements are one level deeper): the optional nodes on the
	// leaf's path, itself included.
	def int
	// groups are the leaf's ancestor groups, outermost first: the
	// definition level of a null value is the number of them that are
	// present.
	groups []int
}

// node is one step of the column paths: a leaf names a column (col >= 0),
// an inner node has kids; group numbers it among the inner nodes.
type node struct {
	col   int
	group int
	kids  map[string]*node
}

// NewSchema validates spec and builds its Parquet schema. Column names are
// unique, not empty and differ from Extra; no path is empty or a prefix of
// another; Time names a time column.
func NewSchema(spec SchemaSpec) (*Schema, error) {
	bad := func(format string, args ...any) (*Schema, error) {
		return nil, fmt.Errorf("parquet: schema %q: %s: %w", spec.Name, fmt.Sprintf(format, args...), ErrInvalid)
	}
	if spec.Name == "" {
		return bad("no name")
	}
	if spec.Extra == "" {
		return bad("no extra column")
	}
	spec.Columns = slices.Clone(spec.Columns)
	s := &Schema{spec: spec, root: &node{col: -1, group: -1}, time: -1}
	names := map[string]struct{}{}
	group := pq.Group{spec.Extra: pq.Optional(pq.String())}
	for i, c := range spec.Columns {
		if spec.Nested && len(c.Path) > 0 && c.Path[0] == spec.Extra {
			return bad("path %s starts with the extra column's name", strings.Join(c.Path, "."))
		}
		switch {
		case c.Name == "":
			return bad("column %d has no name", i)
		case c.Type.node() == nil:
			return bad("column %q: unknown type %d", c.Name, int(c.Type))
		case len(c.Path) == 0:
			return bad("column %q has no path", c.Name)
		}
		if _, dup := names[c.Name]; dup || c.Name == spec.Extra {
			return bad("column name %q used twice", c.Name)
		}
		names[c.Name] = struct{}{}
		if !spec.Nested {
			group[c.Name] = pq.Optional(c.Type.node())
		}
		spec.Columns[i].Path = slices.Clone(c.Path)
		n := s.root
		for j, k := range c.Path {
			if n.col >= 0 {
				return bad("path %s runs through column %q", strings.Join(c.Path, "."), spec.Columns[n.col].Name)
			}
			if n.kids == nil {
				n.kids = map[string]*node{}
			}
			next := n.kids[k]
			if next == nil {
				next = &node{col: -1, group: -1}
				n.kids[k] = next
			}
			n = next
			if j == len(c.Path)-1 {
				if n.col >= 0 || n.kids != nil {
					return bad("path %s is taken twice", strings.Join(c.Path, "."))
				}
				n.col = i
			}
		}
		if c.Name == spec.Time {
			if !c.Type.isTime() {
				return bad("time column %q has type %s", c.Name, c.Type)
			}
			s.time = i
		}
	}
	if s.time < 0 {
		return bad("time column %q is not a column", spec.Time)
	}
	if spec.Nested {
		for k, kid := range s.root.kids {
			group[k] = s.nest(kid)
		}
	}
	s.pq = pq.NewSchema(spec.Name, group)
	for _, path := range s.pq.Columns() {
		l, ok := s.leafAt(path)
		if !ok {
			return bad("Parquet leaf %s is not a column", strings.Join(path, ".")) // unreachable: s.pq is built from the same tree
		}
		s.leaves = append(s.leaves, l)
	}
	return s, nil
}

// nest returns the Parquet node of n (Nested): an optional group of its
// kids, or the optional leaf of its column. It numbers the groups.
func (s *Schema) nest(n *node) pq.Node {
	if n.col >= 0 {
		return pq.Optional(s.spec.Columns[n.col].Type.node())
	}
	n.group = s.groups
	s.groups++
	g := pq.Group{}
	for k, kid := range n.kids {
		g[k] = s.nest(kid)
	}
	return pq.Optional(g)
}

// leafAt describes the Parquet leaf at path (a path of s.pq.Columns(): the
// list levels of a list column are below its own name).
func (s *Schema) leafAt(path []string) (leaf, bool) {
	if path[0] == s.spec.Extra {
		return leaf{col: len(s.spec.Columns), def: 1}, true
	}
	if !s.spec.Nested {
		i := slices.IndexFunc(s.spec.Columns, func(c Column) bool { return c.Name == path[0] })
		return leaf{col: i, def: 1}, i >= 0
	}
	var l leaf
	n := s.root
	for _, k := range path {
		if n = n.kids[k]; n == nil {
			return l, false
		}
		l.def++
		if n.col >= 0 {
			l.col = n.col
			return l, true
		}
		l.groups = append(l.groups, n.group)
	}
	return l, false
}

// Name returns the schema's root name.
func (s *Schema) Name() string { return s.spec.Name }

// Columns returns a copy of the schema's columns, in the order given.
func (s *Schema) Columns() []Column {
	cols := slices.Clone(s.spec.Columns)
	for i := range cols {
		cols[i].Path = slices.Clone(cols[i].Path)
	}
	return cols
}

// Extra returns the name of the catch-all column.
func (s *Schema) Extra() string { return s.spec.Extra }

// Parquet returns the Parquet schema (columns in name order: parquet-go
// sorts a group's fields by name).
func (s *Schema) Parquet() *pq.Schema { return s.pq }

// HitColumn is the catch-all column of HitSchema.
const HitColumn = "extra"

// hitSpec is the hit of DESIGN §1, in its order.
var hitSpec = SchemaSpec{
	Name: "hit",
	Columns: []Column{
		{Name: "time", Path: []string{"time"}, Type: TimeSeconds},
		{Name: "request_id", Path: []string{"request_id"}, Type: String},
		{Name: "ip", Path: []string{"ip"}, Type: String},
		{Name: "datacenter", Path: []string{"datacenter"}, Type: String},
		{Name: "tor", Path: []string{"tor"}, Type: String},
		{Name: "remote_country", Path: []string{"remote_country"}, Type: String},
		{Name: "application_id", Path: []string{"application_id"}, Type: Int64List},
		{Name: "domain", Path: []string{"domain"}, Type: String},
		{Name: "method", Path: []string{"method"}, Type: String},
		{Name: "uri", Path: []string{"uri"}, Type: String},
		{Name: "protocol", Path: []string{"protocol"}, Type: String},
		{Name: "status_code", Path: []string{"status_code"}, Type: Int32},
		{Name: "attack_type", Path: []string{"attack_type"}, Type: String},
		{Name: "block_status", Path: []string{"block_status"}, Type: String},
		{Name: "payload", Path: []string{"payload"}, Type: StringList},
		{Name: "point", Path: []string{"point"}, Type: JSON},
		{Name: "tags", Path: []string{"tags"}, Type: JSON},
	},
	Extra: HitColumn,
	Time:  "time",
}

// constSchema returns the accessor of the schema of spec, a constant of
// this package: built once, the same value on every call; it panics if spec
// is invalid, which the schema's own test covers.
func constSchema(spec SchemaSpec) func() *Schema {
	get := sync.OnceValues(func() (*Schema, error) { return NewSchema(spec) })
	return func() *Schema {
		s, err := get()
		if err != nil {
			panic(err)
		}
		return s
	}
}

// HitSchema returns the schema of format "parquet": the hit's own fields,
// typed (see the package doc). It is the same value on every call
// (TestHitSchema checks hitSpec).
func HitSchema() *Schema { return hitSchema() }

var hitSchema = constSchema(hitSpec)

// OCSFColumn is the catch-all column of OCSFSchema. OCSF has no attribute of
// that name (its attributes are lowercase words without a vendor prefix).
const OCSFColumn = "hitship_extra"

// ocsfCol is a column of OCSFSchema: named by its dotted path.
func ocsfCol(t Type, path ...string) Column {
	return Column{Name: strings.Join(path, "."), Path: path, Type: t}
}

// ocsfSpec is every attribute package ocsf's mapper can emit (OCSF 1.1.0
// HTTP Activity, class 4002), in the record's order, with the OCSF type:
// integer_t (and port_t) Int32, long_t Int64, timestamp_t TimeMillis,
// string_t and its subtypes (ip_t, hostname_t, ...) String, arrays of them
// lists, and the open object unmapped JSON text. The ocsf package's tests
// check it against the OCSF schema files and the mapper's output.
var ocsfSpec = SchemaSpec{
	Name: "ocsf_http_activity",
	Columns: []Column{
		ocsfCol(Int32, "activity_id"),
		ocsfCol(String, "activity_name"),
		ocsfCol(String, "category_name"),
		ocsfCol(Int32, "category_uid"),
		ocsfCol(String, "class_name"),
		ocsfCol(Int32, "class_uid"),
		ocsfCol(String, "type_name"),
		ocsfCol(Int64, "type_uid"),
		ocsfCol(Int32, "severity_id"),
		ocsfCol(String, "severity"),
		ocsfCol(TimeMillis, "time"),
		ocsfCol(Int32, "timezone_offset"),
		ocsfCol(Int32, "action_id"),
		ocsfCol(String, "action"),
		ocsfCol(Int32, "disposition_id"),
		ocsfCol(String, "disposition"),
		ocsfCol(String, "metadata", "version"),
		ocsfCol(String, "metadata", "product", "name"),
		ocsfCol(String, "metadata", "product", "vendor_name"),
		ocsfCol(String, "metadata", "product", "version"),
		ocsfCol(StringList, "metadata", "profiles"),
		ocsfCol(String, "metadata", "uid"),
		ocsfCol(String, "metadata", "tenant_uid"),
		ocsfCol(String, "metadata", "original_time"),
		ocsfCol(String, "src_endpoint", "ip"),
		ocsfCol(String, "src_endpoint", "name"),
		ocsfCol(String, "src_endpoint", "location", "country"),
		ocsfCol(String, "dst_endpoint", "hostname"),
		ocsfCol(Int32, "dst_endpoint", "port"),
		ocsfCol(String, "dst_endpoint", "name"),
		ocsfCol(String, "http_request", "http_method"),
		ocsfCol(String, "http_request", "uid"),
		ocsfCol(String, "http_request", "url", "hostname"),
		ocsfCol(Int32, "http_request", "url", "port"),
		ocsfCol(String, "http_request", "url", "path"),
		ocsfCol(String, "http_request", "url", "query_string"),
		ocsfCol(Int32, "http_response", "code"),
		ocsfCol(String, "firewall_rule", "name"),
		ocsfCol(String, "firewall_rule", "condition"),
		ocsfCol(StringList, "firewall_rule", "match_details"),
		ocsfCol(JSON, "unmapped"),
	},
	Extra:  OCSFColumn,
	Time:   "time",
	Nested: true,
}

// OCSFSchema returns the schema of format "ocsf-parquet": OCSF 1.1.0 HTTP
// Activity records (package ocsf) in OCSF's own nesting (see the package
// doc). It is the same value on every call (TestOCSFSchema checks ocsfSpec).
func OCSFSchema() *Schema { return ocsfSchema() }

var ocsfSchema = constSchema(ocsfSpec)
