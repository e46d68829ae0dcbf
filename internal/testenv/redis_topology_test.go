package testenv

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// retry calls f until it succeeds or ctx ends: clients see errors while a
// topology changes.
func retry(ctx context.Context, t *testing.T, what string, f func(context.Context) error) {
	t.Helper()
	if err := pollUntil(ctx, what, f); err != nil {
		t.Fatal(err)
	}
}

func TestRedisSentinelFailover(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s := MustRedisSentinel(t, RedisSentinelOptions{Persist: true, Password: "data-pw", SentinelPassword: "sentinel-pw"})

	c := redis.NewFailoverClient(s.FailoverOptions())
	defer c.Close()
	if err := c.Set(ctx, "before", "1", 0).Err(); err != nil {
		t.Fatalf("SET before failover: %v", err)
	}
	// WAIT 1: the write is on the replica before the master dies.
	if n, err := c.Do(ctx, "WAIT", 1, 2000).Int(); err != nil || n != 1 {
		t.Fatalf("WAIT 1 = %d, %v; want 1 replica", n, err)
	}

	old, err := s.KillMaster(ctx)
	if err != nil {
		t.Fatalf("KillMaster: %v", err)
	}
	start := time.Now()
	master, err := s.WaitFailover(ctx)
	if err != nil {
		t.Fatalf("WaitFailover: %v", err)
	}
	t.Logf("failover %s -> %s in %s", old, master, time.Since(start).Round(time.Millisecond))
	if master == old {
		t.Fatalf("WaitFailover returned the killed master %s", old)
	}
	if got, err := s.MasterAddr(ctx); err != nil || got != master {
		t.Fatalf("MasterAddr = %q, %v; want %s", got, err, master)
	}

	retry(ctx, t, "SET after failover", func(ctx context.Context) error {
		return c.Set(ctx, "after", "2", 0).Err()
	})
	if got, err := c.Get(ctx, "before").Result(); err != nil || got != "1" {
		t.Fatalf("GET before = %q, %v; want the value written before the failover", got, err)
	}

	// The killed master comes back as a replica of the new one.
	if err := s.Restart(ctx, old); err != nil {
		t.Fatalf("Restart(%s): %v", old, err)
	}
	rc := redis.NewClient(&redis.Options{Addr: old, Password: "data-pw"})
	defer rc.Close()
	if got, err := rc.Get(ctx, "after").Result(); err != nil || got != "2" {
		t.Fatalf("GET after on the restarted node = %q, %v; want 2", got, err)
	}
	if got, err := s.MasterAddr(ctx); err != nil || got != master {
		t.Fatalf("MasterAddr after Restart = %q, %v; want %s still", got, err, master)
	}
}

func TestRedisClusterRestartMaster(t *testing.T) {
	tests := []struct {
		name     string
		replicas int
	}{
		{name: "masters only: data from the append-only file", replicas: 0},
		{name: "one replica each", replicas: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			start := time.Now()
			rc := MustRedisCluster(t, RedisClusterOptions{Persist: true, Replicas: tt.replicas})
			t.Logf("cluster of %d nodes up in %s", len(rc.Addrs()), time.Since(start).Round(time.Millisecond))
			c := redis.NewClusterClient(rc.ClusterOptions())
			defer c.Close()

			// One key per master at least.
			keys := map[string]string{} // master -> key
			for i := 0; len(keys) < 3; i++ {
				if i > 100 {
					t.Fatalf("100 keys on masters %v only", keys)
				}
				k := "key" + strconv.Itoa(i)
				m, err := rc.MasterFor(ctx, k)
				if err != nil {
					t.Fatalf("MasterFor(%s): %v", k, err)
				}
				if _, ok := keys[m]; !ok {
					keys[m] = k
				}
			}
			for _, k := range keys {
				if err := c.Set(ctx, k, "v-"+k, 0).Err(); err != nil {
					t.Fatalf("SET %s: %v", k, err)
				}
			}

			victim := rc.Addrs()[0]
			start = time.Now()
			if err := rc.RestartMaster(ctx, victim); err != nil {
				t.Fatalf("RestartMaster(%s): %v", victim, err)
			}
			t.Logf("master %s restarted, cluster ok in %s", victim, time.Since(start).Round(time.Millisecond))
			for _, k := range keys {
				var got string
				retry(ctx, t, "GET "+k, func(ctx context.Context) (err error) {
					got, err = c.Get(ctx, k).Result()
					return err
				})
				if got != "v-"+k {
					t.Fatalf("GET %s = %q, want %q", k, got, "v-"+k)
				}
			}
		})
	}
}

func TestRedisTLSAndACL(t *testing.T) {
	const user, pw = "hitship", "s3cret"
	optional := MustRedis(t, RedisOptions{TLS: &RedisTLS{}, Users: map[string]string{user: pw}})
	mutual := MustRedis(t, RedisOptions{TLS: &RedisTLS{RequireClientCert: true}, Users: map[string]string{user: pw}})
	for _, r := range []*Redis{optional, mutual} {
		if r.Miniredis() {
			t.Fatal("TLS server fell back to miniredis")
		}
	}
	caOnly := func(r *Redis) *tls.Config {
		c := r.TLSConfig()
		c.Certificates = nil
		return c
	}
	tests := []struct {
		name     string
		server   *Redis
		tls      *tls.Config
		user, pw string
		wantErr  string // "" means PING answers
	}{
		{name: "CA and ACL user", server: optional, tls: caOnly(optional), user: user, pw: pw},
		{name: "plain TCP", server: optional, tls: nil, user: user, pw: pw, wantErr: "EOF|reset|i/o timeout"},
		{name: "without the CA", server: optional, tls: &tls.Config{MinVersion: tls.VersionTLS12}, user: user, pw: pw, wantErr: "certificate"},
		{name: "wrong password", server: optional, tls: caOnly(optional), user: user, pw: "wrong", wantErr: "WRONGPASS"},
		{name: "default user is off", server: optional, tls: caOnly(optional), wantErr: "NOAUTH"},
		{name: "mutual TLS with client certificate", server: mutual, tls: mutual.TLSConfig(), user: user, pw: pw},
		{name: "mutual TLS without client certificate", server: mutual, tls: caOnly(mutual), user: user, pw: pw, wantErr: "certificate|EOF|reset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			c := redis.NewClient(&redis.Options{
				Addr: tt.server.Addr(), TLSConfig: tt.tls, Username: tt.user, Password: tt.pw,
				DialTimeout: time.Second, ReadTimeout: time.Second, MaxRetries: -1,
			})
			defer c.Close()
			err := c.Ping(ctx).Err()
			if err != nil {
				t.Logf("PING: %v", err)
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("PING: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("PING answered; want an error matching %q", tt.wantErr)
			case tt.wantErr != "" && !regexp.MustCompile(tt.wantErr).MatchString(err.Error()):
				t.Fatalf("PING error %q does not match %q", err, tt.wantErr)
			}
		})
	}
	// The harness's own client logs in over TLS as the ACL user.
	ctx := context.Background()
	if got, err := mutual.Client().Do(ctx, "ACL", "WHOAMI").Text(); err != nil || got != user {
		t.Fatalf("Client ACL WHOAMI = %q, %v; want %s", got, err, user)
	}
}

// TestRedisTopologiesNeedRedisServer: sentinel, cluster, TLS and ACL users
// have no miniredis fallback; without the binary they say so with
// ErrNoRedisServer (which the Must wrappers turn into a skip).
func TestRedisTopologiesNeedRedisServer(t *testing.T) {
	const missing = "testenv-no-such-redis-server"
	tests := []struct {
		name  string
		start func() (io.Closer, error)
	}{
		{name: "sentinel", start: func() (io.Closer, error) {
			return StartRedisSentinel(RedisSentinelOptions{Binary: missing})
		}},
		{name: "cluster", start: func() (io.Closer, error) {
			return StartRedisCluster(RedisClusterOptions{Binary: missing})
		}},
		{name: "tls", start: func() (io.Closer, error) {
			return StartRedis(RedisOptions{Binary: missing, TLS: &RedisTLS{}})
		}},
		{name: "acl users", start: func() (io.Closer, error) {
			return StartRedis(RedisOptions{Binary: missing, Users: map[string]string{"u": "p"}})
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.start()
			if !errors.Is(err, ErrNoRedisServer) {
				if err == nil {
					_ = c.Close()
				}
				t.Fatalf("err = %v, want ErrNoRedisServer", err)
			}
		})
	}
}
