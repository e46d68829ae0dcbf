package parquet

import (
	"bufio"
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
)

// entry is one record in the sort buffer: its ordering key and its bytes
// (in an arena chunk).
type entry struct {
	time int64  // Unix ms, noTime first
	seq  uint64 // the caller's tie-breaker
	idx  uint64 // arrival order: the last tie-breaker, so the order is total
	rec  []byte
}

const entrySize = 48 // bytes an entry costs in the buffer

func compareKey(at int64, aseq, aidx uint64, bt int64, bseq, bidx uint64) int {
	if c := cmp.Compare(at, bt); c != 0 {
		return c
	}
	if c := cmp.Compare(aseq, bseq); c != 0 {
		return c
	}
	return cmp.Compare(aidx, bidx)
}

func compareEntries(a, b entry) int {
	return compareKey(a.time, a.seq, a.idx, b.time, b.seq, b.idx)
}

// A run file is a sorted sequence of frames: time, seq, idx (8 bytes each,
// big-endian), length (4 bytes), then the record.
const frameHeader = 28

// writeRun writes the sorted entries to a new run file in dir.
func writeRun(dir string, entries []entry, bufSize int) (path string, size int64, err error) {
	path, err = newRun(dir, bufSize, func(put func(t int64, seq, idx uint64, rec []byte) error) error {
		for _, e := range entries {
			if err := put(e.time, e.seq, e.idx, e.rec); err != nil {
				return err
			}
			size += frameHeader + int64(len(e.rec))
		}
		return nil
	})
	return path, size, err
}

// newRun creates a run file in dir and lets fill write its frames, in
// order, through put. It returns the file's path; on an error the file is
// removed.
func newRun(dir string, bufSize int, fill func(put func(t int64, seq, idx uint64, rec []byte) error) error) (path string, err error) {
	f, err := os.CreateTemp(dir, TempPrefix+"run-*")
	if err != nil {
		return "", err
	}
	path = f.Name()
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			_ = os.Remove(path)
		}
	}()
	w := bufio.NewWriterSize(f, bufSize)
	var h [frameHeader]byte
	err = fill(func(t int64, seq, idx uint64, rec []byte) error {
		putHeader(&h, t, seq, idx, len(rec))
		if _, err := w.Write(h[:]); err != nil {
			return err
		}
		_, err := w.Write(rec)
		return err
	})
	if err != nil {
		return path, err
	}
	return path, w.Flush()
}

func putHeader(h *[frameHeader]byte, t int64, seq, idx uint64, n int) {
	binary.BigEndian.PutUint64(h[0:], uint64(t))
	binary.BigEndian.PutUint64(h[8:], seq)
	binary.BigEndian.PutUint64(h[16:], idx)
	binary.BigEndian.PutUint32(h[24:], uint32(n))
}

// runReader reads one run file frame by frame.
type runReader struct {
	f    *os.File
	r    *bufio.Reader
	time int64
	seq  uint64
	idx  uint64
	rec  []byte // the current record, valid until next
	eof  bool
}

func openRun(path string, bufSize int) (*runReader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	r := &runReader{f: f, r: bufio.NewReaderSize(f, bufSize)}
	if err := r.next(); err != nil {
		_ = f.Close()
		return nil, err
	}
	return r, nil
}

func (r *runReader) next() error {
	var h [frameHeader]byte
	if _, err := io.ReadFull(r.r, h[:]); err != nil {
		if errors.Is(err, io.EOF) {
			r.eof = true
			return nil
		}
		return fmt.Errorf("run %s: %w", r.f.Name(), err)
	}
	r.time = int64(binary.BigEndian.Uint64(h[0:]))
	r.seq = binary.BigEndian.Uint64(h[8:])
	r.idx = binary.BigEndian.Uint64(h[16:])
	n := int(binary.BigEndian.Uint32(h[24:]))
	if cap(r.rec) < n {
		r.rec = make([]byte, n)
	}
	r.rec = r.rec[:n]
	if _, err := io.ReadFull(r.r, r.rec); err != nil {
		return fmt.Errorf("run %s: %w", r.f.Name(), err)
	}
	return nil
}

func (r *runReader) close() { _ = r.f.Close() }

// mergeRuns merges the sorted run files paths, calling emit with every
// record in order (rec is valid during the call only).
func mergeRuns(paths []string, bufSize int, emit func(t int64, seq, idx uint64, rec []byte) error) (err error) {
	readers := make([]*runReader, 0, len(paths))
	defer func() {
		for _, r := range readers {
			r.close()
		}
	}()
	for _, p := range paths {
		r, err := openRun(p, bufSize)
		if err != nil {
			return err
		}
		readers = append(readers, r)
	}
	// A linear scan for the least head: the fan-in is at most mergeFanIn.
	for {
		var cur *runReader
		for _, r := range readers {
			if !r.eof && (cur == nil || compareKey(r.time, r.seq, r.idx, cur.time, cur.seq, cur.idx) < 0) {
				cur = r
			}
		}
		if cur == nil {
			return nil
		}
		if err := emit(cur.time, cur.seq, cur.idx, cur.rec); err != nil {
			return err
		}
		if err := cur.next(); err != nil {
			return err
		}
	}
}

// mergeFanIn bounds the runs merged at once (and so the read buffers held).
const mergeFanIn = 16

// reduceRuns merges runs mergeFanIn at a time into new runs until at most
// mergeFanIn remain, so the final merge holds a bounded number of buffers
// whatever the number of runs. It removes the runs it merged.
func reduceRuns(dir string, paths []string, bufSize int) ([]string, error) {
	for len(paths) > mergeFanIn {
		group := paths[:mergeFanIn]
		path, err := newRun(dir, bufSize, func(put func(t int64, seq, idx uint64, rec []byte) error) error {
			return mergeRuns(group, bufSize, put)
		})
		if err != nil {
			return paths, err
		}
		for _, p := range group {
			_ = os.Remove(p)
		}
		paths = append(slices.Clone(paths[mergeFanIn:]), path)
	}
	return paths, nil
}
