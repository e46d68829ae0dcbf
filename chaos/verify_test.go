package chaos

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"

	"hitship/delivery/retry"
)

// reqID is a hit's request_id (hitgen writes 16 random bytes as 32 hex digits).
type reqID [16]byte

// srcPos is a record's place in the source topic.
type srcPos struct {
	partition int
	offset    int64
}

// expected is what the source topic holds, read back after `hitship gen` ended:
// the ground truth of the verification.
type expected struct {
	records   int64
	wellShape int64
	// hits: request id -> tenant and how many records carry it (more than
	// one only when gen retried a batch whose acknowledgement was lost).
	hits      map[reqID]hitInfo
	malformed map[srcPos]bool
	byClient  map[int64][]reqID
	// morePos: the positions of a hit's copies after the first (gen's
	// retries; the staged checks need every record's identity).
	morePos map[reqID][]srcPos
}

type hitInfo struct {
	client int64
	copies int32
	// Where and when the (first) record of the hit was produced.
	pos  srcPos
	time time.Time
}

// readTopicAgain calls reset, then reads the whole topic; on a read error
// (kfake under load answers slowly) it starts over, up to 5 times.
func (w *world) readTopicAgain(ctx context.Context, name string, reset func(), fn func(m *kafka.Message) error) error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		reset()
		if err = w.readTopic(ctx, name, fn); err == nil || ctx.Err() != nil {
			return err
		}
		if !sleepCtx(ctx, 2*time.Second) {
			return err
		}
	}
	return err
}

// readTopic streams every record of topic up to the high-water marks taken
// now and calls fn for each. The timeout turns a stalled read into an error
// that readTopicAgain starts over from.
func (w *world) readTopic(ctx context.Context, name string, fn func(m *kafka.Message) error) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	return w.kafka.Scan(ctx, name, fn)
}

// requestID finds the request_id of a well-formed hit record.
func requestID(rec []byte) (reqID, bool) {
	const tag = `"request_id":"`
	var id reqID
	i := bytes.Index(rec, []byte(tag))
	if i < 0 || len(rec) < i+len(tag)+33 || rec[i+len(tag)+32] != '"' {
		return id, false
	}
	if _, err := hex.Decode(id[:], rec[i+len(tag):i+len(tag)+32]); err != nil {
		return id, false
	}
	return id, true
}

// wellFormed is the test's own idea of a good record, independent of
// hitship's scanner: valid UTF-8, a JSON object, with a request id.
func wellFormed(v []byte) (reqID, bool) {
	if !utf8.Valid(v) || !json.Valid(v) || len(v) == 0 || v[0] != '{' {
		return reqID{}, false
	}
	return requestID(v)
}

func clientHeader(m *kafka.Message) (int64, bool) {
	for _, h := range m.Headers {
		if h.Key == "client_id" {
			c, err := strconv.ParseInt(string(h.Value), 10, 64)
			return c, err == nil && c > 0
		}
	}
	return 0, false
}

func (w *world) readExpected(ctx context.Context) (*expected, error) {
	var ex *expected
	reset := func() {
		ex = &expected{hits: make(map[reqID]hitInfo), malformed: make(map[srcPos]bool), byClient: make(map[int64][]reqID),
			morePos: make(map[reqID][]srcPos)}
	}
	err := w.readTopicAgain(ctx, topic, reset, func(m *kafka.Message) error {
		ex.records++
		id, ok := wellFormed(m.Value)
		client, hasClient := clientHeader(m)
		if !ok || !hasClient {
			ex.malformed[srcPos{m.Partition, m.Offset}] = true
			return nil
		}
		ex.wellShape++
		h := ex.hits[id]
		if h.copies > 0 && h.client != client {
			return fmt.Errorf("request id %x is used by tenants %d and %d", id, h.client, client)
		}
		if h.copies == 0 {
			ex.byClient[client] = append(ex.byClient[client], id)
			h.pos, h.time = srcPos{m.Partition, m.Offset}, m.Time
		} else {
			ex.morePos[id] = append(ex.morePos[id], srcPos{m.Partition, m.Offset})
		}
		h.client = client
		h.copies++
		ex.hits[id] = h
		return nil
	})
	return ex, err
}

// report is the outcome of the verification.
type report struct {
	records, wellFormed, malformed int64
	topicCopies                    int64 // extra copies of a hit in the source topic (gen retries)
	toDeliver                      int64 // sum over integrations of the hits of its tenant
	delivered                      int64 // of those, found
	duplicates                     int64 // extra copies in S3 the README does not explain
	documented                     int64 // extra copies from a replay without the window snapshot Redis lost (README "Redis data loss")
	missing                        int64
	foreign                        int64 // records in a bucket that do not belong there
	misrouted                      int64 // breaks of a runtime change's rule (timeline_test.go)
	changes                        []string
	objects                        int64
	deadLettered                   int64 // malformed records found in the dead-letter topic
	deadMissing                    int64
	deadCopies                     int64 // extra copies in the dead-letter topic (at-least-once)
	deadUnknown                    int64 // dead letters not pointing at a malformed record
	examples                       []string
	exampleKinds                   map[string]int
	// replays: where partitions replayed without the state Redis lost (the
	// replicas' warnings).
	replays stateless
	// staged: the run was on the staged path (delivery.staged): no copy
	// beyond the topic's is documented, and the staged checks apply.
	staged       bool
	stagedBreaks int64 // breaks of the staged path's rules (staged_test.go)
	stats        stagedStats
	// rewrites counts customer keys written again with the same bytes;
	// differ names those written again with other bytes (putLedger).
	rewrites, rewritesParquet int
	differ                    []string
}

// example keeps up to 5 examples of each kind (the format string).
func (r *report) example(format string, args ...any) {
	if r.exampleKinds == nil {
		r.exampleKinds = make(map[string]int)
	}
	if r.exampleKinds[format] < 5 {
		r.exampleKinds[format]++
		r.examples = append(r.examples, fmt.Sprintf(format, args...))
	}
}

// extraCopies counts the copies of a hit beyond want, found under keys,
// as documented (a replay without the snapshot Redis lost rewrote a window
// open at the committed offset: one object began before the replay's offset,
// another at or after it) or not.
func (r *report) extraCopies(name string, id reqID, want int32, keys []string) {
	if int32(len(keys)) <= want {
		return
	}
	extra := int64(int32(len(keys)) - want)
	if r.staged {
		// Intents hold every record once per window, whatever Redis lost.
		r.duplicates += extra
		r.example("%s: hit %x written %d times, want %d (in %v)", name, id, len(keys), want, keys)
		return
	}
	lo, hi, part := int64(-1), int64(-1), -1
	for _, k := range keys {
		p, first, ok := keyOffsets(k)
		if !ok {
			continue
		}
		part = p
		if lo < 0 || first < lo {
			lo = first
		}
		hi = max(hi, first)
	}
	for _, at := range r.replays.snapshot[part] {
		if lo < at && at <= hi {
			r.documented += extra
			return
		}
	}
	// The same object under two destinations of a moved integration: a
	// replay without routing state sent its records to the new one too.
	if lo == hi && len(keys) > 1 {
		for _, at := range r.replays.routing[part] {
			if at <= lo {
				r.documented += extra
				return
			}
		}
	}
	r.duplicates += extra
	r.example("%s: hit %x written %d times, want %d (in %v)", name, id, len(keys), want, keys)
}

// keyOffsets reads the partition and first offset from an object key
// ({prefix}wallarm_hits_{window}_{partition}_{first offset}_{digest}.{ext}).
func keyOffsets(key string) (partition int, first int64, ok bool) {
	base := key[strings.LastIndexByte(key, '/')+1:]
	f := strings.Split(strings.SplitN(base, ".", 2)[0], "_")
	if len(f) < 6 {
		return 0, 0, false
	}
	p, err1 := strconv.Atoi(f[3])
	o, err2 := strconv.ParseInt(f[4], 10, 64)
	return p, o, err1 == nil && err2 == nil
}

func (r *report) String() string {
	if r.staged {
		return r.stagedString() + "\n" + r.rewritesString()
	}
	return r.rewritesString() + "\n" + fmt.Sprintf("sent %d records (%d well-formed hits, %d malformed; %d extra copies from producer retries)\n"+
		"hits to deliver (hit x integration): %d, delivered: %d, duplicates: %d, missing: %d, misplaced: %d, objects: %d\n"+
		"documented duplicates (replays without the state Redis lost: %d without the window snapshot, %d without routing state): %d\n"+
		"dead-lettered: %d of %d malformed (missing %d, extra copies %d, unknown %d)\n"+
		"runtime changes (%d breaks of their rules):\n  %s",
		r.records, r.wellFormed, r.malformed, r.topicCopies,
		r.toDeliver, r.delivered, r.duplicates, r.missing, r.foreign, r.objects,
		replayCount(r.replays.snapshot), replayCount(r.replays.routing), r.documented,
		r.deadLettered, r.malformed, r.deadMissing, r.deadCopies, r.deadUnknown,
		r.misrouted, strings.Join(r.changes, "\n  "))
}

// failed reports a loss or a duplicate.
func (r *report) failed() bool {
	return r.missing > 0 || r.duplicates > 0 || r.foreign > 0 || r.misrouted > 0 || r.deadMissing > 0 || r.deadUnknown > 0 ||
		r.stagedBreaks > 0 || r.staged && r.documented > 0 || len(r.differ) > 0
}

// rewritesString says what the ledger of customer PUTs saw.
func (r *report) rewritesString() string {
	return fmt.Sprintf("customer keys written again: %d with the same bytes (%d of them Parquet), %d with other bytes %q",
		r.rewrites, r.rewritesParquet, len(r.differ), r.differ)
}

// stagedString is String on the staged path.
func (r *report) stagedString() string {
	s := r.stats
	out := fmt.Sprintf("sent %d records (%d well-formed hits, %d malformed; %d extra copies from producer retries)\n"+
		"hits to deliver (hit x integration): %d, delivered: %d, duplicates: %d, missing: %d, misplaced: %d\n"+
		"staged: %d customer objects (%d main, %d late), %d manifests; %d records checked for window and (partition, offset) order; breaks of the staged rules: %d\n"+
		"waiting in the staging bucket for integrations no longer configured: %d segments (%d records, each of its tenant), %d intents\n"+
		"replays without the state Redis lost (replicas' warnings: %d without the window snapshot, %d without routing state): no copy is documented on this path\n"+
		"dead-lettered: %d of %d malformed (missing %d, extra copies %d, unknown %d)\n",
		r.records, r.wellFormed, r.malformed, r.topicCopies,
		r.toDeliver, r.delivered, r.duplicates, r.missing, r.foreign,
		s.mains+s.lates, s.mains, s.lates, s.manifests, s.ordered, r.stagedBreaks,
		s.waiting, s.waitingRecords, s.waitingIntents,
		replayCount(r.replays.snapshot), replayCount(r.replays.routing),
		r.deadLettered, r.malformed, r.deadMissing, r.deadCopies, r.deadUnknown)
	if s.outageNote != "" {
		out += s.outageNote + "\n"
	}
	for _, k := range s.assemblyKills {
		out += "kill while assembling: " + k + "\n"
	}
	return out + fmt.Sprintf("runtime changes (%d breaks of their rules):\n  %s", r.misrouted, strings.Join(r.changes, "\n  "))
}

func replayCount(m map[int][]int64) (n int) {
	for _, v := range m {
		n += len(v)
	}
	return n
}

// verify checks S3 and the dead-letter topic against ex; tl says when the
// runtime changes happened (nil: there were none), replays where partitions
// replayed without the state Redis lost.
func (w *world) verify(ctx context.Context, ex *expected, tl *timeline, replays stateless) (*report, error) {
	r := &report{records: ex.records, wellFormed: ex.wellShape, malformed: int64(len(ex.malformed)), replays: replays, staged: w.staged}
	r.rewrites, r.rewritesParquet, r.differ = w.puts.counts()
	for _, h := range ex.hits {
		r.topicCopies += int64(h.copies - 1)
	}
	cust := make(map[string]map[string][]byte) // integration -> key -> object
	for _, in := range allIntegrations(w.ins, w.after) {
		objs, err := w.s3.Objects(ctx, in.bucket)
		if err != nil {
			return nil, err
		}
		cust[in.name] = objs
		if w.staged {
			prefixes := []string{in.keyPrefix()}
			if before := w.find(in.name, allIntegrations(w.after, w.ins)); before.keyPrefix() != in.keyPrefix() {
				prefixes = append(prefixes, before.keyPrefix()) // moved: what was assembled before the move
			}
			r.checkStagedObjects(ex, in, prefixes, objs)
		}
		if tl != nil && tl.special(in.name) {
			if err := tl.verify(r, ex, w.find(in.name, allIntegrations(w.after, w.ins)), in, objs); err != nil {
				return nil, err
			}
			continue
		}
		seen := make(map[reqID]int32)
		keys := make(map[reqID][]string) // the objects holding each hit
		for key, data := range objs {
			r.objects++
			recs, err := splitRecords(key, in.format, data)
			if err != nil {
				return nil, fmt.Errorf("%s/%s (%d bytes, %q ... %q): %w", in.bucket, key, len(data), head(data), tail(data), err)
			}
			for _, rec := range recs {
				id, ok := requestID(rec)
				h, known := ex.hits[id]
				if !ok || !known || h.client != in.client {
					r.foreign++
					r.example("%s/%s holds a record of another tenant or unknown: %.80s", in.bucket, key, rec)
					continue
				}
				seen[id]++
				keys[id] = append(keys[id], key)
			}
		}
		for _, id := range ex.byClient[in.client] {
			want, got := ex.hits[id].copies, seen[id]
			r.toDeliver += int64(want)
			r.delivered += int64(min(want, got))
			switch {
			case got < want:
				r.missing += int64(want - got)
				h := ex.hits[id]
				r.example("%s: hit %x at %d/%d made %s missing (%d of %d)", in.name, id, h.pos.partition, h.pos.offset, h.time.Format("15:04:05.000"), got, want)
			case got > want:
				r.extraCopies(in.name, id, want, keys[id])
			}
		}
	}
	if w.staged {
		if err := w.checkStaging(ctx, r, ex, cust); err != nil {
			return nil, err
		}
	}
	var dead map[srcPos]int
	reset := func() { dead, r.deadUnknown = make(map[srcPos]int), 0 }
	err := w.readTopicAgain(ctx, dlqTopic, reset, func(m *kafka.Message) error {
		var pos srcPos
		var okP, okO bool
		for _, h := range m.Headers {
			switch h.Key {
			case "hitship_source_partition":
				p, err := strconv.Atoi(string(h.Value))
				pos.partition, okP = p, err == nil
			case "hitship_source_offset":
				o, err := strconv.ParseInt(string(h.Value), 10, 64)
				pos.offset, okO = o, err == nil
			}
		}
		if !okP || !okO || !ex.malformed[pos] {
			r.deadUnknown++
			r.example("dead letter without a malformed source record: %v", m.Headers)
			return nil
		}
		dead[pos]++
		return nil
	})
	if err != nil {
		return nil, err
	}
	for pos := range ex.malformed {
		n := dead[pos]
		if n == 0 {
			r.deadMissing++
			r.example("malformed record at %d/%d not in the dead-letter topic", pos.partition, pos.offset)
			continue
		}
		r.deadLettered++
		r.deadCopies += int64(n - 1)
	}
	return r, nil
}

// head and tail are the ends of an object, for an error message.
func head(b []byte) []byte { return b[:min(len(b), 120)] }
func tail(b []byte) []byte { return b[max(0, len(b)-120):] }

// splitRecords splits an object into records by its format.
func splitRecords(key, format string, data []byte) ([][]byte, error) {
	switch format {
	case ocsfParquet:
		if !strings.HasSuffix(key, ".parquet") {
			return nil, errors.New("Parquet object without .parquet")
		}
		return parquetRecords(data)
	case "ndjson":
		if !strings.HasSuffix(key, ".jsonl") {
			return nil, errors.New("NDJSON object without .jsonl")
		}
		if len(data) == 0 || data[len(data)-1] != '\n' {
			return nil, errors.New("NDJSON does not end in a newline")
		}
		return bytes.Split(data[:len(data)-1], []byte("\n")), nil
	default:
		if !strings.HasSuffix(key, ".json") {
			return nil, errors.New("JSON object without .json")
		}
		if !bytes.HasPrefix(data, []byte("[\n")) || !bytes.HasSuffix(data, []byte("\n]\n")) {
			return nil, errors.New("not a JSON array in the documented layout")
		}
		return bytes.Split(data[2:len(data)-3], []byte(",\n")), nil
	}
}

// committedToEnd reports whether the group committed every partition to its
// high-water mark, and how far it is behind in all.
func (w *world) committedToEnd(ctx context.Context) (bool, int64, error) {
	hw, err := w.kafka.HighWater(ctx, topic)
	if err != nil {
		return false, 0, err
	}
	c, err := w.kafka.Committed(ctx, group, topic)
	if err != nil {
		return false, 0, err
	}
	var lag int64
	for p, h := range hw {
		lag += h - c[p]
	}
	return lag == 0, lag, nil
}

// leftovers counts what is still parked: retry entries in Redis and objects
// under the parking bucket's parked/ and dead/ prefixes.
func (w *world) leftovers(ctx context.Context) (entries int, stats retry.Stats, parked, dead int, err error) {
	q, err := retry.NewQueue(w.redis.client, retry.QueueConfig{Prefix: keyPrefix})
	if err != nil {
		return 0, stats, 0, 0, err
	}
	if stats, err = q.Stats(ctx, time.Now()); err != nil {
		return 0, stats, 0, 0, err
	}
	es, err := q.ListByIntegration(ctx, "")
	if err != nil {
		return 0, stats, 0, 0, err
	}
	// Keys only: the staging bucket is large and changes all the time.
	keys, err := w.s3.Keys(parkBucket, parkPrefix)
	if err != nil {
		return 0, stats, 0, 0, err
	}
	for _, k := range keys {
		switch {
		case strings.HasPrefix(k, parkPrefix+"parked/"):
			parked++
		case strings.HasPrefix(k, parkPrefix+"dead/"):
			dead++
		}
	}
	return len(es), stats, parked, dead, nil
}

// reverseProxy forwards to target, keeping the Host header (SigV4 signatures
// stay valid).
func reverseProxy(target string) (http.Handler, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	rp := httputil.NewSingleHostReverseProxy(u)
	// A client that gives up (a killed replica, an upload timeout) is
	// normal here, not worth a line on stderr.
	rp.ErrorLog = log.New(io.Discard, "", 0)
	return rp, nil
}
