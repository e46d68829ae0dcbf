package main

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"hitship/health"
	"hitship/integrations/registry"
)

// The records that grow over hours, which a run of a minute cannot show:
// filled here to their steady state the way hitship writes them.

// steady is the size of those records at their steady state.
type steady struct {
	ledger10m, ledger1m, ledgerFailing int64 // one health ledger: see ledgers
	evTypical, evWorst, evLen          int64 // the events stream at its cap: see eventsCap
}

func fillSteady(ctx context.Context, rdb *redis.Client) (steady, error) {
	var s steady
	var err error
	if s.ledger10m, s.ledger1m, s.ledgerFailing, err = ledgers(ctx, rdb); err != nil {
		return s, err
	}
	if s.evTypical, s.evLen, err = eventsCap(ctx, rdb, registry.MaxEvents, 100); err != nil {
		return s, err
	}
	s.evWorst, _, err = eventsCap(ctx, rdb, registry.MaxEvents, registry.MaxReasonBytes)
	return s, err
}

// ledgers fills three health ledgers over 12 hours through health.Ledger and
// returns their MEMORY USAGE: a healthy integration with outcomes in one
// minute of every 10 (10-minute windows: the objects of a window are written
// in the minute after it), one with outcomes in every minute (1-minute
// windows), and one that failed on the customer's side in every minute (the
// most a ledger holds: 5 fields a minute, 721 minutes).
func ledgers(ctx context.Context, rdb *redis.Client) (tenMin, oneMin, failing int64, err error) {
	l, err := health.New(rdb, health.Config{Prefix: prefix, MinAttempts: 1 << 30})
	if err != nil {
		return 0, 0, 0, err
	}
	now := time.Now().Truncate(time.Minute)
	fill := func(name string, every int, o health.Outcome) (int64, error) {
		for m := 720; m >= 0; m -= every {
			if _, err := l.Record(ctx, name, o, now.Add(-time.Duration(m)*time.Minute+17*time.Second)); err != nil {
				return 0, err
			}
		}
		return rdb.MemoryUsage(ctx, l.Key(name), 0).Result()
	}
	if tenMin, err = fill("tenant-10m", 10, health.Success); err != nil {
		return 0, 0, 0, err
	}
	if oneMin, err = fill("tenant-1m", 1, health.Success); err != nil {
		return 0, 0, 0, err
	}
	failing, err = fill("tenant-failing", 1, health.FailCustomer)
	return tenMin, oneMin, failing, err
}

// eventsCap fills an events stream the way hitship writes it (XADD MAXLEN ~
// registry.MaxEvents, the fields of the registry's state changes) past its
// cap with events whose reason and by are reasonBytes long, and returns its
// MEMORY USAGE and length.
func eventsCap(ctx context.Context, rdb *redis.Client, maxLen int64, reasonBytes int) (bytes, length int64, err error) {
	key := prefix + "events"
	if err := rdb.Del(ctx, key).Err(); err != nil {
		return 0, 0, err
	}
	reason := strings.Repeat("r", reasonBytes)
	at := time.Date(2026, 12, 5, 13, 0, 0, 0, time.UTC)
	for n := int64(0); n < maxLen+maxLen/4; n += 500 {
		if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i := range int64(500) {
				p.XAdd(ctx, &redis.XAddArgs{Stream: key, MaxLen: maxLen, Approx: true,
					Values: []any{"type", "auto_disable", "integration", "tenant-" + strconv.FormatInt(1000+(n+i)%2000, 10),
						"state", "auto_disabled", "reason", reason, "by", reason,
						"at", at.Add(time.Duration(n+i) * time.Second).Format("2006-01-02T15:04:05.000Z07:00")}})
			}
			return nil
		}); err != nil {
			return 0, 0, err
		}
	}
	if bytes, err = rdb.MemoryUsage(ctx, key, 0).Result(); err != nil {
		return 0, 0, err
	}
	length, err = rdb.XLen(ctx, key).Result()
	return bytes, length, err
}
