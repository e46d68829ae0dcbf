package sink

import (
	"bytes"
	"io"
	"math/rand/v2"
	"testing"
)

// TestChunkReader: an object's chunks read, seek, ReadAt and WriteTo exactly as
// one bytes.Reader over the same bytes, for chunk layouts from one chunk to
// many uneven ones, under random operations.
func TestChunkReader(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, layout := range [][]int{{0}, {1}, {7}, {1024}, {1, 1, 1}, {1024, 2048, 4096, 100}, {3, 0, 5, 64 << 10, 9}} {
		var chunks [][]byte
		var all []byte
		for _, n := range layout {
			c := make([]byte, n, n+rng.IntN(8)) // spare capacity must never be read
			for i := range c {
				c[i] = byte(rng.IntN(256))
			}
			chunks = append(chunks, c)
			all = append(all, c...)
		}
		got := newChunkReader(chunks, int64(len(all)))
		want := bytes.NewReader(all)
		for step := range 300 {
			switch op := rng.IntN(4); op {
			case 0:
				n := rng.IntN(3000)
				p, q := make([]byte, n), make([]byte, n)
				n1, e1 := got.Read(p)
				n2, e2 := want.Read(q)
				if n1 != n2 || (e1 == nil) != (e2 == nil) || !bytes.Equal(p[:n1], q[:n2]) {
					t.Fatalf("layout %v step %d: Read = %d, %v; want %d, %v", layout, step, n1, e1, n2, e2)
				}
			case 1:
				off, wh := int64(rng.IntN(len(all)+2)), rng.IntN(3)
				if wh != io.SeekStart {
					off -= int64(len(all) / 2)
				}
				p1, e1 := got.Seek(off, wh)
				p2, e2 := want.Seek(off, wh)
				if p1 != p2 && e2 == nil || (e1 == nil) != (e2 == nil) {
					t.Fatalf("layout %v step %d: Seek(%d, %d) = %d, %v; want %d, %v", layout, step, off, wh, p1, e1, p2, e2)
				}
				if e2 != nil { // bytes.Reader keeps its position on a bad seek
					_, _ = got.Seek(mustPos(want), io.SeekStart)
				}
			case 2:
				n := rng.IntN(3000)
				p, q := make([]byte, n), make([]byte, n)
				off := int64(rng.IntN(len(all) + 2))
				n1, e1 := got.ReadAt(p, off)
				n2, e2 := want.ReadAt(q, off)
				if n1 != n2 || (e1 == nil) != (e2 == nil) || !bytes.Equal(p[:n1], q[:n2]) {
					t.Fatalf("layout %v step %d: ReadAt(%d, %d) = %d, %v; want %d, %v", layout, step, len(p), off, n1, e1, n2, e2)
				}
			case 3:
				var b1, b2 bytes.Buffer
				n1, e1 := got.WriteTo(&b1)
				n2, e2 := want.WriteTo(&b2)
				if n1 != n2 || e1 != nil || e2 != nil || !bytes.Equal(b1.Bytes(), b2.Bytes()) {
					t.Fatalf("layout %v step %d: WriteTo = %d, %v; want %d, %v", layout, step, n1, e1, n2, e2)
				}
			}
		}
	}
}

func mustPos(r *bytes.Reader) int64 {
	p, _ := r.Seek(0, io.SeekCurrent)
	return p
}
