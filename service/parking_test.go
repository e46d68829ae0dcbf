package service_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"hitship/config"
	"hitship/delivery/retry"
	"hitship/integrations/registry"
	"hitship/internal/testenv"
	"hitship/service"
	"hitship/sink"
)

// Parking tests (DESIGN §5): a failing customer is parked after cycle 1 and no
// longer holds the offset; a failing parking bucket holds it; the last attempt
// makes a dead letter that `hitship redeliver` sends again.

const parkBucket = "b-park"

// withParking returns cfg with the parking bucket on the S3 server itself (the
// operator's own bucket: full permissions, not behind the PutObject-only proxy).
func withParking(t *testing.T, e *env, cfg *config.Config) *config.Config {
	t.Helper()
	c := *cfg
	c.Parking = config.Parking{Bucket: parkBucket, Region: testenv.S3Region, Endpoint: e.s3.URL(), PathStyle: true, Prefix: "hitship/"}
	c.Parking.Credentials.AccessKeyID, c.Parking.Credentials.SecretAccessKeyEnv = "TESTACCESSKEY0002", testSecretEnv
	// The per-partition path with parking (a staging bucket would make it staged).
	perPartition := false
	c.Delivery.Staged = &perPartition
	if ps := c.Validate(config.WithKeyTemplate(func(s string) error { _, err := sink.ParseKeyTemplate(s); return err })); len(ps) > 0 {
		t.Fatal(config.AsError(ps))
	}
	return &c
}

// parkedKeys returns the keys of the parking bucket under prefix.
func parkedKeys(t *testing.T, e *env, prefix string) []string {
	t.Helper()
	objs, err := e.s3.Objects(context.Background(), parkBucket)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for k := range objs {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	return out
}

// TestParkingIsolation: integration B's bucket fails while integration A shares
// its partitions. A's objects land at once; after cycle 1 (~29 s) B's objects
// are parked and the committed offsets move past B's first records; after B's
// bucket heals the retry worker delivers them; every hit lands exactly once. In
// the variant where the parking bucket fails too, the offsets stay held until
// it heals, and nothing is lost.
func TestParkingIsolation(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel() // it mostly waits (windows, retries, restarts): overlap it with another
	tests := []struct {
		name        string
		parkingFail bool
		seed        int64
	}{
		{name: "B parked, then heals", seed: 21},
		{name: "parking bucket fails too", parkingFail: true, seed: 22},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const parts = 3
			a := integ("a", 1, "b-a", "ndjson")
			b := integ("b", 2, "b-b", "json")
			ins := []config.Integration{a, b}
			e := newEnv(t, parts, a.Bucket, b.Bucket, parkBucket)
			cfg := withParking(t, e, e.config(t, ins...))
			e.s3.FailBucket(b.Bucket, 503)
			if tt.parkingFail {
				e.s3.FailBucket(parkBucket, 503)
			}
			hits := produceHitsAt(t, e, tt.seed, spreadHits(600, []int64{1, 2}, parts, time.Date(2023, 6, 20, 6, 0, 0, 0, time.UTC), 10*time.Minute, 2, tt.seed))
			offs := recordOffsets(t, e)
			holdAt := map[int]int64{} // partition -> B's first record
			for _, h := range hits {
				if h.client == b.ClientID {
					if o, ok := holdAt[h.partition]; !ok || offs[h.id] < o {
						holdAt[h.partition] = offs[h.id]
					}
				}
			}
			if len(holdAt) != parts {
				t.Fatalf("test bug: B has records in %d partitions, want %d", len(holdAt), parts)
			}
			passed := func() bool {
				c := committedOffsets(t, e, cfg.Kafka.Group)
				for p, limit := range holdAt {
					if c[p] <= limit {
						return false
					}
				}
				return true
			}
			start := time.Now()
			e.startMember(t, "a", cfg)
			waitFor(t, 20*time.Second, "A's objects while B fails", func() bool { return allDelivered(t, e, hits, a) })
			t.Logf("A delivered after %s", time.Since(start).Round(time.Millisecond))
			if passed() {
				t.Fatal("offsets passed B's first records before cycle 1 ended")
			}
			if tt.parkingFail {
				// Cycle 1 ends at ~29 s; parking fails, so the offsets stay held.
				for time.Since(start) < 40*time.Second {
					if passed() {
						t.Fatal("offsets passed B's first records although parking fails")
					}
					time.Sleep(200 * time.Millisecond)
				}
				if n := len(parkedKeys(t, e, "")); n != 0 {
					t.Fatalf("failing parking bucket holds %d objects", n)
				}
				e.s3.HealBucket(parkBucket)
			}
			waitFor(t, 60*time.Second, "offsets past B's first records (B parked)", passed)
			t.Logf("offsets passed B after %s", time.Since(start).Round(time.Millisecond))
			if !tt.parkingFail && time.Since(start) < 28*time.Second {
				t.Errorf("offsets passed after %s, before cycle 1 (29 s) ended", time.Since(start))
			}
			if n := len(parkedKeys(t, e, "hitship/parked/b/")); n == 0 {
				t.Fatal("no object parked under hitship/parked/b/")
			}
			if objs := objectBytes(t, e, b.Bucket); len(objs) > 0 {
				t.Fatalf("failing bucket holds %d objects", len(objs))
			}
			e.s3.HealBucket(b.Bucket)
			waitFor(t, 60*time.Second, "B's parked objects delivered by the retry worker", func() bool {
				return allDelivered(t, e, hits, b) && len(parkedKeys(t, e, "")) == 0
			})
			waitFor(t, 20*time.Second, "offsets committed to the end", func() bool { return e.committedToEnd(t, cfg.Kafka.Group) })
			checkExactlyOnce(t, e, hits, ins)
			assertPutObjectOnly(t, e.proxy) // retries and parking included
		})
	}
}

// TestDeadLetterRedeliver: an entry at the last position of the schedule (3/6)
// whose customer still fails becomes a dead letter: its object moves to the
// dead-letter prefix and a dead_letter event is written. `hitship redeliver`
// queues it again (its object stays under the dead-letter prefix) and, with
// the bucket fixed, it is delivered and the object deleted.
func TestDeadLetterRedeliver(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	const token = "admin-token-for-tests-0002"
	t.Setenv("HITSHIP_TEST_ADMIN_TOKEN", token)
	b := integ("b", 2, "b-b", "json")
	e := newEnv(t, 1, b.Bucket, parkBucket)
	base := e.config(t, b)
	base.HTTP.AdminTokenEnv = "HITSHIP_TEST_ADMIN_TOKEN"
	cfg := withParking(t, e, base)
	e.s3.FailBucket(b.Bucket, 403)
	ctx := t.Context()

	st, err := service.NewParkingStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	q, err := service.NewRetryQueue(cfg, e.redis.Client())
	if err != nil {
		t.Fatal(err)
	}
	key := "hits/wallarm_hits_1687240800_0_42.json"
	data := []byte("[\n{\"request_id\":\"x\"}\n]\n")
	pk := st.ParkedKey(b.Name, key)
	if err := st.Put(ctx, pk, sink.BytesBody(data), sink.PutOptions{ContentType: "application/json"}); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Enqueue(ctx, retry.Entry{ID: b.Name + "/" + key, Integration: b.Name, ParkedKey: pk, Key: key,
		Cycle: retry.Last.Cycle, Attempt: retry.Last.Attempt, Due: time.Now(), Records: 1}); err != nil {
		t.Fatal(err)
	}
	svc, sreg := startService(t, "a", cfg)
	var dead []retry.Entry
	waitFor(t, 30*time.Second, "the dead letter", func() bool {
		dead, err = q.DeadLetters(ctx, "", time.Time{})
		return err == nil && len(dead) == 1
	})
	deadKey := st.DeadKey(b.Name, key)
	if dead[0].ParkedKey != deadKey || dead[0].DeadReason == "" {
		t.Errorf("dead letter = %+v; want parked key %s and a reason", dead[0], deadKey)
	}
	if got := parkedKeys(t, e, ""); len(got) != 1 || got[0] != deadKey {
		t.Fatalf("parking bucket = %v; want only %s", got, deadKey)
	}
	if got := metricSum(t, sreg, "hitship_upload_attempts_total", "integration", b.Name, "result", "error"); got != 1 {
		t.Errorf("error attempts = %v; want 1", got)
	}
	reg, err := registry.New(e.redis.Client(), cfg.Redis.KeyPrefix, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := reg.Events(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ev := range evs {
		found = found || (ev.Type == service.DeadLetterEvent && ev.Integration == b.Name && ev.Reason != "")
	}
	if !found {
		t.Errorf("events = %+v; want a dead_letter event for %s", evs, b.Name)
	}
	// The admin API shows the ledger and the dead entry.
	api := httptest.NewServer(svc.Handler())
	t.Cleanup(api.Close)
	req, _ := http.NewRequest(http.MethodGet, api.URL+"/v1/integrations/b/retries", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var rv service.RetriesView
	err = json.NewDecoder(resp.Body).Decode(&rv)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET retries = %d, %v", resp.StatusCode, err)
	}
	if rv.Health.Attempts != 1 || rv.Health.Failures != 1 || rv.Health.Ratio != 1 || rv.Queue.Dead != 1 ||
		len(rv.Entries) != 1 || rv.Entries[0].State != retry.StateDead || rv.Entries[0].ParkedKey != deadKey {
		t.Errorf("retries view = %+v; want 1 failed attempt and the dead entry", rv)
	}

	// The customer fixed the bucket; the operator runs the real command.
	e.s3.HealBucket(b.Bucket)
	path := filepath.Join(t.TempDir(), "hitship.yaml")
	yml := string(configYAML(t, cfg)) + fmt.Sprintf("parking:\n  bucket: %s\n  region: %s\n  endpoint: %s\n  path_style: true\n  prefix: hitship/\n  credentials:\n    access_key_id: %s\n    secret_access_key_env: %s\n",
		parkBucket, testenv.S3Region, e.s3.URL(), cfg.Parking.Credentials.AccessKeyID, testSecretEnv)
	if err := os.WriteFile(path, []byte(yml), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		args    []string
		want    string
		wantErr bool
	}{
		// A name the config does not have is a typo, not "nothing to do".
		{"unknown integration: refused", []string{"--integration", "zzz"}, `no integration named "zzz"; the config file has: ` + b.Name, true},
		{"since later: nothing", []string{"--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}, "0 dead letter(s) queued", false},
		{"b since a day", []string{"--integration", b.Name, "--since", "24h"}, "1 dead letter(s) queued", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(hitshipBinary(t), append(append([]string{"redeliver"}, tc.args...), "--config", path)...)
			cmd.Env = append(os.Environ(), testSecretEnv+"="+e.secret)
			out, err := cmd.CombinedOutput()
			if (err != nil) != tc.wantErr || !strings.Contains(string(out), tc.want) {
				t.Fatalf("redeliver %v = %v\n%s\nwant %q (error %v)", tc.args, err, out, tc.want, tc.wantErr)
			}
		})
	}
	// The object stays where it is; the requeued entry points at it.
	if got := parkedKeys(t, e, ""); len(got) != 1 || got[0] != deadKey {
		t.Fatalf("parking bucket after redeliver = %v; want only %s", got, deadKey)
	}
	// The running replica's retry worker picks the requeued entry up.
	waitFor(t, 30*time.Second, "the redelivered object", func() bool {
		objs, err := e.s3.Objects(ctx, b.Bucket)
		return err == nil && bytes.Equal(objs[key], data) && len(parkedKeys(t, e, "")) == 0
	})
	st2, err := q.Stats(ctx, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if st2 != (retry.Stats{}) {
		t.Errorf("queue stats = %+v; want empty", st2)
	}
	assertPutObjectOnly(t, e.proxy) // cycle 3, dead letter and redeliver included
}

// TestDisabledStaysParked: the parked entries of a disabled integration stay
// parked (DESIGN §5): the retry workers postpone them without an attempt, so
// neither their schedule position nor the health ledger moves and nothing is
// sent. Enabling the integration through the admin API makes them due at once
// and the worker delivers them.
func TestDisabledStaysParked(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	const token = "admin-token-for-tests-0003"
	t.Setenv("HITSHIP_TEST_ADMIN_TOKEN", token)
	b := integ("b", 2, "b-b", "ndjson")
	e := newEnv(t, 1, b.Bucket, parkBucket)
	base := e.config(t, b)
	base.HTTP.AdminTokenEnv = "HITSHIP_TEST_ADMIN_TOKEN"
	cfg := withParking(t, e, base)
	ctx := t.Context()

	reg, err := registry.New(e.redis.Client(), cfg.Redis.KeyPrefix, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := reg.Disable(ctx, b.Name, "customer is moving buckets", "test"); err != nil {
		t.Fatal(err)
	}
	st, err := service.NewParkingStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	q, err := service.NewRetryQueue(cfg, e.redis.Client())
	if err != nil {
		t.Fatal(err)
	}
	at := retry.Position{Cycle: 2, Attempt: 3}
	want := map[string][]byte{}
	for i := range 3 {
		key := fmt.Sprintf("hits/wallarm_hits_1687240800_0_%d.jsonl", 100*i)
		data := []byte(fmt.Sprintf("{\"request_id\":\"r%d\"}\n", i))
		pk := st.ParkedKey(b.Name, key)
		if err := st.Put(ctx, pk, sink.BytesBody(data), sink.PutOptions{ContentType: "application/x-ndjson"}); err != nil {
			t.Fatal(err)
		}
		if _, err := q.Enqueue(ctx, retry.Entry{ID: b.Name + "/" + key, Integration: b.Name, ParkedKey: pk, Key: key,
			Cycle: at.Cycle, Attempt: at.Attempt, Due: time.Now(), Records: 1, LastError: "NoSuchBucket"}); err != nil {
			t.Fatal(err)
		}
		want[key] = data
	}
	svc, sreg := startService(t, "a", cfg)
	// The worker claims each entry and postpones it: its due time moves about
	// a minute ahead while its position and last error stay.
	start := time.Now()
	waitFor(t, 30*time.Second, "the disabled integration's entries postponed", func() bool {
		es, err := q.ListByIntegration(ctx, b.Name)
		if err != nil || len(es) != 3 {
			return false
		}
		for _, e := range es {
			if e.State != retry.StateScheduled || e.Due.Before(start.Add(30*time.Second)) {
				return false
			}
		}
		return true
	})
	es, err := q.ListByIntegration(ctx, b.Name)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		if e.Position() != at || e.LastError != "NoSuchBucket" {
			t.Fatalf("held entry %+v moved: want position %s and last error NoSuchBucket", e, at)
		}
	}
	if objs := objectBytes(t, e, b.Bucket); len(objs) != 0 {
		t.Fatalf("the disabled integration's bucket received %d objects", len(objs))
	}
	if n := len(parkedKeys(t, e, "hitship/parked/")); n != 3 {
		t.Fatalf("parked objects = %d; want 3 still parked", n)
	}
	for _, r := range []string{"ok", "error"} {
		if got := metricSum(t, sreg, "hitship_upload_attempts_total", "integration", b.Name, "result", r); got != 0 {
			t.Fatalf("%v %s attempts while disabled; want none", got, r)
		}
	}

	enableViaAdmin(t, svc, token, b.Name)
	enabled := time.Now()
	// Well before the one-minute hold ends: the enable woke them.
	waitFor(t, 20*time.Second, "the parked objects delivered after enable", func() bool {
		objs := objectBytes(t, e, b.Bucket)
		for k, d := range want {
			if !bytes.Equal(objs[b.Bucket+"/"+k], d) {
				return false
			}
		}
		return len(objs) == len(want) && len(parkedKeys(t, e, "")) == 0
	})
	t.Logf("delivered %s after enable", time.Since(enabled).Round(time.Millisecond))
	if s, err := q.Stats(ctx, time.Now()); err != nil || s != (retry.Stats{}) {
		t.Fatalf("queue after delivery = %+v, %v; want empty", s, err)
	}
	assertPutObjectOnly(t, e.proxy)
}

// enableViaAdmin enables integration name through svc's admin API, as an
// operator would, and fails the test unless it answers 200.
func enableViaAdmin(t *testing.T, svc *service.Service, token, name string) {
	t.Helper()
	api := httptest.NewServer(svc.Handler())
	defer api.Close()
	req, _ := http.NewRequest(http.MethodPost, api.URL+"/v1/integrations/"+name+"/enable", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("enable %s: %d", name, resp.StatusCode)
	}
}
