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

// SnapshotTTL is how long a snapshot (and the idle-close log, counted from
// its last append) lives in Redis without being written again. It bounds the
// memory an abandoned consumer group keeps: a live group prunes on every
// commit long before.
const SnapshotTTL = 14 * 24 * time.Hour

// ErrFenced is returned when a newer (or another) owner holds the partition.
var ErrFenced = errors.New("state: partition owned by another generation")

// IsFenced reports whether err means the caller lost (or never got) the
// partition and must stop without uploading.
func IsFenced(err error) bool { return errors.Is(err, ErrFenced) }

// Owner identifies one consumer-group member in one generation.
type Owner struct {
	Generation int32
	Member     string
}

// IdleClose is one recorded idle (wall-clock) window close: when the
// partition's read position is NextOffset, the watermark moves to Boundary
// (Unix milliseconds, a window boundary).
type IdleClose struct {
	NextOffset, Boundary int64
}

// Store keeps the per-partition pipeline state of one consumer group in
// Redis. It is safe for concurrent use; every method blocks for one Redis
// round trip (Prune for two).
type Store struct {
	rdb    redis.UniversalClient
	prefix string
	group  string
	inc    string // the topic's incarnation ("" when unknown); see ForIncarnation
}

// New returns a Store over rdb. Keys start with prefix (e.g. "hitship:");
// group is the consumer group id, which may not contain '{' or '}': it is
// part of each partition's Redis Cluster hash tag. prefix may hold a hash
// tag of its own (redis.mode cluster: "{hitship}:"), which then puts every
// key in that tag's slot (config validates it; internal/redisconn).
func New(rdb redis.UniversalClient, prefix, group string) (*Store, error) {
	if rdb == nil {
		return nil, errors.New("state: nil redis client")
	}
	if group == "" {
		return nil, errors.New("state: empty group")
	}
	if strings.ContainsAny(group, "{}") {
		return nil, fmt.Errorf("state: group %q must not contain '{' or '}'", group)
	}
	return &Store{rdb: rdb, prefix: prefix, group: group}, nil
}

// ForIncarnation returns a Store over the same Redis whose per-partition keys
// name one incarnation of the topic (for example the Kafka cluster id and the
// topic id): state written for another incarnation (a rebuilt cluster, a
// deleted and re-created topic, whose offsets and generation ids start again)
// is never read back, and so never applied to records it does not describe.
// inc may hold letters, digits, '.', '_' and '-' (at most 128); "" is the
// keys without an incarnation.
func (s *Store) ForIncarnation(inc string) (*Store, error) {
	if len(inc) > 128 || strings.ContainsFunc(inc, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
	}) {
		return nil, fmt.Errorf("state: invalid incarnation %q", inc)
	}
	c := *s
	c.inc = inc
	return &c, nil
}

// Incarnation returns the incarnation the Store's keys name ("" for none).
func (s *Store) Incarnation() string { return s.inc }

// keys of one partition. All share the hash tag {group:topic:partition}, so
// they live in one Cluster slot and the Lua scripts may touch them together.
// The topic's incarnation follows the tag.
type keys struct {
	owner string // hash: gen, member
	idle  string // zset, all scores 0, members encodeIdle(...)
	snaps string // zset index of snapshot offsets, members encodeOffset(...)
	snap  string // + encodeOffset(offset): string, the snapshot bytes
	dead  string // zset, all scores 0, members encodeOffset(...): dead letters acknowledged
	route string // zset, all scores 0, members encodeRoute(...): the routing log
	read  string // string: the read mark (RecordReadMark)
}

func (s *Store) keys(topic string, partition int) (keys, error) {
	if topic == "" || strings.ContainsAny(topic, "{}") {
		return keys{}, fmt.Errorf("state: invalid topic %q", topic)
	}
	if partition < 0 {
		return keys{}, fmt.Errorf("state: invalid partition %d", partition)
	}
	k := PartitionKeys(s.prefix, s.group, topic, partition, s.inc)
	return keys{owner: k.Owner, idle: k.Idle, snaps: k.Snaps, snap: k.Snap, dead: k.Dead, route: k.Routes, read: k.Read}, nil
}

func checkOwner(o Owner) error {
	if o.Member == "" {
		return errors.New("state: owner without member id")
	}
	return nil
}

// claimScript: KEYS[1] owner; ARGV gen, member. Refuses an older generation,
// and another member of the same generation; returns {1} or {0, gen, member}.
var claimScript = redis.NewScript(`
local cur = redis.call('HMGET', KEYS[1], 'gen', 'member')
local gen = tonumber(ARGV[1])
if cur[1] then
  local cgen = tonumber(cur[1])
  if cgen > gen or (cgen == gen and cur[2] ~= ARGV[2]) then
    return {0, cur[1], cur[2]}
  end
end
redis.call('HSET', KEYS[1], 'gen', ARGV[1], 'member', ARGV[2])
return {1}
`)

// Claim makes o the owner of (topic, partition). It is refused with an error
// satisfying IsFenced when a newer generation, or another member of the same
// generation, already claimed it. Re-claiming by the current owner succeeds.
// Atomic (one Lua script).
func (s *Store) Claim(ctx context.Context, topic string, partition int, o Owner) error {
	k, err := s.keys(topic, partition)
	if err != nil {
		return err
	}
	if err := checkOwner(o); err != nil {
		return err
	}
	res, err := claimScript.Run(ctx, s.rdb, []string{k.owner}, o.Generation, o.Member).Slice()
	if err != nil {
		return fmt.Errorf("state: claim %s/%d: %w", topic, partition, err)
	}
	if len(res) == 3 {
		return fmt.Errorf("%w: claim of %s/%d by generation %d member %q refused, owner is generation %v member %q",
			ErrFenced, topic, partition, o.Generation, o.Member, res[1], res[2])
	}
	return nil
}

// Ownership is what the owner key of a partition says about one Owner.
type Ownership int

const (
	// Owned: the key names the caller.
	Owned Ownership = iota
	// NotOwned: the key names a newer generation, or another member of the
	// caller's generation. The caller's generation is over (or the claim was
	// never its own): it must stop without uploading.
	NotOwned
	// Unclaimed: there is no owner key, or it names an older generation.
	// Claim refuses older generations and nothing deletes the key, so either
	// means Redis lost data (FLUSHALL, a restart without persistence, a
	// failover to a replica that missed writes; an older generation's key is
	// one a zombie wrote after the loss). The caller may Claim again: the
	// claim succeeds unless a newer generation claimed meanwhile.
	Unclaimed
)

func (o Ownership) String() string {
	switch o {
	case Owned:
		return "owned"
	case NotOwned:
		return "not owned"
	case Unclaimed:
		return "unclaimed"
	}
	return "Ownership(" + strconv.Itoa(int(o)) + ")"
}

// Ownership reports what the owner key of (topic, partition) says about o:
// Owned, NotOwned (another owner) or Unclaimed (no key: Redis lost it). One
// round trip; a Redis error is returned as it is, never as NotOwned.
func (s *Store) Ownership(ctx context.Context, topic string, partition int, o Owner) (Ownership, error) {
	k, err := s.keys(topic, partition)
	if err != nil {
		return NotOwned, err
	}
	cur, err := s.rdb.HMGet(ctx, k.owner, "gen", "member").Result()
	if err != nil {
		return NotOwned, fmt.Errorf("state: owner of %s/%d: %w", topic, partition, err)
	}
	gen, _ := cur[0].(string)
	member, _ := cur[1].(string)
	if gen == "" {
		return Unclaimed, nil
	}
	g, err := strconv.ParseInt(gen, 10, 32)
	if err != nil {
		return NotOwned, fmt.Errorf("state: owner of %s/%d: bad generation %q", topic, partition, gen)
	}
	switch {
	case int32(g) == o.Generation && member == o.Member && member != "":
		return Owned, nil
	case int32(g) < o.Generation:
		return Unclaimed, nil
	}
	return NotOwned, nil
}

// Owns reports whether o is still the owner of (topic, partition): false
// for Unclaimed as for NotOwned. Use Ownership to tell them apart.
func (s *Store) Owns(ctx context.Context, topic string, partition int, o Owner) (bool, error) {
	own, err := s.Ownership(ctx, topic, partition, o)
	return err == nil && own == Owned, err
}

// offsetWidth is the width of a zero-padded non-negative int64.
const offsetWidth = 19

// encodeOffset renders a non-negative int64 so that byte order is numeric
// order (Redis sorts equal-score members lexicographically).
func encodeOffset(v int64) string {
	return fmt.Sprintf("%0*d", offsetWidth, v)
}

func encodeIdle(c IdleClose) string {
	return encodeOffset(c.NextOffset) + ":" + encodeOffset(c.Boundary)
}

// decodeOffset parses encodeOffset's output strictly.
func decodeOffset(s string) (int64, error) {
	if len(s) != offsetWidth {
		return 0, fmt.Errorf("state: bad offset %q", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, fmt.Errorf("state: bad offset %q", s)
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("state: bad offset %q: %w", s, err)
	}
	return v, nil
}

// decodeIdle parses one idle-log member read back from Redis.
func decodeIdle(s string) (IdleClose, error) {
	next, boundary, ok := strings.Cut(s, ":")
	if !ok {
		return IdleClose{}, fmt.Errorf("state: bad idle close %q", s)
	}
	n, err := decodeOffset(next)
	if err != nil {
		return IdleClose{}, err
	}
	b, err := decodeOffset(boundary)
	if err != nil {
		return IdleClose{}, err
	}
	return IdleClose{NextOffset: n, Boundary: b}, nil
}

// fencedClaim is the start of every fenced script (idle closes, routing
// changes, DropFrom): KEYS[1] is the owner hash, ARGV[1] and ARGV[2] the
// caller's generation and member. It refuses a newer generation and another
// member of the same one with {0, gen, member}; when there is no owner key,
// or one of an older generation (Redis lost data), it makes the caller the
// owner and sets res to {2}, else res is {1}.
const fencedClaim = `
local cur = redis.call('HMGET', KEYS[1], 'gen', 'member')
local gen = tonumber(ARGV[1])
local res = {1}
if cur[1] then
  local cgen = tonumber(cur[1])
  if cgen > gen or (cgen == gen and cur[2] ~= ARGV[2]) then
    return {0, cur[1], cur[2] or ''}
  end
  if cgen < gen then
    res = {2}
  end
else
  res = {2}
end
if res[1] == 2 then
  redis.call('HSET', KEYS[1], 'gen', ARGV[1], 'member', ARGV[2])
end
`

// recordIdleScript: KEYS[1] owner, KEYS[2] idle log; ARGV gen, member,
// entry, ttl ms. Appends while ARGV owns the partition, after fencedClaim.
var recordIdleScript = redis.NewScript(fencedClaim + `
redis.call('ZADD', KEYS[2], 0, ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[4])
return res
`)

// RecordIdleClose appends c to the idle-close log of (topic, partition),
// atomically with a check that o still owns it (one Lua script). It returns
// an error satisfying IsFenced, and records nothing, when another owner
// holds the partition (see Ownership). Recording the same close twice keeps
// one entry. When the partition is Unclaimed (Redis lost the owner key), o
// claims it in the same script and the close is recorded; RecordIdleCloseClaim
// says when that happened.
func (s *Store) RecordIdleClose(ctx context.Context, topic string, partition int, o Owner, c IdleClose) error {
	_, err := s.RecordIdleCloseClaim(ctx, topic, partition, o, c)
	return err
}

// RecordIdleCloseClaim is RecordIdleClose that also reports whether o had
// to claim the partition again first (reclaimed: the owner key was missing,
// or named an older generation, so Redis lost data and the caller should
// write back what it knows of the partition's replay state). The script is
// sent once, without the client's retries: an error satisfying
// IsNotExecuted proves it did not run, any other may hide a close that was
// recorded (record it again: it is idempotent).
func (s *Store) RecordIdleCloseClaim(ctx context.Context, topic string, partition int, o Owner, c IdleClose) (reclaimed bool, err error) {
	k, err := s.keys(topic, partition)
	if err != nil {
		return false, err
	}
	if err := checkOwner(o); err != nil {
		return false, err
	}
	if c.NextOffset < 0 || c.Boundary < 0 {
		return false, fmt.Errorf("state: invalid idle close %+v", c)
	}
	res, err := recordIdleScript.Run(ctx, onceScripter{s.rdb}, []string{k.owner, k.idle},
		strconv.FormatInt(int64(o.Generation), 10), o.Member, encodeIdle(c), SnapshotTTL.Milliseconds()).Slice()
	if err != nil {
		return false, fmt.Errorf("state: record idle close %s/%d: %w", topic, partition, err)
	}
	if len(res) == 3 {
		return false, fmt.Errorf("%w: idle close of %s/%d by generation %d member %q refused, owner is generation %q member %q",
			ErrFenced, topic, partition, o.Generation, o.Member, res[1], res[2])
	}
	code, _ := res[0].(int64)
	return code == 2, nil
}

// IdleCloses returns the recorded idle closes of (topic, partition) with
// NextOffset >= fromOffset, ordered by NextOffset, then Boundary.
func (s *Store) IdleCloses(ctx context.Context, topic string, partition int, fromOffset int64) ([]IdleClose, error) {
	k, err := s.keys(topic, partition)
	if err != nil {
		return nil, err
	}
	if fromOffset < 0 {
		fromOffset = 0
	}
	members, err := s.rdb.ZRangeByLex(ctx, k.idle, &redis.ZRangeBy{Min: "[" + encodeOffset(fromOffset), Max: "+"}).Result()
	if err != nil {
		return nil, fmt.Errorf("state: idle closes of %s/%d: %w", topic, partition, err)
	}
	out := make([]IdleClose, 0, len(members))
	for _, m := range members {
		c, err := decodeIdle(m)
		if err != nil {
			return nil, fmt.Errorf("state: idle closes of %s/%d: %w", topic, partition, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// SaveSnapshot stores data as the window state of (topic, partition) just
// before offset, replacing any earlier one for that offset. It expires after
// SnapshotTTL.
func (s *Store) SaveSnapshot(ctx context.Context, topic string, partition int, offset int64, data []byte) error {
	k, err := s.keys(topic, partition)
	if err != nil {
		return err
	}
	if offset < 0 {
		return fmt.Errorf("state: invalid snapshot offset %d", offset)
	}
	enc := encodeOffset(offset)
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Set(ctx, k.snap+enc, data, SnapshotTTL)
		p.ZAdd(ctx, k.snaps, redis.Z{Member: enc})
		p.PExpire(ctx, k.snaps, SnapshotTTL)
		return nil
	})
	if err != nil {
		return fmt.Errorf("state: save snapshot %s/%d@%d: %w", topic, partition, offset, err)
	}
	return nil
}

// LoadSnapshot returns the snapshot saved for offset; ok is false when there
// is none (never saved, pruned, expired or Redis flushed).
func (s *Store) LoadSnapshot(ctx context.Context, topic string, partition int, offset int64) (data []byte, ok bool, err error) {
	k, err := s.keys(topic, partition)
	if err != nil {
		return nil, false, err
	}
	if offset < 0 {
		return nil, false, fmt.Errorf("state: invalid snapshot offset %d", offset)
	}
	data, err = s.rdb.Get(ctx, k.snap+encodeOffset(offset)).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("state: load snapshot %s/%d@%d: %w", topic, partition, offset, err)
	}
	return data, true, nil
}

// NoteDeadLettered records that the records at offsets of (topic, partition)
// are in the dead-letter topic (acknowledged), so that a replay of those
// offsets by any owner does not send them again. Not fenced: a zombie's
// acknowledged dead letter is as real as anyone's. The record expires with
// the snapshots (SnapshotTTL) and is pruned below the committed offset.
func (s *Store) NoteDeadLettered(ctx context.Context, topic string, partition int, offsets []int64) error {
	k, err := s.keys(topic, partition)
	if err != nil || len(offsets) == 0 {
		return err
	}
	zs := make([]redis.Z, len(offsets))
	for i, o := range offsets {
		zs[i] = redis.Z{Member: encodeOffset(o)}
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZAdd(ctx, k.dead, zs...)
		p.PExpire(ctx, k.dead, SnapshotTTL)
		return nil
	})
	if err != nil {
		return fmt.Errorf("state: note dead letters of %s/%d: %w", topic, partition, err)
	}
	return nil
}

// DeadLettered returns the offsets >= fromOffset of (topic, partition) whose
// records were acknowledged by the dead-letter topic, in order.
func (s *Store) DeadLettered(ctx context.Context, topic string, partition int, fromOffset int64) ([]int64, error) {
	k, err := s.keys(topic, partition)
	if err != nil {
		return nil, err
	}
	members, err := s.rdb.ZRangeByLex(ctx, k.dead, &redis.ZRangeBy{Min: "[" + encodeOffset(max(fromOffset, 0)), Max: "+"}).Result()
	if err != nil {
		return nil, fmt.Errorf("state: dead letters of %s/%d: %w", topic, partition, err)
	}
	out := make([]int64, 0, len(members))
	for _, m := range members {
		o, err := decodeOffset(m)
		if err != nil {
			return nil, fmt.Errorf("state: dead letters of %s/%d: %w", topic, partition, err)
		}
		out = append(out, o)
	}
	return out, nil
}

// Prune drops the idle closes with NextOffset < committed, the snapshots and
// the dead-letter records of offsets < committed, and the routing log's
// entries below committed except the latest at or below it (the membership
// at the committed offset): a replay never starts before the committed
// offset. It refreshes the routing log's expiry.
// It is not fenced: pruning below a committed offset is safe for any caller.
func (s *Store) Prune(ctx context.Context, topic string, partition int, committed int64) error {
	k, err := s.keys(topic, partition)
	if err != nil {
		return err
	}
	if committed <= 0 {
		return nil
	}
	below := "(" + encodeOffset(committed)
	old, err := s.rdb.ZRangeByLex(ctx, k.snaps, &redis.ZRangeBy{Min: "-", Max: below}).Result()
	if err != nil {
		return fmt.Errorf("state: prune %s/%d: %w", topic, partition, err)
	}
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.ZRemRangeByLex(ctx, k.idle, "-", below)
		p.ZRemRangeByLex(ctx, k.dead, "-", below)
		pruneRouteScript.Eval(ctx, p, []string{k.route}, "("+encodeOffset(committed)+";", SnapshotTTL.Milliseconds())
		if len(old) > 0 {
			dels := make([]string, len(old))
			for i, enc := range old {
				dels[i] = k.snap + enc
			}
			p.Del(ctx, dels...)
			p.ZRemRangeByLex(ctx, k.snaps, "-", below)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("state: prune %s/%d: %w", topic, partition, err)
	}
	return nil
}

// dropFromScript: KEYS[1] owner, KEYS[2] idle log, KEYS[3] dead letters,
// KEYS[4] snapshot index, KEYS[5] routing log, KEYS[6] read mark, KEYS[7..]
// snapshot keys; ARGV gen, member, from (encoded), then the index members of
// KEYS[7..]. Like recordIdleScript it refuses a newer generation or another
// member and claims an Unclaimed partition; then it removes every entry at or
// after from and lowers the read mark to from.
var dropFromScript = redis.NewScript(fencedClaim + `
redis.call('ZREMRANGEBYLEX', KEYS[2], '[' .. ARGV[3], '+')
redis.call('ZREMRANGEBYLEX', KEYS[3], '[' .. ARGV[3], '+')
redis.call('ZREMRANGEBYLEX', KEYS[5], '[' .. ARGV[3], '+')
local mark = tonumber(redis.call('GET', KEYS[6]) or '-1')
if mark > tonumber(ARGV[3]) then redis.call('SET', KEYS[6], tostring(tonumber(ARGV[3])), 'KEEPTTL') end
for i = 7, #KEYS do
  redis.call('DEL', KEYS[i])
  redis.call('ZREM', KEYS[4], ARGV[i - 3])
end
return {1}
`)

// DropFrom removes the replay state of (topic, partition) at offsets >= from:
// idle closes with NextOffset >= from, dead-letter records and snapshots of
// offsets >= from. It is for a log truncation (an unclean leader election,
// a re-created topic): that state describes records the log no longer has,
// and applied to the new records at those offsets it would close windows in
// the wrong places and skip bad records without a dead letter; the routing
// log entries at offsets >= from go too (they name records that are gone).
// Fenced like
// RecordIdleClose (an Unclaimed partition is claimed for o); the snapshots
// are found first and removed by the script, so one written meanwhile (only
// the owner writes them) may stay.
func (s *Store) DropFrom(ctx context.Context, topic string, partition int, o Owner, from int64) error {
	k, err := s.keys(topic, partition)
	if err != nil {
		return err
	}
	if err := checkOwner(o); err != nil {
		return err
	}
	from = max(from, 0)
	enc := encodeOffset(from)
	snaps, err := s.rdb.ZRangeByLex(ctx, k.snaps, &redis.ZRangeBy{Min: "[" + enc, Max: "+"}).Result()
	if err != nil {
		return fmt.Errorf("state: drop replay state of %s/%d from %d: %w", topic, partition, from, err)
	}
	ks := []string{k.owner, k.idle, k.dead, k.snaps, k.route, k.read}
	args := []any{strconv.FormatInt(int64(o.Generation), 10), o.Member, enc}
	for _, sn := range snaps {
		ks = append(ks, k.snap+sn)
		args = append(args, sn)
	}
	res, err := dropFromScript.Run(ctx, s.rdb, ks, args...).Slice()
	if err != nil {
		return fmt.Errorf("state: drop replay state of %s/%d from %d: %w", topic, partition, from, err)
	}
	if len(res) == 3 {
		return fmt.Errorf("%w: drop of %s/%d's replay state by generation %d member %q refused, owner is generation %q member %q",
			ErrFenced, topic, partition, o.Generation, o.Member, res[1], res[2])
	}
	return nil
}
