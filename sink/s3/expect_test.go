package s3_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"hitship/internal/testenv"
	"hitship/sink"
	s3sink "hitship/sink/s3"
)

// TestExpectContinue412Versitygw (issue #11, defect 13, first link): a PUT
// with If-None-Match: * of an object that is already there, above the 2 MiB
// where hitship sends Expect: 100-continue. versitygw answers 412 before the
// body and closes the connection; that is "already exists", not "could not
// reach the S3 endpoint".
func TestExpectContinue412Versitygw(t *testing.T) {
	v := testenv.MustVersitygw(t, testBucket)
	store := newS3Store(t, v.URL(), func(c *s3sink.S3Config) {
		c.Credentials = credentials.NewStaticCredentialsProvider(testenv.VersitygwAccessKey, testenv.VersitygwSecretKey, "")
		c.MultipartThreshold = 64 << 20 // single PUTs: the path that sends Expect: 100-continue
	})
	for _, size := range []int{1 << 20, 3 << 20, 20 << 20} {
		data := bytes.Repeat([]byte("h"), size)
		key := fmt.Sprintf("wallarm_hits_1687240800_0_%d.json", size)
		if err := store.Put(t.Context(), key, sink.BytesBody(data), sink.PutOptions{IfNoneMatch: true}); err != nil {
			t.Fatalf("%d bytes: first Put: %v", size, err)
		}
		for i := range 3 {
			err := store.Put(t.Context(), key, sink.BytesBody(data), sink.PutOptions{IfNoneMatch: true})
			if !sink.IsAlreadyExists(err) {
				t.Errorf("%d bytes: Put %d of an object already there = %v (%s); want IsAlreadyExists", size, i+2, err, s3sink.Explain(err).Problem)
			}
		}
	}
}
