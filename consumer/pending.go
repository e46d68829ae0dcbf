package consumer

import (
	"context"
	"slices"
	"sync"
	"time"
)

// maxPendingSnapshots is how many snapshots a partition keeps in memory during a
// Redis outage: the latest matters (it is about to be committed), and so does the
// one of the offset Kafka last confirmed, which is never evicted (while Kafka
// refuses commits the latest ones pile up after it); the others cover commits
// that Kafka refused after the snapshot was taken.
const maxPendingSnapshots = 4

type pendingSnapshot struct {
	offset int64
	data   []byte
}

// pendingSnapshots holds, per partition, the window snapshots of committed
// offsets that Redis did not take (an outage), until they are written back.
// They belong to the consumer, not to a generation's worker: a rebalance during
// an outage ends the workers, and the partition's next owner, in this process
// or another, needs the snapshot of the offset committed last. They are written
// back at every commit tick, every writeBackEvery while any are held, and
// before the member rejoins after a generation ended (the group's next
// generation, and so the next owner's start, waits for that rejoin).
//
// Safe for concurrent use; write-backs are serialised.
type pendingSnapshots struct {
	mu    sync.Mutex
	parts map[int]*pendingPart
}

type pendingPart struct {
	// inc and st are the topic incarnation the snapshots were taken in and its
	// partition state: they are written back there, whatever the current
	// incarnation is.
	inc   string
	st    PartitionState
	snaps []pendingSnapshot // oldest first
	// committed is the last offset Kafka confirmed through this process
	// (-1: none yet): once every snapshot is in, Redis is pruned below it.
	committed int64
}

// writeBackEvery is how often held snapshots are retried outside commit ticks.
const writeBackEvery = 250 * time.Millisecond

// keepSnapshot holds the snapshot of offset in memory until Redis answers, for
// the state of Deps.State.
func (c *Consumer) keepSnapshot(partition int, offset int64, data []byte, err error) {
	c.keepSnapshotIn("", c.deps.State, partition, offset, data, err)
}

// keepSnapshotIn holds the snapshot of offset, taken in topic incarnation inc
// whose partition state is st, in memory until Redis answers. Snapshots of
// the partition held for another incarnation are dropped: they describe a
// topic that is gone.
func (c *Consumer) keepSnapshotIn(inc string, st PartitionState, partition int, offset int64, data []byte, err error) {
	c.pending.mu.Lock()
	defer c.pending.mu.Unlock()
	if c.pending.parts == nil {
		c.pending.parts = map[int]*pendingPart{}
	}
	p := c.pending.parts[partition]
	if p != nil && p.inc != inc {
		c.log.Warn("dropping window snapshots held for an earlier incarnation of the topic", "partition", partition,
			"snapshots", len(p.snaps), "was", p.inc, "now", inc)
		c.deps.Metrics.PendingSnapshots.Sub(float64(len(p.snaps)))
		delete(c.pending.parts, partition)
		p = nil
	}
	if p == nil {
		p = &pendingPart{committed: -1, inc: inc, st: st}
		c.pending.parts[partition] = p
		c.log.Warn("Redis did not take the window snapshot: committing without it and keeping it in memory until Redis answers; a crash before then replays this offset without its snapshot (possible duplicates, never loss)",
			"partition", partition, "offset", offset, "err", err)
	}
	if n := len(p.snaps); n > 0 && p.snaps[n-1].offset == offset {
		p.snaps[n-1].data = data
		return
	}
	p.snaps = append(p.snaps, pendingSnapshot{offset: offset, data: data})
	c.deps.Metrics.PendingSnapshots.Inc()
	if len(p.snaps) > maxPendingSnapshots {
		// The oldest but the one of the offset Kafka confirmed last: a crash now
		// restarts the partition there, and the next owner needs its snapshot.
		i := 0
		if p.snaps[0].offset == p.committed {
			i = 1
		}
		p.snaps = slices.Delete(p.snaps, i, i+1)
		c.deps.Metrics.PendingSnapshots.Dec()
	}
}

// noteCommitted records that Kafka confirmed offset for partition and reports
// whether snapshots of the partition are still held (then pruning waits for
// them).
func (c *Consumer) noteCommitted(partition int, offset int64) bool {
	c.pending.mu.Lock()
	defer c.pending.mu.Unlock()
	p := c.pending.parts[partition]
	if p == nil {
		return false
	}
	p.committed = max(p.committed, offset)
	return true
}

// hasPending reports whether any snapshot is held.
func (c *Consumer) hasPending() bool {
	c.pending.mu.Lock()
	defer c.pending.mu.Unlock()
	return len(c.pending.parts) > 0
}

// writeBackAll writes back every partition's held snapshots, stopping at the
// first Redis failure. It reports whether none are held any more.
func (c *Consumer) writeBackAll(ctx context.Context) bool {
	c.pending.mu.Lock()
	defer c.pending.mu.Unlock()
	parts := make([]int, 0, len(c.pending.parts))
	for p := range c.pending.parts {
		parts = append(parts, p)
	}
	slices.Sort(parts)
	for _, p := range parts {
		if !c.writeBackLocked(ctx, p) {
			return false
		}
	}
	return true
}

// writeBackLocked writes the held snapshots of partition to Redis, oldest
// first, then prunes below its committed offset (never before: pruning must not
// run ahead of the snapshot of the committed offset). It reports whether Redis
// took all of them (true when none were held).
func (c *Consumer) writeBackLocked(ctx context.Context, partition int) bool {
	p := c.pending.parts[partition]
	if p == nil {
		return true
	}
	for len(p.snaps) > 0 {
		s := p.snaps[0]
		sctx, cancel := context.WithTimeout(ctx, stateTimeout)
		err := p.st.SaveSnapshot(sctx, c.cfg.Topic, partition, s.offset, s.data)
		cancel()
		if err != nil {
			c.log.Debug("Redis still does not take the pending window snapshots", "partition", partition, "pending", len(p.snaps), "err", err)
			return false
		}
		p.snaps = slices.Delete(p.snaps, 0, 1)
		c.deps.Metrics.PendingSnapshots.Dec()
		c.log.Info("window snapshot written back to Redis", "partition", partition, "offset", s.offset)
	}
	delete(c.pending.parts, partition)
	if p.committed > 0 {
		pctx, cancel := context.WithTimeout(ctx, stateTimeout)
		if err := p.st.Prune(pctx, c.cfg.Topic, partition, p.committed); err != nil {
			c.log.Debug("pruning replay state failed", "partition", partition, "err", err)
		}
		cancel()
	}
	return true
}

// writeBackLoop retries the held snapshots every writeBackEvery until ctx ends,
// whether or not this member owns their partitions now.
func (c *Consumer) writeBackLoop(ctx context.Context) {
	t := time.NewTicker(writeBackEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if c.hasPending() {
				c.writeBackAll(ctx)
			}
		}
	}
}
