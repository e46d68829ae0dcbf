package embedded

import (
	"context"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// memberExpiry stands in for the broker's session timeout where kfake misses
// it. kfake starts a member's session timer only when a reply to it goes out:
// a member whose JoinGroup or SyncGroup reply found its connection gone (the
// process killed, the network cut at that moment) stays in the group with
// its assignment and no timer, for ever. A chaos run met one: a Stable group
// of four members, three processes, three partitions nobody read. A broker
// removes a member that sends nothing for its session timeout; so does this,
// with a LeaveGroup for it, after the session timeout and a margin.
//
// It watches the group requests (JoinGroup, SyncGroup, Heartbeat,
// OffsetCommit, LeaveGroup) through kfake's control functions, which observe
// without handling.
type memberExpiry struct {
	k *Kafka

	mu      sync.Mutex
	seen    map[string]time.Time     // member id -> its last request
	session map[string]time.Duration // group -> session timeout of its latest JoinGroup
	stop    chan struct{}
	done    chan struct{}
}

// expiryMargin is how long past its session timeout a silent member stays.
const expiryMargin = 2 * time.Second

func newMemberExpiry(k *Kafka) *memberExpiry {
	return &memberExpiry{k: k, seen: map[string]time.Time{}, session: map[string]time.Duration{},
		stop: make(chan struct{}), done: make(chan struct{})}
}

// watch installs the observers on c (again after every Restart).
func (e *memberExpiry) watch(c *kfake.Cluster) {
	for _, key := range []kmsg.Key{kmsg.JoinGroup, kmsg.SyncGroup, kmsg.Heartbeat, kmsg.OffsetCommit, kmsg.LeaveGroup} {
		c.ControlKey(int16(key), func(r kmsg.Request) (kmsg.Response, error, bool) {
			e.note(r)
			return nil, nil, false
		})
	}
}

func (e *memberExpiry) note(r kmsg.Request) {
	now := time.Now()
	e.mu.Lock()
	defer e.mu.Unlock()
	switch r := r.(type) {
	case *kmsg.JoinGroupRequest:
		e.session[r.Group] = time.Duration(r.SessionTimeoutMillis) * time.Millisecond
		if r.MemberID != "" {
			e.seen[r.MemberID] = now
		}
	case *kmsg.SyncGroupRequest:
		e.seen[r.MemberID] = now
	case *kmsg.HeartbeatRequest:
		e.seen[r.MemberID] = now
	case *kmsg.OffsetCommitRequest:
		e.seen[r.MemberID] = now
	case *kmsg.LeaveGroupRequest:
		delete(e.seen, r.MemberID)
		for _, m := range r.Members {
			delete(e.seen, m.MemberID)
		}
	}
}

// run checks the groups every second until close.
func (e *memberExpiry) run() {
	defer close(e.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-e.stop:
			return
		case <-t.C:
			e.check()
		}
	}
}

func (e *memberExpiry) check() {
	e.mu.Lock()
	groups := make(map[string]time.Duration, len(e.session))
	for g, s := range e.session {
		groups[g] = s
	}
	e.mu.Unlock()
	c := e.k.Cluster()
	now := time.Now()
	for group, session := range groups {
		info := c.GroupInfo(group)
		if info == nil || info.State != "Stable" {
			continue // rebalances have their own time-outs in kfake
		}
		var silent []kafka.LeaveGroupRequestMember
		e.mu.Lock()
		for _, m := range info.Members {
			last, ok := e.seen[m.MemberID]
			if !ok {
				e.seen[m.MemberID] = now // first sighting: its clock starts now
				continue
			}
			if now.Sub(last) > session+expiryMargin {
				silent = append(silent, kafka.LeaveGroupRequestMember{ID: m.MemberID})
			}
		}
		e.mu.Unlock()
		if len(silent) > 0 {
			e.leave(group, silent)
		}
	}
}

// leave removes members from group as their session timeout would.
func (e *memberExpiry) leave(group string, members []kafka.LeaveGroupRequestMember) {
	tr := e.k.transport()
	defer tr.CloseIdleConnections()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _ = e.k.client(tr).LeaveGroup(ctx, &kafka.LeaveGroupRequest{GroupID: group, Members: members})
}

func (e *memberExpiry) close() {
	close(e.stop)
	<-e.done
}
