package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"hitship/kstore"
	"hitship/state"
)

// State is the runtime state of an integration.
type State string

// States.
const (
	Enabled      State = "enabled"
	Disabled     State = "disabled"
	AutoDisabled State = "auto-disabled"
)

// Valid reports whether s is one of the known states.
func (s State) Valid() bool { return s == Enabled || s == Disabled || s == AutoDisabled }

// EventType is the type field of the events of state changes.
const EventType = "integration_state"

// DeleteEventType is the type field of the event Forget records (DESIGN §4's
// delete_integration).
const DeleteEventType = "delete_integration"

// DurableKeyPrefix starts the key of an integration's runtime state in the
// durable copy ("state/" + name). Issue #13 keeps integration definitions in
// the same topic under keys of their own.
const DurableKeyPrefix = "state/"

// DefaultDurableTimeout bounds a write to the durable copy.
const DefaultDurableTimeout = 10 * time.Second

// MaxEvents is the approximate cap of the events stream.
const MaxEvents = 10000

// MaxReasonBytes caps a reason (longer ones are cut at a rune boundary).
const MaxReasonBytes = 1024

// ErrInvalid marks a bad argument (empty name, unknown state, ...).
var ErrInvalid = errors.New("registry: invalid")

// IsInvalid reports whether err is a bad argument rather than a Redis failure.
func IsInvalid(err error) bool { return errors.Is(err, ErrInvalid) }

// Status is the runtime state of one integration.
type Status struct {
	Name   string    `json:"name"`
	State  State     `json:"state"`
	Reason string    `json:"reason,omitempty"`
	Since  time.Time `json:"since,omitzero"`
	By     string    `json:"by,omitempty"`
	// ClientID is the client the state was recorded for (0: unknown, as in
	// entries written before client ids were recorded; such a state applies
	// whatever the client).
	ClientID int64 `json:"client_id,omitempty"`
	// Version orders the states of one integration: every change sets it to
	// max(previous + 1, now in Unix ms), and of two copies (Redis and the
	// durable topic) the higher version wins. 0 for entries written before
	// versions existed.
	Version int64 `json:"version,omitempty"`
}

// Durable is the durable, shared copy of the states: a kstore.Map over the
// integrations topic. Declared here, where it is used.
type Durable interface {
	Put(ctx context.Context, key string, value []byte) error
	Delete(ctx context.Context, key string) error
	Lookup(key string) (kstore.Entry, bool)
	Entries() map[string]kstore.Entry
}

var _ Durable = (*kstore.Map)(nil)

// Event is one recorded state change, as in the events stream.
type Event struct {
	ID          string    `json:"id"` // stream entry id
	Type        string    `json:"type"`
	Integration string    `json:"integration"`
	State       State     `json:"state"`
	Reason      string    `json:"reason,omitempty"`
	By          string    `json:"by,omitempty"`
	At          time.Time `json:"at"`
}

// LogValue lets a caller log an event with slog: logger.Info("...", "event", ev).
func (e Event) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", e.ID),
		slog.String("type", e.Type),
		slog.String("integration", e.Integration),
		slog.String("state", string(e.State)),
		slog.String("reason", e.Reason),
		slog.String("by", e.By),
		slog.Time("at", e.At),
	)
}

const timeLayout = "2006-01-02T15:04:05.000Z07:00"

// Config configures a Store.
type Config struct {
	// Prefix starts every Redis key (e.g. "hitship:"; in Redis Cluster with a
	// hash tag, "{hitship}:").
	Prefix string
	// Now is the clock of Since, At and versions. Required.
	Now func() time.Time
	// Durable, if set, is the durable copy every change is written to and
	// every read merges (see the package documentation). nil: Redis only.
	Durable Durable
	// DurableTimeout bounds one write to Durable (default
	// DefaultDurableTimeout).
	DurableTimeout time.Duration
	// Logger receives failed writes to Durable (a reconciliation writes them
	// later); nil discards them.
	Logger *slog.Logger
}

// Store reads and changes integration states in Redis and, when configured,
// in the durable copy. Safe for concurrent use; every method blocks for one
// Redis round trip, plus one acknowledged write to the durable copy for a
// change.
type Store struct {
	rdb     redis.UniversalClient
	hash    string
	stream  string
	now     func() time.Time
	durable Durable
	dtime   time.Duration
	log     *slog.Logger

	configured atomic.Pointer[map[string]int64] // name -> client id, see SetConfigured
}

// New returns a Redis-only Store over rdb whose keys start with prefix (e.g.
// "hitship:"; in Redis Cluster with a hash tag, "{hitship}:"). now is the
// clock of Since and At.
func New(rdb redis.UniversalClient, prefix string, now func() time.Time) (*Store, error) {
	return NewStore(rdb, Config{Prefix: prefix, Now: now})
}

// NewStore returns a Store over rdb configured by cfg.
func NewStore(rdb redis.UniversalClient, cfg Config) (*Store, error) {
	if rdb == nil {
		return nil, fmt.Errorf("registry: nil redis client: %w", ErrInvalid)
	}
	if cfg.Now == nil {
		return nil, fmt.Errorf("registry: nil clock: %w", ErrInvalid)
	}
	if cfg.DurableTimeout < 0 {
		return nil, fmt.Errorf("registry: negative durable timeout: %w", ErrInvalid)
	}
	if cfg.DurableTimeout == 0 {
		cfg.DurableTimeout = DefaultDurableTimeout
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{rdb: rdb, hash: state.IntegrationsKey(cfg.Prefix), stream: state.EventsKey(cfg.Prefix), now: cfg.Now,
		durable: cfg.Durable, dtime: cfg.DurableTimeout, log: log}
	s.configured.Store(&map[string]int64{})
	return s, nil
}

// SetConfigured tells the Store which integrations are configured and for
// which client (call it at start and on every reload). A change records the
// configured client id; a configured integration whose recorded state belongs
// to another client reads as enabled (a name reused for another customer
// starts fresh). The map must not be modified afterwards. Safe for concurrent
// use.
func (s *Store) SetConfigured(clients map[string]int64) {
	s.configured.Store(&clients)
}

// effective returns st as it applies to the configured integration of its
// name: enabled when it was recorded for another client.
func (s *Store) effective(st Status) Status {
	if st.ClientID == 0 {
		return st
	}
	if cid, ok := (*s.configured.Load())[st.Name]; ok && cid != st.ClientID {
		return Status{Name: st.Name, State: Enabled}
	}
	return st
}

// EventsKey returns the name of the events stream.
func (s *Store) EventsKey() string { return s.stream }

// setState changes the state of ARGV[1] to ARGV[2] unless it is already
// that. The current state is the newer of Redis's entry and the durable
// copy's (ARGV[12] its JSON, ARGV[13] its version; ARGV[14] > 0: deleted
// there at that time in ms); a state recorded for another client than
// ARGV[11] (when both are known) counts as enabled. With ARGV[9] = 1 it
// changes only an enabled integration. On a change it stores ARGV[3] (the
// Status JSON without its version) with version max(current + 1, ARGV[10])
// and records the event, and returns {stream id, stored JSON}; else it
// brings a stale Redis entry up to the durable copy and returns false.
// Client ids are compared as the decimal strings in the JSON (a Lua number
// holds 53 bits).
var setState = redis.NewScript(`
local function parse(js)
  local ok, st = pcall(cjson.decode, js)
  if ok and type(st) == 'table' then return st end
  return nil
end
local function client(js) return string.match(js, '"client_id":(%-?%d+)') or '0' end
local raw = redis.call('HGET', KEYS[1], ARGV[1])
local cur, ver, cid = 'enabled', 0, '0'
if raw then
  local st = parse(raw)
  if st then
    if type(st.state) == 'string' then cur = st.state end
    ver = tonumber(st.version) or 0
  end
  cid = client(raw)
end
local dver, deleted = tonumber(ARGV[13]), tonumber(ARGV[14])
local restore, drop = false, false
if ARGV[12] ~= '' and dver > ver then
  local st = parse(ARGV[12])
  cur, ver, cid, restore = st.state, dver, client(ARGV[12]), true
elseif deleted > 0 and deleted >= ver then
  cur, ver, cid, drop = 'enabled', deleted, '0', raw ~= false
end
if ARGV[11] ~= '0' and cid ~= '0' and cid ~= ARGV[11] then cur = 'enabled' end
if cur == ARGV[2] or (ARGV[9] == '1' and cur ~= 'enabled') then
  if restore then redis.call('HSET', KEYS[1], ARGV[1], ARGV[12]) end
  if drop then redis.call('HDEL', KEYS[1], ARGV[1]) end
  return false
end
local v = math.max(ver + 1, tonumber(ARGV[10]))
local js = string.sub(ARGV[3], 1, -2) .. ',"version":' .. string.format('%d', v) .. '}'
redis.call('HSET', KEYS[1], ARGV[1], js)
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*',
  'type', ARGV[5], 'integration', ARGV[1], 'state', ARGV[2],
  'reason', ARGV[6], 'by', ARGV[7], 'at', ARGV[8])
return {id, js}
`)

// Disable marks name disabled by an operator. changed is false (and no
// event is recorded) when it already was disabled; disabling an
// auto-disabled integration makes it operator-disabled. The event is
// returned for the caller to log.
func (s *Store) Disable(ctx context.Context, name, reason, by string) (ev Event, changed bool, err error) {
	return s.set(ctx, name, Disabled, reason, by, false)
}

// AutoDisable marks name auto-disabled (the health check's verdict). It
// changes only an enabled integration: changed is false when it already was
// auto-disabled or an operator disabled it (their reason stays). The check
// and the change are one atomic step: of replicas racing, one changes it.
func (s *Store) AutoDisable(ctx context.Context, name, reason, by string) (ev Event, changed bool, err error) {
	return s.set(ctx, name, AutoDisabled, reason, by, true)
}

// Enable marks name enabled again (from disabled or auto-disabled).
// changed is false when it already was enabled.
func (s *Store) Enable(ctx context.Context, name, by string) (ev Event, changed bool, err error) {
	return s.set(ctx, name, Enabled, "", by, false)
}

// durableBase returns what the durable copy holds for name: its JSON and
// version, or when it was deleted there (ms; 0: not deleted).
func (s *Store) durableBase(name string) (js string, version, deletedMs int64) {
	if s.durable == nil {
		return "", 0, 0
	}
	e, ok := s.durable.Lookup(DurableKeyPrefix + name)
	switch {
	case !ok:
		return "", 0, 0
	case e.Deleted():
		return "", 0, max(e.Time.UnixMilli(), 1)
	}
	st, ok := decodeStrict(name, e.Value)
	if !ok {
		return "", 0, 0 // not ours to read: Redis decides
	}
	return string(e.Value), st.Version, 0
}

func (s *Store) set(ctx context.Context, name string, state State, reason, by string, onlyFromEnabled bool) (Event, bool, error) {
	if err := checkName(name); err != nil {
		return Event{}, false, err
	}
	if !state.Valid() {
		return Event{}, false, fmt.Errorf("registry: state %q: %w", state, ErrInvalid)
	}
	reason, by = clip(reason), clip(by)
	at := s.now().UTC().Truncate(time.Millisecond)
	cid := (*s.configured.Load())[name]
	st := Status{Name: name, State: state, Reason: reason, Since: at, By: by, ClientID: cid}
	js, err := json.Marshal(st)
	if err != nil {
		return Event{}, false, fmt.Errorf("registry: %w", err)
	}
	base, baseVersion, deletedMs := s.durableBase(name)
	res, err := setState.Run(ctx, s.rdb, []string{s.hash, s.stream},
		name, string(state), js, MaxEvents, EventType, reason, by, at.Format(timeLayout), onlyFromEnabled,
		at.UnixMilli(), strconv.FormatInt(cid, 10), base, baseVersion, deletedMs).Slice()
	if errors.Is(err, redis.Nil) {
		return Event{}, false, nil
	}
	if err != nil {
		return Event{}, false, fmt.Errorf("registry: set %s %s: %w", name, state, err)
	}
	if len(res) != 2 {
		return Event{}, false, fmt.Errorf("registry: set %s %s: unexpected reply %v", name, state, res)
	}
	id, _ := res[0].(string)
	stored, _ := res[1].(string)
	s.publish(ctx, name, stored)
	return Event{ID: id, Type: EventType, Integration: name, State: state, Reason: reason, By: by, At: at}, true, nil
}

// publish writes a state just stored in Redis to the durable copy, within
// the caller's deadline (the health ledger's call must not hold an upload
// runner for long while Kafka is away) and DurableTimeout. A failure is
// logged, not returned: the change is in force through Redis and the next
// reconciliation (Watcher) publishes it.
func (s *Store) publish(ctx context.Context, name, js string) {
	if s.durable == nil {
		return
	}
	dctx, cancel := context.WithTimeout(ctx, s.dtime)
	defer cancel()
	if err := s.durable.Put(dctx, DurableKeyPrefix+name, []byte(js)); err != nil {
		s.log.Warn("registry: integration state not written to the durable copy yet; a reconciliation writes it later",
			"integration", name, "err", err)
	}
}

// Status returns the state of name (Enabled with zero Since when neither
// Redis nor the durable copy has an entry, or when the entry was recorded
// for another client than the configured one). Redis must answer.
func (s *Store) Status(ctx context.Context, name string) (Status, error) {
	if err := checkName(name); err != nil {
		return Status{}, err
	}
	st, _, err := s.Recorded(ctx, name)
	if err != nil {
		return Status{}, err
	}
	return s.effective(st), nil
}

// Recorded returns what is recorded for name, the newer of Redis and the
// durable copy, whatever client it was recorded for; found is false when
// nothing is (st is then Enabled). Redis must answer.
func (s *Store) Recorded(ctx context.Context, name string) (st Status, found bool, err error) {
	if err := checkName(name); err != nil {
		return Status{}, false, err
	}
	raw := map[string]string{}
	v, err := s.rdb.HGet(ctx, s.hash, name).Result()
	switch {
	case err == nil:
		raw[name] = v
	case !errors.Is(err, redis.Nil):
		return Status{}, false, fmt.Errorf("registry: status %s: %w", name, err)
	}
	st, found = s.mergeOne(name, raw)
	return st, found, nil
}

// All returns the state of every name (absent ones are Enabled) with one
// HMGET, so the answer is one consistent view of Redis, merged with the
// durable copy.
func (s *Store) All(ctx context.Context, names []string) (map[string]Status, error) {
	out := make(map[string]Status, len(names))
	if len(names) == 0 {
		return out, nil
	}
	vals, err := s.rdb.HMGet(ctx, s.hash, names...).Result()
	if err != nil {
		return nil, fmt.Errorf("registry: all: %w", err)
	}
	raw := make(map[string]string, len(names))
	for i, name := range names {
		if str, ok := vals[i].(string); ok {
			raw[name] = str
		}
	}
	for _, name := range names {
		st, _ := s.mergeOne(name, raw)
		out[name] = s.effective(st)
	}
	return out, nil
}

// readRedis returns every entry of the hash as stored (one HGETALL).
func (s *Store) readRedis(ctx context.Context) (map[string]string, error) {
	m, err := s.rdb.HGetAll(ctx, s.hash).Result()
	if err != nil {
		return nil, fmt.Errorf("registry: load: %w", err)
	}
	return m, nil
}

// mergeOne returns the newer of name's entry in raw (Redis) and in the
// durable copy; found is false when neither has one, or the durable copy
// deleted it after Redis's entry was written.
func (s *Store) mergeOne(name string, raw map[string]string) (Status, bool) {
	var d *kstore.Entry
	if s.durable != nil {
		if e, ok := s.durable.Lookup(DurableKeyPrefix + name); ok {
			d = &e
		}
	}
	r, rok := raw[name]
	return merge(name, r, rok, d)
}

// merge decides between Redis's entry r and the durable copy's d. Versions
// decide; a tombstone counts as a version of its time in ms. An entry of the
// durable copy that does not parse is ignored (Redis decides).
func merge(name, r string, rok bool, d *kstore.Entry) (Status, bool) {
	var rs Status
	if rok {
		rs = decode(name, r)
	}
	switch {
	case d == nil:
	case d.Deleted():
		if !rok || rs.Version <= d.Time.UnixMilli() {
			return Status{Name: name, State: Enabled}, false
		}
	default:
		if ds, ok := decodeStrict(name, d.Value); ok && (!rok || ds.Version > rs.Version) {
			return ds, true
		}
	}
	if !rok {
		return Status{Name: name, State: Enabled}, false
	}
	return rs, true
}

// mergeAll merges every entry of raw (Redis) with the durable copy.
func (s *Store) mergeAll(raw map[string]string) map[string]Status {
	var ds map[string]kstore.Entry
	if s.durable != nil {
		ds = s.durable.Entries()
	}
	out := make(map[string]Status, len(raw)+len(ds))
	for name, r := range raw {
		var d *kstore.Entry
		if e, ok := ds[DurableKeyPrefix+name]; ok {
			d = &e
		}
		if st, ok := merge(name, r, true, d); ok {
			out[name] = st
		}
	}
	for key, e := range ds {
		name, ok := strings.CutPrefix(key, DurableKeyPrefix)
		if !ok || name == "" {
			continue
		}
		if _, done := raw[name]; done {
			continue
		}
		if st, ok := merge(name, "", false, &e); ok {
			out[name] = st
		}
	}
	return out
}

// Events returns the latest n events, oldest first.
func (s *Store) Events(ctx context.Context, n int) ([]Event, error) {
	if n <= 0 {
		return nil, nil
	}
	msgs, err := s.rdb.XRevRangeN(ctx, s.stream, "+", "-", int64(n)).Result()
	if err != nil {
		return nil, fmt.Errorf("registry: events: %w", err)
	}
	out := make([]Event, 0, len(msgs))
	for _, ev := range slices.Backward(msgs) {
		out = append(out, eventOf(ev))
	}
	return out, nil
}

// eventsPage is how many stream entries EventsOf reads per round trip.
const eventsPage = 512

// EventsOf returns the latest n events of one integration (state changes,
// create, update and delete), oldest first. The stream has no index by
// integration: it is read backwards a page at a time until n are found or
// it ends, so a call costs at most about MaxEvents/eventsPage round trips.
// The history is the stream's: what its cap left of it.
func (s *Store) EventsOf(ctx context.Context, name string, n int) ([]Event, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if n <= 0 {
		return nil, nil
	}
	var out []Event // newest first until the end
	end := "+"
	for len(out) < n {
		msgs, err := s.rdb.XRevRangeN(ctx, s.stream, end, "-", eventsPage).Result()
		if err != nil {
			return nil, fmt.Errorf("registry: events of %s: %w", name, err)
		}
		for _, m := range msgs {
			if in, _ := m.Values["integration"].(string); in == name && len(out) < n {
				out = append(out, eventOf(m))
			}
		}
		if len(msgs) < eventsPage {
			break
		}
		end = "(" + msgs[len(msgs)-1].ID
	}
	slices.Reverse(out)
	return out, nil
}

// decode parses a stored Status. An entry that does not parse (written by
// hand, or by a future version) counts as disabled, never silently enabled.
func decode(name, v string) Status {
	st, ok := decodeStrict(name, []byte(v))
	if !ok {
		return Status{Name: name, State: Disabled, Reason: "unreadable registry entry: " + strconv.Quote(clip(v))}
	}
	return st
}

// decodeStrict parses a stored Status; ok is false when it does not parse.
func decodeStrict(name string, v []byte) (Status, bool) {
	var st Status
	if err := json.Unmarshal(v, &st); err != nil || !st.State.Valid() {
		return Status{}, false
	}
	st.Name = name
	return st, true
}

func checkName(name string) error {
	if name == "" || len(name) > 256 || !utf8.ValidString(name) {
		return fmt.Errorf("registry: integration name %q: %w", name, ErrInvalid)
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return fmt.Errorf("registry: integration name %q: %w", name, ErrInvalid)
		}
	}
	return nil
}

// clip cuts s to MaxReasonBytes at a rune boundary and makes it valid UTF-8.
func clip(s string) string {
	s = string([]rune(s)) // replaces invalid bytes
	if len(s) <= MaxReasonBytes {
		return s
	}
	n := MaxReasonBytes
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Event types recorded for changes of integrations created through the
// admin API (the product's names).
const (
	CreateEventType = "create_integration"
	UpdateEventType = "update_integration"
)

// Record appends an event of type typ to the events stream (capped as the
// state changes' are): the changes that are not runtime states, such as
// CreateEventType and UpdateEventType.
func (s *Store) Record(ctx context.Context, typ, integration, reason, by string) (Event, error) {
	at := s.now().UTC()
	id, err := s.rdb.XAdd(ctx, &redis.XAddArgs{Stream: s.stream, MaxLen: MaxEvents, Approx: true,
		Values: []any{"type", typ, "integration", integration, "reason", clip(reason), "by", clip(by), "at", at.Format(timeLayout)}}).Result()
	if err != nil {
		return Event{}, fmt.Errorf("registry: event: %w", err)
	}
	return Event{ID: id, Type: typ, Integration: integration, Reason: reason, By: by, At: at}, nil
}

// EventsAfter returns up to n events recorded after the event with id after
// ("" or "0": from the first), oldest first.
func (s *Store) EventsAfter(ctx context.Context, after string, n int64) ([]Event, error) {
	start := "-"
	if after != "" && after != "0" {
		start = "(" + after
	}
	msgs, err := s.rdb.XRangeN(ctx, s.stream, start, "+", n).Result()
	if err != nil {
		return nil, fmt.Errorf("registry: events: %w", err)
	}
	out := make([]Event, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, eventOf(m))
	}
	return out, nil
}

func eventOf(ev redis.XMessage) Event {
	e := Event{ID: ev.ID}
	e.Type, _ = ev.Values["type"].(string)
	e.Integration, _ = ev.Values["integration"].(string)
	st, _ := ev.Values["state"].(string)
	e.State = State(st)
	e.Reason, _ = ev.Values["reason"].(string)
	e.By, _ = ev.Values["by"].(string)
	at, _ := ev.Values["at"].(string)
	e.At, _ = time.Parse(timeLayout, at)
	return e
}
