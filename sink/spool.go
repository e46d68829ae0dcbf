package sink

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/bits"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"hitship/sink/parquet"
)

// Spool defaults, used for zero fields of SpoolConfig.
const (
	DefaultSpoolMemoryBytes  = 32 << 20
	DefaultBufferMemoryBytes = 64 << 10
)

const (
	bufferFileSuffix = ".spool"
	objectFileSuffix = ".obj"
	minBufferAlloc   = 1 << 10
	// maxChunk is the largest chunk of a buffer's in-memory part. Chunks grow
	// from minBufferAlloc by doubling up to it, so a small buffer stays small
	// (1,000 tenants: thousands of buffers of a few KiB) and a big one grows
	// without ever copying what it holds.
	maxChunk = 64 << 10
)

// SpoolConfig sizes a Spool.
type SpoolConfig struct {
	// Dir holds the spill files. It is created if missing and must belong to
	// this spool alone: NewSpool locks it (SpoolLockFile) for the life of the
	// Spool, refuses a directory another process holds, and deletes the
	// *.spool and *.obj files in it.
	Dir string
	// MaxBytes is the disk budget: Full reports true at or above it so that the
	// caller pauses fetching. Writes are never refused because of it.
	// 0 means no limit.
	MaxBytes int64
	// MemoryBytes is the in-memory budget of all buffers and objects together
	// (default DefaultSpoolMemoryBytes). Past it, the largest in-memory parts
	// spill to disk.
	MemoryBytes int64
	// BufferMemoryBytes is how much of one buffer stays in memory before it
	// spills to its file (default DefaultBufferMemoryBytes).
	BufferMemoryBytes int64
}

// SpoolStats is a snapshot of a Spool's usage.
type SpoolStats struct {
	MemoryBytes  int64 // bytes held in memory by buffers and objects (capacity)
	DiskBytes    int64 // bytes in spill files
	Buffers      int64 // live buffers (neither finished nor discarded)
	Objects      int64 // live objects (not released)
	Files        int64 // spill files on disk
	StaleRemoved int   // files of a previous run removed by NewSpool
}

// evictable is an in-memory part that can move to disk.
type evictable interface {
	memSize() int64
	evict() error
}

// Spool owns the buffers and objects of one process and bounds their memory.
// All methods are safe for concurrent use.
type Spool struct {
	cfg SpoolConfig

	seq       atomic.Uint64
	memBytes  atomic.Int64
	diskBytes atomic.Int64
	buffers   atomic.Int64
	objects   atomic.Int64
	files     atomic.Int64
	stale     int

	mu   sync.Mutex // guards live
	live map[evictable]struct{}

	evictMu sync.Mutex // one evictor at a time
	gz      sync.Pool  // *gzip.Writer
	chunks  chunkPool  // chunks no object holds, for reuse

	lockMu sync.Mutex
	lock   *dirLock // nil after Close
}

// Dir is the spool's directory (temporary files of the Parquet encoder go
// there too).
func (s *Spool) Dir() string { return s.cfg.Dir }

// NewSpool creates cfg.Dir if needed, locks it and removes the spill files a
// previous run left there. If another process (or another open Spool) holds
// the directory, it returns a *SpoolLockedError (IsSpoolLocked) and touches
// nothing. The lock is held until Close, or the end of the process.
func NewSpool(cfg SpoolConfig) (*Spool, error) {
	if cfg.Dir == "" {
		return nil, invalidf("spool: Dir is required")
	}
	if cfg.MemoryBytes == 0 {
		cfg.MemoryBytes = DefaultSpoolMemoryBytes
	}
	if cfg.BufferMemoryBytes == 0 {
		cfg.BufferMemoryBytes = DefaultBufferMemoryBytes
	}
	if cfg.MaxBytes < 0 || cfg.MemoryBytes < 0 || cfg.BufferMemoryBytes < 0 {
		return nil, invalidf("spool: sizes must not be negative")
	}
	if cfg.BufferMemoryBytes > cfg.MemoryBytes {
		return nil, invalidf("spool: BufferMemoryBytes (%d) must not exceed MemoryBytes (%d)", cfg.BufferMemoryBytes, cfg.MemoryBytes)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("sink: spool: %w", err)
	}
	lock, err := lockDir(cfg.Dir)
	if err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(cfg.Dir)
	if err != nil {
		_ = lock.release()
		return nil, fmt.Errorf("sink: spool: %w", err)
	}
	s := &Spool{cfg: cfg, live: make(map[evictable]struct{}), lock: lock}
	for _, e := range entries {
		n := e.Name()
		// Spill files, and the runs and pages of a Parquet encoder that the
		// assembler gave this directory (a process killed mid-encoding
		// leaves them).
		if !e.Type().IsRegular() || !(strings.HasSuffix(n, bufferFileSuffix) || strings.HasSuffix(n, objectFileSuffix) ||
			strings.HasPrefix(n, parquet.TempPrefix)) {
			continue
		}
		if err := os.Remove(filepath.Join(cfg.Dir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			_ = lock.release()
			return nil, fmt.Errorf("sink: spool: removing stale file: %w", err)
		}
		s.stale++
	}
	return s, nil
}

// Close releases the directory: it removes SpoolLockFile and drops the lock,
// so that another Spool may take the directory. Call it after the last use
// of the spool's buffers and objects; their files are left as they are.
// Close is idempotent and safe for concurrent use.
func (s *Spool) Close() error {
	s.lockMu.Lock()
	defer s.lockMu.Unlock()
	err := s.lock.release()
	s.lock = nil
	if err != nil {
		return fmt.Errorf("sink: spool: releasing the lock: %w", err)
	}
	return nil
}

// spoolErr marks a failed disk operation of a buffer or object: it satisfies
// IsSpoolError and reads "sink: spool: <err>".
func spoolErr(err error) error { return fmt.Errorf("%w: %w", ErrSpool, err) }

// Check writes a file of size bytes in the spool directory, syncs it and
// removes it: whether the spool's disk takes writes now (after a disk-full
// error, before starting again). The error satisfies IsSpoolError.
func (s *Spool) Check(size int) error {
	path := s.newPath(".check" + bufferFileSuffix) // a stale one goes with the next NewSpool
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return spoolErr(err)
	}
	defer os.Remove(path)
	_, err = f.Write(make([]byte, size))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return spoolErr(err)
	}
	return nil
}

// Full reports whether the spill files reached MaxBytes: the caller should
// pause fetching until objects are released.
func (s *Spool) Full() bool {
	return s.cfg.MaxBytes > 0 && s.diskBytes.Load() >= s.cfg.MaxBytes
}

// Stats returns the current usage.
func (s *Spool) Stats() SpoolStats {
	return SpoolStats{
		MemoryBytes:  s.memBytes.Load(),
		DiskBytes:    s.diskBytes.Load(),
		Buffers:      s.buffers.Load(),
		Objects:      s.objects.Load(),
		Files:        s.files.Load(),
		StaleRemoved: s.stale,
	}
}

// NewBuffer starts an object in format f. It allocates nothing on disk until
// the buffer spills.
func (s *Spool) NewBuffer(f Format) *Buffer {
	return s.NewBufferWith(f, BufferOptions{})
}

// BufferOptions are what NewBufferWith may change about a buffer.
type BufferOptions struct {
	// MemoryBytes is how much of this buffer stays in memory before it
	// spills (0: SpoolConfig.BufferMemoryBytes; at most MemoryBytes of the
	// spool). The spool's memory budget still applies: under pressure the
	// largest parts spill first.
	MemoryBytes int64
	// Digest computes the finished object's SHA-256 as its bytes are
	// written (Object.SHA256), so that it is never read back to hash it.
	Digest bool
}

// NewBufferWith starts an object in format f with opts.
func (s *Spool) NewBufferWith(f Format, opts BufferOptions) *Buffer {
	b := &Buffer{s: s, format: f, limit: int(s.cfg.BufferMemoryBytes)}
	if opts.MemoryBytes > 0 {
		b.limit = int(min(opts.MemoryBytes, s.cfg.MemoryBytes))
	}
	if opts.Digest {
		b.digest = sha256.New()
	}
	s.buffers.Add(1)
	s.register(b)
	return b
}

func (s *Spool) register(e evictable) {
	s.mu.Lock()
	s.live[e] = struct{}{}
	s.mu.Unlock()
}

func (s *Spool) unregister(e evictable) {
	s.mu.Lock()
	delete(s.live, e)
	s.mu.Unlock()
}

func (s *Spool) newPath(suffix string) string {
	return filepath.Join(s.cfg.Dir, "hs-"+strconv.FormatUint(s.seq.Add(1), 10)+suffix)
}

// maybeEvict spills the largest in-memory parts until memory is at 3/4 of
// the budget. Callers must hold no buffer or object lock.
func (s *Spool) maybeEvict() error {
	if s.memBytes.Load() <= s.cfg.MemoryBytes {
		return nil
	}
	s.evictMu.Lock()
	defer s.evictMu.Unlock()
	if s.memBytes.Load() <= s.cfg.MemoryBytes {
		return nil
	}
	type cand struct {
		e    evictable
		size int64
	}
	s.mu.Lock()
	cands := make([]cand, 0, len(s.live))
	for e := range s.live {
		if n := e.memSize(); n > 0 {
			cands = append(cands, cand{e, n})
		}
	}
	s.mu.Unlock()
	sort.Slice(cands, func(i, j int) bool { return cands[i].size > cands[j].size })
	target := s.cfg.MemoryBytes / 4 * 3
	var errs []error
	for _, c := range cands {
		if s.memBytes.Load() <= target {
			break
		}
		if err := c.e.evict(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// appendFile appends data to path, creating it, and closes it again: a spool
// holds no file descriptor between calls however many buffers exist.
func (s *Spool) appendFile(path string, create bool, data ...[]byte) (int64, error) {
	flags := os.O_WRONLY | os.O_APPEND
	if create {
		flags |= os.O_CREATE | os.O_EXCL
	}
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		return 0, spoolErr(err)
	}
	if create {
		s.files.Add(1)
	}
	var n int64
	for _, d := range data {
		m, err := f.Write(d)
		n += int64(m)
		s.diskBytes.Add(int64(m))
		if err != nil {
			_ = f.Close()
			return n, spoolErr(err)
		}
	}
	if err := f.Close(); err != nil {
		return n, spoolErr(err)
	}
	return n, nil
}

func (s *Spool) removeFile(path string, size int64) {
	if path == "" {
		return
	}
	if err := os.Remove(path); err == nil {
		s.files.Add(-1)
		s.diskBytes.Add(-size)
	}
}

func (s *Spool) gzipWriter(w io.Writer) *gzip.Writer {
	if zw, ok := s.gz.Get().(*gzip.Writer); ok {
		zw.Reset(w)
		return zw
	}
	return gzip.NewWriter(w) // no name, zero mtime: deterministic header
}

// Buffer accumulates the encoded records of one object. One goroutine appends
// to it; Records, Bytes, Finish and Discard may be called from any goroutine.
//
// Its in-memory part is a list of chunks (see maxChunk), not one slice grown by
// doubling: growth copied every byte about once more (~14% of hitship's CPU in
// bench/e2e) and needed a fresh, zeroed allocation twice the size.
type Buffer struct {
	s      *Spool
	format Format
	limit  int       // bytes kept in memory before a spill
	digest hash.Hash // of every byte written, in order (BufferOptions.Digest); nil: none

	mu        sync.Mutex
	chunks    [][]byte // in-memory part, in order, accounted by cap in Spool.memBytes
	memLen    int      // bytes in chunks
	memCap    atomic.Int64
	path      string // spill file, "" until the first spill
	fileBytes int64
	records   int
	bytes     int64
	done      bool
	handed    bool  // an Object owns the chunks (Finish): they must not be reused
	err       error // sticky spill error
}

var (
	sepJSONFirst = []byte("[\n")
	sepJSON      = []byte(",\n")
	newline      = []byte("\n")
	space        = []byte(" ")
	trailerJSON  = []byte("\n]\n")
)

// Append adds one record, which must be a compact single-line JSON object
// (the caller compacts; an empty record or one containing '\n' is refused
// with an error satisfying IsInvalid and not appended). The bytes are copied.
// In steady state Append allocates nothing. A spill error (disk full) is
// sticky: the buffer must then be discarded and its records read again.
// Append may spill other buffers when the spool passes its memory budget.
func (b *Buffer) Append(rec []byte) error {
	if len(rec) == 0 || bytes.IndexByte(rec, '\n') >= 0 {
		return invalidf("record of %d bytes is empty or spans lines", len(rec))
	}
	if b.format.Parquet() {
		return invalidf("a Parquet buffer takes the file's bytes (Write), not records")
	}
	b.mu.Lock()
	if b.done {
		b.mu.Unlock()
		return ErrBufferDone
	}
	if b.err != nil {
		b.mu.Unlock()
		return b.err
	}
	var pre, post []byte
	switch {
	case b.format.Framing() == FormatNDJSON:
		post = newline
	case b.records == 0:
		pre = sepJSONFirst
	default:
		pre = sepJSON
	}
	err := b.writeLocked(pre, rec, post)
	if err == nil {
		b.records++
	}
	b.mu.Unlock()
	if err != nil {
		return err
	}
	// A buffer that fails to spill here keeps the error and reports it
	// itself; this record is in.
	_ = b.s.maybeEvict()
	return nil
}

// Write adds bytes of a Parquet buffer's file as they are (the encoder of
// sink/parquet writes through it); other buffers refuse it. Errors as
// Append's.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	if !b.format.Parquet() {
		b.mu.Unlock()
		return 0, invalidf("only a Parquet buffer takes raw bytes")
	}
	if b.done {
		b.mu.Unlock()
		return 0, ErrBufferDone
	}
	if b.err != nil {
		b.mu.Unlock()
		return 0, b.err
	}
	err := b.writeLocked(p)
	b.mu.Unlock()
	if err != nil {
		return 0, err
	}
	_ = b.s.maybeEvict()
	return len(p), nil
}

// AddRecords counts n records a Parquet buffer's file holds (Records and
// the Object's Records).
func (b *Buffer) AddRecords(n int) {
	b.mu.Lock()
	b.records += n
	b.mu.Unlock()
}

// AppendTagged adds one record of an NDJSON buffer as the line "tag record":
// the segments of staged delivery tag each record with its Kafka offset. The
// tag must not contain a space or a newline; the record follows Append's
// rules. Errors as Append's.
func (b *Buffer) AppendTagged(tag, rec []byte) error {
	if len(rec) == 0 || bytes.IndexByte(rec, '\n') >= 0 || len(tag) == 0 || bytes.IndexAny(tag, " \n") >= 0 {
		return invalidf("tagged record (tag of %d bytes, record of %d bytes) is empty or spans lines", len(tag), len(rec))
	}
	b.mu.Lock()
	if b.format.Framing() != FormatNDJSON {
		b.mu.Unlock()
		return invalidf("tagged records need an NDJSON buffer")
	}
	if b.done {
		b.mu.Unlock()
		return ErrBufferDone
	}
	if b.err != nil {
		b.mu.Unlock()
		return b.err
	}
	err := b.writeLocked(tag, space, rec, newline)
	if err == nil {
		b.records++
	}
	b.mu.Unlock()
	if err != nil {
		return err
	}
	_ = b.s.maybeEvict()
	return nil
}

// writeLocked appends the parts to the in-memory part, spilling when it would
// pass BufferMemoryBytes.
func (b *Buffer) writeLocked(parts ...[]byte) error {
	need := 0
	for _, p := range parts {
		need += len(p)
		if b.digest != nil {
			b.digest.Write(p)
		}
	}
	limit := b.limit
	if b.memLen+need > limit {
		if err := b.spillLocked(); err != nil {
			return err
		}
		if need > limit { // a record bigger than the in-memory part: straight to disk
			if err := b.appendToFile(parts...); err != nil {
				return err
			}
			b.bytes += int64(need)
			return nil
		}
	}
	for _, p := range parts {
		b.put(p, limit)
	}
	b.bytes += int64(need)
	return nil
}

// put copies p into the chunks, adding chunks as they fill.
func (b *Buffer) put(p []byte, limit int) {
	for len(p) > 0 {
		n := len(b.chunks)
		if n == 0 || len(b.chunks[n-1]) == cap(b.chunks[n-1]) {
			size := minBufferAlloc
			if n > 0 {
				size = min(2*cap(b.chunks[n-1]), maxChunk)
			}
			size = min(size, max(limit, minBufferAlloc))
			b.chunks = append(b.chunks, b.s.chunks.get(size))
			b.memCap.Add(int64(size))
			b.s.memBytes.Add(int64(size))
			n++
		}
		c := b.chunks[n-1]
		k := copy(c[len(c):cap(c)], p)
		b.chunks[n-1] = c[:len(c)+k]
		b.memLen += k
		p = p[k:]
	}
}

// freeChunks drops the in-memory part and keeps the spool's memory account.
// The chunks go back to the pool unless an object holds them (handed).
func (b *Buffer) freeChunks() {
	if !b.handed {
		for _, c := range b.chunks {
			b.s.chunks.put(c)
		}
	}
	b.s.memBytes.Add(-b.memCap.Load())
	b.memCap.Store(0)
	b.chunks, b.memLen = nil, 0
}

func (b *Buffer) appendToFile(parts ...[]byte) error {
	create := b.path == ""
	if create {
		b.path = b.s.newPath(bufferFileSuffix)
	}
	n, err := b.s.appendFile(b.path, create, parts...)
	b.fileBytes += n
	if err != nil {
		b.err = err
	}
	return err
}

// spillLocked moves the in-memory part to the buffer's file and frees it (its
// chunks go to the pool for the next buffers).
func (b *Buffer) spillLocked() error {
	if b.memLen == 0 {
		return nil
	}
	if err := b.appendToFile(b.chunks...); err != nil {
		return err
	}
	b.freeChunks()
	return nil
}

func (b *Buffer) memSize() int64 { return b.memCap.Load() }

// evict spills the in-memory part (memory pressure).
func (b *Buffer) evict() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done || b.err != nil {
		return nil
	}
	return b.spillLocked()
}

// Records returns the number of records appended.
func (b *Buffer) Records() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.records
}

// Bytes returns the encoded size so far (without the JSON trailer, before
// compression).
func (b *Buffer) Bytes() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.bytes
}

// Discard drops the buffer and frees its memory and file. It is idempotent
// and a no-op after Finish.
func (b *Buffer) Discard() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return
	}
	b.discardLocked()
}

func (b *Buffer) closeLocked() {
	b.done = true
	b.freeChunks()
	b.s.unregister(b)
	b.s.buffers.Add(-1)
}

// Finish writes the trailer, compresses if asked and returns the immutable
// object. The buffer is done afterwards, whether Finish succeeded or not.
// Gzip output is deterministic for a given build: no name, zero mtime.
func (b *Buffer) Finish(c Compression) (*Object, error) {
	if !c.valid() {
		return nil, invalidf("unknown compression %d", int(c))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return nil, ErrBufferDone
	}
	if b.err != nil {
		b.discardLocked()
		return nil, b.err
	}
	o := &Object{
		ContentType:     b.format.ContentType(),
		ContentEncoding: c.ContentEncoding(),
		Records:         b.records,
		Format:          b.format,
		Compression:     c,
		s:               b.s,
	}
	var err error
	if b.format.Framing() == FormatJSON {
		if b.records == 0 {
			err = b.writeLocked(sepJSONFirst, trailerJSON)
		} else {
			err = b.writeLocked(trailerJSON)
		}
	}
	if err == nil {
		switch {
		case c == CompressionNone && b.path == "":
			o.sum = b.sum()
			o.chunks = b.chunks
			b.handed = true
			o.size = int64(b.memLen)
			o.memCap.Store(b.memCap.Load())
			b.s.memBytes.Add(b.memCap.Load()) // the object's share; closeLocked subtracts the buffer's
		case c == CompressionNone:
			o.sum = b.sum()
			if err = b.spillLocked(); err == nil {
				o.path, o.size = b.path, b.fileBytes
				b.path = "" // the object owns the file now
			}
		case b.path == "":
			var out bytes.Buffer
			var w io.Writer = &out
			var h hash.Hash
			if b.digest != nil {
				h = sha256.New()
				w = io.MultiWriter(&out, h)
			}
			zw := b.s.gzipWriter(w)
			for _, c := range b.chunks {
				if _, err = zw.Write(c); err != nil {
					break
				}
			}
			if err == nil {
				err = zw.Close()
			}
			b.s.gz.Put(zw)
			if err == nil {
				data := out.Bytes()
				if h != nil {
					o.sum = hex.EncodeToString(h.Sum(nil))
				}
				o.chunks = [][]byte{data}
				o.size = int64(len(data))
				o.memCap.Store(int64(cap(data)))
				b.s.memBytes.Add(int64(cap(data)))
			}
		default:
			if err = b.spillLocked(); err == nil {
				o.path, o.size, o.sum, err = b.gzipFile()
			}
		}
	}
	b.discardLocked()
	if err != nil {
		return nil, err
	}
	b.s.objects.Add(1)
	if o.chunks != nil {
		b.s.register(o)
	}
	return o, nil
}

// discardLocked closes the buffer and removes its file unless an object took it.
func (b *Buffer) discardLocked() {
	b.closeLocked()
	b.s.removeFile(b.path, b.fileBytes)
	b.path = ""
}

func (b *Buffer) gzipFile() (path string, size int64, sum string, err error) {
	in, err := os.Open(b.path)
	if err != nil {
		return "", 0, "", spoolErr(err)
	}
	defer in.Close()
	path = b.s.newPath(objectFileSuffix)
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", 0, "", spoolErr(err)
	}
	b.s.files.Add(1)
	var w io.Writer = out
	var h hash.Hash
	if b.digest != nil {
		h = sha256.New()
		w = io.MultiWriter(out, h)
	}
	cw := &countWriter{w: w}
	bw := bufio.NewWriterSize(cw, 64<<10)
	zw := b.s.gzipWriter(bw)
	_, err = io.Copy(zw, in)
	if err == nil {
		err = zw.Close()
	}
	b.s.gz.Put(zw)
	if err == nil {
		err = bw.Flush()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	b.s.diskBytes.Add(cw.n)
	if err != nil {
		b.s.removeFile(path, cw.n)
		return "", 0, "", spoolErr(fmt.Errorf("gzip: %w", err))
	}
	if h != nil {
		sum = hex.EncodeToString(h.Sum(nil))
	}
	return path, cw.n, sum, nil
}

// sum is the hex SHA-256 of what was written, "" without a digest.
func (b *Buffer) sum() string {
	if b.digest == nil {
		return ""
	}
	return hex.EncodeToString(b.digest.Sum(nil))
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Object is a finished, immutable object: in memory when small, else a spill
// file. It can be opened any number of times, concurrently, until Release, so
// retries never need Kafka again. It implements Body.
type Object struct {
	ContentType     string
	ContentEncoding string // "" or "gzip"
	Records         int
	Format          Format
	Compression     Compression

	s        *Spool
	size     int64
	sum      string       // hex SHA-256 of the bytes, "" unless the buffer computed it
	memCap   atomic.Int64 // the chunks' capacity, read by the evictor without mu
	mu       sync.Mutex
	chunks   [][]byte // in memory: the bytes in order; nil when on disk
	path     string
	released bool
}

var _ Body = (*Object)(nil)

// Size returns the object's size in bytes (after compression).
func (o *Object) Size() int64 { return o.size }

// SHA256 returns the hex SHA-256 of the object's bytes when its buffer
// computed it (BufferOptions.Digest), else "".
func (o *Object) SHA256() string { return o.sum }

// Open returns a new reader of the object's bytes. Safe for concurrent use.
func (o *Object) Open() (io.ReadSeekCloser, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.released {
		return nil, ErrReleased
	}
	if o.path == "" {
		return newChunkReader(o.chunks, o.size), nil
	}
	f, err := os.Open(o.path)
	if err != nil {
		return nil, spoolErr(err)
	}
	return f, nil
}

// Release frees the object's memory or file. Readers already open stay
// valid. Idempotent; safe for concurrent use.
func (o *Object) Release() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.released {
		return
	}
	o.released = true
	if o.chunks != nil {
		o.s.memBytes.Add(-o.memCap.Load())
		o.memCap.Store(0)
		o.chunks = nil
		o.s.unregister(o)
	}
	o.s.removeFile(o.path, o.size)
	o.path = ""
	o.s.objects.Add(-1)
}

func (o *Object) memSize() int64 { return o.memCap.Load() }

// evict writes an in-memory object to a file (memory pressure).
func (o *Object) evict() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.released || o.chunks == nil {
		return nil
	}
	path := o.s.newPath(objectFileSuffix)
	if n, err := o.s.appendFile(path, true, o.chunks...); err != nil {
		o.s.removeFile(path, n)
		return err
	}
	o.s.memBytes.Add(-o.memCap.Load())
	o.memCap.Store(0)
	o.chunks = nil
	o.path = path
	o.s.unregister(o)
	return nil
}

// chunkReader reads an in-memory object's chunks as one stream. It is a
// ReadSeeker (retries and checksums read the body again), a ReaderAt (parts of
// a multipart upload) and a WriterTo (io.Copy without an extra buffer).
type chunkReader struct {
	chunks [][]byte
	size   int64
	pos    int64
}

func newChunkReader(chunks [][]byte, size int64) *chunkReader {
	return &chunkReader{chunks: chunks, size: size}
}

// locate returns the chunk holding offset off and the offset within it.
func (r *chunkReader) locate(off int64) (int, int) {
	for i, c := range r.chunks {
		if off < int64(len(c)) {
			return i, int(off)
		}
		off -= int64(len(c))
	}
	return len(r.chunks), 0
}

func (r *chunkReader) ReadAt(p []byte, off int64) (int, error) {
	if off < 0 {
		return 0, errors.New("sink: negative offset")
	}
	if off >= r.size {
		return 0, io.EOF
	}
	n := 0
	i, at := r.locate(off)
	for ; n < len(p) && i < len(r.chunks); i, at = i+1, 0 {
		n += copy(p[n:], r.chunks[i][at:])
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (r *chunkReader) Read(p []byte) (int, error) {
	if r.pos >= r.size {
		return 0, io.EOF
	}
	n, _ := r.ReadAt(p, r.pos)
	r.pos += int64(n)
	return n, nil
}

func (r *chunkReader) WriteTo(w io.Writer) (int64, error) {
	var total int64
	i, at := r.locate(r.pos)
	for ; i < len(r.chunks); i, at = i+1, 0 {
		n, err := w.Write(r.chunks[i][at:])
		total += int64(n)
		r.pos += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func (r *chunkReader) Seek(offset int64, whence int) (int64, error) {
	offset, err := seekTo(offset, whence, r.pos, r.size)
	if err != nil {
		return 0, err
	}
	r.pos = offset
	return offset, nil
}

func (r *chunkReader) Close() error { return nil }

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

// chunkPool keeps the chunks that buffers dropped (spilled, discarded, or
// compressed into an object), by power-of-two capacity, so that a buffer's
// next chunk reuses one instead of allocating and zeroing: a buffer's chunks
// are written and read only under its lock and never escape it unless an
// Object takes them, and then they are not returned here (an HTTP transport
// may still read a request body after the request returned). Memory in the
// pool is not counted in the spool's budget; the GC empties it.
type chunkPool struct {
	classes [chunkClasses]sync.Pool // *[]byte of capacity minBufferAlloc << i
}

const chunkClasses = 7 // 1 KiB .. maxChunk (64 KiB)

// chunkClass returns the class of capacity c, or -1 when c is not a pooled size.
func chunkClass(c int) int {
	if c < minBufferAlloc || c&(c-1) != 0 {
		return -1
	}
	i := bits.TrailingZeros(uint(c)) - bits.TrailingZeros(uint(minBufferAlloc))
	if i >= chunkClasses {
		return -1
	}
	return i
}

// get returns an empty slice of capacity c; its bytes are unspecified.
func (p *chunkPool) get(c int) []byte {
	if i := chunkClass(c); i >= 0 {
		if m, ok := p.classes[i].Get().(*[]byte); ok {
			return (*m)[:0]
		}
	}
	return make([]byte, 0, c)
}

func (p *chunkPool) put(m []byte) {
	if i := chunkClass(cap(m)); i >= 0 {
		m = m[:0]
		p.classes[i].Put(&m)
	}
}
