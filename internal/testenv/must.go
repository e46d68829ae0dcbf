package testenv

import (
	"errors"
	"os"
	"testing"
)

// MustKafka starts a Kafka for t and closes it in t.Cleanup; it fails the
// test when the broker cannot start.
func MustKafka(t testing.TB, opts KafkaOptions) *Kafka {
	t.Helper()
	k, err := StartKafka(opts)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(k.Close)
	return k
}

// MustS3 starts an S3 for t and closes it in t.Cleanup.
func MustS3(t testing.TB, opts S3Options) *S3 {
	t.Helper()
	s, err := StartS3(opts)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("testenv: close s3: %v", err)
		}
	})
	return s
}

// MustRedis starts a Redis for t and closes it in t.Cleanup. Without a
// redis-server binary it falls back to miniredis, except with TLS or Users:
// then the test is skipped, or fails under CI=true.
func MustRedis(t testing.TB, opts RedisOptions) *Redis {
	t.Helper()
	r, err := StartRedis(opts)
	if err != nil {
		skipNoRedisServer(t, err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("testenv: close redis: %v", err)
		}
	})
	return r
}

// MustProxy starts a Proxy in front of target for t and closes it in t.Cleanup.
func MustProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	p, err := StartProxy(target)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// skipNoRedisServer skips t when err says there is no redis-server binary,
// except under CI=true, where it fails: CI installs Debian's redis-server.
// Other errors fail t.
func skipNoRedisServer(t testing.TB, err error) {
	t.Helper()
	if errors.Is(err, ErrNoRedisServer) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("testenv: %v (CI=true: the binary must be there)", err)
		}
		t.Skipf("testenv: %v", err)
	}
	t.Fatalf("testenv: %v", err)
}

// MustRedisSentinel starts a Sentinel topology for t and closes it in
// t.Cleanup. Without a redis-server binary the test is skipped, except
// under CI=true, where it fails.
func MustRedisSentinel(t testing.TB, opts RedisSentinelOptions) *RedisSentinel {
	t.Helper()
	s, err := StartRedisSentinel(opts)
	if err != nil {
		skipNoRedisServer(t, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("testenv: close redis sentinel: %v", err)
		}
	})
	return s
}

// MustRedisCluster starts a Redis Cluster for t and closes it in
// t.Cleanup. Without a redis-server binary the test is skipped, except
// under CI=true, where it fails.
func MustRedisCluster(t testing.TB, opts RedisClusterOptions) *RedisCluster {
	t.Helper()
	c, err := StartRedisCluster(opts)
	if err != nil {
		skipNoRedisServer(t, err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Errorf("testenv: close redis cluster: %v", err)
		}
	})
	return c
}
