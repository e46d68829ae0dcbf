package health

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"hitship/registry"
)

// Window is the length of the sliding record.
const Window = 12 * time.Hour

// Bucket is the granularity of the sliding record: outcomes are counted per
// minute.
const Bucket = time.Minute

// buckets is how many minutes before the current one still count: an
// outcome counts while now - at < Window + Bucket, so for at least 12 h.
const buckets = int64(Window / Bucket)

// ThresholdPercent: an integration whose failures are at least this share of
// its attempts in the window (and that has at least MinAttempts) is
// auto-disabled.
const ThresholdPercent = 60

// DefaultMinAttempts is Config.MinAttempts when it is zero.
const DefaultMinAttempts = 20

// DefaultBy is Config.By when it is empty: the "by" of an auto-disable.
const DefaultBy = "hitship-health"

// ttl makes an idle integration's ledger vanish by itself.
const ttl = Window + time.Hour

// timeLayout is the "at" field of an event, exactly as registry writes it.
const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// ErrInvalid marks a bad argument or configuration.
var ErrInvalid = errors.New("health: invalid")

// IsInvalid reports whether err is a bad argument rather than a Redis failure.
func IsInvalid(err error) bool { return errors.Is(err, ErrInvalid) }

// Config configures a Ledger.
type Config struct {
	// Prefix starts every key; it must be the registry's prefix, and in
	// Redis Cluster it must carry a hash tag (e.g. "{hitship}:").
	Prefix string `yaml:"-"`
	// MinAttempts is the least number of attempts in the window before an
	// integration can be auto-disabled (default DefaultMinAttempts).
	MinAttempts int `yaml:"min_attempts"`
	// By is recorded as "by" of an auto-disable (default DefaultBy).
	By string `yaml:"by"`
}

func (c *Config) defaults() {
	if c.MinAttempts == 0 {
		c.MinAttempts = DefaultMinAttempts
	}
	if c.By == "" {
		c.By = DefaultBy
	}
}

// Validate reports a bad configuration.
func (c Config) Validate() error {
	if c.MinAttempts < 0 {
		return fmt.Errorf("health: min_attempts %d < 0: %w", c.MinAttempts, ErrInvalid)
	}
	if len(c.By) > registry.MaxReasonBytes || !utf8.ValidString(c.By) {
		return fmt.Errorf("health: by %q: %w", c.By, ErrInvalid)
	}
	return nil
}

// Decision is the outcome of recording or flushing.
type Decision struct {
	Integration string
	// Attempts and Failures are the integration's counts in the window
	// after this call (zero when Deferred).
	Attempts, Failures int
	// Disabled reports that this call auto-disabled the integration; Event
	// is the event it recorded (for the caller to log).
	Disabled bool
	Event    registry.Event
	// Deferred reports that the outcome was kept in memory (Redis down or
	// outcomes pending): no decision was made.
	Deferred bool
}

// Ledger is the 12-hour sliding record of upload outcomes per integration
// in Redis. Safe for concurrent use; every method blocks for one Redis
// round trip.
type Ledger struct {
	rdb    redis.UniversalClient
	cfg    Config
	hash   string // registry's integrations hash
	stream string // registry's events stream
}

// New returns a Ledger over rdb. The registry's keys are derived from
// cfg.Prefix exactly as registry.New derives them.
func New(rdb redis.UniversalClient, cfg Config) (*Ledger, error) {
	if rdb == nil {
		return nil, fmt.Errorf("health: nil redis client: %w", ErrInvalid)
	}
	cfg.defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if _, cluster := rdb.(*redis.ClusterClient); cluster && !hasHashTag(cfg.Prefix) {
		return nil, fmt.Errorf("health: prefix %q needs a hash tag in Redis Cluster: %w", cfg.Prefix, ErrInvalid)
	}
	return &Ledger{rdb: rdb, cfg: cfg, hash: cfg.Prefix + "integrations", stream: cfg.Prefix + "events"}, nil
}

// hasHashTag reports whether prefix holds a non-empty {tag}, so that every
// key built from it lands in one cluster slot.
func hasHashTag(prefix string) bool {
	i := strings.IndexByte(prefix, '{')
	if i < 0 {
		return false
	}
	j := strings.IndexByte(prefix[i+1:], '}')
	return j > 0
}

// Key returns the Redis key of name's ledger (a hash).
func (l *Ledger) Key(name string) string { return l.cfg.Prefix + "health:" + name }

// minute returns the bucket of t.
func minute(t time.Time) int64 {
	ms := t.UnixMilli()
	m := ms / int64(Bucket/time.Millisecond)
	if ms < 0 && ms%int64(Bucket/time.Millisecond) != 0 {
		m--
	}
	return m
}

// cell is one bucket's counts.
type cell struct{ attempts, failures int64 }

// record adds the outcomes of every bucket in cells to the ledger and,
// atomically with it, evaluates the threshold and auto-disables. Fields of
// the ledger hash: "a<minute>" attempts, "f<minute>" failures.
//
// KEYS: ledger, registry hash, events stream.
// ARGV: name, now minute, buckets, min attempts, threshold %, since (JSON
// time), at (event time), by, maxlen, event type, ttl ms, then triples
// (minute, attempts, failures) from ARGV[12].
var record = redis.NewScript(`
local now = tonumber(ARGV[2])
local cutoff = now - tonumber(ARGV[3])
for i = 12, #ARGV, 3 do
  local m = tonumber(ARGV[i])
  if m >= cutoff then
    local a, f = tonumber(ARGV[i+1]), tonumber(ARGV[i+2])
    if a > 0 then redis.call('HINCRBY', KEYS[1], 'a' .. ARGV[i], a) end
    if f > 0 then redis.call('HINCRBY', KEYS[1], 'f' .. ARGV[i], f) end
  end
end
local all = redis.call('HGETALL', KEYS[1])
local att, fail, old = 0, 0, {}
for i = 1, #all, 2 do
  local k = all[i]
  local kind, m = string.sub(k, 1, 1), tonumber(string.sub(k, 2))
  if m == nil or m < cutoff then
    old[#old + 1] = k
  elseif kind == 'a' then
    att = att + tonumber(all[i + 1])
  elseif kind == 'f' then
    fail = fail + tonumber(all[i + 1])
  end
end
for i = 1, #old, 500 do
  redis.call('HDEL', KEYS[1], unpack(old, i, math.min(i + 499, #old)))
end
if #all > 2 * #old then redis.call('PEXPIRE', KEYS[1], ARGV[11]) end
if att < tonumber(ARGV[4]) or att == 0 or fail * 100 < tonumber(ARGV[5]) * att then
  return {att, fail, '', ''}
end
local cur = redis.call('HGET', KEYS[2], ARGV[1])
if cur then
  local ok, st = pcall(cjson.decode, cur)
  if not ok or type(st) ~= 'table' or st.state ~= 'enabled' then return {att, fail, '', ''} end
end
local reason = string.format('%d%% of %d uploads failed in 12 h', math.floor(fail * 100 / att), att)
redis.call('HSET', KEYS[2], ARGV[1], cjson.encode({name = ARGV[1], state = 'auto-disabled',
  reason = reason, since = ARGV[6], by = ARGV[8]}))
local id = redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[9], '*',
  'type', ARGV[10], 'integration', ARGV[1], 'state', 'auto-disabled',
  'reason', reason, 'by', ARGV[8], 'at', ARGV[7])
return {att, fail, id, reason}
`)

// Record adds one upload outcome of integration at time at to the ledger
// and evaluates the window ending at at, in one Lua script: when at least
// MinAttempts attempts were made and ThresholdPercent or more of them failed,
// and the integration is enabled (no registry entry counts as enabled), it
// becomes auto-disabled and one event is recorded. Of replicas racing past
// the threshold exactly one gets Disabled.
func (l *Ledger) Record(ctx context.Context, integration string, ok bool, at time.Time) (Decision, error) {
	c := cell{attempts: 1}
	if !ok {
		c.failures = 1
	}
	return l.apply(ctx, integration, map[int64]cell{minute(at): c}, at)
}

// apply writes cells (bucket -> counts) of integration and evaluates the
// window ending at now, atomically.
func (l *Ledger) apply(ctx context.Context, integration string, cells map[int64]cell, now time.Time) (Decision, error) {
	if err := checkName(integration); err != nil {
		return Decision{}, err
	}
	at := now.UTC().Truncate(time.Millisecond)
	since, err := json.Marshal(at)
	if err != nil {
		return Decision{}, fmt.Errorf("health: %w", err)
	}
	args := make([]any, 0, 11+3*len(cells))
	args = append(args, integration, minute(now), buckets, l.cfg.MinAttempts, ThresholdPercent,
		strings.Trim(string(since), `"`), at.Format(timeLayout), l.cfg.By, registry.MaxEvents,
		registry.EventType, ttl.Milliseconds())
	for m, c := range cells {
		args = append(args, m, c.attempts, c.failures)
	}
	res, err := record.Run(ctx, l.rdb, []string{l.Key(integration), l.hash, l.stream}, args...).Slice()
	if err != nil {
		return Decision{}, fmt.Errorf("health: record %s: %w", integration, err)
	}
	if len(res) != 4 {
		return Decision{}, fmt.Errorf("health: record %s: unexpected reply %v", integration, res)
	}
	att, _ := res[0].(int64)
	fail, _ := res[1].(int64)
	id, _ := res[2].(string)
	reason, _ := res[3].(string)
	d := Decision{Integration: integration, Attempts: int(att), Failures: int(fail)}
	if id != "" {
		d.Disabled = true
		d.Event = registry.Event{ID: id, Type: registry.EventType, Integration: integration,
			State: registry.AutoDisabled, Reason: reason, By: l.cfg.By, At: at}
	}
	return d, nil
}

// Ratio returns the attempts and failures of integration in the window
// ending at now (for metrics and the admin API). It does not change Redis.
func (l *Ledger) Ratio(ctx context.Context, integration string, now time.Time) (attempts, failures int, err error) {
	if err := checkName(integration); err != nil {
		return 0, 0, err
	}
	m, err := l.rdb.HGetAll(ctx, l.Key(integration)).Result()
	if err != nil {
		return 0, 0, fmt.Errorf("health: ratio %s: %w", integration, err)
	}
	cutoff := minute(now) - buckets
	for k, v := range m {
		if len(k) < 2 {
			continue
		}
		b, err1 := strconv.ParseInt(k[1:], 10, 64)
		n, err2 := strconv.Atoi(v)
		if err1 != nil || err2 != nil || b < cutoff {
			continue
		}
		switch k[0] {
		case 'a':
			attempts += n
		case 'f':
			failures += n
		}
	}
	return attempts, failures, nil
}

// Reset forgets integration's ledger. Call it when an operator re-enables
// the integration.
func (l *Ledger) Reset(ctx context.Context, integration string) error {
	if err := checkName(integration); err != nil {
		return err
	}
	if err := l.rdb.Del(ctx, l.Key(integration)).Err(); err != nil {
		return fmt.Errorf("health: reset %s: %w", integration, err)
	}
	return nil
}

// checkName applies registry's rules for an integration name.
func checkName(name string) error {
	if name == "" || len(name) > 256 || !utf8.ValidString(name) {
		return fmt.Errorf("health: integration name %q: %w", name, ErrInvalid)
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return fmt.Errorf("health: integration name %q: %w", name, ErrInvalid)
		}
	}
	return nil
}
