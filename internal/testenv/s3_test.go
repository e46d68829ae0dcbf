package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

func TestS3RoundTrip(t *testing.T) {
	sample, err := os.ReadFile("../../hit/testdata/sample_hits.jsonl")
	if err != nil {
		sample = []byte("{\"time\":\"1687241470\"}\n{\"time\":\"1687241471\"}\n")
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 1<<16) // 1 MiB
	tests := []struct {
		name string
		dir  bool
		key  string
		body []byte
	}{
		{name: "memory, ndjson sample", key: "p/wallarm_hits_1687241400_0_5.jsonl", body: sample},
		{name: "memory, empty object", key: "empty.json", body: []byte{}},
		{name: "dir, nested key", dir: true, key: "dt=2023-06-20/hour=06/wallarm_hits_1.json", body: sample},
		{name: "dir, 1 MiB", dir: true, key: "big.jsonl", body: big},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			opts := S3Options{Buckets: []string{"bkt"}}
			if tt.dir {
				opts.Dir = t.TempDir()
			}
			s := MustS3(t, opts)
			_, err := s.Client().PutObject(ctx, &s3.PutObjectInput{
				Bucket:        aws.String("bkt"),
				Key:           aws.String(tt.key),
				Body:          bytes.NewReader(tt.body),
				ContentLength: aws.Int64(int64(len(tt.body))),
				ContentType:   aws.String("application/x-ndjson"),
			})
			if err != nil {
				t.Fatalf("PutObject: %v", err)
			}
			out, err := s.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String("bkt"), Key: aws.String(tt.key)})
			if err != nil {
				t.Fatalf("GetObject: %v", err)
			}
			got, err := io.ReadAll(out.Body)
			out.Body.Close()
			if err != nil {
				t.Fatalf("read body: %v", err)
			}
			if !bytes.Equal(got, tt.body) {
				t.Fatalf("GetObject returned %d bytes, want the %d put (first differing bytes differ)", len(got), len(tt.body))
			}
			objs, err := s.Objects(ctx, "bkt")
			if err != nil {
				t.Fatalf("Objects: %v", err)
			}
			if len(objs) != 1 || !bytes.Equal(objs[tt.key], tt.body) {
				t.Fatalf("Objects = %d objects, want exactly %q with the put bytes", len(objs), tt.key)
			}
			if tt.dir {
				onDisk, err := os.ReadFile(filepath.Join(opts.Dir, "bkt", filepath.FromSlash(tt.key)))
				if err != nil {
					t.Fatalf("object not a plain file under Dir: %v", err)
				}
				if !bytes.Equal(onDisk, tt.body) {
					t.Fatal("file on disk differs from the put bytes")
				}
			}
		})
	}
}

func TestS3DirSurvivesRestart(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := StartS3(S3Options{Dir: dir, Buckets: []string{"bkt"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("a/b"), Body: bytes.NewReader([]byte("x"))}); err != nil {
		t.Fatalf("PutObject: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	s2 := MustS3(t, S3Options{Dir: dir, Buckets: []string{"bkt"}})
	objs, err := s2.Objects(ctx, "bkt")
	if err != nil {
		t.Fatalf("Objects: %v", err)
	}
	if string(objs["a/b"]) != "x" || len(objs) != 1 {
		t.Fatalf("after restart Objects = %q, want {a/b: x}", objs)
	}
}

// TestS3CutUploadKeepsObject: an overwrite whose body stops short of its
// Content-Length (the client died mid-upload) stores nothing, as S3 does; the
// object written before stays whole (gofakes3's file backend alone truncated it).
func TestS3CutUploadKeepsObject(t *testing.T) {
	ctx := context.Background()
	for _, dir := range []bool{false, true} {
		opts := S3Options{Buckets: []string{"bkt"}}
		if dir {
			opts.Dir = t.TempDir()
		}
		s := MustS3(t, opts)
		whole := bytes.Repeat([]byte("w"), 100)
		if _, err := s.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("bkt"), Key: aws.String("k"), Body: bytes.NewReader(whole)}); err != nil {
			t.Fatalf("PutObject: %v", err)
		}
		conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL(), "http://"))
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "PUT /bkt/k HTTP/1.1\r\nHost: %s\r\nContent-Length: 100\r\n\r\n%s", strings.TrimPrefix(s.URL(), "http://"), bytes.Repeat([]byte("p"), 40))
		time.Sleep(100 * time.Millisecond) // the server is reading the body
		_ = conn.Close()
		time.Sleep(200 * time.Millisecond) // and sees it end
		objs, err := s.Objects(ctx, "bkt")
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(objs["k"], whole) {
			t.Fatalf("dir=%v: after a cut upload the object is %q, want the whole one", dir, objs["k"])
		}
	}
}

func TestS3FailBucket(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		wantCode string
	}{
		{name: "access denied", status: 403, wantCode: "AccessDenied"},
		{name: "no such bucket", status: 404, wantCode: "NoSuchBucket"},
		{name: "slow down", status: 503, wantCode: "SlowDown"},
		{name: "internal error", status: 500, wantCode: "InternalError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			s := MustS3(t, S3Options{Buckets: []string{"bad", "good"}})
			put := func(bucket string) error {
				_, err := s.Client().PutObject(ctx, &s3.PutObjectInput{
					Bucket: aws.String(bucket), Key: aws.String("k"), Body: bytes.NewReader([]byte("body")),
				})
				return err
			}
			s.FailBucket("bad", tt.status)

			err := put("bad")
			var apiErr smithy.APIError
			if !errors.As(err, &apiErr) || apiErr.ErrorCode() != tt.wantCode {
				t.Fatalf("put to failing bucket: err = %v, want API error %s", err, tt.wantCode)
			}
			var respErr *smithyhttp.ResponseError
			if !errors.As(err, &respErr) || respErr.HTTPStatusCode() != tt.status {
				t.Fatalf("put to failing bucket: err = %v, want HTTP %d", err, tt.status)
			}
			if err := put("good"); err != nil {
				t.Fatalf("another bucket must keep working: %v", err)
			}
			if objs, err := s.Objects(ctx, "bad"); err != nil || len(objs) != 0 {
				t.Fatalf("failing bucket holds %d objects (err %v), want none", len(objs), err)
			}

			s.HealBucket("bad")
			if err := put("bad"); err != nil {
				t.Fatalf("put after HealBucket: %v", err)
			}
			objs, err := s.Objects(ctx, "bad")
			if err != nil || string(objs["k"]) != "body" {
				t.Fatalf("after heal Objects = %q (err %v), want {k: body}", objs, err)
			}
		})
	}
}
