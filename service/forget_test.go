package service_test

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"hitship/config"
	"hitship/delivery/retry"
	"hitship/health"
	"hitship/integrations/registry"
	"hitship/service"
	"hitship/sink"
)

// deleteAdmin sends DELETE path to svc's admin API and returns the status
// and the body.
func deleteAdmin(t *testing.T, svc *service.Service, token, path string) (int, string) {
	t.Helper()
	api := httptest.NewServer(svc.Handler())
	defer api.Close()
	req, _ := http.NewRequest(http.MethodDelete, api.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestForgetIntegration: an integration removed from the config leaves its
// runtime state, health ledger, retry entries, inline-failure notes and
// parked objects behind. The reload that removes it says so and names the
// command that deletes them; DELETE /v1/integrations/{name} is refused while
// it is configured, then removes everything but the objects (its waiting
// retry entries become dead letters, so hitship redeliver can still send
// them), records a delete_integration event, and with purge=true deletes the
// objects too. Re-added afterwards, the name starts fresh.
func TestForgetIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	const token = "admin-token-for-tests-0013"
	t.Setenv("HITSHIP_TEST_ADMIN_TOKEN", token)
	keep, gone := integ("keep", 1, "b-keep", "ndjson"), integ("gone", 2, "b-gone", "ndjson")
	e := newEnv(t, 2, keep.Bucket, gone.Bucket, parkBucket)
	mk := func(ins ...config.Integration) *config.Config {
		c := withParking(t, e, e.config(t, ins...))
		c.HTTP.AdminTokenEnv = "HITSHIP_TEST_ADMIN_TOKEN"
		if ps := c.Validate(); len(ps) > 0 {
			t.Fatal(config.AsError(ps))
		}
		return c
	}
	cfg := mk(keep, gone)
	logs := &lockedBuffer{}
	svc, sreg, _ := runServiceLog(t, "m", cfg, slog.NewJSONHandler(io.MultiWriter(logs, testWriter{t}), &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx := t.Context()
	// Running (the admin API is served from then on in production).
	waitFor(t, 30*time.Second, "the member owns both partitions", func() bool {
		return metricSum(t, sreg, "hitship_kafka_assigned_partitions") == 2
	})
	rdb := e.redis.Client()

	// What hitship keeps for gone: an operator's disable, a ledger, a retry
	// entry with its parked object, an inline-failure note.
	if c := postAdmin(t, svc, token, http.MethodPost, "/v1/integrations/gone/disable", `{"reason":"customer left"}`); c != http.StatusOK {
		t.Fatalf("disable: %d", c)
	}
	l, err := health.New(rdb, health.Config{Prefix: cfg.Redis.KeyPrefix})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Record(ctx, "gone", health.FailCustomer, time.Now()); err != nil {
		t.Fatal(err)
	}
	q, err := service.NewRetryQueue(cfg, rdb)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := service.NewParkingStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	const key = "hits/wallarm_hits_1_0_0.jsonl"
	if err := ps.Put(ctx, ps.ParkedKey("gone", key), sink.BytesBody([]byte("{}\n")), sink.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Enqueue(ctx, retry.Entry{ID: "gone/" + key, Integration: "gone", ParkedKey: ps.ParkedKey("gone", key), Key: key,
		Cycle: 3, Attempt: 1, Due: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := q.NoteInlineFailure(ctx, "gone/hits/other.jsonl", time.Now()); err != nil {
		t.Fatal(err)
	}

	if c, body := deleteAdmin(t, svc, token, "/v1/integrations/gone"); c != http.StatusConflict || !strings.Contains(body, "still configured") {
		t.Fatalf("DELETE of a configured integration: %d %s; want 409 still configured", c, body)
	}

	cfg2 := mk(keep)
	cfg2.Spool.Dir = cfg.Spool.Dir
	if err := svc.Reload(cfg2); err != nil {
		t.Fatal(err)
	}
	var line map[string]any
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Contains(l, "integration removed from the config") && strings.Contains(l, `"integration":"gone"`) {
			_ = json.Unmarshal([]byte(l), &line)
		}
	}
	if line == nil {
		t.Fatal("the reload that removed gone did not log what remains")
	}
	remains, _ := line["remains"].(map[string]any)
	if remains["state"] != "disabled" || remains["retry_entries"] != 1.0 || remains["parked_objects"] != 1.0 ||
		remains["inline_failure_notes"] != 1.0 || remains["ledger_attempts"] != 1.0 {
		t.Errorf("remains = %v", remains)
	}
	if cmd, _ := line["delete_with"].(string); !strings.Contains(cmd, "hitship forget --config FILE gone") {
		t.Errorf("delete_with = %q, want the forget command", cmd)
	}

	c, body := deleteAdmin(t, svc, token, "/v1/integrations/gone")
	if c != http.StatusOK {
		t.Fatalf("DELETE: %d %s", c, body)
	}
	var out service.Forgotten
	if err := json.Unmarshal([]byte(body), &out); err != nil {
		t.Fatal(err)
	}
	if out.Removed.State == nil || out.Removed.State.State != registry.Disabled || out.Removed.RetryEntries != 1 ||
		out.Kept.DeadLetters != 1 || out.Kept.ParkedObjects != 1 || out.Event.Type != registry.DeleteEventType {
		t.Errorf("answer = %s", body)
	}
	reg, err := registry.New(rdb, cfg.Redis.KeyPrefix, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if _, found, err := reg.Recorded(ctx, "gone"); err != nil || found {
		t.Errorf("runtime state still in Redis: %v, %v", found, err)
	}
	if _, ok := topicStates(t, e, cfg.Kafka.IntegrationsTopic)["gone"]; ok {
		t.Error("runtime state still in the integrations topic (no tombstone)")
	}
	if a, _, err := l.Ratio(ctx, "gone", time.Now()); err != nil || a != 0 {
		t.Errorf("ledger after forget: %d attempts, %v", a, err)
	}
	if _, ok, err := q.InlineFailure(ctx, "gone/hits/other.jsonl"); err != nil || ok {
		t.Errorf("inline-failure note still there: %v, %v", ok, err)
	}
	dead, err := q.DeadLetters(ctx, "gone", time.Time{})
	if err != nil || len(dead) != 1 {
		t.Errorf("dead letters of gone = %+v, %v; want its entry, kept for redeliver", dead, err)
	}
	if got := parkedKeys(t, e, "hitship/parked/gone/"); len(got) != 1 {
		t.Errorf("parked objects of gone = %v; want kept without purge", got)
	}
	evs, err := reg.Events(ctx, 1)
	if err != nil || len(evs) != 1 || evs[0].Type != registry.DeleteEventType || evs[0].Integration != "gone" ||
		!strings.HasPrefix(evs[0].By, "admin-api@") {
		t.Errorf("last event = %+v, %v; want delete_integration by the admin API", evs, err)
	}

	if c, body := deleteAdmin(t, svc, token, "/v1/integrations/gone?purge=true"); c != http.StatusOK {
		t.Fatalf("DELETE with purge: %d %s", c, body)
	}
	if es, err := q.ListByIntegration(ctx, "gone"); err != nil || len(es) != 0 {
		t.Errorf("entries after purge = %+v, %v", es, err)
	}
	if got := parkedKeys(t, e, "hitship/parked/gone/"); len(got) != 0 {
		t.Errorf("parked objects after purge = %v", got)
	}

	// Re-added, the name starts fresh.
	cfg3 := mk(keep, gone)
	cfg3.Spool.Dir = cfg.Spool.Dir
	if err := svc.Reload(cfg3); err != nil {
		t.Fatal(err)
	}
	if st, err := reg.Status(ctx, "gone"); err != nil || st.State != registry.Enabled {
		t.Errorf("re-added gone = %+v, %v; want enabled", st, err)
	}
}
