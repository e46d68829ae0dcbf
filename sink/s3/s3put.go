package s3

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyauth "github.com/aws/smithy-go/auth"
	"github.com/aws/smithy-go/encoding/httpbinding"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"hitship/sink"
)

// putter makes single PutObject requests itself: one SigV4-signed PUT on the
// SDK's own endpoint resolution, signer and error types, without the SDK's
// per-call middleware stack. That stack (endpoint rules evaluated per call, some
// 500 allocations, ~115 us of CPU per call in a micro-benchmark against 35 us
// for the signed PUT) was most of the per-object cost with 1,000 tenants, where
// every window end uploads thousands of objects of a few KiB (bench/README.md).
//
// What it keeps from the SDK: the endpoint (resolved once per store by the S3
// endpoint rules: virtual-hosted or path style, regional, custom endpoints),
// the signing name and region those rules give, the signer (with S3's
// no-double-escaping of the path), credentials from the same provider, the
// key's path escaping (httpbinding), Expect: 100-continue above 2 MiB, and
// errors of the same shape (smithy.OperationError > awshttp.ResponseError >
// smithy.GenericAPIError with S3's code, or the status text without spaces when
// the answer has no XML body), so classification (sink/errors.go, Explain) is
// unchanged. Multipart uploads stay on the SDK. Buckets whose endpoint rules
// ask for another auth scheme (S3 Express directory buckets, multi-region
// access points) use the SDK for everything (newPutter returns nil).
type putter struct {
	client  *http.Client
	creds   aws.CredentialsProvider
	signer  *v4.Signer
	base    url.URL     // the bucket's endpoint
	headers http.Header // headers the endpoint rules add
	name    string      // signing name
	region  string      // signing region
}

// isSigV4 reports whether an endpoint rules' auth scheme is plain SigV4 (the
// rules name it "sigv4"; the SDK's scheme id is "aws.auth#sigv4").
func isSigV4(id string) bool { return id == "sigv4" || id == smithyauth.SchemeIDSigV4 }

// expectContinueAbove is where the SDK starts sending Expect: 100-continue.
const expectContinueAbove = 2 << 20

var (
	defaultClientOnce sync.Once
	defaultClient     *http.Client
)

// newPutter resolves the bucket's endpoint; nil when it needs what only the
// SDK does (another auth scheme).
func newPutter(cfg S3Config, creds aws.CredentialsProvider) (*putter, error) {
	params := awss3.EndpointParameters{
		Bucket:         aws.String(cfg.Bucket),
		Region:         aws.String(cfg.Region),
		ForcePathStyle: aws.Bool(cfg.PathStyle),
		UseFIPS:        aws.Bool(false),
		UseDualStack:   aws.Bool(false),
		Accelerate:     aws.Bool(false),
	}
	if cfg.Endpoint != "" {
		params.Endpoint = aws.String(cfg.Endpoint)
	}
	ep, err := awss3.NewDefaultEndpointResolverV2().ResolveEndpoint(context.Background(), params)
	if err != nil {
		return nil, invalidf("s3: endpoint of bucket %q in %q: %v", cfg.Bucket, cfg.Region, err)
	}
	p := &putter{client: cfg.HTTPClient, creds: creds, base: ep.URI, headers: ep.Headers, name: "s3", region: cfg.Region,
		signer: v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })}
	if opts, ok := smithyauth.GetAuthOptions(&ep.Properties); ok && len(opts) > 0 {
		o := opts[0]
		if !isSigV4(o.SchemeID) {
			return nil, nil
		}
		if n, ok := smithyhttp.GetSigV4SigningName(&o.SignerProperties); ok && n != "" {
			p.name = n
		}
		if r, ok := smithyhttp.GetSigV4SigningRegion(&o.SignerProperties); ok && r != "" {
			p.region = r
		}
	}
	if p.client == nil {
		defaultClientOnce.Do(func() { defaultClient = NewHTTPClient() })
		p.client = defaultClient
	}
	return p, nil
}

// put uploads body (size bytes, positioned at its start) under key. unsigned
// sends UNSIGNED-PAYLOAD with the body's CRC32 (HTTPS); otherwise the payload
// is SHA-256 signed. Errors are shaped as the SDK's (see putter).
func (p *putter) put(ctx context.Context, key string, body io.ReadSeeker, size int64, opts sink.PutOptions, ifNoneMatch, unsigned bool) error {
	u := p.base
	raw := u.RawPath
	if raw == "" {
		raw = u.Path
	}
	u.Path = smithyhttp.JoinPath(u.Path, "/"+key)
	u.RawPath = smithyhttp.JoinPath(raw, "/"+httpbinding.EscapePath(key, false))
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u.String(), nil)
	if err != nil {
		return putError(fmt.Errorf("build request: %w", err))
	}
	req.URL = &u
	req.ContentLength = size
	if size > 0 {
		// The transport may go on reading the body after an early answer
		// (earlyAnswerConn): put stops that before it returns, so the body is
		// never touched once its caller has it back.
		gb := &guardedBody{r: body}
		defer gb.stop()
		req.Body = gb
	} else {
		req.Body = http.NoBody
	}
	h := req.Header
	for k, vs := range p.headers {
		h[k] = vs
	}
	h.Set("User-Agent", "hitship")
	if opts.ContentType != "" {
		h.Set("Content-Type", opts.ContentType)
	}
	if opts.ContentEncoding != "" {
		h.Set("Content-Encoding", opts.ContentEncoding)
	}
	for k, v := range opts.Metadata {
		h.Set("X-Amz-Meta-"+k, v)
	}
	if ifNoneMatch {
		h.Set("If-None-Match", "*")
	}
	if size > expectContinueAbove {
		h.Set("Expect", "100-continue")
	}
	payload := "UNSIGNED-PAYLOAD"
	if unsigned {
		sum, err := crc32Of(body)
		if err != nil {
			return putError(fmt.Errorf("checksum: %w", err))
		}
		h.Set("X-Amz-Checksum-Crc32", sum)
	} else if payload, err = sha256Of(body); err != nil {
		return putError(fmt.Errorf("payload hash: %w", err))
	}
	h.Set("X-Amz-Content-Sha256", payload)
	creds, err := p.creds.Retrieve(ctx)
	if err != nil {
		return putError(fmt.Errorf("failed to sign request: failed to retrieve credentials: %w", err))
	}
	if err := p.signer.SignHTTP(ctx, creds, req, payload, p.name, p.region, time.Now()); err != nil {
		return putError(fmt.Errorf("failed to sign request: %w", err))
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return putError(&smithyhttp.RequestSendError{Err: err})
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil
	}
	return putError(responseError(resp))
}

// guardedBody is a request body whose reads end for good with stop.
type guardedBody struct {
	mu      sync.Mutex
	r       io.Reader
	stopped bool
}

var errBodyStopped = errors.New("sink: request body no longer read: the server answered")

func (g *guardedBody) Read(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopped {
		return 0, errBodyStopped
	}
	return g.r.Read(p)
}

func (g *guardedBody) Close() error { return nil }

// stop waits for a Read in progress and makes every later one fail.
func (g *guardedBody) stop() {
	g.mu.Lock()
	g.stopped = true
	g.mu.Unlock()
}

// earlyAnswerConn keeps a connection's answer readable when the server
// refused the rest of a request body: some S3 servers (versitygw) answer a
// conditional PUT of an object that exists with 412 and close the connection
// while the body is still being sent, often after a "100 Continue" they send
// before looking at the request. The client's next write then fails with
// "connection reset" (or a broken pipe), and net/http reports that write
// error, dropping the 412 that sits readable in the socket: hitship took an
// object that was already delivered for an unreachable endpoint and retried
// it as a failure. Once a write fails so, the rest of the request is
// discarded, and the transport reads the server's answer as usual; if the
// server sent none, the read fails and reports the write's error. Only a
// reset or a broken pipe is swallowed, and the connection is not used again
// (the server closed it).
type earlyAnswerConn struct {
	net.Conn
	mu   sync.Mutex
	werr error
}

func (c *earlyAnswerConn) writeErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.werr
}

func (c *earlyAnswerConn) Write(p []byte) (int, error) {
	if c.writeErr() != nil {
		return len(p), nil
	}
	n, err := c.Conn.Write(p)
	if err != nil && (errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)) {
		c.mu.Lock()
		c.werr = err
		c.mu.Unlock()
		return len(p), nil
	}
	return n, err
}

func (c *earlyAnswerConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n == 0 && err != nil {
		if werr := c.writeErr(); werr != nil && !errors.Is(err, syscall.ECONNRESET) {
			return 0, werr // no answer came: the reset the write saw is the error
		}
	}
	return n, err
}

// dialEarlyAnswer wraps dial's connections in earlyAnswerConn.
func dialEarlyAnswer(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &earlyAnswerConn{Conn: c}, nil
	}
}

// putError wraps err as the SDK's operation error of PutObject.
func putError(err error) error {
	return &smithy.OperationError{ServiceID: "S3", OperationName: "PutObject", Err: err}
}

// s3ErrorBody is S3's XML error answer.
type s3ErrorBody struct {
	Code      string `xml:"Code"`
	Message   string `xml:"Message"`
	RequestID string `xml:"RequestId"`
	HostID    string `xml:"HostId"`
}

// responseError turns a non-2xx answer into the SDK's error shape: the code and
// message of S3's XML body, or, without one, the status text (e.g. 412 ->
// "PreconditionFailed"), as the SDK's S3 deserializers do.
func responseError(resp *http.Response) error {
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e s3ErrorBody
	if len(bytes.TrimSpace(data)) > 0 {
		_ = xml.Unmarshal(data, &e)
	}
	if e.Code == "" && e.Message == "" {
		text := http.StatusText(resp.StatusCode)
		e.Code, e.Message = strings.ReplaceAll(text, " ", ""), text
	}
	if e.Code == "" {
		e.Code = "UnknownError"
	}
	if e.Message == "" {
		e.Message = e.Code
	}
	reqID := e.RequestID
	if reqID == "" {
		reqID = resp.Header.Get("X-Amz-Request-Id")
	}
	return &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: resp},
			Err:      &smithy.GenericAPIError{Code: e.Code, Message: e.Message},
		},
		RequestID: reqID,
	}
}

// sha256Of returns the hex SHA-256 of r's bytes from its current position on,
// and seeks back there.
func sha256Of(r io.ReadSeeker) (string, error) {
	sum, err := hashFrom(r, sha256.New())
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(sum), nil
}
