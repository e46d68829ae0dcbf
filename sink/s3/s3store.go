package s3

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"hitship/sink"
)

// S3 multipart defaults and limits.
const (
	DefaultMultipartThreshold = 64 << 20
	DefaultPartSize           = 16 << 20
	MinPartSize               = 5 << 20
	maxParts                  = 10000
	abortTimeout              = 30 * time.Second
)

// S3Config configures an S3Store.
type S3Config struct {
	Bucket   string
	Region   string
	Endpoint string // "" for AWS; e.g. "http://127.0.0.1:9000" for a stand-in
	// PathStyle addresses the bucket in the path (stand-ins, MinIO).
	PathStyle bool
	// Credentials signs requests (static keys, AssumeRole with ExternalId,
	// ...). It is wrapped in an aws.CredentialsCache unless it is one.
	Credentials aws.CredentialsProvider
	// HTTPClient is optional; the SDK's default client otherwise.
	HTTPClient *http.Client
	// IfNoneMatch makes every Put conditional (If-None-Match: *), as if
	// sink.PutOptions.IfNoneMatch were set. Enable it where the store supports
	// conditional writes (AWS S3 does).
	IfNoneMatch bool
	// MultipartThreshold: objects larger than this use a multipart upload
	// (default DefaultMultipartThreshold).
	MultipartThreshold int64
	// PartSize of multipart uploads (default DefaultPartSize, at least
	// MinPartSize; grown when an object would need more than 10,000 parts).
	PartSize int64
	// AllowAbort lets a failed multipart upload be aborted. Abort needs
	// s3:AbortMultipartUpload, which a PutObject-only policy does not grant;
	// without it, incomplete uploads are left to the bucket's
	// AbortIncompleteMultipartUpload lifecycle rule.
	AllowAbort bool
}

// S3Store is a sink.Store on one S3 bucket. It uses only calls covered by
// s3:PutObject (PutObject, CreateMultipartUpload, UploadPart,
// CompleteMultipartUpload), plus AbortMultipartUpload when AllowAbort. It
// never retries: the delivery owns retries. Safe for concurrent use.
//
// Body integrity: over HTTPS (AWS, or an https:// endpoint) bodies are sent
// with an UNSIGNED-PAYLOAD signature and an x-amz-checksum-crc32 header that
// S3 verifies before it stores the object (multipart: per part, with the
// upload created for CRC32). TLS protects the bytes in transit and the
// checksum catches corruption between our buffer and S3's disk, without
// SigV4's SHA-256 pass over every body (~10% of hitship's CPU in bench/e2e).
// Over plain HTTP (stand-ins, a local MinIO) nothing else protects the body
// from a change on the way, so the payload stays SHA-256 signed.
type S3Store struct {
	cfg      S3Config
	client   *awss3.Client
	putter   *putter // single PutObjects (s3put.go); nil: the SDK
	unsigned bool    // UNSIGNED-PAYLOAD plus CRC32 (HTTPS)
}

// UsesPreviousExternalID reports whether the store's role was last assumed
// with the previous external-ID secret's ID (a rotation in progress, its
// customer not moved yet: AssumeRoleProvider.UsesPrevious).
func (s *S3Store) UsesPreviousExternalID() bool {
	p, ok := s.cfg.Credentials.(*AssumeRoleProvider)
	return ok && p.UsesPrevious()
}

// NewS3Store builds the S3 client. It makes no request.
func NewS3Store(cfg S3Config) (*S3Store, error) {
	if cfg.Bucket == "" {
		return nil, invalidf("s3: Bucket is required")
	}
	if cfg.Region == "" {
		return nil, invalidf("s3: Region is required")
	}
	if cfg.Credentials == nil {
		return nil, invalidf("s3: Credentials are required")
	}
	if cfg.MultipartThreshold == 0 {
		cfg.MultipartThreshold = DefaultMultipartThreshold
	}
	if cfg.PartSize == 0 {
		cfg.PartSize = DefaultPartSize
	}
	if cfg.PartSize < MinPartSize {
		return nil, invalidf("s3: PartSize %d is below the S3 minimum of %d", cfg.PartSize, MinPartSize)
	}
	if cfg.MultipartThreshold < 0 {
		return nil, invalidf("s3: MultipartThreshold must not be negative")
	}
	creds := cfg.Credentials
	if _, ok := creds.(*aws.CredentialsCache); !ok {
		creds = aws.NewCredentialsCache(creds)
	}
	opts := awss3.Options{
		Region:                     cfg.Region,
		Credentials:                creds,
		UsePathStyle:               cfg.PathStyle,
		Retryer:                    aws.NopRetryer{},
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
	if cfg.Endpoint != "" {
		opts.BaseEndpoint = aws.String(cfg.Endpoint)
	}
	if cfg.HTTPClient != nil {
		opts.HTTPClient = cfg.HTTPClient
	}
	p, err := newPutter(cfg, creds)
	if err != nil {
		return nil, err
	}
	return &S3Store{cfg: cfg, client: awss3.New(opts), putter: p, unsigned: isHTTPS(cfg.Endpoint)}, nil
}

// isHTTPS reports whether requests to endpoint go over TLS ("" is AWS).
func isHTTPS(endpoint string) bool {
	return endpoint == "" || strings.HasPrefix(strings.ToLower(endpoint), "https://")
}

// unsignedPayload sends the payload hash UNSIGNED-PAYLOAD instead of the
// body's SHA-256 (per call: the other calls have no body worth hashing).
var unsignedPayload = awss3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)

// crc32Of returns the base64 CRC32 (IEEE) of r's bytes from its current
// position on, and seeks back there.
func crc32Of(r io.ReadSeeker) (string, error) {
	sum, err := hashFrom(r, crc32.NewIEEE())
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(sum), nil
}

// hashFrom returns h's sum of r's bytes from its current position on, and
// seeks back there.
func hashFrom(r io.ReadSeeker, h hash.Hash) ([]byte, error) {
	pos, err := r.Seek(0, io.SeekCurrent)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(h, r); err != nil {
		return nil, err
	}
	if _, err := r.Seek(pos, io.SeekStart); err != nil {
		return nil, err
	}
	return h.Sum(nil), nil
}

// Bucket returns the configured bucket.
func (s *S3Store) Bucket() string { return s.cfg.Bucket }

// Put uploads obj under key: one PutObject up to MultipartThreshold, a
// multipart upload above. It blocks until done or ctx ends. A 412 answer to a
// conditional write returns an error satisfying sink.IsAlreadyExists.
func (s *S3Store) Put(ctx context.Context, key string, obj sink.Body, opts sink.PutOptions) error {
	if key == "" {
		return invalidf("s3: empty key")
	}
	r, err := obj.Open()
	if err != nil {
		return fmt.Errorf("sink: put s3://%s/%s: %w", s.cfg.Bucket, key, err)
	}
	defer r.Close()
	size := obj.Size()
	ifNoneMatch := s.cfg.IfNoneMatch || opts.IfNoneMatch
	if size > s.cfg.MultipartThreshold {
		return s.putMultipart(ctx, key, r, size, opts, ifNoneMatch)
	}
	if s.putter != nil {
		if err := s.putter.put(ctx, key, r, size, opts, ifNoneMatch, s.unsigned); err != nil {
			return newStoreError("PutObject", s.cfg.Bucket, key, err)
		}
		return nil
	}
	in := &awss3.PutObjectInput{
		Bucket:        aws.String(s.cfg.Bucket),
		Key:           aws.String(key),
		Body:          readSeeker{r},
		ContentLength: aws.Int64(size),
	}
	setHeaders(&in.ContentType, &in.ContentEncoding, opts)
	in.Metadata = opts.Metadata
	if ifNoneMatch {
		in.IfNoneMatch = aws.String("*")
	}
	var optFns []func(*awss3.Options)
	if s.unsigned {
		sum, err := crc32Of(r)
		if err != nil {
			return fmt.Errorf("sink: put s3://%s/%s: checksum: %w", s.cfg.Bucket, key, err)
		}
		in.ChecksumCRC32 = aws.String(sum)
		optFns = append(optFns, unsignedPayload)
	}
	if _, err := s.client.PutObject(ctx, in, optFns...); err != nil {
		return newStoreError("PutObject", s.cfg.Bucket, key, err)
	}
	return nil
}

func setHeaders(ct, ce **string, opts sink.PutOptions) {
	if opts.ContentType != "" {
		*ct = aws.String(opts.ContentType)
	}
	if opts.ContentEncoding != "" {
		*ce = aws.String(opts.ContentEncoding)
	}
}

func (s *S3Store) putMultipart(ctx context.Context, key string, r io.ReadSeeker, size int64, opts sink.PutOptions, ifNoneMatch bool) (err error) {
	partSize := max(s.cfg.PartSize, (size+maxParts-1)/maxParts)
	cin := &awss3.CreateMultipartUploadInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key)}
	setHeaders(&cin.ContentType, &cin.ContentEncoding, opts)
	cin.Metadata = opts.Metadata
	var optFns []func(*awss3.Options)
	if s.unsigned { // every part carries its CRC32, so the upload must say so
		cin.ChecksumAlgorithm = types.ChecksumAlgorithmCrc32
		optFns = append(optFns, unsignedPayload)
	}
	cout, err := s.client.CreateMultipartUpload(ctx, cin)
	if err != nil {
		return newStoreError("CreateMultipartUpload", s.cfg.Bucket, key, err)
	}
	uploadID := cout.UploadId
	defer func() {
		if err != nil && s.cfg.AllowAbort {
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
			defer cancel()
			if _, aerr := s.client.AbortMultipartUpload(actx, &awss3.AbortMultipartUploadInput{
				Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key), UploadId: uploadID,
			}); aerr != nil {
				err = errors.Join(err, newStoreError("AbortMultipartUpload", s.cfg.Bucket, key, aerr))
			}
		}
	}()
	var parts []types.CompletedPart
	for n, off := int32(1), int64(0); off < size; n, off = n+1, off+partSize {
		l := min(partSize, size-off)
		body, err := newSection(r, off, l)
		if err != nil {
			return fmt.Errorf("sink: put s3://%s/%s: %w", s.cfg.Bucket, key, err)
		}
		pin := &awss3.UploadPartInput{
			Bucket:        aws.String(s.cfg.Bucket),
			Key:           aws.String(key),
			UploadId:      uploadID,
			PartNumber:    aws.Int32(n),
			Body:          body,
			ContentLength: aws.Int64(l),
		}
		if s.unsigned {
			sum, err := crc32Of(body)
			if err != nil {
				return fmt.Errorf("sink: put s3://%s/%s: checksum of part %d: %w", s.cfg.Bucket, key, n, err)
			}
			pin.ChecksumCRC32 = aws.String(sum)
		}
		out, err := s.client.UploadPart(ctx, pin, optFns...)
		if err != nil {
			return newStoreError("UploadPart", s.cfg.Bucket, key, err)
		}
		parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(n), ChecksumCRC32: pin.ChecksumCRC32})
	}
	in := &awss3.CompleteMultipartUploadInput{
		Bucket:          aws.String(s.cfg.Bucket),
		Key:             aws.String(key),
		UploadId:        uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	}
	if ifNoneMatch {
		in.IfNoneMatch = aws.String("*")
	}
	if _, err := s.client.CompleteMultipartUpload(ctx, in); err != nil {
		return newStoreError("CompleteMultipartUpload", s.cfg.Bucket, key, err)
	}
	return nil
}

// readSeeker hides Close from the SDK: the store closes what it opened.
type readSeeker struct{ io.ReadSeeker }

// newSection returns a seekable view of r's bytes [off, off+n).
func newSection(r io.ReadSeeker, off, n int64) (io.ReadSeeker, error) {
	if ra, ok := r.(io.ReaderAt); ok {
		return io.NewSectionReader(ra, off, n), nil
	}
	s := &section{r: r, base: off, size: n}
	if _, err := s.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	return s, nil
}

// section is a SectionReader over a ReadSeeker (parts are read one at a time).
type section struct {
	r          io.ReadSeeker
	base, size int64
	pos        int64
}

func (s *section) Read(p []byte) (int, error) {
	if s.pos >= s.size {
		return 0, io.EOF
	}
	if rem := s.size - s.pos; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := s.r.Read(p)
	s.pos += int64(n)
	if err == io.EOF && s.pos < s.size {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

func (s *section) Seek(offset int64, whence int) (int64, error) {
	offset, err := seekTo(offset, whence, s.pos, s.size)
	if err != nil {
		return 0, err
	}
	if _, err := s.r.Seek(s.base+offset, io.SeekStart); err != nil {
		return 0, err
	}
	s.pos = offset
	return offset, nil
}

// seekTo returns the absolute position of an io.Seeker's Seek(offset,
// whence) on a stream of size bytes at position pos.
func seekTo(offset int64, whence int, pos, size int64) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += pos
	case io.SeekEnd:
		offset += size
	}
	if offset < 0 {
		return 0, errors.New("sink: seek before start")
	}
	return offset, nil
}

// NewHTTPClient returns an HTTP client for the S3 stores of all integrations to
// share (S3Config.HTTPClient): one connection pool instead of one per store.
// With many integrations on one endpoint (path style, a regional endpoint, a
// stand-in) uploads reuse the same few keep-alive connections instead of each
// integration opening its own TLS connections; on AWS (a host per bucket) the
// idle connections are bounded in total and TLS sessions are resumed. Proxy
// settings come from the environment, as with the SDK's default client. An
// answer a server sends before it closes on a body it did not want (versitygw's
// 412 to a conditional PUT of an object that exists) is read and classified,
// not reported as a reset connection.
func NewHTTPClient() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConns = 256
	tr.MaxIdleConnsPerHost = 16
	tr.IdleConnTimeout = 90 * time.Second
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, ClientSessionCache: tls.NewLRUClientSessionCache(1024)}
	// An answer sent before the server closed on a body it did not want (a
	// 412 after Expect: 100-continue) is read, not lost (earlyAnswerConn).
	tr.DialContext = dialEarlyAnswer((&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext)
	return &http.Client{Transport: tr}
}
