package parking

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"hitship/sink"
)

// ErrNotFound is wrapped by errors for an object that is not in the bucket.
var ErrNotFound = errors.New("parking: object not found")

// IsNotFound reports whether err is about a missing object.
func IsNotFound(err error) bool { return errors.Is(err, ErrNotFound) }

// ErrInvalid is wrapped by errors for an invalid configuration or argument.
var ErrInvalid = errors.New("parking: invalid")

// IsInvalid reports whether err is about an invalid configuration or argument.
func IsInvalid(err error) bool { return errors.Is(err, ErrInvalid) }

// Config configures a Store.
type Config struct {
	Bucket    string
	Region    string
	Endpoint  string // "" for AWS
	PathStyle bool
	// Prefix starts every key (e.g. "hitship/").
	Prefix      string
	Credentials aws.CredentialsProvider
	HTTPClient  *http.Client // nil: the SDK's default
}

// Object is a parked object read back.
type Object struct {
	Data            []byte
	ContentType     string
	ContentEncoding string
}

// Store is the parking bucket. Safe for concurrent use.
type Store struct {
	cfg    Config
	put    *sink.S3Store
	client *s3.Client
}

// New builds the store's S3 clients. It makes no request.
func New(cfg Config) (*Store, error) {
	if cfg.Bucket == "" || cfg.Region == "" || cfg.Credentials == nil {
		return nil, fmt.Errorf("parking: bucket, region and credentials are required: %w", ErrInvalid)
	}
	put, err := sink.NewS3Store(sink.S3Config{Bucket: cfg.Bucket, Region: cfg.Region, Endpoint: cfg.Endpoint,
		PathStyle: cfg.PathStyle, Credentials: cfg.Credentials, HTTPClient: cfg.HTTPClient, AllowAbort: true})
	if err != nil {
		return nil, fmt.Errorf("parking: %w", err)
	}
	creds := cfg.Credentials
	if _, ok := creds.(*aws.CredentialsCache); !ok {
		creds = aws.NewCredentialsCache(creds)
	}
	opts := s3.Options{Region: cfg.Region, Credentials: creds, UsePathStyle: cfg.PathStyle, Retryer: aws.NopRetryer{},
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired}
	if cfg.Endpoint != "" {
		opts.BaseEndpoint = aws.String(cfg.Endpoint)
	}
	if cfg.HTTPClient != nil {
		opts.HTTPClient = cfg.HTTPClient
	}
	return &Store{cfg: cfg, put: put, client: s3.New(opts)}, nil
}

// Bucket returns the parking bucket's name.
func (s *Store) Bucket() string { return s.cfg.Bucket }

// ParkedKey is where the object key of integration waits for a retry worker.
func (s *Store) ParkedKey(integration, key string) string {
	return s.cfg.Prefix + "parked/" + integration + "/" + key
}

// DeadKey is where the object key of integration is kept as a dead letter.
func (s *Store) DeadKey(integration, key string) string {
	return s.cfg.Prefix + "dead/" + integration + "/" + key
}

// Put writes obj under key (unconditionally: parking again overwrites).
func (s *Store) Put(ctx context.Context, key string, obj sink.Body, opts sink.PutOptions) error {
	opts.IfNoneMatch = false
	if err := s.put.Put(ctx, key, obj, opts); err != nil {
		return fmt.Errorf("parking: put %s: %w", key, err)
	}
	return nil
}

// Get reads the object under key.
func (s *Store) Get(ctx context.Context, key string) (*Object, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key)})
	if err != nil {
		return nil, s.classify("get", key, err)
	}
	defer func() { _ = out.Body.Close() }()
	var buf bytes.Buffer
	if _, err := io.Copy(&buf, out.Body); err != nil {
		return nil, fmt.Errorf("parking: get %s: %w", key, err)
	}
	return &Object{Data: buf.Bytes(), ContentType: aws.ToString(out.ContentType), ContentEncoding: aws.ToString(out.ContentEncoding)}, nil
}

// Delete removes the object under key; a missing object is no error.
func (s *Store) Delete(ctx context.Context, key string) error {
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key)})
	if err != nil && !IsNotFound(s.classify("delete", key, err)) {
		return fmt.Errorf("parking: delete %s: %w", key, err)
	}
	return nil
}

// Copy writes a copy of the object under from to to; from stays. A missing
// from is an error satisfying IsNotFound.
func (s *Store) Copy(ctx context.Context, from, to string) error {
	if from == to {
		return nil
	}
	obj, err := s.Get(ctx, from)
	if err != nil {
		return fmt.Errorf("parking: copy %s: %w", from, err)
	}
	if err := s.Put(ctx, to, sink.BytesBody(obj.Data), sink.PutOptions{ContentType: obj.ContentType, ContentEncoding: obj.ContentEncoding}); err != nil {
		return fmt.Errorf("parking: copy %s: %w", from, err)
	}
	return nil
}

// Exists reports whether an object is stored under key.
func (s *Store) Exists(ctx context.Context, key string) (bool, error) {
	_, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key)})
	if err == nil {
		return true, nil
	}
	if err = s.classify("head", key, err); IsNotFound(err) {
		return false, nil
	}
	return false, err
}

func (s *Store) classify(op, key string, err error) error {
	var nsk *types.NoSuchKey
	var nf *types.NotFound
	var ae smithy.APIError
	if errors.As(err, &nsk) || errors.As(err, &nf) || (errors.As(err, &ae) && strings.EqualFold(ae.ErrorCode(), "NoSuchKey")) {
		return fmt.Errorf("parking: %s %s: %w: %w", op, key, ErrNotFound, err)
	}
	return fmt.Errorf("parking: %s %s: %w", op, key, err)
}
