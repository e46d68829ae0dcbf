package chaos

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"hitship/internal/testenv"
)

// The staged path's checks find what they are there for: each case breaks
// one rule, and the check must count it (and a consistent case nothing).

// checkHits is a small topic: tenant 2's hits at 1/10, 1/11, 1/12 and 3/5,
// made at second 1003 (window 1000), and one of tenant 3 at 2/7.
func checkHits() (*expected, map[string][]byte) {
	ex := &expected{hits: map[reqID]hitInfo{}, malformed: map[srcPos]bool{}, byClient: map[int64][]reqID{}, morePos: map[reqID][]srcPos{}}
	recs := map[string][]byte{}
	add := func(name string, client int64, p int, off int64) {
		var id reqID
		copy(id[:], name)
		ex.hits[id] = hitInfo{client: client, copies: 1, pos: srcPos{p, off}, time: time.Unix(1003, 0)}
		ex.byClient[client] = append(ex.byClient[client], id)
		recs[name] = fmt.Appendf(nil, `{"time":"1003","request_id":"%s","client_id":%d}`, hex.EncodeToString(id[:]), client)
	}
	add("a", 2, 1, 10)
	add("b", 2, 1, 11)
	add("c", 2, 1, 12)
	add("d", 2, 3, 5)
	add("x", 3, 2, 7)
	return ex, recs
}

func ndjson(recs ...[]byte) []byte { return append(bytes.Join(recs, []byte("\n")), '\n') }

func TestStagedObjectChecks(t *testing.T) {
	ex, h := checkHits()
	in := integration{name: "t2-ndjson", client: 2, bucket: "b", format: "ndjson"}
	tests := []struct {
		name     string
		prefixes []string
		objs     map[string][]byte
		breaks   int64
	}{
		{"consistent", []string{"hits/"}, map[string][]byte{"hits/wallarm_hits_1000.jsonl": ndjson(h["a"], h["b"], h["c"], h["d"]),
			"hits/wallarm_hits_1000_late_1.jsonl": ndjson(h["a"]), "hits/wallarm_hits_1000_late_2.jsonl": ndjson(h["b"])}, 0},
		{"out of order", []string{"hits/"}, map[string][]byte{"hits/wallarm_hits_1000.jsonl": ndjson(h["a"], h["c"], h["b"])}, 1},
		{"partition order", []string{"hits/"}, map[string][]byte{"hits/wallarm_hits_1000.jsonl": ndjson(h["d"], h["a"])}, 1},
		{"other window", []string{"hits/"}, map[string][]byte{"hits/wallarm_hits_1010.jsonl": ndjson(h["a"])}, 1},
		{"not a window boundary", []string{"hits/"}, map[string][]byte{"hits/wallarm_hits_1003.jsonl": ndjson(h["a"])}, 2},
		{"per-partition key", []string{"hits/"}, map[string][]byte{"hits/wallarm_hits_1000_1_10_00ab.jsonl": ndjson(h["a"])}, 1},
		{"other prefix", []string{"hits/"}, map[string][]byte{"moved/wallarm_hits_1000.jsonl": ndjson(h["a"])}, 1},
		{"other extension", []string{"hits/"}, map[string][]byte{"hits/wallarm_hits_1000.json": ndjson(h["a"])}, 1},
		{"late gap", []string{"hits/"}, map[string][]byte{"hits/wallarm_hits_1000_late_2.jsonl": ndjson(h["a"])}, 1},
		{"two mains across a move", []string{"hits/", "moved/"}, map[string][]byte{"hits/wallarm_hits_1000.jsonl": ndjson(h["a"]),
			"moved/wallarm_hits_1000.jsonl": ndjson(h["b"])}, 1},
		{"late number twice across a move", []string{"hits/", "moved/"}, map[string][]byte{"hits/wallarm_hits_1000_late_1.jsonl": ndjson(h["a"]),
			"moved/wallarm_hits_1000_late_1.jsonl": ndjson(h["b"])}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &report{staged: true}
			r.checkStagedObjects(ex, in, tt.prefixes, tt.objs)
			if r.stagedBreaks != tt.breaks {
				t.Errorf("%d breaks, want %d: %v", r.stagedBreaks, tt.breaks, r.examples)
			}
		})
	}
}

// stagedFixture is a staging bucket and a customer bucket for checkStaging.
type stagedFixture struct {
	t   *testing.T
	w   *world
	ex  *expected
	h   map[string][]byte
	obj map[string][]byte // customer objects of t2-ndjson
}

func newStagedFixture(t *testing.T) *stagedFixture {
	ex, h := checkHits()
	ins := []integration{{name: "t2-ndjson", client: 2, bucket: "chaos-t2-ndjson", format: "ndjson"},
		{name: "t3-json", client: 3, bucket: "chaos-t3-json", format: "json"}}
	w := &world{t: t, ins: ins, after: ins[:1], staged: true,
		s3: testenv.MustS3(t, testenv.S3Options{Buckets: []string{parkBucket, "chaos-t2-ndjson", "chaos-t3-json"}})}
	return &stagedFixture{t: t, w: w, ex: ex, h: h, obj: map[string][]byte{}}
}

func (f *stagedFixture) put(bucket, key string, data []byte) {
	f.t.Helper()
	_, err := f.w.s3.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(data)})
	if err != nil {
		f.t.Fatal(err)
	}
}

// assembled writes what an assembly of target leaves: the intent listing
// pos, the manifest (unless open) and the customer object of recs.
func (f *stagedFixture) assembled(target, object, key string, pos []srcPos, recs [][]byte, open bool) {
	data := ndjson(recs...)
	sum := sha256.Sum256(data)
	var prs []map[string]any
	byPart := map[int][]int64{}
	var parts []int
	for _, p := range pos {
		if byPart[p.partition] == nil {
			parts = append(parts, p.partition)
		}
		byPart[p.partition] = append(byPart[p.partition], p.offset)
	}
	for _, p := range parts {
		var buf []byte
		prev := int64(0)
		for _, o := range byPart[p] {
			buf = binary.AppendUvarint(buf, uint64(o-prev))
			prev = o
		}
		prs = append(prs, map[string]any{"partition": p, "count": len(byPart[p]), "offsets": base64.StdEncoding.EncodeToString(buf)})
	}
	name, client, _ := targetOf(target)
	intent, _ := json.Marshal(map[string]any{"version": 1, "target": target, "integration": name, "client_id": client, "window_start_ms": 1000000,
		"object": object, "key": key, "records": len(pos), "size": len(data), "sha256": hex.EncodeToString(sum[:]), "partitions": prs})
	base := stagingPrefix + "obj/" + target + "/0000000001000000/" + object
	f.put(parkBucket, base+".intent", intent)
	if !open {
		m, _ := json.Marshal(map[string]any{"key": key, "state": "delivered", "records": len(pos), "size": len(data), "sha256": hex.EncodeToString(sum[:])})
		f.put(parkBucket, base+".manifest", m)
	}
	f.obj[key] = data
}

func (f *stagedFixture) check() *report {
	f.t.Helper()
	r := &report{staged: true}
	if err := f.w.checkStaging(context.Background(), r, f.ex, map[string]map[string][]byte{"t2-ndjson": f.obj}); err != nil {
		f.t.Fatal(err)
	}
	return r
}

func TestStagingChecks(t *testing.T) {
	const cur, old = "t2-ndjson:2:00000000000000aa", "t2-ndjson:2:00000000000000bb"
	main := "hits/wallarm_hits_1000.jsonl"
	tests := []struct {
		name   string
		setup  func(f *stagedFixture)
		breaks int64
	}{
		{"consistent, and a removed integration's segment waits", func(f *stagedFixture) {
			f.assembled(cur, "main", main, []srcPos{{1, 10}, {1, 11}}, [][]byte{f.h["a"], f.h["b"]}, false)
			f.put(parkBucket, stagingPrefix+"seg/0000000001010000/t3-json:3:00000000000000cc/0000000001000000/2-7-00000000000000ff", append([]byte("7 "), append(f.h["x"], '\n')...))
		}, 0},
		{"two targets of one integration wrote one key", func(f *stagedFixture) {
			f.assembled(cur, "main", main, []srcPos{{1, 10}}, [][]byte{f.h["a"]}, false)
			f.assembled(old, "main", main, []srcPos{{1, 10}}, [][]byte{f.h["a"]}, false)
		}, 1},
		{"overwritten", func(f *stagedFixture) {
			f.assembled(cur, "main", main, []srcPos{{1, 10}}, [][]byte{f.h["a"]}, false)
			f.obj[main] = ndjson(f.h["b"])
		}, 1},
		{"not the records its intent lists", func(f *stagedFixture) {
			f.assembled(cur, "main", main, []srcPos{{1, 11}}, [][]byte{f.h["a"]}, false)
		}, 1},
		{"another tenant's record in the intent", func(f *stagedFixture) {
			f.assembled(cur, "main", main, []srcPos{{2, 7}}, [][]byte{f.h["x"]}, false)
		}, 1},
		{"object never finished", func(f *stagedFixture) {
			f.assembled(cur, "main", main, []srcPos{{1, 10}}, [][]byte{f.h["a"]}, true)
		}, 1},
		{"no manifest names the object", func(f *stagedFixture) {
			f.obj["hits/wallarm_hits_1000_late_1.jsonl"] = ndjson(f.h["a"])
		}, 1},
		{"segment left for a configured integration", func(f *stagedFixture) {
			f.put(parkBucket, stagingPrefix+"seg/0000000001010000/"+cur+"/0000000001000000/1-10-00000000000000ff", append([]byte("10 "), append(f.h["a"], '\n')...))
		}, 1},
		{"another tenant's record in a waiting segment", func(f *stagedFixture) {
			f.put(parkBucket, stagingPrefix+"seg/0000000001010000/t3-json:3:00000000000000cc/0000000001000000/1-10-00000000000000ff", append([]byte("10 "), append(f.h["a"], '\n')...))
		}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newStagedFixture(t)
			tt.setup(f)
			r := f.check()
			if r.stagedBreaks != tt.breaks {
				t.Errorf("%d breaks, want %d: %v", r.stagedBreaks, tt.breaks, r.examples)
			}
		})
	}
}

// TestConditionalPuts: a second PUT with If-None-Match: * to one key is
// refused with 412, as S3 does; other requests pass.
func TestConditionalPuts(t *testing.T) {
	s := testenv.MustS3(t, testenv.S3Options{Buckets: []string{parkBucket}})
	up, err := reverseProxy(s.URL())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(&conditionalPuts{next: up, s3: s})
	defer srv.Close()
	put := func(cond bool) int {
		req, _ := http.NewRequest(http.MethodPut, srv.URL+"/"+parkBucket+"/hitship/staging/obj/t:1:ff/1/main.intent", strings.NewReader("x"))
		if cond {
			req.Header.Set("If-None-Match", "*")
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := put(true); got != http.StatusOK {
		t.Errorf("first conditional PUT: %d", got)
	}
	if got := put(true); got != http.StatusPreconditionFailed {
		t.Errorf("second conditional PUT: %d, want 412", got)
	}
	if got := put(false); got != http.StatusOK {
		t.Errorf("unconditional PUT: %d", got)
	}
}

// TestStagingOutageCheck: a partition that committed past the first record
// of a steady tenant read during the outage breaks the rule; one that held
// its offset there does not; an outage with records in too few partitions
// proves nothing, which breaks it too.
func TestStagingOutageCheck(t *testing.T) {
	ex := &expected{hits: map[reqID]hitInfo{}, morePos: map[reqID][]srcPos{}}
	for p := range partitions {
		for off := int64(0); off < 20; off++ {
			var id reqID
			binary.BigEndian.PutUint64(id[:], uint64(p*100)+uint64(off))
			ex.hits[id] = hitInfo{client: 2 + int64(off%2), copies: 1, pos: srcPos{p, off}}
		}
	}
	hw, held := map[int]int64{}, map[int]int64{}
	for p := range partitions {
		hw[p], held[p] = 10, 10
	}
	steady := map[int64]bool{2: true}
	for _, tt := range []struct {
		name      string
		committed map[int]int64
		hw        map[int]int64
		breaks    int64
	}{
		{"held", held, hw, 0},
		{"committed past", map[int]int64{0: 10, 1: 11, 2: 13}, hw, 2},
		{"past a record of another tenant only", map[int]int64{0: 11}, map[int]int64{0: 11, 1: 10, 2: 10, 3: 10, 4: 10, 5: 10}, 0},
		{"too few partitions", held, map[int]int64{0: 10, 1: 10}, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &report{staged: true}
			(&stagingOutage{highWater: tt.hw, committed: tt.committed}).check(r, ex, steady)
			if r.stagedBreaks != tt.breaks {
				t.Errorf("%d breaks, want %d: %v", r.stagedBreaks, tt.breaks, r.examples)
			}
		})
	}
}
