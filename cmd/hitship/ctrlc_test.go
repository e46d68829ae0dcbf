package main

import (
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDemoStopsCleanlyOnSignal: the demo binary exits 0 after a clean stop on
// SIGTERM and on SIGINT, and Ctrl-C on `make run` (SIGINT to the whole
// foreground process group, as a terminal sends it) ends without make
// reporting an error. Before, `make run` was `go run`, which turned the
// demo's clean stop into "make: *** [Makefile:..: run] Interrupt" (or Error 1).
func TestDemoStopsCleanlyOnSignal(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the demo three times")
	}
	bin := madeBinary(t)
	demoFlags := func() []string {
		return []string{"--dir", t.TempDir(), "--redis", "memory", "--listen", "127.0.0.1:0", "--window", "5s", "--grace", "1s"}
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run("binary "+sig.String(), func(t *testing.T) {
			p := startBinary(t, bin, nil, append([]string{"demo"}, demoFlags()...)...)
			waitFor(t, 30*time.Second, "the demo running", func() bool { return strings.Contains(p.stdout.String(), "Ctrl-C stops") })
			p.signal(t, sig)
			if code := p.wait(t, 40*time.Second); code != 0 {
				t.Fatalf("exit code %d after %s, want 0", code, sig)
			}
			if !strings.Contains(p.stdout.String(), "stopped cleanly;") {
				t.Fatalf("no clean stop reported:\n%s", p.stdout)
			}
		})
	}

	t.Run("make run and Ctrl-C", func(t *testing.T) {
		if _, err := exec.LookPath("make"); err != nil {
			t.Skip("make is not installed")
		}
		// A process started with SIGINT ignored (a background job) would pass
		// that on to make: handle it here, so children start with the default.
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, os.Interrupt)
		defer signal.Stop(sigs)
		var out syncBuffer
		cmd := exec.Command("make", "-s", "run", "BIN="+t.TempDir(), "DEMO_FLAGS="+strings.Join(demoFlags(), " "))
		cmd.Dir = repoRoot(t)
		cmd.Stdout, cmd.Stderr = &out, &out
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its own foreground group, as in a terminal
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		defer func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}()
		waitFor(t, 90*time.Second, "the demo running under make", func() bool { return strings.Contains(out.String(), "Ctrl-C stops") })
		if err := syscall.Kill(-cmd.Process.Pid, syscall.SIGINT); err != nil {
			t.Fatal(err)
		}
		select {
		case <-done:
		case <-time.After(40 * time.Second):
			t.Fatalf("make run did not end within 40 s of Ctrl-C:\n%s", out.String())
		}
		if !strings.Contains(out.String(), "stopped cleanly;") {
			t.Errorf("the demo did not stop cleanly:\n%s", out.String())
		}
		if strings.Contains(out.String(), "make: ***") {
			t.Errorf("make reports an error after Ctrl-C:\n%s", out.String())
		}
	})
}
