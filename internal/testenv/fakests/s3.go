package fakests

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"
)

// DefaultS3Region is the region S3 expects in signatures unless told.
const DefaultS3Region = "us-east-1"

// maxS3Body bounds the body the proxy buffers to check its hash.
const maxS3Body = 64 << 20

// S3Options configures StartS3.
type S3Options struct {
	// Upstream is the S3 server that stores objects (testenv.S3.URL(),
	// path-style, which checks no signature).
	Upstream string
	// STS validates temporary credentials (may be nil: static keys only).
	STS *STS
	// Region every request must be signed for (default DefaultS3Region); a
	// different one is answered 400 AuthorizationHeaderMalformed, as AWS
	// does for a bucket in another region.
	Region string
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// S3Counts are the requests an S3 proxy saw.
type S3Counts struct {
	Accepted int
	// Refused by code, e.g. "ExpiredToken": 1.
	Refused map[string]int
	// MinRemaining is the shortest remaining lifetime of temporary
	// credentials in an accepted request (0 when there was none): how close
	// to expiry the client let them get.
	MinRemaining time.Duration
}

// S3 is an authenticating proxy in front of a path-style S3 stand-in. A
// request passes only when its SigV4 signature is valid (recomputed with the
// secret of its access key id), its credentials are currently valid (a
// static key registered with AllowKey, or temporary credentials the STS
// issued and that have not expired, with the matching X-Amz-Security-Token),
// and the bucket allows that key or that role. Otherwise it answers as AWS
// S3 does: 403 InvalidAccessKeyId, 403 SignatureDoesNotMatch, 400
// ExpiredToken, 403 InvalidToken, 400 AuthorizationHeaderMalformed (wrong
// region) or 403 AccessDenied. All methods are safe for concurrent use.
type S3 struct {
	opts  S3Options
	srv   *server
	proxy *httputil.ReverseProxy
	tr    *http.Transport

	mu      sync.Mutex
	keys    map[string]string              // static key id -> secret
	allowed map[string]map[string]struct{} // bucket -> key ids and role ARNs
	counts  S3Counts
}

// StartS3 starts the proxy. The caller must Close it (before the upstream).
func StartS3(opts S3Options) (*S3, error) {
	u, err := url.Parse(opts.Upstream)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, errors.New("fakests: S3Options.Upstream must be an absolute URL")
	}
	if opts.Region == "" {
		opts.Region = DefaultS3Region
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 5 * time.Second}
	s := &S3{
		opts:    opts,
		tr:      tr,
		keys:    map[string]string{},
		allowed: map[string]map[string]struct{}{},
		counts:  S3Counts{Refused: map[string]int{}},
	}
	s.proxy = &httputil.ReverseProxy{
		Rewrite:   func(pr *httputil.ProxyRequest) { pr.SetURL(u); pr.Out.Host = u.Host },
		Transport: tr,
	}
	srv, err := startServer(http.HandlerFunc(s.serveHTTP))
	if err != nil {
		return nil, err
	}
	s.srv = srv
	return s, nil
}

// URL returns the endpoint clients use (path-style).
func (s *S3) URL() string { return s.srv.url }

// AllowKey registers a static access key and lets it write to bucket.
func (s *S3) AllowKey(bucket, keyID, secret string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[keyID] = secret
	s.allow(bucket, keyID)
}

// RevokeKey deactivates a static access key (as IAM does with a rotated
// one): every request signed with it is refused 403 InvalidAccessKeyId.
func (s *S3) RevokeKey(keyID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.keys, keyID)
}

// AllowRole lets temporary credentials of roleARN (issued by the STS) write
// to bucket: the bucket belongs to that role's account.
func (s *S3) AllowRole(bucket, roleARN string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.allow(bucket, roleARN)
}

func (s *S3) allow(bucket, who string) {
	if s.allowed[bucket] == nil {
		s.allowed[bucket] = map[string]struct{}{}
	}
	s.allowed[bucket][who] = struct{}{}
}

// Counts returns what the proxy accepted and refused so far.
func (s *S3) Counts() S3Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := S3Counts{Accepted: s.counts.Accepted, MinRemaining: s.counts.MinRemaining, Refused: make(map[string]int, len(s.counts.Refused))}
	for k, v := range s.counts.Refused {
		c.Refused[k] = v
	}
	return c
}

// Close stops the proxy and drops its upstream connections. Safe to call
// more than once.
func (s *S3) Close() error {
	err := s.srv.close()
	s.tr.CloseIdleConnections()
	return err
}

func (s *S3) serveHTTP(w http.ResponseWriter, r *http.Request) {
	body, remaining, aerr := s.authorize(r)
	s.mu.Lock()
	if aerr != nil {
		s.counts.Refused[aerr.code]++
	} else {
		s.counts.Accepted++
		if remaining > 0 && (s.counts.MinRemaining == 0 || remaining < s.counts.MinRemaining) {
			s.counts.MinRemaining = remaining
		}
	}
	s.mu.Unlock()
	if aerr != nil {
		writeS3Error(w, r, aerr)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	s.proxy.ServeHTTP(w, r)
}

// authorize checks r and returns its body, read, and the remaining life of
// its temporary credentials (0 for a static key).
func (s *S3) authorize(r *http.Request) ([]byte, time.Duration, *authError) {
	body, ss, aerr := s.check(r)
	if aerr != nil {
		return nil, 0, aerr
	}
	if ss.expires.IsZero() {
		return body, 0, nil
	}
	return body, ss.expires.Sub(s.opts.Now()), nil
}

func (s *S3) check(r *http.Request) ([]byte, session, *authError) {
	var ss session
	body, err := io.ReadAll(io.LimitReader(r.Body, maxS3Body+1))
	if err != nil || len(body) > maxS3Body {
		return nil, ss, deny(http.StatusBadRequest, "InvalidRequest", "cannot read body (or over 64 MiB)")
	}
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return nil, ss, deny(http.StatusForbidden, "AccessDenied", "Anonymous access is not allowed")
	}
	a, aerr := parseAuth(auth)
	if aerr != nil {
		return nil, ss, aerr
	}
	if a.Service != "s3" {
		return nil, ss, deny(http.StatusBadRequest, "AuthorizationHeaderMalformed", "credential scope names service "+a.Service)
	}
	if a.Region != s.opts.Region {
		return nil, ss, deny(http.StatusBadRequest, "AuthorizationHeaderMalformed",
			"The authorization header is malformed; the region '"+a.Region+"' is wrong; expecting '"+s.opts.Region+"'")
	}
	now := s.opts.Now()
	token := r.Header.Get("X-Amz-Security-Token")
	var secret, principal string
	s.mu.Lock()
	static, isStatic := s.keys[a.KeyID]
	s.mu.Unlock()
	switch {
	case isStatic:
		if token != "" {
			return nil, ss, deny(http.StatusForbidden, "InvalidToken", "The provided token is malformed or otherwise invalid.")
		}
		secret, principal = static, a.KeyID
	case s.opts.STS != nil:
		var ok bool
		ss, ok = s.opts.STS.lookup(a.KeyID)
		if !ok {
			return nil, ss, deny(http.StatusForbidden, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
		}
		if token != ss.token {
			return nil, ss, deny(http.StatusForbidden, "InvalidToken", "The provided token is malformed or otherwise invalid.")
		}
		if !now.Before(ss.expires) {
			return nil, ss, deny(http.StatusBadRequest, "ExpiredToken", "The provided token has expired.")
		}
		secret, principal = ss.secret, ss.roleARN
	default:
		return nil, ss, deny(http.StatusForbidden, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
	}
	sum := sha256.Sum256(body)
	actual := hex.EncodeToString(sum[:])
	payload := r.Header.Get("X-Amz-Content-Sha256")
	switch {
	case payload == "":
		return nil, ss, deny(http.StatusBadRequest, "InvalidRequest", "Missing required header for this request: x-amz-content-sha256")
	case payload == "UNSIGNED-PAYLOAD" || strings.HasPrefix(payload, "STREAMING-"):
	case payload != actual:
		return nil, ss, deny(http.StatusBadRequest, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.")
	}
	if aerr := verifySigV4(r, a, secret, payload, now); aerr != nil {
		return nil, ss, aerr
	}
	bucket, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	s.mu.Lock()
	_, ok := s.allowed[bucket][principal]
	s.mu.Unlock()
	if !ok {
		return nil, ss, deny(http.StatusForbidden, "AccessDenied", "Access Denied")
	}
	return body, ss, nil
}

type s3ErrorBody struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	Resource  string   `xml:"Resource"`
	RequestID string   `xml:"RequestId"`
}

func writeS3Error(w http.ResponseWriter, r *http.Request, e *authError) {
	b, _ := xml.Marshal(s3ErrorBody{Code: e.code, Message: e.msg, Resource: r.URL.Path, RequestID: "fakests"})
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("X-Amz-Request-Id", "fakests")
	w.WriteHeader(e.status)
	if r.Method != http.MethodHead {
		_, _ = w.Write(append([]byte(xml.Header), b...))
	}
}
