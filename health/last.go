package health

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"hitship/state"
)

// Last is what an integration's status shows of its latest uploads: when
// one last succeeded, and the last failure in plain words with the side its
// cause lies on (the console's "acme's bucket answers AccessDenied since
// 09:12: grant s3:PutObject on this ARN").
type Last struct {
	SuccessAt time.Time `json:"last_success_at,omitzero"`
	Error     *Failure  `json:"last_error,omitempty"`
	// deliveries are the last hour's per-minute delivery counts
	// (DeliveredInHour).
	deliveries [deliverySlots]minuteCount
}

// Failure is the last failed attempt of an integration.
type Failure struct {
	At time.Time `json:"at"`
	// Class is the side its cause lies on: "customer" (access denied, no
	// such bucket, wrong region, bad key, a role not assumable),
	// "provider" (5xx, throttling, timeouts) or "hitship".
	Class   string `json:"class"`
	Problem string `json:"problem,omitempty"` // s3sink's problem code
	Message string `json:"message"`
	Fix     string `json:"fix,omitempty"`
}

// lastTTL keeps the notes of an integration that stopped uploading for a
// week: "last success 3 days ago" is worth showing.
const lastTTL = 7 * 24 * time.Hour

// ClassOf names the side of a failed outcome ("" for Success).
func ClassOf(o Outcome) string {
	switch o {
	case FailCustomer:
		return "customer"
	case FailProvider:
		return "provider"
	case FailHitship:
		return "hitship"
	}
	return ""
}

// Note records the latest success, or failure with its plain-words answer
// (problem, message, fix: sink/s3 Explain, never an error's raw text), of
// integration at time at, in {prefix}last:{name}. An older note than the one
// recorded changes nothing. Best effort: the callers log an error only.
func (l *Ledger) Note(ctx context.Context, integration string, o Outcome, at time.Time, problem, message, fix string) error {
	if err := checkName(integration); err != nil {
		return err
	}
	key := state.LastKey(l.cfg.Prefix, integration)
	ms := strconv.FormatInt(at.UnixMilli(), 10)
	var err error
	if o == Success {
		err = noteScript.Run(ctx, l.rdb, []string{key}, "ok", ms, lastTTL.Milliseconds()).Err()
	} else {
		err = noteScript.Run(ctx, l.rdb, []string{key}, "err", ms, lastTTL.Milliseconds(), ClassOf(o), problem, message, fix).Err()
	}
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("health: note %s: %w", integration, err)
	}
	return nil
}

// noteScript keeps the newest success (ok) and the newest failure (err_*).
var noteScript = redis.NewScript(`
local cur = tonumber(redis.call("HGET", KEYS[1], ARGV[1]) or "0")
if tonumber(ARGV[2]) >= cur then
  redis.call("HSET", KEYS[1], ARGV[1], ARGV[2])
  if ARGV[1] == "err" then
    redis.call("HSET", KEYS[1], "err_class", ARGV[4], "err_problem", ARGV[5], "err_message", ARGV[6], "err_fix", ARGV[7])
  end
end
redis.call("PEXPIRE", KEYS[1], ARGV[3])
return 1`)

// Last returns the notes of integration.
func (l *Ledger) Last(ctx context.Context, integration string) (Last, error) {
	if err := checkName(integration); err != nil {
		return Last{}, err
	}
	m, err := l.rdb.HGetAll(ctx, state.LastKey(l.cfg.Prefix, integration)).Result()
	if err != nil {
		return Last{}, fmt.Errorf("health: last %s: %w", integration, err)
	}
	out := Last{deliveries: parseDeliveries(m)}
	if ms, err := strconv.ParseInt(m["ok"], 10, 64); err == nil && ms > 0 {
		out.SuccessAt = time.UnixMilli(ms).UTC()
	}
	if ms, err := strconv.ParseInt(m["err"], 10, 64); err == nil && ms > 0 {
		out.Error = &Failure{At: time.UnixMilli(ms).UTC(), Class: m["err_class"], Problem: m["err_problem"], Message: m["err_message"], Fix: m["err_fix"]}
	}
	return out, nil
}

// ForgetLast removes integration's notes (hitship forget).
func (l *Ledger) ForgetLast(ctx context.Context, integration string) error {
	if err := checkName(integration); err != nil {
		return err
	}
	if err := l.rdb.Del(ctx, state.LastKey(l.cfg.Prefix, integration)).Err(); err != nil {
		return fmt.Errorf("health: forget %s: %w", integration, err)
	}
	return nil
}
