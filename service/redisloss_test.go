package service_test

import (
	"bytes"
	"testing"
	"time"

	"hitship/delivery"
	"hitship/delivery/retry"
	"hitship/service"
	"hitship/sink"
)

// TestRedisLossParkedObject (issue #11, also-found): Redis loses a parked
// object's retry entry (FLUSHALL). The replica's scanner finds the object in
// the parking bucket, makes the entry again from its metadata and the object
// is delivered. Before the fix nothing looked at parked/: the object stayed
// there, never delivered.
func TestRedisLossParkedObject(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	b := integ("b", 2, "b-b", "json")
	e := newEnv(t, 1, b.Bucket, parkBucket)
	cfg := withParking(t, e, e.config(t, b))
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
	data := []byte("[\n{\"request_id\":\"p\"}\n]\n")
	en := retry.Entry{ID: b.Name + "/" + key, Integration: b.Name, ParkedKey: st.ParkedKey(b.Name, key), Key: key,
		Cycle: 3, Attempt: 2, Due: time.Now(), Topic: "hits", Partition: 0, WindowStart: 1687240800000, FirstOffset: 42,
		Records: 1, Bytes: int64(len(data)), ContentType: "application/json", Enqueued: time.Now()}
	// As the delivery parks: the object with the entry's fields, then the entry.
	if err := st.Put(ctx, en.ParkedKey, sink.BytesBody(data), sink.PutOptions{ContentType: "application/json", Metadata: en.Metadata()}); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Enqueue(ctx, en); err != nil {
		t.Fatal(err)
	}
	if err := e.redis.Client().FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	_, sreg := startService(t, "a", cfg)
	waitFor(t, 30*time.Second, "the parked object delivered after Redis lost its entry", func() bool {
		objs := objectBytes(t, e, b.Bucket)
		return bytes.Equal(objs[b.Bucket+"/"+key], data) && len(parkedKeys(t, e, "")) == 0
	})
	if got := metricSum(t, sreg, "hitship_retry_entries_restored_total", "integration", b.Name, "kind", "parked"); got != 1 {
		t.Errorf("hitship_retry_entries_restored_total{kind=parked} = %v; want 1", got)
	}
	waitFor(t, 10*time.Second, "the retry queue empty", func() bool {
		s, err := q.Stats(ctx, time.Now())
		return err == nil && s == (retry.Stats{})
	})
}

// TestRedisLossDeadLetter (issue #11, also-found): Redis loses a dead letter's
// record. `hitship redeliver` (delivery.Redeliver) still finds the object under
// the dead-letter prefix, gives it its record back and queues it; with the
// bucket fixed it is delivered. Before the fix redeliver found nothing.
func TestRedisLossDeadLetter(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	b := integ("b", 2, "b-b", "json")
	e := newEnv(t, 1, b.Bucket, parkBucket)
	cfg := withParking(t, e, e.config(t, b))
	ctx := t.Context()
	st, err := service.NewParkingStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	q, err := service.NewRetryQueue(cfg, e.redis.Client())
	if err != nil {
		t.Fatal(err)
	}
	key := "hits/wallarm_hits_1687240800_0_7.json"
	data := []byte("[\n{\"request_id\":\"d\"}\n]\n")
	dead := st.DeadKey(b.Name, key)
	en := retry.Entry{ID: b.Name + "/" + key, Integration: b.Name, ParkedKey: st.ParkedKey(b.Name, key), Key: key,
		Cycle: 2, Attempt: 1, Due: time.Now(), Topic: "hits", FirstOffset: 7, Records: 1, Enqueued: time.Now()}
	// A dead letter's object (the server-side copy keeps the metadata) and,
	// after FLUSHALL, no record of it.
	if err := st.Put(ctx, dead, sink.BytesBody(data), sink.PutOptions{ContentType: "application/json", Metadata: en.Metadata()}); err != nil {
		t.Fatal(err)
	}
	if err := e.redis.Client().FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	n, err := delivery.Redeliver(ctx, st, q, b.Name, time.Now().Add(-24*time.Hour), time.Now())
	if err != nil || n != 1 {
		t.Fatalf("Redeliver = %d, %v; want the dead letter whose record was lost", n, err)
	}
	es, err := q.ListByIntegration(ctx, b.Name)
	if err != nil || len(es) != 1 || es[0].ParkedKey != dead || es[0].FirstOffset != 7 || es[0].State != retry.StateScheduled {
		t.Fatalf("entries after redeliver = %+v, %v; want one scheduled entry on %s", es, err, dead)
	}
	startService(t, "a", cfg)
	waitFor(t, 30*time.Second, "the redelivered object", func() bool {
		objs := objectBytes(t, e, b.Bucket)
		return bytes.Equal(objs[b.Bucket+"/"+key], data) && len(parkedKeys(t, e, "")) == 0
	})
}
