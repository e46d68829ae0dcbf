package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisProc is one redis-server child process (a server or a sentinel),
// shared by Redis, RedisSentinel and RedisCluster. It logs to redis.log in
// its directory.
type redisProc struct {
	cmd     *exec.Cmd
	exited  chan error
	logFile *os.File
}

// startRedisProc starts bin with args in dir and waits until a client with
// ready's options gets an answer to PING, for at most timeout. On failure the
// child is killed and the error carries the tail of its log.
func startRedisProc(bin, dir string, args []string, ready *redis.Options, timeout time.Duration) (*redisProc, error) {
	logPath := filepath.Join(dir, "redis.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("testenv: redis log: %w", err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	// Files, not pipes: exec starts no copying goroutines.
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("testenv: start redis-server: %w", err)
	}
	// The only goroutine per process: it reaps the child and ends when the
	// child exits, which stop and kill guarantee.
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if err := waitRedisReady(ready, exited, timeout); err != nil {
		_ = cmd.Process.Kill()
		<-exited
		_ = logFile.Close()
		tail, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf("testenv: redis-server at %s not ready: %w; log: %s", ready.Addr, err, lastBytes(tail, 2048))
	}
	return &redisProc{cmd: cmd, exited: exited, logFile: logFile}, nil
}

func waitRedisReady(ready *redis.Options, exited chan error, timeout time.Duration) error {
	o := *ready
	o.DialTimeout, o.MaxRetries = 200*time.Millisecond, -1
	c := redis.NewClient(&o)
	defer c.Close()
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		last = c.Ping(ctx).Err()
		cancel()
		if last == nil {
			return nil
		}
		select {
		case err := <-exited:
			// Hand the result back so the caller's receive does not block.
			exited <- err
			return fmt.Errorf("redis-server exited: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	return fmt.Errorf("timeout after %s: %w", timeout, last)
}

// stop shuts the process down (SIGTERM, then SIGKILL after 5s) and waits for
// it to exit.
func (p *redisProc) stop() {
	defer p.logFile.Close()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(5 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// kill sends SIGKILL, a crash with no shutdown work, and waits for the exit.
func (p *redisProc) kill() {
	defer p.logFile.Close()
	_ = p.cmd.Process.Kill()
	<-p.exited
}

// ErrNoRedisServer is returned by the harnesses that need a real
// redis-server (sentinel, cluster, TLS, ACL users) when none is found: they
// have no miniredis fallback.
var ErrNoRedisServer = errors.New("testenv: no redis-server binary")

// lookRedisServer finds binary ("" means "redis-server") in PATH.
func lookRedisServer(binary string) (string, error) {
	if binary == "" {
		binary = "redis-server"
	}
	bin, err := exec.LookPath(binary)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoRedisServer, err)
	}
	return bin, nil
}

// redisNode is one redis-server of a topology (sentinel or cluster): a fixed
// port and directory, and the arguments that start it. proc is nil while the
// node is down. The owner serialises access.
type redisNode struct {
	port  int
	dir   string
	args  []string
	ready redis.Options // what the readiness PING connects with
	proc  *redisProc
}

func (n *redisNode) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(n.port)) }

func (n *redisNode) start(bin string, timeout time.Duration) error {
	if n.proc != nil {
		return nil
	}
	ready := n.ready
	ready.Addr = n.addr()
	p, err := startRedisProc(bin, n.dir, n.args, &ready, timeout)
	if err != nil {
		return err
	}
	n.proc = p
	return nil
}

// kill SIGKILLs the node (a crash: no shutdown save) and waits for the exit.
func (n *redisNode) kill() {
	if n.proc != nil {
		n.proc.kill()
		n.proc = nil
	}
}

// serverArgs are the arguments every data node (not sentinel) starts with:
// loopback only, nothing on disk unless persist (append-only file,
// fsync always, so a SIGKILLed node restarts with every acknowledged write),
// and diskless full syncs without the 5s wait, so replicas catch up at once.
func serverArgs(port int, dir string, persist bool) []string {
	args := []string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--dir", dir,
		"--save", "",
		"--daemonize", "no",
		"--protected-mode", "yes",
		"--logfile", "",
		"--repl-diskless-sync", "yes",
		"--repl-diskless-sync-delay", "0",
	}
	if persist {
		return append(args, "--appendonly", "yes", "--appendfsync", "always")
	}
	return append(args, "--appendonly", "no")
}

// pollUntil calls check every 50ms until it returns nil or ctx ends; the
// error then names what and carries check's last error.
func pollUntil(ctx context.Context, what string, check func(context.Context) error) error {
	var last error
	for {
		c, cancel := context.WithTimeout(ctx, time.Second)
		last = check(c)
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("testenv: %s: %w (last: %v)", what, ctx.Err(), last)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
