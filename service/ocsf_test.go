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
	e, hits := startStagedFormat(t, "pq", "b-pq", config.FormatParquet, 500, 62)
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
	awaitParquetOnce(t, "Parquet", len(want), read)
	sample, err := sink.SampleObject(sink.FormatParquet, sink.CompressionNone)
	if err != nil {
		t.Fatal(err)
	}
	if rows, err := pq.Read[pqHit](bytes.NewReader(sample), int64(len(sample))); err != nil || len(rows) != 2 {
		t.Fatalf("the sample object: %d rows, %v", len(rows), err)
	}
}

// pqOCSF is the part of an ocsf-parquet row TestStagedOCSFParquet reads: the
// nested groups as Athena reads them (http_request.url.path).
type pqOCSF struct {
	Time     *time.Time `parquet:"time,optional,timestamp(millisecond)"`
	ClassUID *int32     `parquet:"class_uid,optional"`
	TypeUID  *int64     `parquet:"type_uid,optional"`
	Metadata *struct {
		UID      *string  `parquet:"uid,optional"`
		Profiles []string `parquet:"profiles,optional,list"`
	} `parquet:"metadata,optional"`
	HTTPRequest *struct {
		UID *string `parquet:"uid,optional"`
		URL *struct {
			Path *string `parquet:"path,optional"`
		} `parquet:"url,optional"`
	} `parquet:"http_request,optional"`
	HTTPResponse *struct {
		Code *int32 `parquet:"code,optional"`
	} `parquet:"http_response,optional"`
	Unmapped *string `parquet:"unmapped,optional"`
	Extra    *string `parquet:"hitship_extra,optional"`
}

// TestStagedOCSFParquet (issue #15): with staged delivery an integration in
// format ocsf-parquet gets one Parquet file per window of its tenant's hits
// as OCSF records in OCSF's nesting, read back by parquet-go's reader: every
// hit once, ordered by time, each row the hit's OCSF record (the encoder's
// tests compare every field with arrow-go), nothing in hitship_extra, keys
// ending .parquet; the test write's sample object is such a file too.
func TestStagedOCSFParquet(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	t.Parallel()
	e, hits := startStagedFormat(t, "opq", "b-opq", config.FormatOCSFParquet, 400, 63)
	want := map[string]map[string]any{} // request id -> the hit's OCSF record
	for _, h := range hits {
		if h.client != 1 {
			continue
		}
		rec, err := sink.AppendOCSF(nil, h.value)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(rec, &m); err != nil {
			t.Fatal(err)
		}
		want[h.id] = m
	}
	str := func(p *string) string {
		if p == nil {
			return "<null>"
		}
		return *p
	}
	read := func() (map[string]int, []string) {
		seen := map[string]int{}
		objs, err := e.s3.Objects(t.Context(), "b-opq")
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for k, data := range objs {
			keys = append(keys, k)
			rows, err := pq.Read[pqOCSF](bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			for i, r := range rows {
				if r.HTTPRequest == nil || r.HTTPRequest.UID == nil || r.Time == nil || r.Metadata == nil || r.HTTPResponse == nil || r.HTTPResponse.Code == nil {
					t.Fatalf("%s row %d: %+v", k, i, r)
				}
				if i > 0 && r.Time.Before(*rows[i-1].Time) {
					t.Fatalf("%s: row %d before row %d in time", k, i, i-1)
				}
				id := *r.HTTPRequest.UID
				m, ok := want[id]
				if !ok {
					t.Fatalf("%s: hit %s is not the tenant's", k, id)
				}
				md := m["metadata"].(map[string]any)
				req := m["http_request"].(map[string]any)
				unmapped, _ := json.Marshal(m["unmapped"])
				var gotUnmapped any
				_ = json.Unmarshal([]byte(str(r.Unmapped)), &gotUnmapped)
				gotU, _ := json.Marshal(gotUnmapped)
				if r.Time.UnixMilli() != int64(m["time"].(float64)) || *r.ClassUID != 4002 || *r.TypeUID != int64(m["type_uid"].(float64)) ||
					str(r.Metadata.UID) != md["uid"] || strings.Join(r.Metadata.Profiles, ",") != "security_control" ||
					r.HTTPRequest.URL == nil || str(r.HTTPRequest.URL.Path) != req["url"].(map[string]any)["path"] ||
					*r.HTTPResponse.Code != int32(m["http_response"].(map[string]any)["code"].(float64)) ||
					string(gotU) != string(unmapped) || r.Extra != nil {
					t.Fatalf("%s: hit %s row %+v, want %v", k, id, r, m)
				}
				seen[id]++
			}
		}
		return seen, keys
	}
	awaitParquetOnce(t, "ocsf-parquet", len(want), read)
	sample, err := sink.SampleObject(sink.FormatOCSFParquet, sink.CompressionNone)
	if err != nil {
		t.Fatal(err)
	}
	if rows, err := pq.Read[pqOCSF](bytes.NewReader(sample), int64(len(sample))); err != nil || len(rows) != 2 || rows[0].HTTPRequest == nil {
		t.Fatalf("the sample object: %d rows, %v", len(rows), err)
	}
}

// startStagedFormat starts a replica with staged delivery, integration name
// of client 1 in format into bucket (validated with staged delivery on)
// beside an ndjson one of client 2, after n hits of both clients over two
// 10-minute windows of 2023-06-20 in 4 partitions.
func startStagedFormat(t *testing.T, name, bucket, format string, n int, seed int64) (*env, []sent) {
	t.Helper()
	const parts = 4
	e := newEnv(t, parts, bucket, "b-other", parkBucket)
	cfg := e.config(t, integ("other", 2, "b-other", config.FormatNDJSON))
	cfg.Integrations = append(cfg.Integrations, integ(name, 1, bucket, format))
	cfg.Window.IdleTimeout = time.Second
	cfg = stagedConfig(t, e, cfg)
	base := time.Date(2023, 6, 20, 6, 0, 0, 0, time.UTC)
	hits := produceHitsAt(t, e, seed, spreadHits(n, []int64{1, 2}, parts, base, 10*time.Minute, 2, seed))
	e.startMember(t, "a", cfg)
	return e, hits
}

// awaitParquetOnce waits until read finds all want hits of the tenant in its
// objects of format what, then checks each is in one row and every key is a
// staged Parquet key under hits/.
func awaitParquetOnce(t *testing.T, what string, want int, read func() (map[string]int, []string)) {
	t.Helper()
	waitFor(t, 90*time.Second, "every hit of the tenant in its "+what+" files", func() bool {
		seen, _ := read()
		return len(seen) == want
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
}
