package testenv

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestProxyLoseReply: a reply LoseReply drops belongs to a command the
// server ran; the client sees a lost connection. Refuse resets connections.
func TestProxyLoseReply(t *testing.T) {
	r := MustRedis(t, RedisOptions{})
	p := MustProxy(t, r.Addr())
	c := redis.NewClient(&redis.Options{Addr: p.Addr(), MaxRetries: -1, DialTimeout: time.Second})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Set(ctx, "a", "1", 0).Err(); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	p.LoseReply(func(req, _ []byte) bool {
		return bytes.Contains(req, []byte("INCR")) || bytes.Contains(req, []byte("incr"))
	})
	if err := c.Incr(ctx, "n").Err(); err == nil {
		t.Fatal("INCR answered although its reply was dropped")
	}
	if p.Lost() != 1 {
		t.Fatalf("Lost = %d", p.Lost())
	}
	if got, err := r.Client().Get(ctx, "n").Result(); err != nil || got != "1" {
		t.Fatalf("n = %q, %v: the dropped command did not run", got, err)
	}
	if got, err := c.Incr(ctx, "n").Result(); err != nil || got != 2 {
		t.Fatalf("after the fault: %d, %v", got, err)
	}
	if err := p.Refuse(true); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(ctx).Err(); err == nil {
		t.Fatal("PING answered while the proxy refuses")
	}
	if err := p.Refuse(false); err != nil {
		t.Fatal(err)
	}
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("PING after Refuse(false): %v", err)
	}
}
