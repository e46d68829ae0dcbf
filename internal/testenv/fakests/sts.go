package fakests

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultBaseKeyID  = "AKIAHITSHIPBASE00001"
	DefaultBaseSecret = "hitship-base-secret-for-tests"
	DefaultPrincipal  = "arn:aws:iam::111122223333:user/hitship"
	DefaultLifetime   = time.Hour
)

// Options configures Start.
type Options struct {
	// BaseKeyID and BaseSecret are hitship's own credentials: every call
	// must carry a valid SigV4 signature made with them (defaults
	// DefaultBaseKeyID, DefaultBaseSecret).
	BaseKeyID, BaseSecret string
	// Principal is the caller's ARN named in AccessDenied messages (default
	// DefaultPrincipal).
	Principal string
	// Lifetime caps the life of issued credentials below DurationSeconds,
	// e.g. 3 s to exercise renewal (default DefaultLifetime).
	Lifetime time.Duration
	// Chained makes the caller an assumed role itself: STS then refuses
	// DurationSeconds above 3600 (role chaining), as AWS does.
	Chained bool
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// AssumeRoleRequest is one AssumeRole call the server received with a valid
// signature.
type AssumeRoleRequest struct {
	RoleARN, ExternalID, SessionName string
	DurationSeconds                  int
	// Region is the signing region of the call (the regional endpoint the
	// client meant to reach).
	Region string
	// Granted is whether credentials were issued.
	Granted bool
}

// session is one set of issued temporary credentials.
type session struct {
	roleARN, secret, token string
	expires                time.Time
}

// STS is a fake AWS Security Token Service: sts:AssumeRole over the Query
// API, on 127.0.0.1:random. It issues temporary credentials only for a
// (role ARN, external ID) pair registered with Trust, answering AccessDenied
// as AWS does otherwise. All methods are safe for concurrent use.
type STS struct {
	opts Options
	srv  *server

	mu       sync.Mutex
	trust    map[string]string // role ARN -> required external ID
	sessions map[string]session
	requests []AssumeRoleRequest
	calls    int
}

// Start starts the server. The caller must Close it.
func Start(opts Options) (*STS, error) {
	if opts.BaseKeyID == "" {
		opts.BaseKeyID = DefaultBaseKeyID
	}
	if opts.BaseSecret == "" {
		opts.BaseSecret = DefaultBaseSecret
	}
	if opts.Principal == "" {
		opts.Principal = DefaultPrincipal
	}
	if opts.Lifetime == 0 {
		opts.Lifetime = DefaultLifetime
	}
	if opts.Lifetime < 0 {
		return nil, errors.New("fakests: negative Lifetime")
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &STS{opts: opts, trust: map[string]string{}, sessions: map[string]session{}}
	srv, err := startServer(http.HandlerFunc(s.serveHTTP))
	if err != nil {
		return nil, err
	}
	s.srv = srv
	return s, nil
}

// URL returns the endpoint, e.g. http://127.0.0.1:41234.
func (s *STS) URL() string { return s.srv.url }

// Principal returns the caller ARN the server attributes to the base
// credentials.
func (s *STS) Principal() string { return s.opts.Principal }

// Trust makes roleARN assumable by the base credentials with exactly
// externalID (the trust policy's sts:ExternalId condition). It replaces an
// earlier condition for the role.
func (s *STS) Trust(roleARN, externalID string) {
	s.mu.Lock()
	s.trust[roleARN] = externalID
	s.mu.Unlock()
}

// SetLifetime changes the lifetime of credentials issued from now on.
func (s *STS) SetLifetime(d time.Duration) {
	s.mu.Lock()
	s.opts.Lifetime = d
	s.mu.Unlock()
}

// Calls returns the number of requests received, signed or not.
func (s *STS) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// Requests returns the validly signed AssumeRole calls, oldest first.
func (s *STS) Requests() []AssumeRoleRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]AssumeRoleRequest(nil), s.requests...)
}

// Granted returns how many credentials were issued.
func (s *STS) Granted() int {
	n := 0
	for _, r := range s.Requests() {
		if r.Granted {
			n++
		}
	}
	return n
}

// lookup returns the session of an issued access key id.
func (s *STS) lookup(keyID string) (session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.sessions[keyID]
	return ss, ok
}

func (s *STS) now() time.Time { return s.opts.Now() }

// Close stops the server and waits for it. Safe to call more than once.
func (s *STS) Close() error { return s.srv.close() }

// validChars reports whether s has min..max characters of [\w] and extra.
func validChars(s string, minLen, maxLen int, extra string) bool {
	if len(s) < minLen || len(s) > maxLen {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || strings.ContainsRune(extra, c)) {
			return false
		}
	}
	return true
}

func (s *STS) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		writeSTSError(w, http.StatusBadRequest, "InvalidRequest", "cannot read body")
		return
	}
	a, aerr := parseAuth(r.Header.Get("Authorization"))
	if aerr != nil {
		writeSTSError(w, aerr.status, aerr.code, aerr.msg)
		return
	}
	if a.KeyID != s.opts.BaseKeyID {
		writeSTSError(w, http.StatusForbidden, "InvalidClientTokenId", "The security token included in the request is invalid.")
		return
	}
	if a.Service != "sts" {
		writeSTSError(w, http.StatusBadRequest, "IncompleteSignature", "credential scope names service "+a.Service+", not sts")
		return
	}
	sum := sha256.Sum256(body)
	payload := hex.EncodeToString(sum[:])
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != payload {
		writeSTSError(w, http.StatusBadRequest, "XAmzContentSHA256Mismatch", "payload hash does not match the body")
		return
	}
	if aerr := verifySigV4(r, a, s.opts.BaseSecret, payload, s.now()); aerr != nil {
		writeSTSError(w, aerr.status, aerr.code, aerr.msg)
		return
	}
	form, err := url.ParseQuery(string(body))
	if err != nil || r.Method != http.MethodPost {
		writeSTSError(w, http.StatusBadRequest, "InvalidRequest", "expected a form-encoded POST")
		return
	}
	if form.Get("Action") != "AssumeRole" || form.Get("Version") != "2011-06-15" {
		writeSTSError(w, http.StatusBadRequest, "InvalidAction", "only AssumeRole (2011-06-15) is implemented")
		return
	}
	req := AssumeRoleRequest{
		RoleARN:     form.Get("RoleArn"),
		ExternalID:  form.Get("ExternalId"),
		SessionName: form.Get("RoleSessionName"),
		Region:      a.Region,
	}
	req.DurationSeconds = 3600
	if d := form.Get("DurationSeconds"); d != "" {
		req.DurationSeconds, err = strconv.Atoi(d)
		if err != nil {
			req.DurationSeconds = -1
		}
	}
	status, code, msg := s.decide(&req)
	s.mu.Lock()
	s.requests = append(s.requests, req)
	var ss session
	var keyID string
	if req.Granted {
		life := min(s.opts.Lifetime, time.Duration(req.DurationSeconds)*time.Second)
		keyID = "ASIA" + randomString(8, true)
		ss = session{roleARN: req.RoleARN, secret: randomString(30, false), token: "FQoGZXIvYXdz" + randomString(48, false), expires: s.now().Add(life)}
		s.sessions[keyID] = ss
	}
	s.mu.Unlock()
	if !req.Granted {
		writeSTSError(w, status, code, msg)
		return
	}
	out := assumeRoleResponse{
		Result: assumeRoleResult{
			Credentials: stsCredentials{
				AccessKeyID:     keyID,
				SecretAccessKey: ss.secret,
				SessionToken:    ss.token,
				Expiration:      ss.expires.UTC().Format("2006-01-02T15:04:05.000Z"),
			},
			AssumedRoleUser: assumedRoleUser{
				AssumedRoleID: "AROAFAKE:" + req.SessionName,
				Arn:           req.RoleARN + "/" + req.SessionName,
			},
		},
		RequestID: randomString(8, false),
	}
	writeXML(w, http.StatusOK, out)
}

// decide applies the request checks and the trust policy, in AWS's order.
func (s *STS) decide(req *AssumeRoleRequest) (status int, code, msg string) {
	switch {
	case req.RoleARN == "":
		return http.StatusBadRequest, "ValidationError", "1 validation error detected: Value null at 'roleArn' failed to satisfy constraint: Member must not be null"
	case !validChars(req.SessionName, 2, 64, "+=,.@-"):
		return http.StatusBadRequest, "ValidationError", "1 validation error detected: Value at 'roleSessionName' failed to satisfy constraint"
	case req.ExternalID != "" && !validChars(req.ExternalID, 2, 1224, "+=,.@:/-"):
		return http.StatusBadRequest, "ValidationError", "1 validation error detected: Value at 'externalId' failed to satisfy constraint"
	case req.DurationSeconds < 900 || req.DurationSeconds > 43200:
		return http.StatusBadRequest, "ValidationError", "1 validation error detected: Value at 'durationSeconds' failed to satisfy constraint"
	case s.opts.Chained && req.DurationSeconds > 3600:
		return http.StatusBadRequest, "ValidationError", "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."
	}
	s.mu.Lock()
	want, ok := s.trust[req.RoleARN]
	s.mu.Unlock()
	if !ok || want == "" || req.ExternalID != want {
		return http.StatusForbidden, "AccessDenied",
			"User: " + s.opts.Principal + " is not authorized to perform: sts:AssumeRole on resource: " + req.RoleARN
	}
	req.Granted = true
	return http.StatusOK, "", ""
}

type assumeRoleResponse struct {
	XMLName   xml.Name         `xml:"https://sts.amazonaws.com/doc/2011-06-15/ AssumeRoleResponse"`
	Result    assumeRoleResult `xml:"AssumeRoleResult"`
	RequestID string           `xml:"ResponseMetadata>RequestId"`
}

type assumeRoleResult struct {
	Credentials     stsCredentials  `xml:"Credentials"`
	AssumedRoleUser assumedRoleUser `xml:"AssumedRoleUser"`
}

type stsCredentials struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration"`
}

type assumedRoleUser struct {
	AssumedRoleID string `xml:"AssumedRoleId"`
	Arn           string `xml:"Arn"`
}

type stsErrorResponse struct {
	XMLName   xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ ErrorResponse"`
	Type      string   `xml:"Error>Type"`
	Code      string   `xml:"Error>Code"`
	Message   string   `xml:"Error>Message"`
	RequestID string   `xml:"RequestId"`
}

func writeSTSError(w http.ResponseWriter, status int, code, msg string) {
	typ := "Sender"
	if status >= 500 {
		typ = "Receiver"
	}
	writeXML(w, status, stsErrorResponse{Type: typ, Code: code, Message: msg, RequestID: randomString(8, false)})
}

func writeXML(w http.ResponseWriter, status int, v any) {
	b, err := xml.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("X-Amzn-Requestid", "fakests")
	w.WriteHeader(status)
	_, _ = w.Write(append([]byte(xml.Header), b...))
}

// randomString returns n random bytes as upper-case hex (upper) or
// URL-safe base64.
func randomString(n int, upper bool) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails
	if upper {
		return fmt.Sprintf("%X", b)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// server is an http.Server on 127.0.0.1:random.
type server struct {
	srv    *http.Server
	url    string
	served chan struct{}
	once   sync.Once
	err    error
}

func startServer(h http.Handler) (*server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fakests: listen: %w", err)
	}
	s := &server{
		srv:    &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second},
		url:    "http://" + l.Addr().String(),
		served: make(chan struct{}),
	}
	go func() {
		defer close(s.served)
		_ = s.srv.Serve(l) // http.ErrServerClosed on close
	}()
	return s, nil
}

func (s *server) close() error {
	s.once.Do(func() {
		err := s.srv.Close()
		<-s.served
		if !errors.Is(err, http.ErrServerClosed) {
			s.err = err
		}
	})
	return s.err
}
