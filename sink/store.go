package sink

import (
	"context"
	"fmt"
	"io"
	"maps"
	"sort"
	"sync"
)

// Body is what a Store uploads: re-openable so that a retry re-reads the
// spool, never Kafka. *Object implements it.
type Body interface {
	Open() (io.ReadSeekCloser, error)
	Size() int64
}

// PutOptions are the headers of one Put.
type PutOptions struct {
	ContentType     string
	ContentEncoding string
	// IfNoneMatch asks for a conditional write (If-None-Match: *): an existing
	// object is left alone and Put returns an error satisfying IsAlreadyExists.
	IfNoneMatch bool
	// Metadata is written as S3 user metadata (x-amz-meta-<key>: value); keys
	// are lower-case ASCII letters, digits and '-', values printable ASCII.
	// hitship sets it on its own parking bucket only, never on a customer's
	// object.
	Metadata map[string]string
}

// Store writes objects. It is declared here, where objects are produced, so
// that the delivery can run against S3 or memory alike; every implementation
// passes sink/storetest.Acceptance.
//
// Put blocks until the object is stored or the attempt failed; it does not
// retry. It is safe for concurrent use.
type Store interface {
	Put(ctx context.Context, key string, obj Body, opts PutOptions) error
}

var _ Store = (*MemStore)(nil)

// BytesBody is a Body over a byte slice (tests, the test integration).
type BytesBody []byte

// Open returns a reader of the bytes.
func (b BytesBody) Open() (io.ReadSeekCloser, error) {
	return newChunkReader([][]byte{b}, int64(len(b))), nil
}

// Size returns len(b).
func (b BytesBody) Size() int64 { return int64(len(b)) }

// MemObject is an object held by a MemStore.
type MemObject struct {
	Data            []byte
	ContentType     string
	ContentEncoding string
	Metadata        map[string]string
}

// MemStore is an in-memory Store for tests and the demo. It honours
// IfNoneMatch and can be told to fail. Safe for concurrent use.
type MemStore struct {
	mu      sync.Mutex
	objects map[string]MemObject
	fail    func(key string) error
	puts    int
}

// NewMemStore returns an empty MemStore.
func NewMemStore() (*MemStore, error) {
	return &MemStore{objects: make(map[string]MemObject)}, nil
}

// Put stores a copy of obj's bytes under key.
func (m *MemStore) Put(ctx context.Context, key string, obj Body, opts PutOptions) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sink: mem put %s: %w", key, err)
	}
	r, err := obj.Open()
	if err != nil {
		return fmt.Errorf("sink: mem put %s: %w", key, err)
	}
	data, err := io.ReadAll(r)
	_ = r.Close()
	if err != nil {
		return fmt.Errorf("sink: mem put %s: %w", key, err)
	}
	if int64(len(data)) != obj.Size() {
		return fmt.Errorf("sink: mem put %s: body has %d bytes, Size says %d", key, len(data), obj.Size())
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sink: mem put %s: %w", key, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.puts++
	if m.fail != nil {
		if err := m.fail(key); err != nil {
			return fmt.Errorf("sink: mem put %s: %w", key, err)
		}
	}
	if _, ok := m.objects[key]; ok && opts.IfNoneMatch {
		return &StoreError{Op: "PutObject", Bucket: "mem", Key: key, StatusCode: 412, Code: "PreconditionFailed", Err: ErrAlreadyExists}
	}
	m.objects[key] = MemObject{Data: data, ContentType: opts.ContentType, ContentEncoding: opts.ContentEncoding, Metadata: maps.Clone(opts.Metadata)}
	return nil
}

// Get returns the object under key.
func (m *MemStore) Get(key string) (MemObject, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.objects[key]
	return o, ok
}

// Keys returns the stored keys, sorted.
func (m *MemStore) Keys() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	keys := make([]string, 0, len(m.objects))
	for k := range m.objects {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// Puts returns how many Put calls reached the store (failed ones included).
func (m *MemStore) Puts() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.puts
}

// SetFail makes every later Put call fn(key) and fail with its error when it
// is not nil (wrapped, so predicates such as IsAccessDenied see through when
// fn returns a *StoreError). nil clears it.
func (m *MemStore) SetFail(fn func(key string) error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fail = fn
}
