package admin_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"go.uber.org/goleak"

	"hitship/admin"
	"hitship/health"
	"hitship/integrations/registry"
	"hitship/internal/testenv"
	"hitship/sink"
	s3sink "hitship/sink/s3"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	token = "admin-token-5d41402abc4b2a76b9719d911017c592"
	// secret is the access-key secret of integration "keys" (what the config
	// would have read from an env var). No response may contain it.
	secret = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY"
)

var integrations = []admin.Integration{
	{Name: "acme", ClientID: 7, Region: "eu-west-1", Bucket: "acme-hits", Prefix: "wallarm/", Format: "json",
		Compression: "gzip", RoleARN: "arn:aws:iam::222222222222:role/hitship", ConfigEnabled: true},
	{Name: "keys", ClientID: 8, Region: "us-east-1", Bucket: "cust", Prefix: "", Format: "ndjson",
		Compression: "none", AccessKeyID: "AKIAKEYS", ConfigEnabled: true},
	{Name: "off", ClientID: 9, Region: "us-east-1", Bucket: "off", Format: "json", AccessKeyID: "AKIAOFF"},
}

type env struct {
	api    *admin.API
	srv    *httptest.Server
	store  *registry.Store
	redis  *testenv.Redis
	logBuf *syncBuf
}

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newEnv starts Redis, a registry and the API. The tester of "keys" does a
// real test write with the secret key against an S3 that answers
// SignatureDoesNotMatch; "off" has a tester that cannot run (its error holds
// the secret, as a careless error might).
func newEnv(t *testing.T) *env {
	t.Helper()
	return newEnvWith(t, admin.Config{Token: token})
}

// newEnvWith is newEnv with cfg's tokens.
func newEnvWith(t *testing.T, cfg admin.Config) *env {
	t.Helper()
	r := testenv.MustRedis(t, testenv.RedisOptions{Persist: true})
	store, err := registry.New(r.Client(), "hitship:", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	s3 := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `<Error><Code>SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match</Message><AWSAccessKeyId>AKIAKEYS</AWSAccessKeyId></Error>`)
	}))
	t.Cleanup(s3.Close)
	tester := func(ctx context.Context, name string) (s3sink.Answer, error) {
		switch name {
		case "keys":
			st, err := s3sink.NewS3Store(s3sink.S3Config{Bucket: "cust", Region: "us-east-1", Endpoint: s3.URL, PathStyle: true,
				Credentials: credentials.NewStaticCredentialsProvider("AKIAKEYS", secret, "")})
			if err != nil {
				return s3sink.Answer{}, err
			}
			_, err = s3sink.TestWrite(ctx, st, s3sink.TestParams{Format: sink.FormatNDJSON, Now: time.Now()})
			return s3sink.Explain(err), nil
		case "acme":
			return s3sink.Answer{OK: true, Message: "hitship wrote the two sample hits"}, nil
		}
		return s3sink.Answer{}, errors.New("cannot build store with secret " + secret)
	}
	logBuf := &syncBuf{}
	api, err := admin.New(cfg, admin.Deps{
		Logger:       slogJSON(logBuf),
		Registry:     store,
		Integrations: func() []admin.Integration { return integrations },
		Tester:       tester,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &env{api: api, srv: srv, store: store, redis: r, logBuf: logBuf}
}

// do sends one request and checks what every response must satisfy: JSON,
// no secret, no token.
func (e *env) do(t *testing.T, method, path, body, auth string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{secret, token} {
		if strings.Contains(string(data), s) || strings.Contains(fmt.Sprint(resp.Header), s) {
			t.Errorf("%s %s: response contains a secret: %s", method, path, data)
		}
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	var out map[string]any
	if method != http.MethodHead {
		if err := json.Unmarshal(data, &out); err != nil {
			t.Errorf("%s %s: body is not a JSON object: %v: %s", method, path, err, data)
		}
	}
	return resp.StatusCode, resp.Header, out
}

const bearer = "Bearer " + token

func TestNew(t *testing.T) {
	rdb := testenv.MustRedis(t, testenv.RedisOptions{})
	store, err := registry.New(rdb.Client(), "x:", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	ins := func() []admin.Integration { return nil }
	tester := func(context.Context, string) (s3sink.Answer, error) { return s3sink.Answer{}, nil }
	cases := []struct {
		name    string
		cfg     admin.Config
		deps    admin.Deps
		wantErr bool
	}{
		{name: "ok", cfg: admin.Config{Token: "t"}, deps: admin.Deps{Registry: store, Integrations: ins, Tester: tester}},
		{name: "no token", cfg: admin.Config{}, deps: admin.Deps{Registry: store, Integrations: ins, Tester: tester}, wantErr: true},
		{name: "token with newline", cfg: admin.Config{Token: "t\n"}, deps: admin.Deps{Registry: store, Integrations: ins, Tester: tester}, wantErr: true},
		{name: "no registry", cfg: admin.Config{Token: "t"}, deps: admin.Deps{Integrations: ins, Tester: tester}, wantErr: true},
		{name: "no integrations", cfg: admin.Config{Token: "t"}, deps: admin.Deps{Registry: store, Tester: tester}, wantErr: true},
		{name: "no tester", cfg: admin.Config{Token: "t"}, deps: admin.Deps{Registry: store, Integrations: ins}, wantErr: true},
		{name: "negative timeout", cfg: admin.Config{Token: "t", TestTimeout: -1}, deps: admin.Deps{Registry: store, Integrations: ins, Tester: tester}, wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			api, err := admin.New(tc.cfg, tc.deps)
			if (err != nil) != tc.wantErr || (err == nil) != (api != nil) {
				t.Errorf("New = %v, %v; wantErr %v", api, err, tc.wantErr)
			}
		})
	}
}

func TestUnauthorized(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name, method, path, auth string
	}{
		{name: "no header", method: "GET", path: "/v1/integrations"},
		{name: "wrong token", method: "GET", path: "/v1/integrations", auth: "Bearer wrong"},
		{name: "token prefix", method: "GET", path: "/v1/integrations", auth: "Bearer " + token[:len(token)-1]},
		{name: "token plus suffix", method: "GET", path: "/v1/integrations", auth: bearer + "x"},
		{name: "basic scheme", method: "GET", path: "/v1/integrations", auth: "Basic " + token},
		{name: "bare token", method: "GET", path: "/v1/integrations", auth: token},
		{name: "empty bearer", method: "GET", path: "/v1/integrations", auth: "Bearer "},
		{name: "disable without token", method: "POST", path: "/v1/integrations/acme/disable"},
		{name: "events without token", method: "GET", path: "/v1/integrations/acme/events"},
		{name: "unknown path still 401", method: "GET", path: "/nope"},
		{name: "unknown integration still 401", method: "GET", path: "/v1/integrations/ghost", auth: "Bearer wrong"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, h, body := e.do(t, tc.method, tc.path, "", tc.auth)
			if status != http.StatusUnauthorized || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") || body["error"] != "unauthorized" {
				t.Errorf("= %d %v %v, want 401 with WWW-Authenticate", status, h.Get("WWW-Authenticate"), body)
			}
		})
	}
	if st, _ := e.store.Status(context.Background(), "acme"); st.State != registry.Enabled {
		t.Errorf("an unauthorized disable changed the state: %+v", st)
	}
	status, _, _ := e.do(t, "GET", "/v1/integrations", "", "bearer "+token)
	if status != http.StatusOK {
		t.Errorf("scheme is case-insensitive (RFC 7235), got %d", status)
	}
}

func TestListAndShow(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, _, err := e.store.Disable(ctx, "keys", "bad data", "op"); err != nil {
		t.Fatal(err)
	}
	status, _, body := e.do(t, "GET", "/v1/integrations", "", bearer)
	if status != http.StatusOK {
		t.Fatalf("list = %d %v", status, body)
	}
	list, _ := body["integrations"].([]any)
	if len(list) != len(integrations) {
		t.Fatalf("list has %d integrations, want %d: %v", len(list), len(integrations), body)
	}
	acme := list[0].(map[string]any)
	wantAcme := map[string]any{"name": "acme", "client_id": 7.0, "region": "eu-west-1", "bucket": "acme-hits", "prefix": "wallarm/",
		"format": "json", "compression": "gzip", "state": "enabled", "config_enabled": true, "source": "file", "type": "s3",
		"auth": map[string]any{"method": "role", "role_arn": "arn:aws:iam::222222222222:role/hitship"}}
	if fmt.Sprint(acme) != fmt.Sprint(wantAcme) {
		t.Errorf("acme = %v\nwant    %v", acme, wantAcme)
	}
	keys := list[1].(map[string]any)
	if keys["state"] != "disabled" || keys["reason"] != "bad data" || keys["by"] != "op" || keys["since"] == nil {
		t.Errorf("keys = %v, want disabled with reason, by, since", keys)
	}
	if auth := keys["auth"].(map[string]any); auth["method"] != "access_key" || auth["access_key_id"] != "AKIAKEYS" || len(auth) != 2 {
		t.Errorf("keys auth = %v, want the key id only", auth)
	}

	cases := []struct {
		name, method, path string
		status             int
		wantName           string
	}{
		{name: "show", method: "GET", path: "/v1/integrations/keys", status: 200, wantName: "keys"},
		{name: "show escaped", method: "GET", path: "/v1/integrations/%61cme", status: 200, wantName: "acme"},
		{name: "show unknown", method: "GET", path: "/v1/integrations/ghost", status: 404},
		{name: "test unknown", method: "POST", path: "/v1/integrations/ghost/test", status: 404},
		{name: "disable unknown", method: "POST", path: "/v1/integrations/ghost/disable", status: 404},
		{name: "enable unknown", method: "POST", path: "/v1/integrations/ghost/enable", status: 404},
		{name: "unknown action", method: "POST", path: "/v1/integrations/acme/delete", status: 404},
		{name: "unknown path", method: "GET", path: "/v2/integrations", status: 404},
		{name: "root", method: "GET", path: "/", status: 404},
		{name: "empty segment", method: "GET", path: "/v1/integrations//x", status: 404},
		{name: "too deep", method: "GET", path: "/v1/integrations/acme/test/x", status: 404},
		{name: "post to list", method: "POST", path: "/v1/integrations", status: 405},
		{name: "get disable", method: "GET", path: "/v1/integrations/acme/disable", status: 405},
		{name: "delete one", method: "DELETE", path: "/v1/integrations/acme", status: 405},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, h, body := e.do(t, tc.method, tc.path, "", bearer)
			if status != tc.status {
				t.Fatalf("= %d %v, want %d", status, body, tc.status)
			}
			if tc.wantName != "" && body["name"] != tc.wantName {
				t.Errorf("name = %v, want %s", body["name"], tc.wantName)
			}
			if status >= 400 && (body["error"] == nil || body["message"] == nil) {
				t.Errorf("error body = %v", body)
			}
			if status == 405 && h.Get("Allow") == "" {
				t.Error("405 without Allow")
			}
		})
	}
	if st, _ := e.store.Status(ctx, "acme"); st.State != registry.Enabled {
		t.Errorf("a GET on disable changed the state: %+v", st)
	}
}

// TestDisableEnable: disable through the API of one replica, seen by the
// watcher of another; events recorded once per change; enable resets.
func TestDisableEnable(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	other, err := registry.New(e.redis.Client(), "hitship:", time.Now) // another replica's store
	if err != nil {
		t.Fatal(err)
	}
	w, err := registry.NewWatcher(other, registry.WatcherConfig{})
	if err != nil {
		t.Fatal(err)
	}

	status, _, body := e.do(t, "POST", "/v1/integrations/acme/disable", `{"reason": "customer asked"}`, bearer)
	if status != 200 || body["changed"] != true {
		t.Fatalf("disable = %d %v", status, body)
	}
	in := body["integration"].(map[string]any)
	by, _ := in["by"].(string)
	if in["state"] != "disabled" || in["reason"] != "customer asked" || !strings.HasPrefix(by, "admin-api@127.0.0.1:") {
		t.Errorf("integration after disable = %v", in)
	}
	if ev := body["event"].(map[string]any); ev["integration"] != "acme" || ev["state"] != "disabled" || ev["type"] != "integration_state" {
		t.Errorf("event = %v", ev)
	}
	st, err := e.store.Status(ctx, "acme")
	if err != nil || st.State != registry.Disabled || st.Reason != "customer asked" || st.By != by {
		t.Errorf("registry = %+v, %v", st, err)
	}
	if err := w.Refresh(ctx); err != nil || !w.Disabled("acme") || w.Disabled("keys") {
		t.Errorf("other replica: refresh %v, acme disabled %v, keys disabled %v", err, w.Disabled("acme"), w.Disabled("keys"))
	}
	if !strings.Contains(e.logBuf.String(), `"integration":"acme","state":"disabled"`) {
		t.Errorf("the change was not logged with its event: %s", e.logBuf.String())
	}

	status, _, body = e.do(t, "POST", "/v1/integrations/acme/disable", "", bearer)
	if status != 200 || body["changed"] != false || body["event"] != nil {
		t.Errorf("second disable = %d %v, want unchanged", status, body)
	}
	status, _, body = e.do(t, "POST", "/v1/integrations/acme/enable", "", bearer)
	if status != 200 || body["changed"] != true || body["integration"].(map[string]any)["state"] != "enabled" {
		t.Errorf("enable = %d %v", status, body)
	}
	if err := w.Refresh(ctx); err != nil || w.Disabled("acme") {
		t.Errorf("other replica after enable: %v, disabled %v", err, w.Disabled("acme"))
	}
	status, _, body = e.do(t, "POST", "/v1/integrations/acme/enable", "", bearer)
	if status != 200 || body["changed"] != false {
		t.Errorf("second enable = %d %v", status, body)
	}

	status, _, body = e.do(t, "POST", "/v1/integrations/keys/disable", "", bearer)
	if status != 200 || body["integration"].(map[string]any)["reason"] != "disabled via the admin API" {
		t.Errorf("disable without body = %d %v", status, body)
	}

	evs, err := e.store.Events(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, ev := range evs {
		got = append(got, ev.Integration+"="+string(ev.State))
	}
	if want := "acme=disabled acme=enabled keys=disabled"; strings.Join(got, " ") != want {
		t.Errorf("events = %q, want %q", got, want)
	}

	bad := []struct{ name, body string }{
		{name: "not json", body: "reason=x"},
		{name: "unknown field", body: `{"reason":"x","force":true}`},
		{name: "wrong type", body: `{"reason":5}`},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := e.do(t, "POST", "/v1/integrations/off/disable", tc.body, bearer)
			if status != http.StatusBadRequest || body["error"] != "bad_request" {
				t.Errorf("= %d %v, want 400", status, body)
			}
		})
	}
	status, _, _ = e.do(t, "POST", "/v1/integrations/off/disable", `{"reason":"`+strings.Repeat("x", 70<<10)+`"}`, bearer)
	if status != http.StatusRequestEntityTooLarge {
		t.Errorf("huge body = %d, want 413", status)
	}
	if st, _ := e.store.Status(ctx, "off"); st.State != registry.Enabled {
		t.Errorf("a refused body changed the state: %+v", st)
	}
}

// TestEvents: an integration's history through the API is its own events,
// oldest first, with who, when and why; limit bounds it.
func TestEvents(t *testing.T) {
	e := newEnv(t)
	for _, step := range []struct{ path, body string }{
		{"/v1/integrations/acme/disable", `{"reason": "customer asked"}`},
		{"/v1/integrations/keys/disable", `{"reason": "not acme"}`},
		{"/v1/integrations/acme/enable", ""},
	} {
		if status, _, body := e.do(t, "POST", step.path, step.body, bearer); status != 200 {
			t.Fatalf("%s = %d %v", step.path, status, body)
		}
	}
	status, _, body := e.do(t, "GET", "/v1/integrations/acme/events", "", bearer)
	if status != 200 || body["integration"] != "acme" {
		t.Fatalf("events = %d %v", status, body)
	}
	var got []string
	for _, ev := range body["events"].([]any) {
		m := ev.(map[string]any)
		by, _ := m["by"].(string)
		if m["integration"] != "acme" || !strings.HasPrefix(by, "admin-api@127.0.0.1:") || m["at"] == nil {
			t.Errorf("event %v", m)
		}
		got = append(got, fmt.Sprint(m["state"], ":", m["reason"]))
	}
	if want := "disabled:customer asked enabled:<nil>"; strings.Join(got, " ") != want {
		t.Errorf("events = %q, want %q", got, want)
	}
	status, _, body = e.do(t, "GET", "/v1/integrations/acme/events?limit=1", "", bearer)
	if evs, _ := body["events"].([]any); status != 200 || len(evs) != 1 || evs[0].(map[string]any)["state"] != "enabled" {
		t.Errorf("events?limit=1 = %d %v, want the latest one", status, body)
	}
	status, _, body = e.do(t, "GET", "/v1/integrations/ghost/events", "", bearer)
	if evs, ok := body["events"].([]any); status != 200 || !ok || len(evs) != 0 {
		t.Errorf("events of a name without any = %d %v, want an empty list", status, body)
	}
	for _, q := range []string{"limit=0", "limit=x", "limit=1001"} {
		if status, _, _ := e.do(t, "GET", "/v1/integrations/acme/events?"+q, "", bearer); status != http.StatusBadRequest {
			t.Errorf("events?%s = %d, want 400", q, status)
		}
	}
	if status, _, _ := e.do(t, "POST", "/v1/integrations/acme/events", "", bearer); status != http.StatusMethodNotAllowed {
		t.Errorf("POST events = %d, want 405", status)
	}
}

func TestTestEndpoint(t *testing.T) {
	e := newEnv(t)
	cases := []struct {
		name    string
		path    string
		status  int
		ok      bool
		problem string
	}{
		{name: "success", path: "/v1/integrations/acme/test", status: 200, ok: true},
		{name: "real S3 failure with the secret in use", path: "/v1/integrations/keys/test", status: 200, problem: s3sink.ProblemSignatureMismatch},
		{name: "tester cannot run", path: "/v1/integrations/off/test", status: 500},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, _, body := e.do(t, "POST", tc.path, "", bearer)
			if status != tc.status {
				t.Fatalf("= %d %v, want %d", status, body, tc.status)
			}
			if status != 200 {
				if body["error"] != "test_not_run" {
					t.Errorf("body = %v", body)
				}
				return
			}
			if body["ok"] != tc.ok || (tc.problem != "" && body["problem"] != tc.problem) || body["message"] == "" {
				t.Errorf("answer = %v, want ok %v problem %q", body, tc.ok, tc.problem)
			}
		})
	}
	if strings.Contains(e.logBuf.String(), token) {
		t.Error("the log holds the admin token")
	}
}

func TestRedisDown(t *testing.T) {
	e := newEnv(t)
	if err := e.redis.Stop(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct{ method, path string }{
		{"GET", "/v1/integrations"}, {"GET", "/v1/integrations/acme"}, {"POST", "/v1/integrations/acme/disable"},
	} {
		status, _, body := e.do(t, p.method, p.path, "", bearer)
		if status != http.StatusServiceUnavailable || body["error"] != "registry_unavailable" {
			t.Errorf("%s %s with Redis down = %d %v, want 503", p.method, p.path, status, body)
		}
	}
}

// TestNamedTokens: each named token authenticates, and the change it makes
// records its name; a token of nobody's is refused.
func TestNamedTokens(t *testing.T) {
	e := newEnvWith(t, admin.Config{Tokens: map[string]string{"ops-alice": "alice-token-0000000001", "console": "console-token-00000001"}})
	for _, c := range []struct{ token, name string }{{"alice-token-0000000001", "ops-alice"}, {"console-token-00000001", "console"}} {
		status, _, body := e.do(t, "POST", "/v1/integrations/acme/disable", `{"reason":"x"}`, "Bearer "+c.token)
		if status != http.StatusOK {
			t.Fatalf("%s: %d %v", c.name, status, body)
		}
		ev, _ := body["event"].(map[string]any)
		if by, _ := ev["by"].(string); !strings.HasPrefix(by, "admin-api:"+c.name+"@") {
			t.Fatalf("%s's change recorded by %q", c.name, by)
		}
		e.do(t, "POST", "/v1/integrations/acme/enable", "", "Bearer "+c.token)
	}
	if status, _, _ := e.do(t, "GET", "/v1/integrations", "", "Bearer nobody-token-000000001"); status != http.StatusUnauthorized {
		t.Fatalf("an unknown token: %d", status)
	}
}

// TestHealthInViews: list and show carry each integration's latest
// outcomes, 12-hour ledger and last hour's deliveries from Deps.Health; a
// failing Health leaves them out of that integration only.
func TestHealthInViews(t *testing.T) {
	r := testenv.MustRedis(t, testenv.RedisOptions{})
	store, err := registry.New(r.Client(), "hitship:", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 5, 9, 12, 0, 0, time.UTC)
	api, err := admin.New(admin.Config{Token: token}, admin.Deps{
		Registry:     store,
		Integrations: func() []admin.Integration { return integrations },
		Tester:       func(context.Context, string) (s3sink.Answer, error) { return s3sink.Answer{}, nil },
		Health: func(_ context.Context, name string) (admin.Health, error) {
			if name == "off" {
				return admin.Health{}, errors.New("redis down")
			}
			h := admin.Health{Ledger: admin.Ledger{Attempts: 10, Failures: 3, CustomerFailures: 2},
				Delivered1h: health.Delivered{Objects: 6, Hits: 1234}}
			h.SuccessAt = at
			if name == "keys" {
				h.Error = &health.Failure{At: at, Class: "customer", Problem: "no_such_bucket", Message: "the bucket does not exist", Fix: "create it"}
			}
			return h, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	e := &env{api: api, srv: srv, store: store, redis: r}
	status, _, body := e.do(t, "GET", "/v1/integrations", "", bearer)
	if status != 200 {
		t.Fatalf("list = %d %v", status, body)
	}
	byName := map[string]map[string]any{}
	for _, v := range body["integrations"].([]any) {
		byName[v.(map[string]any)["name"].(string)] = v.(map[string]any)
	}
	for _, name := range []string{"acme", "keys"} {
		v := byName[name]
		if fmt.Sprint(v["delivered_1h"]) != "map[hits:1234 objects:6]" || fmt.Sprint(v["ledger_12h"]) != "map[attempts:10 customer_failures:2 failures:3]" ||
			v["last_success_at"] != "2026-12-05T09:12:00Z" {
			t.Errorf("%s = %v", name, v)
		}
	}
	if le := byName["keys"]["last_error"]; fmt.Sprint(le) != "map[at:2026-12-05T09:12:00Z class:customer fix:create it message:the bucket does not exist problem:no_such_bucket]" {
		t.Errorf("keys last_error = %v", le)
	}
	if off := byName["off"]; off["delivered_1h"] != nil || off["ledger_12h"] != nil || off["last_error"] != nil {
		t.Errorf("off (health failed) = %v, want no health fields", off)
	}
	if status, _, body := e.do(t, "GET", "/v1/integrations/acme", "", bearer); status != 200 || fmt.Sprint(body["delivered_1h"]) != "map[hits:1234 objects:6]" {
		t.Errorf("show = %d %v", status, body)
	}
}
