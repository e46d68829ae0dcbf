package config_test

import (
	"strings"
	"testing"

	"hitship/config"
)

// integrationYAML is a config with one integration whose extra lines are
// added under it (indented by four spaces).
func integrationYAML(extra ...string) []byte {
	var b strings.Builder
	b.WriteString("integrations:\n  - name: acme\n    client_id: 7\n    region: us-east-1\n    bucket: acme-hits\n")
	for _, l := range extra {
		b.WriteString("    " + l + "\n")
	}
	return []byte(b.String())
}

// problemOn returns the problems whose key is key.
func problemOn(ps []config.Problem, key string) []config.Problem {
	var out []config.Problem
	for _, p := range ps {
		if p.Key == key {
			out = append(out, p)
		}
	}
	return out
}

// TestHostilePrefix: an integration or parking prefix that could leave its
// place in the bucket is refused at start-up, naming the key: "..", ".",
// a leading "/", control characters (C0, DEL and C1, as sink.ValidatePrefix
// and the key renderer see them) and invalid UTF-8. Prefixes that only look
// odd are accepted.
func TestHostilePrefix(t *testing.T) {
	tests := []struct {
		name   string
		prefix string // a YAML double-quoted string's content
		ok     bool
	}{
		{name: "parent directory", prefix: `../other-tenant/`},
		{name: "parent directory inside", prefix: `hits/../../other/`},
		{name: "parent directory at the end", prefix: `hits/..`},
		{name: "current directory", prefix: `./hits/`},
		{name: "absolute", prefix: `/hits/`},
		{name: "newline", prefix: `hits\n/`},
		{name: "NUL", prefix: `hits\0/`},
		{name: "DEL", prefix: `hits\x7f/`},
		{name: "C1 control (fuzz finding)", prefix: `hits\u0085/`},
		{name: "C1 control at the end of the range", prefix: `hits\u009f/`},
		{name: "plain", prefix: `wallarm/hits/`, ok: true},
		{name: "empty", prefix: ``, ok: true},
		{name: "dots inside a segment", prefix: `hits..v2/...x/`, ok: true},
		{name: "double slash", prefix: `hits//`, ok: true},
		{name: "backslash", prefix: `hits\\..\\`, ok: true},
		{name: "non-ASCII", prefix: `données/`, ok: true},
		{name: "just above C1", prefix: "hits\u00a0/", ok: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, where := range []struct{ yaml, key string }{
				{yaml: string(integrationYAML(`prefix: "` + tc.prefix + `"`)), key: "integrations[0].prefix"},
				{yaml: "parking:\n  bucket: park-hits\n  region: us-east-1\n  prefix: \"" + tc.prefix + "\"\n", key: "parking.prefix"},
			} {
				_, ps := config.Parse([]byte(where.yaml))
				got := problemOn(ps, where.key)
				if tc.ok && len(got) > 0 {
					t.Errorf("%s %q refused: %v", where.key, tc.prefix, got)
				}
				if !tc.ok {
					if len(got) == 0 {
						t.Errorf("%s %q accepted; problems: %v", where.key, tc.prefix, ps)
					} else if got[0].Line == 0 || got[0].Fix == "" {
						t.Errorf("problem %#v lacks a line or a fix", got[0])
					}
				}
			}
		})
	}
}

// TestExternalIDNotSettable: a tenant cannot choose the external ID. No
// integration key sets it (strict YAML refuses external_id, externalid and
// sts_external_id in an integration and in its credentials, naming the key),
// and the top-level external_id section takes only the server secret, never
// an ID.
func TestExternalIDNotSettable(t *testing.T) {
	tests := []struct {
		name string
		yaml []byte
		key  string
	}{
		{name: "external_id in an integration", yaml: integrationYAML(`external_id: chosen-by-tenant`), key: "integrations[0].external_id"},
		{name: "externalid in an integration", yaml: integrationYAML(`externalid: chosen-by-tenant`), key: "integrations[0].externalid"},
		{name: "external_id in credentials", yaml: integrationYAML(`credentials:`, `  role_arn: "arn:aws:iam::123456789012:role/hits"`, `  external_id: chosen-by-tenant`),
			key: "integrations[0].credentials.external_id"},
		{name: "sts_external_id in credentials", yaml: integrationYAML(`credentials:`, `  sts_external_id: chosen-by-tenant`), key: "integrations[0].credentials.sts_external_id"},
		{name: "an ID in the server section", yaml: []byte("external_id:\n  id: chosen\n"), key: "external_id.id"},
		{name: "a value in the server section", yaml: []byte("external_id:\n  value: chosen\n"), key: "external_id.value"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, ps := config.Parse(tc.yaml)
			got := problemOn(ps, tc.key)
			if len(got) == 0 {
				t.Fatalf("no problem on %s; problems: %v", tc.key, ps)
			}
			if !strings.Contains(got[0].Msg, "unknown key") || got[0].Line == 0 {
				t.Errorf("problem %#v: want an unknown-key problem with its line", got[0])
			}
		})
	}
}

// TestProblemsNameTheirKey: the FuzzLoad findings kept as tests. A problem in
// a file whose top level is a mapping always names its key: an empty YAML key
// is shown as "" and a value of the wrong type on a line of its own names the
// key it belongs to. Only a file whose top level is not a mapping has a
// whole-file problem (Key "").
func TestProblemsNameTheirKey(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantKey string
	}{
		{name: "empty key", yaml: "&0000: #0\n", wantKey: `""`},
		{name: "empty nested key", yaml: "kafka:\n  \"\": 1\n", wantKey: `kafka.""`},
		{name: "scalar on its own line for a section", yaml: "redis:\n 0", wantKey: "redis"},
		{name: "scalar on its own line for a nested section", yaml: "kafka:\n  tls:\n    true\n", wantKey: "kafka.tls"},
		{name: "unknown key in a merged mapping", yaml: "<<:\n 0000: 0", wantKey: "0000"},
		{name: "wrong type in a merged mapping", yaml: "<<:\n  kafka: 1\n", wantKey: "kafka"},
		{name: "top level not a mapping", yaml: "00", wantKey: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, ps := config.Parse([]byte(tc.yaml))
			if len(ps) == 0 {
				t.Fatal("no problem")
			}
			found := false
			for _, p := range ps {
				if p.Key == tc.wantKey {
					found = true
				}
				if p.Key == "" && tc.wantKey != "" {
					t.Errorf("problem without a key: %#v", p)
				}
			}
			if !found {
				t.Errorf("no problem on key %q: %#v", tc.wantKey, ps)
			}
		})
	}
}
