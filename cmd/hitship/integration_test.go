package main

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"hitship/internal/testenv"
	"hitship/sink"
	s3sink "hitship/sink/s3"
)

// TestTestIntegration: `hitship test-integration` writes the two sample hits as
// wallarm_hits_{now}_test.{ext} and answers in plain words when the bucket refuses.
func TestTestIntegration(t *testing.T) {
	s3 := testenv.MustS3(t, testenv.S3Options{Buckets: []string{"acme-hits"}})
	t.Setenv("HITSHIP_TEST_SECRET", "test-secret-value-42")
	cfg := writeFile(t, "hitship.yaml", fmt.Sprintf(`kafka: {brokers: ["127.0.0.1:9092"]}
s3: {endpoint: %q, path_style: true}
spool: {dir: %q}
integrations:
  - name: acme
    client_id: 7
    region: us-east-1
    bucket: acme-hits
    prefix: wallarm/
    format: ndjson
    credentials: {access_key_id: TESTACCESSKEY0001, secret_access_key_env: HITSHIP_TEST_SECRET}
`, s3.URL(), t.TempDir()))

	code, out, errOut := runCmd("test-integration", "--config", cfg, "acme")
	if code != 0 || !strings.Contains(out, "acme: ok") {
		t.Fatalf("exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	objs, err := s3.Objects(context.Background(), "acme-hits")
	if err != nil {
		t.Fatal(err)
	}
	want, err := sink.SampleObject(sink.FormatNDJSON, sink.CompressionNone)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for k, v := range objs {
		if strings.HasPrefix(k, "wallarm/wallarm_hits_") && strings.HasSuffix(k, "_test.jsonl") && string(v) == string(want) {
			found = true
		}
	}
	if !found {
		t.Fatalf("no test object with the sample hits among %d objects", len(objs))
	}

	s3.FailBucket("acme-hits", 403)
	code, out, _ = runCmd("test-integration", "--config", cfg, "acme")
	if code == 0 || !strings.Contains(out, "access_denied") || !strings.Contains(out, "s3:PutObject") {
		t.Fatalf("denied bucket: exit %d, stdout %s", code, out)
	}
	if strings.Contains(out, "test-secret-value-42") {
		t.Fatal("the secret appears in the answer")
	}
	if code, _, errOut := runCmd("test-integration", "--config", cfg, "nope"); code == 0 || !strings.Contains(errOut, "nope") {
		t.Fatalf("unknown integration: exit %d, %s", code, errOut)
	}
}

// TestExternalIDCommand: stable per client, different per client, from the server secret.
func TestExternalIDCommand(t *testing.T) {
	t.Setenv("HITSHIP_EXT_SECRET", "0123456789abcdef0123456789abcdef")
	cfg := writeFile(t, "hitship.yaml", `kafka: {brokers: ["127.0.0.1:9092"]}
spool: {dir: /tmp/hitship-ext-test}
external_id: {secret_env: HITSHIP_EXT_SECRET, account_id: "123456789012"}
`)
	code, out7, errOut := runCmd("external-id", "--client", "7", "--config", cfg)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	want := s3sink.ExternalID([]byte("0123456789abcdef0123456789abcdef"), 7)
	if !strings.Contains(out7, "external ID: "+want) || !strings.Contains(out7, "arn:aws:iam::123456789012:root") {
		t.Fatalf("output %q, want the ID %s and the account", out7, want)
	}
	_, again, _ := runCmd("external-id", "--client", "7", "--config", cfg)
	_, out8, _ := runCmd("external-id", "--client", "8", "--config", cfg)
	if again != out7 || out8 == out7 {
		t.Fatalf("not stable per client or not distinct across clients:\n%s\n%s", out7, out8)
	}
	if code, _, _ := runCmd("external-id", "--config", cfg); code != 2 {
		t.Fatalf("missing --client: exit %d, want 2", code)
	}
}
