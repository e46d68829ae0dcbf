package embedded

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3afero"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/spf13/afero"
)

// S3 region, access key and secret the harness expects from clients. gofakes3
// does not check signatures; these only make SigV4 signing work.
const (
	S3Region    = "us-east-1"
	S3AccessKey = "testenv"
	S3SecretKey = "testenv-secret"
)

// S3Options configures StartS3.
type S3Options struct {
	// Dir, when set, stores objects as plain files Dir/<bucket>/<key>
	// (gofakes3 metadata goes to Dir/.meta, which is not a valid bucket
	// name). "" keeps everything in memory.
	Dir string
	// Buckets to create at start (existing ones are kept).
	Buckets []string
	// Wrap, if set, wraps the server's HTTP handler (package testenv injects
	// per-bucket faults with it). nil serves gofakes3 as it is.
	Wrap func(http.Handler) http.Handler
}

// S3 is an in-process S3 (gofakes3) served over plain HTTP on
// 127.0.0.1:random, path-style. All methods are safe for concurrent use.
type S3 struct {
	backend gofakes3.Backend
	srv     *http.Server
	url     string
	served  chan struct{}
	httpc   *http.Client
	client  *s3.Client

	mu     sync.Mutex
	closed bool
}

// StartS3 starts the server. The caller must Close it.
func StartS3(opts S3Options) (*S3, error) {
	var backend gofakes3.Backend
	if opts.Dir == "" {
		backend = s3mem.New()
	} else {
		if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
			return nil, fmt.Errorf("embedded: s3 dir: %w", err)
		}
		abs, err := filepath.Abs(opts.Dir)
		if err != nil {
			return nil, fmt.Errorf("embedded: s3 dir: %w", err)
		}
		b, err := s3afero.MultiBucket(flatFs{afero.NewBasePathFs(afero.NewOsFs(), abs)})
		if err != nil {
			return nil, fmt.Errorf("embedded: s3 afero backend: %w", err)
		}
		backend = b
	}
	for _, name := range opts.Buckets {
		if err := backend.CreateBucket(name); err != nil && !gofakes3.IsAlreadyExists(err) {
			return nil, fmt.Errorf("embedded: create bucket %q: %w", name, err)
		}
	}
	faker := gofakes3.New(backend, gofakes3.WithLogger(gofakes3.DiscardLog()))

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("embedded: s3 listen: %w", err)
	}
	s := &S3{
		backend: backend,
		url:     "http://" + l.Addr().String(),
		served:  make(chan struct{}),
	}
	h := wholeBody(faker.Server())
	if opts.Wrap != nil {
		h = opts.Wrap(h)
	}
	s.srv = &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		defer close(s.served)
		_ = s.srv.Serve(l) // returns http.ErrServerClosed on Close
	}()
	// A private transport so that Close can drop its idle connections (and
	// their goroutines).
	s.httpc = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16, IdleConnTimeout: 5 * time.Second}}
	s.client = s3.New(s.ClientOptions())
	return s, nil
}

// wholeBody reads a request's body completely before gofakes3 sees it, and
// answers 400 IncompleteBody (storing nothing) when the client sent less than
// its Content-Length, as S3 does. gofakes3's file backend truncates an
// object's file and then copies the body in: an upload cut off mid-body (a
// replica killed or timing out while overwriting an object) left a partial
// object where a complete one had been, which S3 never does.
func wholeBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			next.ServeHTTP(w, r)
			return
		}
		data, err := io.ReadAll(r.Body)
		if err != nil || r.ContentLength > 0 && int64(len(data)) != r.ContentLength {
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>IncompleteBody</Code><Message>You did not provide the number of bytes specified by the Content-Length HTTP header.</Message></Error>`)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(data))
		next.ServeHTTP(w, r)
	})
}

// URL returns the endpoint, e.g. http://127.0.0.1:41234.
func (s *S3) URL() string { return s.url }

// ClientOptions returns s3.Options for a client of this server: path-style,
// static credentials, no retries, checksums only when required. Callers may
// adjust them before s3.New.
func (s *S3) ClientOptions() s3.Options {
	return s3.Options{
		Region:                     S3Region,
		BaseEndpoint:               aws.String(s.url),
		UsePathStyle:               true,
		Credentials:                credentials.NewStaticCredentialsProvider(S3AccessKey, S3SecretKey, ""),
		Retryer:                    aws.NopRetryer{},
		HTTPClient:                 s.httpc,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	}
}

// Client returns the admin client (see ClientOptions). It goes through HTTP,
// so a fault injected with S3Options.Wrap applies to it too; use Objects to
// look past a fault.
func (s *S3) Client() *s3.Client { return s.client }

// Objects returns every object of bucket by key, read straight from the
// backend (faults injected with S3Options.Wrap do not apply).
func (s *S3) Objects(ctx context.Context, bucket string) (map[string][]byte, error) {
	// One unpaged listing: the afero backend does not implement pages.
	list, err := s.backend.ListBucket(bucket, &gofakes3.Prefix{}, gofakes3.ListBucketPage{})
	if err != nil {
		return nil, fmt.Errorf("embedded: list %q: %w", bucket, err)
	}
	out := make(map[string][]byte, len(list.Contents))
	for _, c := range list.Contents {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		obj, err := s.backend.GetObject(bucket, c.Key, nil)
		if err != nil {
			return nil, fmt.Errorf("embedded: get %s/%s: %w", bucket, c.Key, err)
		}
		b, err := io.ReadAll(obj.Contents)
		_ = obj.Contents.Close()
		if err != nil {
			return nil, fmt.Errorf("embedded: read %s/%s: %w", bucket, c.Key, err)
		}
		out[c.Key] = b
	}
	return out, nil
}

// Keys returns the keys of bucket under prefix, without reading the objects
// (so a listing never races with a delete), sorted.
func (s *S3) Keys(bucket, prefix string) ([]string, error) {
	list, err := s.backend.ListBucket(bucket, &gofakes3.Prefix{}, gofakes3.ListBucketPage{})
	if err != nil {
		return nil, fmt.Errorf("embedded: list %q: %w", bucket, err)
	}
	var out []string
	for _, c := range list.Contents {
		if strings.HasPrefix(c.Key, prefix) {
			out = append(out, c.Key)
		}
	}
	sort.Strings(out)
	return out, nil
}

// Close stops the server, closes all connections and waits for the serving
// goroutine. It is safe to call more than once.
func (s *S3) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	err := s.srv.Close()
	<-s.served
	s.httpc.CloseIdleConnections()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// flatFs maps s3afero's layout (buckets/<bucket>/<key>, metadata/...) onto
// <root>/<bucket>/<key> and <root>/.meta/..., so that objects are plain files
// directly under the root.
type flatFs struct{ afero.Fs }

func (f flatFs) path(name string) string {
	clean := strings.TrimPrefix(filepath.ToSlash(filepath.Clean(name)), "/")
	switch {
	case clean == "buckets":
		return "/"
	case strings.HasPrefix(clean, "buckets/"):
		return "/" + strings.TrimPrefix(clean, "buckets/")
	default:
		return "/.meta/" + clean
	}
}

func (f flatFs) Create(name string) (afero.File, error) { return f.Fs.Create(f.path(name)) }
func (f flatFs) Mkdir(name string, perm os.FileMode) error {
	return f.Fs.Mkdir(f.path(name), perm)
}
func (f flatFs) MkdirAll(name string, perm os.FileMode) error {
	return f.Fs.MkdirAll(f.path(name), perm)
}
func (f flatFs) Open(name string) (afero.File, error) { return f.Fs.Open(f.path(name)) }
func (f flatFs) OpenFile(name string, flag int, perm os.FileMode) (afero.File, error) {
	return f.Fs.OpenFile(f.path(name), flag, perm)
}
func (f flatFs) Remove(name string) error    { return f.Fs.Remove(f.path(name)) }
func (f flatFs) RemoveAll(name string) error { return f.Fs.RemoveAll(f.path(name)) }
func (f flatFs) Rename(oldname, newname string) error {
	return f.Fs.Rename(f.path(oldname), f.path(newname))
}
func (f flatFs) Stat(name string) (os.FileInfo, error) { return f.Fs.Stat(f.path(name)) }
func (f flatFs) Chmod(name string, mode os.FileMode) error {
	return f.Fs.Chmod(f.path(name), mode)
}
func (f flatFs) Chown(name string, uid, gid int) error { return f.Fs.Chown(f.path(name), uid, gid) }
func (f flatFs) Chtimes(name string, atime, mtime time.Time) error {
	return f.Fs.Chtimes(f.path(name), atime, mtime)
}
func (f flatFs) Name() string { return "testenv-flat" }
