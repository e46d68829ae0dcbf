package sink_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"testing"

	"hitship/sink"
	"hitship/sink/parquet"
)

// TestAppendOCSFOrKeep: a hit the OCSF mapping refuses is kept whole in a
// record of the fallback time, never dropped, and the same hit gives the
// same bytes; a good hit is mapped as AppendOCSF maps it.
func TestAppendOCSFOrKeep(t *testing.T) {
	good := []byte(`{"time":"1687241470","request_id":"r1","ip":"10.0.0.1","method":"GET","domain":"a.example","uri":"/x","status_code":200,"block_status":"blocked"}`)
	want, err := sink.AppendOCSF(nil, good)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := sink.AppendOCSFOrKeep(nil, good, 0); err != nil || !bytes.Equal(got, want) {
		t.Fatalf("a good hit: %s, %v", got, err)
	}
	for name, hit := range map[string][]byte{
		"no time":    []byte(`{"request_id":"r2","method":"GET"}`),
		"not json":   []byte(`{"time":`),
		"not utf-8":  []byte("{\"time\":\"1\",\"x\":\"\xff\"}"),
		"not object": []byte(`[1,2]`),
	} {
		rec, err := sink.AppendOCSFOrKeep(nil, hit, 1687241400000)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		again, _ := sink.AppendOCSFOrKeep(nil, hit, 1687241400000)
		if !bytes.Equal(rec, again) {
			t.Errorf("%s: two mappings differ", name)
		}
		var r struct {
			ClassUID int64 `json:"class_uid"`
			Time     int64 `json:"time"`
			Unmapped map[string]string
		}
		if err := json.Unmarshal(rec, &r); err != nil {
			t.Fatalf("%s: %v: %s", name, err, rec)
		}
		kept := []byte(r.Unmapped["hitship_unmapped_hit"])
		if b64 := r.Unmapped["hitship_unmapped_hit_base64"]; b64 != "" {
			kept, _ = base64.StdEncoding.DecodeString(b64)
		}
		if r.ClassUID != 4002 || r.Time != 1687241400000 || !bytes.Equal(kept, hit) || r.Unmapped["hitship_mapping_error"] == "" {
			t.Errorf("%s: %s", name, rec)
		}
	}
}

// TestOCSFColumnsOrKeep: OCSFColumns makes the Parquet row AppendOCSFOrKeep's
// record makes, for a good hit and for each kind the mapping refuses (kept
// whole at the fallback time).
func TestOCSFColumnsOrKeep(t *testing.T) {
	s := parquet.OCSFSchema()
	for name, hit := range map[string][]byte{
		"good":       []byte(`{"time":"1687241470","request_id":"r1","ip":"10.0.0.1","method":"GET","domain":"a.example","uri":"/x?y","status_code":200,"block_status":"blocked","tor":"none"}`),
		"no time":    []byte(`{"request_id":"r2","method":"GET"}`),
		"not json":   []byte(`{"time":`),
		"not utf-8":  []byte("{\"time\":\"1\",\"x\":\"\xff\"}"),
		"not object": []byte(`[1,2]`),
	} {
		var a, b bytes.Buffer
		ej, _ := parquet.NewEncoder(&a, s, parquet.Options{})
		ec, _ := parquet.NewEncoder(&b, s, parquet.Options{})
		rec, err := sink.AppendOCSFOrKeep(nil, hit, 1687241400000)
		if err != nil {
			t.Fatal(err)
		}
		if err := ej.Add(rec, 0); err != nil {
			t.Fatal(err)
		}
		v := parquet.NewValues(s)
		if _, err := sink.OCSFColumns(v, hit, 1687241400000, nil); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := ec.AddValues(v, 0); err != nil {
			t.Fatal(err)
		}
		for _, e := range []*parquet.Encoder{ej, ec} {
			if err := e.Finish(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Errorf("%s: the columns' file differs from the JSON record's", name)
		}
	}
}
