package parquet

import (
	"runtime"

	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/format"
)

// zstdWindow is the zstd window: pages are compressed one at a time
// (EncodeAll) and are at most PageBytes, 1 MiB by default. parquet-go's own
// zstd codec keeps the level's default window (8 MiB at SpeedDefault), which
// holds 32 MiB of history per encoder: more than the rest of the encoder.
const zstdWindow = 1 << 20

// encoders are shared by every Encoder: EncodeAll starts from a fresh state
// on every call, so an encoder's history never shows in the output. A free
// list, not a sync.Pool: a pool lets its items go at every other GC (and at
// random under the race detector, which made the encoder's tests 80 times
// slower), and an encoder costs a few MiB of tables to make. It keeps one
// per CPU; more are made when more pages are compressed at once.
var encoders = make(chan *zstd.Encoder, runtime.GOMAXPROCS(0))

func getEncoder() *zstd.Encoder {
	select {
	case e := <-encoders:
		return e
	default:
	}
	e, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedDefault),
		zstd.WithEncoderConcurrency(1),
		zstd.WithWindowSize(zstdWindow),
		zstd.WithZeroFrames(true),
		zstd.WithEncoderCRC(false),
	)
	if err != nil {
		panic(err) // constant options; every test encodes
	}
	return e
}

func putEncoder(e *zstd.Encoder) {
	select {
	case encoders <- e:
	default:
	}
}

// zstdCodec is parquet-go's zstd codec with a window sized for pages.
type zstdCodec struct{}

var _ compress.Codec = zstdCodec{}

func (zstdCodec) String() string                            { return "ZSTD" }
func (zstdCodec) CompressionCodec() format.CompressionCodec { return format.Zstd }

func (zstdCodec) Encode(dst, src []byte) ([]byte, error) {
	e := getEncoder()
	defer putEncoder(e)
	return e.EncodeAll(src, dst[:0]), nil
}

// Decode is not used by the writer; it is there for the interface.
func (zstdCodec) Decode(dst, src []byte) ([]byte, error) {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.DecodeAll(src, dst[:0])
}
