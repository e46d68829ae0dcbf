package ocsf

// A test-only OCSF validator whose rules are read from the schema's own files.
//
// testdata/ocsf-schema-1.1.0/ holds files copied verbatim from
// github.com/ocsf/ocsf-schema at tag v1.1.0 (commit
// 8ea34523a316c4bad7e360e870a23a8e5cb29bd5), Apache-2.0 (LICENSE there):
// version.json, dictionary.json, categories.json, the event chain of HTTP
// Activity (events/base_event.json -> events/network/network.json ->
// events/network/http.json), the includes they name, the profiles they name,
// and the objects a record of ours can reach. The loader resolves them the
// way the OCSF schema server compiles a class:
//
//   - "extends" chains are merged parent first; "$include" files are merged
//     before the including file's own attributes, later layers win.
//   - Attribute types, is_array, enum, sibling come from dictionary.json; a
//     class or object may override the type (http_request.http_method).
//     Enums are the union of the dictionary's and every layer's (the
//     server deep-merges them).
//   - Types ending in _t resolve through dictionary.json "types" to a base
//     (string_t, integer_t, long_t, float_t, boolean_t, json_t); any other
//     type names an object file. The type "object" (unmapped) is free-form.
//   - Attributes from a profile include (meta "profile") belong to that
//     profile: they may appear, and are required, only when the profile is
//     listed in metadata.profiles.
//   - class_uid = category uid (categories.json) * 1000 + class uid; the
//     class_uid, category_uid and type_uid enums are those of this class, with
//     captions "HTTP Activity", "Network Activity", "HTTP Activity: <activity>".
//   - type_uid = class_uid * 100 + activity_id (dictionary.json, type_uid).
//   - A sibling string (activity_name, severity, action, disposition, ...)
//     equals the caption of its id, except for 99 "Other" where the source
//     defines it (dictionary.json, e.g. disposition, type).
//   - constraints.at_least_one of an object (inherited through extends unless
//     the object gives its own) holds.
//
//   - String subtypes match their dictionary "types" regex and max_len
//     (ip_t, hostname_t, ...); integer subtypes lie in their range (port_t).
//
// Not checked: string_t's own max_len (65535 bytes; a hit's strings pass
// through at their length), and observables.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"
)

const schemaDir = "testdata/ocsf-schema-1.1.0"

type attrSpec struct {
	name        string
	typ         string // base type (string_t, integer_t, ...) or object name
	dictType    string // as written, e.g. hostname_t
	isArray     bool
	requirement string
	enum        map[string]string // value -> caption
	sibling     string
	profile     string
}

type objSpec struct {
	name       string
	attrs      map[string]*attrSpec
	atLeastOne []string
	open       bool
}

type ocsfSchema struct {
	version       string
	classUID      int
	categoryUID   int
	className     string
	classProfiles []string
	class         *objSpec
	objects       map[string]*objSpec
	dict          map[string]rawAttr
	baseTypes     map[string]string
	typeRules     map[string]typeRule
}

// typeRule is what dictionary.json "types" says of a string or integer
// subtype beyond its base type.
type typeRule struct {
	regex  *regexp.Regexp
	maxLen int
	rng    []int64
}

type rawEnum struct {
	Caption string `json:"caption"`
}

type rawAttr struct {
	Caption     string             `json:"caption"`
	Type        string             `json:"type"`
	IsArray     bool               `json:"is_array"`
	Requirement string             `json:"requirement"`
	Enum        map[string]rawEnum `json:"enum"`
	Sibling     string             `json:"sibling"`
}

type rawFile struct {
	Name        string                     `json:"name"`
	Caption     string                     `json:"caption"`
	Category    string                     `json:"category"`
	Extends     string                     `json:"extends"`
	UID         int                        `json:"uid"`
	Meta        string                     `json:"meta"`
	Profiles    []string                   `json:"profiles"`
	Attributes  map[string]json.RawMessage `json:"attributes"`
	Constraints struct {
		AtLeastOne []string `json:"at_least_one"`
	} `json:"constraints"`
}

func readSchemaFile(rel string, v any) error {
	b, err := os.ReadFile(filepath.Join(schemaDir, rel))
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

var (
	schemaOnce sync.Once
	schemaVal  *ocsfSchema
	schemaErr  error
)

// loadSchema returns the compiled HTTP Activity class, once per test binary.
func loadSchema() (*ocsfSchema, error) {
	schemaOnce.Do(func() { schemaVal, schemaErr = compileSchema() })
	return schemaVal, schemaErr
}

// eventFiles maps event names to their files (by "extends" name).
var eventFiles = map[string]string{
	"base_event":    "events/base_event.json",
	"network":       "events/network/network.json",
	"http_activity": "events/network/http.json",
}

func compileSchema() (*ocsfSchema, error) {
	s := &ocsfSchema{objects: map[string]*objSpec{}, baseTypes: map[string]string{}}
	var ver struct{ Version string }
	if err := readSchemaFile("version.json", &ver); err != nil {
		return nil, err
	}
	s.version = ver.Version
	var dict struct {
		Attributes map[string]rawAttr `json:"attributes"`
		Types      struct {
			Attributes map[string]struct {
				Type   string  `json:"type"`
				Regex  string  `json:"regex"`
				MaxLen int     `json:"max_len"`
				Range  []int64 `json:"range"`
			} `json:"attributes"`
		} `json:"types"`
	}
	if err := readSchemaFile("dictionary.json", &dict); err != nil {
		return nil, err
	}
	s.dict = dict.Attributes
	s.typeRules = map[string]typeRule{}
	for name, t := range dict.Types.Attributes {
		if name == "string_t" {
			continue // its max_len 65535 is not checked (see the top of the file)
		}
		var tr typeRule
		if t.Regex != "" {
			re, err := regexp.Compile(t.Regex)
			if err != nil {
				return nil, fmt.Errorf("type %s: regex: %w", name, err)
			}
			tr.regex = re
		}
		tr.maxLen, tr.rng = t.MaxLen, t.Range
		s.typeRules[name] = tr
	}
	for name := range dict.Types.Attributes {
		t := name
		for i := 0; i < 10; i++ {
			next := dict.Types.Attributes[t].Type
			if next == "" {
				break
			}
			t = next
		}
		s.baseTypes[name] = t
	}
	var cats struct {
		Attributes map[string]struct {
			Caption string `json:"caption"`
			UID     int    `json:"uid"`
		} `json:"attributes"`
	}
	if err := readSchemaFile("categories.json", &cats); err != nil {
		return nil, err
	}

	var top rawFile
	if err := readSchemaFile(eventFiles["http_activity"], &top); err != nil {
		return nil, err
	}
	cat, ok := cats.Attributes[top.Category]
	if !ok {
		return nil, fmt.Errorf("category %q not in categories.json", top.Category)
	}
	s.categoryUID = cat.UID
	s.classUID = cat.UID*1000 + top.UID
	s.className = top.Caption

	layers, profiles, err := s.chain(top, func(name string) (string, error) {
		f, ok := eventFiles[name]
		if !ok {
			return "", fmt.Errorf("event %q not embedded", name)
		}
		return f, nil
	})
	if err != nil {
		return nil, err
	}
	s.classProfiles = profiles
	class, err := s.build(top.Name, layers)
	if err != nil {
		return nil, err
	}
	s.class = class

	// This class's own identity enums, as the server generates them.
	class.attrs["class_uid"].enum = map[string]string{strconv.Itoa(s.classUID): s.className}
	class.attrs["category_uid"].enum = map[string]string{strconv.Itoa(s.categoryUID): cat.Caption}
	tu := map[string]string{}
	for id, caption := range class.attrs["activity_id"].enum {
		n, err := strconv.Atoi(id)
		if err != nil {
			return nil, err
		}
		tu[strconv.Itoa(s.classUID*100+n)] = s.className + ": " + caption
	}
	class.attrs["type_uid"].enum = tu
	return s, nil
}

// layer is the attributes of one file (or include) with the profile they
// belong to.
type layer struct {
	attrs      map[string]rawAttr
	profile    string
	atLeastOne []string
}

// chain returns the attribute layers of f, parent first, each file's
// includes before its own attributes, and the profiles the chain declares.
func (s *ocsfSchema) chain(f rawFile, path func(string) (string, error)) ([]layer, []string, error) {
	var layers []layer
	var profiles []string
	if f.Extends != "" {
		p, err := path(f.Extends)
		if err != nil {
			return nil, nil, err
		}
		var parent rawFile
		if err := readSchemaFile(p, &parent); err != nil {
			return nil, nil, err
		}
		layers, profiles, err = s.chain(parent, path)
		if err != nil {
			return nil, nil, err
		}
	}
	profiles = append(profiles, f.Profiles...)
	own := layer{attrs: map[string]rawAttr{}, atLeastOne: f.Constraints.AtLeastOne}
	for name, raw := range f.Attributes {
		if name == "$include" {
			continue
		}
		var a rawAttr
		if err := json.Unmarshal(raw, &a); err != nil {
			return nil, nil, fmt.Errorf("%s.%s: %w", f.Name, name, err)
		}
		own.attrs[name] = a
	}
	if inc, ok := f.Attributes["$include"]; ok {
		var files []string
		if err := json.Unmarshal(inc, &files); err != nil {
			return nil, nil, err
		}
		for _, file := range files {
			var i rawFile
			if err := readSchemaFile(file, &i); err != nil {
				return nil, nil, err
			}
			l := layer{attrs: map[string]rawAttr{}}
			if i.Meta == "profile" {
				l.profile = i.Name
			}
			for name, raw := range i.Attributes {
				var a rawAttr
				if err := json.Unmarshal(raw, &a); err != nil {
					return nil, nil, fmt.Errorf("%s.%s: %w", file, name, err)
				}
				l.attrs[name] = a
			}
			layers = append(layers, l)
		}
	}
	return append(layers, own), profiles, nil
}

// build merges layers over the dictionary into one object spec and compiles
// the objects its attributes refer to.
func (s *ocsfSchema) build(name string, layers []layer) (*objSpec, error) {
	o := &objSpec{name: name, attrs: map[string]*attrSpec{}}
	for _, l := range layers {
		if l.atLeastOne != nil {
			o.atLeastOne = l.atLeastOne
		}
		for an, la := range l.attrs {
			a := o.attrs[an]
			if a == nil {
				d, ok := s.dict[an]
				if !ok {
					return nil, fmt.Errorf("%s.%s: not in dictionary.json", name, an)
				}
				a = &attrSpec{name: an, dictType: d.Type, isArray: d.IsArray, sibling: d.Sibling, enum: map[string]string{}}
				for k, v := range d.Enum {
					a.enum[k] = v.Caption
				}
				o.attrs[an] = a
			}
			if la.Type != "" {
				a.dictType = la.Type
			}
			if la.Requirement != "" {
				a.requirement = la.Requirement
			}
			for k, v := range la.Enum {
				a.enum[k] = v.Caption
			}
			if l.profile != "" && a.profile == "" {
				a.profile = l.profile
			}
		}
	}
	for _, a := range o.attrs {
		if strings.HasSuffix(a.dictType, "_t") {
			base, ok := s.baseTypes[a.dictType]
			if !ok {
				return nil, fmt.Errorf("%s.%s: type %s not in dictionary types", name, a.name, a.dictType)
			}
			a.typ = base
		} else {
			a.typ = a.dictType
		}
	}
	return o, nil
}

// object compiles objects/<name>.json on first use.
func (s *ocsfSchema) object(name string) (*objSpec, error) {
	if o, ok := s.objects[name]; ok {
		return o, nil
	}
	if name == "object" {
		o := &objSpec{name: name, open: true}
		s.objects[name] = o
		return o, nil
	}
	var f rawFile
	if err := readSchemaFile("objects/"+name+".json", &f); err != nil {
		return nil, fmt.Errorf("object %s not embedded: %w", name, err)
	}
	layers, _, err := s.chain(f, func(n string) (string, error) { return "objects/" + n + ".json", nil })
	if err != nil {
		return nil, err
	}
	o, err := s.build(name, layers)
	if err != nil {
		return nil, err
	}
	s.objects[name] = o
	return o, nil
}

// Report is the outcome of validating one record.
type Report struct {
	Errors []string
	// MissingRecommended lists recommended attributes that are absent, as
	// paths (e.g. "http_request.url.scheme").
	MissingRecommended []string
}

var schemaMu sync.Mutex // object() fills a cache

// Validate checks one record against the compiled class.
func (s *ocsfSchema) Validate(rec []byte) Report {
	schemaMu.Lock()
	defer schemaMu.Unlock()
	var r Report
	if !utf8.Valid(rec) {
		r.Errors = append(r.Errors, "record is not valid UTF-8")
		return r
	}
	v, err := decodeStrict(rec)
	if err != nil {
		r.Errors = append(r.Errors, "record: "+err.Error())
		return r
	}
	obj, ok := v.(map[string]any)
	if !ok {
		r.Errors = append(r.Errors, "record is not an object")
		return r
	}
	profiles := map[string]bool{}
	if md, ok := obj["metadata"].(map[string]any); ok {
		if ps, ok := md["profiles"].([]any); ok {
			for _, p := range ps {
				name, _ := p.(string)
				if !slices.Contains(s.classProfiles, name) {
					r.Errors = append(r.Errors, fmt.Sprintf("metadata.profiles: %q is not a profile of this class %v", name, s.classProfiles))
				}
				profiles[name] = true
			}
		}
		if md["version"] != s.version {
			r.Errors = append(r.Errors, fmt.Sprintf("metadata.version: %v, want %q", md["version"], s.version))
		}
	}
	s.validateObject(&r, "", obj, s.class, profiles)

	// type_uid = class_uid * 100 + activity_id
	cu, err1 := numberOf(obj["class_uid"])
	ai, err2 := numberOf(obj["activity_id"])
	tu, err3 := numberOf(obj["type_uid"])
	if err1 == nil && err2 == nil && err3 == nil && tu != cu*100+ai {
		r.Errors = append(r.Errors, fmt.Sprintf("type_uid %d != class_uid*100 + activity_id = %d", tu, cu*100+ai))
	}
	return r
}

func numberOf(v any) (int64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, errors.New("not a number")
	}
	return n.Int64()
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func (s *ocsfSchema) validateObject(r *Report, path string, obj map[string]any, spec *objSpec, profiles map[string]bool) {
	if spec.open {
		return
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		p := join(path, k)
		a, ok := spec.attrs[k]
		if !ok {
			r.Errors = append(r.Errors, fmt.Sprintf("%s: not an attribute of %s", p, spec.name))
			continue
		}
		if a.profile != "" && !profiles[a.profile] {
			r.Errors = append(r.Errors, fmt.Sprintf("%s: belongs to profile %s, not listed in metadata.profiles", p, a.profile))
		}
		s.validateValue(r, p, obj[k], a, profiles)
	}
	names := make([]string, 0, len(spec.attrs))
	for n := range spec.attrs {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		a := spec.attrs[n]
		if _, present := obj[n]; present || (a.profile != "" && !profiles[a.profile]) {
			continue
		}
		switch a.requirement {
		case "required":
			r.Errors = append(r.Errors, fmt.Sprintf("%s: required by %s, missing", join(path, n), spec.name))
		case "recommended":
			r.MissingRecommended = append(r.MissingRecommended, join(path, n))
		}
	}
	if len(spec.atLeastOne) > 0 && !slices.ContainsFunc(spec.atLeastOne, func(n string) bool { _, ok := obj[n]; return ok }) {
		r.Errors = append(r.Errors, fmt.Sprintf("%s: %s needs at least one of %v", path, spec.name, spec.atLeastOne))
	}
	// Siblings: the caption of the id, unless the id is 99 Other.
	for _, n := range names {
		a := spec.attrs[n]
		if a.sibling == "" || len(a.enum) == 0 {
			continue
		}
		id, ok := obj[n].(json.Number)
		if !ok {
			continue
		}
		sib, present := obj[a.sibling]
		if !present || id.String() == "99" {
			continue
		}
		if want := a.enum[id.String()]; sib != want {
			r.Errors = append(r.Errors, fmt.Sprintf("%s: %v, want %q, the caption of %s %s", join(path, a.sibling), sib, want, n, id))
		}
	}
}

func (s *ocsfSchema) validateValue(r *Report, path string, v any, a *attrSpec, profiles map[string]bool) {
	if a.isArray {
		arr, ok := v.([]any)
		if !ok {
			r.Errors = append(r.Errors, fmt.Sprintf("%s: want an array of %s, got %T", path, a.dictType, v))
			return
		}
		for i, e := range arr {
			s.validateOne(r, fmt.Sprintf("%s[%d]", path, i), e, a, profiles)
		}
		return
	}
	s.validateOne(r, path, v, a, profiles)
}

func (s *ocsfSchema) validateOne(r *Report, path string, v any, a *attrSpec, profiles map[string]bool) {
	bad := func(want string) {
		r.Errors = append(r.Errors, fmt.Sprintf("%s: want %s (%s), got %T %v", path, want, a.dictType, v, v))
	}
	switch a.typ {
	case "string_t":
		if _, ok := v.(string); !ok {
			bad("a string")
			return
		}
	case "integer_t", "long_t":
		n, ok := v.(json.Number)
		if !ok {
			bad("an integer")
			return
		}
		i, err := strconv.ParseInt(n.String(), 10, 64)
		if err != nil || (a.typ == "integer_t" && (i < -1<<31 || i > 1<<31-1)) {
			bad("an integer in range")
			return
		}
	case "float_t":
		if _, ok := v.(json.Number); !ok {
			bad("a number")
			return
		}
	case "boolean_t":
		if _, ok := v.(bool); !ok {
			bad("a boolean")
			return
		}
	case "json_t":
	default:
		o, ok := v.(map[string]any)
		if !ok {
			bad("an object")
			return
		}
		spec, err := s.object(a.typ)
		if err != nil {
			r.Errors = append(r.Errors, fmt.Sprintf("%s: %v", path, err))
			return
		}
		s.validateObject(r, path, o, spec, profiles)
		return
	}
	if tr, ok := s.typeRules[a.dictType]; ok {
		switch x := v.(type) {
		case string:
			if tr.maxLen > 0 && len(x) > tr.maxLen {
				r.Errors = append(r.Errors, fmt.Sprintf("%s: %d bytes, %s allows %d", path, len(x), a.dictType, tr.maxLen))
			}
			if tr.regex != nil && !tr.regex.MatchString(x) {
				r.Errors = append(r.Errors, fmt.Sprintf("%s: %q does not match the %s regex", path, x, a.dictType))
			}
		case json.Number:
			if i, err := x.Int64(); len(tr.rng) == 2 && (err != nil || i < tr.rng[0] || i > tr.rng[1]) {
				r.Errors = append(r.Errors, fmt.Sprintf("%s: %s outside the %s range %v", path, x, a.dictType, tr.rng))
			}
		}
	}
	if len(a.enum) > 0 {
		var key string
		switch x := v.(type) {
		case string:
			key = x
		case json.Number:
			key = x.String()
		}
		if _, ok := a.enum[key]; !ok {
			r.Errors = append(r.Errors, fmt.Sprintf("%s: %v not in the enum of %s", path, v, a.name))
		}
	}
}

// decodeStrict decodes one JSON value with numbers as json.Number and
// rejects duplicate keys (outside unmapped, which holds the source's own
// values as they came) and trailing data.
func decodeStrict(b []byte) (any, error) {
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	v, err := decodeValue(dec, "")
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("trailing data")
	}
	return v, nil
}

func decodeValue(dec *json.Decoder, path string) (any, error) {
	t, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t {
	case json.Delim('{'):
		m := map[string]any{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			k := kt.(string)
			p := join(path, k)
			if _, dup := m[k]; dup && !strings.HasPrefix(p, "unmapped.") {
				return nil, fmt.Errorf("duplicate key %q", p)
			}
			v, err := decodeValue(dec, p)
			if err != nil {
				return nil, err
			}
			m[k] = v
		}
		_, err := dec.Token()
		return m, err
	case json.Delim('['):
		a := []any{}
		for dec.More() {
			v, err := decodeValue(dec, path+"[]")
			if err != nil {
				return nil, err
			}
			a = append(a, v)
		}
		_, err := dec.Token()
		return a, err
	}
	return t, nil
}
