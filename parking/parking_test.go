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
	if err := st.Move(ctx, key, dead); err != nil {
		t.Fatal(err)
	}
	// A repeated move (crash after the copy) succeeds.
	if err := st.Move(ctx, key, dead); err != nil {
		t.Fatalf("repeated Move = %v; want nil", err)
	}
	objs, err := s3.Objects(ctx, "park")
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || !bytes.Equal(objs[dead], data) {
		t.Errorf("bucket = %v; want only %s", objs, dead)
	}
	if _, err := st.Get(ctx, key); !parking.IsNotFound(err) {
		t.Errorf("Get of a moved object = %v; want IsNotFound", err)
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
