package consumer

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"hitship/internal/testenv"
	"hitship/sink"
	"hitship/state"
)

// TestIdleCloseInDoubt (issue #11, defect 6): Redis runs an idle close but its
// reply is lost (a proxy below the real redis-server cuts the connection after
// the script ran, and refuses connections for 3 s). Records of the same
// window arrive at once. The live run must
// close where a replay of the recorded idle log closes: it reads no further
// until it has recorded the same close again and applied it. Before, it
// skipped the close, the next records went into the window's open buffer, and
// the live object (same key) held other records than the replay's.
func TestIdleCloseInDoubt(t *testing.T) {
	wd := newWorld(t, 1)
	proxy := testenv.MustProxy(t, wd.redis.Addr())
	rdb := redis.NewClient(&redis.Options{Addr: proxy.Addr(), DialTimeout: time.Second}) // go-redis's default retries
	t.Cleanup(func() { _ = rdb.Close() })
	st, err := state.New(rdb, "hitship:", wGroup)
	if err != nil {
		t.Fatal(err)
	}
	// The idle log as Redis held it over the run (the live run prunes it).
	var (
		logMu sync.Mutex
		log   = map[state.IdleClose]bool{}
	)
	capture := func() {
		got, err := wd.st.IdleCloses(context.Background(), wTopic, 0, 0)
		if err != nil {
			return
		}
		logMu.Lock()
		for _, c := range got {
			log[c] = true
		}
		logMu.Unlock()
	}
	stopCapture := make(chan struct{})
	captured := make(chan struct{})
	go func() {
		defer close(captured)
		for {
			capture()
			select {
			case <-stopCapture:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()

	live := wd.start("live", memberOpts{idle: time.Second, state: st})
	base := time.Now().Add(-24*time.Hour).Unix() / 600 * 600
	var first [][]byte
	for i := 0; i < 10; i++ {
		first = append(first, hitAt(1, base+int64(i), fmt.Sprintf("a-%d", i)))
	}
	entry := []byte(fmt.Sprintf("%019d:", 10)) // the idle close at NextOffset 10
	// The connection is cut after the script ran, and Redis is unreachable for
	// a moment after: go-redis's own retry (the default client) is refused.
	proxy.LoseReplyThenRefuse(func(req, reply []byte) bool {
		return bytes.Contains(req, entry) && len(reply) > 0 && reply[0] != '-' // not NOSCRIPT: the script ran
	})
	wd.produce(0, first...)
	waitUntil(t, 20*time.Second, "the idle close whose reply is lost", func() bool { return proxy.Lost() == 1 })
	var second [][]byte
	for i := 10; i < 20; i++ {
		second = append(second, hitAt(1, base+int64(i), fmt.Sprintf("a-%d", i)))
	}
	wd.produce(0, second...)
	// Longer than the worker's 2-s bound on one Redis call, go-redis's own
	// retries included.
	time.Sleep(3 * time.Second)
	if err := proxy.Refuse(false); err != nil {
		t.Fatal(err)
	}

	key := func(objs map[string][]string) bool {
		for k := range objs {
			if bytes.Contains([]byte(k), []byte(fmt.Sprint(base))) {
				return true
			}
		}
		return false
	}
	waitUntil(t, 20*time.Second, "the live window's object and a commit past the first records", func() bool {
		return key(wd.objects()) && wd.committed(wGroup)[0] >= 10
	})
	time.Sleep(3 * time.Second) // whatever else the live run closes, on idle, it does now
	live.stop(t)
	close(stopCapture)
	<-captured
	capture()
	liveObjs := wd.objects()

	// The replay: a new group from offset 0 with the recorded idle log in a
	// Redis of its own (the live run pruned what it committed past).
	r2 := testenv.MustRedis(t, testenv.RedisOptions{})
	st2, err := state.New(r2.Client(), "hitship:", wGroup)
	if err != nil {
		t.Fatal(err)
	}
	setup := state.Owner{Generation: 0, Member: "setup"}
	if err := st2.Claim(context.Background(), wTopic, 0, setup); err != nil {
		t.Fatal(err)
	}
	logMu.Lock()
	closes := slices.SortedFunc(maps.Keys(log), func(a, b state.IdleClose) int { return int(a.NextOffset - b.NextOffset) })
	logMu.Unlock()
	t.Logf("recorded idle closes: %v", closes)
	for _, c := range closes {
		if err := st2.RecordIdleClose(context.Background(), wTopic, 0, setup, c); err != nil {
			t.Fatal(err)
		}
	}
	replayStore, _ := sink.NewMemStore()
	wd.start("replay", memberOpts{group: "replay", idle: time.Hour, state: st2, store: replayStore})
	waitUntil(t, 20*time.Second, "the replay's window object", func() bool {
		return key(wd.objects(replayStore)) && wd.committed("replay")[0] >= 10
	})
	time.Sleep(time.Second)
	replayObjs := wd.objects(replayStore)
	for k, recs := range liveObjs {
		if r, ok := replayObjs[k]; ok && !slices.Equal(r, recs) {
			t.Errorf("object %s: the live run wrote %d records, the replay %d: the live run did not close where the replay does", k, len(recs), len(r))
		}
	}
	if len(liveObjs) == 0 {
		t.Fatal("the live run wrote nothing")
	}
}
