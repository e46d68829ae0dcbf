// Package storetest is the acceptance suite every sink.Store implementation
// passes: the in-memory store, sink/s3's S3Store against the S3 stand-ins,
// and S3Store behind the PutObject-only policy proxy.
package storetest

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"hitship/sink"
)

// Got is an object read back from a store.
type Got struct {
	Data            []byte
	ContentType     string
	ContentEncoding string
}

// Reader reads back what a Store wrote, with an admin view the store itself
// does not need (for S3: a separate client with GetObject).
type Reader struct {
	// Get returns the object under key; an error when there is none.
	Get func(ctx context.Context, key string) (Got, error)
	// IfNoneMatch says the store honours conditional writes; the 412 cases
	// are skipped otherwise.
	IfNoneMatch bool
	// MultipartIfNoneMatch says it honours them on CompleteMultipartUpload
	// too (AWS S3 does; gofakes3 does not).
	MultipartIfNoneMatch bool
	// Multipart is the size above which the store under test uploads in
	// parts (0: it has no multipart path). The multipart case writes an
	// object of max(12 MiB, Multipart+1) bytes either way.
	Multipart int64
}

// Acceptance runs the suite. newStore is called once per case and must
// return a fresh, empty store (or at least one where the case's keys are
// unused: every case uses its own keys).
func Acceptance(t *testing.T, newStore func(t *testing.T) (sink.Store, Reader)) {
	t.Helper()
	ctx := context.Background()
	spool, err := sink.NewSpool(sink.SpoolConfig{Dir: t.TempDir(), BufferMemoryBytes: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}

	roundTrip := []struct {
		name     string
		key      string
		body     func(t *testing.T) sink.Body
		opts     sink.PutOptions
		wantGzip bool
	}{
		{
			name: "small json",
			key:  "hits/wallarm_hits_1687241400_0_0.json",
			body: func(t *testing.T) sink.Body {
				return finish(t, spool, sink.FormatJSON, sink.CompressionNone, sampleRecords)
			},
			opts: sink.PutOptions{ContentType: "application/json"},
		},
		{
			name: "ndjson",
			key:  "wallarm_hits_1687241400_3_17.jsonl",
			body: func(t *testing.T) sink.Body {
				return finish(t, spool, sink.FormatNDJSON, sink.CompressionNone, sampleRecords)
			},
			opts: sink.PutOptions{ContentType: "application/x-ndjson"},
		},
		{
			name: "gzip",
			key:  "gz/wallarm_hits_1687241400_1_5.json.gz",
			body: func(t *testing.T) sink.Body {
				return finish(t, spool, sink.FormatJSON, sink.CompressionGzip, sampleRecords)
			},
			opts:     sink.PutOptions{ContentType: "application/json", ContentEncoding: "gzip"},
			wantGzip: true,
		},
		{
			name: "keys with slashes",
			key:  "tenant-7/dt=2023-06-20/hour=06/wallarm_hits_1687241400_2_99.jsonl",
			body: func(t *testing.T) sink.Body { return sink.BytesBody("{\"a\":1}\n") },
			opts: sink.PutOptions{ContentType: "application/x-ndjson"},
		},
		{
			name: "key with spaces and unicode",
			key:  "odd keys/ünï cödé+plus=eq/wallarm_hits_1_0_0.json",
			body: func(t *testing.T) sink.Body { return sink.BytesBody("[\n{}\n]\n") },
			opts: sink.PutOptions{ContentType: "application/json"},
		},
		{
			name: "empty object",
			key:  "empty/wallarm_hits_0_0_0.jsonl",
			body: func(t *testing.T) sink.Body { return sink.BytesBody(nil) },
			opts: sink.PutOptions{ContentType: "application/x-ndjson"},
		},
		{
			name: "empty json array",
			key:  "empty/wallarm_hits_0_0_1.json",
			body: func(t *testing.T) sink.Body { return finish(t, spool, sink.FormatJSON, sink.CompressionNone, nil) },
			opts: sink.PutOptions{ContentType: "application/json"},
		},
		{
			name: "one byte",
			key:  "one",
			body: func(t *testing.T) sink.Body { return sink.BytesBody("\n") },
		},
		{
			name: "spilled object from the spool",
			key:  "big/wallarm_hits_1687241400_0_1000.jsonl",
			body: func(t *testing.T) sink.Body {
				return finish(t, spool, sink.FormatNDJSON, sink.CompressionNone, manyRecords(3000))
			},
			opts: sink.PutOptions{ContentType: "application/x-ndjson"},
		},
	}
	for _, tc := range roundTrip {
		t.Run(tc.name, func(t *testing.T) {
			store, rd := newStore(t)
			body := tc.body(t)
			want := readAll(t, body)
			if err := store.Put(ctx, tc.key, body, tc.opts); err != nil {
				t.Fatalf("Put: %v", err)
			}
			got, err := rd.Get(ctx, tc.key)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if !bytes.Equal(got.Data, want) {
				t.Fatalf("bytes differ: got %d bytes, want %d", len(got.Data), len(want))
			}
			if tc.opts.ContentType != "" && got.ContentType != tc.opts.ContentType {
				t.Errorf("content type = %q, want %q", got.ContentType, tc.opts.ContentType)
			}
			if got.ContentEncoding != tc.opts.ContentEncoding {
				t.Errorf("content encoding = %q, want %q", got.ContentEncoding, tc.opts.ContentEncoding)
			}
			if tc.wantGzip {
				zr, err := gzip.NewReader(bytes.NewReader(got.Data))
				if err != nil {
					t.Fatalf("gzip: %v", err)
				}
				plain, err := io.ReadAll(zr)
				if err != nil {
					t.Fatalf("gzip: %v", err)
				}
				if wantPlain := jsonArray(sampleRecords); !bytes.Equal(plain, wantPlain) {
					t.Errorf("gunzipped = %q, want %q", plain, wantPlain)
				}
			}
		})
	}

	t.Run("multipart", func(t *testing.T) {
		store, rd := newStore(t)
		size := max(int64(12<<20), rd.Multipart+1)
		data := randomBytes(size)
		key := "multi/wallarm_hits_1687241400_4_123456.jsonl"
		if err := store.Put(ctx, key, sink.BytesBody(data), sink.PutOptions{ContentType: "application/x-ndjson"}); err != nil {
			t.Fatalf("Put: %v", err)
		}
		got, err := rd.Get(ctx, key)
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		if !bytes.Equal(got.Data, data) {
			t.Fatalf("multipart bytes differ: got %d bytes, want %d", len(got.Data), len(data))
		}
		if got.ContentType != "application/x-ndjson" {
			t.Errorf("content type = %q", got.ContentType)
		}
	})

	t.Run("overwrite without IfNoneMatch", func(t *testing.T) {
		store, rd := newStore(t)
		key := "ow/wallarm_hits_1_0_0.jsonl"
		for _, v := range []string{"{\"v\":1}\n", "{\"v\":2}\n"} {
			if err := store.Put(ctx, key, sink.BytesBody(v), sink.PutOptions{}); err != nil {
				t.Fatalf("Put %s: %v", v, err)
			}
		}
		got, err := rd.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if string(got.Data) != "{\"v\":2}\n" {
			t.Errorf("after overwrite = %q, want the second version", got.Data)
		}
	})

	t.Run("IfNoneMatch", func(t *testing.T) {
		cases := []struct {
			name string
			size int64 // 0: small
		}{
			{name: "single put"},
			{name: "multipart", size: -1},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				store, rd := newStore(t)
				if !rd.IfNoneMatch {
					t.Skip("store does not support conditional writes")
				}
				if tc.size < 0 && (rd.Multipart == 0 || !rd.MultipartIfNoneMatch) {
					t.Skip("store has no multipart path or no conditional multipart completion")
				}
				first, second := sink.BytesBody("{\"v\":1}\n"), sink.BytesBody("{\"v\":2}\n")
				if tc.size < 0 {
					first = randomBytes(rd.Multipart + 1)
					second = randomBytes(rd.Multipart + 2)
				}
				key := fmt.Sprintf("inm/%s/wallarm_hits_1_0_0.jsonl", tc.name)
				opts := sink.PutOptions{IfNoneMatch: true}
				if err := store.Put(ctx, key, first, opts); err != nil {
					t.Fatalf("first Put: %v", err)
				}
				err := store.Put(ctx, key, second, opts)
				if !sink.IsAlreadyExists(err) || !sink.IsPreconditionFailed(err) {
					t.Fatalf("second Put = %v, want an error satisfying IsAlreadyExists", err)
				}
				if sink.IsRetryable(err) {
					t.Errorf("IsRetryable(%v) = true, want false", err)
				}
				got, err := rd.Get(ctx, key)
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(got.Data, first) {
					t.Errorf("conditional write replaced the object")
				}
			})
		}
	})

	t.Run("cancelled context", func(t *testing.T) {
		store, rd := newStore(t)
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		key := "cancel/wallarm_hits_1_0_0.jsonl"
		err := store.Put(cctx, key, sink.BytesBody("{}\n"), sink.PutOptions{})
		if err == nil {
			t.Fatal("Put with a cancelled context succeeded")
		}
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Put error %v does not wrap context.Canceled", err)
		}
		if sink.IsRetryable(err) {
			t.Errorf("IsRetryable(cancelled) = true")
		}
		if _, err := rd.Get(ctx, key); err == nil {
			t.Errorf("object exists after a cancelled Put")
		}
	})

	t.Run("released body", func(t *testing.T) {
		store, _ := newStore(t)
		obj := finish(t, spool, sink.FormatNDJSON, sink.CompressionNone, sampleRecords)
		obj.Release()
		err := store.Put(ctx, "released/x.jsonl", obj, sink.PutOptions{})
		if !errors.Is(err, sink.ErrReleased) {
			t.Errorf("Put of a released object = %v, want ErrReleased", err)
		}
	})
}

var sampleRecords = [][]byte{
	[]byte(`{"time":"1687241470","request_id":"d2a900a6efac7a7c893a00903205071a","ip":"127.0.0.1"}`),
	[]byte(`{"time":"1687241475","request_id":"b457fccec9c66cdb07eab7228b34eca6","ip":"127.0.0.1"}`),
}

func jsonArray(recs [][]byte) []byte {
	var b bytes.Buffer
	b.WriteString("[\n")
	b.Write(bytes.Join(recs, []byte(",\n")))
	b.WriteString("\n]\n")
	return b.Bytes()
}

func manyRecords(n int) [][]byte {
	recs := make([][]byte, n)
	for i := range recs {
		recs[i] = fmt.Appendf(nil, `{"time":"%d","request_id":"%032x","payload":["%s"]}`, 1687241400+i, i, bytes.Repeat([]byte("x"), i%200))
	}
	return recs
}

func finish(t *testing.T, s *sink.Spool, f sink.Format, c sink.Compression, recs [][]byte) *sink.Object {
	t.Helper()
	b := s.NewBuffer(f)
	for _, r := range recs {
		if err := b.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	o, err := b.Finish(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(o.Release)
	return o
}

func readAll(t *testing.T, b sink.Body) []byte {
	t.Helper()
	r, err := b.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func randomBytes(n int64) sink.BytesBody {
	rng := rand.New(rand.NewPCG(uint64(n), 7))
	data := make([]byte, n)
	for i := 0; i+8 <= len(data); i += 8 {
		v := rng.Uint64()
		for j := range 8 {
			data[i+j] = byte(v >> (8 * j))
		}
	}
	return data
}
