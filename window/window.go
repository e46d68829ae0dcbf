package window

import (
	"errors"
	"fmt"
	"math"
)

// Bounds of the timestamps the Partition methods work with; values outside are
// clamped. They keep every sum and difference in int64 range.
const (
	MinTimestamp int64 = -1 << 53
	MaxTimestamp int64 = 1 << 53
)

// Defaults of DESIGN.md §2 and §1, in milliseconds.
const (
	DefaultSize          int64 = 10 * 60 * 1000
	DefaultGrace         int64 = 60 * 1000
	DefaultMaxFutureSkew int64 = 5 * 60 * 1000
)

// maxDuration bounds Size, Grace and MaxFutureSkew.
const maxDuration int64 = 1 << 53

// ErrInvalidConfig is wrapped by every error of [Config.Validate].
var ErrInvalidConfig = errors.New("invalid window config")

// ErrBadSnapshot is wrapped by every error of [Restore] about its snapshot.
var ErrBadSnapshot = errors.New("bad window snapshot")

// IsInvalidConfig reports whether err comes from an invalid [Config].
func IsInvalidConfig(err error) bool { return errors.Is(err, ErrInvalidConfig) }

// IsBadSnapshot reports whether err means a [Snapshot] cannot be restored
// (corrupt, or taken under other settings); the caller then starts empty.
func IsBadSnapshot(err error) bool { return errors.Is(err, ErrBadSnapshot) }

// Config is the window configuration of one partition. All durations are ms.
type Config struct {
	Size          int64 // window size, ms (>0)
	Grace         int64 // ms (>=0)
	MaxFutureSkew int64 // ms (>=0); event time more than this ahead of record time is clamped
	UseRecordTime bool  // `timestamp: record`: ignore event time
}

// Timestamp modes as a Snapshot names them.
const (
	TimestampEvent  = "event"  // event time, falling back to the record time
	TimestampRecord = "record" // the Kafka record timestamp
)

// TimestampMode returns TimestampRecord with UseRecordTime, else TimestampEvent.
func (c Config) TimestampMode() string {
	if c.UseRecordTime {
		return TimestampRecord
	}
	return TimestampEvent
}

// SameReplay reports whether a replay under o places every record in the same
// buffer and closes every buffer at the same place as under c, given the same
// records and idle advances: the same size, grace and timestamp mode, and with
// event time the same max future skew (record time ignores it).
func (c Config) SameReplay(o Config) bool {
	return c.Size == o.Size && c.Grace == o.Grace && c.UseRecordTime == o.UseRecordTime &&
		(c.UseRecordTime || c.MaxFutureSkew == o.MaxFutureSkew)
}

// DefaultConfig returns the defaults: 10m windows, 1m grace, 5m max future skew,
// event time.
func DefaultConfig() Config {
	return Config{Size: DefaultSize, Grace: DefaultGrace, MaxFutureSkew: DefaultMaxFutureSkew}
}

// Validate reports every problem of c; each error wraps [ErrInvalidConfig].
func (c Config) Validate() error {
	var errs []error
	if c.Size <= 0 || c.Size > maxDuration {
		errs = append(errs, fmt.Errorf("window size %d ms: must be in (0, %d]: %w", c.Size, maxDuration, ErrInvalidConfig))
	}
	if c.Grace < 0 || c.Grace > maxDuration {
		errs = append(errs, fmt.Errorf("grace %d ms: must be in [0, %d]: %w", c.Grace, maxDuration, ErrInvalidConfig))
	}
	if c.MaxFutureSkew < 0 || c.MaxFutureSkew > maxDuration {
		errs = append(errs, fmt.Errorf("max future skew %d ms: must be in [0, %d]: %w", c.MaxFutureSkew, maxDuration, ErrInvalidConfig))
	}
	return errors.Join(errs...)
}

// Timestamp picks a record's timestamp: the event time when hasEvent, else the
// record time (fallback=true). An event time more than MaxFutureSkew ahead of
// recordMs is clamped to recordMs (clamped=true). With UseRecordTime it returns
// recordMs and neither flag. It never overflows.
func (c Config) Timestamp(eventMs int64, hasEvent bool, recordMs int64) (ts int64, fallback, clamped bool) {
	if c.UseRecordTime {
		return recordMs, false, false
	}
	if !hasEvent {
		return recordMs, true, false
	}
	if recordMs <= math.MaxInt64-c.MaxFutureSkew && eventMs > recordMs+c.MaxFutureSkew {
		return recordMs, false, true
	}
	return eventMs, false, false
}

// Start returns the start of the epoch-aligned window of size `size` holding ts:
// floor(ts/size)*size, also for negative ts (Start(-1, 10) == -10). It needs
// size > 0 (it returns ts otherwise) and ts >= math.MinInt64+size.
func Start(ts, size int64) int64 {
	if size <= 0 {
		return ts
	}
	m := ts % size
	if m < 0 {
		m += size
	}
	return ts - m
}

// Window returns the window [start, end) holding ts.
func (c Config) Window(ts int64) (start, end int64) {
	s := Start(clampTs(ts), c.Size)
	return s, s + c.Size
}

// LateCloseAt returns the CloseAt of a late buffer created while the watermark is
// w: the first window boundary strictly greater than w.
func (c Config) LateCloseAt(w int64) int64 {
	if w < minWatermark {
		w = minWatermark
	}
	return Start(w, c.Size) + c.Size
}

// minWatermark is the lowest watermark a record can produce.
const minWatermark = MinTimestamp - maxDuration

func clampTs(ts int64) int64 {
	return min(max(ts, MinTimestamp), MaxTimestamp)
}
