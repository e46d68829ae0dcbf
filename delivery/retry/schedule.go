package retry

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Position names one attempt of the schedule: Cycle 1..3, Attempt 1..n within
// the cycle. Position{1, 1} is the first upload; Position{3, 6} is the last.
type Position struct {
	Cycle   int `json:"cycle"`
	Attempt int `json:"attempt"`
}

// First is the position of the first upload attempt.
var First = Position{Cycle: 1, Attempt: 1}

// Last is the position of the last attempt; after it fails the object is a
// dead letter.
var Last = Position{Cycle: 3, Attempt: 6}

// cycles[c-1][a-1] is the delay between the failure of the attempt before
// Position{c, a} and Position{c, a} itself. cycles[0][0] is unused (the first
// attempt is not a retry). DESIGN §5: cycle 1 after 1, 3, 5, 10, 10 s;
// cycle 2 after 0, 1, 3, 5, 30 s; cycle 3 after 1, 1, 3, 5, 10, 30 min.
var cycles = [3][]time.Duration{
	{0, 1 * time.Second, 3 * time.Second, 5 * time.Second, 10 * time.Second, 10 * time.Second},
	{0, 1 * time.Second, 3 * time.Second, 5 * time.Second, 30 * time.Second},
	{1 * time.Minute, 1 * time.Minute, 3 * time.Minute, 5 * time.Minute, 10 * time.Minute, 30 * time.Minute},
}

// Attempts is the number of attempts in the whole schedule (the first upload
// and 16 retries).
const Attempts = 17

// Valid reports whether p is a position of the schedule.
func (p Position) Valid() bool {
	return p.Cycle >= 1 && p.Cycle <= len(cycles) && p.Attempt >= 1 && p.Attempt <= len(cycles[p.Cycle-1])
}

// String renders p as "cycle/attempt", e.g. "2/1".
func (p Position) String() string { return fmt.Sprintf("%d/%d", p.Cycle, p.Attempt) }

// Index is the 1-based number of the attempt p in the whole schedule (1..17),
// or 0 when p is not valid.
func (p Position) Index() int {
	if !p.Valid() {
		return 0
	}
	n := p.Attempt
	for c := 1; c < p.Cycle; c++ {
		n += len(cycles[c-1])
	}
	return n
}

// Next returns, for a failed attempt at p, how long to wait before the next
// attempt and that attempt's position. ok is false after the last attempt of
// cycle 3 (the object becomes a dead letter) and for a position that is not
// in the schedule. Pure; safe for concurrent use.
func Next(p Position) (delay time.Duration, next Position, ok bool) {
	if !p.Valid() {
		return 0, Position{}, false
	}
	next = Position{Cycle: p.Cycle, Attempt: p.Attempt + 1}
	if next.Attempt > len(cycles[p.Cycle-1]) {
		next = Position{Cycle: p.Cycle + 1, Attempt: 1}
	}
	if next.Cycle > len(cycles) {
		return 0, Position{}, false
	}
	return cycles[next.Cycle-1][next.Attempt-1], next, true
}

// Inline reports whether the attempt at p runs inline, in the delivery that
// holds the partition's offset (cycle 1). Later attempts run from the Redis
// retry queue on a parked copy.
func Inline(p Position) bool { return p.Valid() && p.Cycle == 1 }

// Clock is the time source of the loops in this package. RealClock is the
// wall clock; under testing/synctest it is the bubble's fake clock.
type Clock interface {
	Now() time.Time
	// Sleep blocks for d or until ctx is done, and returns ctx.Err() then.
	Sleep(ctx context.Context, d time.Duration) error
}

// RealClock is the process clock (time.Now, time.NewTimer).
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// Sleep waits for d or for ctx.
func (RealClock) Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

var _ Clock = RealClock{}

// ErrExhausted is wrapped by Run when the attempts it was allowed to make all
// failed; the wrapped chain also holds the last attempt's error.
var ErrExhausted = errors.New("retry: attempts exhausted")

// IsExhausted reports whether err says that Run ran out of attempts (as
// opposed to being cancelled).
func IsExhausted(err error) bool { return errors.Is(err, ErrExhausted) }

// Run makes the attempt at from and, while it fails, the following attempts
// of the schedule, sleeping on clock between them, as long as keep(next)
// allows the next position (nil keep: the whole schedule). It returns the
// position of the last attempt made and nil when an attempt succeeded; an
// error satisfying IsExhausted (and wrapping the last attempt's error) when
// keep refused the next position or the schedule ended; ctx.Err() when ctx
// ended while sleeping. Run(ctx, clock, First, Inline, f) is cycle 1: on
// IsExhausted, Next(last) says when and where the parked retries start.
// Blocks; attempt is called from the caller's goroutine.
func Run(ctx context.Context, clock Clock, from Position, keep func(Position) bool, attempt func(ctx context.Context, p Position) error) (Position, error) {
	if !from.Valid() {
		return from, fmt.Errorf("retry: invalid start position %s", from)
	}
	p := from
	for {
		err := attempt(ctx, p)
		if err == nil {
			return p, nil
		}
		delay, next, ok := Next(p)
		if !ok || (keep != nil && !keep(next)) {
			return p, fmt.Errorf("%w after attempt %s: %w", ErrExhausted, p, err)
		}
		if err := clock.Sleep(ctx, delay); err != nil {
			return p, err
		}
		p = next
	}
}

// ResumeInline returns the cycle-1 position to attempt next for an object whose
// first cycle-1 attempt failed `elapsed` ago (under another owner of its
// partition, before a rebalance): the first attempt scheduled at or after
// elapsed, or the last attempt of cycle 1 when all of them are due. Attempting
// it at once and following the schedule from there keeps the object's whole
// cycle 1 to about the schedule's 29 s however often its partition moves.
func ResumeInline(elapsed time.Duration) Position {
	p := First
	var at time.Duration
	for {
		delay, next, ok := Next(p)
		if !ok || !Inline(next) || at >= elapsed {
			return p
		}
		at += delay
		p = next
	}
}
