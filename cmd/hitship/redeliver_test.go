package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	tests := []struct {
		name    string
		in      string
		want    time.Time
		wantErr bool
	}{
		{name: "empty: every dead letter", in: "", want: time.Time{}},
		{name: "RFC 3339", in: "2026-01-01T00:00:00Z", want: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		{name: "duration before now", in: "24h", want: now.Add(-24 * time.Hour)},
		{name: "negative duration", in: "-1h", wantErr: true},
		{name: "garbage", in: "yesterday", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSince(tc.in, now)
			if (err != nil) != tc.wantErr || !got.Equal(tc.want) {
				t.Errorf("parseSince(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestRedeliverUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{name: "no config", args: []string{"redeliver"}, want: 2},
		{name: "bad since", args: []string{"redeliver", "--since", "soon", "--config", "x.yaml"}, want: 2},
		{name: "missing config file", args: []string{"redeliver", "--config", "/nonexistent/hitship.yaml"}, want: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if got := run(tc.args, &out, &errb); got != tc.want {
				t.Errorf("exit %d; want %d (stderr %q)", got, tc.want, errb.String())
			}
		})
	}
}

// TestRedeliverUnknownIntegration: a mistyped --integration exits 1 naming the
// configured integrations, before Redis or the parking bucket is asked (the
// addresses below do not answer). Before, it matched no dead letter and
// reported "0 dead letter(s) queued for delivery", exit 0.
func TestRedeliverUnknownIntegration(t *testing.T) {
	t.Setenv("HITSHIP_REDELIVER_SECRET", "redeliver-test-secret")
	cfg := writeFile(t, "hitship.yaml", fmt.Sprintf(`kafka: {brokers: ["127.0.0.1:9092"]}
spool: {dir: %q}
redis: {addr: "127.0.0.1:1"}
parking:
  bucket: park-bucket
  region: us-east-1
  endpoint: "http://127.0.0.1:1"
  credentials: {access_key_id: TESTACCESSKEY0002, secret_access_key_env: HITSHIP_REDELIVER_SECRET}
integrations:
  - name: acme-json
    client_id: 7
    region: us-east-1
    bucket: acme-hits
    credentials: {access_key_id: TESTACCESSKEY0001, secret_access_key_env: HITSHIP_REDELIVER_SECRET}
  - name: globex
    client_id: 8
    region: us-east-1
    bucket: globex-hits
    credentials: {access_key_id: TESTACCESSKEY0001, secret_access_key_env: HITSHIP_REDELIVER_SECRET}
`, t.TempDir()))
	code, out, errs := runCmd("redeliver", "--config", cfg, "--integration", "acme")
	if code != 1 || !strings.Contains(errs, `"acme"`) || !strings.Contains(errs, "acme-json, globex") || strings.Contains(out, "queued") {
		t.Fatalf("exit %d, want 1 naming the configured integrations\nstdout:\n%s\nstderr:\n%s", code, out, errs)
	}
}
