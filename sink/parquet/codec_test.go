package parquet

import (
	"runtime"
	"testing"
)

// TestEncodersOutliveGC: a zstd encoder given back is the one the next page
// takes, even after garbage collections (a sync.Pool let it go at the
// second, and made every page build a new one: MiBs of tables).
func TestEncodersOutliveGC(t *testing.T) {
	e := getEncoder()
	putEncoder(e)
	runtime.GC()
	runtime.GC()
	got := getEncoder()
	defer putEncoder(got)
	if got != e {
		t.Fatal("the encoder given back was dropped: a new one was made")
	}
}
