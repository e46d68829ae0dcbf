package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"hitship/delivery/retry"
	"hitship/health"
	"hitship/integrations/registry"
	"hitship/internal/testenv"
)

// TestStateCommands: `hitship disable`, `enable` and `status` change and show
// the runtime state in Redis as the admin API does: the registry's state and
// event, by cli:<user>@<host>, and on enable the admin API's hook (the health
// ledger reset, the parked entries due now). An unknown name exits 1 naming the
// configured ones. Before, only the admin API (off by default) could do this.
func TestStateCommands(t *testing.T) {
	rds := testenv.MustRedis(t, testenv.RedisOptions{})
	k := testenv.MustKafka(t, testenv.KafkaOptions{}) // the integrations topic: the state's durable copy
	t.Setenv("HITSHIP_STATETEST_SECRET", "state-test-secret")
	cfg := writeFile(t, "hitship.yaml", fmt.Sprintf(`kafka: {brokers: [%q]}
spool: {dir: %q}
redis: {addr: %q, key_prefix: "statetest:"}
parking:
  bucket: park-bucket
  region: us-east-1
  endpoint: "http://127.0.0.1:1"
  credentials: {access_key_id: TESTACCESSKEY0002, secret_access_key_env: HITSHIP_STATETEST_SECRET}
integrations:
  - name: acme
    client_id: 7
    region: us-east-1
    bucket: acme-hits
    credentials: {access_key_id: TESTACCESSKEY0001, secret_access_key_env: HITSHIP_STATETEST_SECRET}
  - name: globex
    client_id: 8
    region: us-east-1
    bucket: globex-hits
    credentials: {access_key_id: TESTACCESSKEY0001, secret_access_key_env: HITSHIP_STATETEST_SECRET}
`, k.Addrs()[0], t.TempDir(), rds.Addr()))
	ctx := context.Background()
	rdb := rds.Client()
	reg, err := registry.New(rdb, "statetest:", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	ledger, err := health.New(rdb, health.Config{Prefix: "statetest:"})
	if err != nil {
		t.Fatal(err)
	}
	q, err := retry.NewQueue(rdb, retry.QueueConfig{Prefix: "statetest:"})
	if err != nil {
		t.Fatal(err)
	}

	// acme failed a few times, and has a parked entry held for an hour (as the
	// retry workers postpone the entries of a disabled integration).
	now := time.Now()
	for i := range 5 {
		o := health.FailCustomer
		if i == 0 {
			o = health.Success
		}
		if _, err := ledger.Record(ctx, "acme", o, now); err != nil {
			t.Fatal(err)
		}
	}
	e := retry.Entry{ID: "acme/k1", Integration: "acme", ParkedKey: "hitship/parked/acme/k1", Key: "k1", Cycle: 2, Attempt: 1,
		Due: now.Add(time.Hour), Enqueued: now}
	if _, err := q.Enqueue(ctx, e); err != nil {
		t.Fatal(err)
	}

	code, out, errs := runCmd("disable", "--config", cfg, "--reason", "customer asked", "acme")
	if code != 0 || !strings.Contains(out, "acme: disabled") {
		t.Fatalf("disable: exit %d\nstdout %s\nstderr %s", code, out, errs)
	}
	st, err := reg.Status(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if st.State != registry.Disabled || st.Reason != "customer asked" || !strings.HasPrefix(st.By, "cli:") {
		t.Fatalf("after disable: %+v", st)
	}
	evs, err := reg.Events(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].Integration != "acme" || evs[0].State != registry.Disabled || !strings.HasPrefix(evs[0].By, "cli:") {
		t.Fatalf("events after disable: %+v", evs)
	}
	// Flags after the name work too; a second disable changes nothing.
	if code, out, _ := runCmd("disable", "acme", "--config", cfg); code != 0 || !strings.Contains(out, "already disabled") {
		t.Fatalf("second disable: exit %d, %s", code, out)
	}

	code, out, errs = runCmd("status", "--config", cfg)
	if code != 0 || !strings.Contains(out, "customer asked") || !strings.Contains(out, "globex") {
		t.Fatalf("status: exit %d\nstdout %s\nstderr %s", code, out, errs)
	}
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 4 && f[0] == "acme" && (f[2] != "disabled" || f[3] != "5" || f[4] != "4") {
			t.Errorf("status line %q: want acme disabled with 5 attempts and 4 failures", l)
		}
	}

	code, out, errs = runCmd("enable", "--config", cfg, "acme")
	if code != 0 || !strings.Contains(out, "acme: enabled") || !strings.Contains(out, "1 parked entries due now") {
		t.Fatalf("enable: exit %d\nstdout %s\nstderr %s", code, out, errs)
	}
	if st, _ := reg.Status(ctx, "acme"); st.State != registry.Enabled || !strings.HasPrefix(st.By, "cli:") {
		t.Fatalf("after enable: %+v", st)
	}
	if att, _, err := ledger.Ratio(ctx, "acme", time.Now()); err != nil || att != 0 {
		t.Fatalf("the ledger was not reset: %d attempts, %v", att, err)
	}
	claimed, err := q.Claim(ctx, time.Now(), time.Minute, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(claimed) != 1 || claimed[0].ID != e.ID {
		t.Fatalf("the parked entry is not due after enable: %+v", claimed)
	}

	for _, cmd := range []string{"enable", "disable", "status"} {
		code, out, errs := runCmd(cmd, "--config", cfg, "acme-json")
		if code != 1 || !strings.Contains(errs, `"acme-json"`) || !strings.Contains(errs, "acme, globex") {
			t.Errorf("%s of an unknown name: exit %d, stdout %q, stderr %q; want 1 naming the configured ones", cmd, code, out, errs)
		}
	}
	if n, _ := rdb.XLen(ctx, reg.EventsKey()).Result(); n != 2 {
		t.Errorf("%d events, want 2 (one disable, one enable)", n)
	}
}
