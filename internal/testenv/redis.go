package testenv

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/exec"
	"slices"
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
	// TLS, when set, makes the server speak TLS only, on Addr. With all its
	// paths empty, StartRedis generates a CA and certificates (see
	// RedisTLS).
	TLS *RedisTLS
	// Users, when set, are ACL users, name to password (no spaces), each
	// with every permission (on >password ~* &* +@all); the default user
	// is then off, so every client must authenticate. Client and the
	// readiness check log in as the first name in sorted order.
	Users map[string]string
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
	tls  *RedisTLS   // with every path filled in; nil without TLS
	tlsC *tls.Config // a client's configuration for tls

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
	if lookErr != nil && (opts.TLS != nil || len(opts.Users) > 0) {
		// miniredis has neither the same TLS nor ACL users.
		return nil, fmt.Errorf("%w (TLS and ACL users need one): %v", ErrNoRedisServer, lookErr)
	}
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
	if opts.TLS != nil {
		if err := r.setupTLS(); err != nil {
			_ = os.RemoveAll(dir)
			return nil, err
		}
	}
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

func (r *Redis) setupTLS() error {
	t := *r.opts.TLS
	if t.CAFile == "" && t.CertFile == "" && t.KeyFile == "" {
		gen, err := writeRedisCerts(r.dir)
		if err != nil {
			return err
		}
		gen.RequireClientCert = t.RequireClientCert
		t = gen
	}
	c, err := t.clientConfig()
	if err != nil {
		return err
	}
	r.tls, r.tlsC = &t, c
	return nil
}

// TLS returns the TLS files the server uses, generated ones included, or
// nil when it serves plain TCP.
func (r *Redis) TLS() *RedisTLS {
	if r.tls == nil {
		return nil
	}
	t := *r.tls
	return &t
}

// TLSConfig returns a client's TLS configuration for the server: its CA as
// the only root and the client certificate, if any. It is nil when the
// server serves plain TCP; each call returns a fresh copy.
func (r *Redis) TLSConfig() *tls.Config {
	if r.tlsC == nil {
		return nil
	}
	return r.tlsC.Clone()
}

// clientOptions are what Client and the readiness check connect with: TLS
// when served, and the first ACL user.
func (r *Redis) clientOptions() *redis.Options {
	o := &redis.Options{Addr: r.Addr(), TLSConfig: r.TLSConfig()}
	if len(r.opts.Users) > 0 {
		names := slices.Sorted(maps.Keys(r.opts.Users))
		o.Username, o.Password = names[0], r.opts.Users[names[0]]
	}
	return o
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
// by Close. It reconnects by itself after Stop/Start. With TLS it trusts the
// server's CA and presents the client certificate; with Users it logs in as
// the first user in sorted order.
func (r *Redis) Client() *redis.Client {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.client == nil {
		o := r.clientOptions()
		o.DialTimeout = time.Second
		o.ReadTimeout = 2 * time.Second
		o.WriteTimeout = 2 * time.Second
		o.MaxRetries = -1
		r.client = redis.NewClient(o)
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
	if r.tls != nil {
		// Later arguments win: port 0 turns plain TCP off.
		args = append(args, r.tls.tlsArgs(strconv.Itoa(r.port))...)
	}
	if len(r.opts.Users) > 0 {
		args = append(args, "--user", "default", "off")
		for _, name := range slices.Sorted(maps.Keys(r.opts.Users)) {
			args = append(args, "--user", name, "on", ">"+r.opts.Users[name], "~*", "&*", "+@all")
		}
	}
	proc, err := startRedisProc(r.bin, r.dir, args, r.clientOptions(), r.opts.StartTimeout)
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
