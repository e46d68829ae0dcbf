package testenv

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisClusterOptions configures StartRedisCluster.
type RedisClusterOptions struct {
	// Replicas is the number of replicas of each of the three masters
	// (default 0).
	Replicas int
	// Persist turns the append-only file on (appendfsync always), so a
	// node restarted by StartNode or RestartMaster keeps its data. Its
	// nodes.conf (identity, slots, epoch) survives a restart either way.
	Persist bool
	// Binary is the redis-server executable; "" looks up "redis-server" in
	// PATH.
	Binary string
	// StartTimeout bounds each process start and the wait for the cluster
	// to be ok (default 15s).
	StartTimeout time.Duration
}

// RedisCluster is a Redis Cluster for tests: three masters with the 16384
// slots split evenly, optionally replicas, all real redis-server child
// processes on 127.0.0.1. Each node's port p is chosen with p+10000 (its
// cluster bus) free too. cluster-node-timeout is 1s.
//
// The slots are assigned from Go (CLUSTER ADDSLOTSRANGE, MEET, REPLICATE),
// not with redis-cli --cluster create: one code path that needs only
// redis-server and places replicas deterministically.
//
// All methods are safe for concurrent use; the ones that take a context ask
// the nodes and block until they answer.
type RedisCluster struct {
	opts RedisClusterOptions
	bin  string
	root string

	mu     sync.Mutex
	nodes  []*redisNode // the three masters first, then the replicas in master order
	closed bool
}

// clusterNodeTimeout is cluster-node-timeout: short, so that a lost node is
// noticed and a restarted one accepted again within seconds.
const clusterNodeTimeout = 1000 * time.Millisecond

// StartRedisCluster starts the nodes, assigns the slots, joins them and
// returns when every node reports cluster_state:ok and the same slot owners
// (with their replicas). The caller must Close it. Without a redis-server
// binary it returns an error wrapping ErrNoRedisServer.
func StartRedisCluster(opts RedisClusterOptions) (*RedisCluster, error) {
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 15 * time.Second
	}
	if opts.Replicas < 0 {
		return nil, fmt.Errorf("testenv: cluster replicas %d < 0", opts.Replicas)
	}
	bin, err := lookRedisServer(opts.Binary)
	if err != nil {
		return nil, err
	}
	root, err := os.MkdirTemp("", "testenv-redis-cluster-*")
	if err != nil {
		return nil, fmt.Errorf("testenv: cluster temp dir: %w", err)
	}
	c := &RedisCluster{opts: opts, bin: bin, root: root}
	if err := c.start(); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

func (c *RedisCluster) start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range 3 * (1 + c.opts.Replicas) {
		n, err := c.newNode(i)
		if err != nil {
			return err
		}
		c.nodes = append(c.nodes, n) // first: Close stops what started
		if err := n.start(c.bin, c.opts.StartTimeout); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.opts.StartTimeout)
	defer cancel()
	ranges := [3][2]int{{0, 5460}, {5461, 10922}, {10923, 16383}}
	ids := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		cl := nodeClient(n.addr())
		var err error
		ids[i], err = cl.Do(ctx, "CLUSTER", "MYID").Text()
		if err == nil && i < 3 {
			// Distinct epochs up front, as redis-cli does: no epoch
			// collision to resolve before the slots settle.
			err = cl.Do(ctx, "CLUSTER", "SET-CONFIG-EPOCH", i+1).Err()
			if err == nil {
				err = cl.ClusterAddSlotsRange(ctx, ranges[i][0], ranges[i][1]).Err()
			}
		}
		_ = cl.Close()
		if err != nil {
			return fmt.Errorf("testenv: cluster node %s: %w", n.addr(), err)
		}
	}
	first := nodeClient(c.nodes[0].addr())
	defer first.Close()
	for _, n := range c.nodes[1:] {
		if err := first.ClusterMeet(ctx, "127.0.0.1", strconv.Itoa(n.port)).Err(); err != nil {
			return fmt.Errorf("testenv: cluster meet %s: %w", n.addr(), err)
		}
	}
	for i, n := range c.nodes[3:] {
		master := ids[i/c.opts.Replicas]
		cl := nodeClient(n.addr())
		// REPLICATE fails until the gossip has told n about the master.
		err := pollUntil(ctx, "cluster replicate", func(ctx context.Context) error {
			return cl.ClusterReplicate(ctx, master).Err()
		})
		_ = cl.Close()
		if err != nil {
			return err
		}
	}
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.addr()
	}
	return c.waitHealthy(ctx, addrs)
}

func (c *RedisCluster) newNode(i int) (*redisNode, error) {
	port, err := clusterPort()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(c.root, "node"+strconv.Itoa(i))
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("testenv: cluster node dir: %w", err)
	}
	args := append(serverArgs(port, dir, c.opts.Persist),
		"--cluster-enabled", "yes",
		"--cluster-config-file", "nodes.conf",
		"--cluster-node-timeout", strconv.Itoa(int(clusterNodeTimeout.Milliseconds())),
		// Replicas stay with the master they were given.
		"--cluster-allow-replica-migration", "no",
		// CLUSTER SLOTS lists a replica only once its replication offset
		// is not 0, which on an idle master takes the first replication
		// PING: every 10s by default.
		"--repl-ping-replica-period", "1",
	)
	return &redisNode{port: port, dir: dir, args: args}, nil
}

// clusterPort picks a port p such that p and p+10000 (the cluster bus) are
// both free on 127.0.0.1. Both lie below the kernel's ephemeral range
// (32768 and up), so outgoing connections are unlikely to take them between
// this probe and the bind.
func clusterPort() (int, error) {
	for range 100 {
		p := 10000 + rand.IntN(12000)
		if canListen(p) && canListen(p+10000) {
			return p, nil
		}
	}
	return 0, errors.New("testenv: no free port pair for a cluster node")
}

func canListen(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

func nodeClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 500 * time.Millisecond, MaxRetries: -1})
}

// Addrs returns host:port of every node, the three nodes started as
// masters first (a failover can change roles since): seed addresses for a
// cluster client.
func (c *RedisCluster) Addrs() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		addrs[i] = n.addr()
	}
	return addrs
}

// ClusterOptions returns go-redis options for a client of this cluster
// (redis.NewClusterClient).
func (c *RedisCluster) ClusterOptions() *redis.ClusterOptions {
	return &redis.ClusterOptions{
		Addrs:        c.Addrs(),
		DialTimeout:  time.Second,
		ReadTimeout:  2 * time.Second,
		WriteTimeout: 2 * time.Second,
	}
}

// MasterFor returns the address of the master that owns key's slot, as the
// first answering node reports it.
func (c *RedisCluster) MasterFor(ctx context.Context, key string) (string, error) {
	var errs []error
	for _, a := range c.Addrs() {
		cl := nodeClient(a)
		addr, err := masterFor(ctx, cl, key)
		_ = cl.Close()
		if err == nil {
			return addr, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", a, err))
	}
	return "", fmt.Errorf("testenv: no node names the master of %q: %w", key, errors.Join(errs...))
}

func masterFor(ctx context.Context, cl *redis.Client, key string) (string, error) {
	slot, err := cl.ClusterKeySlot(ctx, key).Result()
	if err != nil {
		return "", err
	}
	slots, err := cl.ClusterSlots(ctx).Result()
	if err != nil {
		return "", err
	}
	for _, s := range slots {
		if int64(s.Start) <= slot && slot <= int64(s.End) && len(s.Nodes) > 0 {
			return s.Nodes[0].Addr, nil
		}
	}
	return "", fmt.Errorf("slot %d has no master", slot)
}

// StopNode SIGKILLs the node at addr (a crash: no shutdown save) and waits
// for it to exit. Stopping a stopped node is a no-op.
func (c *RedisCluster) StopNode(addr string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.nodeLocked(addr)
	if n == nil {
		return fmt.Errorf("testenv: %s is not a node of this cluster", addr)
	}
	n.kill()
	return nil
}

// StartNode starts the stopped node at addr on the same port with its
// nodes.conf (and with Persist, its data), so it rejoins the cluster as the
// same node, and waits until it answers PING. It does not wait for the
// cluster: see WaitHealthy. Starting a running node is a no-op.
func (c *RedisCluster) StartNode(addr string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("testenv: cluster is closed")
	}
	n := c.nodeLocked(addr)
	if n == nil {
		return fmt.Errorf("testenv: %s is not a node of this cluster", addr)
	}
	return n.start(c.bin, c.opts.StartTimeout)
}

// RestartMaster SIGKILLs the node at addr, starts it again (StartNode) and
// waits until the cluster is healthy (WaitHealthy).
func (c *RedisCluster) RestartMaster(ctx context.Context, addr string) error {
	if err := c.StopNode(addr); err != nil {
		return err
	}
	if err := c.StartNode(addr); err != nil {
		return err
	}
	return c.WaitHealthy(ctx)
}

// WaitHealthy blocks until every node runs, reports cluster_state:ok with
// all 16384 slots ok, and names the same master (and number of replicas)
// for each slot range. It holds no lock while it waits.
func (c *RedisCluster) WaitHealthy(ctx context.Context) error {
	c.mu.Lock()
	addrs := make([]string, len(c.nodes))
	for i, n := range c.nodes {
		if n.proc == nil {
			c.mu.Unlock()
			return fmt.Errorf("testenv: cluster node %s is stopped", n.addr())
		}
		addrs[i] = n.addr()
	}
	c.mu.Unlock()
	return c.waitHealthy(ctx, addrs)
}

func (c *RedisCluster) waitHealthy(ctx context.Context, addrs []string) error {
	clients := make([]*redis.Client, len(addrs))
	for i, a := range addrs {
		clients[i] = nodeClient(a)
		defer clients[i].Close()
	}
	return pollUntil(ctx, "cluster not ok", func(ctx context.Context) error {
		var want string
		for i, cl := range clients {
			info, err := cl.ClusterInfo(ctx).Result()
			if err != nil {
				return err
			}
			f := infoFields(info)
			if f["cluster_state"] != "ok" || f["cluster_slots_ok"] != "16384" || f["cluster_known_nodes"] != strconv.Itoa(len(addrs)) {
				return fmt.Errorf("node %s: state %s, slots ok %s, known nodes %s",
					addrs[i], f["cluster_state"], f["cluster_slots_ok"], f["cluster_known_nodes"])
			}
			slots, err := cl.ClusterSlots(ctx).Result()
			if err != nil {
				return err
			}
			if len(slots) != 3 || !allHaveReplicas(slots, c.opts.Replicas) {
				return fmt.Errorf("node %s: slots %s, want 3 ranges with %d replicas each", addrs[i], slotOwners(slots), c.opts.Replicas)
			}
			got := slotOwners(slots)
			if want == "" {
				want = got
			} else if got != want {
				return fmt.Errorf("nodes disagree on slots: %s vs %s", want, got)
			}
		}
		return nil
	})
}

func slotOwners(slots []redis.ClusterSlot) string {
	s := ""
	for _, sl := range slots {
		s += fmt.Sprintf("%d-%d:%s(+%d) ", sl.Start, sl.End, sl.Nodes[0].Addr, len(sl.Nodes)-1)
	}
	return s
}

func allHaveReplicas(slots []redis.ClusterSlot, replicas int) bool {
	for _, sl := range slots {
		if len(sl.Nodes) != 1+replicas {
			return false
		}
	}
	return true
}

func (c *RedisCluster) nodeLocked(addr string) *redisNode {
	for _, n := range c.nodes {
		if n.addr() == addr {
			return n
		}
	}
	return nil
}

// Close kills every node and removes the directories. It is safe to call
// more than once.
func (c *RedisCluster) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil
	}
	c.closed = true
	for _, n := range c.nodes {
		n.kill()
	}
	if err := os.RemoveAll(c.root); err != nil {
		return fmt.Errorf("testenv: remove cluster dir: %w", err)
	}
	return nil
}
