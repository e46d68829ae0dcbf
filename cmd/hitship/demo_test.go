package main

import (
	"bytes"
	"context"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"hitship/internal/testenv"
)

// stampedWriter keeps what a command prints, with the time each line ended.
type stampedWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines []stampedLine
	part  []byte
}

type stampedLine struct {
	at   time.Time
	text string
}

func (w *stampedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	w.part = append(w.part, p...)
	for {
		i := bytes.IndexByte(w.part, '\n')
		if i < 0 {
			break
		}
		w.lines = append(w.lines, stampedLine{time.Now(), string(w.part[:i])})
		w.part = w.part[i+1:]
	}
	return len(p), nil
}

func (w *stampedWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// objectsAfter returns the object paths printed after t.
func (w *stampedWriter) objectsAfter(t time.Time) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for _, l := range w.lines {
		if p, ok := strings.CutPrefix(l.text, "    -> "); ok && l.at.After(t) {
			out = append(out, p)
		}
	}
	return out
}

// TestTwoDemosSideBySide: a second demo on the same directory, the same Redis and
// the same default metrics port runs beside the first, both deliver, and the first
// goes on delivering after the second stopped. Before, they shared the spool
// directory (the second deleted the first's spool files), the Redis keys (the
// second cleared the first's partition claims at start, and the first's workers
// stayed fenced: no object after that) and the object keys.
func TestTwoDemosSideBySide(t *testing.T) {
	if testing.Short() {
		t.Skip("two demos for 24 s")
	}
	dir := t.TempDir()
	rds := testenv.MustRedis(t, testenv.RedisOptions{})
	// One metrics port for both: the second finds it taken.
	port := freeAddr(t)
	args := func(d string) []string {
		return []string{"demo", "--dir", dir, "--window", "5s", "--grace", "1s", "--duration", d,
			"--rate", "200", "--listen", port, "--redis", rds.Addr()}
	}
	type result struct {
		code int
		out  *stampedWriter
		errs *stampedWriter
	}
	start := func(d string) (*stampedWriter, chan result) {
		out, errs := &stampedWriter{}, &stampedWriter{}
		done := make(chan result, 1)
		go func() { done <- result{run(args(d), out, errs), out, errs} }()
		return out, done
	}
	outA, doneA := start("24s")
	waitForText(t, outA, "Ctrl-C stops", 20*time.Second)
	outB, doneB := start("9s")
	b := <-doneB
	bStopped := time.Now()
	a := <-doneA
	for name, r := range map[string]result{"first": a, "second": b} {
		if r.code != 0 {
			t.Fatalf("%s demo exit %d; stdout:\n%s\nstderr:\n%s", name, r.code, r.out, r.errs)
		}
		if !strings.Contains(r.out.String(), "stopped cleanly;") {
			t.Errorf("%s demo did not stop cleanly; stdout:\n%s\nstderr:\n%s", name, r.out, r.errs)
		}
	}
	// The first demo goes on after the second stopped (each needs objects).
	afterB, ofB := outA.objectsAfter(bStopped), outB.objectsAfter(time.Time{})
	if len(afterB) == 0 || len(ofB) == 0 {
		t.Fatalf("objects: %d of the second demo, %d of the first after the second stopped; first demo's stdout:\n%s\nstderr:\n%s",
			len(ofB), len(afterB), outA, a.errs)
	}
	if !strings.Contains(outB.String(), "is busy") {
		t.Errorf("the second demo does not say the metrics port was busy:\n%s", outB)
	}
	runOf := func(out *stampedWriter) string {
		m := regexp.MustCompile(`(?m)^hitship demo, run (\S+)$`).FindStringSubmatch(out.String())
		if m == nil {
			t.Fatalf("no run id in:\n%s", out)
		}
		return m[1]
	}
	runA, runB := runOf(outA), runOf(outB)
	if runA == runB {
		t.Fatalf("both demos are run %s", runA)
	}
	check := func(name, run string, objs []string) {
		t.Helper()
		if len(objs) == 0 {
			t.Fatalf("the %s demo wrote no object", name)
		}
		for _, p := range objs {
			if !strings.Contains(filepath.ToSlash(p), "/wallarm/"+run+"/") {
				t.Errorf("%s demo: object %s is not under its run's prefix", name, p)
			}
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatalf("%s demo: %v", name, err)
			}
			checkObject(t, p, strings.TrimPrefix(filepath.Ext(p), "."), data)
		}
	}
	check("second", runB, ofB)
	check("first", runA, afterB)

	// Each run removed its spool directory and its Redis keys.
	if left, _ := os.ReadDir(filepath.Join(dir, "spool")); len(left) != 0 {
		t.Errorf("spool directories left: %v", left)
	}
	keys, err := rds.Client().Keys(context.Background(), "hitship-demo:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Errorf("Redis keys left by the demos: %v", keys)
	}
}

func waitForText(t *testing.T, w *stampedWriter, text string, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !strings.Contains(w.String(), text) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q within %s:\n%s", text, within, w)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freeAddr returns a 127.0.0.1 address with a port free at the time of the call.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}
