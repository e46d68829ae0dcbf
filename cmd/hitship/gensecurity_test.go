package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hitship/internal/embedded"
	"hitship/internal/testenv"
)

// TestGenThroughSASLAndTLS (issue #14): `hitship gen -config` produces
// through the config file's SASL and TLS settings, as the service connects:
// SCRAM-SHA-512 over mutual TLS and SASL PLAIN carry every record; a wrong
// password stops gen at once with an error naming kafka.sasl.
func TestGenThroughSASLAndTLS(t *testing.T) {
	certs := testenv.MustCerts(t)
	tests := []struct {
		name     string
		mech     string // the broker's and the config's mechanism
		tls      bool
		password string // the config's; the broker's is "right-password"
		wantErr  string
	}{
		{name: "SCRAM-SHA-512 over mutual TLS", mech: embedded.SASLScramSHA512, tls: true, password: "right-password"},
		{name: "SASL PLAIN", mech: embedded.SASLPlain, password: "right-password"},
		{name: "wrong password", mech: embedded.SASLScramSHA256, tls: true, password: "wrong-password", wantErr: "kafka.sasl"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := testenv.KafkaOptions{Partitions: 2, Topics: []string{"gen-hits"},
				SASL: &embedded.KafkaSASL{Mechanism: tt.mech, User: "gen", Password: "right-password"}}
			if tt.tls {
				opts.TLS, opts.ClientTLS = certs.ServerTLS(true), certs.ClientTLS(true)
			}
			k := testenv.MustKafka(t, opts)
			dir := t.TempDir()
			pwFile := filepath.Join(dir, "kafka-password")
			if err := os.WriteFile(pwFile, []byte(tt.password+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			var y strings.Builder
			fmt.Fprintf(&y, "kafka:\n  brokers: [%s]\n  topic: gen-hits\n  group: hitship\n  dead_letter_topic: hits-dead-letter\n", k.Addrs()[0])
			fmt.Fprintf(&y, "  sasl:\n    mechanism: %s\n    username: gen\n    password_file: %s\n", strings.ToLower(tt.mech), pwFile)
			if tt.tls {
				fmt.Fprintf(&y, "  tls:\n    enabled: true\n    ca_file: %s\n    cert_file: %s\n    key_file: %s\n", certs.CAFile, certs.ClientCertFile, certs.ClientKeyFile)
			}
			fmt.Fprintf(&y, "spool:\n  dir: %s\nredis:\n  addr: 127.0.0.1:6379\n", filepath.Join(dir, "spool"))
			cfgPath := filepath.Join(dir, "hitship.yaml")
			if err := os.WriteFile(cfgPath, []byte(y.String()), 0o600); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			start := time.Now()
			code := run([]string{"gen", "-config", cfgPath, "-count", "300", "-rate", "0", "-seed", "7"}, &stdout, &stderr)
			if tt.wantErr != "" {
				if code != 1 || !strings.Contains(stderr.String(), tt.wantErr) || time.Since(start) > 20*time.Second {
					t.Fatalf("gen with a wrong password: exit %d after %s, stderr %q; want 1 at once, naming %s", code, time.Since(start), stderr.String(), tt.wantErr)
				}
				if strings.Contains(stderr.String(), tt.password) {
					t.Fatal("the password is in the error")
				}
				return
			}
			if code != 0 {
				t.Fatalf("gen: exit %d: %s", code, stderr.String())
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			hw, err := k.HighWater(ctx, "gen-hits")
			if err != nil {
				t.Fatal(err)
			}
			if n := hw[0] + hw[1]; n != 300 {
				t.Fatalf("%d records on the topic, want 300 (%s)", n, stdout.String())
			}
		})
	}
}
