package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"hitship/delivery/parking"
	"hitship/delivery/retry"
	"hitship/health"
	"hitship/integrations/registry"
	"hitship/internal/testenv"
	"hitship/kstore"
	"hitship/sink"
)

// TestForgetCommand: `hitship forget` refuses an integration that is still
// in the config; for one that left it, it removes its runtime state (Redis
// and a tombstone in the integrations topic), ledger and inline-failure
// notes, turns its retry entries into dead letters and keeps its parked
// objects; with --purge it deletes those too.
func TestForgetCommand(t *testing.T) {
	k := testenv.MustKafka(t, testenv.KafkaOptions{})
	r := testenv.MustRedis(t, testenv.RedisOptions{})
	s3 := testenv.MustS3(t, testenv.S3Options{Buckets: []string{"park"}})
	t.Setenv("HITSHIP_TEST_SECRET", testenv.S3SecretKey)
	cfg := writeFile(t, "hitship.yaml", fmt.Sprintf(`kafka: {brokers: [%q]}
redis: {addr: %q}
spool: {dir: %q}
parking:
  bucket: park
  region: us-east-1
  endpoint: %q
  path_style: true
  credentials: {access_key_id: %s, secret_access_key_env: HITSHIP_TEST_SECRET}
integrations:
  - name: keep
    client_id: 1
    region: us-east-1
    bucket: keep-hits
    endpoint: %q
    path_style: true
    credentials: {access_key_id: TESTACCESSKEY0001, secret_access_key_env: HITSHIP_TEST_SECRET}
`, k.Addrs()[0], r.Addr(), t.TempDir(), s3.URL(), "TESTACCESSKEY0002", s3.URL()))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// What a replica left for "gone": an auto-disable in Redis and in the
	// topic, a ledger, a retry entry with its parked object, an inline note.
	kv, err := kstore.New(kstore.Config{Brokers: k.Addrs(), Topic: "hitship-integrations"})
	if err != nil {
		t.Fatal(err)
	}
	if err := kv.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer kv.Close()
	reg, err := registry.NewStore(r.Client(), registry.Config{Prefix: "hitship:", Now: time.Now, Durable: kv})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := reg.AutoDisable(ctx, "gone", "60% failed", "hitship-health"); err != nil {
		t.Fatal(err)
	}
	l, err := health.New(r.Client(), health.Config{Prefix: "hitship:", Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Record(ctx, "gone", health.FailCustomer, time.Now()); err != nil {
		t.Fatal(err)
	}
	q, err := retry.NewQueue(r.Client(), retry.QueueConfig{Prefix: "hitship:"})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := parking.New(parking.Config{Bucket: "park", Region: testenv.S3Region, Endpoint: s3.URL(), PathStyle: true, Prefix: "hitship/",
		Credentials: credentials.NewStaticCredentialsProvider(testenv.S3AccessKey, testenv.S3SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	const key = "wallarm_hits_1_0_0.json"
	if err := ps.Put(ctx, ps.ParkedKey("gone", key), sink.BytesBody([]byte("[\n]\n")), sink.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Enqueue(ctx, retry.Entry{ID: "gone/" + key, Integration: "gone", ParkedKey: ps.ParkedKey("gone", key), Key: key,
		Cycle: 2, Attempt: 3, Due: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if _, err := q.NoteInlineFailure(ctx, "gone/other.json", time.Now()); err != nil {
		t.Fatal(err)
	}

	if code, _, errOut := runCmd("forget", "--config", cfg, "keep"); code != 1 || !strings.Contains(errOut, "still in") {
		t.Fatalf("forget of a configured integration: exit %d, %s", code, errOut)
	}
	code, out, errOut := runCmd("forget", "--config", cfg, "gone")
	if code != 0 {
		t.Fatalf("forget: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	for _, want := range []string{"gone forgotten", "auto-disabled", "1 retry entries", "1 inline-failure notes",
		"kept: 1 dead letters, 1 parked", "delete_integration", "cli:"} {
		if !strings.Contains(out, want) {
			t.Errorf("output does not say %q:\n%s", want, out)
		}
	}
	if err := kv.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if e, found := kv.Lookup(registry.DurableKeyPrefix + "gone"); !found || !e.Deleted() {
		t.Errorf("topic entry = %+v, %v; want a tombstone", e, found)
	}
	if _, found, err := reg.Recorded(ctx, "gone"); err != nil || found {
		t.Errorf("state still recorded: %v, %v", found, err)
	}
	if a, _, _ := l.Ratio(ctx, "gone", time.Now()); a != 0 {
		t.Errorf("ledger holds %d attempts", a)
	}
	if _, ok, _ := q.InlineFailure(ctx, "gone/other.json"); ok {
		t.Error("inline-failure note still there")
	}
	if dead, err := q.DeadLetters(ctx, "gone", time.Time{}); err != nil || len(dead) != 1 {
		t.Errorf("dead letters = %+v, %v; want the retired entry", dead, err)
	}
	if p, _, err := ps.IntegrationObjects(ctx, "gone"); err != nil || len(p) != 1 {
		t.Errorf("parked objects = %v, %v; want kept", p, err)
	}

	code, out, errOut = runCmd("forget", "--config", cfg, "--purge", "gone")
	if code != 0 || !strings.Contains(out, "1 dead letters, 1 parked and 0 dead objects deleted") {
		t.Fatalf("forget --purge: exit %d\nstdout %s\nstderr %s", code, out, errOut)
	}
	if p, d, err := ps.IntegrationObjects(ctx, "gone"); err != nil || len(p)+len(d) != 0 {
		t.Errorf("objects after purge = %v %v, %v", p, d, err)
	}
	if es, err := q.ListByIntegration(ctx, "gone"); err != nil || len(es) != 0 {
		t.Errorf("entries after purge = %+v, %v", es, err)
	}
}
