package retry_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials"

	"hitship/delivery/parking"
	"hitship/delivery/retry"
	"hitship/internal/testenv"
	"hitship/sink"
)

// bucket adapts the real parking store (on gofakes3) to retry.ScanBucket, as
// the service does.
type bucket struct{ st *parking.Store }

func (b bucket) List(ctx context.Context, prefix string, fn func([]string) error) error {
	return b.st.List(ctx, prefix, fn)
}

func (b bucket) Head(ctx context.Context, key string) (retry.ObjectInfo, bool, error) {
	i, ok, err := b.st.Head(ctx, key)
	return retry.ObjectInfo{ContentType: i.ContentType, Size: i.Size, Modified: i.Modified, Metadata: i.Metadata}, ok, err
}

// TestScanner: objects of the parking bucket whose entry is gone get it back
// (parked: due at once at 2/1 with the fields of their metadata; dead: a dead
// letter); objects with an entry, or whose entry was just completed, are left
// alone; one replica scans at a time.
func TestScanner(t *testing.T) {
	ctx := t.Context()
	s3 := testenv.MustS3(t, testenv.S3Options{Buckets: []string{"park"}})
	st, err := parking.New(parking.Config{Bucket: "park", Region: testenv.S3Region, Endpoint: s3.URL(), PathStyle: true,
		Prefix: "hitship/", Credentials: credentials.NewStaticCredentialsProvider(testenv.S3AccessKey, testenv.S3SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	r := testenv.MustRedis(t, testenv.RedisOptions{})
	q, err := retry.NewQueue(r.Client(), retry.QueueConfig{Prefix: "test:"})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	put := func(key string, meta map[string]string) {
		t.Helper()
		if err := st.Put(ctx, key, sink.BytesBody("[\n{}\n]\n"), sink.PutOptions{ContentType: "application/json", Metadata: meta}); err != nil {
			t.Fatal(err)
		}
	}
	mk := func(key string, p retry.Position) retry.Entry {
		return retry.Entry{ID: "acme/" + key, Integration: "acme", Target: "acme:7:00000000deadbeef", ParkedKey: st.ParkedKey("acme", key), Key: key,
			Cycle: p.Cycle, Attempt: p.Attempt, Due: now, Topic: "hits", Partition: 3, WindowStart: 1687240800000,
			FirstOffset: 42, Records: 7, Bytes: 7, ContentType: "application/json", Enqueued: now.Add(-time.Hour).Truncate(time.Millisecond)}
	}
	lost := mk("hits/lost.json", retry.Position{Cycle: 3, Attempt: 4})
	put(lost.ParkedKey, lost.Metadata())
	kept := mk("hits/kept.json", retry.Position{Cycle: 3, Attempt: 2})
	put(kept.ParkedKey, kept.Metadata())
	if _, err := q.Enqueue(ctx, kept); err != nil {
		t.Fatal(err)
	}
	done := mk("hits/done.json", retry.Requeued)
	put(done.ParkedKey, done.Metadata())
	if _, err := q.Enqueue(ctx, done); err != nil {
		t.Fatal(err)
	}
	cs, err := q.Claim(ctx, now.Add(time.Second), time.Minute, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.ID == done.ID {
			if err := q.Complete(ctx, c); err != nil { // delivered; its parked copy is not deleted yet
				t.Fatal(err)
			}
		} else if err := q.Postpone(ctx, c, now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	legacy := st.ParkedKey("acme", "hits/legacy.json")
	put(legacy, nil)
	deadKey := st.DeadKey("acme", "hits/dead.json")
	put(deadKey, mk("hits/dead.json", retry.Requeued).Metadata())

	var restored []string
	sc, err := retry.NewScanner(retry.ScannerConfig{Queue: q, Bucket: bucket{st}, ParkedPrefix: st.ParkedPrefix(), DeadPrefix: st.DeadPrefix(),
		OnRestored: func(e retry.Entry, dead bool) { restored = append(restored, e.ID) }})
	if err != nil {
		t.Fatal(err)
	}
	res, ran, err := sc.Scan(ctx)
	if err != nil || !ran {
		t.Fatalf("Scan = %+v, %v, %v", res, ran, err)
	}
	if res != (retry.ScanResult{Parked: 4, Dead: 1, Requeued: 2, Revived: 1}) {
		t.Errorf("scan result %+v; want 4 parked (2 requeued) and 1 dead (revived)", res)
	}
	es, err := q.ListByIntegration(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]retry.Entry{}
	for _, e := range es {
		byID[e.ID] = e
	}
	if _, ok := byID[done.ID]; ok || len(byID) != 4 {
		t.Fatalf("entries %v; want kept, lost, legacy and dead (not the completed one)", byID)
	}
	if e := byID[kept.ID]; e.Position() != kept.Position() {
		t.Errorf("existing entry moved to %s", e.Position())
	}
	l := byID[lost.ID]
	if l.Position() != retry.Requeued || l.State != retry.StateScheduled || l.ParkedKey != lost.ParkedKey || l.Key != lost.Key ||
		l.Target != lost.Target || l.Topic != "hits" || l.Partition != 3 || l.WindowStart != lost.WindowStart || l.FirstOffset != 42 || l.Records != 7 ||
		!l.Enqueued.Equal(lost.Enqueued) || l.Due.After(time.Now()) {
		t.Errorf("restored entry %+v; want %+v at 2/1, due now", l, lost)
	}
	if g := byID["acme/hits/legacy.json"]; g.ParkedKey != legacy || g.Key != "hits/legacy.json" || g.State != retry.StateScheduled {
		t.Errorf("entry of an object without metadata: %+v", g)
	}
	if d := byID["acme/hits/dead.json"]; d.State != retry.StateDead || d.ParkedKey != deadKey || d.DeadReason != retry.RestoredReason || d.FirstOffset != 42 {
		t.Errorf("restored dead letter: %+v", d)
	}
	if len(restored) != 3 {
		t.Errorf("OnRestored for %v; want 3 entries", restored)
	}
	// Idempotent: nothing is missing any more.
	if res, _, err := sc.Scan(ctx); err != nil || res.Requeued+res.Revived != 0 {
		t.Errorf("second scan = %+v, %v; want nothing made", res, err)
	}
	// One scan at a time: a held lease makes another replica skip.
	if err := r.Client().Set(ctx, "test:{retry}:scan", "other-replica", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	if _, ran, err := sc.Scan(ctx); err != nil || ran {
		t.Errorf("Scan while another replica holds the lease: ran %v, %v; want skipped", ran, err)
	}
}
