package ocsf

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// checkLanded asserts that every top-level field of hit is in the record:
// at its OCSF home, or verbatim under unmapped.
func checkLanded(tb testing.TB, hit, rec []byte) {
	tb.Helper()
	h := decode(tb, hit)
	r := decode(tb, rec)
	unmapped, _ := r["unmapped"].(map[string]any)
	get := func(p string) any { v, _ := at(r, p); return v }
	for k, hv := range h {
		if uv, ok := unmapped[k]; ok {
			if !reflect.DeepEqual(uv, hv) {
				tb.Errorf("unmapped.%s = %v, hit has %v", k, uv, hv)
			}
			continue
		}
		var ok bool
		switch k {
		case "time":
			want := fmt.Sprint(hv)
			ok = get("metadata.original_time") == want
		case "request_id":
			ok = get("metadata.uid") == hv && get("http_request.uid") == hv
		case "ip":
			ok = get("src_endpoint.ip") == hv
		case "remote_country":
			ok = get("src_endpoint.location.country") == hv
		case "domain":
			d := get("dst_endpoint.hostname")
			if p, has := at(r, "dst_endpoint.port"); has {
				d = fmt.Sprint(d, ":", p)
			}
			ok = d == hv || get("dst_endpoint.name") == hv
		case "method":
			ok = get("http_request.http_method") == hv || (get("activity_id") == json.Number("99") && get("activity_name") == hv)
		case "uri":
			u := fmt.Sprint(get("http_request.url.path"))
			if q, has := at(r, "http_request.url.query_string"); has {
				u += "?" + fmt.Sprint(q)
			}
			ok = u == hv
		case "status_code":
			ok = fmt.Sprint(get("http_response.code")) == strings.TrimLeft(fmt.Sprint(hv), "0") ||
				(fmt.Sprint(get("http_response.code")) == "0" && strings.Trim(fmt.Sprint(hv), "0") == "")
		case "attack_type":
			ok = get("firewall_rule.name") == hv
		case "block_status":
			switch hv {
			case "blocked":
				ok = get("disposition_id") == json.Number("2")
			case "monitored":
				ok = get("disposition_id") == json.Number("15")
			default:
				ok = get("disposition_id") == json.Number("99") && get("disposition") == hv
			}
		case "payload":
			ok = reflect.DeepEqual(get("firewall_rule.match_details"), hv)
		case "client_id":
			ok = get("metadata.tenant_uid") == strings.Trim(fmt.Sprint(hv), `"`)
		default:
			tb.Errorf("field %q lost: neither mapped nor in unmapped", k)
			continue
		}
		if !ok {
			tb.Errorf("field %q = %v did not land at its OCSF home\nrecord: %s", k, hv, rec)
		}
	}
}

func TestGoldenSampleHits(t *testing.T) {
	var out bytes.Buffer
	for _, hit := range sampleHits(t) {
		rec := mapT(t, string(hit))
		r := mustValidate(t, rec)
		checkLanded(t, hit, rec)
		checkRecommended(t, hit, r)
		out.Write(rec)
		out.WriteByte('\n')
	}
	const golden = "testdata/sample_hits.ocsf.jsonl"
	if *update {
		if err := os.WriteFile(golden, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update)", err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("output differs from %s (run go test -update if intended)\ngot:\n%s", golden, out.Bytes())
	}
	// The JSON-array form holds the same hits.
	arr, err := os.ReadFile("testdata/sample_hits.json")
	if err != nil {
		t.Fatal(err)
	}
	var hits []json.RawMessage
	if err := json.Unmarshal(arr, &hits); err != nil {
		t.Fatal(err)
	}
	var out2 bytes.Buffer
	for _, h := range hits {
		out2.Write(mapT(t, string(h)))
		out2.WriteByte('\n')
	}
	if !bytes.Equal(out2.Bytes(), want) {
		t.Errorf("sample_hits.json maps differently from sample_hits.jsonl")
	}
}

// recommendedFrom lists recommended OCSF attributes and the hit field that
// feeds each: when the hit has the field (in a mappable form) the attribute
// must be there. The other recommended attributes (url.scheme, user_agent,
// ports, message, status_id, ...) have no source in a hit.
var recommendedFrom = map[string]string{
	"metadata.original_time":        "time",
	"metadata.tenant_uid":           "client_id",
	"timezone_offset":               "time",
	"disposition_id":                "block_status",
	"src_endpoint.location.country": "remote_country",
	"src_endpoint.ip":               "ip",
	"dst_endpoint.hostname":         "domain",
	"http_request.url":              "uri",
	"http_request.url.hostname":     "domain",
	"http_request.url.path":         "uri",
	"http_request.http_method":      "method",
	"firewall_rule.name":            "attack_type",
	"http_request.url.query_string": "uri",
}

func checkRecommended(tb testing.TB, hit []byte, r Report) {
	tb.Helper()
	h := decode(tb, hit)
	for _, p := range r.MissingRecommended {
		f, ok := recommendedFrom[p]
		if !ok {
			continue
		}
		v, has := h[f]
		s, isStr := v.(string)
		switch {
		case !has || v == nil:
		case p == "http_request.url.query_string" && !strings.Contains(s, "?"):
		case p == "http_request.http_method" && isStr && !isEnumMethod(s):
		case p == "src_endpoint.ip" && isStr && !isIP([]byte(s)):
		case (p == "dst_endpoint.hostname" || p == "http_request.url.hostname") && isStr && !isHostLike(s):
		case p == "metadata.tenant_uid" || p == "firewall_rule.name" || strings.HasPrefix(p, "src_endpoint") || strings.HasPrefix(p, "dst_endpoint"):
			if isStr && s != "" || p == "metadata.tenant_uid" && !isStr {
				tb.Errorf("recommended %s missing though the hit has %s = %v", p, f, v)
			}
		default:
			tb.Errorf("recommended %s missing though the hit has %s = %v", p, f, v)
		}
	}
}

func isHostLike(s string) bool {
	h, _ := splitHostPort([]byte(s))
	return h != nil
}

func isEnumMethod(s string) bool {
	for _, a := range activities {
		if a.method == s {
			return true
		}
	}
	return false
}

const base = `{"time":"1687241470","request_id":"d2a900a6efac7a7c893a00903205071a","ip":"127.0.0.1","datacenter":"unknown","tor":"none","remote_country":null,"application_id":[-1],"domain":"localhost","method":"GET","uri":"/etc/passwd","protocol":"none","status_code":499,"attack_type":"ptrav","block_status":"monitored","payload":["/etc/passwd"],"point":["uri"],"tags":{"lom_id":7,"libproton_version":"4.4.11","brute_counter":"c188cd2baa2cefb3f3688cb4008a649e","wallarm_mode":"monitoring","final_wallarm_mode":"monitoring"}}`

// with returns base with field k set to the raw JSON v ("" removes it).
func with(kv ...string) string {
	s := base
	for i := 0; i < len(kv); i += 2 {
		k, v := kv[i], kv[i+1]
		m := map[string]json.RawMessage{}
		var order []string
		d := json.NewDecoder(strings.NewReader(s))
		d.Token()
		for d.More() {
			t, _ := d.Token()
			var raw json.RawMessage
			d.Decode(&raw)
			m[t.(string)] = raw
			order = append(order, t.(string))
		}
		if _, ok := m[k]; !ok {
			order = append(order, k)
		}
		m[k] = json.RawMessage(v)
		var b strings.Builder
		b.WriteByte('{')
		n := 0
		for _, o := range order {
			if len(m[o]) == 0 {
				continue
			}
			if n > 0 {
				b.WriteByte(',')
			}
			n++
			fmt.Fprintf(&b, "%q:%s", o, m[o])
		}
		b.WriteByte('}')
		s = b.String()
	}
	return s
}

func TestMapCases(t *testing.T) {
	tests := []struct {
		name     string
		hit      string
		want     map[string]any // path -> value (json.Number for numbers)
		absent   []string
		unmapped []string
	}{
		{name: "sample", hit: base,
			want: map[string]any{"class_uid": json.Number("4002"), "category_uid": json.Number("4"), "activity_id": json.Number("3"),
				"type_uid": json.Number("400203"), "time": json.Number("1687241470000"), "severity_id": json.Number("3"),
				"action_id": json.Number("1"), "disposition_id": json.Number("15"), "metadata.version": "1.1.0",
				"metadata.uid": "d2a900a6efac7a7c893a00903205071a", "metadata.original_time": "1687241470",
				"src_endpoint.ip": "127.0.0.1", "dst_endpoint.hostname": "localhost", "http_request.url.path": "/etc/passwd",
				"http_request.url.hostname": "localhost", "http_response.code": json.Number("499"),
				"firewall_rule.name": "ptrav", "firewall_rule.condition": "ptrav"},
			absent:   []string{"src_endpoint.location", "http_request.url.query_string"},
			unmapped: []string{"datacenter", "tor", "remote_country", "application_id", "protocol", "point", "tags"}},
		{name: "unknown field", hit: with("new_field", `{"a":[1,{"b":null}]}`), unmapped: []string{"new_field"}},
		{name: "unknown field named like OCSF", hit: with("class_uid", `1`, "unmapped", `"x"`), want: map[string]any{"class_uid": json.Number("4002")}, unmapped: []string{"class_uid", "unmapped"}},
		{name: "time as number", hit: with("time", `1687241470`), want: map[string]any{"time": json.Number("1687241470000"), "metadata.original_time": "1687241470"}},
		{name: "time fractional", hit: with("time", `"1687241470.123987"`), want: map[string]any{"time": json.Number("1687241470123")}},
		{name: "time number fractional", hit: with("time", `1687241470.5`), want: map[string]any{"time": json.Number("1687241470500"), "metadata.original_time": "1687241470.5"}},
		{name: "status_code as string", hit: with("status_code", `"404"`), want: map[string]any{"http_response.code": json.Number("404")}},
		{name: "status_code garbage", hit: with("status_code", `"n/a"`), want: map[string]any{"http_response.code": json.Number("0")}, unmapped: []string{"status_code"}},
		{name: "status_code fractional", hit: with("status_code", `499.5`), want: map[string]any{"http_response.code": json.Number("0")}, unmapped: []string{"status_code"}},
		{name: "status_code too big", hit: with("status_code", `4294967296`), want: map[string]any{"http_response.code": json.Number("0")}, unmapped: []string{"status_code"}},
		{name: "point nested arrays", hit: with("point", `[["post","json_doc"],"uri",["get","id"]]`), unmapped: []string{"point"}},
		{name: "remote_country present", hit: with("remote_country", `"DE"`), want: map[string]any{"src_endpoint.location.country": "DE"}},
		{name: "remote_country null", hit: base, absent: []string{"src_endpoint.location"}, unmapped: []string{"remote_country"}},
		{name: "remote_country number", hit: with("remote_country", `49`), absent: []string{"src_endpoint.location"}, unmapped: []string{"remote_country"}},
		{name: "CONNECT", hit: with("method", `"CONNECT"`), want: map[string]any{"activity_id": json.Number("1"), "activity_name": "Connect", "type_uid": json.Number("400201"), "http_request.http_method": "CONNECT"}},
		{name: "DELETE", hit: with("method", `"DELETE"`), want: map[string]any{"activity_id": json.Number("2"), "type_uid": json.Number("400202")}},
		{name: "GET", hit: with("method", `"GET"`), want: map[string]any{"activity_id": json.Number("3")}},
		{name: "HEAD", hit: with("method", `"HEAD"`), want: map[string]any{"activity_id": json.Number("4")}},
		{name: "OPTIONS", hit: with("method", `"OPTIONS"`), want: map[string]any{"activity_id": json.Number("5")}},
		{name: "POST", hit: with("method", `"POST"`), want: map[string]any{"activity_id": json.Number("6"), "http_request.http_method": "POST"}},
		{name: "PUT", hit: with("method", `"PUT"`), want: map[string]any{"activity_id": json.Number("7")}},
		{name: "TRACE", hit: with("method", `"TRACE"`), want: map[string]any{"activity_id": json.Number("8"), "type_uid": json.Number("400208")}},
		{name: "PATCH is Other", hit: with("method", `"PATCH"`), want: map[string]any{"activity_id": json.Number("99"), "activity_name": "PATCH", "type_uid": json.Number("400299"), "type_name": "HTTP Activity: Other"}, absent: []string{"http_request.http_method"}},
		{name: "lower-case get is Other", hit: with("method", `"get"`), want: map[string]any{"activity_id": json.Number("99"), "activity_name": "get"}},
		{name: "escaped GET", hit: with("method", `"G\u0045T"`), want: map[string]any{"activity_id": json.Number("3"), "http_request.http_method": "GET"}},
		{name: "method empty", hit: with("method", `""`), want: map[string]any{"activity_id": json.Number("0"), "activity_name": "Unknown"}, unmapped: []string{"method"}},
		{name: "method number", hit: with("method", `5`), want: map[string]any{"activity_id": json.Number("0"), "type_uid": json.Number("400200")}, unmapped: []string{"method"}},
		{name: "blocked", hit: with("block_status", `"blocked"`), want: map[string]any{"action_id": json.Number("2"), "action": "Denied", "disposition_id": json.Number("2"), "disposition": "Blocked", "severity_id": json.Number("2")}},
		{name: "monitored", hit: with("block_status", `"monitored"`), want: map[string]any{"action_id": json.Number("1"), "action": "Allowed", "disposition_id": json.Number("15"), "disposition": "Detected", "severity_id": json.Number("3")}},
		{name: "other block_status", hit: with("block_status", `"passed"`), want: map[string]any{"action_id": json.Number("0"), "disposition_id": json.Number("99"), "disposition": "passed", "severity_id": json.Number("0")}},
		{name: "block_status null", hit: with("block_status", `null`), want: map[string]any{"action_id": json.Number("0"), "disposition_id": json.Number("0")}, unmapped: []string{"block_status"}},
		{name: "uri with query", hit: with("uri", `"/search?q=1&r=%3F"`), want: map[string]any{"http_request.url.path": "/search", "http_request.url.query_string": "q=1&r=%3F"}},
		{name: "uri with escaped ?", hit: with("uri", `"/a\u003fb=\"1\""`), want: map[string]any{"http_request.url.path": "/a", "http_request.url.query_string": `b="1"`}},
		{name: "uri empty query", hit: with("uri", `"/a?"`), want: map[string]any{"http_request.url.path": "/a", "http_request.url.query_string": ""}},
		{name: "uri object", hit: with("uri", `{"p":1}`), absent: []string{"http_request.url"}, unmapped: []string{"uri"}},
		{name: "payload not strings", hit: with("payload", `["a",1]`), absent: []string{"firewall_rule.match_details"}, unmapped: []string{"payload"}},
		{name: "payload empty", hit: with("payload", `[]`), want: map[string]any{"firewall_rule.match_details": []any{}}},
		{name: "attack_type missing", hit: with("attack_type", ``), absent: []string{"firewall_rule"}, unmapped: []string{"payload"}},
		{name: "ip missing", hit: with("ip", ``), want: map[string]any{"src_endpoint.name": "unknown"}, absent: []string{"src_endpoint.ip"}},
		{name: "ip number", hit: with("ip", `2130706433`), want: map[string]any{"src_endpoint.name": "unknown"}, unmapped: []string{"ip"}},
		{name: "domain with port", hit: with("domain", `"shop.example:8443"`), want: map[string]any{"dst_endpoint.hostname": "shop.example", "dst_endpoint.port": json.Number("8443"), "http_request.url.hostname": "shop.example", "http_request.url.port": json.Number("8443")}},
		{name: "domain not a hostname", hit: with("domain", `"my_host.example"`), want: map[string]any{"dst_endpoint.name": "my_host.example"}, absent: []string{"dst_endpoint.hostname", "http_request.url.hostname"}},
		{name: "domain IPv6 literal", hit: with("domain", `"[::1]:443"`), want: map[string]any{"dst_endpoint.name": "[::1]:443"}},
		{name: "domain port with leading zero", hit: with("domain", `"a:080"`), want: map[string]any{"dst_endpoint.name": "a:080"}},
		{name: "ip v6", hit: with("ip", `"2001:db8::1"`), want: map[string]any{"src_endpoint.ip": "2001:db8::1"}},
		{name: "ip not an IP", hit: with("ip", `"unknown"`), want: map[string]any{"src_endpoint.name": "unknown"}, absent: []string{"src_endpoint.ip"}, unmapped: []string{"ip"}},
		{name: "domain missing", hit: with("domain", ``), want: map[string]any{"dst_endpoint.name": "unknown"}, absent: []string{"http_request.url.hostname"}},
		{name: "status_code missing", hit: with("status_code", ``), want: map[string]any{"http_response.code": json.Number("0")}},
		{name: "request_id missing", hit: with("request_id", ``), absent: []string{"metadata.uid", "http_request.uid"}},
		{name: "client_id", hit: with("client_id", `42`), want: map[string]any{"metadata.tenant_uid": "42"}},
		{name: "client_id string", hit: with("client_id", `"42"`), want: map[string]any{"metadata.tenant_uid": "42"}},
		{name: "client_id negative", hit: with("client_id", `-1`), absent: []string{"metadata.tenant_uid"}, unmapped: []string{"client_id"}},
		{name: "escaped key", hit: `{"\u0074ime":"1","\u0069p":"10.0.0.1","x\u0079":1}`, want: map[string]any{"time": json.Number("1000"), "src_endpoint.ip": "10.0.0.1"}, unmapped: []string{"xy"}},
		{name: "duplicate keys: last wins", hit: `{"time":"1","ip":"1.1.1.1","z":1,"ip":"2.2.2.2","z":2,"time":"2"}`, want: map[string]any{"time": json.Number("2000"), "src_endpoint.ip": "2.2.2.2", "unmapped.z": json.Number("2")}},
		{name: "pretty printed", hit: "{\n  \"time\" : \"1\",\n  \"tags\" : { \"a\" : [ 1 , \"b c\" ] },\n  \"payload\" : [ \"x y\" ],\n  \"attack_type\" : \"xss\"\n}\n", want: map[string]any{"unmapped.tags": map[string]any{"a": []any{json.Number("1"), "b c"}}}},
		{name: "unicode", hit: `{"time":"1","uri":"/é?ü=☃","domain":"xn--d1acufc.xn--p1ai","note":"\u2028"}`, want: map[string]any{"http_request.url.path": "/é", "http_request.url.query_string": "ü=☃"}, unmapped: []string{"note"}},
		{name: "minimal", hit: `{"time":"0"}`, want: map[string]any{"time": json.Number("0"), "activity_id": json.Number("0"), "severity_id": json.Number("0")}, absent: []string{"unmapped", "firewall_rule"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := mapT(t, tt.hit)
			mustValidate(t, rec)
			checkLanded(t, []byte(tt.hit), rec)
			if bytes.IndexByte(rec, '\n') >= 0 {
				t.Errorf("record is not one line: %q", rec)
			}
			r := decode(t, rec)
			for p, want := range tt.want {
				got, ok := at(r, p)
				if !ok || !reflect.DeepEqual(got, want) {
					t.Errorf("%s = %#v, want %#v\nrecord: %s", p, got, want, rec)
				}
			}
			for _, p := range tt.absent {
				if v, ok := at(r, p); ok {
					t.Errorf("%s = %v, want absent", p, v)
				}
			}
			for _, k := range tt.unmapped {
				if _, ok := at(r, "unmapped."+k); !ok {
					t.Errorf("unmapped.%s missing\nrecord: %s", k, rec)
				}
			}
		})
	}
}

func TestMapErrors(t *testing.T) {
	tests := []struct {
		name, hit, field string
	}{
		{"empty", ``, ""},
		{"null", `null`, ""},
		{"array", `[{"time":"1"}]`, ""},
		{"string", `"x"`, ""},
		{"truncated", `{"time":"1"`, ""},
		{"trailing data", `{"time":"1"} {}`, ""},
		{"invalid utf-8", "{\"time\":\"1\",\"x\":\"\xff\"}", ""},
		{"missing time", `{"ip":"1.1.1.1"}`, "time"},
		{"time null", `{"time":null}`, "time"},
		{"time empty", `{"time":""}`, "time"},
		{"time words", `{"time":"yesterday"}`, "time"},
		{"time negative", `{"time":-1}`, "time"},
		{"time exponent", `{"time":1.6e9}`, "time"},
		{"time trailing dot", `{"time":"1."}`, "time"},
		{"time overflow", `{"time":"99999999999999999999"}`, "time"},
		{"time object", `{"time":{"s":1}}`, "time"},
	}
	m, err := NewMapper(Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := []byte("prefix")
			out, err := m.AppendRecord(dst, []byte(tt.hit))
			var e *Error
			if !errors.As(err, &e) || !IsBadHit(err) {
				t.Fatalf("err = %v, want *Error", err)
			}
			if e.Field != tt.field {
				t.Errorf("Field = %q, want %q (%v)", e.Field, tt.field, err)
			}
			if tt.field != "" && !strings.Contains(err.Error(), `"`+tt.field+`"`) {
				t.Errorf("error %q does not name the field", err)
			}
			if string(out) != "prefix" {
				t.Errorf("dst changed on error: %q", out)
			}
		})
	}
}

func TestDeterministicAndAppends(t *testing.T) {
	m, _ := NewMapper(Options{ProductName: "Edge \"WAF\"", VendorName: "Acme", ProductVersion: "4.4.11"})
	hit := []byte(base)
	a, err := m.AppendRecord([]byte("x"), hit)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := m.AppendRecord(nil, hit)
	if string(a[1:]) != string(b) || a[0] != 'x' {
		t.Fatalf("not deterministic or not appending:\n%s\n%s", a, b)
	}
	mustValidate(t, b)
	r := decode(t, b)
	if v, _ := at(r, "metadata.product.name"); v != `Edge "WAF"` {
		t.Errorf("product name %v", v)
	}
	if v, _ := at(r, "metadata.product.version"); v != "4.4.11" {
		t.Errorf("product version %v", v)
	}
	c, _ := Map(hit, Options{ProductName: "Edge \"WAF\"", VendorName: "Acme", ProductVersion: "4.4.11"})
	if !bytes.Equal(b, c) {
		t.Error("Map and AppendRecord differ")
	}
	if _, err := NewMapper(Options{VendorName: "\xff"}); err == nil {
		t.Error("invalid UTF-8 option accepted")
	}
}

func TestAppendRecordAllocs(t *testing.T) {
	m, _ := NewMapper(Options{})
	hit := []byte(base)
	dst := make([]byte, 0, 4096)
	n := testing.AllocsPerRun(100, func() {
		if _, err := m.AppendRecord(dst[:0], hit); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("AppendRecord allocates %v times per hit, want 0", n)
	}
}

func FuzzMap(f *testing.F) {
	for _, h := range []string{base, `{"time":"1"}`, `{"time":1.5,"method":"PATCH","uri":"/a\u003fb?c","x":[1, 2],"x":{"a" : 1}}`,
		with("point", `[["a"],"b"]`), with("status_code", `"500"`), `[]`, `{"time":"1","\u0074ime":"2"}`, "{\"time\":\"1\",\"a\":\"\\ud800\"}"} {
		f.Add([]byte(h))
	}
	m, err := NewMapper(Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, hit []byte) {
		rec, err := m.AppendRecord(nil, hit)
		// The one-pass scanner agrees with encoding/json on what a valid
		// object is.
		trimmed := bytes.TrimLeft(hit, " \t\r\n")
		isObject := utf8.Valid(hit) && json.Valid(hit) && len(trimmed) > 0 && trimmed[0] == '{'
		var e *Error
		if wholeBad := errors.As(err, &e) && e.Field == ""; wholeBad == isObject {
			t.Fatalf("hit %q: err %v, but utf8+json.Valid object = %v", hit, err, isObject)
		}
		if err != nil {
			if !IsBadHit(err) {
				t.Fatalf("error is not a bad-hit error: %v", err)
			}
			return
		}
		r := schemaT(t).Validate(rec)
		if len(r.Errors) > 0 {
			t.Fatalf("hit %q\nrecord %s\ndoes not validate:\n  %s", hit, rec, strings.Join(r.Errors, "\n  "))
		}
		if bytes.IndexByte(rec, '\n') >= 0 {
			t.Fatalf("record is not one line: %q", rec)
		}
		again, _ := m.AppendRecord(nil, hit)
		if !bytes.Equal(rec, again) {
			t.Fatal("not deterministic")
		}
		checkLanded(t, hit, rec)
	})
}

func BenchmarkMap(b *testing.B) {
	m, _ := NewMapper(Options{})
	for _, bc := range []struct{ name, hit string }{
		{"sample", base},
		{"query+unknown", with("uri", `"/search?q=1"`, "extra", `{"k":[1,2,3]}`, "remote_country", `"DE"`)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			hit := []byte(bc.hit)
			dst := make([]byte, 0, 4096)
			b.SetBytes(int64(len(hit)))
			b.ReportAllocs()
			for b.Loop() {
				var err error
				if dst, err = m.AppendRecord(dst[:0], hit); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Baselines on the same machine and hit, to read BenchmarkMap against:
// json.Valid alone (one validating pass, no output) and the obvious
// alternative, encoding/json into map[string]json.RawMessage.
func BenchmarkBaseline(b *testing.B) {
	hit := []byte(base)
	b.Run("json.Valid", func(b *testing.B) {
		b.SetBytes(int64(len(hit)))
		b.ReportAllocs()
		for b.Loop() {
			if !json.Valid(hit) {
				b.Fatal("invalid")
			}
		}
	})
	b.Run("Unmarshal-RawMessage-map", func(b *testing.B) {
		b.SetBytes(int64(len(hit)))
		b.ReportAllocs()
		for b.Loop() {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(hit, &m); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// FuzzMapFields fuzzes the values of the fields the mapping reads, inside an
// otherwise well-formed hit, where FuzzMap mostly meets invalid JSON.
func FuzzMapFields(f *testing.F) {
	f.Add(`"1687241470"`, `"GET"`, `"/a?b"`, `499`, `"blocked"`, `["x"]`, `"ptrav"`, `"127.0.0.1"`, `null`, `"localhost"`)
	f.Add(`1.5`, `"PATCH"`, `"/\u003f"`, `"404"`, `"monitored"`, `[1]`, `""`, `"::1"`, `"DE"`, `"a-b.example:443"`)
	f.Add(`"0"`, `5`, `{}`, `null`, `[]`, `"s"`, `null`, `{"a":1}`, `7`, `"[::1]:8080"`)
	m, err := NewMapper(Options{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, tm, method, uri, status, block, payload, attack, ip, country, domain string) {
		kv := []string{"time", tm, "method", method, "uri", uri, "status_code", status, "block_status", block,
			"payload", payload, "attack_type", attack, "ip", ip, "remote_country", country, "domain", domain}
		for i := 1; i < len(kv); i += 2 {
			if kv[i] != "" && (!json.Valid([]byte(kv[i])) || !utf8.ValidString(kv[i])) {
				return
			}
		}
		hit := with(kv...)
		rec, err := m.AppendRecord(nil, []byte(hit))
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Field != "time" {
				t.Fatalf("hit %s: %v", hit, err)
			}
			return
		}
		if r := schemaT(t).Validate(rec); len(r.Errors) > 0 {
			t.Fatalf("hit %s\nrecord %s\ndoes not validate:\n  %s", hit, rec, strings.Join(r.Errors, "\n  "))
		}
		checkLanded(t, []byte(hit), rec)
	})
}

func TestConcurrentUse(t *testing.T) {
	m, _ := NewMapper(Options{VendorName: "Acme"})
	want, _ := m.AppendRecord(nil, []byte(base))
	done := make(chan []byte)
	for range 4 {
		go func() {
			var out []byte
			for range 100 {
				out, _ = m.AppendRecord(out[:0], []byte(base))
			}
			done <- out
		}()
	}
	for range 4 {
		if got := <-done; !bytes.Equal(got, want) {
			t.Errorf("concurrent output differs:\n%s\n%s", got, want)
		}
	}
}

func ExampleMapper_AppendRecord() {
	m, err := NewMapper(Options{ProductName: "Edge", VendorName: "Acme"})
	if err != nil {
		panic(err)
	}
	hit := `{"time":"1687241470","ip":"10.0.0.1","domain":"shop.example","method":"POST","uri":"/login?next=/","status_code":403,"attack_type":"sqli","block_status":"blocked","payload":["' or 1=1"],"tor":"none"}`
	rec, err := m.AppendRecord(nil, []byte(hit))
	if err != nil {
		panic(err)
	}
	fmt.Println(string(rec))
	_, err = m.AppendRecord(nil, []byte(`{"ip":"10.0.0.1"}`))
	fmt.Println(err)
	// Output:
	// {"activity_id":6,"activity_name":"Post","category_name":"Network Activity","category_uid":4,"class_name":"HTTP Activity","class_uid":4002,"type_name":"HTTP Activity: Post","type_uid":400206,"severity_id":2,"severity":"Low","time":1687241470000,"timezone_offset":0,"action_id":2,"action":"Denied","disposition_id":2,"disposition":"Blocked","metadata":{"version":"1.1.0","product":{"name":"Edge","vendor_name":"Acme"},"profiles":["security_control"],"original_time":"1687241470"},"src_endpoint":{"ip":"10.0.0.1"},"dst_endpoint":{"hostname":"shop.example"},"http_request":{"http_method":"POST","url":{"hostname":"shop.example","path":"/login","query_string":"next=/"}},"http_response":{"code":403},"firewall_rule":{"name":"sqli","condition":"sqli","match_details":["' or 1=1"]},"unmapped":{"tor":"none"}}
	// ocsf: hit field "time": missing
}

// FuzzIsIP checks the allocation-free IP check against net/netip.
func FuzzIsIP(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "::", "::1", "fe80::1%eth0", "::ffff:1.2.3.4", "1:2:3:4:5:6:7:8",
		"1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1.2.3", "01.2.3.4", "1.2.3.4%x", "1::2::3", ":1::", "1:2:3:4:5:6:1.2.3.4", "a:b:c:d:e:f:0:1:2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if strings.ContainsAny(s, "\\") || len(s) > 40 {
			return
		}
		_, err := netip.ParseAddr(s)
		if got := isIP([]byte(s)); got != (err == nil) {
			t.Fatalf("isIP(%q) = %v, netip: %v", s, got, err)
		}
	})
}

// TestDepthLimit: the hit's object counts as depth 1; like encoding/json,
// 10000 levels are accepted and 10001 are not.
func TestDepthLimit(t *testing.T) {
	m, _ := NewMapper(Options{})
	deep := func(levels int) []byte {
		inner := levels - 1 // arrays inside the hit's object
		return []byte(`{"time":"1","x":` + strings.Repeat("[", inner) + strings.Repeat("]", inner) + `}`)
	}
	for _, tt := range []struct {
		levels int
		ok     bool
	}{{300, true}, {10000, true}, {10001, false}} {
		hit := deep(tt.levels)
		if json.Valid(hit) != tt.ok {
			t.Fatalf("json.Valid disagrees at %d levels", tt.levels)
		}
		rec, err := m.AppendRecord(nil, hit)
		if (err == nil) != tt.ok {
			t.Errorf("%d levels: err %v", tt.levels, err)
		}
		if err == nil {
			mustValidate(t, rec)
		}
	}
}
