package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"hitship/config"
	"hitship/internal/testenv"
	"hitship/service"
	s3sink "hitship/sink/s3"
)

// TestIntegrationsCommand: `hitship integrations` creates, lists, tests,
// applies (replaces) and deletes an integration through a running replica's
// admin API, prints tables, exits non-zero with the API's problems by field,
// and never prints the secret it sent.
func TestIntegrationsCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a replica")
	}
	k := testenv.MustKafka(t, testenv.KafkaOptions{Topics: []string{"hits", "hits-dead-letter"}})
	rds := testenv.MustRedis(t, testenv.RedisOptions{})
	s3 := testenv.MustS3(t, testenv.S3Options{Buckets: []string{"cli-a", "cli-b"}})
	const token = "cli-admin-token-000001"
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	t.Setenv("HITSHIP_CLITEST_TOKEN", token)
	t.Setenv("HITSHIP_CLITEST_KEYS", "k1:"+base64.StdEncoding.EncodeToString(key))
	t.Setenv("HITSHIP_ADMIN_TOKEN", token)
	cfg := config.Default()
	cfg.Kafka.Brokers, cfg.Kafka.Group = k.Addrs(), "cli-test"
	cfg.Spool.Dir = t.TempDir()
	cfg.Redis.Addr, cfg.Redis.KeyPrefix = rds.Addr(), "clitest:"
	cfg.S3.Endpoint, cfg.S3.PathStyle, cfg.S3.IfNoneMatch = s3.URL(), true, false
	cfg.HTTP.AdminTokenEnv, cfg.HTTP.Listen = "HITSHIP_CLITEST_TOKEN", "127.0.0.1:0"
	cfg.Secrets.KeysEnv = "HITSHIP_CLITEST_KEYS"
	t.Setenv("HITSHIP_CLITEST_EXTID", "cli-external-id-secret-0123456789")
	cfg.ExternalID.SecretEnv, cfg.ExternalID.AccountID = "HITSHIP_CLITEST_EXTID", "111122223333"
	if ps := cfg.Validate(); len(ps) > 0 {
		t.Fatal(config.AsError(ps))
	}
	svc, err := service.New(&cfg, service.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	api := httptest.NewServer(svc.Handler())
	t.Cleanup(api.Close)

	file := func(bucket, region string) string {
		return writeFile(t, "acme.yaml", fmt.Sprintf(`name: acme
client_id: 7
region: %s
bucket: %s
prefix: hits/
format: ndjson
credentials:
  access_key_id: %s
  secret_access_key_env: HITSHIP_CLITEST_SECRET
`, region, bucket, "TESTACCESSKEY0001"))
	}
	t.Setenv("HITSHIP_CLITEST_SECRET", testenv.S3SecretKey)
	cli := func(args ...string) (int, string, string) {
		code, out, errs := runCmd(append([]string{"integrations", "--url", api.URL}, args...)...)
		if strings.Contains(out+errs, testenv.S3SecretKey) {
			t.Fatalf("the output of %v holds the secret", args)
		}
		return code, out, errs
	}
	var code int
	var out, errs string
	deadline := time.Now().Add(30 * time.Second)
	for code, out, errs = cli("list"); code != 0 && time.Now().Before(deadline); code, out, errs = cli("list") {
		time.Sleep(200 * time.Millisecond) // the replica starts
	}
	if code != 0 || !strings.Contains(out, "NAME") {
		t.Fatalf("list: %d %q %q", code, out, errs)
	}
	if code, _, errs := cli("create", "-f", file("Bad_Bucket", "")); code != 1 || !strings.Contains(errs, "bucket:") || !strings.Contains(errs, "region:") || !strings.Contains(errs, "Fix:") {
		t.Fatalf("create with problems: exit %d, stderr %q", code, errs)
	}
	if code, out, errs := cli("test", "-f", file("cli-missing", testenv.S3Region)); code != 1 || !strings.Contains(out, "FAILED") {
		t.Fatalf("test of a missing bucket: exit %d %q %q", code, out, errs)
	}
	if code, out, errs := cli("create", "-f", file("cli-a", testenv.S3Region)); code != 0 || !strings.Contains(out, "acme") || !strings.Contains(out, "api") {
		t.Fatalf("create: exit %d %q %q", code, out, errs)
	}
	if code, out, _ := cli("list"); code != 0 || !strings.Contains(out, "cli-a") {
		t.Fatalf("list after create: %q", out)
	}
	if code, out, errs := cli("apply", "-f", file("cli-b", testenv.S3Region)); code != 0 || !strings.Contains(out, "cli-b") {
		t.Fatalf("apply: exit %d %q %q", code, out, errs)
	}
	if code, out, errs := cli("test", "acme"); code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("test: exit %d %q %q", code, out, errs)
	}
	if code, _, errs := cli("disable", "--reason", "customer asked", "acme"); code != 0 {
		t.Fatalf("disable: %d %q", code, errs)
	}
	if code, out, _ := cli("show", "acme"); code != 0 || !strings.Contains(out, "disabled (customer asked)") {
		t.Fatalf("show after disable: %q", out)
	}
	if code, out, errs := cli("delete", "acme"); code != 0 || !strings.Contains(out, "deleted acme") {
		t.Fatalf("delete: exit %d %q %q", code, out, errs)
	}
	if code, _, errs := cli("show", "acme"); code != 1 || !strings.Contains(errs, "no integration") {
		t.Fatalf("show after delete: exit %d %q", code, errs)
	}
	// What a Security Lake source's customer passes to CreateCustomLogSource.
	extID := s3sink.ExternalID([]byte("cli-external-id-secret-0123456789"), 31)
	if code, out, errs := cli("onboarding", "--client", "31", "--source-name", "wallarm"); code != 0 || !strings.Contains(out, "CreateCustomLogSource") ||
		!strings.Contains(out, "HTTP_ACTIVITY") || !strings.Contains(out, "externalId="+extID+",principal=111122223333") || !strings.Contains(out, "wallarm") {
		t.Fatalf("onboarding of a Security Lake source: exit %d %q %q", code, out, errs)
	}
	if code, out, errs := cli("onboarding", "--client", "31"); code != 0 || !strings.Contains(out, "trust policy") || strings.Contains(out, "CreateCustomLogSource") {
		t.Fatalf("onboarding of a role: exit %d %q %q", code, out, errs)
	}
	t.Setenv("HITSHIP_ADMIN_TOKEN", "wrong-token-0000000000")
	if code, _, errs := cli("list"); code != 1 || !strings.Contains(errs, "HITSHIP_ADMIN_TOKEN") {
		t.Fatalf("a wrong token: exit %d %q", code, errs)
	}
}
