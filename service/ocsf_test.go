package service_test

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	pq "github.com/parquet-go/parquet-go"

	"hitship/config"
	"hitship/sink"
)

// TestStagedOCSF (issue #15): with staged delivery, an integration in format
// ocsf gets one NDJSON object per window of its tenant's hits as OCSF HTTP
// Activity records, and one in ocsf-json a JSON array of them, beside an
// ndjson integration of the same tenant that gets the hits as they came:
// every hit once in each, the OCSF records exactly the mapping of the hits
// (sink.AppendOCSF: package ocsf validates them against the OCSF 1.1.0
// schema), in (partition, offset) order, under keys with the format's
// extension.
func TestStagedOCSF(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel()
	const parts = 4
	e := newEnv(t, parts, "b-raw", "b-ocsf", "b-ocsf-json", parkBucket)
	raw := integ("raw", 1, "b-raw", config.FormatNDJSON)
	oc := integ("oc", 1, "b-ocsf", config.FormatOCSF)
	ocj := integ("ocj", 2, "b-ocsf-json", config.FormatOCSFJSON)
	cfg := e.config(t, raw)
	cfg.Integrations = append(cfg.Integrations, oc, ocj)
	cfg.Window.IdleTimeout = time.Second
	cfg = stagedConfig(t, e, cfg)
	base := time.Date(2023, 6, 20, 6, 0, 0, 0, time.UTC)
	hits := produceHitsAt(t, e, 61, spreadHits(600, []int64{1, 2}, parts, base, 10*time.Minute, 2, 61))
	e.startMember(t, "a", cfg)

	byClient := map[int64]int{}
	for _, h := range hits {
		byClient[h.client]++
	}
	records := func(bucket string) (map[string][]byte, []string) {
		recs := map[string][]byte{}
		var keys []string
		for _, o := range e.objects(t, bucket) {
			keys = append(keys, o.key)
			for _, r := range o.records {
				var v struct {
					Metadata  struct{ UID string } `json:"metadata"`
					RequestID string               `json:"request_id"`
				}
				if err := json.Unmarshal(r, &v); err != nil {
					t.Fatalf("%s/%s: %v", bucket, o.key, err)
				}
				id := v.RequestID + v.Metadata.UID
				if _, dup := recs[id]; dup {
					t.Fatalf("%s: hit %s twice", bucket, id)
				}
				recs[id] = r
			}
		}
		return recs, keys
	}
	waitFor(t, 90*time.Second, "every hit in each integration's bucket", func() bool {
		a, _ := records("b-raw")
		b, _ := records("b-ocsf")
		c, _ := records("b-ocsf-json")
		return len(a) == byClient[1] && len(b) == byClient[1] && len(c) == byClient[2]
	})
	for bucket, ext := range map[string]string{"b-raw": "jsonl", "b-ocsf": "jsonl", "b-ocsf-json": "json"} {
		recs, keys := records(bucket)
		for _, k := range keys {
			if !regexp.MustCompile(`^hits/wallarm_hits_\d+(_late_\d+)?\.` + ext + `$`).MatchString(k) {
				t.Errorf("%s: key %s", bucket, k)
			}
		}
		for _, h := range hits {
			want, in := h.value, (h.client == 1) == (bucket != "b-ocsf-json")
			if !in {
				continue
			}
			if bucket != "b-raw" {
				var err error
				if want, err = sink.AppendOCSF(nil, h.value); err != nil {
					t.Fatal(err)
				}
			}
			if got := recs[h.id]; !bytes.Equal(got, want) {
				t.Fatalf("%s: hit %s:\n got %s\nwant %s", bucket, h.id, got, want)
			}
		}
		for _, r := range recs {
			if bucket != "b-raw" && !strings.Contains(string(r), `"class_uid":4002`) {
				t.Fatalf("%s: not an OCSF HTTP Activity record: %s", bucket, r)
			}
		}
	}
}

// pqHit is the columns of a hit in format parquet this test reads back
// (sink/parquet HitSchema).
type pqHit struct {
	Time       *time.Time `parquet:"time,optional,timestamp(millisecond)"`
	RequestID  *string    `parquet:"request_id,optional"`
	StatusCode *int32     `parquet:"status_code,optional"`
	Tags       *string    `parquet:"tags,optional"`
}

// TestStagedParquet (issue #15): with staged delivery an integration in
// format parquet gets one Parquet file per window of its tenant's hits,
// read back by parquet-go's reader (the encoder's tests read with arrow-go):
// every hit once, typed, ordered by time, under keys ending .parquet; the
// test write's sample object is a Parquet file too.
func TestStagedParquet(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel()
	const parts = 4
	e := newEnv(t, parts, "b-pq", "b-other", parkBucket)
	cfg := e.config(t, integ("other", 2, "b-other", config.FormatNDJSON))
	cfg.Integrations = append(cfg.Integrations, integ("pq", 1, "b-pq", config.FormatParquet)) // validated with staged delivery on
	cfg.Window.IdleTimeout = time.Second
	cfg = stagedConfig(t, e, cfg)
	base := time.Date(2023, 6, 20, 6, 0, 0, 0, time.UTC)
	hits := produceHitsAt(t, e, 62, spreadHits(500, []int64{1, 2}, parts, base, 10*time.Minute, 2, 62))
	e.startMember(t, "a", cfg)
	want := map[string]sent{}
	for _, h := range hits {
		if h.client == 1 {
			want[h.id] = h
		}
	}
	read := func() (map[string]int, []string) {
		seen := map[string]int{}
		objs, err := e.s3.Objects(t.Context(), "b-pq")
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for k, data := range objs {
			keys = append(keys, k)
			rows, err := pq.Read[pqHit](bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			for i, r := range rows {
				if r.RequestID == nil || r.Time == nil || r.StatusCode == nil || *r.StatusCode != 499 || r.Tags == nil || *r.Tags != `{"lom_id":7}` {
					t.Fatalf("%s row %d: %+v", k, i, r)
				}
				if i > 0 && r.Time.Before(*rows[i-1].Time) {
					t.Fatalf("%s: row %d before row %d in time", k, i, i-1)
				}
				h, ok := want[*r.RequestID]
				if !ok {
					t.Fatalf("%s: hit %s is not the tenant's", k, *r.RequestID)
				}
				var v struct{ Time string }
				_ = json.Unmarshal(h.value, &v)
				if strconv.FormatInt(r.Time.Unix(), 10) != v.Time {
					t.Fatalf("%s: hit %s time %v, sent %s", k, *r.RequestID, r.Time, v.Time)
				}
				seen[*r.RequestID]++
			}
		}
		return seen, keys
	}
	waitFor(t, 90*time.Second, "every hit of the tenant in its Parquet files", func() bool {
		seen, _ := read()
		return len(seen) == len(want)
	})
	seen, keys := read()
	for id, n := range seen {
		if n != 1 {
			t.Errorf("hit %s in %d rows", id, n)
		}
	}
	for _, k := range keys {
		if !regexp.MustCompile(`^hits/wallarm_hits_\d+(_late_\d+)?\.parquet$`).MatchString(k) {
			t.Errorf("key %s", k)
		}
	}
	sample, err := sink.SampleObject(sink.FormatParquet, sink.CompressionNone)
	if err != nil {
		t.Fatal(err)
	}
	if rows, err := pq.Read[pqHit](bytes.NewReader(sample), int64(len(sample))); err != nil || len(rows) != 2 {
		t.Fatalf("the sample object: %d rows, %v", len(rows), err)
	}
}
