package ocsf

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/sample_hits.ocsf.jsonl")

func schemaT(tb testing.TB) *ocsfSchema {
	tb.Helper()
	s, err := loadSchema()
	if err != nil {
		tb.Fatalf("load schema: %v", err)
	}
	return s
}

func mustValidate(tb testing.TB, rec []byte) Report {
	tb.Helper()
	r := schemaT(tb).Validate(rec)
	if len(r.Errors) > 0 {
		tb.Fatalf("record does not validate against OCSF 1.1.0:\n  %s\nrecord: %s", strings.Join(r.Errors, "\n  "), rec)
	}
	return r
}

func mapT(tb testing.TB, hit string) []byte {
	tb.Helper()
	m, err := NewMapper(Options{})
	if err != nil {
		tb.Fatal(err)
	}
	rec, err := m.AppendRecord(nil, []byte(hit))
	if err != nil {
		tb.Fatalf("map %s: %v", hit, err)
	}
	return rec
}

func decode(tb testing.TB, b []byte) map[string]any {
	tb.Helper()
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		tb.Fatalf("decode %s: %v", b, err)
	}
	return m
}

// at returns the value at a dotted path of a decoded record.
func at(m map[string]any, path string) (any, bool) {
	var v any = m
	for _, p := range strings.Split(path, ".") {
		o, ok := v.(map[string]any)
		if !ok {
			return nil, false
		}
		v, ok = o[p]
		if !ok {
			return nil, false
		}
	}
	return v, true
}

func sampleHits(t *testing.T) [][]byte {
	f, err := os.ReadFile("testdata/sample_hits.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var hits [][]byte
	sc := bufio.NewScanner(bytes.NewReader(f))
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) > 0 {
			hits = append(hits, slices.Clone(sc.Bytes()))
		}
	}
	return hits
}

// TestSchemaCompiled pins what the loader read from the schema files, so a
// loader bug cannot quietly make every check vacuous.
func TestSchemaCompiled(t *testing.T) {
	s := schemaT(t)
	if s.version != "1.1.0" || s.classUID != 4002 || s.categoryUID != 4 || s.className != "HTTP Activity" {
		t.Fatalf("schema identity: version %s class %d category %d %q", s.version, s.classUID, s.categoryUID, s.className)
	}
	if s.classUID != ClassUID || s.categoryUID != CategoryUID || s.version != SchemaVersion {
		t.Fatal("package constants disagree with the schema")
	}
	act := s.class.attrs["activity_id"].enum
	want := map[string]string{"0": "Unknown", "1": "Connect", "2": "Delete", "3": "Get", "4": "Head", "5": "Options", "6": "Post", "7": "Put", "8": "Trace", "99": "Other"}
	if !reflect.DeepEqual(act, want) {
		t.Fatalf("activity_id enum %v", act)
	}
	for _, n := range []string{"metadata", "time", "severity_id", "activity_id", "class_uid", "category_uid", "type_uid", "src_endpoint", "dst_endpoint", "http_request", "http_response"} {
		if a := s.class.attrs[n]; a == nil || a.requirement != "required" {
			t.Errorf("%s should be required", n)
		}
	}
	if a := s.class.attrs["action_id"]; a.profile != "security_control" || a.requirement != "required" {
		t.Errorf("action_id: profile %q requirement %q", a.profile, a.requirement)
	}
	if a := s.class.attrs["disposition_id"]; a.profile != "security_control" || a.enum["15"] != "Detected" || a.enum["2"] != "Blocked" {
		t.Errorf("disposition_id: %+v", a)
	}
	if a := s.class.attrs["time"]; a.typ != "long_t" || a.dictType != "timestamp_t" {
		t.Errorf("time type %s/%s", a.dictType, a.typ)
	}
	if !slices.Equal(s.classProfiles, []string{"cloud", "datetime", "host", "network_proxy", "security_control", "load_balancer"}) {
		t.Errorf("class profiles %v", s.classProfiles)
	}
}

// TestValidatorRejects proves each rule bites: every mutation of a valid
// record must be refused.
func TestValidatorRejects(t *testing.T) {
	good := mapT(t, string(sampleHits(t)[0]))
	mustValidate(t, good)
	tests := []struct {
		name string
		want string // in one of the errors: the rule that bit
		edit func(m map[string]any)
	}{
		{"missing required time", `time: required`, func(m map[string]any) { delete(m, "time") }},
		{"missing required severity_id", `severity_id: required`, func(m map[string]any) { delete(m, "severity_id") }},
		{"missing required http_response.code", `http_response.code: required`, func(m map[string]any) { m["http_response"] = map[string]any{} }},
		{"missing profile attribute action_id", `action_id: required`, func(m map[string]any) { delete(m, "action_id"); delete(m, "action") }},
		{"profile not listed", `not listed in metadata.profiles`, func(m map[string]any) { m["metadata"].(map[string]any)["profiles"] = []any{} }},
		{"unknown profile", `is not a profile of this class`, func(m map[string]any) { m["metadata"].(map[string]any)["profiles"] = []any{"security_control", "nope"} }},
		{"undefined top-level attribute", `tor: not an attribute of http_activity`, func(m map[string]any) { m["tor"] = "none" }},
		{"undefined nested attribute", `http_request.point: not an attribute of http_request`, func(m map[string]any) { m["http_request"].(map[string]any)["point"] = "uri" }},
		{"activity_id out of enum", `activity_id: 9 not in the enum`, func(m map[string]any) { m["activity_id"] = json.Number("9"); m["type_uid"] = json.Number("400209") }},
		{"severity_id out of enum", `severity_id: 7 not in the enum`, func(m map[string]any) { m["severity_id"] = json.Number("7") }},
		{"disposition_id out of enum", `disposition_id: 28 not in the enum`, func(m map[string]any) { m["disposition_id"] = json.Number("28") }},
		{"action_id out of enum", `action_id: 3 not in the enum`, func(m map[string]any) { m["action_id"] = json.Number("3") }},
		{"class_uid wrong", `class_uid: 4001 not in the enum`, func(m map[string]any) { m["class_uid"] = json.Number("4001") }},
		{"category_uid wrong", `category_uid: 6 not in the enum`, func(m map[string]any) { m["category_uid"] = json.Number("6") }},
		{"type_uid not class*100+activity", `type_uid 400204 != class_uid*100 + activity_id`, func(m map[string]any) { m["type_uid"] = json.Number("400204") }},
		{"sibling caption wrong", `activity_name: Post, want "Get"`, func(m map[string]any) { m["activity_name"] = "Post" }},
		{"time as string", `time: want an integer`, func(m map[string]any) { m["time"] = "1687241470000" }},
		{"time fractional", `time: want an integer`, func(m map[string]any) { m["time"] = json.Number("1.5") }},
		{"code beyond integer_t", `http_response.code: want an integer in range`, func(m map[string]any) { m["http_response"] = map[string]any{"code": json.Number("4294967296")} }},
		{"object where string", `metadata.uid: want a string`, func(m map[string]any) { m["metadata"].(map[string]any)["uid"] = map[string]any{} }},
		{"string where object", `src_endpoint: want an object`, func(m map[string]any) { m["src_endpoint"] = "127.0.0.1" }},
		{"array where scalar", `firewall_rule.name: want a string`, func(m map[string]any) { m["firewall_rule"].(map[string]any)["name"] = []any{"x"} }},
		{"scalar where array", `firewall_rule.match_details: want an array`, func(m map[string]any) { m["firewall_rule"].(map[string]any)["match_details"] = "x" }},
		{"http_method out of enum", `http_request.http_method: PATCH not in the enum`, func(m map[string]any) { m["http_request"].(map[string]any)["http_method"] = "PATCH" }},
		{"at_least_one endpoint", `src_endpoint: network_endpoint needs at least one of`, func(m map[string]any) { m["src_endpoint"] = map[string]any{"port": json.Number("1")} }},
		{"at_least_one url", `http_request.url: url needs at least one of`, func(m map[string]any) { m["http_request"].(map[string]any)["url"] = map[string]any{"hostname": "x"} }},
		{"ip not an IP", `src_endpoint.ip: "not-an-ip" does not match the ip_t regex`, func(m map[string]any) { m["src_endpoint"] = map[string]any{"ip": "not-an-ip"} }},
		{"hostname with a port", `dst_endpoint.hostname: "a.example:8080" does not match the hostname_t regex`, func(m map[string]any) { m["dst_endpoint"] = map[string]any{"hostname": "a.example:8080"} }},
		{"port out of range", `dst_endpoint.port: 70000 outside the port_t range`, func(m map[string]any) {
			m["dst_endpoint"] = map[string]any{"hostname": "a", "port": json.Number("70000")}
		}},
		{"metadata.version", `metadata.version: 1.2.0`, func(m map[string]any) { m["metadata"].(map[string]any)["version"] = "1.2.0" }},
		{"vendor_name missing", `metadata.product.vendor_name: required`, func(m map[string]any) {
			m["metadata"].(map[string]any)["product"] = map[string]any{"name": "x"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := decode(t, good)
			tt.edit(m)
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			r := schemaT(t).Validate(b)
			if !slices.ContainsFunc(r.Errors, func(e string) bool { return strings.Contains(e, tt.want) }) {
				t.Fatalf("want an error with %q, got %q\nrecord: %s", tt.want, r.Errors, b)
			}
		})
	}
	if r := schemaT(t).Validate([]byte(`{"time":1,"time":2}`)); !slices.ContainsFunc(r.Errors, func(s string) bool { return strings.Contains(s, "duplicate") }) {
		t.Errorf("duplicate key accepted: %v", r.Errors)
	}
}
