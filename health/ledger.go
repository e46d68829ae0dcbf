package health

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"hitship/integrations/registry"
	"hitship/state"
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

// DefaultMinFailing is Config.MinFailing when it is zero.
const DefaultMinFailing = time.Hour

// Outcome is the result of one upload attempt, with the side a failure's
// cause lies on (Blame of sink/s3): only customer-side failures count toward
// auto-disable.
type Outcome int

// Outcomes.
const (
	// Success: the object was written (or was already there).
	Success Outcome = iota
	// FailCustomer: the customer's bucket or account refused (access denied,
	// no such bucket, wrong region, bad credentials, role not assumable).
	FailCustomer
	// FailProvider: S3 or STS failed (5xx, throttling, timeouts, no answer).
	FailProvider
	// FailHitship: hitship's own failure (its identity, parking bucket, disk).
	FailHitship
)

func (o Outcome) valid() bool { return o >= Success && o <= FailHitship }

// DefaultBy is Config.By when it is empty: the "by" of an auto-disable.
const DefaultBy = "hitship-health"

// ttl makes an idle integration's ledger vanish by itself.
const ttl = Window + time.Hour

// ErrInvalid marks a bad argument or configuration.
var ErrInvalid = errors.New("health: invalid")

// IsInvalid reports whether err is a bad argument rather than a Redis failure.
func IsInvalid(err error) bool { return errors.Is(err, ErrInvalid) }

// AutoDisabler records an auto-disable: registry.Store.AutoDisable, which
// changes only an enabled integration, atomically, and records the event.
// Declared here, where it is used.
type AutoDisabler interface {
	AutoDisable(ctx context.Context, name, reason, by string) (registry.Event, bool, error)
}

var _ AutoDisabler = (*registry.Store)(nil)

// Config configures a Ledger.
type Config struct {
	// Prefix starts every key; it must be the registry's prefix, and in
	// Redis Cluster it must carry a hash tag (e.g. "{hitship}:").
	Prefix string `yaml:"-"`
	// Registry records the auto-disable when the threshold is met; nil: a
	// Redis-only registry.Store over the same client and Prefix.
	Registry AutoDisabler `yaml:"-"`
	// MinAttempts is the least number of attempts in the window before an
	// integration can be auto-disabled (default DefaultMinAttempts).
	MinAttempts int `yaml:"min_attempts"`
	// MinFailing is the least time from the first to the last customer-side
	// failure in the window before an integration can be auto-disabled
	// (default DefaultMinFailing): a burst of trouble is not a broken
	// customer.
	MinFailing time.Duration `yaml:"min_failing"`
	// By is recorded as "by" of an auto-disable (default DefaultBy).
	By string `yaml:"by"`
}

func (c *Config) defaults() {
	if c.MinAttempts == 0 {
		c.MinAttempts = DefaultMinAttempts
	}
	if c.MinFailing == 0 {
		c.MinFailing = DefaultMinFailing
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
	if c.MinFailing < 0 {
		return fmt.Errorf("health: min_failing %s < 0: %w", c.MinFailing, ErrInvalid)
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
	// after this call (zero when Deferred); CustomerFailures are the failures
	// on the customer's side, FailingSpan the time from the first to the last
	// of them.
	Attempts, Failures, CustomerFailures int
	FailingSpan                          time.Duration
	// Disabled reports that this call auto-disabled the integration; Event
	// is the event it recorded (for the caller to log).
	Disabled bool
	Event    registry.Event
	// Deferred reports that the outcome was kept in memory (Redis down or
	// outcomes pending): no decision was made.
	Deferred bool
	// DisableErr is set when the threshold was met but the auto-disable
	// could not be recorded; the next outcome of the integration tries
	// again.
	DisableErr error
}

// Ledger is the 12-hour sliding record of upload outcomes per integration
// in Redis. Safe for concurrent use; every method blocks for one Redis
// round trip.
type Ledger struct {
	rdb redis.UniversalClient
	cfg Config
}

// New returns a Ledger over rdb.
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
	if cfg.Registry == nil {
		reg, err := registry.New(rdb, cfg.Prefix, time.Now)
		if err != nil {
			return nil, fmt.Errorf("health: %w", err)
		}
		cfg.Registry = reg
	}
	return &Ledger{rdb: rdb, cfg: cfg}, nil
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
func (l *Ledger) Key(name string) string { return state.HealthKey(l.cfg.Prefix, name) }

// minute returns the bucket of t.
func minute(t time.Time) int64 {
	ms := t.UnixMilli()
	m := ms / int64(Bucket/time.Millisecond)
	if ms < 0 && ms%int64(Bucket/time.Millisecond) != 0 {
		m--
	}
	return m
}

// cell is one bucket's counts: attempts, failures, customer-side failures
// and the times (Unix ms, 0: none) of the bucket's first and last
// customer-side failure.
type cell struct{ attempts, failures, customer, first, last int64 }

func (c *cell) add(o Outcome, at time.Time) {
	c.attempts++
	if o == Success {
		return
	}
	c.failures++
	if o != FailCustomer {
		return
	}
	c.customer++
	ms := at.UnixMilli()
	if c.first == 0 || ms < c.first {
		c.first = ms
	}
	if ms > c.last {
		c.last = ms
	}
}

func (c cell) merge(o cell) cell {
	c.attempts += o.attempts
	c.failures += o.failures
	c.customer += o.customer
	if o.first != 0 && (c.first == 0 || o.first < c.first) {
		c.first = o.first
	}
	c.last = max(c.last, o.last)
	return c
}

// record adds the outcomes of every bucket in cells to the ledger and,
// atomically with it, evaluates the threshold. Fields of the ledger hash:
// "a<minute>" attempts, "f<minute>" failures, "c<minute>" customer-side
// failures, "s<minute>" and "e<minute>" the times (Unix ms) of the minute's
// first and last customer-side failure. It returns {attempts, failures,
// customer failures, span ms, met (1 or 0)}. The auto-disable itself is the
// registry's (Ledger.apply).
//
// KEYS: ledger.
// ARGV: now minute, buckets, min attempts, threshold %, ttl ms, min failing
// ms, then 6-tuples (minute, attempts, failures, customer, first, last) from
// ARGV[7].
var record = redis.NewScript(`
local now = tonumber(ARGV[1])
local cutoff = now - tonumber(ARGV[2])
for i = 7, #ARGV, 6 do
  local m = tonumber(ARGV[i])
  if m >= cutoff then
    local a, f, c = tonumber(ARGV[i+1]), tonumber(ARGV[i+2]), tonumber(ARGV[i+3])
    if a > 0 then redis.call('HINCRBY', KEYS[1], 'a' .. ARGV[i], a) end
    if f > 0 then redis.call('HINCRBY', KEYS[1], 'f' .. ARGV[i], f) end
    if c > 0 then
      redis.call('HINCRBY', KEYS[1], 'c' .. ARGV[i], c)
      local s = redis.call('HGET', KEYS[1], 's' .. ARGV[i])
      if not s or tonumber(ARGV[i+4]) < tonumber(s) then redis.call('HSET', KEYS[1], 's' .. ARGV[i], ARGV[i+4]) end
      local e = redis.call('HGET', KEYS[1], 'e' .. ARGV[i])
      if not e or tonumber(ARGV[i+5]) > tonumber(e) then redis.call('HSET', KEYS[1], 'e' .. ARGV[i], ARGV[i+5]) end
    end
  end
end
local all = redis.call('HGETALL', KEYS[1])
local att, fail, cust, first, last, old = 0, 0, 0, nil, nil, {}
for i = 1, #all, 2 do
  local k = all[i]
  local kind, m = string.sub(k, 1, 1), tonumber(string.sub(k, 2))
  local v = tonumber(all[i + 1])
  if m == nil or m < cutoff then
    old[#old + 1] = k
  elseif kind == 'a' then
    att = att + v
  elseif kind == 'f' then
    fail = fail + v
  elseif kind == 'c' then
    cust = cust + v
  elseif kind == 's' then
    if first == nil or v < first then first = v end
  elseif kind == 'e' then
    if last == nil or v > last then last = v end
  end
end
for i = 1, #old, 500 do
  redis.call('HDEL', KEYS[1], unpack(old, i, math.min(i + 499, #old)))
end
if #all > 2 * #old then redis.call('PEXPIRE', KEYS[1], ARGV[5]) end
local span = 0
if first ~= nil and last ~= nil then span = last - first end
if att < tonumber(ARGV[3]) or att == 0 or cust * 100 < tonumber(ARGV[4]) * att or span < tonumber(ARGV[6]) then
  return {att, fail, cust, span, 0}
end
return {att, fail, cust, span, 1}
`)

// Record adds one upload outcome of integration at time at to the ledger
// and evaluates the window ending at at, in one Lua script. The integration
// becomes auto-disabled (and one event is recorded) when, in the window, at
// least MinAttempts attempts were made, failures on the customer's side are
// ThresholdPercent or more of them, and those failures span at least
// MinFailing from the first to the last, and the integration is enabled (no
// registry entry counts as enabled). Provider and hitship failures count as
// attempts, never toward the threshold. Of replicas racing past the
// threshold exactly one gets Disabled.
func (l *Ledger) Record(ctx context.Context, integration string, o Outcome, at time.Time) (Decision, error) {
	if !o.valid() {
		return Decision{}, fmt.Errorf("health: outcome %d: %w", o, ErrInvalid)
	}
	var c cell
	c.add(o, at)
	return l.apply(ctx, integration, map[int64]cell{minute(at): c}, at)
}

// apply writes cells (bucket -> counts) of integration and evaluates the
// window ending at now, atomically.
func (l *Ledger) apply(ctx context.Context, integration string, cells map[int64]cell, now time.Time) (Decision, error) {
	if err := checkName(integration); err != nil {
		return Decision{}, err
	}
	args := make([]any, 0, 6+6*len(cells))
	args = append(args, minute(now), buckets, l.cfg.MinAttempts, ThresholdPercent, ttl.Milliseconds(), l.cfg.MinFailing.Milliseconds())
	for m, c := range cells {
		args = append(args, m, c.attempts, c.failures, c.customer, c.first, c.last)
	}
	res, err := record.Run(ctx, l.rdb, []string{l.Key(integration)}, args...).Int64Slice()
	if err != nil {
		return Decision{}, fmt.Errorf("health: record %s: %w", integration, err)
	}
	if len(res) != 5 {
		return Decision{}, fmt.Errorf("health: record %s: unexpected reply %v", integration, res)
	}
	d := Decision{Integration: integration, Attempts: int(res[0]), Failures: int(res[1]), CustomerFailures: int(res[2]),
		FailingSpan: time.Duration(res[3]) * time.Millisecond}
	if res[4] != 1 {
		return d, nil
	}
	reason := fmt.Sprintf("%d%% of %d uploads failed on the customer side over %d min in 12 h",
		res[2]*100/res[0], res[0], res[3]/60000)
	ev, changed, err := l.cfg.Registry.AutoDisable(ctx, integration, reason, l.cfg.By)
	if err != nil {
		// The counts are written: returning an error would make Buffered
		// count them again. The next outcome evaluates the threshold anew.
		d.DisableErr = fmt.Errorf("health: auto-disable %s: %w", integration, err)
		return d, nil
	}
	d.Disabled, d.Event = changed, ev
	return d, nil
}

// Counts are an integration's figures over the window.
type Counts struct {
	Attempts, Failures, CustomerFailures int
	// FailingSpan is the time from the first to the last customer-side
	// failure.
	FailingSpan time.Duration
}

// Counts returns the figures of integration in the window ending at now
// (for metrics and the admin API). It does not change Redis.
func (l *Ledger) Counts(ctx context.Context, integration string, now time.Time) (Counts, error) {
	if err := checkName(integration); err != nil {
		return Counts{}, err
	}
	m, err := l.rdb.HGetAll(ctx, l.Key(integration)).Result()
	if err != nil {
		return Counts{}, fmt.Errorf("health: ratio %s: %w", integration, err)
	}
	cutoff := minute(now) - buckets
	var c Counts
	var first, last int64
	for k, v := range m {
		if len(k) < 2 {
			continue
		}
		b, err1 := strconv.ParseInt(k[1:], 10, 64)
		n, err2 := strconv.ParseInt(v, 10, 64)
		if err1 != nil || err2 != nil || b < cutoff {
			continue
		}
		switch k[0] {
		case 'a':
			c.Attempts += int(n)
		case 'f':
			c.Failures += int(n)
		case 'c':
			c.CustomerFailures += int(n)
		case 's':
			if first == 0 || n < first {
				first = n
			}
		case 'e':
			last = max(last, n)
		}
	}
	if first != 0 && last >= first {
		c.FailingSpan = time.Duration(last-first) * time.Millisecond
	}
	return c, nil
}

// Ratio returns the attempts and failures of integration in the window
// ending at now (Counts without the rest). It does not change Redis.
func (l *Ledger) Ratio(ctx context.Context, integration string, now time.Time) (attempts, failures int, err error) {
	c, err := l.Counts(ctx, integration, now)
	return c.Attempts, c.Failures, err
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
