package sink_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"hitship/sink"
	"hitship/sink/parquet"
)

func sampleRecords(t testing.TB) [][]byte {
	t.Helper()
	data, err := os.ReadFile("testdata/sample_hits.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Split(bytes.TrimSuffix(data, []byte("\n")), []byte("\n"))
}

func newSpool(t testing.TB, cfg sink.SpoolConfig) *sink.Spool {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	s, err := sink.NewSpool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func build(t testing.TB, s *sink.Spool, f sink.Format, c sink.Compression, recs [][]byte) *sink.Object {
	t.Helper()
	b := s.NewBuffer(f)
	for _, r := range recs {
		if err := b.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	if b.Records() != len(recs) {
		t.Fatalf("Records() = %d, want %d", b.Records(), len(recs))
	}
	o, err := b.Finish(c)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func contents(t testing.TB, o *sink.Object) []byte {
	t.Helper()
	r, err := o.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(data)) != o.Size() {
		t.Fatalf("read %d bytes, Size() = %d", len(data), o.Size())
	}
	return data
}

func gunzip(t testing.TB, data []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if !zr.ModTime.IsZero() || zr.Name != "" {
		t.Errorf("gzip header has mtime %v, name %q; want neither", zr.ModTime, zr.Name)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestEncodingMatchesSamples checks DESIGN §1 byte for byte, whether the
// buffer stays in memory or spills after every record.
func TestEncodingMatchesSamples(t *testing.T) {
	recs := sampleRecords(t)
	if len(recs) != 2 {
		t.Fatalf("want the 2 sample hits, got %d", len(recs))
	}
	spools := []struct {
		name string
		cfg  sink.SpoolConfig
	}{
		{name: "in memory", cfg: sink.SpoolConfig{}},
		{name: "spills every record", cfg: sink.SpoolConfig{BufferMemoryBytes: 64, MemoryBytes: 1024}},
		{name: "global budget spills", cfg: sink.SpoolConfig{BufferMemoryBytes: 1024, MemoryBytes: 1024}},
	}
	formats := []struct {
		name   string
		format sink.Format
		file   string
	}{
		{name: "json", format: sink.FormatJSON, file: "testdata/sample_hits.json"},
		{name: "ndjson", format: sink.FormatNDJSON, file: "testdata/sample_hits.jsonl"},
	}
	for _, sp := range spools {
		for _, f := range formats {
			t.Run(sp.name+"/"+f.name, func(t *testing.T) {
				want, err := os.ReadFile(f.file)
				if err != nil {
					t.Fatal(err)
				}
				cfg := sp.cfg
				cfg.Dir = t.TempDir()
				s := newSpool(t, cfg)
				plain := build(t, s, f.format, sink.CompressionNone, recs)
				if got := contents(t, plain); !bytes.Equal(got, want) {
					t.Fatalf("got\n%q\nwant\n%q", got, want)
				}
				if plain.ContentType != f.format.ContentType() || plain.ContentEncoding != "" || plain.Records != 2 {
					t.Errorf("object metadata %+v", plain)
				}
				gz1 := build(t, s, f.format, sink.CompressionGzip, recs)
				gz2 := build(t, s, f.format, sink.CompressionGzip, recs)
				z1, z2 := contents(t, gz1), contents(t, gz2)
				if !bytes.Equal(z1, z2) {
					t.Errorf("gzip output is not deterministic")
				}
				if got := gunzip(t, z1); !bytes.Equal(got, want) {
					t.Errorf("gunzipped differs: %q", got)
				}
				if gz1.ContentEncoding != "gzip" {
					t.Errorf("ContentEncoding = %q", gz1.ContentEncoding)
				}
				for _, o := range []*sink.Object{plain, gz1, gz2} {
					o.Release()
				}
				if st := s.Stats(); st != (sink.SpoolStats{}) {
					t.Errorf("after release: %+v, want all zero", st)
				}
				if files := listDir(t, cfg.Dir); len(files) != 0 {
					t.Errorf("files left: %v", files)
				}
			})
		}
	}
}

func TestEmptyObjects(t *testing.T) {
	cases := []struct {
		name   string
		format sink.Format
		comp   sink.Compression
		want   string
	}{
		{name: "json", format: sink.FormatJSON, want: "[\n\n]\n"},
		{name: "ndjson", format: sink.FormatNDJSON, want: ""},
		{name: "json gzip", format: sink.FormatJSON, comp: sink.CompressionGzip, want: "[\n\n]\n"},
	}
	s := newSpool(t, sink.SpoolConfig{})
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := build(t, s, tc.format, tc.comp, nil)
			defer o.Release()
			got := contents(t, o)
			if tc.comp == sink.CompressionGzip {
				got = gunzip(t, got)
			}
			if string(got) != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestNewSpoolConfig(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		cfg  sink.SpoolConfig
		ok   bool
	}{
		{name: "defaults", cfg: sink.SpoolConfig{Dir: dir}, ok: true},
		{name: "no dir", cfg: sink.SpoolConfig{}},
		{name: "negative", cfg: sink.SpoolConfig{Dir: dir, MaxBytes: -1}},
		{name: "buffer above total", cfg: sink.SpoolConfig{Dir: dir, MemoryBytes: 10, BufferMemoryBytes: 11}},
		{name: "dir is a file", cfg: sink.SpoolConfig{Dir: filepath.Join(dir, "f", "sub")}},
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sink.NewSpool(tc.cfg)
			if (err == nil) != tc.ok {
				t.Fatalf("NewSpool = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestNewSpoolRemovesStaleFiles(t *testing.T) {
	dir := t.TempDir()
	// Spill files, and a Parquet encoder's run and page files (the
	// assembler's encoder works in the spool directory; a killed process
	// leaves them).
	for _, n := range []string{"hs-1.spool", "hs-2.obj", parquet.TempPrefix + "run-123", parquet.TempPrefix + "page-9", "keep.txt"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	s := newSpool(t, sink.SpoolConfig{Dir: dir})
	if got := s.Stats().StaleRemoved; got != 4 {
		t.Errorf("StaleRemoved = %d, want 4", got)
	}
	if got := listDir(t, dir); len(got) != 1 || got[0] != "keep.txt" {
		t.Errorf("dir holds %v, want only keep.txt", got)
	}
}

// TestSpoolLock: a second spool on a directory another spool holds is refused
// with the holder's pid, and deletes none of the holder's files (before the
// lock it removed them as stale); after Close the directory is free again and
// the lock file is gone.
func TestSpoolLock(t *testing.T) {
	dir := t.TempDir()
	first := newSpool(t, sink.SpoolConfig{Dir: dir, BufferMemoryBytes: 16, MemoryBytes: 1 << 20})
	b := first.NewBuffer(sink.FormatNDJSON)
	rec := []byte(`{"a":"` + strings.Repeat("x", 64) + `"}`)
	if err := b.Append(rec); err != nil {
		t.Fatal(err)
	}
	spilled := listDir(t, dir)
	if len(spilled) != 1 {
		t.Fatalf("the first spool's buffer did not spill: %v", spilled)
	}

	second, err := sink.NewSpool(sink.SpoolConfig{Dir: dir})
	if err == nil {
		_ = second.Close()
		t.Fatal("a second spool took a directory the first one holds")
	}
	var locked *sink.SpoolLockedError
	if !errors.As(err, &locked) || !sink.IsSpoolLocked(err) {
		t.Fatalf("error %v is not a SpoolLockedError", err)
	}
	if locked.PID != os.Getpid() || !strings.Contains(err.Error(), fmt.Sprintf("pid %d", os.Getpid())) || !strings.Contains(err.Error(), dir) {
		t.Errorf("error %q does not name the directory and the holder's pid %d (got %d)", err, os.Getpid(), locked.PID)
	}
	if got := listDir(t, dir); !slices.Equal(got, spilled) {
		t.Fatalf("the refused spool changed the holder's files: %v, want %v", got, spilled)
	}
	o, err := b.Finish(sink.CompressionNone)
	if err != nil {
		t.Fatalf("the holder's buffer broke: %v", err)
	}
	if got := contents(t, o); string(got) != string(rec)+"\n" {
		t.Fatalf("the holder's object holds %q", got)
	}
	o.Release()

	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if err := first.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, sink.SpoolLockFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("lock file after Close: %v", err)
	}
	third, err := sink.NewSpool(sink.SpoolConfig{Dir: dir})
	if err != nil {
		t.Fatalf("after Close the directory is still refused: %v", err)
	}
	if err := third.Close(); err != nil {
		t.Fatal(err)
	}
}

func listDir(t testing.TB, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		if e.Name() != sink.SpoolLockFile { // held by the open spool, not a spill file
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	return names
}

func TestLifecycle(t *testing.T) {
	dir := t.TempDir()
	s := newSpool(t, sink.SpoolConfig{Dir: dir, BufferMemoryBytes: 128, MemoryBytes: 1 << 20})
	recs := sampleRecords(t)

	b := s.NewBuffer(sink.FormatNDJSON)
	for _, r := range recs {
		if err := b.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	if st := s.Stats(); st.Buffers != 1 || st.Files != 1 || st.DiskBytes == 0 {
		t.Fatalf("after spilling: %+v", st)
	}
	if want := int64(len(recs[0]) + len(recs[1]) + 2); b.Bytes() != want {
		t.Errorf("Bytes() = %d, want %d", b.Bytes(), want)
	}
	b.Discard()
	b.Discard()
	if err := b.Append(recs[0]); !errors.Is(err, sink.ErrBufferDone) {
		t.Errorf("Append after Discard = %v", err)
	}
	if _, err := b.Finish(sink.CompressionNone); !errors.Is(err, sink.ErrBufferDone) {
		t.Errorf("Finish after Discard = %v", err)
	}
	if st := s.Stats(); st != (sink.SpoolStats{}) || len(listDir(t, dir)) != 0 {
		t.Fatalf("after Discard: %+v, files %v", st, listDir(t, dir))
	}

	o := build(t, s, sink.FormatNDJSON, sink.CompressionNone, recs)
	var wg sync.WaitGroup
	for range 4 { // concurrent readers, each sees all bytes
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := o.Open()
			if err != nil {
				t.Error(err)
				return
			}
			defer r.Close()
			if _, err := r.Seek(5, io.SeekStart); err != nil {
				t.Error(err)
			}
			got, _ := io.ReadAll(r)
			if int64(len(got)) != o.Size()-5 {
				t.Errorf("read %d bytes after seek, want %d", len(got), o.Size()-5)
			}
		}()
	}
	wg.Wait()
	o.Release()
	o.Release()
	if _, err := o.Open(); !errors.Is(err, sink.ErrReleased) {
		t.Errorf("Open after Release = %v", err)
	}
	if st := s.Stats(); st != (sink.SpoolStats{}) || len(listDir(t, dir)) != 0 {
		t.Fatalf("after Release: %+v, files %v", st, listDir(t, dir))
	}
}

func TestFullIsBackPressure(t *testing.T) {
	s := newSpool(t, sink.SpoolConfig{MaxBytes: 4096, BufferMemoryBytes: 1024, MemoryBytes: 1 << 20})
	rec := bytes.Repeat([]byte("x"), 500)
	b := s.NewBuffer(sink.FormatNDJSON)
	for i := 0; !s.Full(); i++ {
		if i > 100 {
			t.Fatalf("never Full; stats %+v", s.Stats())
		}
		if err := b.Append(rec); err != nil {
			t.Fatal(err)
		}
	}
	if s.Stats().DiskBytes < 4096 {
		t.Errorf("Full with %d disk bytes", s.Stats().DiskBytes)
	}
	if err := b.Append(rec); err != nil { // Full never refuses
		t.Fatal(err)
	}
	o, err := b.Finish(sink.CompressionNone)
	if err != nil {
		t.Fatal(err)
	}
	if !s.Full() {
		t.Errorf("object file should still count")
	}
	o.Release()
	if s.Full() {
		t.Errorf("Full after Release; stats %+v", s.Stats())
	}
}

// TestMemoryBudget: many buffers together pass MemoryBytes, the largest
// spill, and the bytes still come out exact.
func TestMemoryBudget(t *testing.T) {
	const budget = 256 << 10
	dir := t.TempDir()
	s := newSpool(t, sink.SpoolConfig{Dir: dir, MemoryBytes: budget, BufferMemoryBytes: 32 << 10})
	const nBuf, nRec = 200, 40
	bufs := make([]*sink.Buffer, nBuf)
	for i := range bufs {
		bufs[i] = s.NewBuffer(sink.FormatJSON)
	}
	for r := range nRec {
		for i, b := range bufs {
			if err := b.Append(fmt.Appendf(nil, `{"b":%d,"r":%d,"pad":"%0200d"}`, i, r, 0)); err != nil {
				t.Fatal(err)
			}
			if m := s.Stats().MemoryBytes; m > budget+32<<10 {
				t.Fatalf("memory %d passed the budget %d", m, budget)
			}
		}
	}
	st := s.Stats()
	if st.DiskBytes == 0 || st.Files == 0 {
		t.Fatalf("nothing spilled: %+v", st)
	}
	for i, b := range bufs {
		o, err := b.Finish(sink.CompressionNone)
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		want.WriteString("[\n")
		for r := range nRec {
			if r > 0 {
				want.WriteString(",\n")
			}
			fmt.Fprintf(&want, `{"b":%d,"r":%d,"pad":"%0200d"}`, i, r, 0)
		}
		want.WriteString("\n]\n")
		if got := contents(t, o); !bytes.Equal(got, want.Bytes()) {
			t.Fatalf("buffer %d: bytes differ", i)
		}
		o.Release()
	}
	if st := s.Stats(); st != (sink.SpoolStats{}) || len(listDir(t, dir)) != 0 {
		t.Fatalf("after release: %+v", st)
	}
}

// TestObjectsEvicted: finished in-memory objects count against the budget
// and move to disk under pressure, staying readable.
func TestObjectsEvicted(t *testing.T) {
	s := newSpool(t, sink.SpoolConfig{MemoryBytes: 16 << 10, BufferMemoryBytes: 8 << 10})
	rec := bytes.Repeat([]byte("y"), 1000)
	var objs []*sink.Object
	for range 50 {
		objs = append(objs, build(t, s, sink.FormatNDJSON, sink.CompressionNone, [][]byte{rec, rec}))
	}
	st := s.Stats()
	if st.MemoryBytes > 16<<10+8<<10 || st.Files == 0 {
		t.Fatalf("objects not evicted: %+v", st)
	}
	want := append(append(append(append([]byte{}, rec...), '\n'), rec...), '\n')
	for _, o := range objs {
		if got := contents(t, o); !bytes.Equal(got, want) {
			t.Fatal("evicted object changed")
		}
		o.Release()
	}
	if st := s.Stats(); st != (sink.SpoolStats{}) {
		t.Fatalf("after release: %+v", st)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skip("no /proc/self/fd:", err)
	}
	return len(es)
}

// TestManyBuffersFewFDs: thousands of spilled buffers hold no descriptors.
func TestManyBuffersFewFDs(t *testing.T) {
	s := newSpool(t, sink.SpoolConfig{MemoryBytes: 1 << 20, BufferMemoryBytes: 512})
	before := openFDs(t)
	const n = 3000
	bufs := make([]*sink.Buffer, n)
	rec := bytes.Repeat([]byte("z"), 300)
	for i := range bufs {
		bufs[i] = s.NewBuffer(sink.FormatNDJSON)
	}
	for range 3 {
		for _, b := range bufs {
			if err := b.Append(rec); err != nil {
				t.Fatal(err)
			}
		}
	}
	if st := s.Stats(); st.Files != n {
		t.Fatalf("files = %d, want %d", st.Files, n)
	}
	if after := openFDs(t); after > before+5 {
		t.Fatalf("open descriptors grew from %d to %d", before, after)
	}
	for i, b := range bufs {
		c := sink.CompressionNone
		if i%50 == 0 {
			c = sink.CompressionGzip
		}
		o, err := b.Finish(c)
		if err != nil {
			t.Fatal(err)
		}
		got := contents(t, o)
		if c == sink.CompressionGzip {
			got = gunzip(t, got)
		}
		if len(got) != 3*301 {
			t.Fatalf("got %d bytes", len(got))
		}
		o.Release()
	}
	if st := s.Stats(); st != (sink.SpoolStats{}) {
		t.Fatalf("after release: %+v", st)
	}
}

func TestAppendDoesNotAllocate(t *testing.T) {
	rec := sampleRecords(t)[0]
	cases := []struct {
		name string
		cfg  sink.SpoolConfig
	}{
		{name: "in memory", cfg: sink.SpoolConfig{BufferMemoryBytes: 64 << 20, MemoryBytes: 128 << 20}},
		{name: "spilling", cfg: sink.SpoolConfig{BufferMemoryBytes: 256 << 10, MemoryBytes: 1 << 20}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newSpool(t, tc.cfg)
			b := s.NewBuffer(sink.FormatJSON)
			defer b.Discard()
			for range 2000 { // warm up: let the in-memory part reach its size
				if err := b.Append(rec); err != nil {
					t.Fatal(err)
				}
			}
			allocs := testing.AllocsPerRun(5000, func() {
				if err := b.Append(rec); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != 0 {
				t.Errorf("Append allocates %.2f times per record", allocs)
			}
		})
	}
}

// TestConcurrentBuffers runs appenders, finishers and readers at once under
// a tight memory budget (run with -race).
func TestConcurrentBuffers(t *testing.T) {
	s := newSpool(t, sink.SpoolConfig{MemoryBytes: 64 << 10, BufferMemoryBytes: 16 << 10})
	var wg sync.WaitGroup
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 5 {
				b := s.NewBuffer(sink.FormatNDJSON)
				h := sha256.New()
				for i := range 300 {
					rec := fmt.Appendf(nil, `{"g":%d,"round":%d,"i":%d,"pad":"%0100d"}`, g, round, i, i)
					if err := b.Append(rec); err != nil {
						t.Error(err)
						return
					}
					h.Write(rec)
					h.Write([]byte("\n"))
				}
				o, err := b.Finish(sink.CompressionNone)
				if err != nil {
					t.Error(err)
					return
				}
				want := h.Sum(nil)
				var rg sync.WaitGroup
				for range 2 {
					rg.Add(1)
					go func() {
						defer rg.Done()
						r, err := o.Open()
						if err != nil {
							t.Error(err)
							return
						}
						defer r.Close()
						h := sha256.New()
						if _, err := io.Copy(h, r); err != nil {
							t.Error(err)
						}
						if !bytes.Equal(h.Sum(nil), want) {
							t.Errorf("goroutine %d round %d: bytes differ", g, round)
						}
					}()
				}
				rg.Wait()
				o.Release()
			}
		}()
	}
	wg.Wait()
	if st := s.Stats(); st != (sink.SpoolStats{}) {
		t.Fatalf("after release: %+v", st)
	}
}

// TestBigBufferKeepsHeapFlat appends 256 MiB (1 GiB with HITSHIP_BIG=1) to
// one buffer and checks the Go heap stays small, then that every byte comes
// back.
func TestBigBufferKeepsHeapFlat(t *testing.T) {
	total := int64(256 << 20)
	if os.Getenv("HITSHIP_BIG") == "1" {
		total = 1 << 30
	} else if testing.Short() {
		total = 32 << 20
	}
	const heapLimit = 64 << 20
	s := newSpool(t, sink.SpoolConfig{})
	rec := []byte(fmt.Sprintf(`{"time":"1687241470","payload":["%0990d"]}`, 0))
	b := s.NewBuffer(sink.FormatJSON)
	h := sha256.New()
	h.Write([]byte("[\n"))
	var ms runtime.MemStats
	var peak uint64
	sep := []byte(",\n")
	for i := int64(0); b.Bytes() < total; i++ {
		if err := b.Append(rec); err != nil {
			t.Fatal(err)
		}
		if i > 0 {
			h.Write(sep)
		}
		h.Write(rec)
		if i%(16<<10) == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			if ms.HeapInuse > heapLimit {
				t.Fatalf("heap in use %d MiB after %d MiB appended", ms.HeapInuse>>20, b.Bytes()>>20)
			}
		}
	}
	h.Write([]byte("\n]\n"))
	if st := s.Stats(); st.MemoryBytes > sink.DefaultBufferMemoryBytes {
		t.Errorf("spool holds %d bytes in memory", st.MemoryBytes)
	}
	o, err := b.Finish(sink.CompressionNone)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Release()
	r, err := o.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := sha256.New()
	n, err := io.Copy(got, bufio.NewReaderSize(r, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Sum(nil), h.Sum(nil)) || n != o.Size() {
		t.Fatalf("object of %d bytes differs from what was appended", n)
	}
	t.Logf("%d MiB appended, peak heap in use %d MiB", n>>20, peak>>20)
}

func TestAppendRefusesNonLines(t *testing.T) {
	s := newSpool(t, sink.SpoolConfig{})
	cases := []struct {
		name string
		rec  string
	}{
		{name: "empty", rec: ""},
		{name: "two lines", rec: "{\"a\":1}\n{\"b\":2}"},
		{name: "trailing newline", rec: "{}\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := s.NewBuffer(sink.FormatNDJSON)
			defer b.Discard()
			if err := b.Append([]byte(tc.rec)); !sink.IsInvalid(err) {
				t.Fatalf("Append(%q) = %v, want IsInvalid", tc.rec, err)
			}
			if b.Records() != 0 || b.Bytes() != 0 {
				t.Errorf("refused record counted: %d records, %d bytes", b.Records(), b.Bytes())
			}
		})
	}
}

// TestSpoolCheckAndIsSpoolError: Check writes and removes a file; a disk
// operation that fails (here: the directory is gone) satisfies IsSpoolError,
// as do the buffer's own spill errors.
func TestSpoolCheckAndIsSpoolError(t *testing.T) {
	dir := t.TempDir()
	s, err := sink.NewSpool(sink.SpoolConfig{Dir: dir, MemoryBytes: 4 << 10, BufferMemoryBytes: 1 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Check(64 << 10); err != nil {
		t.Fatalf("Check on a healthy disk: %v", err)
	}
	if st := s.Stats(); st.Files != 0 || st.DiskBytes != 0 {
		t.Fatalf("Check left %+v", st)
	}
	b := s.NewBuffer(sink.FormatNDJSON)
	defer b.Discard()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(1); !sink.IsSpoolError(err) {
		t.Fatalf("Check without its directory: %v, want IsSpoolError", err)
	}
	var appendErr error
	for i := 0; i < 100 && appendErr == nil; i++ {
		appendErr = b.Append([]byte(`{"pad":"0123456789012345678901234567890123456789012345678901234567890123456789"}`))
	}
	if !sink.IsSpoolError(appendErr) || sink.IsInvalid(appendErr) {
		t.Fatalf("Append that must spill without a directory: %v, want IsSpoolError", appendErr)
	}
}
