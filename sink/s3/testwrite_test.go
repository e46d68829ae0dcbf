package s3_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"hitship/internal/testenv"
	"hitship/sink"
	s3sink "hitship/sink/s3"
)

// twSecret is the secret key of every test write: no Answer may contain it.
const twSecret = "tw-secret-9f8e7d6c5b4a39281706"

var twNow = time.Unix(1687241470, 0)

// twStore returns an S3Store on endpoint with static credentials.
func twStore(t *testing.T, endpoint, bucket string, creds aws.CredentialsProvider) *s3sink.S3Store {
	t.Helper()
	if creds == nil {
		creds = credentials.NewStaticCredentialsProvider("AKIATESTWRITE", twSecret, "")
	}
	s, err := s3sink.NewS3Store(s3sink.S3Config{
		Bucket: bucket, Region: "us-east-1", Endpoint: endpoint, PathStyle: true, Credentials: creds,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func twGunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func ExampleTestKey() {
	fmt.Println(s3sink.TestKey(s3sink.TestParams{Prefix: "hits/", Format: sink.FormatJSON, Now: time.Unix(1687241470, 0)}))
	fmt.Println(s3sink.TestKey(s3sink.TestParams{Format: sink.FormatNDJSON, Compression: sink.CompressionGzip, Now: time.Unix(1687241470, 0)}))
	fmt.Println(s3sink.TestKey(s3sink.TestParams{Prefix: "ext/wallarm/region=us-east-1/accountId=123456789012/", Format: sink.FormatParquet,
		Now: time.Unix(1687241470, 0), SecurityLake: true}))
	// Output:
	// hits/wallarm_hits_1687241470_test.json
	// wallarm_hits_1687241470_test.jsonl.gz
	// ext/wallarm/region=us-east-1/accountId=123456789012/eventDay=20230620/wallarm_hits_1687241470_test.parquet
}

func TestTestWriteGofakes3(t *testing.T) {
	s3 := testenv.MustS3(t, testenv.S3Options{Buckets: []string{"cust"}})
	cases := []struct {
		name    string
		p       s3sink.TestParams
		wantKey string
		file    string
	}{
		{name: "json", p: s3sink.TestParams{Prefix: "wallarm/", Format: sink.FormatJSON, Now: twNow},
			wantKey: "wallarm/wallarm_hits_1687241470_test.json", file: "../testdata/sample_hits.json"},
		{name: "ndjson gzip", p: s3sink.TestParams{Prefix: "a/b/", Format: sink.FormatNDJSON, Compression: sink.CompressionGzip, Now: twNow.Add(time.Second)},
			wantKey: "a/b/wallarm_hits_1687241471_test.jsonl.gz", file: "../testdata/sample_hits.jsonl"},
	}
	store := twStore(t, s3.URL(), "cust", nil)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			key, err := s3sink.TestWrite(context.Background(), store, tc.p)
			if err != nil {
				t.Fatalf("TestWrite: %v (%+v)", err, s3sink.Explain(err))
			}
			if key != tc.wantKey {
				t.Errorf("key = %q, want %q", key, tc.wantKey)
			}
			if a := s3sink.Explain(err); !a.OK || a.Problem != "" {
				t.Errorf("Explain(nil) = %+v, want OK", a)
			}
			objs, err := s3.Objects(context.Background(), "cust")
			if err != nil {
				t.Fatal(err)
			}
			got, ok := objs[tc.wantKey]
			if !ok {
				t.Fatalf("no object %q in %v", tc.wantKey, len(objs))
			}
			if tc.p.Compression == sink.CompressionGzip {
				got = twGunzip(t, got)
			}
			want, _ := os.ReadFile(tc.file)
			if !bytes.Equal(got, want) {
				t.Errorf("object = %q, want %q", got, want)
			}
		})
	}
}

func TestTestWriteInvalid(t *testing.T) {
	mem, err := sink.NewMemStore()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name  string
		store sink.Store
		p     s3sink.TestParams
	}{
		{name: "nil store", p: s3sink.TestParams{Now: twNow}},
		{name: "zero now", store: mem, p: s3sink.TestParams{}},
		{name: "bad prefix", store: mem, p: s3sink.TestParams{Prefix: "../x/", Now: twNow}},
		{name: "bad format", store: mem, p: s3sink.TestParams{Format: 7, Now: twNow}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := s3sink.TestWrite(context.Background(), tc.store, tc.p); !sink.IsInvalid(err) {
				t.Errorf("err = %v, want IsInvalid", err)
			}
		})
	}
	if n := mem.Puts(); n != 0 {
		t.Errorf("invalid params reached the store %d times", n)
	}
}

// TestTestWriteAlreadyExists: a second test in the same second against a
// conditional store is still a success.
func TestTestWriteAlreadyExists(t *testing.T) {
	mem, err := sink.NewMemStore()
	if err != nil {
		t.Fatal(err)
	}
	cond := condStore{mem}
	p := s3sink.TestParams{Format: sink.FormatJSON, Now: twNow}
	for i := range 2 {
		if _, err := s3sink.TestWrite(context.Background(), cond, p); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
	}
	if mem.Puts() != 2 {
		t.Errorf("puts = %d, want 2", mem.Puts())
	}
}

type condStore struct{ *sink.MemStore }

func (c condStore) Put(ctx context.Context, key string, obj sink.Body, opts sink.PutOptions) error {
	opts.IfNoneMatch = true
	return c.MemStore.Put(ctx, key, obj, opts)
}

// TestExplainFailBucket: gofakes3 with a failing bucket.
func TestExplainFailBucket(t *testing.T) {
	s3 := testenv.MustS3(t, testenv.S3Options{Buckets: []string{"cust"}})
	cases := []struct {
		name    string
		status  int
		problem string
		inFix   string
	}{
		{name: "403", status: 403, problem: s3sink.ProblemAccessDenied, inFix: `"Resource": "arn:aws:s3:::cust/logs/wallarm/*"`},
		{name: "404", status: 404, problem: s3sink.ProblemNoSuchBucket},
		{name: "301", status: 301, problem: s3sink.ProblemWrongRegion},
		{name: "500", status: 500, problem: s3sink.ProblemUnknown},
	}
	store := twStore(t, s3.URL(), "cust", nil)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s3.FailBucket("cust", tc.status)
			defer s3.HealBucket("cust")
			_, err := s3sink.TestWrite(context.Background(), store, s3sink.TestParams{Prefix: "logs/wallarm/", Format: sink.FormatJSON, Now: twNow})
			if err == nil {
				t.Fatal("TestWrite succeeded against a failing bucket")
			}
			a := s3sink.Explain(err)
			checkAnswer(t, a, tc.problem)
			if !strings.Contains(a.Fix, tc.inFix) {
				t.Errorf("Fix = %q, want it to contain %q", a.Fix, tc.inFix)
			}
		})
	}
}

// TestExplainS3Errors answers each S3 error XML from an httptest server.
func TestExplainS3Errors(t *testing.T) {
	cases := []struct {
		name      string
		status    int
		code      string
		header    string // x-amz-bucket-region
		problem   string
		inMessage string
		inFix     string
	}{
		{name: "access denied", status: 403, code: "AccessDenied", problem: s3sink.ProblemAccessDenied,
			inMessage: "cust", inFix: `"Action": "s3:PutObject"`},
		{name: "no such bucket", status: 404, code: "NoSuchBucket", problem: s3sink.ProblemNoSuchBucket, inMessage: "cust does not exist"},
		{name: "redirect with region", status: 301, code: "PermanentRedirect", header: "eu-west-1",
			problem: s3sink.ProblemWrongRegion, inMessage: "eu-west-1", inFix: "eu-west-1"},
		{name: "region mismatch in signature", status: 400, code: "AuthorizationHeaderMalformed", header: "ap-south-1",
			problem: s3sink.ProblemWrongRegion, inMessage: "ap-south-1"},
		{name: "garbage region header ignored", status: 301, code: "PermanentRedirect", header: "<script>",
			problem: s3sink.ProblemWrongRegion, inMessage: "another region"},
		{name: "unknown key id", status: 403, code: "InvalidAccessKeyId", problem: s3sink.ProblemBadCredentials, inMessage: "InvalidAccessKeyId"},
		{name: "expired token", status: 400, code: "ExpiredToken", problem: s3sink.ProblemBadCredentials, inMessage: "expired"},
		{name: "signature mismatch", status: 403, code: "SignatureDoesNotMatch", problem: s3sink.ProblemSignatureMismatch, inMessage: "secret access key"},
		{name: "internal error", status: 500, code: "InternalError", problem: s3sink.ProblemUnknown, inMessage: "HTTP 500 InternalError"},
		{name: "already exists is fine", status: 412, code: "PreconditionFailed", problem: ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.Header().Set("Content-Type", "application/xml")
				if tc.header != "" {
					w.Header().Set("x-amz-bucket-region", tc.header)
				}
				w.WriteHeader(tc.status)
				// Real S3 echoes the access key id in some errors, never the secret.
				fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>msg</Message><AWSAccessKeyId>AKIATESTWRITE</AWSAccessKeyId><RequestId>r</RequestId></Error>`, tc.code)
			}))
			defer srv.Close()
			_, err := s3sink.TestWrite(context.Background(), twStore(t, srv.URL, "cust", nil),
				s3sink.TestParams{Prefix: "p/", Format: sink.FormatNDJSON, Now: twNow})
			a := s3sink.Explain(err)
			checkAnswer(t, a, tc.problem)
			if tc.problem == "" {
				if err != nil {
					t.Errorf("TestWrite = %v, want nil for 412", err)
				}
				return
			}
			if !strings.Contains(a.Message, tc.inMessage) {
				t.Errorf("Message = %q, want it to contain %q", a.Message, tc.inMessage)
			}
			if !strings.Contains(a.Fix, tc.inFix) {
				t.Errorf("Fix = %q, want it to contain %q", a.Fix, tc.inFix)
			}
			if strings.Contains(a.Message+a.Fix, "<script>") {
				t.Errorf("answer echoes an unchecked header: %+v", a)
			}
		})
	}
}

func TestExplainUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + l.Addr().String()
	l.Close() // nobody listens there any more
	_, err = s3sink.TestWrite(context.Background(), twStore(t, url, "cust", nil), s3sink.TestParams{Format: sink.FormatJSON, Now: twNow})
	if !s3sink.IsUnreachable(err) {
		t.Errorf("IsUnreachable(%v) = false", err)
	}
	checkAnswer(t, s3sink.Explain(err), s3sink.ProblemEndpointUnreachable)

	t.Run("timeout", func(t *testing.T) {
		block := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
		defer srv.Close()
		defer close(block)
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		defer cancel()
		_, err := s3sink.TestWrite(ctx, twStore(t, srv.URL, "cust", nil), s3sink.TestParams{Format: sink.FormatJSON, Now: twNow})
		checkAnswer(t, s3sink.Explain(err), s3sink.ProblemEndpointUnreachable)
	})
	t.Run("predicates", func(t *testing.T) {
		cases := []struct {
			name string
			err  error
			want bool
		}{
			{name: "nil", err: nil, want: false},
			{name: "canceled", err: context.Canceled, want: false},
			{name: "deadline", err: context.DeadlineExceeded, want: true},
			{name: "dns", err: &net.DNSError{Err: "no such host", Name: "x.invalid", IsNotFound: true}, want: true},
			{name: "answered 503", err: &sink.StoreError{Op: "PutObject", StatusCode: 503, Code: "SlowDown", Err: io.EOF}, want: false},
			{name: "plain", err: io.EOF, want: false},
		}
		for _, tc := range cases {
			if got := s3sink.IsUnreachable(tc.err); got != tc.want {
				t.Errorf("%s: IsUnreachable = %v, want %v", tc.name, got, tc.want)
			}
		}
	})
}

// TestExplainAssumeRoleDenied: the integration's role cannot be assumed
// (STS AccessDenied, e.g. a wrong external ID). The S3 call fails before it
// reaches the bucket; the answer must not say "S3 access denied". Both with
// hitship's AssumeRoleProvider and with a plain stscreds provider.
func TestExplainAssumeRoleDenied(t *testing.T) {
	stsSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		if r.Form.Get("Action") != "AssumeRole" || r.Form.Get("ExternalId") == "" {
			t.Errorf("STS got %v", r.Form)
		}
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: arn:aws:iam::111111111111:user/hitship is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::222222222222:role/b</Message></Error><RequestId>x</RequestId></ErrorResponse>`)
	}))
	defer stsSrv.Close()
	var s3Calls atomic.Int32
	s3Srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s3Calls.Add(1) }))
	defer s3Srv.Close()
	base := credentials.NewStaticCredentialsProvider("AKIABASE", twSecret, "")
	const role = "arn:aws:iam::222222222222:role/b"

	hitshipProvider, err := s3sink.NewAssumeRoleProvider(s3sink.AssumeRoleConfig{
		Base: base, RoleARN: role, ClientID: 7, ExternalIDSecret: []byte("0123456789abcdef0123456789abcdef"),
		Region: "us-east-1", STSEndpoint: stsSrv.URL, MaxAttempts: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	stsClient := sts.New(sts.Options{Region: "us-east-1", BaseEndpoint: aws.String(stsSrv.URL), Credentials: base, Retryer: aws.NopRetryer{}})
	cases := []struct {
		name  string
		creds aws.CredentialsProvider
		want  []string
	}{
		{name: "hitship provider", creds: hitshipProvider, want: []string{"sts:ExternalId", role, hitshipProvider.ExternalID(), "likely cause"}},
		{name: "stscreds provider", creds: stscreds.NewAssumeRoleProvider(stsClient, role, func(o *stscreds.AssumeRoleOptions) {
			o.ExternalID = aws.String("hitship-client-a")
		}), want: []string{"sts:ExternalId", "external ID", "likely cause"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s3sink.TestWrite(context.Background(), twStore(t, s3Srv.URL, "cust", tc.creds), s3sink.TestParams{Format: sink.FormatJSON, Now: twNow})
			if err == nil {
				t.Fatal("TestWrite succeeded")
			}
			if n := s3Calls.Load(); n != 0 {
				t.Errorf("S3 was called %d times without credentials", n)
			}
			a := s3sink.Explain(err)
			checkAnswer(t, a, s3sink.ProblemAssumeRoleDenied)
			for _, want := range tc.want {
				if !strings.Contains(a.Fix+a.Message, want) {
					t.Errorf("answer %+v does not mention %q", a, want)
				}
			}
		})
	}
}

// checkAnswer asserts the problem code, that a failure has plain words and
// that no answer carries the secret key.
func checkAnswer(t *testing.T, a s3sink.Answer, problem string) {
	t.Helper()
	if a.Problem != problem || a.OK != (problem == "") {
		t.Errorf("answer = %+v, want problem %q", a, problem)
	}
	if a.Message == "" || (problem != "" && a.Fix == "") {
		t.Errorf("answer %+v lacks message or fix", a)
	}
	if s := fmt.Sprintf("%+v %#v", a, a); strings.Contains(s, twSecret) {
		t.Errorf("answer contains the secret: %s", s)
	}
}
