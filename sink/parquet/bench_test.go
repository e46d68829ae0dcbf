package parquet

import (
	"bytes"
	"context"
	"testing"
)

// BenchmarkEncode measures records/s on one goroutine for the hit schema,
// beside NDJSON concatenation (what format ndjson costs) as the baseline.
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
