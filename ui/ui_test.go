package ui_test

import (
	"context"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"hitship/admin"
	"hitship/integrations/registry"
	"hitship/internal/testenv"
	s3sink "hitship/sink/s3"
	"hitship/ui"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newServer(t *testing.T) *httptest.Server {
	t.Helper()
	h, err := ui.New()
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, srv *httptest.Server, method, path string, hdr ...string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// source reads a file of the console as committed (what go:embed takes).
func source(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("static", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestAssets: every file is served under /ui/ with its content type and
// bytes, the page at /ui/ itself; everything else is 404 and only GET and
// HEAD are allowed; every answer, errors included, carries the CSP and the
// other security headers.
func TestAssets(t *testing.T) {
	srv := newServer(t)
	cases := []struct {
		name, method, path string
		status             int
		contentType, file  string
	}{
		{name: "page", method: "GET", path: "/ui/", status: 200, contentType: "text/html; charset=utf-8", file: "index.html"},
		{name: "script", method: "GET", path: "/ui/app.js", status: 200, contentType: "text/javascript; charset=utf-8", file: "app.js"},
		{name: "style", method: "GET", path: "/ui/app.css", status: 200, contentType: "text/css; charset=utf-8", file: "app.css"},
		{name: "icon", method: "GET", path: "/ui/favicon.svg", status: 200, contentType: "image/svg+xml", file: "favicon.svg"},
		{name: "head", method: "HEAD", path: "/ui/app.js", status: 200, contentType: "text/javascript; charset=utf-8"},
		{name: "index by name is not a second address", method: "GET", path: "/ui/index.html", status: 404},
		{name: "unknown", method: "GET", path: "/ui/nope.js", status: 404},
		{name: "outside", method: "GET", path: "/v1/integrations", status: 404},
		{name: "directory escape", method: "GET", path: "/ui/../ui.go", status: 404},
		{name: "post", method: "POST", path: "/ui/", status: 405},
		{name: "delete", method: "DELETE", path: "/ui/app.js", status: 405},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := get(t, srv, tc.method, tc.path)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			h := resp.Header
			want := map[string]string{
				"Content-Security-Policy": ui.CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
				"X-Frame-Options": "DENY", "Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Resource-Policy": "same-origin",
			}
			for k, v := range want {
				if h.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, h.Get(k), v)
				}
			}
			if tc.status == 405 && h.Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow = %q", h.Get("Allow"))
			}
			if tc.contentType != "" && h.Get("Content-Type") != tc.contentType {
				t.Errorf("Content-Type = %q, want %q", h.Get("Content-Type"), tc.contentType)
			}
			if tc.status == 200 && (h.Get("Cache-Control") != "no-cache" || h.Get("ETag") == "") {
				t.Errorf("Cache-Control %q, ETag %q: want no-cache with an ETag", h.Get("Cache-Control"), h.Get("ETag"))
			}
			if tc.file != "" && body != source(t, tc.file) {
				t.Errorf("body is not static/%s", tc.file)
			}
		})
	}
	resp, _ := get(t, srv, "GET", "/ui/app.js")
	again, body := get(t, srv, "GET", "/ui/app.js", "If-None-Match", resp.Header.Get("ETag"))
	if again.StatusCode != http.StatusNotModified || body != "" {
		t.Errorf("revalidation with the ETag = %d (%d bytes), want 304", again.StatusCode, len(body))
	}
	if again.Header.Get("Content-Security-Policy") != ui.CSP {
		t.Error("a 304 without the CSP")
	}
}

// TestCSP: the policy allows this origin only, no inline code, no framing;
// and the page obeys it: no inline script, style or event handler, nothing
// loaded from another origin.
func TestCSP(t *testing.T) {
	directives := map[string]string{}
	for _, d := range strings.Split(ui.CSP, ";") {
		f := strings.Fields(d)
		if len(f) > 0 {
			directives[f[0]] = strings.Join(f[1:], " ")
		}
	}
	for k, v := range map[string]string{
		"default-src": "'self'", "script-src": "'self'", "style-src": "'self'", "img-src": "'self'", "connect-src": "'self'",
		"frame-ancestors": "'none'", "object-src": "'none'", "base-uri": "'none'", "form-action": "'none'",
	} {
		if directives[k] != v {
			t.Errorf("CSP %s = %q, want %q", k, directives[k], v)
		}
	}
	if strings.Contains(ui.CSP, "unsafe") || strings.Contains(ui.CSP, "data:") || strings.Contains(ui.CSP, "*") {
		t.Errorf("CSP loosened: %s", ui.CSP)
	}

	files, err := fs.Glob(os.DirFS("static"), "*")
	if err != nil || len(files) < 4 {
		t.Fatalf("static files %v, %v", files, err)
	}
	page := source(t, "index.html")
	checks := []struct {
		name string
		re   string
	}{
		{"inline style element", `(?i)<style`},
		{"style attribute", `(?i)\sstyle\s*=`},
		{"event handler attribute", `(?i)\son[a-z]+\s*=`},
		{"javascript: URL", `(?i)javascript:`},
		{"inline script", `(?i)<script(?:\s[^>]*)?>[^<]`},
		{"another origin", `(?i)(?:src|href|action)\s*=\s*"(?:https?:)?//`},
	}
	for _, c := range checks {
		if m := regexp.MustCompile(c.re).FindString(page); m != "" {
			t.Errorf("index.html has an %s: %q", c.name, m)
		}
	}
	for _, tag := range regexp.MustCompile(`(?i)<script[^>]*>`).FindAllString(page, -1) {
		if !strings.Contains(tag, ` src="`) {
			t.Errorf("index.html has a script without src: %q", tag)
		}
	}
	for _, f := range files {
		s := source(t, f)
		for _, bad := range []string{"http://", "https://", "eval(", "new Function", "innerHTML", "insertAdjacentHTML", "document.write"} {
			if f != "favicon.svg" && strings.Contains(s, bad) {
				t.Errorf("%s contains %q: the console loads nothing from elsewhere and builds no HTML from strings", f, bad)
			}
		}
	}
	js := source(t, "app.js")
	if strings.Contains(js, "localStorage") || strings.Contains(js, "?token") || strings.Contains(js, "&token") {
		t.Error("app.js keeps the token beyond the tab or puts it in a URL")
	}
}

// TestNoTokenNoData: mounted beside the admin API as the service mounts it,
// the page is served to anyone but holds no data, and the data it reads needs
// the token: without it the API answers 401 and nothing of an integration.
func TestNoTokenNoData(t *testing.T) {
	r := testenv.MustRedis(t, testenv.RedisOptions{})
	store, err := registry.New(r.Client(), "hitship:", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	const token = "console-token-3b8e1f0c6a"
	api, err := admin.New(admin.Config{Token: token}, admin.Deps{
		Registry: store,
		Integrations: func() []admin.Integration {
			return []admin.Integration{{Name: "acme-secretive", ClientID: 4242, Region: "eu-west-1", Bucket: "acme-private-bucket", Format: "json"}}
		},
		Tester: func(context.Context, string) (s3sink.Answer, error) { return s3sink.Answer{}, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	h, err := ui.New()
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/v1/", api)
	mux.Handle(ui.Prefix, h)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	for _, p := range []string{"/ui/", "/ui/app.js", "/v1/integrations", "/v1/integrations/acme-secretive", "/v1/integrations/acme-secretive/events", "/v1/clients/4242/onboarding"} {
		resp, body := get(t, srv, "GET", p)
		for _, s := range []string{"acme-secretive", "4242", "acme-private-bucket"} {
			if strings.Contains(body, s) && p != "/v1/clients/4242/onboarding" {
				t.Errorf("GET %s without a token shows %q", p, s)
			}
		}
		if strings.HasPrefix(p, "/v1/") && resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("GET %s without a token = %d, want 401", p, resp.StatusCode)
		}
	}
	resp, body := get(t, srv, "GET", "/v1/integrations", "Authorization", "Bearer "+token)
	if resp.StatusCode != 200 || !strings.Contains(body, "acme-secretive") {
		t.Errorf("with the token: %d %s", resp.StatusCode, body)
	}
}
