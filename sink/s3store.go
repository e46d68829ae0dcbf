package sink

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
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
	// PutOptions.IfNoneMatch were set. Enable it where the store supports
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

// S3Store is a Store on one S3 bucket. It uses only calls covered by
// s3:PutObject (PutObject, CreateMultipartUpload, UploadPart,
// CompleteMultipartUpload), plus AbortMultipartUpload when AllowAbort. It
// never retries: the delivery owns retries. Safe for concurrent use.
type S3Store struct {
	cfg    S3Config
	client *s3.Client
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
	opts := s3.Options{
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
	return &S3Store{cfg: cfg, client: s3.New(opts)}, nil
}

// Bucket returns the configured bucket.
func (s *S3Store) Bucket() string { return s.cfg.Bucket }

// Put uploads obj under key: one PutObject up to MultipartThreshold, a
// multipart upload above. It blocks until done or ctx ends. A 412 answer to a
// conditional write returns an error satisfying IsAlreadyExists.
func (s *S3Store) Put(ctx context.Context, key string, obj Body, opts PutOptions) error {
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
	in := &s3.PutObjectInput{
		Bucket:        aws.String(s.cfg.Bucket),
		Key:           aws.String(key),
		Body:          readSeeker{r},
		ContentLength: aws.Int64(size),
	}
	setHeaders(&in.ContentType, &in.ContentEncoding, opts)
	if ifNoneMatch {
		in.IfNoneMatch = aws.String("*")
	}
	if _, err := s.client.PutObject(ctx, in); err != nil {
		return newStoreError("PutObject", s.cfg.Bucket, key, err)
	}
	return nil
}

func setHeaders(ct, ce **string, opts PutOptions) {
	if opts.ContentType != "" {
		*ct = aws.String(opts.ContentType)
	}
	if opts.ContentEncoding != "" {
		*ce = aws.String(opts.ContentEncoding)
	}
}

func (s *S3Store) putMultipart(ctx context.Context, key string, r io.ReadSeeker, size int64, opts PutOptions, ifNoneMatch bool) (err error) {
	partSize := max(s.cfg.PartSize, (size+maxParts-1)/maxParts)
	cin := &s3.CreateMultipartUploadInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key)}
	setHeaders(&cin.ContentType, &cin.ContentEncoding, opts)
	cout, err := s.client.CreateMultipartUpload(ctx, cin)
	if err != nil {
		return newStoreError("CreateMultipartUpload", s.cfg.Bucket, key, err)
	}
	uploadID := cout.UploadId
	defer func() {
		if err != nil && s.cfg.AllowAbort {
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
			defer cancel()
			if _, aerr := s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
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
		out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
			Bucket:        aws.String(s.cfg.Bucket),
			Key:           aws.String(key),
			UploadId:      uploadID,
			PartNumber:    aws.Int32(n),
			Body:          body,
			ContentLength: aws.Int64(l),
		})
		if err != nil {
			return newStoreError("UploadPart", s.cfg.Bucket, key, err)
		}
		parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(n)})
	}
	in := &s3.CompleteMultipartUploadInput{
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
	switch whence {
	case io.SeekCurrent:
		offset += s.pos
	case io.SeekEnd:
		offset += s.size
	}
	if offset < 0 {
		return 0, errors.New("sink: seek before start")
	}
	if _, err := s.r.Seek(s.base+offset, io.SeekStart); err != nil {
		return 0, err
	}
	s.pos = offset
	return offset, nil
}
