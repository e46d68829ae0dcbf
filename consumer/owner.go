package consumer

import (
	"context"
	"fmt"
	"time"

	"hitship/state"
)

// fenceCacheTTL is how long worker.fence trusts a positive ownership answer.
const fenceCacheTTL = time.Second

// fence is Job.Fence: it reports a lost claim. A Redis error does not fence:
// the write is deterministic and conditional, a zombie's upload is harmless.
//
// A positive answer (or an error) is reused for fenceCacheTTL: with many
// tenants a window end closes thousands of objects per partition, and one
// Redis round trip each was a sixth of their cost (bench/README.md). The
// check is advisory for uploads (see above), so a second's delay in noticing
// a newer owner changes nothing.
//
// Ownership is tri-state (state.Ownership). Another owner ends this worker:
// it stops and its generation ends, so the member rejoins instead of
// aborting every object for ever. No owner key means Redis lost data: the
// worker claims the partition again and goes on (reclaim).
func (w *worker) fence(ctx context.Context) error {
	if w.fenced.Load() {
		return fmt.Errorf("partition %d: %w", w.partition, state.ErrFenced)
	}
	now := time.Now().UnixNano()
	if now < w.ownsUntil.Load() {
		return nil
	}
	octx, cancel := context.WithTimeout(ctx, stateTimeout)
	defer cancel()
	own, err := w.st.Ownership(octx, w.topic, w.partition, w.owner)
	switch {
	case err != nil:
		// A Redis error is reused like a positive answer: when Redis hangs, every
		// object would otherwise wait out the time-out in one of the delivery's few
		// runners.
	case own == state.NotOwned:
		err := fmt.Errorf("partition %d is claimed by another generation or member: %w", w.partition, state.ErrFenced)
		w.stopFenced(err)
		return err
	case own == state.Unclaimed:
		if err := w.reclaim(ctx, "the ownership check before an upload"); state.IsFenced(err) {
			w.stopFenced(err)
			return err
		}
	}
	w.ownsUntil.Store(now + int64(fenceCacheTTL))
	return nil
}

// stopFenced ends the worker's run because another member owns the
// partition: runGeneration ends the generation and the member rejoins.
// Safe for concurrent use; only the first call logs.
func (w *worker) stopFenced(err error) {
	if w.fenced.Swap(true) {
		return
	}
	w.log.Error("another member owns this partition in Redis: the worker stops and its generation ends (the member rejoins the group)", "err", err)
	if w.abort != nil {
		w.abort(err)
	}
}

// reclaim claims the partition again after Redis lost its owner key (the
// claim is refused, IsFenced, when a newer generation claimed meanwhile), then
// writes back what the worker holds of the replay state Redis lost with it.
// Redis errors are returned as they are. Safe for concurrent use.
func (w *worker) reclaim(ctx context.Context, foundBy string) error {
	w.reclaimMu.Lock()
	defer w.reclaimMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 3*stateTimeout)
	defer cancel()
	own, err := w.st.Ownership(ctx, w.topic, w.partition, w.owner)
	if err != nil || own == state.Owned {
		return err // another caller reclaimed it meanwhile
	}
	if own == state.NotOwned {
		return fmt.Errorf("partition %d: a newer generation claimed it: %w", w.partition, state.ErrFenced)
	}
	if err := w.st.Claim(ctx, w.topic, w.partition, w.owner); err != nil {
		return err
	}
	w.log.Warn("Redis lost this partition's owner key (data loss): claimed it again; writing back the replay state this worker holds", "found_by", foundBy)
	w.restoreAfterLoss(ctx)
	return nil
}

// restoreAfterLoss writes back to Redis what this worker knows of the
// partition's replay state at and after its committed offset: the snapshot of
// the committed offset, the idle closes and the acknowledged dead letters. A
// replay after a later crash then closes where this run did. Best effort: a
// failure is logged (a replay may then duplicate, as after any loss of Redis
// data). Called after a re-claim.
func (w *worker) restoreAfterLoss(ctx context.Context) {
	w.mu.Lock()
	committed, snap := w.committed, w.lastSnap
	idle := append([]state.IdleClose(nil), w.taken...)
	w.mu.Unlock()
	from := max(committed, 0)
	dead := w.dl.ackedFrom(from)
	var failed error
	if committed >= 0 && snap != nil {
		if err := w.st.SaveSnapshot(ctx, w.topic, w.partition, committed, snap); err != nil {
			failed = err
		}
	}
	for _, c := range idle {
		if failed != nil {
			break
		}
		if c.NextOffset < from {
			continue
		}
		if _, err := w.st.RecordIdleCloseClaim(ctx, w.topic, w.partition, w.owner, c); err != nil {
			failed = err
		}
	}
	if failed == nil && len(dead) > 0 {
		failed = w.st.NoteDeadLettered(ctx, w.topic, w.partition, dead)
	}
	if failed != nil {
		w.log.Warn("could not write back all replay state after Redis lost it; a replay after a crash may write some records again", "err", failed)
		return
	}
	w.readMarkLost.Store(true) // the fetch loop records it again at its next record
	if err := w.rerecordRoutes(ctx, committed); err != nil {
		w.log.Warn("could not write back the routing log after Redis lost it; a replay after a crash routes conservatively (possible duplicates)", "err", err)
		return
	}
	w.log.Info("replay state written back after Redis lost it", "committed", committed, "snapshot", snap != nil, "idle_closes", len(idle), "dead_letters", len(dead))
}
