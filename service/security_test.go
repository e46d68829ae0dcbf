package service_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"hitship/config"
	"hitship/internal/testenv"
	"hitship/internal/testenv/fakests"
	"hitship/internal/testenv/s3policy"
	"hitship/service"
	"hitship/sink"
	s3sink "hitship/sink/s3"
)

// lockedBuffer is a bytes.Buffer safe for the concurrent writes of a logger.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Bytes returns a copy of what was written.
func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}

// assertPutObjectOnly fails the test when the customer-side proxy refused a
// request or forwarded an operation a PutObject-only policy does not cover.
func assertPutObjectOnly(t *testing.T, p *s3policy.Proxy) {
	t.Helper()
	if d := p.Denied(); len(d) > 0 {
		t.Errorf("calls a PutObject-only policy denies: %s", strings.Join(d, ", "))
	}
	for _, op := range p.Allowed() {
		switch op {
		case "PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload":
		default:
			t.Errorf("operation %s forwarded to a customer bucket", op)
		}
	}
}

const (
	securityRoleARN      = "arn:aws:iam::444455556666:role/hitship-writer"
	securityUntrustedARN = "arn:aws:iam::777788889999:role/not-trusting-hitship"
)

// fakeAWS starts a fake STS and, in front of e's S3, a proxy that checks
// SigV4 signatures and who may write to which bucket (fakests), and gives
// hitship its own AWS identity for them (the AWS_* environment; nothing from
// the machine's files or instance metadata). Not for parallel tests
// (t.Setenv).
func (e *env) fakeAWS(t *testing.T) (*fakests.STS, *fakests.S3) {
	t.Helper()
	t.Setenv("AWS_ACCESS_KEY_ID", fakests.DefaultBaseKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", fakests.DefaultBaseSecret)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(t.TempDir(), "none"))
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	sts, err := fakests.Start(fakests.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sts.Close() })
	authS3, err := fakests.StartS3(fakests.S3Options{Upstream: e.s3URL, STS: sts, Region: testenv.S3Region})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = authS3.Close() })
	return sts, authS3
}

// TestSecretsNeverLeak runs a replica with every kind of secret configured —
// an integration's static secret key, the parking bucket's secret key, the
// external-ID server secret, the admin token, the Redis password
// (requirepass), hitship's own AWS secret key (for AssumeRole) — with one
// integration that works with a static key, one that assumes its role, and
// one whose role does not trust hitship (every attempt fails). It captures
// every log line (debug level, JSON), every admin API answer (list, show,
// test, retries, disable, enable and the error answers) with its headers,
// /metrics, /healthz and /readyz, and the output of `hitship check-config`
// (a valid config and one with problems) and `hitship external-id`, and finds
// none of the secret values in any of it. It also checks that the STS
// requests carried the external ID derived from the client (an HMAC under
// the server secret), never one the tenant could set.
func TestSecretsNeverLeak(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	e := newEnv(t, 1, "b-keys", "b-role", "b-untrusted", parkBucket)
	secrets := map[string]string{
		"integration static secret key": e.secret,
		"parking secret key":            "park-secret-value-5f1c0b7e9a",
		"admin token":                   "admin-token-value-0c6e2d91b47f",
		"external-ID server secret":     "extid-server-secret-8d3a61c2f5e0",
		"redis password":                "redis-pass-value-41b9e7a03c6d",
		"hitship's own AWS secret key":  fakests.DefaultBaseSecret,
	}
	t.Setenv("HITSHIP_TEST_PARK_SECRET", secrets["parking secret key"])
	t.Setenv("HITSHIP_TEST_ADMIN_TOKEN", secrets["admin token"])
	t.Setenv("HITSHIP_TEST_EXTID_SECRET", secrets["external-ID server secret"])
	t.Setenv("HITSHIP_TEST_REDIS_PASSWORD", secrets["redis password"])
	// The role integrations' buckets sit behind the authenticating S3 proxy,
	// which forwards to the PutObject-only proxy.
	sts, authS3 := e.fakeAWS(t)
	extSecret := []byte(secrets["external-ID server secret"])
	sts.Trust(securityRoleARN, s3sink.ExternalID(extSecret, 2))
	authS3.AllowRole("b-role", securityRoleARN)
	authS3.AllowRole("b-untrusted", securityUntrustedARN)

	redisAuth := !e.redis.Miniredis()
	if redisAuth {
		if err := e.redis.Client().ConfigSet(context.Background(), "requirepass", secrets["redis password"]).Err(); err != nil {
			t.Fatal(err)
		}
	}

	roleInteg := func(name string, client int64, bucket, role string) config.Integration {
		in := config.DefaultIntegration()
		in.Name, in.ClientID, in.Region, in.Bucket, in.Prefix, in.Format = name, client, testenv.S3Region, bucket, "hits/", "json"
		in.Endpoint, in.PathStyle = authS3.URL(), true
		in.Credentials.RoleARN = role
		return in
	}
	cfg := e.config(t, integ("keys", 1, "b-keys", "ndjson"))
	cfg.Integrations = append(cfg.Integrations, roleInteg("role", 2, "b-role", securityRoleARN),
		roleInteg("untrusted", 3, "b-untrusted", securityUntrustedARN))
	cfg.Window.Size, cfg.Window.Grace, cfg.Window.IdleTimeout = 10*time.Second, time.Second, time.Second
	cfg.ExternalID = config.ExternalID{SecretEnv: "HITSHIP_TEST_EXTID_SECRET", AccountID: "111122223333", STSEndpoint: sts.URL()}
	cfg.HTTP.AdminTokenEnv = "HITSHIP_TEST_ADMIN_TOKEN"
	if redisAuth {
		cfg.Redis.PasswordEnv = "HITSHIP_TEST_REDIS_PASSWORD"
	}
	cfg.Parking = config.Parking{Bucket: parkBucket, Region: testenv.S3Region, Endpoint: e.s3.URL(), PathStyle: true, Prefix: "hitship/"}
	cfg.Parking.Credentials.AccessKeyID, cfg.Parking.Credentials.SecretAccessKeyEnv = "TESTACCESSKEY0002", "HITSHIP_TEST_PARK_SECRET"
	perPartition := false // this test's keys are per partition
	cfg.Delivery.Staged = &perPartition
	if ps := cfg.Validate(config.WithKeyTemplate(func(s string) error { _, err := sink.ParseKeyTemplate(s); return err })); len(ps) > 0 {
		t.Fatal(config.AsError(ps))
	}

	logs := &lockedBuffer{}
	reg := prometheus.NewRegistry()
	svc, err := service.New(cfg, service.Deps{Logger: slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})), Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	stop := sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("service: %v", err)
		}
	})
	t.Cleanup(stop)
	api := httptest.NewServer(svc.Handler())
	t.Cleanup(api.Close)

	hits := e.produceHits(t, 90, []int64{1, 2, 3}, time.Now().Add(-40*time.Second), 10*time.Second, 2, 7)
	want := map[string]int{}
	for _, h := range hits {
		want[map[int64]string{1: "b-keys", 2: "b-role", 3: "b-untrusted"}[h.client]]++
	}
	count := func(bucket string) int {
		n := 0
		for _, o := range e.objects(t, bucket) {
			n += len(o.records)
		}
		return n
	}
	waitFor(t, 60*time.Second, "the static-key and role integrations' hits delivered, the untrusted one failing", func() bool {
		return count("b-keys") >= want["b-keys"] && count("b-role") >= want["b-role"] &&
			metricSum(t, reg, "hitship_upload_attempts_total", "integration", "untrusted") >= 2
	})
	if n := count("b-untrusted"); n != 0 {
		t.Fatalf("the untrusted role's bucket holds %d hits", n)
	}

	// Everything the admin API answers, errors included.
	var captured strings.Builder
	call := func(method, path, auth, body string) int {
		req, err := http.NewRequest(method, api.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		data, _ := io.ReadAll(resp.Body)
		fmt.Fprintf(&captured, "%s %s -> %d %v\n%s\n", method, path, resp.StatusCode, resp.Header, data)
		return resp.StatusCode
	}
	bearer := "Bearer " + secrets["admin token"]
	for _, c := range []struct {
		method, path, auth, body string
		status                   int
	}{
		{"GET", "/v1/integrations", bearer, "", 200},
		{"GET", "/v1/integrations/keys", bearer, "", 200},
		{"GET", "/v1/integrations/role", bearer, "", 200},
		{"GET", "/v1/integrations/untrusted", bearer, "", 200},
		{"POST", "/v1/integrations/keys/test", bearer, "", 200},
		{"POST", "/v1/integrations/role/test", bearer, "", 200},
		{"POST", "/v1/integrations/untrusted/test", bearer, "", 200},
		{"GET", "/v1/integrations/keys/retries", bearer, "", 200},
		{"GET", "/v1/integrations/untrusted/retries", bearer, "", 200},
		{"POST", "/v1/integrations/keys/disable", bearer, `{"reason":"security test"}`, 200},
		{"POST", "/v1/integrations/keys/enable", bearer, "", 200},
		{"GET", "/v1/integrations/ghost", bearer, "", 404},
		{"DELETE", "/v1/integrations/keys", bearer, "", 409},  // still configured
		{"DELETE", "/v1/integrations/ghost", bearer, "", 200}, // forgets nothing, idempotently
		{"GET", "/v1/integrations", "", "", 401},
		{"GET", "/v1/integrations", "Bearer " + secrets["admin token"][:10], "", 401},
		{"GET", "/v1/integrations", "Basic " + secrets["admin token"], "", 401},
		{"GET", "/metrics", "", "", 200},
		{"GET", "/healthz", "", "", 200},
		{"GET", "/readyz", "", "", 200},
	} {
		if got := call(c.method, c.path, c.auth, c.body); got != c.status {
			t.Errorf("%s %s = %d, want %d", c.method, c.path, got, c.status)
		}
	}
	stop() // every log line written

	// The STS saw the derived external ID of each client, nothing else.
	reqs := sts.Requests()
	var sawRole, sawUntrusted bool
	for _, r := range reqs {
		switch r.RoleARN {
		case securityRoleARN:
			sawRole = true
			if r.ExternalID != s3sink.ExternalID(extSecret, 2) || !r.Granted {
				t.Errorf("AssumeRole of %s: external ID %q granted %v, want %q granted", r.RoleARN, r.ExternalID, r.Granted, s3sink.ExternalID(extSecret, 2))
			}
		case securityUntrustedARN:
			sawUntrusted = true
			if r.ExternalID != s3sink.ExternalID(extSecret, 3) || r.Granted {
				t.Errorf("AssumeRole of %s: external ID %q granted %v, want %q refused", r.RoleARN, r.ExternalID, r.Granted, s3sink.ExternalID(extSecret, 3))
			}
		default:
			t.Errorf("AssumeRole of an unexpected role %s", r.RoleARN)
		}
	}
	if !sawRole || !sawUntrusted {
		t.Errorf("STS requests %+v: want AssumeRole calls for both roles", reqs)
	}

	cli := checkConfigOutput(t, e, secrets)
	if testing.Verbose() {
		t.Logf("CLI output:\n%s", cli)
	}

	outputs := map[string]string{"logs": logs.String(), "admin API and HTTP": captured.String(), "CLI": cli}
	if !strings.Contains(outputs["logs"], "untrusted") || !strings.Contains(outputs["admin API and HTTP"], "hitship_upload_attempts_total") {
		t.Fatalf("captured too little to prove anything:\nlogs %d bytes, API %d bytes", len(outputs["logs"]), len(outputs["admin API and HTTP"]))
	}
	t.Logf("searched %d bytes of logs, %d of HTTP answers, %d of CLI output; %d STS requests", len(outputs["logs"]),
		len(outputs["admin API and HTTP"]), len(outputs["CLI"]), len(reqs))
	for what, out := range outputs {
		for name, s := range secrets {
			for _, probe := range []string{s, s[2 : len(s)-2]} {
				if i := strings.Index(out, probe); i >= 0 {
					t.Errorf("%s contain the %s: ...%s...", what, name, out[max(0, i-200):min(len(out), i+len(probe)+50)])
				}
			}
		}
	}
	assertPutObjectOnly(t, e.proxy)
}

// checkConfigOutput runs `hitship check-config` on a valid config and on one
// with problems (a too short external-ID secret and admin token, an unknown
// key), and `hitship external-id`, with every secret in the environment or
// in files, and returns all their output.
func checkConfigOutput(t *testing.T, e *env, secrets map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "admin-token")
	if err := os.WriteFile(tokenFile, []byte(secrets["admin token"]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	valid := fmt.Sprintf(`kafka:
  brokers: [%s]
redis:
  addr: %s
  password_env: HITSHIP_TEST_REDIS_PASSWORD
spool:
  dir: %s
http:
  listen: "127.0.0.1:0"
  admin_token_file: %s
external_id:
  secret_env: HITSHIP_TEST_EXTID_SECRET
  account_id: "111122223333"
parking:
  bucket: %s
  region: us-east-1
  credentials:
    access_key_id: TESTACCESSKEY0002
    secret_access_key_env: HITSHIP_TEST_PARK_SECRET
integrations:
  - name: keys
    client_id: 1
    region: us-east-1
    bucket: b-keys
    credentials:
      access_key_id: TESTACCESSKEY0001
      secret_access_key_env: %s
  - name: role
    client_id: 2
    region: us-east-1
    bucket: b-role
    credentials:
      role_arn: "%s"
`, strings.Join(e.kafka.Addrs(), ", "), e.redis.Addr(), filepath.Join(dir, "spool"), tokenFile, parkBucket, testSecretEnv, securityRoleARN)
	broken := strings.Replace(valid, "  account_id:", "  unknown_key: x\n  account_id:", 1)
	brokenEnv := []string{
		"HITSHIP_TEST_EXTID_SECRET=" + secrets["external-ID server secret"][:12], // too short
		"HITSHIP_TEST_ADMIN_TOKEN=" + secrets["admin token"][:12],
	}
	broken = strings.Replace(broken, "admin_token_file: "+tokenFile, "admin_token_env: HITSHIP_TEST_ADMIN_TOKEN", 1)
	var out strings.Builder
	for _, run := range []struct {
		name, yaml string
		env        []string
		args       []string
		wantOK     bool
	}{
		{name: "valid", yaml: valid, args: []string{"check-config"}, wantOK: true},
		{name: "broken", yaml: broken, env: brokenEnv, args: []string{"check-config"}},
		{name: "external-id", yaml: valid, args: []string{"external-id", "--client", "2", "--config"}, wantOK: true},
	} {
		path := filepath.Join(dir, run.name+".yaml")
		if err := os.WriteFile(path, []byte(run.yaml), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(hitshipBinary(t), append(run.args, path)...)
		cmd.Env = append(os.Environ(), run.env...) // t.Setenv put the secrets in os.Environ
		b, err := cmd.CombinedOutput()
		if (err == nil) != run.wantOK {
			t.Errorf("hitship %s (%s): err %v, want ok=%v\n%s", strings.Join(run.args, " "), run.name, err, run.wantOK, b)
		}
		if !run.wantOK && !bytes.Contains(b, []byte("external_id.secret_env")) {
			t.Errorf("hitship check-config (%s) does not name the short secret's key:\n%s", run.name, b)
		}
		for _, kv := range run.env { // an invalid secret is a secret too
			if _, v, _ := strings.Cut(kv, "="); bytes.Contains(b, []byte(v)) {
				t.Errorf("hitship %s (%s) prints a rejected secret:\n%s", strings.Join(run.args, " "), run.name, b)
			}
		}
		fmt.Fprintf(&out, "== %s\n%s\n", run.name, b)
	}
	return out.String()
}
