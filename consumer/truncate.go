package consumer

import (
	"context"
	"errors"
	"math"
	"time"

	"hitship/state"
)

// truncationRef is fetcher.truncRef: the Kafka time after which every record
// this worker has not read was written. It is the time of the newest record
// the worker read, or, before it read any, the newest event time of the
// window snapshot it started from less max_future_skew (a hit's time is
// clamped to at most that far ahead of its record). Without either there is
// no reference and a truncation resumes at the log start. Fetch loop only.
func (w *worker) truncationRef() (time.Time, bool) {
	if !w.lastRead.IsZero() {
		return w.lastRead, true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.part == nil || w.lastSnap == nil {
		return time.Time{}, false
	}
	ts := w.part.MaxTs()
	if ts == math.MinInt64 {
		return time.Time{}, false
	}
	return time.UnixMilli(ts - w.c.cfg.Window.MaxFutureSkew), true
}

// truncate handles a log truncation (the read or committed offset past the
// log end): it logs it at error level, counts it, drops the replay state at
// and after the resume offset from Redis (fenced; it describes records the log
// no longer has, and applied to the new records at those offsets it would
// close windows in the wrong place and skip bad records without a dead
// letter), and resets the worker there with an empty window state, to be
// committed at the next tick. It returns the resume offset.
//
// What it can cost: records between the resume offset and the truncation
// point that hitship had already delivered are delivered again (at most the
// records written in truncationMargin before the newest one read); records
// hitship read from the old leader that the new one lost are gone from Kafka
// and are not written again; nothing written after the truncation is skipped.
func (w *worker) truncate(ctx context.Context, te *truncatedError) (int64, error) {
	w.c.deps.Metrics.LogTruncations.Inc()
	args := []any{"offset", te.From, "log_start", te.First, "log_end", te.End, "resume_at", te.To}
	if !te.Ref.IsZero() {
		args = append(args, "written_after", te.Ref.Add(-truncationMargin).UTC().Format(time.RFC3339))
	}
	if te.ByTimestampError != nil {
		args = append(args, "by_time_err", te.ByTimestampError)
	}
	w.log.Error("log truncated (unclean leader election) or topic re-created: the offset to read is past the log end; reading moves back to the first record that may be new, the replay state at and after it is dropped, and records between there and the truncation may be delivered again", args...)
	// The records from te.To on are new: they are routed with the membership
	// the worker has, recorded at te.To (the log's entries from there went
	// with DropFrom).
	mem := w.mem
	err := w.waitRedis(ctx, func(ctx context.Context) error {
		if err := w.st.DropFrom(ctx, w.topic, w.partition, w.owner, te.To); err != nil {
			return err
		}
		return w.recordRoute(ctx, te.To, mem.id, mem.ids)
	})
	if err != nil {
		if state.IsFenced(err) {
			w.stopFenced(err)
			return 0, err
		}
		return 0, errors.Join(err, ctx.Err())
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.committed, w.mustCommit = te.To, true
	plan := routePlan{base: loggedRoute{offset: te.To, id: mem.id, ids: mem.ids, known: true}, replayEnd: te.To}
	if err := w.begin(te.To, nil, nil, nil, plan, false); err != nil {
		return 0, err
	}
	return te.To, nil
}
