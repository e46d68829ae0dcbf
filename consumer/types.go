package consumer

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"

	"hitship/delivery"
	"hitship/integrations"
	"hitship/metrics"
	"hitship/sink"
	"hitship/state"
	"hitship/window"
)

// Routes is the service's routing table as the consumer sees it. A partition
// worker routes with a membership of its own (a RouteSet it recorded in, or
// read from, the partition's routing log in Redis), not with the live one:
// routing is replay state (see doc.go). Declared here because the consumer is
// what routes; the service implements it. Safe for concurrent use; nothing
// blocks.
type Routes interface {
	// Live returns the live membership: the targets of the integrations
	// enabled in the config and at runtime. It is called for every record,
	// concurrently from every partition worker: one atomic load, no
	// allocation; a new *integrations.RouteSet (with the same ID if its content did not
	// change) replaces it when the config or a runtime state changes.
	Live() *integrations.RouteSet
	// All returns every configured target, disabled ones (in the config or at
	// runtime) included: the conservative membership.
	All() *integrations.RouteSet
	// Target returns the configured target with that ID, disabled or not;
	// false when no configured integration has it any more (removed, or
	// changed by a reload into another target).
	Target(id string) (*integrations.Target, bool)
}

// The service's routing table.
var _ Routes = (*integrations.Routes)(nil)

// Delivery takes closed buffers off a partition worker. It is the seam where the
// retry schedule, parking and health plug in: the worker only needs to know when an
// object no longer holds its partition's offset.
type Delivery interface {
	// Deliver must not block for long. done is called exactly once: with nil when
	// the object is delivered (or, later, parked) and no longer holds the offset;
	// with an error when it gave up (ctx ended, fenced). Safe for concurrent use.
	Deliver(ctx context.Context, j *delivery.Job, done func(error))
}

// The delivery of the service (its compile-time check lives here, beside the
// interface, since delivery does not import the consumer).
var _ Delivery = (*delivery.Inline)(nil)

// PartitionState is the Redis state that makes replays deterministic and fences
// zombies (state.Store implements it).
type PartitionState interface {
	Claim(ctx context.Context, topic string, partition int, o state.Owner) error
	Ownership(ctx context.Context, topic string, partition int, o state.Owner) (state.Ownership, error)
	RecordIdleCloseClaim(ctx context.Context, topic string, partition int, o state.Owner, c state.IdleClose) (reclaimed bool, err error)
	DropFrom(ctx context.Context, topic string, partition int, o state.Owner, from int64) error
	IdleCloses(ctx context.Context, topic string, partition int, fromOffset int64) ([]state.IdleClose, error)
	// The routing log (see membership.go).
	SaveRouteSet(ctx context.Context, id string, members []string) error
	LoadRouteSet(ctx context.Context, id string) ([]string, bool, error)
	RecordRouteClaim(ctx context.Context, topic string, partition int, o state.Owner, e state.RouteEntry) (reclaimed bool, err error)
	RouteLog(ctx context.Context, topic string, partition int) ([]state.RouteEntry, error)
	RecordReadMark(ctx context.Context, topic string, partition int, mark int64) error
	ReadMark(ctx context.Context, topic string, partition int) (int64, bool, error)
	SaveSnapshot(ctx context.Context, topic string, partition int, offset int64, data []byte) error
	LoadSnapshot(ctx context.Context, topic string, partition int, offset int64) ([]byte, bool, error)
	Prune(ctx context.Context, topic string, partition int, committed int64) error
	NoteDeadLettered(ctx context.Context, topic string, partition int, offsets []int64) error
	DeadLettered(ctx context.Context, topic string, partition int, fromOffset int64) ([]int64, error)
}

var _ PartitionState = (*state.Store)(nil)

// DeadLetters writes bad records to the dead-letter topic. WriteMessages blocks until
// the broker acknowledged every message or returns an error (kafka.Writer in
// synchronous mode implements it).
type DeadLetters interface {
	WriteMessages(ctx context.Context, msgs ...kafka.Message) error
}

// Config is the consumer's part of the configuration.
type Config struct {
	Brokers           []string
	Topic             string
	Group             string
	Dialer            *kafka.Dialer // nil: kafka-go's default
	SessionTimeout    time.Duration
	RebalanceTimeout  time.Duration
	HeartbeatInterval time.Duration
	CommitInterval    time.Duration
	// ShutdownTimeout bounds how long a clean stop waits for closed buffers to be
	// delivered before it leaves the group (open buffers are dropped and replayed).
	ShutdownTimeout time.Duration
	IdleTimeout     time.Duration
	MaxRecordBytes  int
	MaxDepth        int
	Window          window.Config
	// MaxFetchBytes is kafka-go's per-fetch byte limit.
	MaxFetchBytes int
	// Staged makes buffers segments of staged delivery (staging/): NDJSON
	// lines "offset record", whatever the target's format; with it the
	// committer publishes every partition's staged mark (Deps.Marks).
	Staged bool
}

// Validate reports the first invalid field.
func (c *Config) Validate() error {
	switch {
	case len(c.Brokers) == 0:
		return errors.New("consumer: no brokers")
	case c.Topic == "" || c.Group == "":
		return errors.New("consumer: topic and group are required")
	case c.CommitInterval <= 0 || c.IdleTimeout <= 0:
		return errors.New("consumer: commit interval and idle timeout must be positive")
	case c.MaxRecordBytes <= 0 || c.MaxDepth <= 0:
		return errors.New("consumer: max record bytes and max depth must be positive")
	}
	return c.Window.Validate()
}

// Deps are the consumer's collaborators.
type Deps struct {
	Logger  *slog.Logger
	Metrics *metrics.Metrics
	// State is the partition state; with Incarnations and StateFor set, the
	// state of the topic's current incarnation is used instead.
	State PartitionState
	// Incarnations, if set, names the topic's incarnation at the start of every
	// generation (the workers wait for it), and StateFor binds the partition
	// state to it (state.Store.ForIncarnation), so that state written for an
	// earlier incarnation of the topic (a rebuilt cluster, a re-created topic)
	// is never applied. The incarnation also seeds the objects' {digest}.
	Incarnations Incarnations
	StateFor     func(incarnation string) (PartitionState, error)
	Routes       Routes
	Spool        *sink.Spool
	Delivery     Delivery
	DeadLetters  DeadLetters
	Now          func() time.Time // the wall clock (idle closes); nil: time.Now
	// Marks, with Config.Staged, takes every partition's staged mark at each
	// commit tick (staging.Coord): the window boundary below which all its
	// segments are in the staging bucket.
	Marks Marks
}

// Marks publishes the partitions' staged marks (see Deps.Marks).
type Marks interface {
	Publish(ctx context.Context, marks map[int]int64) error
}
