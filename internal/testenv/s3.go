package testenv

import (
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"hitship/internal/embedded"
)

// S3 region, access key and secret the harness expects from clients
// (embedded.S3Region, S3AccessKey, S3SecretKey).
const (
	S3Region    = embedded.S3Region
	S3AccessKey = embedded.S3AccessKey
	S3SecretKey = embedded.S3SecretKey
)

// S3Options configures StartS3 (embedded.S3Options; its Wrap, if set, is
// applied inside the fault injection).
type S3Options = embedded.S3Options

// S3 is the embedded S3 (embedded.S3: URL, ClientOptions, Client, Objects,
// Close) with fault injection on top: FailBucket makes every request to one
// bucket answer an HTTP status with an S3 XML error until HealBucket. All
// methods are safe for concurrent use.
type S3 struct {
	*embedded.S3

	mu     sync.Mutex
	faults map[string]int
}

// StartS3 starts the server (embedded.StartS3). The caller must Close it.
func StartS3(opts S3Options) (*S3, error) {
	s := &S3{faults: make(map[string]int)}
	wrap := opts.Wrap
	opts.Wrap = func(h http.Handler) http.Handler {
		if wrap != nil {
			h = wrap(h)
		}
		return s.faultHandler(h)
	}
	e, err := embedded.StartS3(opts)
	if err != nil {
		return nil, err
	}
	s.S3 = e
	return s, nil
}

// FailBucket makes every request to bucket answer status with an S3 XML
// error (code derived from status: 403 AccessDenied, 404 NoSuchBucket,
// 503 SlowDown, ...), until HealBucket.
func (s *S3) FailBucket(bucket string, status int) {
	s.mu.Lock()
	s.faults[bucket] = status
	s.mu.Unlock()
}

// HealBucket removes the fault set by FailBucket.
func (s *S3) HealBucket(bucket string) {
	s.mu.Lock()
	delete(s.faults, bucket)
	s.mu.Unlock()
}

// s3Error is the XML body of an S3 error response.
type s3Error struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	Resource  string   `xml:"Resource"`
	RequestID string   `xml:"RequestId"`
}

// errorCode maps an HTTP status to the S3 error code a real S3 would most
// likely send with it.
func errorCode(status int) string {
	switch status {
	case http.StatusMovedPermanently:
		return "PermanentRedirect"
	case http.StatusBadRequest:
		return "InvalidRequest"
	case http.StatusForbidden:
		return "AccessDenied"
	case http.StatusNotFound:
		return "NoSuchBucket"
	case http.StatusConflict:
		return "OperationAborted"
	case http.StatusPreconditionFailed:
		return "PreconditionFailed"
	case http.StatusServiceUnavailable:
		return "SlowDown"
	default:
		return "InternalError"
	}
}

func (s *S3) faultHandler(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		bucket, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
		s.mu.Lock()
		status, failing := s.faults[bucket]
		s.mu.Unlock()
		if !failing || bucket == "" {
			next.ServeHTTP(w, r)
			return
		}
		// Drain a (bounded) body so the client reads our answer rather than
		// a reset connection.
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 64<<20))
		body, _ := xml.Marshal(s3Error{
			Code:      errorCode(status),
			Message:   fmt.Sprintf("testenv: bucket %s fails with %d", bucket, status),
			Resource:  r.URL.Path,
			RequestID: "testenv-fault",
		})
		w.Header().Set("Content-Type", "application/xml")
		w.Header().Set("x-amz-request-id", "testenv-fault")
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			_, _ = w.Write(append([]byte(xml.Header), body...))
		}
	})
}
