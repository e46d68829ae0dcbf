package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// Credentials versitygw is started with; unlike gofakes3 it checks SigV4
// signatures.
const (
	VersitygwAccessKey = "AKIAHITSHIPTEST1"
	VersitygwSecretKey = "hitship-test-secret"
)

// ErrNoVersitygw is returned by StartVersitygw when no versitygw binary is
// found.
var ErrNoVersitygw = errors.New("versitygw not found ($HITSHIP_VERSITYGW, bin/versitygw of the module, PATH, $(go env GOPATH)/bin); `make tools` builds it")

// FindVersitygw returns the path of a versitygw binary, or "".
func FindVersitygw() string {
	if p := os.Getenv("HITSHIP_VERSITYGW"); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if _, file, _, ok := runtime.Caller(0); ok {
		p := filepath.Join(filepath.Dir(file), "..", "..", "bin", "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// Versitygw is a versitygw S3 gateway (posix backend in a temporary
// directory) on 127.0.0.1:random, path-style, plain HTTP.
type Versitygw struct {
	url    string
	dir    string
	cancel context.CancelFunc
	done   chan struct{}
	logs   *bytes.Buffer
	once   sync.Once
}

// StartVersitygw starts versitygw with buckets. The caller must Close it.
func StartVersitygw(buckets ...string) (*Versitygw, error) {
	bin := FindVersitygw()
	if bin == "" {
		return nil, ErrNoVersitygw
	}
	root, err := os.MkdirTemp("", "hitship-versitygw")
	if err != nil {
		return nil, fmt.Errorf("testenv: versitygw dir: %w", err)
	}
	for _, b := range buckets {
		if err := os.Mkdir(filepath.Join(root, b), 0o755); err != nil {
			_ = os.RemoveAll(root)
			return nil, fmt.Errorf("testenv: versitygw bucket %q: %w", b, err)
		}
	}
	port, err := freePort()
	if err != nil {
		_ = os.RemoveAll(root)
		return nil, err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--access", VersitygwAccessKey, "--secret", VersitygwSecretKey, "--port", addr, "--quiet", "posix", root)
	v := &Versitygw{url: "http://" + addr, dir: root, cancel: cancel, done: make(chan struct{}), logs: &bytes.Buffer{}}
	cmd.Stdout, cmd.Stderr = v.logs, v.logs
	if err := cmd.Start(); err != nil {
		cancel()
		_ = os.RemoveAll(root)
		return nil, fmt.Errorf("testenv: starting versitygw: %w", err)
	}
	go func() { _ = cmd.Wait(); close(v.done) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			_ = c.Close()
			return v, nil
		}
		select {
		case <-v.done:
			_ = v.Close()
			return nil, fmt.Errorf("testenv: versitygw exited: %s", v.logs.String())
		default:
		}
		if time.Now().After(deadline) {
			_ = v.Close()
			return nil, fmt.Errorf("testenv: versitygw did not listen on %s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// URL returns the endpoint, e.g. http://127.0.0.1:41234.
func (v *Versitygw) URL() string { return v.url }

// Close stops the gateway and removes its directory. Safe to call twice.
func (v *Versitygw) Close() error {
	v.once.Do(func() {
		v.cancel()
		<-v.done
		_ = os.RemoveAll(v.dir)
	})
	return nil
}

// MustVersitygw starts versitygw for t and closes it in t.Cleanup. When no
// binary is found the test is skipped with the reason, except under CI=true,
// where it fails: CI builds the binary (`make tools`).
func MustVersitygw(t testing.TB, buckets ...string) *Versitygw {
	t.Helper()
	v, err := StartVersitygw(buckets...)
	if errors.Is(err, ErrNoVersitygw) {
		if os.Getenv("CI") == "true" {
			t.Fatalf("testenv: %v (CI=true: the binary must be there)", err)
		}
		t.Skipf("testenv: %v", err)
	}
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() { _ = v.Close() })
	return v
}
