package sink

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
)

// SpoolConfig sizes a Spool.
type SpoolConfig struct {
	// Dir holds the spill files. It is created if missing and must belong to
	// this spool alone: NewSpool deletes the *.spool and *.obj files in it.
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
	tails   tailPool   // in-memory tails no object holds, for reuse
}

// NewSpool creates cfg.Dir if needed and removes the spill files a previous
// run left there.
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
	entries, err := os.ReadDir(cfg.Dir)
	if err != nil {
		return nil, fmt.Errorf("sink: spool: %w", err)
	}
	s := &Spool{cfg: cfg, live: make(map[evictable]struct{})}
	for _, e := range entries {
		n := e.Name()
		if !e.Type().IsRegular() || !(strings.HasSuffix(n, bufferFileSuffix) || strings.HasSuffix(n, objectFileSuffix)) {
			continue
		}
		if err := os.Remove(filepath.Join(cfg.Dir, n)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("sink: spool: removing stale file: %w", err)
		}
		s.stale++
	}
	return s, nil
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
	b := &Buffer{s: s, format: f}
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
		return 0, fmt.Errorf("sink: spool: %w", err)
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
			return n, fmt.Errorf("sink: spool: %w", err)
		}
	}
	if err := f.Close(); err != nil {
		return n, fmt.Errorf("sink: spool: %w", err)
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
type Buffer struct {
	s      *Spool
	format Format

	mu        sync.Mutex
	mem       []byte // in-memory tail, accounted by cap in Spool.memBytes
	memCap    atomic.Int64
	path      string // spill file, "" until the first spill
	fileBytes int64
	records   int
	bytes     int64
	done      bool
	handed    bool  // an Object owns mem (Finish): it must not be reused
	err       error // sticky spill error
}

var (
	sepJSONFirst = []byte("[\n")
	sepJSON      = []byte(",\n")
	newline      = []byte("\n")
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
	case b.format == FormatNDJSON:
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

// writeLocked appends the parts to the in-memory tail, spilling when the
// tail would pass BufferMemoryBytes.
func (b *Buffer) writeLocked(parts ...[]byte) error {
	need := 0
	for _, p := range parts {
		need += len(p)
	}
	limit := int(b.s.cfg.BufferMemoryBytes)
	if len(b.mem)+need > limit {
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
	if len(b.mem)+need > cap(b.mem) {
		b.growLocked(len(b.mem)+need, limit)
	}
	for _, p := range parts {
		b.mem = append(b.mem, p...)
	}
	b.bytes += int64(need)
	return nil
}

func (b *Buffer) growLocked(want, limit int) {
	c := max(2*cap(b.mem), minBufferAlloc, want)
	if c > limit {
		c = max(limit, want)
	}
	m := b.s.tails.get(c)[:len(b.mem)]
	copy(m, b.mem)
	b.setMem(m)
}

// setMem replaces the tail and keeps the spool's memory account. The old tail
// goes back to the pool unless an object holds it (handed).
func (b *Buffer) setMem(m []byte) {
	old := b.mem
	b.mem = m
	b.memCap.Store(int64(cap(m)))
	b.s.memBytes.Add(int64(cap(m)) - int64(cap(old)))
	if !b.handed {
		b.s.tails.put(old)
	}
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

// spillLocked moves the in-memory tail to the buffer's file, keeping the
// allocation for reuse.
func (b *Buffer) spillLocked() error {
	if len(b.mem) == 0 {
		return nil
	}
	if err := b.appendToFile(b.mem); err != nil {
		return err
	}
	b.mem = b.mem[:0]
	return nil
}

func (b *Buffer) memSize() int64 { return b.memCap.Load() }

// evict spills the tail and frees its allocation (memory pressure).
func (b *Buffer) evict() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done || b.err != nil {
		return nil
	}
	if err := b.spillLocked(); err != nil {
		return err
	}
	b.setMem(nil)
	return nil
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
	b.setMem(nil)
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
	if b.format == FormatJSON {
		if b.records == 0 {
			err = b.writeLocked(sepJSONFirst, trailerJSON)
		} else {
			err = b.writeLocked(trailerJSON)
		}
	}
	if err == nil {
		switch {
		case c == CompressionNone && b.path == "":
			o.data = b.mem
			b.handed = true
			o.size = int64(len(b.mem))
			b.s.memBytes.Add(int64(cap(b.mem))) // the object's share; closeLocked subtracts the buffer's
		case c == CompressionNone:
			if err = b.spillLocked(); err == nil {
				o.path, o.size = b.path, b.fileBytes
				b.path = "" // the object owns the file now
			}
		case b.path == "":
			var out bytes.Buffer
			zw := b.s.gzipWriter(&out)
			if _, err = zw.Write(b.mem); err == nil {
				err = zw.Close()
			}
			b.s.gz.Put(zw)
			if err == nil {
				o.data = out.Bytes()
				o.size = int64(len(o.data))
				b.s.memBytes.Add(int64(cap(o.data)))
			}
		default:
			if err = b.spillLocked(); err == nil {
				o.path, o.size, err = b.gzipFile()
			}
		}
	}
	b.discardLocked()
	if err != nil {
		return nil, err
	}
	b.s.objects.Add(1)
	if o.data != nil {
		o.memCap.Store(int64(cap(o.data)))
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

func (b *Buffer) gzipFile() (path string, size int64, err error) {
	in, err := os.Open(b.path)
	if err != nil {
		return "", 0, fmt.Errorf("sink: spool: %w", err)
	}
	defer in.Close()
	path = b.s.newPath(objectFileSuffix)
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", 0, fmt.Errorf("sink: spool: %w", err)
	}
	b.s.files.Add(1)
	cw := &countWriter{w: out}
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
		return "", 0, fmt.Errorf("sink: spool: gzip: %w", err)
	}
	return path, cw.n, nil
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
	memCap   atomic.Int64 // cap(data), read by the evictor without mu
	mu       sync.Mutex
	data     []byte
	path     string
	released bool
}

var _ Body = (*Object)(nil)

// Size returns the object's size in bytes (after compression).
func (o *Object) Size() int64 { return o.size }

// Open returns a new reader of the object's bytes. Safe for concurrent use.
func (o *Object) Open() (io.ReadSeekCloser, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.released {
		return nil, ErrReleased
	}
	if o.path == "" {
		return nopCloser{bytes.NewReader(o.data)}, nil
	}
	f, err := os.Open(o.path)
	if err != nil {
		return nil, fmt.Errorf("sink: spool: %w", err)
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
	if o.data != nil {
		o.s.memBytes.Add(-int64(cap(o.data)))
		o.memCap.Store(0)
		o.data = nil
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
	if o.released || o.data == nil {
		return nil
	}
	path := o.s.newPath(objectFileSuffix)
	if n, err := o.s.appendFile(path, true, o.data); err != nil {
		o.s.removeFile(path, n)
		return err
	}
	o.s.memBytes.Add(-int64(cap(o.data)))
	o.memCap.Store(0)
	o.data = nil
	o.path = path
	o.s.unregister(o)
	return nil
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// tailPool keeps the in-memory tails that buffers dropped (grown past,
// spilled under memory pressure, discarded, or compressed into an object), by
// power-of-two capacity, so that a new buffer's growth reuses them instead of
// allocating and zeroing: a buffer's tail is written and read only under its
// lock and never escapes it unless an Object takes it, and then it is not
// returned here. Memory in the pool is not counted in the spool's budget; the
// GC empties it.
type tailPool struct {
	classes [tailClasses]sync.Pool // *[]byte of capacity minBufferAlloc << i
}

const tailClasses = 12 // 1 KiB .. 2 MiB

// tailClass returns the class of capacity c, or -1 when c is not a pooled size.
func tailClass(c int) int {
	if c < minBufferAlloc || c&(c-1) != 0 {
		return -1
	}
	i := bits.TrailingZeros(uint(c)) - bits.TrailingZeros(uint(minBufferAlloc))
	if i >= tailClasses {
		return -1
	}
	return i
}

// get returns an empty slice of capacity c; its bytes are unspecified.
func (p *tailPool) get(c int) []byte {
	if i := tailClass(c); i >= 0 {
		if m, ok := p.classes[i].Get().(*[]byte); ok {
			return (*m)[:0]
		}
	}
	return make([]byte, 0, c)
}

func (p *tailPool) put(m []byte) {
	if i := tailClass(cap(m)); i >= 0 {
		m = m[:0]
		p.classes[i].Put(&m)
	}
}
