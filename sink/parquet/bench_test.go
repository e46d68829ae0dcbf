package parquet

import (
	"bytes"
	"context"
	"testing"

	"hitship/ocsf"
)

// BenchmarkEncode measures records/s on one goroutine for the hit schema
// and for OCSF mapping plus the OCSF schema (format ocsf-parquet), beside
// NDJSON concatenation (what format ndjson costs) as the baseline.
// Run with -cpu 1 for records/s per core:
//
//	go test -run '^$' -bench Encode -cpu 1 ./sink/parquet/
func BenchmarkEncode(b *testing.B) {
	const n = 20_000
	in := genHits(n, 1)
	recs := bytes.SplitAfter(bytes.TrimSuffix(in, []byte("\n")), []byte("\n"))
	report := func(b *testing.B) {
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
		b.SetBytes(int64(len(in)))
	}
	b.Run("ndjson", func(b *testing.B) {
		var out bytes.Buffer
		for b.Loop() {
			out.Reset()
			for _, r := range recs {
				out.Write(bytes.TrimSuffix(r, []byte("\n")))
				out.WriteByte('\n')
			}
		}
		report(b)
	})
	// What format ocsf-parquet costs per window: each hit's OCSF record
	// given as column values (MapColumns, AddValues), as the assembler
	// does; and, as the baseline of the same run, the way it was done
	// before: the record written as JSON (AppendRecord) and read back by
	// the converter (add: Add without its validating pass, which the
	// assembler never made of the mapper's records).
	for _, columns := range []bool{true, false} {
		name := "ocsf-parquet"
		if !columns {
			name = "ocsf-parquet-via-json"
		}
		b.Run(name, func(b *testing.B) {
			m, err := ocsf.NewMapper(ocsfProduct)
			if err != nil {
				b.Fatal(err)
			}
			dir := b.TempDir()
			var out bytes.Buffer
			var rec []byte
			var size int
			v := NewValues(OCSFSchema())
			for b.Loop() {
				out.Reset()
				enc, err := NewEncoder(&out, OCSFSchema(), Options{TempDir: dir})
				if err != nil {
					b.Fatal(err)
				}
				for i, r := range recs {
					hit := bytes.TrimSuffix(r, []byte("\n"))
					if columns {
						v.Reset()
						if _, rec, err = m.MapColumns(hit, v, rec); err == nil {
							err = enc.AddValues(v, uint64(i))
						}
					} else if rec, err = m.AppendRecord(rec[:0], hit); err == nil {
						err = enc.add(rec, uint64(i))
					}
					if err != nil {
						b.Fatal(err)
					}
				}
				if err := enc.Finish(context.Background()); err != nil {
					b.Fatal(err)
				}
				size = out.Len()
			}
			report(b)
			b.ReportMetric(float64(size)/float64(n), "out-bytes/record")
		})
	}
	for _, bc := range []struct {
		name   string
		memory int
	}{{"parquet", 0}, {"parquet-spill", 1 << 20}} {
		b.Run(bc.name, func(b *testing.B) {
			dir := b.TempDir()
			var out bytes.Buffer
			var size int
			for b.Loop() {
				out.Reset()
				if _, err := Encode(context.Background(), &out, bytes.NewReader(in), HitSchema(), Options{TempDir: dir, MemoryBytes: bc.memory}); err != nil {
					b.Fatal(err)
				}
				size = out.Len()
			}
			report(b)
			b.ReportMetric(float64(size)/float64(n), "out-bytes/record")
		})
	}
}
