// Package s3policy is a test proxy that enforces, in front of an S3 stand-in,
// what an IAM policy granting only s3:PutObject on bucket/* allows. Tests run
// sink/s3's S3Store behind it to prove it needs nothing more.
//
// Allowed (path-style requests, a non-empty key):
//
//	PUT  /bucket/key                       PutObject
//	POST /bucket/key?uploads               CreateMultipartUpload
//	PUT  /bucket/key?partNumber=N&uploadId UploadPart
//	POST /bucket/key?uploadId=ID           CompleteMultipartUpload
//
// Everything else — bucket-level calls, GET/HEAD/DELETE, AbortMultipartUpload,
// sub-resources such as ?acl or ?tagging, copies (x-amz-copy-source needs
// s3:GetObject on the source) and ACL/tagging/object-lock headers (they need
// their own permissions) — is answered 403 AccessDenied with an S3 XML body
// and recorded. The "x-id" query parameter the AWS SDK adds is ignored.
// A Proxy is safe for concurrent use.
package s3policy

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
)

// Proxy forwards allowed requests to the upstream server.
type Proxy struct {
	rp *httputil.ReverseProxy

	mu      sync.Mutex
	denied  []string
	allowed []string
}

// New returns a proxy to upstream (e.g. "http://127.0.0.1:9000"). Serve it
// with httptest.NewServer.
func New(upstream string) (*Proxy, error) {
	u, err := url.Parse(upstream)
	if err != nil {
		return nil, fmt.Errorf("s3policy: upstream: %w", err)
	}
	if u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("s3policy: upstream %q is not an absolute URL", upstream)
	}
	// The Director of NewSingleHostReverseProxy keeps the incoming Host
	// header, so SigV4 signatures made for the proxy's address stay valid.
	rp := httputil.NewSingleHostReverseProxy(u)
	// A client giving up (a timeout, a fault injected in front) is not news:
	// the proxy would print "http: proxy error: context canceled" each time.
	rp.ErrorLog = log.New(io.Discard, "", 0)
	return &Proxy{rp: rp}, nil
}

// ServeHTTP forwards r when the policy allows it and answers 403 otherwise.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	line := r.Method + " " + r.URL.Path
	if r.URL.RawQuery != "" {
		line += "?" + r.URL.RawQuery
	}
	op, reason := Classify(r)
	p.mu.Lock()
	if reason != "" {
		p.denied = append(p.denied, line)
	} else {
		p.allowed = append(p.allowed, op)
	}
	p.mu.Unlock()
	if reason != "" {
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>AccessDenied</Code><Message>Access Denied (s3policy: %s)</Message><Resource>%s</Resource><RequestId>s3policy</RequestId></Error>`, xmlEscape(reason), xmlEscape(r.URL.Path))
		return
	}
	p.rp.ServeHTTP(w, r)
}

// Denied returns the refused requests as "METHOD path?query", in order.
func (p *Proxy) Denied() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.denied...)
}

// Allowed returns the operations forwarded, in order (e.g. "PutObject").
func (p *Proxy) Allowed() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.allowed...)
}

// deniedHeaders need permissions beyond s3:PutObject.
var deniedHeaders = []string{"X-Amz-Copy-Source", "X-Amz-Acl", "X-Amz-Tagging", "X-Amz-Object-Lock-Mode", "X-Amz-Object-Lock-Retain-Until-Date", "X-Amz-Object-Lock-Legal-Hold"}

// Classify names the S3 operation of a path-style request when a
// PutObject-only policy allows it, or gives the reason it is denied.
func Classify(r *http.Request) (op, reason string) {
	path := strings.TrimPrefix(r.URL.Path, "/")
	bucket, key, _ := strings.Cut(path, "/")
	if bucket == "" || key == "" {
		return "", "bucket-level request"
	}
	for _, h := range deniedHeaders {
		if r.Header.Get(h) != "" {
			return "", "header " + h + " needs more than s3:PutObject"
		}
	}
	for name := range r.Header {
		if strings.HasPrefix(name, "X-Amz-Grant-") {
			return "", "header " + name + " needs s3:PutObjectAcl"
		}
	}
	q := r.URL.Query()
	q.Del("x-id")
	has := func(names ...string) bool {
		if len(q) != len(names) {
			return false
		}
		for _, n := range names {
			if _, ok := q[n]; !ok {
				return false
			}
		}
		return true
	}
	switch r.Method {
	case http.MethodPut:
		switch {
		case len(q) == 0:
			return "PutObject", ""
		case has("partNumber", "uploadId") && q.Get("uploadId") != "":
			return "UploadPart", ""
		}
	case http.MethodPost:
		switch {
		case has("uploads"):
			return "CreateMultipartUpload", ""
		case has("uploadId") && q.Get("uploadId") != "":
			return "CompleteMultipartUpload", ""
		}
	}
	return "", "not covered by s3:PutObject"
}

func xmlEscape(s string) string {
	r := strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;")
	return r.Replace(s)
}
