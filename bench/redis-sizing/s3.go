package main

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"
)

// brokenPrefix starts the bucket names this endpoint answers NoSuchBucket
// for: the broken integrations, whose objects are parked.
const brokenPrefix = "missing-"

// customers stands in for the customers' buckets over plain HTTP: it reads
// and discards every PutObject body (the Redis state does not depend on what
// is stored) and answers 404 NoSuchBucket for buckets named brokenPrefix*.
type customers struct {
	puts, refused atomic.Int64
}

func (c *customers) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	bucket, _, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if strings.HasPrefix(bucket, brokenPrefix) {
		c.refused.Add(1)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusNotFound)
		_, _ = io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message><BucketName>`+bucket+`</BucketName></Error>`)
		return
	}
	if r.Method != http.MethodPut || r.URL.Query().Has("uploadId") {
		// hitship's objects here are far below the multipart threshold.
		http.Error(w, "not implemented", http.StatusNotImplemented)
		return
	}
	c.puts.Add(1)
	w.Header().Set("ETag", `"x"`)
}

// serve serves h on 127.0.0.1:random over HTTP; it returns the URL and a
// stop function.
func serve(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String(), func() { srv.Close() }, nil
}
