package fakests_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"go.uber.org/goleak"

	"hitship/internal/testenv"
	"hitship/internal/testenv/fakests"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	roleA = "arn:aws:iam::000000000001:role/hitship-delivery"
	extA  = "hitship-aaaaaaaaaaaaaaaa"
)

func httpClient(t *testing.T) *http.Client {
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

func startSTS(t *testing.T, opts fakests.Options) *fakests.STS {
	t.Helper()
	f, err := fakests.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

func stsClient(t *testing.T, f *fakests.STS, keyID, secret, region string) *sts.Client {
	return sts.New(sts.Options{
		Region:       region,
		BaseEndpoint: aws.String(f.URL()),
		Credentials:  credentials.NewStaticCredentialsProvider(keyID, secret, ""),
		Retryer:      aws.NopRetryer{},
		HTTPClient:   httpClient(t),
	})
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestSTSAssumeRole(t *testing.T) {
	tests := []struct {
		name     string
		opts     fakests.Options
		keyID    string
		secret   string
		role     string
		extID    string
		duration int32
		wantCode string // "" for success
	}{
		{name: "trusted role and external id", role: roleA, extID: extA, wantCode: ""},
		{name: "wrong external id", role: roleA, extID: "hitship-bbbbbbbbbbbbbbbb", wantCode: "AccessDenied"},
		{name: "no external id", role: roleA, wantCode: "AccessDenied"},
		{name: "unknown role", role: "arn:aws:iam::000000000002:role/other", extID: extA, wantCode: "AccessDenied"},
		{name: "unknown base key", keyID: "AKIAUNKNOWN", role: roleA, extID: extA, wantCode: "InvalidClientTokenId"},
		{name: "wrong base secret", secret: "not-the-secret", role: roleA, extID: extA, wantCode: "SignatureDoesNotMatch"},
		{name: "duration below minimum", role: roleA, extID: extA, duration: 60, wantCode: "ValidationError"},
		{name: "role chaining caps at one hour", opts: fakests.Options{Chained: true}, role: roleA, extID: extA, duration: 7200, wantCode: "ValidationError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := startSTS(t, tt.opts)
			f.Trust(roleA, extA)
			keyID, secret := fakests.DefaultBaseKeyID, fakests.DefaultBaseSecret
			if tt.keyID != "" {
				keyID = tt.keyID
			}
			if tt.secret != "" {
				secret = tt.secret
			}
			in := &sts.AssumeRoleInput{RoleArn: aws.String(tt.role), RoleSessionName: aws.String("hitship-7")}
			if tt.extID != "" {
				in.ExternalId = aws.String(tt.extID)
			}
			if tt.duration != 0 {
				in.DurationSeconds = aws.Int32(tt.duration)
			}
			start := time.Now()
			out, err := stsClient(t, f, keyID, secret, "eu-west-1").AssumeRole(context.Background(), in)
			if got := apiCode(err); got != tt.wantCode {
				t.Fatalf("error code %q (err %v), want %q", got, err, tt.wantCode)
			}
			if tt.wantCode != "" {
				if f.Granted() != 0 {
					t.Errorf("granted %d credentials on a refused call", f.Granted())
				}
				return
			}
			c := out.Credentials
			if !strings.HasPrefix(aws.ToString(c.AccessKeyId), "ASIA") || aws.ToString(c.SecretAccessKey) == "" || aws.ToString(c.SessionToken) == "" {
				t.Fatalf("incomplete credentials %+v", c)
			}
			if life := c.Expiration.Sub(start); life < 59*time.Minute || life > 61*time.Minute {
				t.Errorf("lifetime %v, want about 1h", life)
			}
			reqs := f.Requests()
			if len(reqs) != 1 || reqs[0].Region != "eu-west-1" || reqs[0].SessionName != "hitship-7" || reqs[0].ExternalID != extA || !reqs[0].Granted {
				t.Errorf("requests %+v", reqs)
			}
		})
	}
}

// clock is a settable clock for the fakes.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestS3Proxy(t *testing.T) {
	const (
		bucket   = "customer-a"
		other    = "customer-b"
		staticID = "AKIASTATIC0001"
		staticSK = "static-secret-0001"
	)
	up, err := testenv.StartS3(testenv.S3Options{Buckets: []string{bucket, other}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = up.Close() })
	clk := &clock{t: time.Now()}
	f := startSTS(t, fakests.Options{Lifetime: time.Minute, Now: clk.Now})
	f.Trust(roleA, extA)
	p, err := fakests.StartS3(fakests.S3Options{Upstream: up.URL(), STS: f, Region: "eu-central-1", Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	p.AllowKey(bucket, staticID, staticSK)
	p.AllowRole(bucket, roleA)

	out, err := stsClient(t, f, fakests.DefaultBaseKeyID, fakests.DefaultBaseSecret, "eu-central-1").AssumeRole(context.Background(),
		&sts.AssumeRoleInput{RoleArn: aws.String(roleA), RoleSessionName: aws.String("hitship-1"), ExternalId: aws.String(extA)})
	if err != nil {
		t.Fatal(err)
	}
	tmp := out.Credentials

	tests := []struct {
		name          string
		keyID, secret string
		token         string
		region        string
		bucket        string
		advance       time.Duration
		wantCode      string
	}{
		{name: "static key", keyID: staticID, secret: staticSK},
		{name: "static key wrong secret", keyID: staticID, secret: "wrong", wantCode: "SignatureDoesNotMatch"},
		{name: "unknown key", keyID: "AKIANOBODY", secret: staticSK, wantCode: "InvalidAccessKeyId"},
		{name: "static key other bucket", keyID: staticID, secret: staticSK, bucket: other, wantCode: "AccessDenied"},
		{name: "wrong region", keyID: staticID, secret: staticSK, region: "us-west-2", wantCode: "AuthorizationHeaderMalformed"},
		{name: "temporary credentials", keyID: *tmp.AccessKeyId, secret: *tmp.SecretAccessKey, token: *tmp.SessionToken},
		{name: "temporary credentials without token", keyID: *tmp.AccessKeyId, secret: *tmp.SecretAccessKey, wantCode: "InvalidToken"},
		{name: "temporary credentials wrong secret", keyID: *tmp.AccessKeyId, secret: "x", token: *tmp.SessionToken, wantCode: "SignatureDoesNotMatch"},
		{name: "temporary credentials other bucket", keyID: *tmp.AccessKeyId, secret: *tmp.SecretAccessKey, token: *tmp.SessionToken, bucket: other, wantCode: "AccessDenied"},
		// Last: moves the clock past the expiry for good.
		{name: "temporary credentials expired", keyID: *tmp.AccessKeyId, secret: *tmp.SecretAccessKey, token: *tmp.SessionToken, advance: 2 * time.Minute, wantCode: "ExpiredToken"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk.Add(tt.advance)
			region, b := "eu-central-1", bucket
			if tt.region != "" {
				region = tt.region
			}
			if tt.bucket != "" {
				b = tt.bucket
			}
			c := s3.New(s3.Options{
				Region:       region,
				BaseEndpoint: aws.String(p.URL()),
				UsePathStyle: true,
				Credentials:  credentials.NewStaticCredentialsProvider(tt.keyID, tt.secret, tt.token),
				Retryer:      aws.NopRetryer{},
				HTTPClient:   httpClient(t),
			})
			key := "dir/" + strings.ReplaceAll(tt.name, " ", "_") + " +x.json"
			_, err := c.PutObject(context.Background(), &s3.PutObjectInput{
				Bucket: aws.String(b), Key: aws.String(key), Body: bytes.NewReader([]byte(`{"a":1}`)),
				ContentLength: aws.Int64(7),
			})
			if got := apiCode(err); got != tt.wantCode {
				t.Fatalf("code %q (err %v), want %q", got, err, tt.wantCode)
			}
			objs, lerr := up.Objects(context.Background(), b)
			if lerr != nil {
				t.Fatal(lerr)
			}
			_, stored := objs[key]
			if stored != (tt.wantCode == "") {
				t.Errorf("object stored = %v, want %v", stored, tt.wantCode == "")
			}
		})
	}
	c := p.Counts()
	if c.Accepted != 2 || c.Refused["ExpiredToken"] != 1 || c.Refused["SignatureDoesNotMatch"] != 2 {
		t.Errorf("counts %+v", c)
	}
}

func TestS3ProxyRefusesUnsigned(t *testing.T) {
	up, err := testenv.StartS3(testenv.S3Options{Buckets: []string{"b"}})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	p, err := fakests.StartS3(fakests.S3Options{Upstream: up.URL()})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.AllowKey("b", "AKIA1", "s")
	req, err := http.NewRequest(http.MethodPut, p.URL()+"/b/k", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	hc := httpClient(t)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("status %d, want 403", resp.StatusCode)
	}
	// A forged header with a valid key id but a made-up signature.
	req, _ = http.NewRequest(http.MethodPut, p.URL()+"/b/k", strings.NewReader("x"))
	req.Header.Set("X-Amz-Date", time.Now().UTC().Format("20060102T150405Z"))
	req.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIA1/"+time.Now().UTC().Format("20060102")+
		"/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=00")
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := p.Counts().Refused["SignatureDoesNotMatch"]; got != 1 || resp.StatusCode != http.StatusForbidden {
		t.Errorf("forged signature: status %d, refusals %v", resp.StatusCode, p.Counts().Refused)
	}
}
