package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
