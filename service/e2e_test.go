package service_test

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"hitship/config"
)

// TestEndToEnd: 3 tenants, 4 integrations, 6 partitions, 20,000 hits with
// out-of-order times over 3 windows, through the PutObject-only proxy → every hit
// in exactly one object of every integration of its tenant and nowhere else, bytes
// unchanged, keys as specified, committed offsets at the end of every partition.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	endToEnd(t, 20000, nil)
}

// endToEnd is TestEndToEnd's case with n hits; redisCfg, when set, points
// the config at another Redis than the env's single server.
func endToEnd(t *testing.T, n int, redisCfg func(*config.Redis)) {
	buckets := []string{"b-one", "b-two", "b-three", "b-four"}
	e := newEnv(t, 6, buckets...)
	ins := []struct {
		name, bucket, format string
		client               int64
	}{
		{"one-json", "b-one", "json", 1},
		{"one-ndjson", "b-two", "ndjson", 1},
		{"two-json", "b-three", "json", 2},
		{"three-ndjson", "b-four", "ndjson", 3},
	}
	cfg := e.config(t, integ(ins[0].name, ins[0].client, ins[0].bucket, ins[0].format),
		integ(ins[1].name, ins[1].client, ins[1].bucket, ins[1].format),
		integ(ins[2].name, ins[2].client, ins[2].bucket, ins[2].format),
		integ(ins[3].name, ins[3].client, ins[3].bucket, ins[3].format))
	if redisCfg != nil {
		redisCfg(&cfg.Redis)
		if ps := cfg.Validate(); len(ps) > 0 {
			t.Fatal(config.AsError(ps))
		}
	}
	base := time.Date(2023, 6, 20, 6, 0, 0, 0, time.UTC)
	hits := e.produceHits(t, n, []int64{1, 2, 3}, base, 10*time.Minute, 3, 1)
	e.startMember(t, "a", cfg)

	waitFor(t, 90*time.Second, "offsets committed to the end", func() bool { return e.committedToEnd(t, cfg.Kafka.Group) })

	byID := map[string]sent{}
	for _, h := range hits {
		byID[h.id] = h
	}
	// seen[integration][request id] = times
	seen := map[string]map[string]int{}
	bucketOf := map[string]string{}
	for _, in := range ins {
		seen[in.name] = map[string]int{}
		bucketOf[in.bucket] = in.name
	}
	keyRE := regexp.MustCompile(`^hits/wallarm_hits_(\d+)_(\d)_(\d+)_[0-9a-f]{16}\.(json|jsonl)$`)
	idRE := regexp.MustCompile(`"request_id":"([0-9a-f]+)"`)
	for _, o := range e.objects(t, buckets...) {
		name := bucketOf[o.bucket]
		m := keyRE.FindStringSubmatch(o.key)
		if m == nil {
			t.Fatalf("key %s/%s does not follow the default template", o.bucket, o.key)
		}
		var start int64
		fmt.Sscan(m[1], &start)
		if start%600 != 0 {
			t.Errorf("key %s: window start %d not aligned to 10 minutes", o.key, start)
		}
		wantExt := map[string]string{"json": "json", "ndjson": "jsonl"}
		for _, in := range ins {
			if in.name == name && wantExt[in.format] != m[4] {
				t.Errorf("key %s: extension %s for format %s", o.key, m[4], in.format)
			}
		}
		for _, r := range o.records {
			id := idRE.FindSubmatch(r)
			if id == nil {
				t.Fatalf("%s: record without request_id: %s", o.key, r)
			}
			h, ok := byID[string(id[1])]
			if !ok {
				t.Fatalf("%s: unknown record %s", o.key, id[1])
			}
			if !bytes.Equal(r, h.value) {
				t.Fatalf("%s: record bytes changed:\n got %s\nwant %s", o.key, r, h.value)
			}
			if fmt.Sprint(h.partition) != m[2] {
				t.Errorf("%s: record of partition %d", o.key, h.partition)
			}
			seen[name][h.id]++
		}
	}
	for _, in := range ins {
		for _, h := range hits {
			n := seen[in.name][h.id]
			switch {
			case h.client == in.client && n != 1:
				t.Fatalf("integration %s: hit %s (client %d) delivered %d times, want exactly once", in.name, h.id, h.client, n)
			case h.client != in.client && n != 0:
				t.Fatalf("integration %s: hit %s of client %d delivered to another tenant's integration", in.name, h.id, h.client)
			}
		}
	}
	if d := e.proxy.Denied(); len(d) > 0 {
		t.Fatalf("calls a PutObject-only policy denies: %s", strings.Join(d, ", "))
	}
}
