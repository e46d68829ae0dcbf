package testenv

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// RedisOptions configures StartRedis.
type RedisOptions struct {
	// Persist turns the append-only file on (appendfsync always), so that data
	// survives Stop/Start. Without it the server keeps nothing on disk
	// (--save "" --appendonly no) and Stop loses all data.
	Persist bool
	// Binary is the redis-server executable; "" looks up "redis-server" in PATH.
	Binary string
	// Logger receives the reason when the miniredis fallback is used; nil
	// discards it.
	Logger *slog.Logger
	// StartTimeout bounds the wait for the first PING answer (default 10s).
	StartTimeout time.Duration
}

// Redis is a Redis server for tests: a real redis-server child process on
// 127.0.0.1 and a random free port (never 6379), or an in-process miniredis
// when no redis-server binary exists.
//
// Stop and Start simulate an outage: Start brings the server back on the same
// port. All methods are safe for concurrent use.
type Redis struct {
	opts RedisOptions
	bin  string // "" when miniredis is used
	dir  string
	port int

	mu      sync.Mutex
	proc    *redisProc // nil while stopped
	mini    *miniredis.Miniredis
	running bool
	client  *redis.Client
	closed  bool
}

// StartRedis starts a Redis server and waits until it answers PING. The
// caller must Close it.
func StartRedis(opts RedisOptions) (*Redis, error) {
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 10 * time.Second
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	name := opts.Binary
	if name == "" {
		name = "redis-server"
	}
	bin, lookErr := exec.LookPath(name)
	if lookErr != nil {
		logger.Warn("testenv: no redis-server binary, falling back to miniredis", "binary", name, "err", lookErr)
		m, err := miniredis.Run()
		if err != nil {
			return nil, fmt.Errorf("testenv: start miniredis: %w", err)
		}
		return &Redis{opts: opts, mini: m, running: true}, nil
	}
	dir, err := os.MkdirTemp("", "testenv-redis-*")
	if err != nil {
		return nil, fmt.Errorf("testenv: redis temp dir: %w", err)
	}
	r := &Redis{opts: opts, bin: bin, dir: dir}
	// A free port can be taken between probing and binding; retry a few times.
	for attempt := 0; attempt < 5; attempt++ {
		r.port, err = freePort()
		if err != nil {
			break
		}
		if err = r.Start(); err == nil {
			return r, nil
		}
	}
	_ = os.RemoveAll(dir)
	return nil, err
}

// Addr returns host:port of the server. It stays the same across Stop/Start.
func (r *Redis) Addr() string {
	if r.mini != nil {
		return r.mini.Addr()
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(r.port))
}

// Miniredis reports whether the in-process fallback is in use.
func (r *Redis) Miniredis() bool { return r.mini != nil }

// Client returns a go-redis client for Addr, shared by all callers and closed
// by Close. It reconnects by itself after Stop/Start.
func (r *Redis) Client() *redis.Client {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.client == nil {
		r.client = redis.NewClient(&redis.Options{
			Addr:         r.Addr(),
			DialTimeout:  time.Second,
			ReadTimeout:  2 * time.Second,
			WriteTimeout: 2 * time.Second,
			MaxRetries:   -1,
		})
	}
	return r.client
}

// Start (re)starts a stopped server on the same port and waits until it
// answers PING. Starting a running server is a no-op.
func (r *Redis) Start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("testenv: redis is closed")
	}
	if r.running {
		return nil
	}
	if r.mini != nil {
		if err := r.mini.Restart(); err != nil {
			return fmt.Errorf("testenv: restart miniredis: %w", err)
		}
		r.running = true
		return nil
	}
	args := []string{
		"--port", strconv.Itoa(r.port),
		"--bind", "127.0.0.1",
		"--dir", r.dir,
		"--save", "",
		"--daemonize", "no",
		"--protected-mode", "yes",
		"--logfile", "",
	}
	if r.opts.Persist {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	proc, err := startRedisProc(r.bin, r.dir, args, &redis.Options{Addr: r.Addr()}, r.opts.StartTimeout)
	if err != nil {
		return err
	}
	r.proc, r.running = proc, true
	return nil
}

// Stop shuts the server down (SIGTERM, then SIGKILL after 5s) and waits for it
// to exit. The port stays reserved by nobody; Start reuses it. Stopping a
// stopped server is a no-op.
func (r *Redis) Stop() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stopLocked()
}

func (r *Redis) stopLocked() error {
	if !r.running {
		return nil
	}
	r.running = false
	if r.mini != nil {
		r.mini.Close()
		return nil
	}
	r.proc.stop()
	r.proc = nil
	return nil
}

// Close stops the server, closes the shared client and removes the data
// directory. It is safe to call more than once.
func (r *Redis) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	err := r.stopLocked()
	if r.client != nil {
		_ = r.client.Close()
	}
	if r.dir != "" {
		if rmErr := os.RemoveAll(r.dir); rmErr != nil && err == nil {
			err = fmt.Errorf("testenv: remove redis dir: %w", rmErr)
		}
	}
	return err
}

// freePort asks the kernel for a free TCP port on 127.0.0.1.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("testenv: free port: %w", err)
	}
	defer l.Close()
	port := l.Addr().(*net.TCPAddr).Port
	if port == 6379 { // never the machine's Redis port
		return freePort()
	}
	return port, nil
}

func lastBytes(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
