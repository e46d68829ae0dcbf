package chaos

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"hitship/internal/testenv"
)

// The staged path (delivery.staged; chaos/doc.go): what the run sees of the
// staging bucket, and what it checks there and in the customers' buckets.

// windowSecs is the replicas' window.size in seconds (world_test.go).
const windowSecs = 10

// stagedKeyRE is config.DefaultStagedKeyTemplate,
// "{prefix}wallarm_hits_{window_start}{late}.{ext}", with {late} "" for a
// window's main object and "_late_N" (N from 1) for its late ones.
var stagedKeyRE = regexp.MustCompile(`^(.*)wallarm_hits_(\d+)(?:_late_([1-9]\d*))?\.(json|jsonl|parquet)$`)

// stagingPrefix is where the staging bucket keeps segments (seg/) and
// intents and manifests (obj/).
const stagingPrefix = parkPrefix + "staging/"

// tap sits between one replica and the staging bucket (the parking
// injector): it tells which objects the replica has in hand, their intent
// written and their manifest not yet, so that a kill can be aimed at a
// replica that is assembling. Safe for concurrent use.
type tap struct {
	next http.Handler
	// done is shared by the replicas' taps: the intents whose manifest some
	// replica wrote.
	done *sync.Map
	mu   sync.Mutex
	open map[string]time.Time // intent key -> when the replica wrote it
}

func newTap(next http.Handler, done *sync.Map) *tap {
	return &tap{next: next, done: done, open: make(map[string]time.Time)}
}

func (t *tap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	key := strings.TrimPrefix(r.URL.Path, "/"+parkBucket+"/")
	intent := r.Method == http.MethodPut && strings.HasSuffix(key, ".intent")
	manifest := r.Method == http.MethodPut && strings.HasSuffix(key, ".manifest")
	if !intent && !manifest {
		t.next.ServeHTTP(w, r)
		return
	}
	sw := &statusWriter{ResponseWriter: w}
	t.next.ServeHTTP(sw, r)
	if sw.hijacked || sw.status/100 != 2 && sw.status != 0 {
		return // not written, or the replica cannot know it was
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if intent {
		t.open[key] = time.Now()
	} else {
		ik := strings.TrimSuffix(key, ".manifest") + ".intent"
		t.done.Store(ik, true)
		delete(t.open, ik)
	}
}

// inHand returns the intents the replica wrote in the last 2 minutes whose
// manifest no replica wrote (as the taps saw), in key order.
func (t *tap) inHand() []string {
	t.mu.Lock()
	var keys []string
	for k, at := range t.open {
		if _, done := t.done.Load(k); !done && time.Since(at) < 2*time.Minute {
			keys = append(keys, k)
		}
	}
	t.mu.Unlock()
	sort.Strings(keys)
	return keys
}

// forget drops what the tap saw: the process it watched is gone.
func (t *tap) forget() {
	t.mu.Lock()
	clear(t.open)
	t.mu.Unlock()
}

// statusWriter records the status a handler answered, and passes a hijack
// on (the injector drops connections that way).
type statusWriter struct {
	http.ResponseWriter
	status   int
	hijacked bool
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, fmt.Errorf("chaos: %T cannot hijack", w.ResponseWriter)
	}
	w.hijacked = true
	return hj.Hijack()
}

// conditionalPuts answers a PUT with If-None-Match: * as S3 does (412
// PreconditionFailed when the key exists), which gofakes3 does not: the
// staging bucket's intents are created that way. Conditional PUTs are
// serialized, so two racing for one key cannot both write it.
type conditionalPuts struct {
	next http.Handler
	s3   *testenv.S3
	mu   sync.Mutex
}

func (c *conditionalPuts) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut || r.Header.Get("If-None-Match") != "*" {
		c.next.ServeHTTP(w, r)
		return
	}
	bucket, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	c.mu.Lock()
	defer c.mu.Unlock()
	keys, err := c.s3.Keys(bucket, key)
	if err != nil || !slices.Contains(keys, key) {
		c.next.ServeHTTP(w, r)
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 64<<20))
	body, _ := xml.Marshal(s3Error{Code: "PreconditionFailed", Message: "At least one of the pre-conditions you specified did not hold",
		Resource: r.URL.Path, RequestID: "chaos-conditional"})
	w.Header().Set("Content-Type", "application/xml")
	w.WriteHeader(http.StatusPreconditionFailed)
	_, _ = w.Write(append([]byte(xml.Header), body...))
}

// manifested reports whether the manifest of intent (a key) is in the bucket.
func (w *world) manifested(intent string) bool {
	m := strings.TrimSuffix(intent, ".intent") + ".manifest"
	keys, err := w.s3.Keys(parkBucket, m)
	return err == nil && slices.Contains(keys, m)
}

// targetOf splits a target ID ("name:client:fingerprint").
func targetOf(id string) (name string, client int64, ok bool) {
	f := strings.Split(id, ":")
	if len(f) != 3 && len(f) != 2 { // a target ID, or an object namespace (staging.Namespace)
		return "", 0, false
	}
	c, err := strconv.ParseInt(f[1], 10, 64)
	return f[0], c, err == nil
}

// configuredNow reports whether an integration of that name and tenant is
// in the config from the reload on: staged delivery sends a target's staged
// segments to it (a changed destination is a new target of the same name
// and tenant); segments of any other wait in the staging bucket.
func (w *world) configuredNow(target string) bool {
	name, client, ok := targetOf(target)
	return ok && slices.ContainsFunc(w.after, func(in integration) bool { return in.name == name && in.client == client })
}

// segmentKey is what a segment's key says:
// {prefix}staging/seg/{closeAt}/{target}/{window}/{partition}-{first}-{digest}.
type segmentKey struct {
	target    string
	window    int64 // Unix ms
	partition int
}

func parseSegmentKey(key string) (segmentKey, bool) {
	rest, ok := strings.CutPrefix(key, stagingPrefix+"seg/")
	f := strings.Split(rest, "/")
	if !ok || len(f) != 4 {
		return segmentKey{}, false
	}
	target, err := url.PathUnescape(f[1])
	if err != nil {
		return segmentKey{}, false
	}
	ws, err1 := strconv.ParseInt(f[2], 10, 64)
	p, err2 := strconv.Atoi(strings.SplitN(f[3], "-", 2)[0])
	return segmentKey{target: target, window: ws, partition: p}, err1 == nil && err2 == nil
}

// objKey splits {prefix}staging/obj/{namespace}/{window}/{object}.{intent|manifest}.
func objKey(key string) (target, object, kind string, ok bool) {
	rest, ok := strings.CutPrefix(key, stagingPrefix+"obj/")
	f := strings.Split(rest, "/")
	if !ok || len(f) != 3 {
		return "", "", "", false
	}
	target, err := url.PathUnescape(f[0])
	object, kind, dot := strings.Cut(f[2], ".")
	return target, f[1] + "/" + object, kind, err == nil && dot
}

// stagingLeft counts what the staging bucket still holds for integrations
// configured now: segments, and intents without a manifest (an object being
// assembled or delivered). What it holds for others waits there by design.
func (w *world) stagingLeft() (segs, open int, err error) {
	keys, err := w.s3.Keys(parkBucket, stagingPrefix)
	if err != nil {
		return 0, 0, err
	}
	have := make(map[string]bool, len(keys))
	for _, k := range keys {
		have[k] = true
	}
	for _, k := range keys {
		if s, ok := parseSegmentKey(k); ok && w.configuredNow(s.target) {
			segs++
		}
		if t, _, kind, ok := objKey(k); ok && kind == "intent" && w.configuredNow(t) && !have[strings.TrimSuffix(k, ".intent")+".manifest"] {
			open++
		}
	}
	return segs, open, nil
}

// intentDoc is the part of an intent (staging/intent.go) the test reads: the
// customer key, the tenant, and the record identities the object holds.
type intentDoc struct {
	Target      string `json:"target"`
	Integration string `json:"integration"`
	ClientID    int64  `json:"client_id"`
	Window      int64  `json:"window_start_ms"`
	Object      string `json:"object"`
	Late        int    `json:"late"`
	Key         string `json:"key"`
	Records     int    `json:"records"`
	Size        int64  `json:"size"`
	SHA256      string `json:"sha256"`
	Partitions  []struct {
		Partition int    `json:"partition"`
		Count     int    `json:"count"`
		Offsets   string `json:"offsets"` // base64 of unsigned varint deltas
	} `json:"partitions"`
}

// positions decodes the intent's record identities, in the intent's order.
func (in *intentDoc) positions() ([]srcPos, error) {
	var out []srcPos
	for _, p := range in.Partitions {
		buf, err := base64.StdEncoding.DecodeString(p.Offsets)
		if err != nil {
			return nil, err
		}
		off, n := int64(0), 0
		for len(buf) > 0 {
			d, k := binary.Uvarint(buf)
			if k <= 0 {
				return nil, fmt.Errorf("partition %d: corrupt offsets", p.Partition)
			}
			buf, off = buf[k:], off+int64(d)
			out = append(out, srcPos{p.Partition, off})
			n++
		}
		if n != p.Count {
			return nil, fmt.Errorf("partition %d: %d offsets, count says %d", p.Partition, n, p.Count)
		}
	}
	return out, nil
}

type manifestDoc struct {
	Key     string `json:"key"`
	State   string `json:"state"`
	Records int    `json:"records"`
	Size    int64  `json:"size"`
	SHA256  string `json:"sha256"`
}

// stagedStats is what the staged checks counted.
type stagedStats struct {
	mains, lates   int64 // customer objects
	ordered        int64 // records checked for order and window
	manifests      int64
	waiting        int64 // segments of integrations no longer configured
	waitingRecords int64
	waitingIntents int64 // intents of those without a manifest
	outageNote     string
	assemblyKills  []string
	stagingErrors  int // log lines of segments the staging bucket refused
}

// eventTimeRE is the start of a hitgen hit: its event time.
var eventTimeRE = regexp.MustCompile(`^\{"time":"(\d+)"`)

// checkStagedObjects checks the customer objects of integration in (under
// one of prefixes): every key follows the staged template with the
// integration's extension and a window start on a window boundary; every
// record lies in the object's window (its event time, clamped to the
// record's timestamp plus max_future_skew as hitship does) and the records
// are in (partition, offset) order, each identity taken from the topic.
// Per window of the integration, under all its prefixes together (a moved
// one has two): at most one main object, and late objects numbered 1, 2, …
// without a gap or a number twice (one window, one numbering, wherever its
// objects went).
func (r *report) checkStagedObjects(ex *expected, in integration, prefixes []string, objs map[string][]byte) {
	ext := map[string]string{"json": "json", "ndjson": "jsonl", ocsfParquet: "parquet"}[in.format]
	mains := make(map[int64][]string)
	lates := make(map[int64][]int)
	for key, data := range objs {
		m := stagedKeyRE.FindStringSubmatch(key)
		if m == nil || !slices.Contains(prefixes, m[1]) || m[4] != ext {
			r.stagedBreaks++
			r.example("%s/%s: key does not follow the staged template {prefix}wallarm_hits_{window_start}{late}.{ext} (prefixes %q, ext %s)", in.bucket, key, prefixes, ext)
			continue
		}
		ws, _ := strconv.ParseInt(m[2], 10, 64)
		if ws%windowSecs != 0 {
			r.stagedBreaks++
			r.example("%s/%s: window start %d is not a window boundary", in.bucket, key, ws)
		}
		if m[3] == "" {
			mains[ws] = append(mains[ws], key)
			r.stats.mains++
		} else {
			n, _ := strconv.Atoi(m[3])
			lates[ws] = append(lates[ws], n)
			r.stats.lates++
		}
		recs, err := splitRecords(key, in.format, data)
		if err != nil {
			continue // verify reports it
		}
		prev := srcPos{-1, -1}
		prevTime := int64(-1)
		for _, rec := range recs {
			id, ok := requestID(rec)
			h, known := ex.hits[id]
			if !ok || !known {
				continue // verify counts it as foreign
			}
			r.stats.ordered++
			if tm := eventTimeRE.FindSubmatch(rec); tm != nil {
				t, _ := strconv.ParseInt(string(tm[1]), 10, 64)
				if in.format == ocsfParquet {
					// Parquet rows are ordered by time, and records of
					// one time in (partition, offset) order.
					switch {
					case t < prevTime:
						r.stagedBreaks++
						r.example("%s/%s: hit %x of time %d after one of time %d: not in time order", in.bucket, key, id, t, prevTime)
					case t > prevTime:
						prev = srcPos{-1, -1}
					}
					prevTime = t
				}
				if t > h.time.Unix()+300 { // max_future_skew, 5m
					t = h.time.Unix()
				}
				if w := t - t%windowSecs; w != ws {
					r.stagedBreaks++
					r.example("%s/%s: hit %x of time %d (window %d) in the object of window %d", in.bucket, key, id, t, w, ws)
				}
			}
			pos, ok := ex.after(id, prev)
			if !ok {
				r.stagedBreaks++
				r.example("%s/%s: hit %x (at %v) after %d/%d: not in (partition, offset) order", in.bucket, key, id, ex.positions(id), prev.partition, prev.offset)
				continue
			}
			prev = pos
		}
	}
	for ws, keys := range mains {
		if len(keys) > 1 {
			r.stagedBreaks++
			r.example("%s: window %d has %d main objects %v", in.name, ws, len(keys), keys)
		}
	}
	for ws, ns := range lates {
		slices.Sort(ns)
		for i, n := range ns {
			if n != i+1 {
				r.stagedBreaks++
				r.example("%s: window %d has late objects %v (under %q): numbered with a gap or a number twice", in.name, ws, ns, prefixes)
				break
			}
		}
	}
}

// checkStaging checks the staging bucket against the customers' objects
// (cust: integration name -> key -> bytes):
//   - every intent has a manifest, unless its integration is no longer
//     configured (then it waits, as its segments do);
//   - every manifest's object is in its integration's bucket with the
//     manifest's record count and SHA-256, and holds exactly the records
//     (request ids) at the identities its intent lists, all of the intent's
//     tenant; no two manifests name one customer key (two assemblies of one
//     object name: one would overwrite the other);
//   - every customer object is some manifest's;
//   - every segment left belongs to an integration no longer configured, and
//     holds only records of its tenant, each at the offset it says.
func (w *world) checkStaging(ctx context.Context, r *report, ex *expected, cust map[string]map[string][]byte) error {
	// A read races with a delete (a replica may still tidy up): again then.
	var objs map[string][]byte
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		if objs, err = w.s3.Objects(ctx, parkBucket); err == nil || !sleepCtx(ctx, time.Second) {
			break
		}
	}
	if err != nil {
		return err
	}
	idAt := ex.idAt()
	bucketOf := make(map[string]integration)
	for _, in := range allIntegrations(w.ins, w.after) {
		bucketOf[in.name] = in
	}
	intents := make(map[string]*intentDoc) // target/window/object -> intent
	manifests := make(map[string]*manifestDoc)
	var segKeys []string
	for k, data := range objs {
		if _, ok := parseSegmentKey(k); ok {
			segKeys = append(segKeys, k)
			continue
		}
		target, obj, kind, ok := objKey(k)
		if !ok {
			if strings.HasPrefix(k, stagingPrefix) {
				r.stagedBreaks++
				r.example("staging bucket: %s is neither a segment, an intent nor a manifest", k)
			}
			continue
		}
		switch kind {
		case "intent":
			var in intentDoc
			if err := json.Unmarshal(data, &in); err != nil || in.Target != target {
				r.stagedBreaks++
				r.example("staging bucket: intent %s unreadable or of another target (%v)", k, err)
				continue
			}
			intents[target+"/"+obj] = &in
		case "manifest":
			var m manifestDoc
			if err := json.Unmarshal(data, &m); err != nil {
				r.stagedBreaks++
				r.example("staging bucket: manifest %s unreadable: %v", k, err)
				continue
			}
			manifests[target+"/"+obj] = &m
		}
	}
	named := make(map[string]map[string][]string) // integration -> customer key -> manifests naming it
	for k, m := range manifests {
		in := intents[k]
		if in == nil {
			r.stagedBreaks++
			r.example("staging bucket: manifest %s without its intent", k)
			continue
		}
		r.stats.manifests++
		if m.Key != in.Key || m.Records != in.Records || m.SHA256 != in.SHA256 || (m.State != "delivered" && m.State != "parked") {
			r.stagedBreaks++
			r.example("staging bucket: manifest %s (%+v) does not match its intent (key %s, %d records, sha256 %s)", k, *m, in.Key, in.Records, in.SHA256)
		}
		if named[in.Integration] == nil {
			named[in.Integration] = make(map[string][]string)
		}
		named[in.Integration][in.Key] = append(named[in.Integration][in.Key], k)
		data, ok := cust[in.Integration][in.Key]
		if !ok {
			r.stagedBreaks++
			r.example("%s: manifest %s names %s, which is not in bucket %s", in.Integration, k, in.Key, bucketOf[in.Integration].bucket)
			continue
		}
		sum := sha256.Sum256(data)
		if hex.EncodeToString(sum[:]) != in.SHA256 {
			r.stagedBreaks++
			r.example("%s: %s is not the object manifest %s delivered (its SHA-256 differs: overwritten by another object?)", in.Integration, in.Key, k)
			continue
		}
		pos, err := in.positions()
		if err != nil {
			r.stagedBreaks++
			r.example("staging bucket: intent %s: %v", k, err)
			continue
		}
		recs, err := splitRecords(in.Key, bucketOf[in.Integration].format, data)
		if err != nil {
			continue // verify reports it
		}
		var want, got []string
		for _, p := range pos {
			id, ok := idAt[p]
			if !ok || ex.hits[id].client != in.ClientID {
				r.stagedBreaks++
				r.example("staging bucket: intent %s (tenant %d) lists %d/%d, not a hit of its tenant", k, in.ClientID, p.partition, p.offset)
			}
			want = append(want, hex.EncodeToString(id[:]))
		}
		for _, rec := range recs {
			id, _ := requestID(rec)
			got = append(got, hex.EncodeToString(id[:]))
		}
		slices.Sort(want)
		slices.Sort(got)
		if len(pos) != in.Records || !slices.Equal(want, got) {
			r.stagedBreaks++
			r.example("%s: %s holds %d records, its intent %s lists %d identities (%d records): not the same hits", in.Integration, in.Key, len(got), k, len(want), in.Records)
		}
	}
	for name, keys := range named {
		for key, ms := range keys {
			if len(ms) > 1 {
				sort.Strings(ms)
				var what []string
				for _, k := range ms {
					pos, _ := intents[k].positions()
					what = append(what, fmt.Sprintf("%s: %d records at %v, sha256 %.12s", k, len(pos), pos[:min(len(pos), 4)], intents[k].SHA256))
				}
				r.stagedBreaks++
				r.example("%s: %d assemblies wrote customer key %s, each overwriting the other (%s)", name, len(ms), key, strings.Join(what, "; "))
			}
		}
	}
	// Open intents: only of integrations no longer configured.
	openKeys := make(map[string]map[string]bool) // integration -> customer keys of open intents
	for k, in := range intents {
		if manifests[k] != nil {
			continue
		}
		if openKeys[in.Integration] == nil {
			openKeys[in.Integration] = make(map[string]bool)
		}
		openKeys[in.Integration][in.Key] = true
		if w.configuredNow(in.Target) {
			r.stagedBreaks++
			r.example("staging bucket: intent %s (%s) has no manifest: an object never finished", k, in.Key)
			continue
		}
		r.stats.waitingIntents++
	}
	for name, keys := range cust {
		for key := range keys {
			if len(named[name][key]) == 0 && !openKeys[name][key] {
				r.stagedBreaks++
				r.example("%s: %s is no assembly's (no manifest names it)", name, key)
			}
		}
	}
	// Segments left: of integrations no longer configured, of their tenant.
	sort.Strings(segKeys)
	for _, k := range segKeys {
		s, _ := parseSegmentKey(k)
		if w.configuredNow(s.target) {
			r.stagedBreaks++
			r.example("staging bucket: segment %s left for %s, which is configured", k, s.target)
			continue
		}
		r.stats.waiting++
		_, client, _ := targetOf(s.target)
		for _, line := range bytes.Split(bytes.TrimSuffix(objs[k], []byte("\n")), []byte("\n")) {
			offText, rec, ok := bytes.Cut(line, []byte(" "))
			off, err := strconv.ParseInt(string(offText), 10, 64)
			id, idOK := requestID(rec)
			if !ok || err != nil || !idOK || idAt[srcPos{s.partition, off}] != id || ex.hits[id].client != client {
				r.stagedBreaks++
				r.example("staging bucket: segment %s (tenant %d) holds %.60q, not a hit of its tenant at the offset it says", k, client, line)
				continue
			}
			r.stats.waitingRecords++
		}
	}
	return nil
}

// after returns the least position of hit id after prev (gen's retried
// copies have more than one), false if none is.
func (ex *expected) after(id reqID, prev srcPos) (srcPos, bool) {
	for _, p := range ex.positions(id) {
		if p.partition > prev.partition || p.partition == prev.partition && p.offset > prev.offset {
			return p, true
		}
	}
	return srcPos{}, false
}

// positions returns every position of hit id, in (partition, offset) order.
func (ex *expected) positions(id reqID) []srcPos {
	ps := append([]srcPos{ex.hits[id].pos}, ex.morePos[id]...)
	slices.SortFunc(ps, func(a, b srcPos) int {
		if a.partition != b.partition {
			return a.partition - b.partition
		}
		return int(a.offset - b.offset)
	})
	return ps
}

// idAt maps every well-formed hit record's position to its request id.
func (ex *expected) idAt() map[srcPos]reqID {
	out := make(map[srcPos]reqID, len(ex.hits))
	for id, h := range ex.hits {
		out[h.pos] = id
		for _, p := range ex.morePos[id] {
			out[p] = id
		}
	}
	return out
}

// stagingOutage is the staging bucket's outage as the test saw it: the
// high-water marks right after it began and the committed offsets right
// before it ended.
type stagingOutage struct {
	from, to  time.Duration
	highWater map[int]int64
	committed map[int]int64
}

// check proves the offsets were held: no partition committed past the
// first record, at or after the high-water mark at the outage's start, of a
// tenant whose integrations did not change (every such record is in a
// buffer, and no buffer with one could be staged). It also needs such a
// record in most partitions, or the outage held nothing to prove.
func (o *stagingOutage) check(r *report, ex *expected, steady map[int64]bool) {
	first := make(map[int]int64)
	for id, h := range ex.hits {
		if !steady[h.client] {
			continue
		}
		for _, p := range ex.positions(id) {
			hw, ok := o.highWater[p.partition]
			if f, seen := first[p.partition]; ok && p.offset >= hw && (!seen || p.offset < f) {
				first[p.partition] = p.offset
			}
		}
	}
	held := 0
	for p, f := range first {
		if c := o.committed[p]; c > f {
			r.stagedBreaks++
			r.example("staging outage: partition %d committed %d while the staging bucket was down, past its record %d (read after the outage began, so not staged)", p, c, f)
			continue
		}
		held++
	}
	r.stats.outageNote = fmt.Sprintf("staging bucket down from +%s to +%s: %d of %d partitions held their offsets at or before the first record read since (%d records refused as segments in the replicas' logs)",
		o.from.Round(100*time.Millisecond), o.to.Round(100*time.Millisecond), held, partitions, r.stats.stagingErrors)
	if len(first) < partitions/2 {
		r.stagedBreaks++
		r.example("staging outage: only %d partitions got records of steady tenants during it: it proved nothing", len(first))
	}
}

// stagingErrors counts the replicas' log lines of a segment the staging
// bucket refused.
func stagingErrors(reps []*replica) int {
	n := 0
	for _, r := range reps {
		b, _ := os.ReadFile(r.logPath)
		n += bytes.Count(b, []byte("cannot write a segment to the staging bucket"))
	}
	return n
}

// killWhileAssembling waits for the next window end, then for a replica that
// has an object in hand (intent written, manifest not), within 8 s, and
// SIGKILLs it; it tries up to tries window ends. It returns what it did, ""
// if it found no replica assembling. skip says a replica must not be killed
// now.
func killWhileAssembling(ctx context.Context, w *world, reps []*replica, tries int, downFor time.Duration, skip func(*replica) bool,
	log func(string)) string {
	for range tries {
		end := time.Now().Truncate(windowSecs * time.Second).Add(windowSecs * time.Second)
		if !sleepCtx(ctx, time.Until(end)) {
			return ""
		}
		for deadline := end.Add(8 * time.Second); time.Now().Before(deadline); {
			for _, r := range reps {
				if skip(r) {
					continue
				}
				hand := r.tap.inHand()
				if len(hand) == 0 || w.manifested(hand[0]) { // the bucket has the last word
					continue
				}
				what := fmt.Sprintf("SIGKILL %s while assembling, %.1fs after the window end %s: %d objects in hand (intent written, no manifest), e.g. %s",
					r.name, time.Since(end).Seconds(), end.UTC().Format("15:04:05"), len(hand), strings.TrimPrefix(hand[0], stagingPrefix+"obj/"))
				log(what)
				r.kill()
				sleepCtx(ctx, downFor)
				if err := r.start(); err != nil {
					log(fmt.Sprintf("restart %s: %v", r.name, err))
				}
				return what
			}
			if !sleepCtx(ctx, 20*time.Millisecond) {
				return ""
			}
		}
		log(fmt.Sprintf("no replica had an object in hand within 8 s of the window end %s; trying the next", end.UTC().Format("15:04:05")))
	}
	return ""
}

// stagingDiagnosis says what holds up staged delivery: the intents without a
// manifest of integrations configured now, and the assemblers' leases in
// Redis with the time they have left.
func (w *world) stagingDiagnosis(ctx context.Context) string {
	var b strings.Builder
	keys, err := w.s3.Keys(parkBucket, stagingPrefix)
	if err != nil {
		return err.Error()
	}
	have := make(map[string]bool, len(keys))
	for _, k := range keys {
		have[k] = true
	}
	n := 0
	for _, k := range keys {
		if t, _, kind, ok := objKey(k); ok && kind == "intent" && w.configuredNow(t) && !have[strings.TrimSuffix(k, ".intent")+".manifest"] {
			if n++; n <= 20 {
				fmt.Fprintf(&b, "intent without a manifest: %s\n", k)
			}
		}
	}
	err = w.redis.scan(ctx, keyPrefix+"*:assemble:*", func(c redis.Cmdable, key string) {
		ttl, _ := c.TTL(ctx, key).Result()
		fmt.Fprintf(&b, "assembler lease %s: expires in %s\n", key, ttl)
	})
	if err != nil {
		fmt.Fprintf(&b, "leases: %v\n", err)
	}
	return b.String()
}
