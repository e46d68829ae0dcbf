package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisSentinelOptions configures StartRedisSentinel.
type RedisSentinelOptions struct {
	// MasterName is the name the sentinels monitor (default "hitship").
	MasterName string
	// Password, when set, is required by master and replica (requirepass)
	// and used between them (masterauth) and by the sentinels (auth-pass).
	Password string
	// SentinelPassword, when set, is required by the sentinels themselves
	// (requirepass); go-redis calls it SentinelPassword.
	SentinelPassword string
	// Persist turns the append-only file on (appendfsync always) on master
	// and replica, as in RedisOptions.
	Persist bool
	// Binary is the redis-server executable; "" looks up "redis-server" in
	// PATH. Sentinels run as `redis-server sentinel.conf --sentinel`.
	Binary string
	// StartTimeout bounds each process start and the wait for the sentinels
	// to see the replica and each other (default 10s).
	StartTimeout time.Duration
}

// RedisSentinel is a Sentinel-managed Redis for tests: a master, one replica
// of it and three sentinels (quorum 2), all real redis-server child
// processes on 127.0.0.1 and random free ports. A master is considered down
// after 1s, so KillMaster followed by WaitFailover takes a few seconds.
//
// All methods are safe for concurrent use; the ones that take a context ask
// the processes and block until they answer.
type RedisSentinel struct {
	opts RedisSentinelOptions
	bin  string
	root string

	mu        sync.Mutex
	data      []*redisNode // master and replica as started; roles change with failovers
	sentinels []*redisNode
	killed    string // address of the master KillMaster killed last
	closed    bool
}

// StartRedisSentinel starts master, replica and sentinels, and returns when
// the replica is in sync and every sentinel knows the replica and the other
// two sentinels. The caller must Close it. Without a redis-server binary it
// returns an error wrapping ErrNoRedisServer.
func StartRedisSentinel(opts RedisSentinelOptions) (*RedisSentinel, error) {
	if opts.MasterName == "" {
		opts.MasterName = "hitship"
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 10 * time.Second
	}
	bin, err := lookRedisServer(opts.Binary)
	if err != nil {
		return nil, err
	}
	root, err := os.MkdirTemp("", "testenv-redis-sentinel-*")
	if err != nil {
		return nil, fmt.Errorf("testenv: sentinel temp dir: %w", err)
	}
	s := &RedisSentinel{opts: opts, bin: bin, root: root}
	if err := s.start(); err != nil {
		_ = s.Close()
		return nil, err
	}
	return s, nil
}

func (s *RedisSentinel) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var master *redisNode
	for i, name := range []string{"master", "replica"} {
		n, err := s.newDataNode(name)
		if err != nil {
			return err
		}
		if i == 1 {
			n.args = append(n.args, "--replicaof", "127.0.0.1", strconv.Itoa(master.port))
		}
		// Appended first: Close stops what is started even when start fails.
		s.data = append(s.data, n)
		if err := n.start(s.bin, s.opts.StartTimeout); err != nil {
			return err
		}
		if i == 0 {
			master = n
		}
	}
	for i := range 3 {
		n, err := s.newSentinelNode(i, master.port)
		if err != nil {
			return err
		}
		s.sentinels = append(s.sentinels, n)
		if err := n.start(s.bin, s.opts.StartTimeout); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.StartTimeout)
	defer cancel()
	return pollUntil(ctx, "sentinel topology not ready", func(ctx context.Context) error {
		if err := s.replicaInSync(ctx, s.data[1]); err != nil {
			return err
		}
		for _, sn := range s.sentinels {
			if err := s.sentinelSeesAll(ctx, sn); err != nil {
				return err
			}
		}
		return nil
	})
}

func (s *RedisSentinel) newDataNode(name string) (*redisNode, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(s.root, name)
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("testenv: sentinel node dir: %w", err)
	}
	n := &redisNode{port: port, dir: dir, args: serverArgs(port, dir, s.opts.Persist)}
	if pw := s.opts.Password; pw != "" {
		n.args = append(n.args, "--requirepass", pw, "--masterauth", pw)
		n.ready.Password = pw
	}
	return n, nil
}

func (s *RedisSentinel) newSentinelNode(i, masterPort int) (*redisNode, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(s.root, "sentinel"+strconv.Itoa(i))
	if err := os.Mkdir(dir, 0o700); err != nil {
		return nil, fmt.Errorf("testenv: sentinel dir: %w", err)
	}
	name := s.opts.MasterName
	conf := []string{
		"port " + strconv.Itoa(port),
		"bind 127.0.0.1",
		"dir " + dir,
		`logfile ""`,
		"daemonize no",
		fmt.Sprintf("sentinel monitor %s 127.0.0.1 %d 2", name, masterPort),
		fmt.Sprintf("sentinel down-after-milliseconds %s 1000", name),
		fmt.Sprintf("sentinel failover-timeout %s 3000", name),
		fmt.Sprintf("sentinel parallel-syncs %s 1", name),
	}
	if pw := s.opts.Password; pw != "" {
		conf = append(conf, fmt.Sprintf("sentinel auth-pass %s %s", name, pw))
	}
	n := &redisNode{port: port, dir: dir}
	if pw := s.opts.SentinelPassword; pw != "" {
		// sentinel-pass: what this sentinel sends to the others, which
		// require the same password.
		conf = append(conf, "requirepass "+pw, "sentinel sentinel-pass "+pw)
		n.ready.Password = pw
	}
	// A file, not arguments: Sentinel refuses to run without a writable
	// config, which it rewrites with what it learns.
	path := filepath.Join(dir, "sentinel.conf")
	if err := os.WriteFile(path, []byte(strings.Join(conf, "\n")+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("testenv: sentinel.conf: %w", err)
	}
	n.args = []string{path, "--sentinel"}
	return n, nil
}

// MasterName returns the name the sentinels monitor.
func (s *RedisSentinel) MasterName() string { return s.opts.MasterName }

// SentinelAddrs returns host:port of the three sentinels.
func (s *RedisSentinel) SentinelAddrs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	addrs := make([]string, len(s.sentinels))
	for i, n := range s.sentinels {
		addrs[i] = n.addr()
	}
	return addrs
}

// FailoverOptions returns go-redis options for a client of this topology
// (redis.NewFailoverClient), with both passwords set.
func (s *RedisSentinel) FailoverOptions() *redis.FailoverOptions {
	return &redis.FailoverOptions{
		MasterName:       s.opts.MasterName,
		SentinelAddrs:    s.SentinelAddrs(),
		SentinelPassword: s.opts.SentinelPassword,
		Password:         s.opts.Password,
		DialTimeout:      time.Second,
		ReadTimeout:      2 * time.Second,
		WriteTimeout:     2 * time.Second,
	}
}

// MasterAddr returns the current master as the first answering sentinel
// reports it.
func (s *RedisSentinel) MasterAddr(ctx context.Context) (string, error) {
	var errs []error
	for _, a := range s.SentinelAddrs() {
		addr, err := s.sentinelMaster(ctx, a)
		if err == nil {
			return addr, nil
		}
		errs = append(errs, err)
	}
	return "", fmt.Errorf("testenv: no sentinel reports a master: %w", errors.Join(errs...))
}

func (s *RedisSentinel) sentinelClient(addr string) *redis.SentinelClient {
	return redis.NewSentinelClient(&redis.Options{
		Addr: addr, Password: s.opts.SentinelPassword,
		DialTimeout: 500 * time.Millisecond, MaxRetries: -1,
	})
}

func (s *RedisSentinel) sentinelMaster(ctx context.Context, sentinelAddr string) (string, error) {
	c := s.sentinelClient(sentinelAddr)
	defer c.Close()
	hp, err := c.GetMasterAddrByName(ctx, s.opts.MasterName).Result()
	if err != nil {
		return "", fmt.Errorf("sentinel %s: %w", sentinelAddr, err)
	}
	if len(hp) != 2 {
		return "", fmt.Errorf("sentinel %s: master address %q", sentinelAddr, hp)
	}
	return net.JoinHostPort(hp[0], hp[1]), nil
}

// sentinelSeesAll reports an error until sn knows one healthy replica and
// the two other sentinels: before that a failover cannot happen.
func (s *RedisSentinel) sentinelSeesAll(ctx context.Context, sn *redisNode) error {
	c := s.sentinelClient(sn.addr())
	defer c.Close()
	reps, err := c.Replicas(ctx, s.opts.MasterName).Result()
	if err != nil {
		return err
	}
	if len(reps) != 1 || reps[0]["flags"] != "slave" || reps[0]["master-link-status"] != "ok" {
		return fmt.Errorf("sentinel %s sees replicas %v", sn.addr(), reps)
	}
	sens, err := c.Sentinels(ctx, s.opts.MasterName).Result()
	if err != nil {
		return err
	}
	if len(sens) != 2 {
		return fmt.Errorf("sentinel %s sees %d other sentinels", sn.addr(), len(sens))
	}
	return nil
}

func (s *RedisSentinel) dataClient(addr string) *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr: addr, Password: s.opts.Password,
		DialTimeout: 500 * time.Millisecond, MaxRetries: -1,
	})
}

// role returns the "role" and the whole INFO replication section of addr.
func (s *RedisSentinel) role(ctx context.Context, addr string) (string, map[string]string, error) {
	c := s.dataClient(addr)
	defer c.Close()
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return "", nil, err
	}
	fields := infoFields(info)
	return fields["role"], fields, nil
}

func (s *RedisSentinel) replicaInSync(ctx context.Context, n *redisNode) error {
	role, f, err := s.role(ctx, n.addr())
	if err != nil {
		return err
	}
	if role != "slave" || f["master_link_status"] != "up" {
		return fmt.Errorf("replica %s: role %s, link %s", n.addr(), role, f["master_link_status"])
	}
	return nil
}

// KillMaster SIGKILLs the process of the current master (as the sentinels
// report it) and returns its address, which Restart takes.
func (s *RedisSentinel) KillMaster(ctx context.Context) (string, error) {
	addr, err := s.MasterAddr(ctx)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	n := s.nodeLocked(addr)
	if n == nil {
		return "", fmt.Errorf("testenv: sentinels report master %s, not a node of this topology", addr)
	}
	n.kill()
	s.killed = addr
	return addr, nil
}

func (s *RedisSentinel) nodeLocked(addr string) *redisNode {
	for _, n := range s.data {
		if n.addr() == addr {
			return n
		}
	}
	return nil
}

// WaitFailover blocks until every sentinel reports a master other than the
// one KillMaster killed last and that master answers with role master. It
// returns the new master's address.
func (s *RedisSentinel) WaitFailover(ctx context.Context) (string, error) {
	s.mu.Lock()
	old := s.killed
	s.mu.Unlock()
	if old == "" {
		return "", errors.New("testenv: WaitFailover without KillMaster")
	}
	var master string
	err := pollUntil(ctx, "no failover", func(ctx context.Context) error {
		master = ""
		for _, a := range s.SentinelAddrs() {
			m, err := s.sentinelMaster(ctx, a)
			if err != nil {
				return err
			}
			if m == old || (master != "" && m != master) {
				return fmt.Errorf("sentinel %s reports master %s", a, m)
			}
			master = m
		}
		role, _, err := s.role(ctx, master)
		if err != nil {
			return err
		}
		if role != "master" {
			return fmt.Errorf("%s has role %s", master, role)
		}
		return nil
	})
	return master, err
}

// Restart starts the node at addr, killed before, on the same port and
// directory (with Persist, with its data) as a replica of the current
// master, and waits until it is in sync: a killed master rejoins as a
// replica. Restarting a running node is a no-op.
func (s *RedisSentinel) Restart(ctx context.Context, addr string) error {
	master, err := s.MasterAddr(ctx)
	if err != nil {
		return err
	}
	if master == addr {
		// The sentinels still name the dead node; it would come back as
		// a master of its own.
		return fmt.Errorf("testenv: %s is still the master the sentinels report; WaitFailover first", addr)
	}
	host, port, _ := net.SplitHostPort(master)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errors.New("testenv: sentinel topology is closed")
	}
	n := s.nodeLocked(addr)
	if n == nil {
		s.mu.Unlock()
		return fmt.Errorf("testenv: %s is not a node of this topology", addr)
	}
	if n.proc != nil {
		s.mu.Unlock()
		return nil
	}
	n.args = append(withoutReplicaOf(n.args), "--replicaof", host, port)
	err = n.start(s.bin, s.opts.StartTimeout)
	s.mu.Unlock()
	if err != nil {
		return err
	}
	return pollUntil(ctx, "restarted node not in sync", func(ctx context.Context) error {
		return s.replicaInSync(ctx, n)
	})
}

// withoutReplicaOf drops a "--replicaof host port" from args.
func withoutReplicaOf(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		if args[i] == "--replicaof" && i+2 < len(args) {
			i += 2
			continue
		}
		out = append(out, args[i])
	}
	return out
}

// Close kills every process and removes the directories. It is safe to call
// more than once.
func (s *RedisSentinel) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	// Sentinels first: they would otherwise start a failover while the
	// data nodes go away.
	for _, n := range s.sentinels {
		n.kill()
	}
	for _, n := range s.data {
		n.kill()
	}
	if err := os.RemoveAll(s.root); err != nil {
		return fmt.Errorf("testenv: remove sentinel dir: %w", err)
	}
	return nil
}

// infoFields parses the "key:value" lines of an INFO answer.
func infoFields(info string) map[string]string {
	fields := make(map[string]string)
	for line := range strings.Lines(info) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			fields[k] = v
		}
	}
	return fields
}
