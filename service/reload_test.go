package service_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"hitship/config"
)

// TestReload: integrations added, changed and removed under load take effect
// without a restart; nothing is lost for the unchanged one; a config that changes
// what cannot change at runtime is refused whole and the old one keeps running.
func TestReload(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel() // it mostly waits (windows, retries, restarts): overlap it with another
	e := newEnv(t, 3, "b-keep", "b-change", "b-change-new", "b-remove", "b-add")
	keep, change, remove := integ("keep", 1, "b-keep", "ndjson"), integ("change", 2, "b-change", "json"), integ("remove", 3, "b-remove", "ndjson")
	cfg1 := e.config(t, keep, change, remove)
	changed := change
	changed.Bucket = "b-change-new"
	cfg2 := e.config(t, keep, changed, integ("add", 4, "b-add", "ndjson"))
	cfg2.Spool.Dir = cfg1.Spool.Dir
	// Short windows near the wall clock: after the first batch the idle closes move
	// the watermark to now, so the second batch must lie after it (or it is late and
	// waits for the next boundary, by design).
	for _, c := range []*config.Config{cfg1, cfg2} {
		c.Window.Size, c.Window.Grace, c.Window.IdleTimeout = 10*time.Second, time.Second, time.Second
	}

	svc, _ := startService(t, "a", cfg1)

	clients := []int64{1, 2, 3, 4}
	before := e.produceHits(t, 2000, clients, time.Now().Add(-40*time.Second), 10*time.Second, 2, 1)
	waitFor(t, 60*time.Second, "the first batch read and committed", func() bool {
		ok := e.committedToEnd(t, cfg1.Kafka.Group)
		if !ok {
			c, _ := e.kafka.Committed(context.Background(), cfg1.Kafka.Group, e.topic)
			hw, _ := e.kafka.HighWater(context.Background(), e.topic)
			t.Logf("committed %v high water %v", c, hw)
		}
		return ok
	})

	// Refused: kafka settings cannot change at runtime; an integration whose store
	// cannot be built refuses the whole reload.
	bad := *cfg1
	bad.Kafka.Topic = "other"
	if err := svc.Reload(&bad); err == nil || !strings.Contains(err.Error(), "kafka") {
		t.Fatalf("reload changing kafka: %v, want refused naming kafka", err)
	}
	broken := *cfg1
	broken.Integrations = append([]config.Integration(nil), cfg1.Integrations...)
	broken.Integrations[0].Credentials.AccessKeyID = ""
	broken.Integrations[0].Credentials.SecretAccessKeyEnv = ""
	if err := svc.Reload(&broken); err == nil {
		t.Fatal("reload with an integration without credentials was accepted")
	}

	// Under load: the second batch is produced while the reload happens.
	loadDone := make(chan []sent, 1)
	duringAt := time.Now()
	go func() { loadDone <- e.produceHits(t, 2000, clients, duringAt, 10*time.Second, 1, 2) }()
	time.Sleep(50 * time.Millisecond)
	if err := svc.Reload(cfg2); err != nil {
		t.Fatalf("reload: %v", err)
	}
	during := <-loadDone
	// After the reload: the new settings apply to new windows.
	time.Sleep(2 * time.Second)
	// In a window after every window the second batch may have opened (those
	// were opened with the old settings and keep them).
	after := e.produceHits(t, 1000, clients, duringAt.Truncate(10*time.Second).Add(20*time.Second), 10*time.Second, 1, 3)
	waitFor(t, 60*time.Second, "everything committed", func() bool {
		ok := e.committedToEnd(t, cfg1.Kafka.Group)
		if !ok {
			c, _ := e.kafka.Committed(context.Background(), cfg1.Kafka.Group, e.topic)
			hw, _ := e.kafka.HighWater(context.Background(), e.topic)
			t.Logf("committed %v high water %v", c, hw)
		}
		return ok
	})

	idRE := regexp.MustCompile(`"request_id":"([0-9a-f]+)"`)
	where := map[string][]string{} // request id -> buckets
	for _, o := range e.objects(t, "b-keep", "b-change", "b-change-new", "b-remove", "b-add") {
		for _, r := range o.records {
			id := idRE.FindSubmatch(r)
			where[string(id[1])] = append(where[string(id[1])], o.bucket)
		}
	}
	check := func(h sent, allowed ...string) {
		t.Helper()
		got := where[h.id]
		if len(got) != 1 {
			t.Fatalf("hit %s of client %d is in %v, want exactly one of %v", h.id, h.client, got, allowed)
		}
		for _, a := range allowed {
			if got[0] == a {
				return
			}
		}
		t.Fatalf("hit %s of client %d is in %s, want one of %v", h.id, h.client, got[0], allowed)
	}
	for _, h := range before {
		switch h.client {
		case 1:
			check(h, "b-keep")
		case 2:
			check(h, "b-change")
		case 3:
			check(h, "b-remove")
		case 4:
			if len(where[h.id]) != 0 {
				t.Fatalf("hit %s of client 4 delivered before its integration existed", h.id)
			}
		}
	}
	for _, h := range during {
		switch h.client {
		case 1:
			check(h, "b-keep") // unchanged: nothing lost, nothing doubled across the reload
		case 2:
			check(h, "b-change", "b-change-new") // open windows finish with the old settings
		case 3, 4: // read before or after the reload: skipped, or delivered once
			if got := where[h.id]; len(got) > 1 {
				t.Fatalf("hit %s of client %d written %d times", h.id, h.client, len(got))
			}
		}
	}
	for _, h := range after {
		switch h.client {
		case 1:
			check(h, "b-keep")
		case 2:
			check(h, "b-change-new")
		case 3:
			if got := where[h.id]; len(got) != 0 {
				t.Fatalf("hit %s of the removed integration written to %v", h.id, got)
			}
		case 4:
			check(h, "b-add")
		}
	}
	if n := len(e.objects(t, "b-change-new")); n == 0 {
		t.Fatal("the changed integration never wrote to its new bucket")
	}
}
