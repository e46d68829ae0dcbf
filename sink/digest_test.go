package sink_test

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"testing"

	"hitship/sink"
)

// TestBufferDigest: a buffer made with Digest gives its object the SHA-256 of
// exactly the object's bytes, in memory or spilled, plain or gzipped, and one
// made without gives none; MemoryBytes keeps a bigger buffer in memory.
func TestBufferDigest(t *testing.T) {
	sp, err := sink.NewSpool(sink.SpoolConfig{Dir: t.TempDir(), MemoryBytes: 8 << 20, BufferMemoryBytes: 4 << 10})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	for _, f := range []sink.Format{sink.FormatJSON, sink.FormatNDJSON} {
		for _, c := range []sink.Compression{sink.CompressionNone, sink.CompressionGzip} {
			for _, records := range []int{0, 3, 2000} { // 2,000 records pass the 4 KiB in-memory part
				t.Run(fmt.Sprintf("%v/%v/%d", f, c, records), func(t *testing.T) {
					b := sp.NewBufferWith(f, sink.BufferOptions{Digest: true})
					for i := range records {
						if err := b.Append(fmt.Appendf(nil, `{"n":%d}`, i)); err != nil {
							t.Fatal(err)
						}
					}
					o, err := b.Finish(c)
					if err != nil {
						t.Fatal(err)
					}
					defer o.Release()
					r, err := o.Open()
					if err != nil {
						t.Fatal(err)
					}
					data, err := io.ReadAll(r)
					_ = r.Close()
					if err != nil {
						t.Fatal(err)
					}
					sum := sha256.Sum256(data)
					if want := hex.EncodeToString(sum[:]); o.SHA256() != want {
						t.Fatalf("SHA256 %q, want %q of the %d bytes", o.SHA256(), want, len(data))
					}
				})
			}
		}
	}
	b := sp.NewBuffer(sink.FormatNDJSON)
	_ = b.Append([]byte(`{}`))
	o, err := b.Finish(sink.CompressionNone)
	if err != nil {
		t.Fatal(err)
	}
	if o.SHA256() != "" {
		t.Errorf("a buffer without Digest gave %q", o.SHA256())
	}
	o.Release()

	big := sp.NewBufferWith(sink.FormatNDJSON, sink.BufferOptions{MemoryBytes: 1 << 20})
	for i := range 2000 {
		_ = big.Append(fmt.Appendf(nil, `{"n":%d}`, i))
	}
	if st := sp.Stats(); st.Files != 0 {
		t.Errorf("a buffer of 1 MiB in memory spilled at %d bytes: %+v", big.Bytes(), st)
	}
	big.Discard()
}
