package staging

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// A segment is one closed per-partition buffer in the staging bucket: NDJSON
// lines "offset record", in offset order, where record is the compact hit as
// read from Kafka (sink.Buffer.AppendTagged). It keeps every record's identity
// (its partition is in the key).

// segReader reads a segment's records one at a time.
type segReader struct {
	key  string
	rc   io.ReadCloser
	br   *bufio.Reader
	line []byte
	// the current record
	off int64
	rec []byte
	eof bool
}

func newSegReader(key string, rc io.ReadCloser) *segReader {
	// 16 KiB: a TLS record's worth per read; with 1,000 tenants segments are
	// a few tens of KiB and a 64 KiB buffer each was mostly garbage.
	return &segReader{key: key, rc: rc, br: bufio.NewReaderSize(rc, 16<<10)}
}

// next advances to the next record; false at the end (err says if the end
// was not clean).
func (r *segReader) next() (bool, error) {
	if r.eof {
		return false, nil
	}
	r.line = r.line[:0]
	var line []byte
	for {
		chunk, err := r.br.ReadSlice('\n')
		if err == nil && len(r.line) == 0 {
			// The whole line in the reader's buffer: no copy. It stays valid
			// until this reader's next call (the merge appends the record to
			// the object before it advances this reader).
			line = chunk
			break
		}
		r.line = append(r.line, chunk...)
		if err == nil {
			line = r.line
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if errors.Is(err, io.EOF) {
			if len(r.line) == 0 {
				r.eof = true
				return false, nil
			}
			return false, fmt.Errorf("staging: segment %s ends inside a record", r.key)
		}
		return false, fmt.Errorf("staging: read segment %s: %w", r.key, err)
	}
	line = line[:len(line)-1]
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return false, fmt.Errorf("staging: segment %s: line without offset", r.key)
	}
	off, err := strconv.ParseInt(string(line[:sp]), 10, 64)
	if err != nil {
		return false, fmt.Errorf("staging: segment %s: bad offset: %w", r.key, err)
	}
	r.off, r.rec = off, line[sp+1:]
	return true, nil
}

func (r *segReader) close() { _ = r.rc.Close() }
