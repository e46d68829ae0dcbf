package service_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"hitship/config"
)

// TestDeadLettersNotRepeatedOnReplay: bad records acknowledged by the
// dead-letter topic are recorded in Redis, so a replay of their offsets by the
// next owner (the first member stopped while a failing bucket held the
// partition's offset before them) does not send them again.
func TestDeadLettersNotRepeatedOnReplay(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	in := integ("a", 1, "b-a", "ndjson")
	e := newEnv(t, 1, in.Bucket)
	cfg := e.config(t, in)
	e.s3.FailBucket(in.Bucket, 503)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// A good hit first: its object holds the offset while the bucket fails;
	// then bad records, then more good hits.
	hits := produceHitsAt(t, e, 71, []hitAt{{client: 1, ts: time.Date(2023, 6, 20, 6, 0, 0, 0, time.UTC).Unix()}})
	var bad []kafka.Message
	for i := range 5 {
		bad = append(bad, kafka.Message{Value: []byte("not json " + strconv.Itoa(i)), Time: time.Now(),
			Headers: []kafka.Header{{Key: "client_id", Value: []byte("1")}}})
	}
	if err := e.kafka.Produce(ctx, e.topic, bad); err != nil {
		t.Fatal(err)
	}
	hits = append(hits, produceHitsAt(t, e, 72, spreadHits(20, []int64{1}, 1, time.Date(2023, 6, 20, 6, 0, 0, 0, time.UTC), 10*time.Minute, 1, 72))...)
	dlqLen := func() int {
		msgs, err := e.kafka.ReadAll(ctx, e.dlq)
		if err != nil {
			t.Fatal(err)
		}
		return len(msgs)
	}

	m := e.startMember(t, "first", cfg)
	waitFor(t, 30*time.Second, "the bad records dead-lettered", func() bool { return dlqLen() == 5 })
	if c := committedOffsets(t, e, cfg.Kafka.Group); c[0] > 0 {
		t.Fatalf("committed %d past the undelivered first record", c[0])
	}
	m.stop(t)

	e.s3.HealBucket(in.Bucket)
	e.startMember(t, "second", cfg)
	waitFor(t, 60*time.Second, "the replay committed to the end", func() bool { return e.committedToEnd(t, cfg.Kafka.Group) })
	if n := dlqLen(); n != 5 {
		t.Fatalf("dead-letter topic holds %d records after the replay; want the 5 bad records once", n)
	}
	checkExactlyOnce(t, e, hits, []config.Integration{in})
}
