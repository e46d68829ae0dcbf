package consumer

import (
	"fmt"
	"testing"
	"time"
)

// TestRejoinAfterBrokerCut (issue #11): two members with the default session
// and rebalance timeouts (30 s); the broker is cut off for 10 s. After it is
// restored, both partitions commit again within 15 s: kafka-go rejoins within
// its 1-s join backoff and the rebalance completes once both members joined.
// Before, the group sat idle for about a session timeout and more (56 s here,
// 46 s in the issue): kafka-go gives its member id up when it cannot reach the
// coordinator and joins as a new member, and the coordinator held the
// rebalance until the abandoned members' sessions timed out; each member now
// sends the LeaveGroup for its abandoned id once the coordinator answers.
func TestRejoinAfterBrokerCut(t *testing.T) {
	if testing.Short() {
		t.Skip("a 10-s broker cut")
	}
	wd := newWorld(t, 2)
	o := memberOpts{idle: 500 * time.Millisecond, session: 30 * time.Second, rebalance: 30 * time.Second, heartbeat: 3 * time.Second}
	a := wd.start("a", o)
	b := wd.start("b", o)
	base := time.Now().Add(-24*time.Hour).Unix() / 600 * 600
	n := 0
	produce := func() {
		for p := 0; p < 2; p++ {
			wd.produce(p, windowHits(int64(p+1), base+int64(n)*600+61, 5, fmt.Sprintf("p%d-%d", p, n))...)
		}
		n++
	}
	waitUntil(t, 60*time.Second, "a partition each", func() bool { return a.c.Assigned() == 1 && b.c.Assigned() == 1 })
	produce()
	waitUntil(t, 30*time.Second, "first commits", func() bool {
		c := wd.committed(wGroup)
		return c[0] > 0 && c[1] > 0
	})
	before := wd.committed(wGroup)
	wd.kafka.Cut()
	time.Sleep(10 * time.Second)
	wd.kafka.Restore()
	restored := time.Now()
	produce()
	waitUntil(t, 15*time.Second, "both partitions committing again after the cut", func() bool {
		c := wd.committed(wGroup)
		return c[0] > before[0] && c[1] > before[1]
	})
	t.Logf("commits resumed %s after the broker was restored", time.Since(restored).Round(100*time.Millisecond))
}
