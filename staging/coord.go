package staging

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"hitship/state"
)

// Coord is staged delivery's coordination in Redis: the partitions' published
// marks and the assemblers' leases. Losing it costs time (marks are published
// again at every commit tick, a lost lease lets another replica assemble the
// same window, which the intents make harmless), never a record.
type Coord struct {
	rdb  redis.UniversalClient
	keys state.StagingKeyset

	mu     sync.Mutex
	tokens map[string]string // lease key -> our token
}

// NewCoord returns the coordination of topic in group under the Redis key prefix.
func NewCoord(rdb redis.UniversalClient, prefix, group, topic string) *Coord {
	return &Coord{rdb: rdb, keys: state.StagingKeys(prefix, group, topic), tokens: map[string]string{}}
}

// publishScript raises each partition's mark, never lowers it.
var publishScript = redis.NewScript(`
for i = 1, #ARGV, 2 do
  local cur = redis.call('HGET', KEYS[1], ARGV[i])
  if (not cur) or tonumber(cur) < tonumber(ARGV[i+1]) then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i+1])
  end
end
return 1
`)

// Publish records, for each partition, the window boundary it passed with
// every segment below it staged. A mark never moves back.
func (c *Coord) Publish(ctx context.Context, marks map[int]int64) error {
	if len(marks) == 0 {
		return nil
	}
	args := make([]any, 0, 2*len(marks))
	for p, m := range marks {
		args = append(args, strconv.Itoa(p), strconv.FormatInt(m, 10))
	}
	return publishScript.Run(ctx, c.rdb, []string{c.keys.Marks}, args...).Err()
}

// Marks returns every partition's published mark.
func (c *Coord) Marks(ctx context.Context) (map[int]int64, error) {
	h, err := c.rdb.HGetAll(ctx, c.keys.Marks).Result()
	if err != nil {
		return nil, err
	}
	out := make(map[int]int64, len(h))
	for k, v := range h {
		p, err1 := strconv.Atoi(k)
		m, err2 := strconv.ParseInt(v, 10, 64)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("staging: bad mark %q=%q in %s", k, v, c.keys.Marks)
		}
		out[p] = m
	}
	return out, nil
}

// Complete returns the boundary every one of the topic's partitions has
// passed: the least published mark; false while a partition has none.
func Complete(marks map[int]int64, partitions int) (int64, bool) {
	if partitions <= 0 {
		return 0, false
	}
	var g int64
	for p := range partitions {
		m, ok := marks[p]
		if !ok {
			return 0, false
		}
		if p == 0 || m < g {
			g = m
		}
	}
	return g, true
}

// ErrLeaseHeld is returned by Lease when another assembler holds it.
var ErrLeaseHeld = errors.New("staging: lease held by another assembler")

var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`)

// Lease takes the assembler's lease of target's window for ttl and renews it
// every ttl/3 until release, which gives it back (only if still ours). A
// replica that dies holding it delays the window by ttl at most.
func (c *Coord) Lease(ctx context.Context, target string, window int64, ttl time.Duration) (release func(), err error) {
	inner, err := c.lease(ctx, target, window, ttl)
	if err != nil {
		return nil, err
	}
	key := c.keys.Lease + target + ":" + strconv.FormatInt(window, 10)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ttl/3)
				_ = renewScript.Run(rctx, c.rdb, []string{key}, c.token(key), ttl.Milliseconds()).Err()
				cancel()
			}
		}
	}()
	return func() {
		close(stop)
		<-done
		inner()
	}, nil
}

// token is the token this Coord holds for key ("" if none).
func (c *Coord) token(key string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tokens[key]
}

func (c *Coord) lease(ctx context.Context, target string, window int64, ttl time.Duration) (release func(), err error) {
	var b [12]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	key := c.keys.Lease + target + ":" + strconv.FormatInt(window, 10)
	ok, err := c.rdb.SetNX(ctx, key, token, ttl).Result()
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrLeaseHeld
	}
	c.mu.Lock()
	c.tokens[key] = token
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		delete(c.tokens, key)
		c.mu.Unlock()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		_ = releaseScript.Run(rctx, c.rdb, []string{key}, token).Err()
	}, nil
}
