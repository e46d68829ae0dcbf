// Package redisconn builds hitship's Redis client from the redis section of
// the config: one server, a master found through Sentinel, or a Redis
// Cluster, each with TLS and an ACL user; and it makes every write wait for a
// replica's acknowledgement before the caller acts on it.
//
// # Modes
//
//   - single: redis.addr, one server or a managed endpoint that fronts a
//     primary (ElastiCache with cluster mode off, MemoryDB's primary endpoint
//     through a proxy).
//   - sentinel: redis.addrs are the sentinels, redis.master_name the master
//     they monitor; go-redis follows the master through a failover.
//   - cluster: redis.addrs are seed nodes, or redis.addr is the cluster's
//     configuration endpoint.
//
// # Cluster
//
// hitship's Lua scripts and MULTI blocks use several keys at once, which a
// cluster allows only within one hash slot (CROSSSLOT otherwise). In mode
// cluster the key prefix must hold a hash tag (config: the default
// "hitship:" is read as "{hitship}:"), so that every key hitship writes is in
// the slot of that tag: one master holds hitship's state, its replicas
// guard it. hitship's load on Redis is small (a few commands per window,
// partition and delivery: README, "Redis in production"), so one slot costs
// nothing in practice, and every script, MULTI block and WAIT stays on one
// node. A deployment that wants its state on several masters runs several
// groups with several prefixes.
//
// # Acknowledged writes
//
// Redis replicates asynchronously: a master that acknowledged a write and
// died before sending it leaves a replica promoted without it. The claims,
// routing logs, idle closes, leases and retry entries hitship keeps are
// written before hitship acts on them, so each write (a write command, a
// script, or a pipeline or MULTI block holding one) is followed, on the same
// connection, by WAIT: the caller gets the reply only after Want replicas
// hold the write, and an error ("not acknowledged by a replica") when they do
// not within the timeout — the path every Redis error takes (Redis
// degraded: the work is retried, never acted on). With redis.wait_replicas
// unset, Want is one while the master reports a connected replica and none
// while it has none (a master alone keeps working); a number makes it
// strict. Read-only commands never wait.
//
// READONLY, LOADING, MASTERDOWN, TRYAGAIN, CLUSTERDOWN, MOVED and ASK are
// errors go-redis retries or follows itself and otherwise returns: the
// callers treat them as any Redis error (consumer/doc.go, "Redis outage").
package redisconn

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"hitship/config"
	"hitship/internal/kafkaconn"
)

// ErrNotAcknowledged is the error of a write that fewer replicas than
// wanted acknowledged within the timeout. The write may be on the master:
// callers handle it as a lost reply.
var ErrNotAcknowledged = errors.New("redis: write not acknowledged by a replica in time (failover in progress, or the replica is down or behind)")

// probeEvery is how often the auto mode asks the master how many replicas
// it has.
const probeEvery = 30 * time.Second

// New builds the client of r (a validated redis section). It does not
// connect.
func New(r config.Redis) (redis.UniversalClient, error) {
	tc, err := kafkaconn.TLSConfig(r.TLS)
	if err != nil {
		return nil, fmt.Errorf("redis.tls: %w", err)
	}
	want := -1
	if r.WaitReplicas != nil {
		want = *r.WaitReplicas
	}
	timeout := r.WaitTimeout
	if timeout <= 0 {
		timeout = time.Second
	}
	switch r.Mode {
	case config.RedisSentinel:
		c := redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName: r.MasterName, SentinelAddrs: r.Addrs,
			SentinelUsername: r.SentinelUsername, SentinelPassword: r.SentinelPassword(),
			Username: r.Username, Password: r.Password(), DB: r.DB, TLSConfig: tc,
		})
		addAcks(c, want, timeout)
		return c, nil
	case config.RedisCluster:
		c := redis.NewClusterClient(&redis.ClusterOptions{
			Addrs: r.Nodes(), Username: r.Username, Password: r.Password(), TLSConfig: tc,
		})
		c.OnNewNode(func(node *redis.Client) { addAcks(node, want, timeout) })
		return c, nil
	case config.RedisSingle, "":
		c := redis.NewClient(&redis.Options{Addr: r.Addr, Username: r.Username, Password: r.Password(), DB: r.DB, TLSConfig: tc})
		addAcks(c, want, timeout)
		return c, nil
	}
	return nil, fmt.Errorf("redis.mode: unknown mode %q", r.Mode)
}

// addAcks makes every write through c wait for want replicas (-1: auto).
func addAcks(c *redis.Client, want int, timeout time.Duration) {
	if want == 0 {
		return
	}
	c.AddHook(&acks{client: c, want: want, timeout: timeout})
}

// acks is the hook of one node's client.
type acks struct {
	client  *redis.Client
	want    int // -1: auto
	timeout time.Duration

	mu       sync.Mutex
	replicas int // auto: as probed
	probed   time.Time
}

// onConn marks a context whose commands already run on the connection that
// will WAIT: the hook lets them through.
type onConn struct{}

func (h *acks) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h *acks) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if n, ok := h.waits(ctx, isWrite(cmd)); ok {
			return h.runAndWait(ctx, []redis.Cmder{cmd}, n)
		}
		return next(ctx, cmd)
	}
}

func (h *acks) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if n, ok := h.waits(ctx, anyWrite(cmds)); ok {
			return h.runAndWait(ctx, cmds, n)
		}
		return next(ctx, cmds)
	}
}

// waits reports whether commands that write (write) must wait, and for how
// many replicas: not when they already run on a waiting connection, nor
// when no replica is wanted (or the count is unknown: Redis does not
// answer, and the command will say so itself).
func (h *acks) waits(ctx context.Context, write bool) (int, bool) {
	if ctx.Value(onConn{}) != nil || !write {
		return 0, false
	}
	n, err := h.wanted(ctx)
	return n, err == nil && n > 0
}

// done reports whether a command's error leaves what it wrote to be waited
// on: none, or a nil reply (a script may write and answer nil, and callers
// take redis.Nil as an answer).
func done(err error) bool { return err == nil || errors.Is(err, redis.Nil) }

// runAndWait runs cmds (one command, a pipeline, or a MULTI block with its
// MULTI and EXEC) on one connection, then WAITs there for n replicas.
func (h *acks) runAndWait(ctx context.Context, cmds []redis.Cmder, n int) error {
	cn := h.client.Conn()
	defer cn.Close()
	ctx = context.WithValue(ctx, onConn{}, true)
	queue := func(p redis.Pipeliner) error {
		for _, c := range cmds {
			if name := c.Name(); name == "multi" || name == "exec" {
				continue
			}
			_ = p.Process(ctx, c)
		}
		return nil
	}
	var err error
	if len(cmds) > 0 && cmds[0].Name() == "multi" {
		_, err = cn.TxPipelined(ctx, queue)
	} else {
		_, err = cn.Pipelined(ctx, queue)
	}
	// A pipeline's error is its first command's: others may have
	// written, and their callers act on their own replies. Every write
	// that answered is waited on; if the wait fails, each of them
	// carries its error.
	var answered []redis.Cmder
	for _, c := range cmds {
		if isWrite(c) && done(c.Err()) {
			answered = append(answered, c)
		}
	}
	if len(answered) == 0 {
		return err
	}
	if werr := h.wait(ctx, cn, n); werr != nil {
		for _, c := range answered {
			c.SetErr(werr)
		}
		return werr
	}
	return err
}

// wait sends WAIT n on cn, whose writes it then covers.
func (h *acks) wait(ctx context.Context, cn *redis.Conn, n int) error {
	got, err := cn.Do(ctx, "wait", n, h.timeout.Milliseconds()).Int()
	if err != nil {
		h.forget()
		return fmt.Errorf("redis: WAIT after a write: %w", err)
	}
	if got < n {
		h.forget()
		return fmt.Errorf("%w: %d of %d within %s", ErrNotAcknowledged, got, n, h.timeout)
	}
	return nil
}

// wanted is how many replicas a write waits for: h.want, or in auto mode one
// when the master last reported a connected replica.
func (h *acks) wanted(ctx context.Context) (int, error) {
	if h.want >= 0 {
		return h.want, nil
	}
	h.mu.Lock()
	if !h.probed.IsZero() && time.Since(h.probed) < probeEvery {
		n := min(h.replicas, 1)
		h.mu.Unlock()
		return n, nil
	}
	h.mu.Unlock()
	info, err := h.client.Info(context.WithValue(ctx, onConn{}, true), "replication").Result()
	if err != nil {
		return 0, err
	}
	n := connectedReplicas(info)
	h.mu.Lock()
	h.replicas, h.probed = n, time.Now()
	h.mu.Unlock()
	return min(n, 1), nil
}

// forget makes the next write probe the replicas again (auto mode): after a
// failover or a replica's loss the count has changed.
func (h *acks) forget() {
	h.mu.Lock()
	h.probed = time.Time{}
	h.mu.Unlock()
}

// connectedReplicas reads connected_slaves from INFO replication.
func connectedReplicas(info string) int {
	for line := range strings.SplitSeq(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "connected_slaves:"); ok {
			n, _ := strconv.Atoi(v)
			return n
		}
	}
	return 0
}

func anyWrite(cmds []redis.Cmder) bool {
	for _, c := range cmds {
		if isWrite(c) {
			return true
		}
	}
	return false
}

// isWrite reports whether cmd may write: every command hitship sends that
// changes data (scripts count as writes: most of hitship's do).
func isWrite(cmd redis.Cmder) bool {
	return writes[cmd.Name()]
}

var writes = map[string]bool{
	"eval": true, "evalsha": true, "fcall": true,
	"set": true, "setnx": true, "setex": true, "psetex": true, "getset": true, "getdel": true, "getex": true,
	"del": true, "unlink": true, "expire": true, "pexpire": true, "expireat": true, "pexpireat": true, "persist": true,
	"incr": true, "incrby": true, "decr": true, "decrby": true, "append": true, "mset": true, "msetnx": true,
	"hset": true, "hsetnx": true, "hmset": true, "hdel": true, "hincrby": true, "hincrbyfloat": true,
	"zadd": true, "zrem": true, "zincrby": true, "zremrangebyscore": true, "zremrangebylex": true, "zremrangebyrank": true, "zpopmin": true, "zpopmax": true,
	"sadd": true, "srem": true, "spop": true, "smove": true,
	"lpush": true, "rpush": true, "lpop": true, "rpop": true, "lrem": true, "lset": true, "ltrim": true, "linsert": true, "lmove": true,
	"xadd": true, "xtrim": true, "xdel": true, "xgroup": true, "xack": true, "xclaim": true, "xautoclaim": true,
	"rename": true, "renamenx": true, "copy": true, "restore": true,
}

// Addr is a printable name of where r connects, for logs and errors.
func Addr(r config.Redis) string {
	switch r.Mode {
	case config.RedisSentinel:
		return "master " + r.MasterName + " via sentinels " + strings.Join(r.Addrs, ",")
	case config.RedisCluster:
		return "cluster " + strings.Join(r.Nodes(), ",")
	}
	return r.Addr
}
