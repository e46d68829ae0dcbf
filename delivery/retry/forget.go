package retry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// This file holds what `hitship forget` and DELETE /v1/integrations/{name}
// need of the queue: retiring or deleting every entry of an integration that
// is no longer configured, and its inline-failure notes.

// retireScript: KEYS due, leased, tokens, entries, dead; ARGV id, json, now
// ms. Moves a waiting or leased entry to the dead letters (a dead letter is
// left as it is). 1 moved.
var retireScript = redis.NewScript(`
if redis.call('ZSCORE', KEYS[5], ARGV[1]) then return 0 end
if not redis.call('HGET', KEYS[4], ARGV[1]) then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HSET', KEYS[4], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[5], ARGV[3], ARGV[1])
return 1
`)

// RetireIntegration turns every waiting or leased entry of integration into
// a dead letter with reason, at now: no worker attempts it again, and
// `hitship redeliver` (Requeue) can send it if the integration comes back.
// Dead letters stay as they are; the parked objects are not touched (an
// entry's ParkedKey still names its object). A holder of a lease on an entry
// loses it (IsLeaseLost). It returns how many entries it retired. It scans
// the queue (ListByIntegration); each entry moves atomically, the whole does
// not.
func (q *Queue) RetireIntegration(ctx context.Context, integration, reason string, now time.Time) (int, error) {
	if integration == "" {
		return 0, fmt.Errorf("retry: retire without an integration: %w", ErrInvalid)
	}
	es, err := q.ListByIntegration(ctx, integration)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range es {
		if e.State == StateDead {
			continue
		}
		e.State = ""
		e.DeadAt, e.DeadReason, e.LastError = now, reason, reason
		b, err := json.Marshal(e)
		if err != nil {
			return n, fmt.Errorf("retry: retire %s: encode: %w", e.ID, err)
		}
		k, err := retireScript.Run(ctx, q.rdb, []string{q.due, q.leased, q.tokens, q.entries, q.dead}, e.ID, b, ms(now)).Int()
		if err != nil {
			return n, fmt.Errorf("retry: retire %s: %w", e.ID, err)
		}
		n += k
	}
	return n, nil
}

// deleteScript: KEYS due, leased, tokens, entries, dead; ARGV ids. Deletes
// the entries in any state. Returns how many existed.
var deleteScript = redis.NewScript(`
local n = 0
for i = 1, #ARGV do
  redis.call('ZREM', KEYS[1], ARGV[i])
  redis.call('ZREM', KEYS[2], ARGV[i])
  redis.call('HDEL', KEYS[3], ARGV[i])
  redis.call('ZREM', KEYS[5], ARGV[i])
  n = n + redis.call('HDEL', KEYS[4], ARGV[i])
end
return n
`)

// DeleteIntegration deletes every entry of integration, in any state
// (waiting, leased, dead), and returns them as they were. The parked objects
// are the caller's to delete. A holder of a lease loses it (IsLeaseLost). It
// scans the queue (ListByIntegration); not atomic across pages.
func (q *Queue) DeleteIntegration(ctx context.Context, integration string) ([]Entry, error) {
	if integration == "" {
		return nil, fmt.Errorf("retry: delete without an integration: %w", ErrInvalid)
	}
	es, err := q.ListByIntegration(ctx, integration)
	if err != nil {
		return nil, err
	}
	const page = 256
	for i := 0; i < len(es); i += page {
		args := make([]any, 0, page)
		for _, e := range es[i:min(i+page, len(es))] {
			args = append(args, e.ID)
		}
		if err := deleteScript.Run(ctx, q.rdb, []string{q.due, q.leased, q.tokens, q.entries, q.dead}, args...).Err(); err != nil {
			return nil, fmt.Errorf("retry: delete %s: %w", integration, err)
		}
	}
	return es, nil
}

// InlineFailures returns the keys of integration's inline-failure notes
// (NoteInlineFailure: one per object whose retry cycle 1 failed inline and
// was not yet delivered or parked). It scans Redis (SCAN MATCH).
func (q *Queue) InlineFailures(ctx context.Context, integration string) ([]string, error) {
	if integration == "" {
		return nil, fmt.Errorf("retry: inline failures without an integration: %w", ErrInvalid)
	}
	match := globEscape(q.failureKey(integration+"/")) + "*"
	var keys []string
	scan := func(ctx context.Context, c redis.Cmdable) error {
		it := c.Scan(ctx, 0, match, 512).Iterator()
		for it.Next(ctx) {
			keys = append(keys, it.Val())
		}
		return it.Err()
	}
	var err error
	if cc, ok := q.rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	} else {
		err = scan(ctx, q.rdb)
	}
	if err != nil {
		return nil, fmt.Errorf("retry: inline failures of %s: %w", integration, err)
	}
	return keys, nil
}

// ForgetInlineFailures deletes every inline-failure note of integration and
// returns how many it deleted.
func (q *Queue) ForgetInlineFailures(ctx context.Context, integration string) (int, error) {
	keys, err := q.InlineFailures(ctx, integration)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, k := range keys { // one key per call: they may lie in different cluster slots
		d, err := q.rdb.Del(ctx, k).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return n, fmt.Errorf("retry: forget inline failures of %s: %w", integration, err)
		}
		n += int(d)
	}
	return n, nil
}

// globEscape escapes the glob characters of a SCAN MATCH pattern.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}
