package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"hitship/config"
	"hitship/internal/testenv"
)

// chaosRedis is the Redis of the chaos world. HITSHIP_CHAOS_REDIS picks it:
//   - single (the default): one redis-server with an append-only file. Its
//     outage is a stop and a start; its loss of data a FLUSHALL and a
//     restart without its files.
//   - sentinel: a master with a replica and three sentinels. The outage is
//     a failover: the master is SIGKILLed mid-run, the sentinels promote the
//     replica, and the old master rejoins as a replica when the outage ends.
//     The restart without data is a second failover whose new replica lost
//     its files (it resyncs from the master: no loss).
//   - cluster: a three-master Redis Cluster, hitship's keys in the one slot
//     of the prefix's hash tag. The outage is a restart of that slot's
//     master (SIGKILL, then a start on its append-only file); the loss of
//     data a FLUSHALL of it and a restart of it without its data files.
//
// Writes wait for a replica where there is one (internal/redisconn).
type chaosRedis struct {
	mode     string
	single   *testenv.Redis
	sentinel *testenv.RedisSentinel
	cluster  *testenv.RedisCluster
	client   redis.UniversalClient
	downAddr string // the node the outage took down
}

// chaosRedisMode is HITSHIP_CHAOS_REDIS, checked.
func chaosRedisMode(t *testing.T) string {
	switch m := os.Getenv("HITSHIP_CHAOS_REDIS"); m {
	case "", config.RedisSingle:
		return config.RedisSingle
	case config.RedisSentinel, config.RedisCluster:
		return m
	default:
		t.Fatalf("HITSHIP_CHAOS_REDIS=%q: want single (the default), sentinel or cluster", m)
		return ""
	}
}

// keyPrefixOf is the replicas' redis.key_prefix in mode.
func keyPrefixOf(mode string) string {
	if mode == config.RedisCluster {
		return config.ClusterKeyPrefix
	}
	return config.DefaultKeyPrefix
}

func startChaosRedis(t *testing.T, mode string) *chaosRedis {
	t.Helper()
	r := &chaosRedis{mode: mode}
	switch mode {
	case config.RedisSentinel:
		r.sentinel = testenv.MustRedisSentinel(t, testenv.RedisSentinelOptions{Persist: true})
		r.client = redis.NewFailoverClient(r.sentinel.FailoverOptions())
	case config.RedisCluster:
		r.cluster = testenv.MustRedisCluster(t, testenv.RedisClusterOptions{Persist: true})
		r.client = redis.NewClusterClient(r.cluster.ClusterOptions())
	default:
		r.single = testenv.MustRedis(t, testenv.RedisOptions{Persist: true})
		if r.single.Miniredis() {
			t.Skip("chaos needs a real redis-server (restart with an append-only file)")
		}
		r.client = redis.NewClient(&redis.Options{Addr: r.single.Addr()})
	}
	t.Cleanup(func() { _ = r.client.Close() })
	return r
}

// yaml is the replicas' redis section.
func (r *chaosRedis) yaml() string {
	switch r.mode {
	case config.RedisSentinel:
		return fmt.Sprintf("redis:\n  mode: sentinel\n  addrs: [%s]\n  master_name: %s\n  key_prefix: %q\n",
			strings.Join(r.sentinel.SentinelAddrs(), ", "), r.sentinel.MasterName(), keyPrefix)
	case config.RedisCluster:
		return fmt.Sprintf("redis:\n  mode: cluster\n  addrs: [%s]\n  key_prefix: %q\n", strings.Join(r.cluster.Addrs(), ", "), keyPrefix)
	}
	return fmt.Sprintf("redis:\n  addr: %s\n  key_prefix: %q\n", r.single.Addr(), keyPrefix)
}

// outageName and restoreName are the event log's names of the outage.
func (r *chaosRedis) outageName() string {
	switch r.mode {
	case config.RedisSentinel:
		return "redis master SIGKILLed (sentinel failover)"
	case config.RedisCluster:
		return "redis cluster: the master of hitship's slot SIGKILLed"
	}
	return "redis stopped"
}

func (r *chaosRedis) restoreName() string {
	switch r.mode {
	case config.RedisSentinel:
		return "redis: the old master restarted as a replica"
	case config.RedisCluster:
		return "redis cluster: the master restarted on its append-only file"
	}
	return "redis started"
}

// down starts the outage.
func (r *chaosRedis) down(ctx context.Context) error {
	switch r.mode {
	case config.RedisSentinel:
		addr, err := r.sentinel.KillMaster(ctx)
		r.downAddr = addr
		return err
	case config.RedisCluster:
		addr, err := r.cluster.MasterFor(ctx, keyPrefix)
		if err != nil {
			return err
		}
		r.downAddr = addr
		return r.cluster.StopNode(addr)
	}
	return r.single.Stop()
}

// up ends it.
func (r *chaosRedis) up(ctx context.Context) error {
	switch r.mode {
	case config.RedisSentinel:
		if _, err := r.sentinel.WaitFailover(ctx); err != nil {
			return err
		}
		return r.sentinel.Restart(ctx, r.downAddr)
	case config.RedisCluster:
		if err := r.cluster.StartNode(r.downAddr); err != nil {
			return err
		}
		return r.cluster.WaitHealthy(ctx)
	}
	return r.single.Start()
}

// flushAll is FLUSHALL of the node holding hitship's keys: Redis loses
// every key while it runs (a replica follows).
func (r *chaosRedis) flushAll(ctx context.Context) error {
	if cc, ok := r.client.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return c.FlushAll(ctx).Err() })
	}
	return r.client.FlushAll(ctx).Err()
}

// restartEmpty is a restart without data (see chaosRedis), down for down.
func (r *chaosRedis) restartEmpty(ctx context.Context, down time.Duration) error {
	switch r.mode {
	case config.RedisSentinel:
		master, err := r.sentinel.MasterAddr(ctx)
		if err != nil {
			return err
		}
		dir, err := configDir(ctx, master)
		if err != nil {
			return err
		}
		if err := r.down(ctx); err != nil {
			return err
		}
		if _, err := r.sentinel.WaitFailover(ctx); err != nil {
			return err
		}
		// The killed master's files go: it comes back empty and resyncs.
		if err := removeDataFiles(dir); err != nil {
			return err
		}
		sleepCtx(ctx, down)
		return r.sentinel.Restart(ctx, r.downAddr)
	case config.RedisCluster:
		addr, err := r.cluster.MasterFor(ctx, keyPrefix)
		if err != nil {
			return err
		}
		dir, err := configDir(ctx, addr)
		if err != nil {
			return err
		}
		if err := r.cluster.StopNode(addr); err != nil {
			return err
		}
		if err := removeDataFiles(dir); err != nil {
			return err
		}
		sleepCtx(ctx, down)
		if err := r.cluster.StartNode(addr); err != nil {
			return err
		}
		return r.cluster.WaitHealthy(ctx)
	}
	dir, err := configDir(ctx, r.single.Addr())
	if err != nil {
		return err
	}
	if err := r.single.Stop(); err != nil {
		return err
	}
	if err := removeDataFiles(dir); err != nil {
		return err
	}
	sleepCtx(ctx, down)
	return r.single.Start()
}

// scan calls fn with every key matching match, on every master.
func (r *chaosRedis) scan(ctx context.Context, match string, fn func(c redis.Cmdable, key string)) error {
	each := func(ctx context.Context, c redis.Cmdable) error {
		iter := c.Scan(ctx, 0, match, 1000).Iterator()
		for iter.Next(ctx) {
			fn(c, iter.Val())
		}
		return iter.Err()
	}
	if cc, ok := r.client.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return each(ctx, c) })
	}
	return each(ctx, r.client)
}

// configDir asks the node at addr for its data directory.
func configDir(ctx context.Context, addr string) (string, error) {
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	dir, err := c.ConfigGet(ctx, "dir").Result()
	if err != nil {
		return "", err
	}
	if dir["dir"] == "" {
		return "", errors.New("redis: CONFIG GET dir answered nothing")
	}
	return dir["dir"], nil
}

// removeDataFiles deletes the append-only files and snapshots in dir, not
// a cluster node's nodes.conf (the node stays the same node).
func removeDataFiles(dir string) error {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		n := e.Name()
		if n == "appendonlydir" || filepath.Ext(n) == ".aof" || filepath.Ext(n) == ".rdb" {
			if err := os.RemoveAll(filepath.Join(dir, n)); err != nil {
				return err
			}
		}
	}
	return nil
}
