package s3_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"hitship/internal/testenv"
	"hitship/internal/testenv/fakests"
	"hitship/sink"
	s3sink "hitship/sink/s3"
)

const (
	credRegion = "eu-west-3"
	clientA    = int64(1001)
	clientB    = int64(2002)
	roleOfA    = "arn:aws:iam::000000001001:role/hitship-writer"
	roleOfB    = "arn:aws:iam::000000002002:role/hitship-writer"
	bucketOfA  = "bucket-of-a"
	bucketOfB  = "bucket-of-b"
)

var credSecret = []byte("external-id-server-secret-for-tests")

// credEnv is a fake STS, an S3 stand-in and the authenticating proxy in
// front of it, where bucket X accepts only the role (or key) of its owner.
type credEnv struct {
	sts      *fakests.STS
	upstream *testenv.S3
	s3       *fakests.S3
	hc       *http.Client
}

func newCredEnv(t *testing.T, opts fakests.Options) *credEnv {
	t.Helper()
	up, err := testenv.StartS3(testenv.S3Options{Buckets: []string{bucketOfA, bucketOfB}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = up.Close() })
	f, err := fakests.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	p, err := fakests.StartS3(fakests.S3Options{Upstream: up.URL(), STS: f, Region: credRegion})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	// Each customer's role trusts hitship with the external ID of its own
	// client, as the console tells it to; each bucket allows its owner's role.
	f.Trust(roleOfA, s3sink.ExternalID(credSecret, clientA))
	f.Trust(roleOfB, s3sink.ExternalID(credSecret, clientB))
	p.AllowRole(bucketOfA, roleOfA)
	p.AllowRole(bucketOfB, roleOfB)
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	return &credEnv{sts: f, upstream: up, s3: p, hc: &http.Client{Transport: tr}}
}

func (e *credEnv) base() aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(fakests.DefaultBaseKeyID, fakests.DefaultBaseSecret, "")
}

func (e *credEnv) assumeRole(t *testing.T, mod func(*s3sink.AssumeRoleConfig)) *s3sink.AssumeRoleProvider {
	t.Helper()
	cfg := s3sink.AssumeRoleConfig{
		Base:             e.base(),
		RoleARN:          roleOfA,
		ClientID:         clientA,
		ExternalIDSecret: credSecret,
		Region:           credRegion,
		STSEndpoint:      e.sts.URL(),
		TrustedPrincipal: e.sts.Principal(),
		HTTPClient:       e.hc,
		MaxAttempts:      1,
	}
	if mod != nil {
		mod(&cfg)
	}
	p, err := s3sink.NewAssumeRoleProvider(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func (e *credEnv) store(t *testing.T, bucket string, creds aws.CredentialsProvider) *s3sink.S3Store {
	t.Helper()
	s, err := s3sink.NewS3Store(s3sink.S3Config{
		Bucket: bucket, Region: credRegion, Endpoint: e.s3.URL(), PathStyle: true,
		Credentials: creds, HTTPClient: e.hc,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (e *credEnv) object(t *testing.T, bucket, key string) ([]byte, bool) {
	t.Helper()
	objs, err := e.upstream.Objects(context.Background(), bucket)
	if err != nil {
		t.Fatal(err)
	}
	b, ok := objs[key]
	return b, ok
}

func TestAssumeRoleConfusedDeputy(t *testing.T) {
	e := newCredEnv(t, fakests.Options{})
	ctx := context.Background()
	body := sink.BytesBody(`{"time":"1687241470","client_id":1001}` + "\n")
	tests := []struct {
		name    string
		role    string
		bucket  string
		wantErr bool
	}{
		// Client A's integration pointed at client B's role and bucket: the
		// external ID derived for A is not the one B's role trusts.
		{name: "client A with client B's role", role: roleOfB, bucket: bucketOfB, wantErr: true},
		{name: "client A with its own role", role: roleOfA, bucket: bucketOfA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := e.assumeRole(t, func(c *s3sink.AssumeRoleConfig) { c.RoleARN = tt.role })
			if p.ExternalID() != s3sink.ExternalID(credSecret, clientA) || p.SessionName() != "hitship-1001" {
				t.Fatalf("external ID %q, session %q", p.ExternalID(), p.SessionName())
			}
			key := "hits/" + strings.ReplaceAll(tt.name, " ", "_") + ".jsonl"
			err := e.store(t, tt.bucket, p).Put(ctx, key, body, sink.PutOptions{ContentType: "application/x-ndjson"})
			_, stored := e.object(t, tt.bucket, key)
			if !tt.wantErr {
				if err != nil {
					t.Fatalf("Put: %v", err)
				}
				got, _ := e.object(t, tt.bucket, key)
				if string(got) != string(body) {
					t.Errorf("object %q, want %q", got, body)
				}
				return
			}
			if err == nil || stored {
				t.Fatalf("Put with another client's role succeeded (stored=%v)", stored)
			}
			if !s3sink.IsAssumeRoleDenied(err) || !s3sink.IsExternalIDLikelyCause(err) {
				t.Fatalf("error %v does not satisfy IsAssumeRoleDenied", err)
			}
			if sink.IsAccessDenied(err) || sink.IsBadCredentials(err) || sink.IsRetryable(err) {
				t.Errorf("an STS refusal is classified as a bucket error: %v", err)
			}
			ce, ok := s3sink.ExplainCredentials(err)
			if !ok || ce.Kind != s3sink.KindAssumeRoleDenied || ce.Code != "AccessDenied" {
				t.Fatalf("ExplainCredentials = %+v, %v", ce, ok)
			}
			for _, want := range []string{"sts:ExternalId = " + p.ExternalID(), e.sts.Principal(), roleOfB} {
				if !strings.Contains(ce.Hint+ce.Msg, want) {
					t.Errorf("explanation %q / %q does not name %q", ce.Msg, ce.Hint, want)
				}
			}
		})
	}
	// Every AssumeRole went to the integration's region with A's external ID.
	for _, r := range e.sts.Requests() {
		if r.Region != credRegion || r.ExternalID != s3sink.ExternalID(credSecret, clientA) {
			t.Errorf("STS request %+v", r)
		}
	}
	if got := e.s3.Counts().Accepted; got != 1 {
		t.Errorf("S3 accepted %d requests, want 1", got)
	}
}

func TestAssumeRoleRefresh(t *testing.T) {
	if testing.Short() {
		t.Skip("takes 10 s")
	}
	const lifetime = 3 * time.Second
	e := newCredEnv(t, fakests.Options{Lifetime: lifetime})
	// Renew 1.0-1.5 s before expiry.
	p := e.assumeRole(t, func(c *s3sink.AssumeRoleConfig) {
		c.ExpiryWindow = 1500 * time.Millisecond
		c.ExpiryJitter = 1.0 / 3
	})
	store := e.store(t, bucketOfA, p)
	ctx := context.Background()
	const uploads, spacing = 20, 450 * time.Millisecond
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	start := time.Now()
	for i := range uploads {
		// One every 450 ms (~9 s in all), each in its own goroutine: some
		// request always falls in the last 450 ms of a credential's life,
		// where it would be signed with dying credentials without early
		// renewal.
		if i > 0 {
			time.Sleep(spacing)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := store.Put(ctx, fmt.Sprintf("hits/%02d.jsonl", i), sink.BytesBody(fmt.Sprintf("{\"n\":%d}\n", i)), sink.PutOptions{})
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if len(errs) != 0 {
		t.Fatalf("%d of %d uploads failed, first: %v", len(errs), uploads, errs[0])
	}
	objs, err := e.upstream.Objects(ctx, bucketOfA)
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != uploads {
		t.Errorf("%d objects stored, want %d", len(objs), uploads)
	}
	// Credentials live 3 s and serve 1.5-2 s: over ~9 s that is 4 to 7
	// AssumeRole calls; 20 would mean no caching at all.
	granted := e.sts.Granted()
	minCalls := int(elapsed/lifetime) + 1
	if granted < minCalls || granted >= uploads/2 {
		t.Errorf("STS issued credentials %d times in %v, want between %d and %d", granted, elapsed, minCalls, uploads/2-1)
	}
	c := e.s3.Counts()
	if c.Accepted != uploads || len(c.Refused) != 0 {
		t.Errorf("S3 counts %+v: an expired credential reached S3", c)
	}
	// Renewed at least 1 s before expiry: no request used credentials in
	// their last 450 ms (without renewal one would, see spacing); the margin
	// absorbs request latency on a loaded machine.
	if c.MinRemaining < spacing {
		t.Errorf("a request was signed with credentials %v from expiry; want renewal before the window", c.MinRemaining)
	}
}

func TestStaticKeysWrongSecret(t *testing.T) {
	e := newCredEnv(t, fakests.Options{})
	const keyID, secret = "AKIACUSTOMERKEY00001", "the-Real-Secret/Key+0123456789abcdefghij"
	e.s3.AllowKey(bucketOfA, keyID, secret)
	tests := []struct {
		name     string
		keyID    string
		secret   string
		wantCode string
	}{
		{name: "right key", keyID: keyID, secret: secret},
		{name: "wrong secret", keyID: keyID, secret: "the-Wrong-Secret/Key+0123456789abcdefghi", wantCode: "SignatureDoesNotMatch"},
		{name: "unknown key id", keyID: "AKIANOSUCHKEY0000001", secret: secret, wantCode: "InvalidAccessKeyId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := s3sink.NewStaticProvider(tt.keyID, tt.secret)
			if err != nil {
				t.Fatal(err)
			}
			key := "static/" + strings.ReplaceAll(tt.name, " ", "_") + ".json"
			err = e.store(t, bucketOfA, p).Put(context.Background(), key, sink.BytesBody("[\n{}\n]\n"), sink.PutOptions{})
			_, stored := e.object(t, bucketOfA, key)
			if tt.wantCode == "" {
				if err != nil || !stored {
					t.Fatalf("Put: %v (stored %v)", err, stored)
				}
				return
			}
			if err == nil || stored {
				t.Fatalf("Put succeeded with %s", tt.name)
			}
			if !sink.IsBadCredentials(err) || sink.IsAccessDenied(err) || s3sink.IsAssumeRoleDenied(err) {
				t.Fatalf("error %v: IsBadCredentials %v, IsAccessDenied %v", err, sink.IsBadCredentials(err), sink.IsAccessDenied(err))
			}
			ce, ok := s3sink.ExplainCredentials(err)
			if !ok || ce.Kind != s3sink.KindBadCredentials || ce.Code != tt.wantCode || ce.Msg == "" || ce.Hint == "" {
				t.Fatalf("ExplainCredentials = %+v, %v", ce, ok)
			}
			assertNoSecret(t, tt.secret, err, ce, p)
		})
	}
}

// assertNoSecret formats every value with the usual verbs and fails if the
// secret shows.
func assertNoSecret(t *testing.T, secret string, vals ...any) {
	t.Helper()
	for _, v := range vals {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
			if s := fmt.Sprintf(verb, v); strings.Contains(s, secret) {
				t.Errorf("%s of %T reveals the secret: %s", verb, v, s)
			}
		}
	}
}

func TestStaticProviderNeverShowsSecret(t *testing.T) {
	const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	p, err := s3sink.NewStaticProvider("AKIAIOSFODNN7EXAMPLE", secret)
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.Retrieve(context.Background())
	if err != nil || c.AccessKeyID != "AKIAIOSFODNN7EXAMPLE" || c.SecretAccessKey != secret || c.CanExpire {
		t.Fatalf("Retrieve = %+v, %v", c.AccessKeyID, err)
	}
	if !strings.Contains(fmt.Sprint(p), "AKIAIOSFODNN7EXAMPLE") {
		t.Errorf("%v should name the key id: %s", p, fmt.Sprint(p))
	}
	assertNoSecret(t, secret, p, *p, []any{p}, struct{ P *s3sink.StaticProvider }{p}, struct{ p s3sink.StaticProvider }{*p})

	tests := []struct {
		name, keyID, secret string
	}{
		{name: "empty key id", keyID: "", secret: secret},
		{name: "empty secret", keyID: "AKIA1", secret: ""},
		{name: "secret with trailing newline", keyID: "AKIA1", secret: secret + "\n"},
		{name: "key id with space", keyID: "AKIA 1", secret: secret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := s3sink.NewStaticProvider(tt.keyID, tt.secret)
			if err == nil || p != nil || !sink.IsInvalid(err) {
				t.Fatalf("NewStaticProvider = %v, %v; want an invalid error", p, err)
			}
			assertNoSecret(t, secret, err)
		})
	}
}

func TestAssumeRoleFailures(t *testing.T) {
	e := newCredEnv(t, fakests.Options{Chained: true})
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedURL := "http://" + l.Addr().String()
	l.Close()
	tests := []struct {
		name      string
		mod       func(*s3sink.AssumeRoleConfig)
		wantKind  s3sink.CredentialKind
		wantInErr string
	}{
		{
			name: "hitship's own key is wrong",
			mod: func(c *s3sink.AssumeRoleConfig) {
				c.Base = credentials.NewStaticCredentialsProvider(fakests.DefaultBaseKeyID, "bad", "")
			},
			wantKind:  s3sink.KindBaseCredentials,
			wantInErr: "SignatureDoesNotMatch",
		},
		{
			name: "hitship has no identity",
			mod: func(c *s3sink.AssumeRoleConfig) {
				c.Base = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
					return aws.Credentials{}, errors.New("no EC2 IMDS role found")
				})
			},
			wantKind:  s3sink.KindBaseCredentials,
			wantInErr: "no EC2 IMDS role found",
		},
		{
			name:      "session longer than role chaining allows",
			mod:       func(c *s3sink.AssumeRoleConfig) { c.Duration = 2 * time.Hour },
			wantKind:  s3sink.KindInvalidRole,
			wantInErr: "role chaining",
		},
		{
			name:      "STS unreachable",
			mod:       func(c *s3sink.AssumeRoleConfig) { c.STSEndpoint = closedURL },
			wantKind:  s3sink.KindSTSUnreachable,
			wantInErr: "no answer from STS",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := e.assumeRole(t, tt.mod)
			_, err := p.Retrieve(context.Background())
			ce, ok := s3sink.AsCredentialError(err)
			if !ok || ce.Kind != tt.wantKind || !strings.Contains(err.Error(), tt.wantInErr) || ce.Hint == "" {
				t.Fatalf("Retrieve error %v (kind %v), want kind %s mentioning %q", err, ce, tt.wantKind, tt.wantInErr)
			}
			if s3sink.IsAssumeRoleDenied(err) {
				t.Errorf("%v is not an AssumeRole denial", err)
			}
			// Through the store: the same explanation, and no upload.
			perr := e.store(t, bucketOfA, p).Put(context.Background(), "k", sink.BytesBody("x"), sink.PutOptions{})
			if got, ok := s3sink.ExplainCredentials(perr); !ok || got.Kind != tt.wantKind {
				t.Errorf("Put error %v explained as %+v", perr, got)
			}
			if tt.wantKind == s3sink.KindSTSUnreachable && !sink.IsRetryable(perr) {
				t.Errorf("unreachable STS should be retryable: %v", perr)
			}
		})
	}
	if c := e.s3.Counts(); c.Accepted != 0 {
		t.Errorf("S3 accepted %d requests without credentials", c.Accepted)
	}
}

// roundTripFunc records requests and fails them, so no network is used.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestAssumeRoleUsesRegionalEndpoint(t *testing.T) {
	for _, region := range []string{"eu-west-3", "us-east-1", "ap-southeast-2"} {
		t.Run(region, func(t *testing.T) {
			var host string
			hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
				host = r.URL.Host
				return nil, errors.New("offline test")
			})}
			p, err := s3sink.NewAssumeRoleProvider(s3sink.AssumeRoleConfig{
				Base:             credentials.NewStaticCredentialsProvider("AKIA1", "s", ""),
				RoleARN:          roleOfA,
				ClientID:         clientA,
				ExternalIDSecret: credSecret,
				Region:           region,
				HTTPClient:       hc,
				MaxAttempts:      1,
			})
			if err != nil {
				t.Fatal(err)
			}
			_, err = p.Retrieve(context.Background())
			if want := "sts." + region + ".amazonaws.com"; host != want {
				t.Errorf("STS host %q, want the regional endpoint %q", host, want)
			}
			if ce, ok := s3sink.AsCredentialError(err); !ok || ce.Kind != s3sink.KindSTSUnreachable {
				t.Errorf("error %v", err)
			}
		})
	}
}

func TestNewAssumeRoleProviderInvalid(t *testing.T) {
	base := credentials.NewStaticCredentialsProvider("AKIA1", "s", "")
	valid := func() s3sink.AssumeRoleConfig {
		return s3sink.AssumeRoleConfig{Base: base, RoleARN: roleOfA, ClientID: 1, ExternalIDSecret: credSecret, Region: "eu-west-1"}
	}
	tests := []struct {
		name string
		mod  func(*s3sink.AssumeRoleConfig)
	}{
		{name: "no base credentials", mod: func(c *s3sink.AssumeRoleConfig) { c.Base = nil }},
		{name: "no region", mod: func(c *s3sink.AssumeRoleConfig) { c.Region = "" }},
		{name: "short secret", mod: func(c *s3sink.AssumeRoleConfig) { c.ExternalIDSecret = []byte("short") }},
		{name: "not a role ARN", mod: func(c *s3sink.AssumeRoleConfig) { c.RoleARN = "arn:aws:iam::000000001001:user/bob" }},
		{name: "bad account", mod: func(c *s3sink.AssumeRoleConfig) { c.RoleARN = "arn:aws:iam::1001:role/x" }},
		{name: "role without name", mod: func(c *s3sink.AssumeRoleConfig) { c.RoleARN = "arn:aws:iam::000000001001:role/" }},
		{name: "role name with a newline", mod: func(c *s3sink.AssumeRoleConfig) { c.RoleARN = "arn:aws:iam::000000001001:role/a\nb" }},
		{name: "duration too short", mod: func(c *s3sink.AssumeRoleConfig) { c.Duration = time.Minute }},
		{name: "duration too long", mod: func(c *s3sink.AssumeRoleConfig) { c.Duration = 13 * time.Hour }},
		{name: "window not below duration", mod: func(c *s3sink.AssumeRoleConfig) { c.ExpiryWindow = time.Hour }},
		{name: "jitter above one", mod: func(c *s3sink.AssumeRoleConfig) { c.ExpiryJitter = 1.5 }},
		{name: "negative attempts", mod: func(c *s3sink.AssumeRoleConfig) { c.MaxAttempts = -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid()
			tt.mod(&cfg)
			p, err := s3sink.NewAssumeRoleProvider(cfg)
			if !sink.IsInvalid(err) || p != nil {
				t.Fatalf("NewAssumeRoleProvider = %v, %v; want an invalid error", p, err)
			}
		})
	}
	if _, err := s3sink.NewAssumeRoleProvider(valid()); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
}

func TestDefaultBaseCredentials(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"config", "credentials"} {
		if err := os.WriteFile(filepath.Join(dir, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAFROMENVIRONMENT1")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret-from-environment")
	t.Setenv("AWS_SESSION_TOKEN", "")
	p, err := s3sink.DefaultBaseCredentials(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.Retrieve(context.Background())
	if err != nil || c.AccessKeyID != "AKIAFROMENVIRONMENT1" || c.SecretAccessKey != "secret-from-environment" {
		t.Fatalf("Retrieve = %q, %v", c.AccessKeyID, err)
	}
}

// FuzzAssumeRoleARN: role ARNs come from customers' configuration. Any
// string is either refused as invalid or has the IAM role ARN shape.
func FuzzAssumeRoleARN(f *testing.F) {
	for _, s := range []string{roleOfA, "arn:aws-cn:iam::123456789012:role/path/x", "arn:aws:iam::1:role/x", "", "arn:aws:iam::123456789012:role/", "arn:aws:iam::123456789012:user/x:role/y"} {
		f.Add(s)
	}
	base := credentials.NewStaticCredentialsProvider("AKIA1", "s", "")
	f.Fuzz(func(t *testing.T, arn string) {
		p, err := s3sink.NewAssumeRoleProvider(s3sink.AssumeRoleConfig{Base: base, RoleARN: arn, ExternalIDSecret: credSecret, Region: "eu-west-1"})
		if err != nil {
			if !sink.IsInvalid(err) || p != nil {
				t.Fatalf("%q: %v, %v", arn, p, err)
			}
			return
		}
		parts := strings.SplitN(arn, ":", 6)
		if p.RoleARN() != arn || len(parts) != 6 || parts[2] != "iam" || len(parts[4]) != 12 || !strings.HasPrefix(parts[5], "role/") || len(parts[5]) < 6 ||
			strings.ContainsAny(arn, " \t\r\n\x00") {
			t.Fatalf("accepted %q", arn)
		}
	})
}

// FuzzExternalID: any secret and client give an ID STS accepts.
func FuzzExternalID(f *testing.F) {
	f.Add([]byte("secret"), int64(7))
	f.Add([]byte{}, int64(-1))
	f.Fuzz(func(t *testing.T, secret []byte, client int64) {
		id := s3sink.ExternalID(secret, client)
		if len(id) != 40 || !strings.HasPrefix(id, s3sink.ExternalIDPrefix) || strings.Trim(id[len(s3sink.ExternalIDPrefix):], "abcdefghijklmnopqrstuvwxyz234567") != "" {
			t.Fatalf("ExternalID(%q, %d) = %q", secret, client, id)
		}
		if id != s3sink.ExternalID(secret, client) {
			t.Fatal("not stable")
		}
	})
}

// TestExternalIDRotation: during a rotation of the external-ID server secret
// a role that still trusts the previous secret's external ID is assumed with
// it (and says so), one that moved to the new one with the new one, and
// without the previous secret the old trust is refused: rotating the secret
// does not break every role integration at once.
func TestExternalIDRotation(t *testing.T) {
	e := newCredEnv(t, fakests.Options{})
	newSecret := []byte("the-next-external-id-server-secret-0001")
	ctx := context.Background()
	rotating := func(t *testing.T) *s3sink.AssumeRoleProvider {
		return e.assumeRole(t, func(c *s3sink.AssumeRoleConfig) {
			c.ExternalIDSecret, c.PreviousExternalIDSecret = newSecret, credSecret
		})
	}
	p := rotating(t)
	if _, err := p.Retrieve(ctx); err != nil {
		t.Fatalf("a role trusting the previous external ID, during the rotation: %v", err)
	}
	if !p.UsesPrevious() {
		t.Fatal("UsesPrevious is false for a role that trusts only the previous external ID")
	}
	st := e.store(t, bucketOfA, p)
	if err := st.Put(ctx, "k", sink.BytesBody("x"), sink.PutOptions{}); err != nil {
		t.Fatalf("upload with the previous external ID's credentials: %v", err)
	}
	if !st.UsesPreviousExternalID() { // hitship_integration_previous_external_id
		t.Fatal("the store does not say its role uses the previous external ID")
	}
	after := e.assumeRole(t, func(c *s3sink.AssumeRoleConfig) { c.ExternalIDSecret = newSecret })
	if _, err := after.Retrieve(ctx); !s3sink.IsAssumeRoleDenied(err) {
		t.Fatalf("without the previous secret the old trust: %v, want assume-role denied", err)
	}
	e.sts.Trust(roleOfA, s3sink.ExternalID(newSecret, clientA)) // the customer moved
	moved := rotating(t)
	if _, err := moved.Retrieve(ctx); err != nil || moved.UsesPrevious() {
		t.Fatalf("a role trusting the new external ID: %v, previous %v", err, moved.UsesPrevious())
	}
}
