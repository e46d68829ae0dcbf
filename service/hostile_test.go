package service_test

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"

	"hitship/config"
	"hitship/sink"
)

// hostileCase is one record of TestHostileInput.
type hostileCase struct {
	name       string
	value      []byte
	headers    []kafka.Header
	recTime    time.Time
	out        badOutcome
	wantReason string    // outDeadLetter
	deliverTo  int64     // outDeliver: the tenant whose integration receives it
	wantWindow time.Time // outDeliver: start of the window of the object holding it
	id         string    // request_id of a delivered record
}

func clientHeader(v string) []kafka.Header {
	return []kafka.Header{{Key: "client_id", Value: []byte(v)}}
}

// manyHeaders returns n headers named x-h00000...; client, when not "", is
// a client_id header placed first (first=true) or last.
func manyHeaders(n int, client string, first bool) []kafka.Header {
	hs := make([]kafka.Header, 0, n)
	for i := 0; len(hs) < n-1; i++ {
		hs = append(hs, kafka.Header{Key: fmt.Sprintf("x-h%05d", i), Value: []byte("v")})
	}
	if client == "" {
		return append(hs, kafka.Header{Key: "x-last", Value: []byte("v")})
	}
	c := kafka.Header{Key: "client_id", Value: []byte(client)}
	if first {
		return append([]kafka.Header{c}, hs...)
	}
	return append(hs, c)
}

// TestHostileInput: hostile records through the real pipeline (kfake, the
// consumer, S3 behind the PutObject-only proxy), each followed by a good hit
// on the same partition. What TestBadInput already proves (100,000 levels of
// nesting, raw NUL and invalid UTF-8 in a value, time as an object, garbage
// client_id header) is not repeated. This test adds: a 100 MB record with the
// default max_record_bytes and broker limits (dead letter too_large, cut to
// max_record_bytes with hitship_truncated_from); duplicate keys (the last one
// wins, as encoding/json into a map: hit/doc.go) and duplicate client_id
// headers (the first one is used); client_id headers and bodies with "../",
// slashes, NUL and control characters (never a tenant: the header counts as
// missing, the body value as absent); NUL, overlong and surrogate bytes;
// 10,000 headers; hit times that render extreme key parts. None crashes or
// stalls its partition: every good record behind them is delivered exactly
// once and the group's offsets reach the end. Every key in the buckets, made
// with a template using every placeholder, stays under the integration's
// prefix with no "." or ".." segment and no control character.
func TestHostileInput(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	buckets := []string{"b-one", "b-two"}
	e := newEnv(t, 2, buckets...)
	cfg := e.config(t, integ("one-json", 1, "b-one", "json"), integ("two-ndjson", 2, "b-two", "ndjson"))
	cfg.S3.KeyTemplate = "{prefix}{client_id}/dt={yyyy}-{mm}-{dd}/hour={hh}/{MM}/{integration}_{topic}_wallarm_hits_{window_start}_{partition}_{first_offset}_{digest}.{ext}"
	if ps := cfg.Validate(config.WithKeyTemplate(func(s string) error { _, err := sink.ParseKeyTemplate(s); return err })); len(ps) > 0 {
		t.Fatal(config.AsError(ps))
	}
	maxRecord := int(cfg.Kafka.MaxRecordBytes) // the default: 1 MiB
	bucketOf := map[int64]string{1: "b-one", 2: "b-two"}

	base := time.Date(2023, 6, 20, 6, 0, 0, 0, time.UTC)
	fallbackRec := base.Add(35 * time.Minute) // window 06:30
	good := func(i int) []byte {
		return badHit(fmt.Sprintf("hgood%04d", i), badUnix(base.Add(time.Duration(i)*7*time.Second)), "")
	}
	deepTime := strings.Repeat("[", 500) + strings.Repeat("]", 500) // depth 501 of 512

	shapes := []hostileCase{
		// Duplicate keys: the last occurrence wins (hit/doc.go).
		{name: "duplicate time, the last is good", value: badHit("duptime", `"yesterday"`, `,"time":`+badUnix(base.Add(time.Minute))),
			headers: clientHeader("1"), recTime: fallbackRec, out: outDeliver, deliverTo: 1, wantWindow: base, id: "duptime"},
		{name: "duplicate time, the last is garbage", value: badHit("duptimegarbage", badUnix(base), `,"time":{"s":1}`),
			headers: clientHeader("2"), recTime: fallbackRec, out: outDeliver, deliverTo: 2, wantWindow: base.Add(30 * time.Minute), id: "duptimegarbage"},
		{name: "duplicate client_id in the body", value: badHit("dupclient", badUnix(base.Add(2*time.Minute)), `,"client_id":1,"client_id":2`),
			out: outDeliver, deliverTo: 2, wantWindow: base, id: "dupclient"},
		{name: "duplicate client_id headers: the first is used", value: badHit("dupheader", badUnix(base.Add(2*time.Minute)), ""),
			headers: append(clientHeader("2"), clientHeader("1")...), out: outDeliver, deliverTo: 2, wantWindow: base, id: "dupheader"},
		// Tenants with path and control characters: never a tenant.
		{name: "client_id header ../1, tenant from the body", value: badHit("headerdotdot", badUnix(base.Add(3*time.Minute)), `,"client_id":2`),
			headers: clientHeader("../1"), out: outDeliver, deliverTo: 2, wantWindow: base, id: "headerdotdot"},
		{name: "client_id header 1/2", value: badHit("headerslash", badUnix(base), ""), headers: clientHeader("1/2"), out: outDeadLetter, wantReason: "no_tenant"},
		{name: "client_id header with a newline", value: badHit("headernl", badUnix(base), ""), headers: clientHeader("1\n"), out: outDeadLetter, wantReason: "no_tenant"},
		{name: "client_id header with a NUL, tenant from the body", value: badHit("headernul", badUnix(base.Add(3*time.Minute)), `,"client_id":1`),
			headers: clientHeader("2\x00"), out: outDeliver, deliverTo: 1, wantWindow: base, id: "headernul"},
		{name: "client_id header -1", value: badHit("headerneg", badUnix(base), ""), headers: clientHeader("-1"), out: outDeadLetter, wantReason: "no_tenant"},
		{name: "client_id header in fullwidth digits", value: badHit("headerwide", badUnix(base), ""), headers: clientHeader("１"), out: outDeadLetter, wantReason: "no_tenant"},
		{name: "client_id header 0", value: badHit("headerzero", badUnix(base), ""), headers: clientHeader("0"), out: outDeadLetter, wantReason: "no_tenant"},
		{name: "body client_id ../2", value: badHit("bodydotdot", badUnix(base), `,"client_id":"../2"`), out: outDeadLetter, wantReason: "no_tenant"},
		{name: "body client_id 2/../1", value: badHit("bodyslash", badUnix(base), `,"client_id":"2/../1"`), out: outDeadLetter, wantReason: "no_tenant"},
		{name: "body client_id with an escaped NUL", value: badHit("bodynul", badUnix(base), `,"client_id":"2\u0000"`), out: outDeadLetter, wantReason: "no_tenant"},
		{name: "body client_id as escaped digits", value: badHit("bodyescaped", badUnix(base.Add(4*time.Minute)), `,"client_id":"\u0032"`),
			out: outDeliver, deliverTo: 2, wantWindow: base, id: "bodyescaped"},
		// NUL and invalid UTF-8 where TestBadInput does not put them.
		{name: "raw NUL between tokens", value: append(badHit("nultoken", badUnix(base), "")[:1], append([]byte{0}, badHit("nultoken", badUnix(base), "")[1:]...)...),
			headers: clientHeader("1"), out: outDeadLetter, wantReason: "not_json"},
		{name: "escaped NUL in a key", value: badHit("nulkey", badUnix(base.Add(5*time.Minute)), `,"\u0000time":"garbage"`),
			headers: clientHeader("1"), out: outDeliver, deliverTo: 1, wantWindow: base, id: "nulkey"},
		{name: "invalid UTF-8 in a key", value: badHit("utf8key", badUnix(base), ",\"ti\xffme\":1"), headers: clientHeader("2"), out: outDeadLetter, wantReason: "invalid_utf8"},
		{name: "overlong UTF-8 slash", value: badHit("overlong", badUnix(base), ",\"uri2\":\"/a\xc0\xaf..\xc0\xafb\""), headers: clientHeader("1"), out: outDeadLetter, wantReason: "invalid_utf8"},
		{name: "UTF-8 encoded surrogate", value: badHit("surrogate", badUnix(base), ",\"s\":\"\xed\xa0\x80\""), headers: clientHeader("2"), out: outDeadLetter, wantReason: "invalid_utf8"},
		{name: "time 500 levels deep", value: badHit("deeptime", deepTime, ""), headers: clientHeader("2"), recTime: fallbackRec.Add(time.Second),
			out: outDeliver, deliverTo: 2, wantWindow: base.Add(30 * time.Minute), id: "deeptime"},
		{name: "time 100,000 levels deep (default limits)", value: badHit("deeptime100k", strings.Repeat(`{"a":`, 100_000)+"1"+strings.Repeat("}", 100_000), ""),
			headers: clientHeader("1"), out: outDeadLetter, wantReason: "too_deep"},
		// Times that render extreme key parts: the epoch (a late window 0).
		{name: "time 0", value: badHit("timezero", `"0"`, ""), headers: clientHeader("1"), out: outDeliver, deliverTo: 1, wantWindow: time.Unix(0, 0), id: "timezero"},
		// Huge header counts.
		{name: "10,000 headers, client_id first", value: badHit("headers1", badUnix(base.Add(6*time.Minute)), ""), headers: manyHeaders(10_000, "1", true),
			out: outDeliver, deliverTo: 1, wantWindow: base, id: "headers1"},
		{name: "10,000 headers, client_id last", value: badHit("headers2", badUnix(base.Add(6*time.Minute)), ""), headers: manyHeaders(10_000, "2", false),
			out: outDeliver, deliverTo: 2, wantWindow: base, id: "headers2"},
		{name: "10,000 headers, not JSON", value: []byte("not json"), headers: manyHeaders(10_000, "", false), out: outDeadLetter, wantReason: "not_json"},
	}

	var cases []hostileCase
	var msgs []kafka.Message
	add := func(c hostileCase, partition int) {
		cases = append(cases, c)
		msgs = append(msgs, kafka.Message{Partition: partition, Key: []byte(fmt.Sprintf("k%03d", len(msgs))), Value: c.value, Headers: c.headers, Time: c.recTime})
	}
	for i, s := range shapes {
		if s.recTime.IsZero() {
			s.recTime = base.Add(time.Duration(i) * 7 * time.Second)
		}
		add(s, i%2)
		add(hostileCase{name: fmt.Sprintf("good after %q", s.name), value: good(i), headers: clientHeader(strconv.Itoa(1 + i%2)),
			recTime: base.Add(time.Duration(i) * 7 * time.Second), out: outDeliver, deliverTo: int64(1 + i%2), wantWindow: base, id: fmt.Sprintf("hgood%04d", i)}, i%2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := e.kafka.Produce(ctx, e.topic, msgs); err != nil {
		t.Fatal(err)
	}

	m := e.startMember(t, "a", cfg)
	waitFor(t, 45*time.Second, "offsets committed to the end", func() bool { return e.committedToEnd(t, cfg.Kafka.Group) })

	// Dead letters: each bad record once, with its reason.
	dlq, err := e.kafka.ReadAll(ctx, e.dlq)
	if err != nil {
		t.Fatal(err)
	}
	wantDead := 0
	for _, c := range cases {
		if c.out != outDeadLetter {
			continue
		}
		wantDead++
	}
	if len(dlq) != wantDead {
		t.Errorf("%d dead letters, want %d", len(dlq), wantDead)
	}
	srcByValuePrefix := func(c hostileCase) []kafka.Message {
		var out []kafka.Message
		for _, d := range dlq {
			n := min(len(c.value), maxRecord)
			if bytes.Equal(d.Value, c.value[:n]) {
				out = append(out, d)
			}
		}
		return out
	}
	for _, c := range cases {
		if c.out != outDeadLetter {
			continue
		}
		got := srcByValuePrefix(c)
		if len(got) != 1 {
			t.Errorf("%s: %d dead letters hold it, want 1", c.name, len(got))
			continue
		}
		d := got[0]
		if r := badHeader(d, "hitship_reason"); r != c.wantReason {
			t.Errorf("%s: dead letter reason %q, want %q", c.name, r, c.wantReason)
		}
		if len(d.Headers) > 64 {
			t.Errorf("%s: dead letter carries %d headers, want at most 64", c.name, len(d.Headers))
		}
		if len(c.value) > maxRecord {
			if g := badHeader(d, "hitship_truncated_from"); g != strconv.Itoa(len(c.value)) {
				t.Errorf("%s: hitship_truncated_from = %q, want %d", c.name, g, len(c.value))
			}
			if len(d.Value) != maxRecord {
				t.Errorf("%s: dead letter holds %d bytes, want the first %d", c.name, len(d.Value), maxRecord)
			}
		}
	}

	// Deliveries: exactly once, in the tenant's bucket, in the expected window,
	// bytes unchanged; every key under the prefix.
	byID := map[string]hostileCase{}
	for _, c := range cases {
		if c.id != "" {
			byID[c.id] = c
		}
	}
	keyRE := regexp.MustCompile(`^hits/([12])/dt=(\d{4})-(\d\d)-(\d\d)/hour=(\d\d)/(\d\d)/(one-json|two-ndjson)_hits_wallarm_hits_(\d+)_([01])_(\d+)_[0-9a-f]{16}\.(json|jsonl)$`)
	idRE := regexp.MustCompile(`"request_id":"([^"]*)"`)
	seen := map[string]map[string]int{}
	for _, o := range e.objects(t, buckets...) {
		checkKeyUnderPrefix(t, o.bucket, o.key, "hits/")
		km := keyRE.FindStringSubmatch(o.key)
		if km == nil {
			t.Errorf("key %s/%s does not follow the template", o.bucket, o.key)
			continue
		}
		start, _ := strconv.ParseInt(km[8], 10, 64)
		ws := time.Unix(start, 0).UTC()
		if want := ws.Format("2006/01/02/15/04"); strings.Join(km[2:7], "/") != want {
			t.Errorf("key %s: date parts %v, want %s", o.key, km[2:7], want)
		}
		if bucketOf[int64(km[1][0]-'0')] != o.bucket {
			t.Errorf("key %s in bucket %s names client %s", o.key, o.bucket, km[1])
		}
		if seen[o.bucket] == nil {
			seen[o.bucket] = map[string]int{}
		}
		for _, r := range o.records {
			idm := idRE.FindSubmatch(r)
			if idm == nil {
				t.Fatalf("%s/%s: record without request_id: %.200s", o.bucket, o.key, r)
			}
			c, ok := byID[string(idm[1])]
			if !ok || c.out != outDeliver {
				t.Fatalf("%s/%s: record %s must not be delivered", o.bucket, o.key, idm[1])
			}
			if !bytes.Equal(r, c.value) {
				t.Errorf("%s: bytes changed:\n got %.300s\nwant %.300s", c.name, r, c.value)
			}
			if start != c.wantWindow.Unix() {
				t.Errorf("%s: in object %s of window %s, want window %s", c.name, o.key,
					ws.Format(time.DateTime), c.wantWindow.UTC().Format(time.DateTime))
			}
			seen[o.bucket][c.id]++
		}
	}
	for _, c := range cases {
		if c.id == "" {
			continue
		}
		for client, b := range bucketOf {
			want := 0
			if c.out == outDeliver && c.deliverTo == client {
				want = 1
			}
			if n := seen[b][c.id]; n != want {
				t.Errorf("%s: %d times in %s (client %d), want %d", c.name, n, b, client, want)
			}
		}
	}
	if g, want := badMetric(t, m.reg, "hitship_bad_records_total", "", ""), float64(wantDead); g != want {
		t.Errorf("hitship_bad_records_total = %v, want %v", g, want)
	}
	if d := e.proxy.Denied(); len(d) > 0 {
		t.Fatalf("calls a PutObject-only policy denies: %s", strings.Join(d, ", "))
	}
}

// checkKeyUnderPrefix fails the test unless key starts with prefix, is valid
// UTF-8 without control characters and has no "", "." or ".." path segment.
func checkKeyUnderPrefix(t *testing.T, bucket, key, prefix string) {
	t.Helper()
	if !strings.HasPrefix(key, prefix) {
		t.Errorf("%s/%s escapes the prefix %q", bucket, key, prefix)
	}
	if !utf8.ValidString(key) || strings.ContainsFunc(key, unicode.IsControl) {
		t.Errorf("%s/%q has invalid UTF-8 or a control character", bucket, key)
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			t.Errorf("%s/%s has a %q path segment", bucket, key, seg)
		}
	}
}

// setTopicMaxMessageBytes raises a topic's max.message.bytes on the broker.
func setTopicMaxMessageBytes(t *testing.T, ctx context.Context, e *env, topic string, n int) {
	t.Helper()
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	c := &kafka.Client{Addr: kafka.TCP(e.kafka.Addrs()...), Timeout: 10 * time.Second, Transport: tr}
	resp, err := c.AlterConfigs(ctx, &kafka.AlterConfigsRequest{Resources: []kafka.AlterConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: topic,
		Configs: []kafka.AlterConfigRequestConfig{{Name: "max.message.bytes", Value: strconv.Itoa(n)}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	for r, err := range resp.Errors {
		if err != nil {
			t.Fatalf("alter %v: %v", r, err)
		}
	}
}

// TestHostileHugeRecord: a 100 MB record (16 MB under the race detector), with the default max_record_bytes
// (1 MiB) and the dead-letter topic at the broker's default size limit
// (1048588 bytes, Kafka's own default), goes to the dead-letter topic with
// reason too_large, hitship_truncated_from and the head of the record, and
// does not stall its partition: the good hit behind it is delivered and the
// offset commits to the end. The source topic allows 101 MB records (an
// operator's producers may send them).
func TestHostileHugeRecord(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	e := newEnv(t, 1, "b-one")
	cfg := e.config(t, integ("one-json", 1, "b-one", "json"))
	maxRecord := int(cfg.Kafka.MaxRecordBytes)
	base := time.Date(2023, 6, 20, 6, 0, 0, 0, time.UTC)
	huge := 100 << 20
	if raceEnabled {
		huge = 16 << 20 // still 16 times max_record_bytes and 4 times the consumer's fetch size
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	setTopicMaxMessageBytes(t, ctx, e, e.topic, huge+(1<<20))
	bigValue := badHit("huge", badUnix(base), `,"big":"`+strings.Repeat("x", huge)+`"`)
	goodValue := badHit("goodafter", badUnix(base.Add(time.Minute)), "")
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	w := &kafka.Writer{Addr: kafka.TCP(e.kafka.Addrs()...), Topic: e.topic, Balancer: &kafka.LeastBytes{}, RequiredAcks: kafka.RequireAll,
		BatchTimeout: time.Millisecond, BatchBytes: int64(huge + 1<<20), BatchSize: 1, Transport: tr}
	// Two more bad records whose dead letters would not fit unless cut: 2.4 MB
	// of headers, and a value of exactly max_record_bytes (within the limit,
	// but not with the dead-letter headers added).
	fatHeaders := clientHeader("1")
	for i := 0; i < 60; i++ {
		fatHeaders = append(fatHeaders, kafka.Header{Key: fmt.Sprintf("x-fat%02d", i), Value: bytes.Repeat([]byte("h"), 40<<10)})
	}
	exact := bytes.Repeat([]byte("n"), maxRecord)
	for _, m := range []kafka.Message{
		{Value: bigValue, Headers: clientHeader("1")},
		{Value: []byte("not json"), Headers: fatHeaders},
		{Value: exact, Headers: clientHeader("1")},
		{Value: goodValue, Headers: clientHeader("1")},
	} {
		m.Time = base
		if err := w.WriteMessages(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	head := bigValue[:maxRecord]
	bigLen := len(bigValue)
	bigValue = nil

	m := e.startMember(t, "a", cfg)
	waitFor(t, 45*time.Second, "offsets committed to the end", func() bool { return e.committedToEnd(t, cfg.Kafka.Group) })
	dlq, err := e.kafka.ReadAll(ctx, e.dlq)
	if err != nil {
		t.Fatal(err)
	}
	if len(dlq) != 3 {
		t.Fatalf("%d dead letters, want 3", len(dlq))
	}
	for _, d := range dlq {
		size := len(d.Key) + len(d.Value)
		for _, h := range d.Headers {
			size += len(h.Key) + len(h.Value)
		}
		if size > maxRecord {
			t.Errorf("dead letter of offset %s takes %d bytes, over max_record_bytes %d", badHeader(d, "hitship_source_offset"), size, maxRecord)
		}
		if len(d.Headers) > 64 {
			t.Errorf("dead letter of offset %s has %d headers", badHeader(d, "hitship_source_offset"), len(d.Headers))
		}
	}
	wantHeaders := []map[string]string{
		{"hitship_reason": "too_large", "hitship_truncated_from": strconv.Itoa(bigLen), "hitship_source_offset": "0", "client_id": "1"},
		{"hitship_reason": "not_json", "hitship_truncated_from": "", "hitship_source_offset": "1", "client_id": "1"},
		{"hitship_reason": "not_json", "hitship_truncated_from": strconv.Itoa(maxRecord), "hitship_source_offset": "2", "client_id": "1"},
	}
	for i, want := range wantHeaders {
		for h, v := range want {
			if g := badHeader(dlq[i], h); g != v {
				t.Errorf("dead letter %d: header %s = %q, want %q", i, h, g, v)
			}
		}
	}
	if d := dlq[0]; len(d.Value) == 0 || len(d.Value) > maxRecord || !bytes.HasPrefix(head, d.Value) {
		t.Errorf("dead letter holds %d bytes, want the head of the record, at most %d", len(d.Value), maxRecord)
	}
	if d := dlq[2]; len(d.Value) == 0 || !bytes.HasPrefix(exact, d.Value) {
		t.Errorf("dead letter holds %d bytes, want the head of the record", len(d.Value))
	}
	objs := e.objects(t, "b-one")
	if len(objs) != 1 || len(objs[0].records) != 1 || !bytes.Equal(objs[0].records[0], goodValue) {
		t.Fatalf("want the good hit alone in one object, got %d objects", len(objs))
	}
	if g := badMetric(t, m.reg, "hitship_bad_records_total", "reason", "too_large"); g != 1 {
		t.Errorf("hitship_bad_records_total{reason=too_large} = %v, want 1", g)
	}
}
