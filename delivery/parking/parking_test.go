package parking_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"go.uber.org/goleak"

	"hitship/delivery/parking"
	"hitship/internal/testenv"
	"hitship/sink"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newStore(t *testing.T) (*parking.Store, *testenv.S3) {
	t.Helper()
	s3 := testenv.MustS3(t, testenv.S3Options{Buckets: []string{"park"}})
	st, err := parking.New(parking.Config{Bucket: "park", Region: testenv.S3Region, Endpoint: s3.URL(), PathStyle: true,
		Prefix: "hitship/", Credentials: credentials.NewStaticCredentialsProvider(testenv.S3AccessKey, testenv.S3SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	return st, s3
}

func TestNewInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  parking.Config
	}{
		{"no bucket", parking.Config{Region: "us-east-1"}},
		{"no region", parking.Config{Bucket: "b"}},
		{"no credentials", parking.Config{Bucket: "b", Region: "us-east-1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := parking.New(tc.cfg); !parking.IsInvalid(err) {
				t.Errorf("New = %v; want IsInvalid", err)
			}
		})
	}
}

func TestStore(t *testing.T) {
	st, s3 := newStore(t)
	ctx := t.Context()
	data := []byte("\x1f\x8b gzip bytes")
	key := st.ParkedKey("b", "hits/x.json.gz")
	opts := sink.PutOptions{ContentType: "application/json", ContentEncoding: "gzip", IfNoneMatch: true}
	if err := st.Put(ctx, key, sink.BytesBody(data), opts); err != nil {
		t.Fatal(err)
	}
	// Parking again overwrites (IfNoneMatch is ignored): no 412.
	if err := st.Put(ctx, key, sink.BytesBody(data), opts); err != nil {
		t.Fatalf("second Put = %v; want nil", err)
	}
	obj, err := st.Get(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(obj.Data, data) || obj.ContentType != "application/json" || obj.ContentEncoding != "gzip" {
		t.Errorf("Get = %q %q %q; want the bytes with their headers", obj.Data, obj.ContentType, obj.ContentEncoding)
	}
	dead := st.DeadKey("b", "hits/x.json.gz")
	if ok, err := st.Exists(ctx, dead); err != nil || ok {
		t.Fatalf("Exists before the copy = %v, %v; want false", ok, err)
	}
	if err := st.Copy(ctx, key, dead); err != nil {
		t.Fatal(err)
	}
	// A repeated copy (crash after the copy) succeeds.
	if err := st.Copy(ctx, key, dead); err != nil {
		t.Fatalf("repeated Copy = %v; want nil", err)
	}
	objs, err := s3.Objects(ctx, "park")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 2 || !bytes.Equal(objs[dead], data) || !bytes.Equal(objs[key], data) {
		t.Errorf("bucket = %v; want %s and its copy %s", objs, key, dead)
	}
	if ok, err := st.Exists(ctx, dead); err != nil || !ok {
		t.Fatalf("Exists after the copy = %v, %v; want true", ok, err)
	}
	dobj, err := st.Get(ctx, dead)
	if err != nil || dobj.ContentType != "application/json" || dobj.ContentEncoding != "gzip" {
		t.Fatalf("the copy = %+v, %v; want the headers kept", dobj, err)
	}
	if err := st.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if err := st.Copy(ctx, key, dead); !parking.IsNotFound(err) {
		t.Errorf("Copy of a missing object = %v; want IsNotFound", err)
	}
	if _, err := st.Get(ctx, key); !parking.IsNotFound(err) {
		t.Errorf("Get of a deleted object = %v; want IsNotFound", err)
	}
	if err := st.Delete(ctx, dead); err != nil {
		t.Fatal(err)
	}
	if err := st.Delete(ctx, dead); err != nil {
		t.Errorf("Delete of a missing object = %v; want nil", err)
	}
	s3.FailBucket("park", http.StatusServiceUnavailable)
	if err := st.Put(ctx, key, sink.BytesBody(data), opts); err == nil {
		t.Error("Put to a failing bucket succeeded")
	}
	if _, err := st.Get(ctx, key); err == nil || parking.IsNotFound(err) {
		t.Errorf("Get from a failing bucket = %v; want an error that is not IsNotFound", err)
	}
	s3.HealBucket("park")
	if err := st.Put(ctx, key, sink.BytesBody(data), opts); err != nil {
		t.Errorf("Put after heal = %v", err)
	}
}

func ExampleStore_ParkedKey() {
	st, err := parking.New(parking.Config{Bucket: "ops-parking", Region: "eu-central-1", Prefix: "hitship/",
		Credentials: credentials.NewStaticCredentialsProvider("AKIAEXAMPLE", "secret", "")})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(st.ParkedKey("acme", "wallarm/wallarm_hits_1687240800_3_42.json"))
	fmt.Println(st.DeadKey("acme", "wallarm/wallarm_hits_1687240800_3_42.json"))
	// Output:
	// hitship/parked/acme/wallarm/wallarm_hits_1687240800_3_42.json
	// hitship/dead/acme/wallarm/wallarm_hits_1687240800_3_42.json
}

// countingTransport counts the body bytes of requests and responses.
type countingTransport struct {
	next      http.RoundTripper
	sent, got atomic.Int64
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.ContentLength > 0 {
		c.sent.Add(r.ContentLength)
	}
	resp, err := c.next.RoundTrip(r)
	if err == nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &c.got}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// TestCopyIsServerSide (issue #11, also-found): keeping a dead letter's copy
// moves no object bytes through hitship, so it does not depend on the
// object's size (before, a copy was a GET and a PUT of the whole object, which
// a large object could not finish within the dead-letter hook's 5 s: it was
// retried forever). Headers and user metadata are kept.
func TestCopyIsServerSide(t *testing.T) {
	s3 := testenv.MustS3(t, testenv.S3Options{Buckets: []string{"park"}})
	ct := &countingTransport{next: http.DefaultTransport}
	st, err := parking.New(parking.Config{Bucket: "park", Region: testenv.S3Region, Endpoint: s3.URL(), PathStyle: true,
		Prefix: "hitship/", Credentials: credentials.NewStaticCredentialsProvider(testenv.S3AccessKey, testenv.S3SecretKey, ""),
		HTTPClient: &http.Client{Transport: ct}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	data := bytes.Repeat([]byte("0123456789abcdef"), 512<<10) // 8 MiB
	key := st.ParkedKey("b", "hits/a b+c/x.json.gz")
	if err := st.Put(ctx, key, sink.BytesBody(data), sink.PutOptions{ContentType: "application/json", ContentEncoding: "gzip"}); err != nil {
		t.Fatal(err)
	}
	ct.sent.Store(0)
	ct.got.Store(0)
	dead := st.DeadKey("b", "hits/a b+c/x.json.gz")
	if err := st.Copy(ctx, key, dead); err != nil {
		t.Fatal(err)
	}
	if moved := ct.sent.Load() + ct.got.Load(); moved > 64<<10 {
		t.Fatalf("Copy of a %d-byte object moved %d body bytes through hitship; want a server-side copy", len(data), moved)
	}
	objs, err := s3.Objects(ctx, "park")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(objs[dead], data) || !bytes.Equal(objs[key], data) {
		t.Fatalf("bucket after Copy: %d keys; want the object and its copy byte for byte", len(objs))
	}
	obj, err := st.Get(ctx, dead)
	if err != nil || obj.ContentType != "application/json" || obj.ContentEncoding != "gzip" {
		t.Fatalf("copy's headers: %+v, %v", obj, err)
	}
}

// TestCopyPartsVersitygw: objects above MaxCopyObject (S3: 5 GiB) are copied
// with UploadPartCopy, still inside the bucket; versitygw implements it
// (gofakes3 does not). Limits are lowered so that 12 MiB take three parts.
func TestCopyPartsVersitygw(t *testing.T) {
	v := testenv.MustVersitygw(t, "park")
	st, err := parking.New(parking.Config{Bucket: "park", Region: testenv.S3Region, Endpoint: v.URL(), PathStyle: true,
		Prefix: "hitship/", Credentials: credentials.NewStaticCredentialsProvider(testenv.VersitygwAccessKey, testenv.VersitygwSecretKey, ""),
		MaxCopyObject: 5 << 20, CopyPartSize: 5 << 20})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for _, size := range []int{3 << 20, 12<<20 + 17} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			data := make([]byte, size)
			for i := range data {
				data[i] = byte(i * 7 % 251)
			}
			key := st.ParkedKey("b", fmt.Sprintf("hits/x%d.json.gz", size))
			if err := st.Put(ctx, key, sink.BytesBody(data), sink.PutOptions{ContentType: "application/json", ContentEncoding: "gzip"}); err != nil {
				t.Fatal(err)
			}
			dead := st.DeadKey("b", fmt.Sprintf("hits/x%d.json.gz", size))
			if err := st.Copy(ctx, key, dead); err != nil {
				t.Fatal(err)
			}
			obj, err := st.Get(ctx, dead)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(obj.Data, data) || obj.ContentType != "application/json" || obj.ContentEncoding != "gzip" {
				t.Fatalf("copy: %d bytes (want %d, equal %v), %q %q", len(obj.Data), len(data), bytes.Equal(obj.Data, data), obj.ContentType, obj.ContentEncoding)
			}
		})
	}
}

// TestDownload: the object lands in a file of dir, byte for byte with its
// headers; Close removes it; a missing object leaves nothing behind.
func TestDownload(t *testing.T) {
	st, _ := newStore(t)
	ctx := t.Context()
	dir := t.TempDir()
	data := bytes.Repeat([]byte("hit,"), 100_000)
	key := st.ParkedKey("b", "hits/x.jsonl")
	if err := st.Put(ctx, key, sink.BytesBody(data), sink.PutOptions{ContentType: "application/x-ndjson", ContentEncoding: "gzip"}); err != nil {
		t.Fatal(err)
	}
	f, err := st.Download(ctx, key, dir)
	if err != nil {
		t.Fatal(err)
	}
	if f.Size() != int64(len(data)) || f.ContentType != "application/x-ndjson" || f.ContentEncoding != "gzip" {
		t.Fatalf("file: size %d, %q %q", f.Size(), f.ContentType, f.ContentEncoding)
	}
	for range 2 { // re-openable: a retry re-reads it
		r, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read back %d bytes, %v", len(got), err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if _, err := st.Download(ctx, st.ParkedKey("b", "missing"), dir); !parking.IsNotFound(err) {
		t.Fatalf("Download of a missing object = %v; want IsNotFound", err)
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Fatalf("files left in dir: %v", left)
	}
}
