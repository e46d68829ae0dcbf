package state

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// RouteSetTTL is how long a route set lives in Redis after it was last
// written or read. Longer than SnapshotTTL: the routing log that names a set
// may outlive one snapshot's life, and a worker re-writes the set it routes
// with every hour.
const RouteSetTTL = 30 * 24 * time.Hour

// RouteEntry is one entry of a partition's routing log: from the record at
// Offset on, the partition's records are routed to the targets of the route
// set SetID (until the next entry).
type RouteEntry struct {
	Offset int64
	SetID  string
}

// routeSetKey is the key of a route set: one per group, outside every
// partition's hash slot (it is written before the fenced log entry that
// names it, never in the same script).
func (s *Store) routeSetKey(id string) (string, error) {
	if id == "" || len(id) > 128 || strings.ContainsAny(id, "{}: \n") {
		return "", fmt.Errorf("state: invalid route set id %q", id)
	}
	return RouteSetKey(s.prefix, s.group, id), nil
}

// SaveRouteSet stores the members (target IDs, sorted by the caller) of the
// route set id, content-addressed: the same id always names the same
// members, so writing it again only refreshes its expiry (RouteSetTTL).
// Member IDs may not contain a newline. One Redis round trip.
func (s *Store) SaveRouteSet(ctx context.Context, id string, members []string) error {
	key, err := s.routeSetKey(id)
	if err != nil {
		return err
	}
	for _, m := range members {
		if m == "" || strings.ContainsRune(m, '\n') {
			return fmt.Errorf("state: invalid route set member %q", m)
		}
	}
	if err := s.rdb.Set(ctx, key, strings.Join(members, "\n"), RouteSetTTL).Err(); err != nil {
		return fmt.Errorf("state: save route set %s: %w", id, err)
	}
	return nil
}

// LoadRouteSet returns the members of the route set id and refreshes its
// expiry; ok is false when Redis does not hold it (expired or lost).
func (s *Store) LoadRouteSet(ctx context.Context, id string) (members []string, ok bool, err error) {
	key, err := s.routeSetKey(id)
	if err != nil {
		return nil, false, err
	}
	v, err := s.rdb.GetEx(ctx, key, RouteSetTTL).Result()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("state: load route set %s: %w", id, err)
	}
	if v == "" {
		return []string{}, true, nil
	}
	return strings.Split(v, "\n"), true, nil
}

func encodeRoute(e RouteEntry) string { return encodeOffset(e.Offset) + ":" + e.SetID }

func decodeRoute(s string) (RouteEntry, error) {
	off, id, ok := strings.Cut(s, ":")
	if !ok || id == "" {
		return RouteEntry{}, fmt.Errorf("state: bad routing log entry %q", s)
	}
	o, err := decodeOffset(off)
	if err != nil {
		return RouteEntry{}, err
	}
	return RouteEntry{Offset: o, SetID: id}, nil
}

// recordRouteScript: KEYS[1] owner, KEYS[2] routing log; ARGV gen, member,
// entry, lex range start and end of the entry's offset, ttl ms. Replaces
// any entry at the same offset, only while ARGV owns the partition, after
// fencedClaim (an Unclaimed partition is claimed for ARGV, {2} says so).
var recordRouteScript = redis.NewScript(fencedClaim + `
redis.call('ZREMRANGEBYLEX', KEYS[2], ARGV[4], ARGV[5])
redis.call('ZADD', KEYS[2], 0, ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return res
`)

// pruneRouteScript: KEYS[1] routing log; ARGV the lex bound "(<committed>;"
// and ttl ms. Drops the entries below the latest one at or below committed.
var pruneRouteScript = redis.NewScript(`
local last = redis.call('ZREVRANGEBYLEX', KEYS[1], ARGV[1], '-', 'LIMIT', 0, 1)
if last[1] then
  redis.call('ZREMRANGEBYLEX', KEYS[1], '-', '(' .. last[1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
`)

// RecordRoute appends e to the routing log of (topic, partition), atomically
// with a check that o still owns it (one Lua script), like an idle close: it
// returns an error satisfying IsFenced, and records nothing, when another
// owner holds the partition. An entry already at e.Offset is replaced (no
// record was routed between the two). Save the route set first
// (SaveRouteSet).
func (s *Store) RecordRoute(ctx context.Context, topic string, partition int, o Owner, e RouteEntry) error {
	_, err := s.RecordRouteClaim(ctx, topic, partition, o, e)
	return err
}

// RecordRouteClaim is RecordRoute that also reports whether o had to claim
// the partition again first (reclaimed: Redis lost data; the caller should
// write back what it knows of the partition's replay state), as
// RecordIdleCloseClaim does. The script is sent once, without the client's
// retries: an error satisfying IsNotExecuted proves it did not run, any
// other may hide an entry that was recorded (record it again: it replaces
// itself).
func (s *Store) RecordRouteClaim(ctx context.Context, topic string, partition int, o Owner, e RouteEntry) (reclaimed bool, err error) {
	k, err := s.keys(topic, partition)
	if err != nil {
		return false, err
	}
	if err := checkOwner(o); err != nil {
		return false, err
	}
	if _, err := s.routeSetKey(e.SetID); err != nil || e.Offset < 0 {
		return false, fmt.Errorf("state: invalid routing log entry %+v", e)
	}
	enc := encodeOffset(e.Offset)
	res, err := recordRouteScript.Run(ctx, onceScripter{s.rdb}, []string{k.owner, k.route},
		strconv.FormatInt(int64(o.Generation), 10), o.Member, encodeRoute(e), "["+enc+":", "("+enc+";",
		SnapshotTTL.Milliseconds()).Slice()
	if err != nil {
		return false, fmt.Errorf("state: record route %s/%d: %w", topic, partition, err)
	}
	if len(res) == 3 {
		return false, fmt.Errorf("%w: routing change of %s/%d by generation %d member %q refused, owner is generation %q member %q",
			ErrFenced, topic, partition, o.Generation, o.Member, res[1], res[2])
	}
	code, _ := res[0].(int64)
	return code == 2, nil
}

// RouteLog returns the routing log of (topic, partition) ordered by offset:
// after Prune(committed), the latest entry at or below committed (if any)
// and every entry above it.
func (s *Store) RouteLog(ctx context.Context, topic string, partition int) ([]RouteEntry, error) {
	k, err := s.keys(topic, partition)
	if err != nil {
		return nil, err
	}
	members, err := s.rdb.ZRangeByLex(ctx, k.route, &redis.ZRangeBy{Min: "-", Max: "+"}).Result()
	if err != nil {
		return nil, fmt.Errorf("state: routing log of %s/%d: %w", topic, partition, err)
	}
	out := make([]RouteEntry, 0, len(members))
	for _, m := range members {
		e, err := decodeRoute(m)
		if err != nil {
			return nil, fmt.Errorf("state: routing log of %s/%d: %w", topic, partition, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// recordReadScript: KEYS[1] read mark; ARGV mark, ttl ms. Raises the mark to
// ARGV[1] unless it is higher already, and refreshes its expiry.
var recordReadScript = redis.NewScript(`
local cur = tonumber(redis.call('GET', KEYS[1]) or '-1')
if tonumber(ARGV[1]) > cur then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
`)

// RecordReadMark raises the read mark of (topic, partition) to mark: no owner
// of the partition has routed a record at or above the mark. An owner records
// one ahead of what it reads, before it routes further; the next owner follows
// the routing log's last membership up to the mark (the records an earlier
// owner may have routed with it), not up to the high-water mark, so that a
// change is taken as soon as the partition reads past what earlier owners
// read. The mark only rises (a zombie may raise it: that delays a change by
// what the zombie read, never loses one); DropFrom lowers it. Not fenced. One
// round trip.
func (s *Store) RecordReadMark(ctx context.Context, topic string, partition int, mark int64) error {
	k, err := s.keys(topic, partition)
	if err != nil {
		return err
	}
	if err := recordReadScript.Run(ctx, s.rdb, []string{k.read}, mark, SnapshotTTL.Milliseconds()).Err(); err != nil {
		return fmt.Errorf("state: read mark of %s/%d: %w", topic, partition, err)
	}
	return nil
}

// ReadMark returns the read mark of (topic, partition); ok is false when
// there is none (never recorded, expired, or lost with Redis data).
func (s *Store) ReadMark(ctx context.Context, topic string, partition int) (mark int64, ok bool, err error) {
	k, err := s.keys(topic, partition)
	if err != nil {
		return 0, false, err
	}
	v, err := s.rdb.Get(ctx, k.read).Result()
	if errors.Is(err, redis.Nil) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("state: read mark of %s/%d: %w", topic, partition, err)
	}
	mark, err = strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("state: read mark of %s/%d: %q: %w", topic, partition, v, err)
	}
	return mark, true, nil
}
