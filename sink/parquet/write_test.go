package parquet

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"hitship/ocsf"
)

// TestBatchedWritesSameBytes checks that writing rows to parquet-go in
// batches cuts pages and row groups exactly where writing them one at a
// time does: small pages and row groups, records of uneven size, values
// larger than a page (parquet-go's own cut), in memory and through spilled
// runs (whose records the batch copies).
func TestBatchedWritesSameBytes(t *testing.T) {
	hits := genHits(3000, 7)
	var big bytes.Buffer
	for i, line := range bytes.Split(bytes.TrimSpace(hits), []byte("\n")) {
		if i%97 == 0 {
			// A value beyond the page size, and one close to it.
			n := 6000
			if i%2 == 0 {
				n = 3900
			}
			line = append(bytes.TrimSuffix(line, []byte("}")), []byte(fmt.Sprintf(`,"domain":"%s"}`, strings.Repeat("d", n)))...)
		}
		big.Write(line)
		big.WriteByte('\n')
	}
	m, err := ocsf.NewMapper(ocsfProduct)
	if err != nil {
		t.Fatal(err)
	}
	var mapped bytes.Buffer
	for line := range bytes.SplitSeq(bytes.TrimSpace(big.Bytes()), []byte("\n")) {
		rec, err := m.AppendRecord(nil, line)
		if err != nil {
			t.Fatal(err)
		}
		mapped.Write(rec)
		mapped.WriteByte('\n')
	}
	encode := func(t *testing.T, in []byte, s *Schema, opts Options, batch int) []byte {
		t.Helper()
		var out bytes.Buffer
		e, err := NewEncoder(&out, s, opts)
		if err != nil {
			t.Fatal(err)
		}
		e.batch = batch
		for i, line := range bytes.Split(bytes.TrimSpace(in), []byte("\n")) {
			if err := e.Add(line, uint64(i)); err != nil {
				t.Fatal(err)
			}
		}
		if err := e.Finish(context.Background()); err != nil {
			t.Fatal(err)
		}
		if e.Stats().RowGroups < 2 {
			t.Fatalf("%d row groups: the test wants several", e.Stats().RowGroups)
		}
		return out.Bytes()
	}
	for _, tc := range []struct {
		name string
		in   []byte
		s    *Schema
		opts Options
	}{
		{name: "hits", in: big.Bytes(), s: HitSchema(), opts: Options{PageBytes: 4096, RowGroupBytes: 64 << 10}},
		{name: "hits spilled", in: big.Bytes(), s: HitSchema(), opts: Options{PageBytes: 4096, RowGroupBytes: 64 << 10, MemoryBytes: 256 << 10}},
		{name: "ocsf", in: mapped.Bytes(), s: OCSFSchema(), opts: Options{PageBytes: 4096, RowGroupBytes: 96 << 10}},
		{name: "ocsf spilled", in: mapped.Bytes(), s: OCSFSchema(), opts: Options{PageBytes: 4096, RowGroupBytes: 96 << 10, MemoryBytes: 256 << 10}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.TempDir = t.TempDir()
			one := encode(t, tc.in, tc.s, tc.opts, 1)
			for _, batch := range []int{2, 7, batchRows} {
				if got := encode(t, tc.in, tc.s, tc.opts, batch); !bytes.Equal(got, one) {
					t.Errorf("batches of %d rows: %d bytes, row by row %d bytes: they differ", batch, len(got), len(one))
				}
			}
		})
	}
}
