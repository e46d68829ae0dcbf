package s3_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"go.uber.org/goleak"

	"hitship/internal/testenv/s3policy"
	"hitship/sink"
	s3sink "hitship/sink/s3"
	"hitship/sink/storetest"
)

const (
	testBucket    = "customer-bucket"
	testAccess    = "AKIAHITSHIPTEST"
	testSecret    = "hitship-test-secret"
	testThreshold = 6 << 20 // small so that the 12 MiB case goes multipart
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startGofakes3 serves an in-memory gofakes3 over plain HTTP with testBucket.
func startGofakes3(t *testing.T) string {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket(testBucket); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	return srv.URL
}

func adminClient(endpoint string) *awss3.Client {
	return awss3.New(awss3.Options{
		Region:                     "us-east-1",
		BaseEndpoint:               aws.String(endpoint),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(testAccess, testSecret, ""),
		Retryer:                    aws.NopRetryer{},
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
}

func s3Reader(endpoint string, ifNoneMatch, multipartIfNoneMatch bool) storetest.Reader {
	c := adminClient(endpoint)
	return storetest.Reader{
		IfNoneMatch:          ifNoneMatch,
		MultipartIfNoneMatch: multipartIfNoneMatch,
		Multipart:            testThreshold,
		Get: func(ctx context.Context, key string) (storetest.Got, error) {
			out, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key)})
			if err != nil {
				return storetest.Got{}, err
			}
			defer out.Body.Close()
			data, err := io.ReadAll(out.Body)
			return storetest.Got{Data: data, ContentType: aws.ToString(out.ContentType), ContentEncoding: aws.ToString(out.ContentEncoding)}, err
		},
	}
}

func newS3Store(t *testing.T, endpoint string, mod func(*s3sink.S3Config)) *s3sink.S3Store {
	t.Helper()
	cfg := s3sink.S3Config{
		Bucket: testBucket, Region: "us-east-1", Endpoint: endpoint, PathStyle: true,
		Credentials:        credentials.NewStaticCredentialsProvider(testAccess, testSecret, ""),
		MultipartThreshold: testThreshold, PartSize: s3sink.MinPartSize,
	}
	if mod != nil {
		mod(&cfg)
	}
	s, err := s3sink.NewS3Store(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestS3StoreGofakes3Acceptance(t *testing.T) {
	storetest.Acceptance(t, func(t *testing.T) (sink.Store, storetest.Reader) {
		url := startGofakes3(t)
		// gofakes3 ignores If-None-Match on CompleteMultipartUpload.
		return newS3Store(t, url, nil), s3Reader(url, true, false)
	})
}

// TestS3StorePutObjectOnlyAcceptance runs the suite through a proxy that
// enforces a policy granting only s3:PutObject: it proves S3Store needs
// nothing else.
func TestS3StorePutObjectOnlyAcceptance(t *testing.T) {
	var proxies []*s3policy.Proxy
	storetest.Acceptance(t, func(t *testing.T) (sink.Store, storetest.Reader) {
		url := startGofakes3(t)
		p, err := s3policy.New(url)
		if err != nil {
			t.Fatal(err)
		}
		proxies = append(proxies, p)
		ps := httptest.NewServer(p)
		t.Cleanup(ps.Close)
		t.Cleanup(func() {
			if d := p.Denied(); len(d) > 0 {
				t.Errorf("S3Store made calls a PutObject-only policy denies: %q", d)
			}
		})
		return newS3Store(t, ps.URL, nil), s3Reader(url, true, false)
	})
	var ops []string
	for _, p := range proxies {
		ops = append(ops, p.Allowed()...)
	}
	for _, op := range []string{"PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"} {
		if !slices.Contains(ops, op) {
			t.Errorf("the suite never exercised %s through the proxy (saw %q)", op, ops)
		}
	}
}

func findVersitygw() string {
	if p := os.Getenv("HITSHIP_VERSITYGW"); p != "" {
		return p
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// startVersitygw runs versitygw's posix backend on a random port, shared by
// the cases of one test.
func startVersitygw(t *testing.T) string {
	t.Helper()
	bin := findVersitygw()
	if bin == "" {
		t.Skip("versitygw not found (PATH, $HITSHIP_VERSITYGW, $(go env GOPATH)/bin); install it to run this test")
	}
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, testBucket), 0o755); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--access", testAccess, "--secret", testSecret, "--port", addr, "--quiet", "posix", root)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("starting versitygw: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-done:
			t.Fatalf("versitygw exited: %s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw did not listen on %s: %s", addr, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return "http://" + addr
}

func TestS3StoreVersitygwAcceptance(t *testing.T) {
	url := startVersitygw(t)
	storetest.Acceptance(t, func(t *testing.T) (sink.Store, storetest.Reader) {
		return newS3Store(t, url, nil), s3Reader(url, true, true)
	})
}

// TestS3StoreVersitygwPutObjectOnly puts the policy proxy in front of
// versitygw, which checks SigV4 signatures: the proxy keeps them valid and
// S3Store still needs nothing beyond s3:PutObject.
func TestS3StoreVersitygwPutObjectOnly(t *testing.T) {
	url := startVersitygw(t)
	storetest.Acceptance(t, func(t *testing.T) (sink.Store, storetest.Reader) {
		p, err := s3policy.New(url)
		if err != nil {
			t.Fatal(err)
		}
		ps := httptest.NewServer(p)
		t.Cleanup(ps.Close)
		t.Cleanup(func() {
			if d := p.Denied(); len(d) > 0 {
				t.Errorf("S3Store made calls a PutObject-only policy denies: %q", d)
			}
		})
		return newS3Store(t, ps.URL, nil), s3Reader(url, true, true)
	})
}

func TestNewS3StoreConfig(t *testing.T) {
	creds := credentials.NewStaticCredentialsProvider("a", "b", "")
	cases := []struct {
		name string
		cfg  s3sink.S3Config
		ok   bool
	}{
		{name: "minimal", cfg: s3sink.S3Config{Bucket: "b", Region: "eu-west-1", Credentials: creds}, ok: true},
		{name: "no bucket", cfg: s3sink.S3Config{Region: "eu-west-1", Credentials: creds}},
		{name: "no region", cfg: s3sink.S3Config{Bucket: "b", Credentials: creds}},
		{name: "no credentials", cfg: s3sink.S3Config{Bucket: "b", Region: "eu-west-1"}},
		{name: "tiny parts", cfg: s3sink.S3Config{Bucket: "b", Region: "eu-west-1", Credentials: creds, PartSize: 1 << 20}},
		{name: "negative threshold", cfg: s3sink.S3Config{Bucket: "b", Region: "eu-west-1", Credentials: creds, MultipartThreshold: -1}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s3sink.NewS3Store(tc.cfg)
			if (err == nil) != tc.ok {
				t.Fatalf("NewS3Store = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !sink.IsInvalid(err) {
				t.Errorf("error %v does not satisfy IsInvalid", err)
			}
		})
	}
}

// TestS3ErrorClassification answers a PutObject with the errors customers'
// buckets produce and checks the predicates.
func TestS3ErrorClassification(t *testing.T) {
	cases := []struct {
		name                                       string
		status                                     int
		code                                       string
		retryable, denied, noBucket, creds, region bool
		exists                                     bool
	}{
		{name: "access denied", status: 403, code: "AccessDenied", denied: true},
		{name: "no such bucket", status: 404, code: "NoSuchBucket", noBucket: true},
		{name: "unknown key id", status: 403, code: "InvalidAccessKeyId", creds: true},
		{name: "bad signature", status: 403, code: "SignatureDoesNotMatch", creds: true},
		{name: "wrong region", status: 301, code: "PermanentRedirect", region: true},
		{name: "wrong region header", status: 400, code: "AuthorizationHeaderMalformed", region: true},
		{name: "precondition failed", status: 412, code: "PreconditionFailed", exists: true},
		{name: "internal error", status: 500, code: "InternalError", retryable: true},
		{name: "slow down", status: 503, code: "SlowDown", retryable: true},
		{name: "bad gateway without body", status: 502, retryable: true},
		{name: "conditional conflict", status: 409, code: "ConditionalRequestConflict", retryable: true},
		{name: "bad request", status: 400, code: "InvalidArgument"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(tc.status)
				if tc.code != "" {
					fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>m</Message><RequestId>r</RequestId></Error>`, tc.code)
				}
			}))
			defer srv.Close()
			store := newS3Store(t, srv.URL, nil)
			err := store.Put(context.Background(), "k.json", sink.BytesBody("[\n\n]\n"), sink.PutOptions{IfNoneMatch: true})
			if err == nil {
				t.Fatal("Put succeeded")
			}
			got := []bool{sink.IsRetryable(err), sink.IsAccessDenied(err), sink.IsNoSuchBucket(err), sink.IsBadCredentials(err), sink.IsWrongRegion(err), sink.IsAlreadyExists(err)}
			want := []bool{tc.retryable, tc.denied, tc.noBucket, tc.creds, tc.region, tc.exists}
			if !slices.Equal(got, want) {
				t.Errorf("retryable,denied,noBucket,creds,region,exists = %v, want %v (err %v)", got, want, err)
			}
			var se *sink.StoreError
			if !errors.As(err, &se) || se.StatusCode != tc.status || (tc.code != "" && se.Code != tc.code) || se.Key != "k.json" {
				t.Errorf("StoreError = %+v", se)
			}
		})
	}
	t.Run("connection refused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		url := "http://" + l.Addr().String()
		l.Close()
		err = newS3Store(t, url, nil).Put(context.Background(), "k", sink.BytesBody("x"), sink.PutOptions{})
		if err == nil || !sink.IsRetryable(err) || sink.IsAccessDenied(err) {
			t.Errorf("Put to a closed port = %v; want a retryable error", err)
		}
	})
}

// TestS3MultipartAbort: a failed multipart upload is aborted only when
// AllowAbort says the policy grants it.
func TestS3MultipartAbort(t *testing.T) {
	cases := []struct {
		name       string
		allowAbort bool
		wantAbort  bool
	}{
		{name: "PutObject-only policy: never abort", allowAbort: false, wantAbort: false},
		{name: "abort granted", allowAbort: true, wantAbort: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			upstream := startGofakes3(t)
			var mu sync.Mutex
			var calls []string
			target, err := s3policy.New(upstream) // forwards everything allowed
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				q := r.URL.Query()
				mu.Lock()
				calls = append(calls, r.Method+" "+strings.Join(slices.Sorted(func(yield func(string) bool) {
					for k := range q {
						if !yield(k) {
							return
						}
					}
				}), "&"))
				mu.Unlock()
				if r.Method == http.MethodPut && q.Get("partNumber") == "2" {
					_, _ = io.Copy(io.Discard, r.Body)
					w.WriteHeader(http.StatusInternalServerError)
					fmt.Fprint(w, `<Error><Code>InternalError</Code><Message>boom</Message></Error>`)
					return
				}
				if r.Method == http.MethodDelete {
					w.WriteHeader(http.StatusNoContent)
					return
				}
				target.ServeHTTP(w, r)
			}))
			defer srv.Close()
			store := newS3Store(t, srv.URL, func(c *s3sink.S3Config) { c.AllowAbort = tc.allowAbort })
			err = store.Put(context.Background(), "big.jsonl", make(sink.BytesBody, 11<<20), sink.PutOptions{})
			if err == nil || !sink.IsRetryable(err) {
				t.Fatalf("Put = %v, want a retryable failure", err)
			}
			mu.Lock()
			defer mu.Unlock()
			aborted := slices.ContainsFunc(calls, func(c string) bool { return strings.HasPrefix(c, "DELETE") })
			if aborted != tc.wantAbort {
				t.Errorf("aborted = %v, want %v; calls %q", aborted, tc.wantAbort, calls)
			}
		})
	}
}

// TestS3PayloadSigning: over HTTPS every body goes with UNSIGNED-PAYLOAD and a
// CRC32 that matches the bytes sent (multipart: per part, with the upload
// created for CRC32 and the part checksums in the completion); over plain HTTP
// the payload stays SHA-256 signed. The bytes arrive unchanged either way.
func TestS3PayloadSigning(t *testing.T) {
	cases := []struct {
		name      string
		tls       bool
		size      int
		multipart bool
	}{
		{name: "https PutObject", tls: true, size: 1000},
		{name: "https multipart", tls: true, size: 11 << 20, multipart: true},
		{name: "http PutObject", tls: false, size: 1000},
		{name: "http multipart", tls: false, size: 11 << 20, multipart: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			type call struct {
				method, query, sha, crc, algo string
				body                          []byte
			}
			var mu sync.Mutex
			var calls []call
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				mu.Lock()
				calls = append(calls, call{method: r.Method, query: r.URL.RawQuery, sha: r.Header.Get("X-Amz-Content-Sha256"),
					crc: r.Header.Get("X-Amz-Checksum-Crc32"), algo: r.Header.Get("X-Amz-Checksum-Algorithm"), body: b})
				mu.Unlock()
				q := r.URL.Query()
				switch {
				case r.Method == http.MethodPost && q.Has("uploads"):
					fmt.Fprint(w, `<InitiateMultipartUploadResult><UploadId>u1</UploadId></InitiateMultipartUploadResult>`)
				case r.Method == http.MethodPost:
					fmt.Fprint(w, `<CompleteMultipartUploadResult><ETag>"x"</ETag></CompleteMultipartUploadResult>`)
				default:
					w.Header().Set("ETag", `"x"`)
				}
			})
			var srv *httptest.Server
			if tc.tls {
				srv = httptest.NewTLSServer(h)
			} else {
				srv = httptest.NewServer(h)
			}
			defer srv.Close()
			store := newS3Store(t, srv.URL, func(c *s3sink.S3Config) { c.HTTPClient = srv.Client() })
			body := make([]byte, tc.size)
			for i := range body {
				body[i] = byte(i * 7)
			}
			if err := store.Put(context.Background(), "k.jsonl", sink.BytesBody(body), sink.PutOptions{}); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			defer mu.Unlock()
			var got []byte
			parts := 0
			for _, c := range calls {
				if c.method != http.MethodPut {
					if tc.multipart && tc.tls && strings.Contains(c.query, "uploads") && c.algo != "CRC32" {
						t.Errorf("CreateMultipartUpload checksum algorithm %q, want CRC32", c.algo)
					}
					if c.method == http.MethodPost && strings.Contains(c.query, "uploadId") && tc.tls &&
						bytes.Count(c.body, []byte("<ChecksumCRC32>")) != parts {
						t.Errorf("CompleteMultipartUpload lists %d part checksums, want %d: %s", bytes.Count(c.body, []byte("<ChecksumCRC32>")), parts, c.body)
					}
					continue
				}
				parts++
				got = append(got, c.body...)
				sum := sha256.Sum256(c.body)
				crc := make([]byte, 4)
				binary.BigEndian.PutUint32(crc, crc32.ChecksumIEEE(c.body))
				wantCRC := base64.StdEncoding.EncodeToString(crc)
				if tc.tls {
					if c.sha != "UNSIGNED-PAYLOAD" || c.crc != wantCRC {
						t.Errorf("PUT %s: payload hash %q, crc32 %q; want UNSIGNED-PAYLOAD and %q", c.query, c.sha, c.crc, wantCRC)
					}
				} else if c.sha != hex.EncodeToString(sum[:]) || c.crc != "" {
					t.Errorf("PUT %s: payload hash %q, crc32 %q; want the body's SHA-256 and no checksum", c.query, c.sha, c.crc)
				}
			}
			if tc.multipart != (parts > 1) {
				t.Errorf("%d PUTs, multipart %v", parts, tc.multipart)
			}
			if !bytes.Equal(got, body) {
				t.Errorf("the server received %d bytes that differ from the %d put", len(got), len(body))
			}
		})
	}
}

// TestPutMetadata: user metadata reaches the object on the single PUT and the
// multipart path (the parking bucket keeps a retry entry's fields there).
func TestPutMetadata(t *testing.T) {
	url := startGofakes3(t)
	store := newS3Store(t, url, nil)
	c := adminClient(url)
	meta := map[string]string{"hitship-integration": "acme", "hitship-key": "hits%2Fx.json"}
	for _, size := range []int{100, testThreshold + 1} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			key := fmt.Sprintf("m%d.json", size)
			if err := store.Put(t.Context(), key, sink.BytesBody(bytes.Repeat([]byte("x"), size)), sink.PutOptions{Metadata: meta}); err != nil {
				t.Fatal(err)
			}
			out, err := c.HeadObject(t.Context(), &awss3.HeadObjectInput{Bucket: aws.String(testBucket), Key: aws.String(key)})
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range meta {
				if out.Metadata[k] != v {
					t.Errorf("metadata %s = %q; want %q (all: %v)", k, out.Metadata[k], v, out.Metadata)
				}
			}
		})
	}
}

// TestBlame: failures are classified by the side their cause lies on; only
// the customer's side counts toward auto-disable (DESIGN §5 Health).
func TestBlame(t *testing.T) {
	answer := func(status int, code string) error {
		t.Helper()
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(status)
			if code != "" {
				fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>m</Message></Error>`, code)
			}
		}))
		defer srv.Close()
		return newS3Store(t, srv.URL, nil).Put(context.Background(), "k.json", sink.BytesBody("[\n\n]\n"), sink.PutOptions{IfNoneMatch: true})
	}
	closed := func() error {
		t.Helper()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		url := "http://" + l.Addr().String()
		l.Close()
		return newS3Store(t, url, nil).Put(context.Background(), "k.json", sink.BytesBody("x"), sink.PutOptions{})
	}
	for _, tc := range []struct {
		name string
		err  error
		want sink.Side
	}{
		{"nil", nil, sink.SideNone},
		{"412 already exists", answer(412, "PreconditionFailed"), sink.SideNone},
		{"access denied", answer(403, "AccessDenied"), sink.SideCustomer},
		{"no such bucket", answer(404, "NoSuchBucket"), sink.SideCustomer},
		{"wrong region", answer(301, "PermanentRedirect"), sink.SideCustomer},
		{"unknown key", answer(403, "InvalidAccessKeyId"), sink.SideCustomer},
		{"wrong secret", answer(403, "SignatureDoesNotMatch"), sink.SideCustomer},
		{"role not assumable", &s3sink.CredentialError{Kind: s3sink.KindAssumeRoleDenied, Code: "AccessDenied"}, sink.SideCustomer},
		{"503 slow down", answer(503, "SlowDown"), sink.SideProvider},
		{"500 without body", answer(500, ""), sink.SideProvider},
		{"connection refused", closed(), sink.SideProvider},
		{"timeout", fmt.Errorf("put: %w", context.DeadlineExceeded), sink.SideProvider},
		{"STS unreachable", &s3sink.CredentialError{Kind: s3sink.KindSTSUnreachable}, sink.SideProvider},
		{"hitship's own identity", &s3sink.CredentialError{Kind: s3sink.KindBaseCredentials, Code: "ExpiredToken"}, sink.SideHitship},
		{"parked object unreadable", sink.OwnFailure(answer(503, "SlowDown")), sink.SideHitship},
		{"bad request hitship made", answer(400, "InvalidArgument"), sink.SideHitship},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := s3sink.Blame(tc.err); got != tc.want {
				t.Errorf("Blame(%v) = %q; want %q", tc.err, got, tc.want)
			}
			if s3sink.IsCustomerSide(tc.err) != (tc.want == sink.SideCustomer) {
				t.Errorf("IsCustomerSide disagrees with Blame")
			}
		})
	}
}
