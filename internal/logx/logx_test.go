package logx

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go/logging"
)

func TestLimiter(t *testing.T) {
	now := time.Unix(0, 0)
	l := NewLimiter(30*time.Second, func() time.Time { return now })
	if ok, held := l.Allow("a"); !ok || held != 0 {
		t.Fatalf("first event: %v %d", ok, held)
	}
	for range 5 {
		now = now.Add(time.Second)
		if ok, _ := l.Allow("a"); ok {
			t.Fatal("a repeat within the interval was let through")
		}
	}
	if ok, _ := l.Allow("b"); !ok {
		t.Fatal("another key was held back")
	}
	now = now.Add(25 * time.Second)
	if ok, held := l.Allow("a"); !ok || held != 5 {
		t.Fatalf("after the interval: %v, held back %d; want true, 5", ok, held)
	}
	if ok, _ := l.Allow("a"); ok {
		t.Fatal("the interval did not start again")
	}
}

// logLines decodes the JSON lines in b.
func logLines(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		out = append(out, m)
	}
	return out
}

func TestRepeatLimit(t *testing.T) {
	var buf bytes.Buffer
	h := RepeatLimit(slog.NewJSONHandler(&buf, nil), time.Hour)
	log := slog.New(h).With("topic", "hits")
	for i := range 10 {
		// The message's digits and the error differ: still one line.
		log.Warn("dial 127.0.0.1:"+string(rune('0'+i))+"1 failed", "err", "connection refused "+string(rune('0'+i)))
	}
	log.Warn("dial 127.0.0.1:1 failed", "partition", 3)                // other attributes: another line
	slog.New(h).With("topic", "other").Warn("dial 127.0.0.1:1 failed") // another logger's attributes
	for range 3 {
		log.Error("config not reloaded") // errors always pass
		log.Info("progress")             // and info
	}
	got := logLines(t, &buf)
	count := map[string]int{}
	for _, m := range got {
		count[m["level"].(string)]++
	}
	if count["WARN"] != 3 || count["ERROR"] != 3 || count["INFO"] != 3 {
		t.Fatalf("lines by level %v, want 3 WARN, 3 ERROR, 3 INFO:\n%s", count, buf.String())
	}
}

func TestRepeatLimitCountsHeldBack(t *testing.T) {
	var buf bytes.Buffer
	h := RepeatLimit(slog.NewJSONHandler(&buf, nil), 50*time.Millisecond)
	log := slog.New(h)
	for range 4 {
		log.Warn("redis down")
	}
	time.Sleep(60 * time.Millisecond)
	log.Warn("redis down")
	got := logLines(t, &buf)
	if len(got) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(got), buf.String())
	}
	if n, _ := got[1][HeldBackKey].(float64); n != 3 {
		t.Fatalf("second line: %s = %v, want 3", HeldBackKey, got[1][HeldBackKey])
	}
}

func TestBridges(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	Redis(log).Printf(context.Background(), "redis: connection pool: failed to dial after %d attempts: %s", 5, "refused")
	AWS(log).Logf(logging.Warn, "Response has no supported checksum. Not validating response payload.")
	AWS(log).Logf(logging.Debug, "request %d", 7)
	got := logLines(t, &buf)
	if len(got) != 3 {
		t.Fatalf("%d lines:\n%s", len(got), buf.String())
	}
	want := []struct{ level, msg, source string }{
		{"WARN", "connection pool: failed to dial after 5 attempts: refused", "go-redis"},
		{"WARN", "Response has no supported checksum. Not validating response payload.", "aws-sdk"},
		{"DEBUG", "request 7", "aws-sdk"},
	}
	for i, w := range want {
		if got[i]["level"] != w.level || got[i]["msg"] != w.msg || got[i]["source"] != w.source {
			t.Errorf("line %d = %v, want %+v", i, got[i], w)
		}
	}
}
