package service_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSIGHUP: the real binary reloads its config file on SIGHUP; a broken file is
// refused whole with its problems logged and the running config goes on; a good
// one adds an integration without a restart.
func TestSIGHUP(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel() // it mostly waits (windows, retries, restarts): overlap it with another
	e := newEnv(t, 2, "b-one", "b-two")
	one := integ("one", 1, "b-one", "ndjson")
	cfg := e.config(t, one)
	cfg.Log.Level = "info" // to see "config reloaded"
	// Windows near the wall clock: hits after the first batch's idle closes are
	// then on time, not late (late buffers wait for the next boundary).
	cfg.Window.Size, cfg.Window.Grace, cfg.Window.IdleTimeout = 10*time.Second, time.Second, time.Second
	dir := t.TempDir()
	path := filepath.Join(dir, "hitship.yaml")
	good := configYAML(t, cfg)
	if err := os.WriteFile(path, good, 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "out.log")
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(hitshipBinary(t), "run", "--config", path)
	cmd.Env = append(os.Environ(), testSecretEnv+"="+e.secret)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			t.Logf("process output:\n%s", b)
		}
	})
	logHas := func(s string) bool {
		b, _ := os.ReadFile(logPath)
		return strings.Contains(string(b), s)
	}

	e.produceHits(t, 200, []int64{1}, time.Now().Add(-30*time.Second), 10*time.Second, 1, 1)
	waitFor(t, 60*time.Second, "first hits committed", func() bool { return e.committedToEnd(t, cfg.Kafka.Group) })

	broken := strings.Replace(string(good), "integrations:\n", "colour: blue\nintegrations:\n", 1)
	if err := os.WriteFile(path, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the broken config refused and logged", func() bool {
		return logHas("config not reloaded") && logHas("colour")
	})

	two := integ("two", 2, "b-two", "json")
	cfg2 := e.config(t, one, two)
	cfg2.Spool.Dir, cfg2.Log.Level, cfg2.Window = cfg.Spool.Dir, cfg.Log.Level, cfg.Window
	if err := os.WriteFile(path, configYAML(t, cfg2), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the good config reloaded", func() bool { return logHas("config reloaded") })
	hits := e.produceHits(t, 200, []int64{1, 2}, time.Now().Add(5*time.Second), 10*time.Second, 1, 2)
	waitFor(t, 60*time.Second, "hits of the added integration delivered", func() bool {
		n := 0
		for _, o := range e.objects(t, "b-two") {
			n += len(o.records)
		}
		want := 0
		for _, h := range hits {
			if h.client == 2 {
				want++
			}
		}
		return n == want
	})
	select {
	case err := <-exited:
		t.Fatalf("the process exited: %v", err)
	default:
	}
}
