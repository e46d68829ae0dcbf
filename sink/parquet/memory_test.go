package parquet

import (
	"bytes"
	"context"
	"io"
	"os"
	"runtime"
	"runtime/debug"
	"sync"
	"testing"
	"time"
)

// hitStream is an io.Reader of n generated hits, made as it is read, so that
// the input itself takes no memory.
type hitStream struct {
	n, i int
	buf  bytes.Buffer
}

func (h *hitStream) Read(p []byte) (int, error) {
	for h.buf.Len() < len(p) && h.i < h.n {
		k := min(h.n-h.i, 256)
		// genHits numbers from 0; shift the ids so that every record differs.
		b := genHits(k, 1)
		b = bytes.ReplaceAll(b, []byte(`"request_id":"`), []byte(`"request_id":"`+string(rune('a'+h.i/256%26))))
		h.buf.Write(b)
		h.i += k
	}
	if h.buf.Len() == 0 {
		return 0, io.EOF
	}
	return h.buf.Read(p)
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// peakHeap samples the heap in use until stop is called and returns the
// highest value seen.
func peakHeap() (stop func() uint64) {
	var (
		mu   sync.Mutex
		peak uint64
		done = make(chan struct{})
		wg   sync.WaitGroup
	)
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		mu.Lock()
		peak = max(peak, ms.HeapInuse)
		mu.Unlock()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				sample()
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		sample()
		return peak
	}
}

// TestBoundedMemory encodes 200,000 hits (about 90 MB of NDJSON) with a 1 MiB
// sort budget: the heap stays within a bound that does not grow with the
// input (budget + one page per column + buffers), the runs are spilled and
// the temporary files are gone afterwards.
func TestBoundedMemory(t *testing.T) {
	n := 200_000
	if testing.Short() {
		n = 50_000
	}
	// Collect garbage early so that the sampled heap is close to the live one.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)

	dir := t.TempDir()
	in := &hitStream{n: n}
	out := &countWriter{}
	opts := Options{MemoryBytes: 1 << 20, TempDir: dir, PageBytes: 256 << 10, RowGroupBytes: 32 << 20}
	stop := peakHeap()
	st, err := Encode(context.Background(), out, in, HitSchema(), opts)
	peak := stop()
	if err != nil {
		t.Fatal(err)
	}
	if st.Records != int64(n) {
		t.Fatalf("%d records, want %d", st.Records, n)
	}
	if st.Runs < n/4000 { // about 450 bytes a record, 1 MiB a run
		t.Fatalf("%d runs: the budget did not make it spill", st.Runs)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("temporary files left: %d", len(left))
	}
	grown := int64(peak) - int64(base.HeapInuse)
	// 1 MiB of records, 18 columns x 256 KiB of pages (and parquet-go's
	// double buffering of a page while it is compressed), merge buffers.
	const bound = 24 << 20
	t.Logf("%d records, %d MB in %d runs, %d row groups, %d MB out; heap grew by at most %.1f MB (bound %d MB)",
		st.Records, st.RunBytes>>20, st.Runs, st.RowGroups, out.n>>20, float64(grown)/(1<<20), bound>>20)
	if grown > bound {
		t.Fatalf("heap grew by %d bytes, bound %d", grown, bound)
	}
}
