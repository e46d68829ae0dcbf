// Package logx holds what hitship's logging needs beyond log/slog:
//
//   - RepeatLimit, a handler that holds back repeated warnings: during an
//     outage the same WARN line (a failed dial, a failed group join) would
//     otherwise come once or twice a second. The first one is logged, then at
//     most one per interval (30 s in hitship), carrying "held_back": the number
//     of identical lines not logged since the last one.
//   - Limiter, the same rule for a call site that wants it without a handler.
//   - Redis and AWS, bridges that route go-redis's logger (redis.SetLogger) and
//     the AWS SDK's (smithy logging.Logger) into slog, so that every line of a
//     JSON log is JSON.
//
// Everything here is safe for concurrent use.
package logx

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/aws/smithy-go/logging"
)

// Limiter lets the first event of a key through, then at most one per
// interval, and counts the events it held back in between.
type Limiter struct {
	interval time.Duration
	now      func() time.Time

	mu   sync.Mutex
	keys map[string]*limitEntry
}

type limitEntry struct {
	last time.Time // when an event of the key was last let through
	held int       // events held back since
}

// maxKeys bounds the keys a Limiter remembers: past it, keys whose interval
// has passed are forgotten (with their held-back counts).
const maxKeys = 4096

// NewLimiter returns a Limiter; now nil means time.Now.
func NewLimiter(interval time.Duration, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{interval: interval, now: now, keys: make(map[string]*limitEntry)}
}

// Allow reports whether an event of key may be logged now and, if so, how
// many events of key were held back since the last one let through.
func (l *Limiter) Allow(key string) (ok bool, heldBack int) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.keys[key]
	if e == nil {
		if len(l.keys) >= maxKeys {
			for k, o := range l.keys {
				if now.Sub(o.last) >= l.interval {
					delete(l.keys, k)
				}
			}
		}
		l.keys[key] = &limitEntry{last: now}
		return true, 0
	}
	if now.Sub(e.last) < l.interval {
		e.held++
		return false, 0
	}
	heldBack = e.held
	e.last, e.held = now, 0
	return true, heldBack
}

// HeldBackKey is the attribute a let-through repeat carries: how many
// identical lines were held back since the previous one.
const HeldBackKey = "held_back"

// RepeatLimit wraps h so that a WARN record repeating one logged less than
// interval ago is held back. Records repeat when their message (with every run
// of digits taken as equal: third-party messages embed ports and counts) and
// their attributes, the logger's included, are equal; "err" and "error" are
// left out, since an outage's error text varies from line to line. Other
// levels pass unchanged: errors are rare and each one counts, debug and info
// lines are the operator's choice.
func RepeatLimit(h slog.Handler, interval time.Duration) slog.Handler {
	return &limitHandler{next: h, lim: NewLimiter(interval, nil)}
}

type limitHandler struct {
	next   slog.Handler
	lim    *Limiter // shared by the handlers derived with WithAttrs/WithGroup
	prefix string   // the key of the logger's own attributes and groups
}

func (h *limitHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *limitHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn || r.Level >= slog.LevelError {
		return h.next.Handle(ctx, r)
	}
	var b strings.Builder
	b.WriteString(h.prefix)
	b.WriteString("\x00")
	b.WriteString(digitsAsOne(r.Message))
	r.Attrs(func(a slog.Attr) bool {
		writeAttr(&b, a)
		return true
	})
	ok, held := h.lim.Allow(b.String())
	if !ok {
		return nil
	}
	if held > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int(HeldBackKey, held))
	}
	return h.next.Handle(ctx, r)
}

func (h *limitHandler) WithAttrs(as []slog.Attr) slog.Handler {
	var b strings.Builder
	b.WriteString(h.prefix)
	for _, a := range as {
		writeAttr(&b, a)
	}
	return &limitHandler{next: h.next.WithAttrs(as), lim: h.lim, prefix: b.String()}
}

func (h *limitHandler) WithGroup(name string) slog.Handler {
	return &limitHandler{next: h.next.WithGroup(name), lim: h.lim, prefix: h.prefix + "\x00g:" + name}
}

func writeAttr(b *strings.Builder, a slog.Attr) {
	if a.Key == "err" || a.Key == "error" {
		return
	}
	b.WriteString("\x00")
	b.WriteString(a.Key)
	b.WriteString("=")
	b.WriteString(a.Value.Resolve().String())
}

// digitsAsOne replaces every run of digits in s by "#".
func digitsAsOne(s string) string {
	var b strings.Builder
	inRun := false
	for _, c := range s {
		if c >= '0' && c <= '9' {
			if !inRun {
				b.WriteByte('#')
			}
			inRun = true
			continue
		}
		inRun = false
		b.WriteRune(c)
	}
	return b.String()
}

// RedisLogger is go-redis's logger interface (redis.SetLogger).
type RedisLogger interface {
	Printf(ctx context.Context, format string, v ...any)
}

// Redis returns a logger for redis.SetLogger that writes every go-redis line
// (dial failures, pool and pub/sub trouble: all warnings) to log at WARN, with
// source=go-redis and without go-redis's own "redis: " prefix.
func Redis(log *slog.Logger) RedisLogger { return redisLogger{log} }

type redisLogger struct{ log *slog.Logger }

func (r redisLogger) Printf(ctx context.Context, format string, v ...any) {
	msg := strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: ")
	r.log.WarnContext(ctx, msg, "source", "go-redis")
}

// AWS returns a smithy logger (aws.Config.Logger, config.WithLogger, the
// Logger of a service client's Options) that writes to log: the SDK's WARN
// entries at WARN, DEBUG ones at DEBUG, with source=aws-sdk.
func AWS(log *slog.Logger) logging.Logger {
	return logging.LoggerFunc(func(c logging.Classification, format string, v ...any) {
		level := slog.LevelInfo
		switch c {
		case logging.Warn:
			level = slog.LevelWarn
		case logging.Debug:
			level = slog.LevelDebug
		}
		log.Log(context.Background(), level, fmt.Sprintf(format, v...), "source", "aws-sdk")
	})
}
