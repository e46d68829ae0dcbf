package parquet

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"

	pq "github.com/parquet-go/parquet-go"

	"hitship/hit"
)

// Defaults of Options.
const (
	DefaultMemoryBytes   = 64 << 20
	DefaultPageBytes     = 1 << 20
	DefaultRowGroupBytes = 256 << 20
)

// CreatedBy is the file's created_by: a constant, so that equal records give
// equal bytes whatever the build.
const CreatedBy = "hitship"

// ContentType is the Content-Type of a Parquet object.
const ContentType = "application/vnd.apache.parquet"

// maxDepth is the nesting Add accepts (hit.Scan's limit for the check).
const maxDepth = 10000

// Options tune an Encoder. The zero value takes the defaults. Only PageBytes
// and RowGroupBytes change the bytes written; MemoryBytes and TempDir never
// do.
type Options struct {
	// MemoryBytes bounds the records held for sorting (default 64 MiB); above
	// it they are sorted and spilled to a run file in TempDir.
	MemoryBytes int
	// TempDir holds the run files and, for inputs above MemoryBytes, the
	// compressed pages of the row group being written (default os.TempDir()).
	TempDir string
	// PageBytes bounds a data page's uncompressed size (default 1 MiB). A
	// single value larger than that makes a page of its own.
	PageBytes int
	// RowGroupBytes bounds a row group's compressed size (default 256 MiB).
	// A single row larger than that makes a row group of its own.
	RowGroupBytes int
}

func (o Options) withDefaults() (Options, error) {
	if o.MemoryBytes < 0 || o.PageBytes < 0 || o.RowGroupBytes < 0 {
		return o, fmt.Errorf("parquet: negative size in options: %w", ErrInvalid)
	}
	if o.MemoryBytes == 0 {
		o.MemoryBytes = DefaultMemoryBytes
	}
	if o.PageBytes == 0 {
		o.PageBytes = DefaultPageBytes
	}
	if o.RowGroupBytes == 0 {
		o.RowGroupBytes = DefaultRowGroupBytes
	}
	if o.TempDir == "" {
		o.TempDir = os.TempDir()
	}
	if o.PageBytes < 1024 {
		return o, fmt.Errorf("parquet: page size %d below 1 KiB: %w", o.PageBytes, ErrInvalid)
	}
	if o.RowGroupBytes < o.PageBytes {
		return o, fmt.Errorf("parquet: row group size %d below the page size %d: %w", o.RowGroupBytes, o.PageBytes, ErrInvalid)
	}
	return o, nil
}

// TempPrefix starts the name of every temporary file an Encoder makes in
// TempDir (its sorted runs and the pages of an open row group), so that the
// owner of the directory can remove what a killed process left.
const TempPrefix = "hitship-parquet-"

// Stats describes what an Encoder did.
type Stats struct {
	Records   int64 // records added
	Runs      int   // sorted runs spilled to TempDir (0: sorted in memory)
	RunBytes  int64 // bytes written to run files
	RowGroups int   // row groups written
}

// Encoder writes records as one Parquet file, ordered by time. Add the
// records, then Finish; Discard instead releases its temporary files
// without writing. An Encoder is used by one goroutine.
type Encoder struct {
	w     io.Writer
	s     *Schema
	opts  Options
	arena arena
	ents  []entry
	// arenaMax and entsMax split MemoryBytes between record bytes and
	// their entries.
	arenaMax int
	entsMax  int
	runs     []string
	total    int64 // record bytes added
	stats    Stats
	done     bool
	// batch is the rows written to parquet-go at once (batchRows; tests
	// set 1 to compare with writing row by row).
	batch int
}

// NewEncoder returns an Encoder writing a Parquet file of schema s to w.
func NewEncoder(w io.Writer, s *Schema, opts Options) (*Encoder, error) {
	if w == nil || s == nil {
		return nil, fmt.Errorf("parquet: encoder needs a writer and a schema: %w", ErrInvalid)
	}
	opts, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	arenaMax := opts.MemoryBytes - opts.MemoryBytes/8
	return &Encoder{
		w: w, s: s, opts: opts,
		arena:    arena{chunkSize: min(arenaChunk, max(arenaMax, 1))},
		arenaMax: arenaMax,
		entsMax:  max(1, opts.MemoryBytes/8/entrySize),
		batch:    batchRows,
	}, nil
}

// ErrRecord marks a record that is not a JSON object; Add refuses it and the
// Encoder stays usable. Records come validated from staging, so this is a
// caller's bug, not a bad hit.
var ErrRecord = errors.New("parquet: record is not a JSON object")

// Add copies rec (one JSON object) into the encoder. seq orders records of
// equal time (for example the record's rank in (partition, offset) order);
// records of equal time and seq keep the order they were added in. Add may
// block on writing a sorted run to TempDir.
func (e *Encoder) Add(rec []byte, seq uint64) error {
	if e.done {
		return fmt.Errorf("parquet: add after finish: %w", ErrInvalid)
	}
	if _, err := hit.Scan(rec, maxDepth); err != nil {
		return fmt.Errorf("%w: %w", ErrRecord, err)
	}
	return e.add(rec, seq)
}

// AddValues is Add for a record given as column values (see Values): its
// row is the one Add makes of the JSON object with those values. The values
// are copied; v may be reset and reused after the call.
func (e *Encoder) AddValues(v *Values, seq uint64) error {
	if e.done {
		return fmt.Errorf("parquet: add after finish: %w", ErrInvalid)
	}
	if v.s != e.s {
		return fmt.Errorf("parquet: values of schema %s for an encoder of %s: %w", v.s.spec.Name, e.s.spec.Name, ErrInvalid)
	}
	if v.err == nil && v.left > 0 {
		v.fail(v.list, "%d elements of the list still due", v.left)
	}
	if v.err != nil {
		return v.err
	}
	return e.addTimed(v.b, v.time, seq)
}

func (e *Encoder) add(rec []byte, seq uint64) error {
	rec = bytes.TrimSpace(rec)
	return e.addTimed(rec, e.s.sortTime(rec), seq)
}

func (e *Encoder) addTimed(rec []byte, time int64, seq uint64) error {
	if len(e.ents) > 0 && (e.arena.held+e.arena.need(len(rec)) > e.arenaMax || len(e.ents) >= e.entsMax) {
		if err := e.spill(); err != nil {
			return err
		}
	}
	e.ents = append(e.ents, entry{time: time, seq: seq, idx: uint64(e.stats.Records), rec: e.arena.copy(rec)})
	e.stats.Records++
	e.total += int64(len(rec))
	return nil
}

func (e *Encoder) runBuf() int { return min(max(e.opts.MemoryBytes/(2*mergeFanIn), 4<<10), 256<<10) }

// spill sorts the buffered records and writes them as a run file.
func (e *Encoder) spill() error {
	slices.SortFunc(e.ents, compareEntries)
	path, n, err := writeRun(e.opts.TempDir, e.ents, e.runBuf())
	if err != nil {
		return fmt.Errorf("parquet: spill a sorted run: %w", err)
	}
	e.runs = append(e.runs, path)
	e.stats.Runs++
	e.stats.RunBytes += n
	clear(e.ents)
	e.ents = e.ents[:0]
	e.arena.reset()
	return nil
}

// Finish sorts the records, writes the Parquet file to w and removes the
// temporary files. It blocks until the file is written; ctx is checked
// between records. It returns the first error of the writer, the temporary
// files or ctx; after an error the output is incomplete.
func (e *Encoder) Finish(ctx context.Context) error {
	if e.done {
		return fmt.Errorf("parquet: finish twice: %w", ErrInvalid)
	}
	e.done = true
	defer e.Discard()
	pw := e.newWriter()
	if len(e.runs) == 0 {
		slices.SortFunc(e.ents, compareEntries)
		for i, en := range e.ents {
			if i%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			if err := pw.write(en.rec); err != nil {
				return err
			}
		}
	} else {
		if len(e.ents) > 0 {
			if err := e.spill(); err != nil {
				return err
			}
		}
		e.arena.release() // the merge needs only its buffers
		e.ents = nil
		runs, err := reduceRuns(e.opts.TempDir, e.runs, e.runBuf())
		e.runs = runs
		if err != nil {
			return fmt.Errorf("parquet: merge sorted runs: %w", err)
		}
		n := 0
		err = mergeRuns(runs, e.runBuf(), func(_ int64, _, _ uint64, rec []byte) error {
			if n++; n%1024 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			return pw.writeCopy(rec)
		})
		if err != nil {
			return fmt.Errorf("parquet: merge sorted runs: %w", err)
		}
	}
	if err := pw.close(); err != nil {
		return err
	}
	e.stats.RowGroups = pw.rowGroups
	return nil
}

// Discard removes the temporary files and drops the records. It is safe to
// call more than once, and after Finish.
func (e *Encoder) Discard() {
	e.done = true
	for _, p := range e.runs {
		_ = os.Remove(p)
	}
	e.runs = nil
	e.arena.release()
	e.ents = nil
}

// Stats returns what the encoder did so far.
func (e *Encoder) Stats() Stats { return e.stats }

// newWriter returns the Parquet writer of the output. Compressed pages of the
// row group being written stay in memory when the whole input fits in
// MemoryBytes and go to temporary files in TempDir otherwise: either way the
// bytes are the same.
func (e *Encoder) newWriter() *pageWriter {
	pool := pq.NewBufferPool()
	if e.total > int64(e.opts.MemoryBytes) {
		pool = pq.NewFileBufferPool(e.opts.TempDir, TempPrefix+"page-*")
	}
	w := pq.NewWriter(e.w, e.s.pq,
		&pq.WriterConfig{CreatedBy: CreatedBy},
		pq.Compression(zstdCodec{}),
		pq.PageBufferSize(e.opts.PageBytes),
		pq.DataPageVersion(2),
		pq.ColumnPageBuffers(pool),
	)
	return &pageWriter{
		w: w, conv: newConverter(e.s), batch: e.batch,
		pageLimit:  int64(float64(e.opts.PageBytes)*0.98) - 1,
		groupLimit: int64(e.opts.RowGroupBytes) - int64(e.opts.RowGroupBytes)/8,
		pageEst:    make([]int64, len(e.s.leaves)),
		rowEst:     make([]int64, len(e.s.leaves)),
	}
}

// Encode reads NDJSON records from r (one JSON object a line; blank lines
// are skipped), numbering them 0, 1, ... as their seq, and writes them to w
// as a Parquet file of schema s. It blocks until done.
func Encode(ctx context.Context, w io.Writer, r io.Reader, s *Schema, opts Options) (Stats, error) {
	e, err := NewEncoder(w, s, opts)
	if err != nil {
		return Stats{}, err
	}
	defer e.Discard()
	br := bufio.NewReaderSize(r, 64<<10)
	var line []byte
	for seq := uint64(0); ; {
		chunk, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			line = append(line, chunk...)
			continue
		}
		rec := chunk
		if len(line) > 0 {
			line = append(line, chunk...)
			rec = line
		}
		if len(bytes.TrimSpace(rec)) > 0 {
			if seq%1024 == 0 {
				if cerr := ctx.Err(); cerr != nil {
					return e.stats, cerr
				}
			}
			if aerr := e.Add(rec, seq); aerr != nil {
				return e.stats, fmt.Errorf("parquet: record %d: %w", seq, aerr)
			}
			seq++
		}
		line = line[:0]
		if err == io.EOF {
			break
		}
		if err != nil {
			return e.stats, fmt.Errorf("parquet: read records: %w", err)
		}
	}
	err = e.Finish(ctx)
	return e.stats, err
}

// arenaChunk is the size of the arena's chunks.
const arenaChunk = 1 << 20

// chunks are full-size arena chunks shared by every Encoder, so that
// encoding object after object does not allocate (and zero) its budget
// again each time.
var chunks = sync.Pool{New: func() any { return new([arenaChunk]byte) }}

// arena holds the records of the sort buffer in chunks, so that it grows
// without copying. A record larger than a chunk gets an allocation of its
// own.
type arena struct {
	chunkSize int
	full      []*[arenaChunk]byte // pooled chunks held
	cur       []byte              // the chunk being filled
	held      int                 // bytes of chunks and large records held
}

// need returns the bytes copy(rec) of n bytes would add to held.
func (a *arena) need(n int) int {
	switch {
	case n > a.chunkSize:
		return n
	case len(a.cur)+n > cap(a.cur):
		return a.chunkSize
	}
	return 0
}

// copy returns a copy of rec held by the arena.
func (a *arena) copy(rec []byte) []byte {
	n := len(rec)
	if n > a.chunkSize {
		a.held += n
		return bytes.Clone(rec)
	}
	if len(a.cur)+n > cap(a.cur) {
		a.held += a.chunkSize
		if a.chunkSize == arenaChunk {
			c := chunks.Get().(*[arenaChunk]byte)
			a.full = append(a.full, c)
			a.cur = c[:0]
		} else {
			a.cur = make([]byte, 0, a.chunkSize)
		}
	}
	off := len(a.cur)
	a.cur = append(a.cur, rec...)
	return a.cur[off:len(a.cur):len(a.cur)]
}

// reset returns the chunks to the pool; the records' bytes are no longer used.
func (a *arena) reset() {
	for _, c := range a.full {
		chunks.Put(c)
	}
	clear(a.full)
	a.full = a.full[:0]
	a.cur = nil
	a.held = 0
}

func (a *arena) release() {
	a.reset()
	a.full = nil
}
