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

// deliverySlots is the ring of per-minute delivery counts kept in an
// integration's notes ({prefix}last:{name}): minute m is counted in slot
// m % deliverySlots, so the notes hold the last hour (and a little more)
// in at most 3×deliverySlots fields whatever the upload rate.
const deliverySlots = 64

// Delivered counts what reached a customer's bucket: objects and the hits
// in them.
type Delivered struct {
	Objects int64 `json:"objects"`
	Hits    int64 `json:"hits"`
}

// minuteCount is one slot of the ring: its minute (Unix minutes) and counts.
type minuteCount struct {
	minute int64
	Delivered
}

// Delivered counts one object of hits records that reached integration's
// bucket at time at (the console's "objects and hits in the last hour"),
// in the same hash as its notes (ForgetLast removes it with them). A
// replay that finds the object there (412) is not a delivery: callers count
// only writes that created it. Best effort, as Note: callers log an error
// only.
func (l *Ledger) Delivered(ctx context.Context, integration string, hits int, at time.Time) error {
	if err := checkName(integration); err != nil {
		return err
	}
	if hits < 0 {
		return fmt.Errorf("health: delivered %d hits: %w", hits, ErrInvalid)
	}
	m := minute(at)
	slot := strconv.FormatInt(m%deliverySlots, 10)
	err := deliveredScript.Run(ctx, l.rdb, []string{state.LastKey(l.cfg.Prefix, integration)},
		slot, m, hits, lastTTL.Milliseconds()).Err()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("health: delivered %s: %w", integration, err)
	}
	return nil
}

// deliveredScript adds one object of ARGV[3] hits to slot ARGV[1] of minute
// ARGV[2], starting the slot afresh when it held an older minute.
var deliveredScript = redis.NewScript(`
local m, o, h = 'dm' .. ARGV[1], 'do' .. ARGV[1], 'dh' .. ARGV[1]
if redis.call("HGET", KEYS[1], m) ~= ARGV[2] then
  redis.call("HSET", KEYS[1], m, ARGV[2], o, 0, h, 0)
end
redis.call("HINCRBY", KEYS[1], o, 1)
redis.call("HINCRBY", KEYS[1], h, ARGV[3])
redis.call("PEXPIRE", KEYS[1], ARGV[4])
return 1`)

// parseDeliveries reads the ring from the notes' fields.
func parseDeliveries(m map[string]string) (out [deliverySlots]minuteCount) {
	for i := range out {
		s := strconv.Itoa(i)
		mn, err := strconv.ParseInt(m["dm"+s], 10, 64)
		if err != nil {
			continue
		}
		o, _ := strconv.ParseInt(m["do"+s], 10, 64)
		h, _ := strconv.ParseInt(m["dh"+s], 10, 64)
		out[i] = minuteCount{minute: mn, Delivered: Delivered{Objects: o, Hits: h}}
	}
	return out
}

// DeliveredInHour sums what was delivered in the hour before now: the
// minutes (now's minute - 59) to now's, so at most one minute short of an
// hour of deliveries is left out at its start.
func (l Last) DeliveredInHour(now time.Time) Delivered {
	var d Delivered
	to := minute(now)
	for _, c := range l.deliveries {
		if c.minute > to-60 && c.minute <= to {
			d.Objects += c.Objects
			d.Hits += c.Hits
		}
	}
	return d
}
