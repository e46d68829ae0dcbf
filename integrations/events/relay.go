// Package events publishes the system events of integrations to a Kafka
// topic (kafka.events_topic) that the platform's notification service can
// consume: the product notifies customers of an auto-disable.
//
// Every change is first recorded in the Redis stream {prefix}events, where
// it is made (registry: state changes in the same script; Forget; the API's
// create and update). One replica at a time (a Redis lease, LeaseTTL,
// renewed while it runs) relays the stream to the topic in order, records
// the id of the last event the topic acknowledged (acks=all) in Redis, and
// goes on from there. Delivery is at least once: a relay that dies between
// the acknowledgement and the note sends those events again; the event's id
// (the stream entry id) tells a consumer it has seen one. Events recorded
// while the topic is unreachable are sent once it is back. Redis is a
// coordinator, not a vault: events it lost before they were relayed are
// gone (the state they describe is not).
//
// Records: key the integration's name (its events stay in order in one
// partition), value JSON:
//
//	{"id": "1733390000000-0", "type": "disable_integration", "integration": "acme",
//	 "reason": "...", "by": "admin-api@10.0.0.5:41234", "at": "2026-12-05T10:00:00.000Z"}
//
// type is the product's name: create_integration, update_integration,
// disable_integration, enable_integration, integration_broken (an
// auto-disable) and delete_integration.
package events

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"hitship/integrations/registry"
)

// Writer writes to the events topic (*kafka.Writer).
type Writer interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// LeaseTTL is how long a relay holds its lease without renewing it.
const LeaseTTL = 15 * time.Second

// Config configures a Relay.
type Config struct {
	Registry *registry.Store
	Redis    redis.UniversalClient
	Lease    string // state.EventRelayKeys
	Cursor   string
	Writer   Writer
	Logger   *slog.Logger
	Interval time.Duration // how often the stream is read (default 1 s)
	Batch    int64         // events per write (default 100)
}

// Relay relays the events stream to the topic. Safe for one Run at a time.
type Relay struct {
	cfg   Config
	token string
}

// New returns a Relay.
func New(cfg Config) (*Relay, error) {
	if cfg.Registry == nil || cfg.Redis == nil || cfg.Writer == nil || cfg.Lease == "" || cfg.Cursor == "" {
		return nil, errors.New("events: Registry, Redis, Writer, Lease and Cursor are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 100
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	return &Relay{cfg: cfg, token: hex.EncodeToString(b[:])}, nil
}

// Name is the product's name of a recorded event.
func Name(e registry.Event) string {
	if e.Type != registry.EventType {
		return e.Type
	}
	switch e.State {
	case registry.Disabled:
		return "disable_integration"
	case registry.AutoDisabled:
		return "integration_broken"
	default:
		return "enable_integration"
	}
}

// record is the JSON of one event on the topic.
type record struct {
	ID          string `json:"id"`
	Type        string `json:"type"`
	Integration string `json:"integration"`
	Reason      string `json:"reason,omitempty"`
	By          string `json:"by,omitempty"`
	At          string `json:"at"`
}

// Run relays until ctx ends.
func (r *Relay) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	var last string
	for {
		if err := r.Step(ctx); err != nil && ctx.Err() == nil {
			if err.Error() != last {
				r.cfg.Logger.Warn("events not relayed to the events topic yet; trying again", "err", err)
			}
			last = err.Error()
		} else if err == nil && last != "" {
			r.cfg.Logger.Info("events relayed to the events topic again")
			last = ""
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

var leaseScript = redis.NewScript(`
local cur = redis.call("GET", KEYS[1])
if cur == false or cur == ARGV[1] then
  redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[2])
  return 1
end
return 0`)

// Step relays what the stream holds past the cursor, if this replica holds
// (or takes) the lease.
func (r *Relay) Step(ctx context.Context) error {
	ok, err := leaseScript.Run(ctx, r.cfg.Redis, []string{r.cfg.Lease}, r.token, LeaseTTL.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("lease: %w", err)
	}
	if ok != 1 {
		return nil // another replica relays
	}
	for {
		cursor, err := r.cfg.Redis.Get(ctx, r.cfg.Cursor).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return fmt.Errorf("cursor: %w", err)
		}
		evs, err := r.cfg.Registry.EventsAfter(ctx, cursor, r.cfg.Batch)
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			return nil
		}
		msgs := make([]kafka.Message, 0, len(evs))
		for _, e := range evs {
			v, err := json.Marshal(record{ID: e.ID, Type: Name(e), Integration: e.Integration, Reason: e.Reason, By: e.By,
				At: e.At.UTC().Format("2006-01-02T15:04:05.000Z07:00")})
			if err != nil {
				return err
			}
			msgs = append(msgs, kafka.Message{Key: []byte(e.Integration), Value: v})
		}
		if err := r.cfg.Writer.WriteMessages(ctx, msgs...); err != nil {
			return fmt.Errorf("events topic: %w", err)
		}
		if err := r.cfg.Redis.Set(ctx, r.cfg.Cursor, evs[len(evs)-1].ID, 0).Err(); err != nil {
			return fmt.Errorf("cursor: %w", err)
		}
		if int64(len(evs)) < r.cfg.Batch {
			return nil
		}
	}
}
