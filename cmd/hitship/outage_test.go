package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestRunLogsDuringOutage runs the real binary (built by `make build`) under
// traffic through a 10-s Redis outage and a 10-s Kafka cut: every line it writes
// to stderr is JSON, and no warning repeats more than twice per partition (the first, then at
// most one per 30 s with a count). Before, go-redis wrote its own plain-text
// lines ("redis: 2026/12/05 ... pool.go:770: ... failed to dial", about 35 in
// 4 s) into the JSON log, and "joining the consumer group failed" and kafka-go's
// "Unable to establish connection to consumer group coordinator" came about
// once a second for as long as the broker was away.
func TestRunLogsDuringOutage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the binary through two 10-s outages")
	}
	bin := madeBinary(t)
	e := newRunEnv(t)
	p := e.start(t, bin)
	g := startBinary(t, bin, nil, "gen", "--brokers", e.kafka.Addrs()[0], "--topic", "hits", "--rate", "200",
		"--tenants", "2", "--malformed", "0.01", "--retry-for", "2m")
	waitFor(t, 30*time.Second, "ready", func() bool { return strings.HasPrefix(get(e.listen, "/readyz"), "ready") })
	time.Sleep(2 * time.Second)

	if err := e.redis.Stop(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Second)
	if err := e.redis.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(3 * time.Second)
	e.kafka.Cut()
	time.Sleep(10 * time.Second)
	e.kafka.Restore()
	waitFor(t, 30*time.Second, "ready again", func() bool { return strings.HasPrefix(get(e.listen, "/readyz"), "ready") })

	g.signal(t, 2)
	p.signal(t, 2)
	if code := p.wait(t, 40*time.Second); code != 0 {
		t.Errorf("exit code %d after SIGINT, want 0", code)
	}
	warns := map[string]int{}
	for _, l := range lines(p.stderr.String()) {
		var m struct {
			Level, Msg string
		}
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Errorf("not a JSON line: %q", l)
			continue
		}
		if m.Level == "WARN" {
			warns[digitsAsHash(m.Msg)]++
		}
	}
	if len(warns) == 0 {
		t.Fatal("no warning at all: the outages were not seen")
	}
	for msg, n := range warns {
		if n > 4 {
			t.Errorf("%d WARN lines %q, want at most 4", n, msg)
		}
	}
}

// digitsAsHash replaces every run of digits by "#", as logx does for its key.
func digitsAsHash(s string) string {
	var b strings.Builder
	inRun := false
	for _, c := range s {
		if c >= '0' && c <= '9' {
			if !inRun {
				b.WriteByte('#')
			}
			inRun = true
			continue
		}
		inRun = false
		b.WriteRune(c)
	}
	return b.String()
}
