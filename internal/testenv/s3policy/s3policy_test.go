package s3policy

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestProxy(t *testing.T) {
	var mu sync.Mutex
	var reached []string
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		reached = append(reached, r.Method+" "+r.URL.RequestURI()+" host="+r.Host+" body="+string(body))
		mu.Unlock()
		w.WriteHeader(http.StatusOK)
	}))
	defer upstream.Close()
	p, err := New(upstream.URL)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p)
	defer srv.Close()
	defer srv.Client().CloseIdleConnections()

	cases := []struct {
		name    string
		method  string
		target  string
		header  map[string]string
		allowed bool
		op      string
	}{
		{name: "PutObject", method: "PUT", target: "/b/k.json", allowed: true, op: "PutObject"},
		{name: "PutObject with SDK x-id", method: "PUT", target: "/b/a/b/c.json?x-id=PutObject", allowed: true, op: "PutObject"},
		{name: "CreateMultipartUpload", method: "POST", target: "/b/k?uploads", allowed: true, op: "CreateMultipartUpload"},
		{name: "CreateMultipartUpload x-id", method: "POST", target: "/b/k?uploads=&x-id=CreateMultipartUpload", allowed: true, op: "CreateMultipartUpload"},
		{name: "UploadPart", method: "PUT", target: "/b/k?partNumber=1&uploadId=abc&x-id=UploadPart", allowed: true, op: "UploadPart"},
		{name: "CompleteMultipartUpload", method: "POST", target: "/b/k?uploadId=abc", allowed: true, op: "CompleteMultipartUpload"},
		{name: "GetObject", method: "GET", target: "/b/k"},
		{name: "HeadObject", method: "HEAD", target: "/b/k"},
		{name: "DeleteObject", method: "DELETE", target: "/b/k"},
		{name: "AbortMultipartUpload", method: "DELETE", target: "/b/k?uploadId=abc&x-id=AbortMultipartUpload"},
		{name: "ListParts", method: "GET", target: "/b/k?uploadId=abc"},
		{name: "ListObjects", method: "GET", target: "/b?list-type=2"},
		{name: "ListObjects slash", method: "GET", target: "/b/"},
		{name: "CreateBucket", method: "PUT", target: "/b"},
		{name: "ListBuckets", method: "GET", target: "/"},
		{name: "PutObjectAcl", method: "PUT", target: "/b/k?acl"},
		{name: "PutObjectTagging", method: "PUT", target: "/b/k?tagging"},
		{name: "PutObjectRetention", method: "PUT", target: "/b/k?retention"},
		{name: "UploadPart without uploadId value", method: "PUT", target: "/b/k?partNumber=1&uploadId="},
		{name: "UploadPart with extra parameter", method: "PUT", target: "/b/k?partNumber=1&uploadId=abc&acl"},
		{name: "Complete with uploads too", method: "POST", target: "/b/k?uploadId=abc&uploads"},
		{name: "POST object form", method: "POST", target: "/b/k"},
		{name: "CopyObject", method: "PUT", target: "/b/k", header: map[string]string{"X-Amz-Copy-Source": "/other/secret"}},
		{name: "UploadPartCopy", method: "PUT", target: "/b/k?partNumber=1&uploadId=abc", header: map[string]string{"X-Amz-Copy-Source": "/other/secret"}},
		{name: "PutObject with canned ACL", method: "PUT", target: "/b/k", header: map[string]string{"X-Amz-Acl": "public-read"}},
		{name: "PutObject with grant", method: "PUT", target: "/b/k", header: map[string]string{"X-Amz-Grant-Read": "id=x"}},
		{name: "PutObject with tagging", method: "PUT", target: "/b/k", header: map[string]string{"X-Amz-Tagging": "a=b"}},
	}
	var wantDenied []string
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			mu.Lock()
			before := len(reached)
			mu.Unlock()
			req, err := http.NewRequest(tc.method, srv.URL+tc.target, strings.NewReader("payload"))
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tc.header {
				req.Header.Set(k, v)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			mu.Lock()
			got := reached[before:]
			mu.Unlock()
			if tc.allowed {
				if resp.StatusCode != http.StatusOK || len(got) != 1 {
					t.Fatalf("status %d, upstream saw %v; want it forwarded", resp.StatusCode, got)
				}
				if !strings.Contains(got[0], "body=payload") || !strings.Contains(got[0], "host="+strings.TrimPrefix(srv.URL, "http://")) {
					t.Errorf("forwarded request %q lost its body or Host header", got[0])
				}
				if op, reason := Classify(req); op != tc.op || reason != "" {
					t.Errorf("Classify = %q, %q; want %q", op, reason, tc.op)
				}
				return
			}
			u := req.URL
			line := tc.method + " " + u.Path
			if u.RawQuery != "" {
				line += "?" + u.RawQuery
			}
			wantDenied = append(wantDenied, line)
			if resp.StatusCode != http.StatusForbidden {
				t.Fatalf("status %d, want 403", resp.StatusCode)
			}
			if len(got) != 0 {
				t.Fatalf("denied request reached upstream: %v", got)
			}
			if tc.method != "HEAD" && !strings.Contains(string(body), "<Code>AccessDenied</Code>") {
				t.Errorf("body %q lacks the AccessDenied code", body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/xml" {
				t.Errorf("content type %q", ct)
			}
		})
	}
	if d := p.Denied(); !slices.Equal(d, wantDenied) {
		t.Errorf("Denied() = %q\nwant %q", d, wantDenied)
	}
	wantAllowed := []string{"PutObject", "PutObject", "CreateMultipartUpload", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"}
	if a := p.Allowed(); !slices.Equal(a, wantAllowed) {
		t.Errorf("Allowed() = %q, want %q", a, wantAllowed)
	}
}

func TestNewRejectsRelativeURL(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:9000", "/path", "://bad"} {
		if _, err := New(u); err == nil {
			t.Errorf("New(%q) succeeded", u)
		}
	}
}
