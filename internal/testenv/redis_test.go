package testenv

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func TestRedis(t *testing.T) {
	tests := []struct {
		name    string
		persist bool
		// wantAfterRestart is what GET k answers after Stop/Start.
		wantAfterRestart string
	}{
		{name: "volatile loses data on restart", persist: false, wantAfterRestart: ""},
		{name: "persist keeps data on restart", persist: true, wantAfterRestart: "v"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			r := MustRedis(t, RedisOptions{Persist: tt.persist})
			if r.Miniredis() {
				t.Skip("no redis-server binary; restart semantics differ under miniredis")
			}
			if strings.HasSuffix(r.Addr(), ":6379") {
				t.Fatalf("Addr %s uses the machine's Redis port", r.Addr())
			}
			if !strings.HasPrefix(r.Addr(), "127.0.0.1:") {
				t.Fatalf("Addr %s not on loopback", r.Addr())
			}
			c := r.Client()
			if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
				t.Fatalf("SET: %v", err)
			}
			addr := r.Addr()

			if err := r.Stop(); err != nil {
				t.Fatalf("Stop: %v", err)
			}
			short, cancelShort := context.WithTimeout(ctx, 500*time.Millisecond)
			err := c.Ping(short).Err()
			cancelShort()
			if err == nil {
				t.Fatal("PING answered while stopped")
			}

			if err := r.Start(); err != nil {
				t.Fatalf("Start: %v", err)
			}
			if r.Addr() != addr {
				t.Fatalf("Addr changed across restart: %s -> %s", addr, r.Addr())
			}
			got, err := c.Get(ctx, "k").Result()
			if errors.Is(err, redis.Nil) {
				got, err = "", nil
			}
			if err != nil {
				t.Fatalf("GET after restart: %v", err)
			}
			if got != tt.wantAfterRestart {
				t.Fatalf("GET after restart = %q, want %q", got, tt.wantAfterRestart)
			}
		})
	}
}

func TestRedisFallsBackToMiniredis(t *testing.T) {
	ctx := context.Background()
	r := MustRedis(t, RedisOptions{Binary: "testenv-no-such-redis-server"})
	if !r.Miniredis() {
		t.Fatal("want miniredis fallback when the binary is missing")
	}
	c := r.Client()
	if err := c.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if err := r.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := r.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	if got, err := c.Get(ctx, "k").Result(); err != nil || got != "v" {
		t.Fatalf("GET after restart = %q, %v; want v", got, err)
	}
}

func TestRedisCloseTwice(t *testing.T) {
	r, err := StartRedis(RedisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := r.Start(); err == nil {
		t.Fatal("Start after Close succeeded")
	}
}
