package service_test

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"hitship/config"
	"hitship/delivery/retry"
	"hitship/internal/testenv"
	"hitship/service"
	"hitship/sink"
)

// TestParkedReadMemoryBounded (issue #11, also-found): a retry attempt
// streams the parked object through a file in the spool directory instead of
// reading it into memory, so a parked window of any size cannot exhaust a
// replica. Both buckets are a versitygw process, so that the bytes this
// process allocates are hitship's own: delivering a 48-MiB parked object must
// allocate far less than the object (before the fix: at least its size, in
// the buffer the whole object was read into).
func TestParkedReadMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	const size = 48 << 20
	v := testenv.MustVersitygw(t, "b-b", parkBucket)
	b := integ("b", 2, "b-b", "json")
	b.Credentials.AccessKeyID = testenv.VersitygwAccessKey
	e := newEnv(t, 1)
	t.Setenv("HITSHIP_TEST_VGW_SECRET", testenv.VersitygwSecretKey)
	b.Credentials.SecretAccessKeyEnv = "HITSHIP_TEST_VGW_SECRET"
	cfg := e.config(t, b)
	cfg.S3.Endpoint = v.URL()
	cfg.Parking = config.Parking{Bucket: parkBucket, Region: testenv.S3Region, Endpoint: v.URL(), PathStyle: true, Prefix: "hitship/"}
	cfg.Parking.Credentials.AccessKeyID, cfg.Parking.Credentials.SecretAccessKeyEnv = testenv.VersitygwAccessKey, "HITSHIP_TEST_VGW_SECRET"
	perPartition := false // the parked path of per-partition objects
	cfg.Delivery.Staged = &perPartition
	if ps := cfg.Validate(config.WithKeyTemplate(func(s string) error { _, err := sink.ParseKeyTemplate(s); return err })); len(ps) > 0 {
		t.Fatal(config.AsError(ps))
	}
	ctx := t.Context()
	st, err := service.NewParkingStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	q, err := service.NewRetryQueue(cfg, e.redis.Client())
	if err != nil {
		t.Fatal(err)
	}
	key := "hits/wallarm_hits_1687240800_0_42.json"
	pk := st.ParkedKey(b.Name, key)
	data := make([]byte, size)
	for i := range data {
		data[i] = 'a' + byte(i%26)
	}
	// The service first: its scanner's first scan is done before the object is
	// parked (the next one is 5 minutes away), so the entry below is the only
	// one.
	startService(t, "a", cfg)
	time.Sleep(2 * time.Second) // the service settles: group joined, first polls and scan made
	if err := st.Put(ctx, pk, sink.BytesBody(data), sink.PutOptions{ContentType: "application/json"}); err != nil {
		t.Fatal(err)
	}
	data = nil

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := q.Enqueue(ctx, retry.Entry{ID: b.Name + "/" + key, Integration: b.Name, ParkedKey: pk, Key: key,
		Cycle: 2, Attempt: 1, Due: time.Now(), Records: 1}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "the parked object delivered", func() bool {
		s, err := q.Stats(context.Background(), time.Now())
		return err == nil && s == (retry.Stats{})
	})
	runtime.ReadMemStats(&after)
	alloc := after.TotalAlloc - before.TotalAlloc
	t.Logf("allocated %d MiB while delivering a %d-MiB parked object", alloc>>20, size>>20)

	c := s3.New(s3.Options{Region: testenv.S3Region, BaseEndpoint: aws.String(v.URL()), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider(testenv.VersitygwAccessKey, testenv.VersitygwSecretKey, "")})
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(b.Bucket), Key: aws.String(key)})
	if err != nil || aws.ToInt64(head.ContentLength) != size {
		t.Fatalf("customer object: %+v, %v; want %d bytes", head, err, size)
	}
	if alloc > size/3 {
		t.Fatalf("delivering a %d-MiB parked object allocated %d MiB; want it streamed, not held in memory", size>>20, alloc>>20)
	}
}
