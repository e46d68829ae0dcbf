package s3

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"hitship/sink"
)

// seen is what a test server noted of one request.
type seen struct {
	method, path, rawPath string
	headers               map[string]string
	body                  string
	authOK                bool
}

// signedHeaders are the headers both paths must send alike.
var comparedHeaders = []string{"Content-Type", "Content-Encoding", "Content-Length", "If-None-Match",
	"X-Amz-Content-Sha256", "X-Amz-Checksum-Crc32", "X-Amz-Security-Token", "Expect"}

// recorder answers every request with status and body, and records it; it
// checks the SigV4 signature by signing the received request again.
type recorder struct {
	mu     sync.Mutex
	got    []seen
	status int
	body   string
	creds  aws.Credentials
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	data, _ := io.ReadAll(r.Body)
	s := seen{method: r.Method, path: r.URL.Path, rawPath: r.URL.EscapedPath(), headers: map[string]string{}, body: string(data)}
	for _, h := range comparedHeaders {
		s.headers[h] = r.Header.Get(h)
	}
	s.authOK = verifySigV4(r, rc.creds)
	rc.mu.Lock()
	rc.got = append(rc.got, s)
	rc.mu.Unlock()
	w.Header().Set("X-Amz-Request-Id", "req-1")
	w.WriteHeader(rc.status)
	_, _ = io.WriteString(w, rc.body)
}

// verifySigV4 signs a copy of r with the same credentials, time and signed
// headers and compares the signatures.
func verifySigV4(r *http.Request, c aws.Credentials) bool {
	auth := r.Header.Get("Authorization")
	i := strings.Index(auth, "SignedHeaders=")
	j := strings.Index(auth, ", Signature=")
	if i < 0 || j < 0 {
		return false
	}
	signed := strings.Split(auth[i+len("SignedHeaders="):j], ";")
	t, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return false
	}
	cp, _ := http.NewRequest(r.Method, "http://"+r.Host+r.URL.EscapedPath(), nil)
	cp.URL.RawQuery = r.URL.RawQuery
	for _, h := range signed {
		if h != "host" {
			cp.Header.Set(h, r.Header.Get(h))
		}
	}
	cp.ContentLength = r.ContentLength
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	if err := signer.SignHTTP(context.Background(), c, cp, r.Header.Get("X-Amz-Content-Sha256"), "s3", "us-east-1", t); err != nil {
		return false
	}
	want := cp.Header.Get("Authorization")
	return want[strings.Index(want, "Signature="):] == auth[strings.Index(auth, "Signature="):]
}

// TestPutterMatchesSDK: a PutObject made by the putter and one made by the SDK
// reach the server alike (path, escaping, headers, body, a valid signature, over
// HTTP and HTTPS) and come back as errors that classify alike, for S3 error
// answers with and without an XML body.
func TestPutterMatchesSDK(t *testing.T) {
	creds := aws.Credentials{AccessKeyID: "AKIDPUTTER", SecretAccessKey: "putter-secret", SessionToken: "tok"}
	answers := []struct {
		status int
		body   string
	}{
		{200, ""},
		{403, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>no</Message><RequestId>r</RequestId></Error>`},
		{412, ""},
		{412, `<Error><Code>PreconditionFailed</Code><Message>At least one of the pre-conditions you specified did not hold</Message></Error>`},
		{301, `<Error><Code>PermanentRedirect</Code><Message>elsewhere</Message></Error>`},
		{503, `<Error><Code>SlowDown</Code><Message>slow</Message></Error>`},
		{500, "not xml"},
		{404, `<Error><Code>NoSuchBucket</Code><Message>gone</Message></Error>`},
	}
	keys := []string{"hits/wallarm_hits_1687241400_0_42.jsonl", "odd keys/ünï cödé+plus=eq&amp;/~x!*'()/wallarm_hits_1_0_0.json"}
	bodies := []string{"", "{\"a\":1}\n", strings.Repeat("x", 3<<20)} // the last one sends Expect: 100-continue
	for _, tls := range []bool{false, true} {
		for _, a := range answers {
			for _, key := range keys {
				for _, body := range bodies {
					name := fmt.Sprintf("tls=%v/%d %.20s/%s/%d", tls, a.status, a.body, key, len(body))
					t.Run(name, func(t *testing.T) {
						rec := &recorder{status: a.status, body: a.body, creds: creds}
						var srv *httptest.Server
						if tls {
							srv = httptest.NewTLSServer(rec)
						} else {
							srv = httptest.NewServer(rec)
						}
						defer srv.Close()
						store, err := NewS3Store(S3Config{Bucket: "bkt", Region: "us-east-1", Endpoint: srv.URL, PathStyle: true,
							Credentials: credentials.StaticCredentialsProvider{Value: creds}, HTTPClient: srv.Client(), IfNoneMatch: a.status == 412})
						if err != nil {
							t.Fatal(err)
						}
						if store.putter == nil {
							t.Fatal("no putter for a plain S3 endpoint")
						}
						opts := sink.PutOptions{ContentType: "application/x-ndjson", ContentEncoding: "gzip"}
						errLean := store.Put(context.Background(), key, sink.BytesBody(body), opts)
						p := store.putter
						store.putter = nil
						errSDK := store.Put(context.Background(), key, sink.BytesBody(body), opts)
						store.putter = p

						if len(rec.got) != 2 {
							t.Fatalf("%d requests, want 2", len(rec.got))
						}
						lean, sdk := rec.got[0], rec.got[1]
						if !lean.authOK || !sdk.authOK {
							t.Errorf("signature valid: putter %v, SDK %v", lean.authOK, sdk.authOK)
						}
						if lean.method != sdk.method || lean.path != sdk.path || lean.rawPath != sdk.rawPath || lean.body != sdk.body {
							t.Errorf("putter sent %s %s (%s), %d bytes; SDK %s %s (%s), %d bytes",
								lean.method, lean.path, lean.rawPath, len(lean.body), sdk.method, sdk.path, sdk.rawPath, len(sdk.body))
						}
						for _, h := range comparedHeaders {
							if lean.headers[h] != sdk.headers[h] {
								t.Errorf("header %s: putter %q, SDK %q", h, lean.headers[h], sdk.headers[h])
							}
						}
						if (errLean == nil) != (errSDK == nil) {
							t.Fatalf("putter: %v; SDK: %v", errLean, errSDK)
						}
						if errLean == nil {
							return
						}
						classes := func(err error) []bool {
							return []bool{sink.IsRetryable(err), sink.IsAccessDenied(err), sink.IsNoSuchBucket(err), sink.IsBadCredentials(err),
								sink.IsWrongRegion(err), sink.IsAlreadyExists(err), IsUnreachable(err)}
						}
						if l, s := classes(errLean), classes(errSDK); !slices.Equal(l, s) {
							t.Errorf("classes putter %v, SDK %v\nputter: %v\nSDK:    %v", l, s, errLean, errSDK)
						}
						var sl, ss *sink.StoreError
						if !errors.As(errLean, &sl) || !errors.As(errSDK, &ss) || sl.Code != ss.Code || sl.StatusCode != ss.StatusCode {
							t.Errorf("StoreError putter %+v, SDK %+v", sl, ss)
						}
						if el, es := Explain(errLean), Explain(errSDK); el.Problem != es.Problem {
							t.Errorf("Explain: putter %q, SDK %q", el.Problem, es.Problem)
						}
					})
				}
			}
		}
	}
}
