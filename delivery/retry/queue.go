package retry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"hitship/state"
)

// ErrLeaseLost is returned by the token-checked transitions (Complete,
// Reschedule, DeadLetter, Extend) when the caller's lease token no longer
// matches: the lease expired and another holder claimed the entry, or the
// entry is gone. The caller must drop the entry without further action.
var ErrLeaseLost = errors.New("retry: lease lost")

// IsLeaseLost reports whether err means the caller no longer holds the entry.
func IsLeaseLost(err error) bool { return errors.Is(err, ErrLeaseLost) }

// ErrInvalid is wrapped by errors about bad arguments (never Redis errors).
var ErrInvalid = errors.New("retry: invalid argument")

// IsInvalid reports whether err is about a bad argument.
func IsInvalid(err error) bool { return errors.Is(err, ErrInvalid) }

// Entry states as reported by ListByIntegration.
const (
	StateScheduled = "scheduled" // waiting in the due set (due now or later)
	StateLeased    = "leased"    // claimed by a worker
	StateDead      = "dead"      // dead letter
)

// Entry is one parked object waiting for its next attempt. It is stored as
// JSON; fields the queue does not know about are the caller's business.
type Entry struct {
	// ID identifies the entry; it should derive from the object (e.g.
	// integration + key) so that parking the same object twice is one entry.
	ID          string `json:"id"`
	Integration string `json:"integration"`
	// Target is the ID of the target (integrations.Target.ID: integration, tenant
	// and destination) the object was built for; "" in entries of earlier
	// versions. A retry sends it there or nowhere.
	Target string `json:"target,omitempty"`
	// ParkedKey is the object's key in the parking bucket; Key is its key in
	// the customer's bucket.
	ParkedKey string `json:"parked_key"`
	Key       string `json:"key"`
	// Cycle and Attempt are the position of the next attempt (see Position).
	Cycle       int       `json:"cycle"`
	Attempt     int       `json:"attempt"`
	Due         time.Time `json:"due"`
	LastError   string    `json:"last_error,omitempty"`
	Topic       string    `json:"topic,omitempty"`
	Partition   int       `json:"partition"`
	WindowStart int64     `json:"window_start"` // Unix ms
	FirstOffset int64     `json:"first_offset"`
	Records     int       `json:"records"`
	Bytes       int64     `json:"bytes,omitempty"`
	ContentType string    `json:"content_type,omitempty"`
	Enqueued    time.Time `json:"enqueued"`
	DeadAt      time.Time `json:"dead_at,omitzero"`
	DeadReason  string    `json:"dead_reason,omitempty"`
	// Dying is set (with DeadReason) by MarkDying before anything of a dead
	// letter is written: a holder that finds it set finishes the
	// dead-lettering instead of making an attempt.
	Dying bool `json:"dying,omitempty"`

	// State is filled in by ListByIntegration; it is not stored.
	State string `json:"-"`
}

// Position returns the position of the entry's next attempt.
func (e Entry) Position() Position { return Position{Cycle: e.Cycle, Attempt: e.Attempt} }

// Claimed is an entry held under a lease. Token proves the lease; only the
// holder of the current token may Complete, Reschedule, DeadLetter or Extend.
type Claimed struct {
	Entry
	Token      string
	LeaseUntil time.Time
	// Reclaimed is true when the entry was taken over from a holder whose
	// lease had expired (a crashed or stuck worker).
	Reclaimed bool
}

// QueueConfig configures a Queue.
type QueueConfig struct {
	// Prefix starts every key (e.g. "hitship:"). A hash tag in it
	// (redis.mode cluster: "{hitship}:") puts every key in that tag's slot.
	Prefix string
	// Name is the queue's hash tag (default "retry"). No '{' or '}'.
	Name string
}

// Stats counts the entries of a queue at one instant.
type Stats struct {
	Due       int64 `json:"due"`       // scheduled and due now
	Scheduled int64 `json:"scheduled"` // scheduled for later
	Leased    int64 `json:"leased"`    // held by a worker (Expired of them with an expired lease)
	Expired   int64 `json:"expired"`
	Dead      int64 `json:"dead"`
}

// Queue is the Redis retry queue shared by all replicas. Safe for concurrent
// use; each method is one Redis round trip (Lua or MULTI) except where noted.
type Queue struct {
	rdb redis.UniversalClient
	// keys, all under one hash tag
	entries string // hash id -> entry JSON
	due     string // zset id -> due (Unix ms)
	leased  string // zset id -> lease deadline (Unix ms)
	tokens  string // hash id -> lease token
	dead    string // zset id -> dead-letter time (Unix ms)
	inline  string // prefix of string keys: first failed cycle-1 attempt per object
	done    string // prefix of string keys: recently completed entries
	// scanLease is the string key of the Scanner's lease.
	scanLease string
}

// NewQueue returns the queue over rdb.
func NewQueue(rdb redis.UniversalClient, cfg QueueConfig) (*Queue, error) {
	if rdb == nil {
		return nil, fmt.Errorf("retry: nil redis client: %w", ErrInvalid)
	}
	if cfg.Name == "" {
		cfg.Name = "retry"
	}
	if strings.ContainsAny(cfg.Name, "{}") {
		return nil, fmt.Errorf("retry: name %q must not contain '{' or '}': %w", cfg.Name, ErrInvalid)
	}
	k := state.RetryQueueKeys(cfg.Prefix, cfg.Name)
	return &Queue{
		rdb:     rdb,
		entries: k.Entries,
		due:     k.Due,
		leased:  k.Leased,
		tokens:  k.Tokens,
		dead:    k.Dead,
		inline:  k.Inline,
		done:    k.Done,

		scanLease: k.Scan,
	}, nil
}

func ms(t time.Time) int64 { return t.UnixMilli() }

func (e Entry) check() error {
	if e.ID == "" {
		return fmt.Errorf("retry: entry without id: %w", ErrInvalid)
	}
	if !e.Position().Valid() {
		return fmt.Errorf("retry: entry %s: position %s not in the schedule: %w", e.ID, e.Position(), ErrInvalid)
	}
	if e.Due.IsZero() {
		return fmt.Errorf("retry: entry %s without due time: %w", e.ID, ErrInvalid)
	}
	return nil
}

// enqueueScript: KEYS entries, due; ARGV id, json, due ms. 1 added, 0 exists.
var enqueueScript = redis.NewScript(`
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
`)

// Enqueue adds e, scheduled at e.Due. It reports false (and changes nothing)
// when an entry with e.ID exists already in any state, so parking the same
// object again (a replay) does not duplicate or disturb it. Enqueued is set
// to e.Due when zero.
func (q *Queue) Enqueue(ctx context.Context, e Entry) (bool, error) {
	if err := e.check(); err != nil {
		return false, err
	}
	if e.Enqueued.IsZero() {
		e.Enqueued = e.Due
	}
	b, err := json.Marshal(e)
	if err != nil {
		return false, fmt.Errorf("retry: encode entry %s: %w", e.ID, err)
	}
	n, err := enqueueScript.Run(ctx, q.rdb, []string{q.entries, q.due}, e.ID, b, ms(e.Due)).Int()
	if err != nil {
		return false, fmt.Errorf("retry: enqueue %s: %w", e.ID, err)
	}
	return n == 1, nil
}

// claimScript: KEYS due, leased, tokens, entries; ARGV now ms, lease-until
// ms, max, token prefix. Takes expired leases first, then due entries.
// Returns a flat list {id, token, json, reclaimed, ...}.
var claimScript = redis.NewScript(`
local now = tonumber(ARGV[1])
local max = tonumber(ARGV[3])
local out = {}
local n = 0
local function take(key, reclaimed)
  if n >= max then return end
  local ids = redis.call('ZRANGEBYSCORE', key, '-inf', now, 'LIMIT', 0, max - n)
  for _, id in ipairs(ids) do
    redis.call('ZREM', key, id)
    local e = redis.call('HGET', KEYS[4], id)
    if e then
      n = n + 1
      local tok = ARGV[4] .. ':' .. n
      redis.call('ZADD', KEYS[2], ARGV[2], id)
      redis.call('HSET', KEYS[3], id, tok)
      out[#out + 1] = id
      out[#out + 1] = tok
      out[#out + 1] = e
      out[#out + 1] = reclaimed
    else
      redis.call('HDEL', KEYS[3], id)
    end
  end
end
take(KEYS[2], 1)
take(KEYS[1], 0)
return out
`)

// Claim atomically (one Lua script) takes up to max entries that are due at
// now, or whose lease expired at now, and leases them until now+lease under a
// fresh token. Two callers never receive the same entry under a live lease.
// Expired leases are taken first. Blocks for one round trip.
func (q *Queue) Claim(ctx context.Context, now time.Time, lease time.Duration, max int) ([]Claimed, error) {
	if lease <= 0 || max <= 0 {
		return nil, fmt.Errorf("retry: claim with lease %s, max %d: %w", lease, max, ErrInvalid)
	}
	var raw [12]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, fmt.Errorf("retry: lease token: %w", err)
	}
	until := now.Add(lease)
	res, err := claimScript.Run(ctx, q.rdb, []string{q.due, q.leased, q.tokens, q.entries},
		ms(now), ms(until), max, hex.EncodeToString(raw[:])).Slice()
	if err != nil {
		return nil, fmt.Errorf("retry: claim: %w", err)
	}
	out := make([]Claimed, 0, len(res)/4)
	for i := 0; i+3 < len(res); i += 4 {
		id, _ := res[i].(string)
		tok, _ := res[i+1].(string)
		js, _ := res[i+2].(string)
		rec, _ := res[i+3].(int64)
		var e Entry
		if err := json.Unmarshal([]byte(js), &e); err != nil {
			// Leased under tok; it stays leased and is retried after the lease,
			// but this cannot happen for entries written by this package.
			return out, fmt.Errorf("retry: decode entry %s: %w", id, err)
		}
		out = append(out, Claimed{Entry: e, Token: tok, LeaseUntil: until, Reclaimed: rec == 1})
	}
	return out, nil
}

// finishScript: KEYS leased, tokens, entries, target zset; ARGV id, token,
// json ("" deletes the entry), score ("" adds to no target). 1 done, 0 token
// mismatch.
var finishScript = redis.NewScript(`
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if ARGV[3] == '' then
  redis.call('HDEL', KEYS[3], ARGV[1])
else
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[3])
end
if ARGV[4] ~= '' then redis.call('ZADD', KEYS[4], ARGV[4], ARGV[1]) end
return 1
`)

func (q *Queue) finish(ctx context.Context, op string, c Claimed, target string, e *Entry, score int64) error {
	js, sc := "", ""
	if e != nil {
		b, err := json.Marshal(e)
		if err != nil {
			return fmt.Errorf("retry: %s %s: encode: %w", op, c.ID, err)
		}
		js, sc = string(b), strconv.FormatInt(score, 10)
	}
	n, err := finishScript.Run(ctx, q.rdb, []string{q.leased, q.tokens, q.entries, target}, c.ID, c.Token, js, sc).Int()
	if err != nil {
		return fmt.Errorf("retry: %s %s: %w", op, c.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("retry: %s %s: %w", op, c.ID, ErrLeaseLost)
	}
	return nil
}

// completeScript: KEYS leased, tokens, entries, done key; ARGV id, token, ttl
// ms. 1 done, 0 token mismatch.
var completeScript = redis.NewScript(`
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('SET', KEYS[4], '1', 'PX', ARGV[3])
return 1
`)

// DoneTTL is how long Complete remembers a completed entry (Completed).
const DoneTTL = time.Hour

// Complete removes a delivered entry, only if c's lease token still matches
// (otherwise IsLeaseLost). The lease need not be live: an expired lease that
// nobody else claimed still holds. In the same script it remembers the id as
// completed for DoneTTL (Completed), so that a scanner looking for parked
// objects without an entry does not take the parked copy of an object that
// was just delivered (and whose copy is about to be deleted) for an orphan.
func (q *Queue) Complete(ctx context.Context, c Claimed) error {
	n, err := completeScript.Run(ctx, q.rdb, []string{q.leased, q.tokens, q.entries, q.done + c.ID},
		c.ID, c.Token, DoneTTL.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("retry: complete %s: %w", c.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("retry: complete %s: %w", c.ID, ErrLeaseLost)
	}
	return nil
}

// Completed reports whether the entry id was completed within the last
// DoneTTL. It is a hint for scanners, never proof that an object was
// delivered (Redis may have lost it, and a new entry may reuse the id).
func (q *Queue) Completed(ctx context.Context, id string) (bool, error) {
	n, err := q.rdb.Exists(ctx, q.done+id).Result()
	if err != nil {
		return false, fmt.Errorf("retry: completed %s: %w", id, err)
	}
	return n == 1, nil
}

// updateScript: KEYS tokens, entries; ARGV id, token, json. 1 done, 0 token
// mismatch. The entry stays leased.
var updateScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
`)

// MarkDying records, token-checked (otherwise IsLeaseLost), that c is being
// dead-lettered for reason: the entry stays leased with Dying and DeadReason
// set, and c is updated. It is the first write of a dead-lettering, before
// the object is copied to the dead-letter prefix, so that a holder that
// crashes or loses its lease half-way leaves an entry that says what was
// under way: the next holder finishes the dead-lettering (no attempt), and a
// parked copy that is already gone is never taken for a delivery.
func (q *Queue) MarkDying(ctx context.Context, c *Claimed, reason string) error {
	e := c.Entry
	e.State = ""
	e.Dying, e.DeadReason, e.LastError = true, reason, reason
	b, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("retry: mark dying %s: encode: %w", c.ID, err)
	}
	n, err := updateScript.Run(ctx, q.rdb, []string{q.tokens, q.entries}, c.ID, c.Token, b).Int()
	if err != nil {
		return fmt.Errorf("retry: mark dying %s: %w", c.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("retry: mark dying %s: %w", c.ID, ErrLeaseLost)
	}
	c.Entry = e
	return nil
}

// Reschedule records a failed attempt: the entry waits for next at due with
// lastErr, if c's token still matches (otherwise IsLeaseLost).
func (q *Queue) Reschedule(ctx context.Context, c Claimed, due time.Time, next Position, lastErr string) error {
	if !next.Valid() {
		return fmt.Errorf("retry: reschedule %s to %s: %w", c.ID, next, ErrInvalid)
	}
	e := c.Entry
	e.State = ""
	e.Cycle, e.Attempt, e.Due, e.LastError = next.Cycle, next.Attempt, due, lastErr
	return q.finish(ctx, "reschedule", c, q.due, &e, ms(due))
}

// Postpone puts the entry back to wait until due without an attempt: its
// position and last error stay as they were, so the schedule resumes where it
// stopped. Token-checked like Reschedule (otherwise IsLeaseLost). This is how
// a disabled integration's parked entries stay parked (DESIGN §5).
func (q *Queue) Postpone(ctx context.Context, c Claimed, due time.Time) error {
	e := c.Entry
	e.State = ""
	e.Due = due
	return q.finish(ctx, "postpone", c, q.due, &e, ms(due))
}

// wakeScript: KEYS due; ARGV now ms, ids... Moves the given waiting entries
// (members of the due set; leased and dead ones are left alone) to now.
var wakeScript = redis.NewScript(`
local n = 0
for i = 2, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then
    redis.call('ZADD', KEYS[1], ARGV[1], ARGV[i])
    n = n + 1
  end
end
return n
`)

// Wake makes every waiting entry of integration due at now (entries held
// under a lease and dead letters are left alone) and returns how many it
// moved: called when an operator enables an integration again, so its parked
// entries do not sit out a postponement. Their positions are unchanged. It
// scans the queue (see ListByIntegration); not atomic across pages, which is
// harmless: an entry it misses waits for its own due time.
func (q *Queue) Wake(ctx context.Context, integration string, now time.Time) (int, error) {
	es, err := q.ListByIntegration(ctx, integration)
	if err != nil {
		return 0, err
	}
	n := 0
	const page = 256
	for i := 0; i < len(es); i += page {
		args := []any{ms(now)}
		for _, e := range es[i:min(i+page, len(es))] {
			if e.State == StateScheduled {
				args = append(args, e.ID)
			}
		}
		if len(args) == 1 {
			continue
		}
		k, err := wakeScript.Run(ctx, q.rdb, []string{q.due}, args...).Int()
		if err != nil {
			return n, fmt.Errorf("retry: wake %s: %w", integration, err)
		}
		n += k
	}
	return n, nil
}

// DeadLetter moves the entry to the dead-letter set with reason, at now, if
// c's token still matches (otherwise IsLeaseLost). Dead letters are kept
// until Requeue; list them with DeadLetters. parkedKey, when not "", replaces
// the entry's ParkedKey (the object moved to the dead-letter prefix).
func (q *Queue) DeadLetter(ctx context.Context, c Claimed, now time.Time, reason, parkedKey string) error {
	e := c.Entry
	e.State, e.Dying = "", false
	e.DeadAt, e.DeadReason, e.LastError = now, reason, reason
	if parkedKey != "" {
		e.ParkedKey = parkedKey
	}
	return q.finish(ctx, "dead-letter", c, q.dead, &e, ms(now))
}

// extendScript: KEYS leased, tokens; ARGV id, token, until ms.
var extendScript = redis.NewScript(`
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
return 1
`)

// Extend renews c's lease until now+lease (token-checked; IsLeaseLost when
// another holder took it) and updates c.LeaseUntil.
func (q *Queue) Extend(ctx context.Context, c *Claimed, now time.Time, lease time.Duration) error {
	until := now.Add(lease)
	n, err := extendScript.Run(ctx, q.rdb, []string{q.leased, q.tokens}, c.ID, c.Token, ms(until)).Int()
	if err != nil {
		return fmt.Errorf("retry: extend %s: %w", c.ID, err)
	}
	if n == 0 {
		return fmt.Errorf("retry: extend %s: %w", c.ID, ErrLeaseLost)
	}
	c.LeaseUntil = until
	return nil
}

// requeueScript: KEYS dead, entries, due; ARGV id, json, due ms.
var requeueScript = redis.NewScript(`
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
return 1
`)

// Requeued is the position a requeued dead letter starts at: the parked
// schedule (cycles 2 and 3) from its beginning.
var Requeued = Position{Cycle: 2, Attempt: 1}

// Requeue puts the dead letters ids back in the queue, due at now, at
// position Requeued (for `hitship redeliver`, after the customer fixed the
// bucket). parkedKey, when not nil, gives the entry's new ParkedKey (the
// caller moved the object back out of the dead-letter prefix). ids that are
// not dead letters are skipped. It returns how many were requeued; each id
// is moved atomically, the batch is not (two round trips per id).
func (q *Queue) Requeue(ctx context.Context, ids []string, now time.Time, parkedKey func(Entry) string) (int, error) {
	n := 0
	for _, id := range ids {
		js, err := q.rdb.HGet(ctx, q.entries, id).Result()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("retry: requeue %s: %w", id, err)
		}
		var e Entry
		if err := json.Unmarshal([]byte(js), &e); err != nil {
			return n, fmt.Errorf("retry: requeue %s: decode: %w", id, err)
		}
		e.Cycle, e.Attempt, e.Due = Requeued.Cycle, Requeued.Attempt, now
		e.DeadAt, e.DeadReason, e.Dying = time.Time{}, "", false
		if parkedKey != nil {
			e.ParkedKey = parkedKey(e)
		}
		b, err := json.Marshal(e)
		if err != nil {
			return n, fmt.Errorf("retry: requeue %s: encode: %w", id, err)
		}
		ok, err := requeueScript.Run(ctx, q.rdb, []string{q.dead, q.entries, q.due}, id, b, ms(now)).Int()
		if err != nil {
			return n, fmt.Errorf("retry: requeue %s: %w", id, err)
		}
		n += ok
	}
	return n, nil
}

// DeadLetters lists the dead letters of integration ("" for all) that died at
// or after since, oldest first.
func (q *Queue) DeadLetters(ctx context.Context, integration string, since time.Time) ([]Entry, error) {
	ids, err := q.rdb.ZRangeByScore(ctx, q.dead, &redis.ZRangeBy{Min: strconv.FormatInt(ms(since), 10), Max: "+inf"}).Result()
	if err != nil {
		return nil, fmt.Errorf("retry: dead letters: %w", err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	vals, err := q.rdb.HMGet(ctx, q.entries, ids...).Result()
	if err != nil {
		return nil, fmt.Errorf("retry: dead letters: %w", err)
	}
	var out []Entry
	for i, v := range vals {
		js, ok := v.(string)
		if !ok {
			continue // requeued or removed in between
		}
		var e Entry
		if err := json.Unmarshal([]byte(js), &e); err != nil {
			return out, fmt.Errorf("retry: dead letter %s: decode: %w", ids[i], err)
		}
		if integration != "" && e.Integration != integration {
			continue
		}
		e.State = StateDead
		out = append(out, e)
	}
	return out, nil
}

// Stats counts the queue's entries as of now, in one MULTI block.
func (q *Queue) Stats(ctx context.Context, now time.Time) (Stats, error) {
	n := strconv.FormatInt(ms(now), 10)
	var due, all, leased, expired, dead *redis.IntCmd
	_, err := q.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		due = p.ZCount(ctx, q.due, "-inf", n)
		all = p.ZCard(ctx, q.due)
		leased = p.ZCard(ctx, q.leased)
		expired = p.ZCount(ctx, q.leased, "-inf", n)
		dead = p.ZCard(ctx, q.dead)
		return nil
	})
	if err != nil {
		return Stats{}, fmt.Errorf("retry: stats: %w", err)
	}
	return Stats{
		Due:       due.Val(),
		Scheduled: all.Val() - due.Val(),
		Leased:    leased.Val(),
		Expired:   expired.Val(),
		Dead:      dead.Val(),
	}, nil
}

// ListByIntegration returns every entry of integration ("" for all) in any
// state, with State set. It scans the whole queue (HSCAN), so it is for the
// admin API and the CLI, not for hot paths; an entry moving while the scan
// runs may be reported in either state.
func (q *Queue) ListByIntegration(ctx context.Context, integration string) ([]Entry, error) {
	var out []Entry
	var cursor uint64
	for {
		kv, next, err := q.rdb.HScan(ctx, q.entries, cursor, "", 256).Result()
		if err != nil {
			return out, fmt.Errorf("retry: list: %w", err)
		}
		var page []Entry
		for i := 0; i+1 < len(kv); i += 2 {
			var e Entry
			if err := json.Unmarshal([]byte(kv[i+1]), &e); err != nil {
				return out, fmt.Errorf("retry: list %s: decode: %w", kv[i], err)
			}
			if integration == "" || e.Integration == integration {
				page = append(page, e)
			}
		}
		if len(page) > 0 {
			leased := make([]*redis.FloatCmd, len(page))
			dead := make([]*redis.FloatCmd, len(page))
			_, err := q.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
				for i, e := range page {
					leased[i] = p.ZScore(ctx, q.leased, e.ID)
					dead[i] = p.ZScore(ctx, q.dead, e.ID)
				}
				return nil
			})
			if err != nil && !errors.Is(err, redis.Nil) {
				return out, fmt.Errorf("retry: list: %w", err)
			}
			for i := range page {
				for _, c := range []*redis.FloatCmd{leased[i], dead[i]} {
					if err := c.Err(); err != nil && !errors.Is(err, redis.Nil) {
						return out, fmt.Errorf("retry: list: %w", err)
					}
				}
				switch {
				case dead[i].Err() == nil:
					page[i].State = StateDead
				case leased[i].Err() == nil:
					page[i].State = StateLeased
				default:
					page[i].State = StateScheduled
				}
			}
			out = append(out, page...)
		}
		if next == 0 {
			return out, nil
		}
		cursor = next
	}
}

// inlineFailureTTL bounds how long the first-failure time of an object is
// kept: far longer than cycle 1, so a stale record only means "cycle 1 is
// over".
const inlineFailureTTL = time.Hour

// firstFailureScript: KEYS key; ARGV now ms, ttl ms. Sets the key if absent
// and returns its value.
var firstFailureScript = redis.NewScript(`
redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
return redis.call('GET', KEYS[1])
`)

func (q *Queue) failureKey(id string) string { return q.inline + id }

// InlineFailure returns when the first cycle-1 attempt of the object id
// failed, if one was recorded (by any replica): a new owner of the partition
// carries on with the schedule instead of starting cycle 1 again.
func (q *Queue) InlineFailure(ctx context.Context, id string) (time.Time, bool, error) {
	v, err := q.rdb.Get(ctx, q.failureKey(id)).Int64()
	if errors.Is(err, redis.Nil) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, fmt.Errorf("retry: inline failure %s: %w", id, err)
	}
	return time.UnixMilli(v), true, nil
}

// NoteInlineFailure records now as the first failed cycle-1 attempt of id
// unless one is recorded already, and returns the recorded time.
func (q *Queue) NoteInlineFailure(ctx context.Context, id string, now time.Time) (time.Time, error) {
	v, err := firstFailureScript.Run(ctx, q.rdb, []string{q.failureKey(id)}, ms(now), inlineFailureTTL.Milliseconds()).Int64()
	if err != nil {
		return time.Time{}, fmt.Errorf("retry: note inline failure %s: %w", id, err)
	}
	return time.UnixMilli(v), nil
}

// ForgetInlineFailure removes the record once the object is delivered or
// parked.
func (q *Queue) ForgetInlineFailure(ctx context.Context, id string) error {
	if err := q.rdb.Del(ctx, q.failureKey(id)).Err(); err != nil {
		return fmt.Errorf("retry: forget inline failure %s: %w", id, err)
	}
	return nil
}
