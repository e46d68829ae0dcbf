package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"
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

// EventType is the type field of every event this package records.
const EventType = "integration_state"

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
}

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

// Store reads and changes integration states in Redis. Safe for concurrent
// use; every method blocks for one Redis round trip.
type Store struct {
	rdb    redis.UniversalClient
	hash   string
	stream string
	now    func() time.Time
}

// New returns a Store over rdb whose keys start with prefix (e.g.
// "hitship:"; in Redis Cluster with a hash tag, "{hitship}:"). now is the
// clock of Since and At.
func New(rdb redis.UniversalClient, prefix string, now func() time.Time) (*Store, error) {
	if rdb == nil {
		return nil, fmt.Errorf("registry: nil redis client: %w", ErrInvalid)
	}
	if now == nil {
		return nil, fmt.Errorf("registry: nil clock: %w", ErrInvalid)
	}
	return &Store{rdb: rdb, hash: prefix + "integrations", stream: prefix + "events", now: now}, nil
}

// EventsKey returns the name of the events stream.
func (s *Store) EventsKey() string { return s.stream }

// setState changes the state of ARGV[1] to ARGV[2] unless it is already
// that; on a change it stores ARGV[3] (the Status JSON) and records the
// event. With ARGV[9] = 1 it changes only an enabled integration. It
// returns the stream id, or nil for no change.
var setState = redis.NewScript(`
local old = redis.call('HGET', KEYS[1], ARGV[1])
local cur = 'enabled'
if old then
  local ok, st = pcall(cjson.decode, old)
  if ok and type(st) == 'table' and type(st.state) == 'string' then cur = st.state end
end
if cur == ARGV[2] then return false end
if ARGV[9] == '1' and cur ~= 'enabled' then return false end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[4], '*',
  'type', ARGV[5], 'integration', ARGV[1], 'state', ARGV[2],
  'reason', ARGV[6], 'by', ARGV[7], 'at', ARGV[8])
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
// and the change are one atomic step.
func (s *Store) AutoDisable(ctx context.Context, name, reason, by string) (ev Event, changed bool, err error) {
	return s.set(ctx, name, AutoDisabled, reason, by, true)
}

// Enable marks name enabled again (from disabled or auto-disabled).
// changed is false when it already was enabled.
func (s *Store) Enable(ctx context.Context, name, by string) (ev Event, changed bool, err error) {
	return s.set(ctx, name, Enabled, "", by, false)
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
	st := Status{Name: name, State: state, Reason: reason, Since: at, By: by}
	js, err := json.Marshal(st)
	if err != nil {
		return Event{}, false, fmt.Errorf("registry: %w", err)
	}
	id, err := setState.Run(ctx, s.rdb, []string{s.hash, s.stream},
		name, string(state), js, MaxEvents, EventType, reason, by, at.Format(timeLayout), onlyFromEnabled).Text()
	if errors.Is(err, redis.Nil) {
		return Event{}, false, nil
	}
	if err != nil {
		return Event{}, false, fmt.Errorf("registry: set %s %s: %w", name, state, err)
	}
	return Event{ID: id, Type: EventType, Integration: name, State: state, Reason: reason, By: by, At: at}, true, nil
}

// Status returns the state of name (Enabled with zero Since when Redis has
// no entry).
func (s *Store) Status(ctx context.Context, name string) (Status, error) {
	if err := checkName(name); err != nil {
		return Status{}, err
	}
	v, err := s.rdb.HGet(ctx, s.hash, name).Result()
	if errors.Is(err, redis.Nil) {
		return Status{Name: name, State: Enabled}, nil
	}
	if err != nil {
		return Status{}, fmt.Errorf("registry: status %s: %w", name, err)
	}
	return decode(name, v), nil
}

// All returns the state of every name (absent ones are Enabled) with one
// HMGET, so the answer is one consistent view.
func (s *Store) All(ctx context.Context, names []string) (map[string]Status, error) {
	out := make(map[string]Status, len(names))
	if len(names) == 0 {
		return out, nil
	}
	vals, err := s.rdb.HMGet(ctx, s.hash, names...).Result()
	if err != nil {
		return nil, fmt.Errorf("registry: all: %w", err)
	}
	for i, name := range names {
		str, ok := vals[i].(string)
		if !ok {
			out[name] = Status{Name: name, State: Enabled}
			continue
		}
		out[name] = decode(name, str)
	}
	return out, nil
}

// recorded returns every entry of the hash: the integrations that were ever
// changed (one HGETALL).
func (s *Store) recorded(ctx context.Context) (map[string]Status, error) {
	m, err := s.rdb.HGetAll(ctx, s.hash).Result()
	if err != nil {
		return nil, fmt.Errorf("registry: load: %w", err)
	}
	out := make(map[string]Status, len(m))
	for name, v := range m {
		out[name] = decode(name, v)
	}
	return out, nil
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
		e := Event{ID: ev.ID}
		e.Type, _ = ev.Values["type"].(string)
		e.Integration, _ = ev.Values["integration"].(string)
		st, _ := ev.Values["state"].(string)
		e.State = State(st)
		e.Reason, _ = ev.Values["reason"].(string)
		e.By, _ = ev.Values["by"].(string)
		at, _ := ev.Values["at"].(string)
		e.At, _ = time.Parse(timeLayout, at)
		out = append(out, e)
	}
	return out, nil
}

// decode parses a stored Status. An entry that does not parse (written by
// hand, or by a future version) counts as disabled, never silently enabled.
func decode(name, v string) Status {
	var st Status
	if err := json.Unmarshal([]byte(v), &st); err != nil || !st.State.Valid() {
		return Status{Name: name, State: Disabled, Reason: "unreadable registry entry: " + strconv.Quote(clip(v))}
	}
	st.Name = name
	return st
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
