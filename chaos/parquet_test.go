package chaos

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	pq "github.com/parquet-go/parquet-go"
)

// ocsfParquet is the format of OCSF records in Parquet (issue #15): one
// integration of the staged run has it.
const ocsfParquet = "ocsf-parquet"

// ocsfRow is what the checks read of an OCSF record in Parquet: its time
// and its metadata.uid, the hit's request_id.
type ocsfRow struct {
	Time     *time.Time `parquet:"time,optional,timestamp(millisecond)"`
	Metadata *struct {
		UID *string `parquet:"uid,optional"`
	} `parquet:"metadata,optional"`
}

// parquetRecords reads an ocsf-parquet object's rows as the records the
// checks read: {"time":"<unix seconds>","request_id":"<uid>"}, in the file's
// order (by time, then (partition, offset)). A row without a time or a uid
// is an error: every hit of the run has both.
func parquetRecords(data []byte) ([][]byte, error) {
	rows, err := pq.Read[ocsfRow](bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, err
	}
	recs := make([][]byte, 0, len(rows))
	for i, r := range rows {
		if r.Time == nil || r.Metadata == nil || r.Metadata.UID == nil {
			return nil, fmt.Errorf("row %d has no time or no metadata.uid", i)
		}
		recs = append(recs, fmt.Appendf(nil, `{"time":"%d","request_id":%s}`, r.Time.Unix(), strconv.Quote(*r.Metadata.UID)))
	}
	return recs, nil
}

// putLedger is in front of the customers' store: it keeps the SHA-256 of
// every object a PUT wrote (the store answered 2xx) by bucket and key. A
// key written again must get the same bytes: a replay, on either path,
// writes the same records in the same layout, and an assembled object is
// the same bytes whoever makes it (DESIGN §3; for Parquet, no clock or
// random value in the file). Multipart uploads pass unchecked (the run's
// objects are below the multipart threshold). Safe for concurrent use.
type putLedger struct {
	next http.Handler

	mu       sync.Mutex
	sums     map[string][sha256.Size]byte
	rewrites int      // keys written again with the same bytes
	parquet  int      // of those, Parquet objects
	differ   []string // keys written again with other bytes
}

func (l *putLedger) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if r.Method != http.MethodPut || q.Has("uploadId") || q.Has("partNumber") || r.Header.Get("X-Amz-Copy-Source") != "" {
		l.next.ServeHTTP(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	sw := &statusWriter{ResponseWriter: w}
	l.next.ServeHTTP(sw, r)
	if sw.hijacked || sw.status/100 != 2 && sw.status != 0 {
		return
	}
	sum := sha256.Sum256(body)
	key := r.URL.Path
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.sums == nil {
		l.sums = make(map[string][sha256.Size]byte)
	}
	prev, seen := l.sums[key]
	switch {
	case !seen:
	case prev == sum:
		l.rewrites++
		if strings.HasSuffix(key, ".parquet") {
			l.parquet++
		}
	default:
		l.differ = append(l.differ, key)
	}
	l.sums[key] = sum
}

// counts returns how many keys were written again with the same bytes (and
// how many of those were Parquet objects) and which were written again with
// other bytes.
func (l *putLedger) counts() (rewrites, parquet int, differ []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rewrites, l.parquet, append([]string(nil), l.differ...)
}

// TestParquetObjectChecks: the staged checks read ocsf-parquet objects (by
// time, then (partition, offset)) and find a break of that order.
func TestParquetObjectChecks(t *testing.T) {
	ex, _ := checkHits()
	var e reqID
	copy(e[:], "e")
	ex.hits[e] = hitInfo{client: 2, copies: 1, pos: srcPos{0, 3}, time: time.Unix(1005, 0)}
	ex.byClient[2] = append(ex.byClient[2], e)
	row := func(name string) ocsfRow {
		var id reqID
		copy(id[:], name)
		uid := hex.EncodeToString(id[:])
		tm := ex.hits[id].time
		r := ocsfRow{Time: &tm}
		r.Metadata = &struct {
			UID *string `parquet:"uid,optional"`
		}{UID: &uid}
		return r
	}
	file := func(names ...string) []byte {
		var rows []ocsfRow
		for _, n := range names {
			rows = append(rows, row(n))
		}
		var b bytes.Buffer
		if err := pq.Write(&b, rows); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	in := integration{name: "t2-ocsf-parquet", client: 2, bucket: "b", format: ocsfParquet}
	for _, tt := range []struct {
		name   string
		objs   map[string][]byte
		breaks int64
	}{
		{"consistent", map[string][]byte{"hits/wallarm_hits_1000.parquet": file("a", "b", "d", "e")}, 0},
		{"time order", map[string][]byte{"hits/wallarm_hits_1000.parquet": file("e", "a")}, 1},
		{"partition order within a time", map[string][]byte{"hits/wallarm_hits_1000.parquet": file("d", "a")}, 1},
		{"other extension", map[string][]byte{"hits/wallarm_hits_1000.jsonl": file("a")}, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &report{staged: true}
			r.checkStagedObjects(ex, in, []string{"hits/"}, tt.objs)
			if r.stagedBreaks != tt.breaks {
				t.Errorf("%d breaks, want %d: %v", r.stagedBreaks, tt.breaks, r.examples)
			}
			if tt.breaks == 0 && r.stats.ordered != 4 {
				t.Errorf("%d records checked, want 4", r.stats.ordered)
			}
		})
	}
}

// TestPutLedger: a key written again with the same bytes is a rewrite, with
// other bytes a break; a refused PUT is not a write.
func TestPutLedger(t *testing.T) {
	status := http.StatusOK
	l := &putLedger{next: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(status)
	})}
	put := func(key, body string) {
		r := httptest.NewRequest(http.MethodPut, "/bucket/"+key, strings.NewReader(body))
		l.ServeHTTP(httptest.NewRecorder(), r)
	}
	put("a", "one")
	put("a", "one")
	put("b", "two")
	status = http.StatusServiceUnavailable
	put("b", "other") // not written
	if n, _, differ := l.counts(); n != 1 || len(differ) != 0 {
		t.Fatalf("rewrites %d, differ %v; want 1 and none", n, differ)
	}
	status = http.StatusOK
	put("b", "other")
	put("c.parquet", "pq")
	put("c.parquet", "pq")
	if n, pqn, differ := l.counts(); n != 2 || pqn != 1 || len(differ) != 1 || differ[0] != "/bucket/b" {
		t.Fatalf("rewrites %d (%d Parquet), differ %v; want 2 (1) and /bucket/b", n, pqn, differ)
	}
	r := &report{}
	r.rewrites, r.rewritesParquet, r.differ = l.counts()
	if !r.failed() {
		t.Error("a key written again with other bytes does not fail the run")
	}
}
