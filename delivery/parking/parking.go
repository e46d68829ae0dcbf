package parking

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"hitship/sink"
	s3sink "hitship/sink/s3"
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
	// MaxCopyObject is the largest object Copy copies with one CopyObject
	// call (0: MaxCopyObject, S3's limit); larger ones are copied in parts of
	// CopyPartSize (0: 512 MiB; at least 5 MiB). Tests lower both.
	MaxCopyObject int64
	CopyPartSize  int64
}

// Object is a parked object read back.
type Object struct {
	Data            []byte
	ContentType     string
	ContentEncoding string
}

// Store is the parking bucket. Safe for concurrent use.
type Store struct {
	cfg      Config
	put      *s3sink.S3Store
	client   *s3.Client
	maxCopy  int64
	copyPart int64
}

// New builds the store's S3 clients. It makes no request.
func New(cfg Config) (*Store, error) {
	if cfg.Bucket == "" || cfg.Region == "" || cfg.Credentials == nil {
		return nil, fmt.Errorf("parking: bucket, region and credentials are required: %w", ErrInvalid)
	}
	put, err := s3sink.NewS3Store(s3sink.S3Config{Bucket: cfg.Bucket, Region: cfg.Region, Endpoint: cfg.Endpoint,
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
	st := &Store{cfg: cfg, put: put, client: s3.New(opts), maxCopy: cfg.MaxCopyObject, copyPart: cfg.CopyPartSize}
	if st.maxCopy <= 0 {
		st.maxCopy = MaxCopyObject
	}
	if st.copyPart <= 0 {
		st.copyPart = copyPartSize
	}
	if st.copyPart < s3sink.MinPartSize {
		return nil, fmt.Errorf("parking: copy part size %d below %d: %w", st.copyPart, s3sink.MinPartSize, ErrInvalid)
	}
	return st, nil
}

// Bucket returns the parking bucket's name.
func (s *Store) Bucket() string { return s.cfg.Bucket }

// ParkedKey is where the object key of integration waits for a retry worker.
func (s *Store) ParkedKey(integration, key string) string {
	return s.ParkedPrefix() + integration + "/" + key
}

// DeadKey is where the object key of integration is kept as a dead letter.
func (s *Store) DeadKey(integration, key string) string {
	return s.DeadPrefix() + integration + "/" + key
}

// Put writes obj under key (unconditionally: parking again overwrites).
func (s *Store) Put(ctx context.Context, key string, obj sink.Body, opts sink.PutOptions) error {
	opts.IfNoneMatch = false
	if err := s.put.Put(ctx, key, obj, opts); err != nil {
		return fmt.Errorf("parking: put %s: %w", key, err)
	}
	return nil
}

// PutNew writes obj under key only if no object is there (If-None-Match: *):
// the staging bucket's intents are created once, whoever races for them. An
// existing object is an error satisfying sink.IsAlreadyExists.
func (s *Store) PutNew(ctx context.Context, key string, obj sink.Body, opts sink.PutOptions) error {
	opts.IfNoneMatch = true
	if err := s.put.Put(ctx, key, obj, opts); err != nil {
		return fmt.Errorf("parking: put %s: %w", key, err)
	}
	return nil
}

// Open streams the object under key; the caller closes the reader. A missing
// object is an error satisfying IsNotFound.
func (s *Store) Open(ctx context.Context, key string) (io.ReadCloser, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key)})
	if err != nil {
		return nil, s.classify("get", key, err)
	}
	return out.Body, nil
}

// Dirs returns the "directories" right under prefix: the distinct key parts
// up to the next '/' (ListObjectsV2 with a delimiter), sorted.
func (s *Store) Dirs(ctx context.Context, prefix string) ([]string, error) {
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(s.cfg.Bucket),
		Prefix: aws.String(prefix), Delimiter: aws.String("/")})
	var dirs []string
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("parking: list %s: %w", prefix, err)
		}
		for _, cp := range page.CommonPrefixes {
			d := strings.TrimSuffix(strings.TrimPrefix(aws.ToString(cp.Prefix), prefix), "/")
			dirs = append(dirs, d)
		}
	}
	sort.Strings(dirs)
	return dirs, nil
}

// File is a parked object downloaded to a temporary file: a sink.Body that
// re-opens the file for every read, so an upload streams it from disk however
// large it is. Close removes the file.
type File struct {
	path            string
	size            int64
	ContentType     string
	ContentEncoding string
	// Metadata is the object's user metadata (keys in lower case, without
	// the x-amz-meta- prefix).
	Metadata map[string]string
}

var _ sink.Body = (*File)(nil)

// Open returns a reader of the whole file, positioned at its start.
func (f *File) Open() (io.ReadSeekCloser, error) { return os.Open(f.path) }

// Size returns the object's length.
func (f *File) Size() int64 { return f.size }

// Close removes the file. Safe to call twice.
func (f *File) Close() error {
	if err := os.Remove(f.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("parking: %w", err)
	}
	return nil
}

// TempPattern names Download's files: "*.obj", so that a spool started on the
// same directory removes the ones a crash left (sink.NewSpool).
const TempPattern = "parked-*.obj"

// Download streams the object under key into a new file in dir (created if
// missing) and returns it; memory use does not depend on the object's size.
// The caller closes the File. On any error nothing is left in dir. A missing
// object is an error satisfying IsNotFound. ctx bounds the whole read.
func (s *Store) Download(ctx context.Context, key, dir string) (*File, error) {
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key)})
	if err != nil {
		return nil, s.classify("get", key, err)
	}
	defer func() { _ = out.Body.Close() }()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("parking: get %s: %w", key, err)
	}
	tmp, err := os.CreateTemp(dir, TempPattern)
	if err != nil {
		return nil, fmt.Errorf("parking: get %s: %w", key, err)
	}
	f := &File{path: tmp.Name(), ContentType: aws.ToString(out.ContentType), ContentEncoding: aws.ToString(out.ContentEncoding),
		Metadata: out.Metadata}
	n, err := io.Copy(tmp, out.Body)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil && out.ContentLength != nil && n != *out.ContentLength {
		err = fmt.Errorf("read %d of %d bytes", n, *out.ContentLength)
	}
	if err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("parking: get %s: %w", key, err)
	}
	f.size = n
	return f, nil
}

// Get reads the object under key into memory: for small objects and tests
// (the retry path uses Download).
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

// MaxCopyObject is the largest object one CopyObject call copies (S3's
// limit); larger ones are copied in parts (UploadPartCopy).
const MaxCopyObject = 5 << 30

// copyPartSize is the part size of a multipart copy.
const copyPartSize = 512 << 20

// Copy writes a copy of the object under from to to, with its content type,
// encoding and user metadata; from stays. The copy is made by the bucket
// (CopyObject, or UploadPartCopy above Config.MaxCopyObject): no byte of the
// object passes through hitship, so its duration hardly depends on the size.
// A missing from is an error satisfying IsNotFound.
func (s *Store) Copy(ctx context.Context, from, to string) error {
	if from == to {
		return nil
	}
	head, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(from)})
	if err != nil {
		return fmt.Errorf("parking: copy: %w", s.classify("head", from, err))
	}
	size := aws.ToInt64(head.ContentLength)
	if size <= s.maxCopy {
		_, err := s.client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(to),
			CopySource: aws.String(s.copySource(from)), MetadataDirective: types.MetadataDirectiveCopy})
		if err != nil {
			return fmt.Errorf("parking: copy: %w", s.classify("copy", from, err))
		}
		return nil
	}
	return s.copyParts(ctx, from, to, size, head)
}

// copySource is the x-amz-copy-source of key: bucket/key, URL-escaped.
func (s *Store) copySource(key string) string {
	segs := strings.Split(key, "/")
	for i, p := range segs {
		segs[i] = strings.ReplaceAll(url.QueryEscape(p), "+", "%20")
	}
	return s.cfg.Bucket + "/" + strings.Join(segs, "/")
}

// copyParts copies an object larger than one CopyObject may copy.
func (s *Store) copyParts(ctx context.Context, from, to string, size int64, head *s3.HeadObjectOutput) error {
	bucket := aws.String(s.cfg.Bucket)
	up, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: bucket, Key: aws.String(to),
		ContentType: head.ContentType, ContentEncoding: head.ContentEncoding, Metadata: head.Metadata})
	if err != nil {
		return fmt.Errorf("parking: copy: %w", s.classify("create multipart", to, err))
	}
	abort := func() {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		_, _ = s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{Bucket: bucket, Key: aws.String(to), UploadId: up.UploadId})
	}
	var parts []types.CompletedPart
	for off, n := int64(0), int32(1); off < size; off, n = off+s.copyPart, n+1 {
		end := min(off+s.copyPart, size) - 1
		out, err := s.client.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: bucket, Key: aws.String(to), UploadId: up.UploadId,
			PartNumber: aws.Int32(n), CopySource: aws.String(s.copySource(from)),
			CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", off, end))})
		if err != nil {
			abort()
			return fmt.Errorf("parking: copy part %d: %w", n, s.classify("copy", from, err))
		}
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(n), ETag: out.CopyPartResult.ETag})
	}
	if _, err := s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: bucket, Key: aws.String(to),
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}}); err != nil {
		abort()
		return fmt.Errorf("parking: copy: %w", s.classify("complete multipart", to, err))
	}
	return nil
}

// Info is what HeadObject tells of a parked object.
type Info struct {
	ContentType     string
	ContentEncoding string
	Size            int64
	Modified        time.Time
	// Metadata is the user metadata (keys in lower case, without the
	// x-amz-meta- prefix).
	Metadata map[string]string
}

// Head returns what the bucket knows of key; found is false when it is
// missing.
func (s *Store) Head(ctx context.Context, key string) (info Info, found bool, err error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(s.cfg.Bucket), Key: aws.String(key)})
	if err != nil {
		if err = s.classify("head", key, err); IsNotFound(err) {
			return Info{}, false, nil
		}
		return Info{}, false, err
	}
	return Info{ContentType: aws.ToString(out.ContentType), ContentEncoding: aws.ToString(out.ContentEncoding),
		Size: aws.ToInt64(out.ContentLength), Modified: aws.ToTime(out.LastModified), Metadata: out.Metadata}, true, nil
}

// List calls fn with the keys of the objects under prefix (a key prefix of
// the bucket, e.g. ParkedKey("", "")), a page (at most 1,000) at a time, and
// stops at fn's first error.
func (s *Store) List(ctx context.Context, prefix string, fn func(keys []string) error) error {
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(s.cfg.Bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("parking: list %s: %w", prefix, err)
		}
		keys := make([]string, 0, len(page.Contents))
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
		if len(keys) == 0 {
			continue
		}
		if err := fn(keys); err != nil {
			return err
		}
	}
	return nil
}

// ParkedPrefix and DeadPrefix are the key prefixes of the parked objects and
// the dead letters of every integration.
func (s *Store) ParkedPrefix() string { return s.cfg.Prefix + "parked/" }

// DeadPrefix: see ParkedPrefix.
func (s *Store) DeadPrefix() string { return s.cfg.Prefix + "dead/" }

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
