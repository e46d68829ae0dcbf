package consumer

import (
	"slices"
)

// Status is what the consumer tells /readyz about itself.
type Status struct {
	// Joined: a member of a live generation (Joined()).
	Joined bool
	// Assigned partitions of the current generation.
	Assigned int
	// WaitingRedis counts the partitions this member does not consume because
	// they wait for Redis: a worker starting (its claim and replay state), or
	// an idle close in doubt (the partition reads no further until Redis
	// confirms it). RedisErr is the last Redis error one of them met.
	WaitingRedis int
	RedisErr     string
	// SpoolErr is the error of a partition waiting for the spool's disk after a
	// spool error (the lowest partition's), "" when none waits; SpoolPartitions
	// counts them.
	SpoolErr        string
	SpoolPartitions int
}

// Status reports the consumer's state for readiness. Safe for concurrent use.
func (c *Consumer) Status() Status {
	s := Status{
		Joined:       c.Joined(),
		Assigned:     c.Assigned(),
		WaitingRedis: int(c.waitingRedis.Load() + c.inDoubt.Load()),
	}
	if s.WaitingRedis > 0 {
		if e := c.redisErr.Load(); e != nil {
			s.RedisErr = *e
		}
	}
	c.spoolMu.Lock()
	defer c.spoolMu.Unlock()
	if n := len(c.spoolErrs); n > 0 {
		parts := make([]int, 0, n)
		for p := range c.spoolErrs {
			parts = append(parts, p)
		}
		slices.Sort(parts)
		s.SpoolErr, s.SpoolPartitions = c.spoolErrs[parts[0]], n
	}
	return s
}

// noteRedisError keeps err for Status.
func (c *Consumer) noteRedisError(err error) {
	msg := err.Error()
	c.redisErr.Store(&msg)
}

// setSpoolTrouble notes (se != nil) or clears that partition waits for the
// spool's disk.
func (c *Consumer) setSpoolTrouble(partition int, se *spoolError) {
	c.spoolMu.Lock()
	defer c.spoolMu.Unlock()
	if se == nil {
		delete(c.spoolErrs, partition)
		return
	}
	if c.spoolErrs == nil {
		c.spoolErrs = map[int]string{}
	}
	c.spoolErrs[partition] = se.op + ": " + se.err.Error()
}
