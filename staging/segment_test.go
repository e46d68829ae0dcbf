package staging

import (
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// TestSegReaderLongAndShortLines: records longer than the reader's buffer
// (up to the 1 MiB a record may have) and short ones read back whole, in
// order, however the body arrives; a segment cut inside a record is an error.
func TestSegReaderLongAndShortLines(t *testing.T) {
	recs := []string{`{"a":1}`, `{"big":"` + strings.Repeat("x", 40<<10) + `"}`, `{"b":2}`, `{"huge":"` + strings.Repeat("y", 1<<20) + `"}`, `{"c":3}`}
	var b strings.Builder
	for i, r := range recs {
		fmt.Fprintf(&b, "%d %s\n", 10+i, r)
	}
	for name, body := range map[string]func() io.Reader{
		"whole":    func() io.Reader { return strings.NewReader(b.String()) },
		"one byte": func() io.Reader { return iotest.OneByteReader(strings.NewReader(b.String())) },
		"halves":   func() io.Reader { return iotest.HalfReader(strings.NewReader(b.String())) },
	} {
		r := newSegReader("k", io.NopCloser(body()))
		for i, want := range recs {
			ok, err := r.next()
			if !ok || err != nil || r.off != int64(10+i) || string(r.rec) != want {
				t.Fatalf("%s: record %d: %v %v offset %d, %d bytes; want offset %d, %d bytes", name, i, ok, err, r.off, len(r.rec), 10+i, len(want))
			}
		}
		if ok, err := r.next(); ok || err != nil {
			t.Fatalf("%s: after the last record: %v %v", name, ok, err)
		}
	}
	cut := b.String()[:b.Len()-3]
	r := newSegReader("k", io.NopCloser(strings.NewReader(cut)))
	var err error
	for ok := true; ok && err == nil; ok, err = r.next() {
	}
	if err == nil {
		t.Fatal("a segment cut inside a record read without an error")
	}
}
