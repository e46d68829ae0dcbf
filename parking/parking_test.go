package parking_test

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"
	"go.uber.org/goleak"

	"hitship/internal/testenv"
	"hitship/parking"
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
