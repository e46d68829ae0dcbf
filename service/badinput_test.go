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

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
)

// badOutcome is what the pipeline must do with one produced record.
type badOutcome int

const (
	outDeadLetter badOutcome = iota // on the dead-letter topic once, with wantReason
	outDeliver                      // in one object of every integration of deliverTo, window wantWindow
	outSkip                         // counted as skipped, nowhere else
)

// badCase is one record of TestBadInput.
type badCase struct {
	name       string
	value      []byte
	header     string    // client_id header; "" = no header
	recTime    time.Time // Kafka record timestamp
	out        badOutcome
	wantReason string    // outDeadLetter
	deliverTo  int64     // outDeliver: the tenant whose integrations receive it
	wantWindow time.Time // outDeliver: start of the window of the object holding it
	id         string    // request_id, for delivered records
}

// badHit is a well-formed compact hit. timeField is the raw JSON of "time" ("" =
// no time field); extra is appended as further top-level fields (",..." form).
func badHit(id, timeField, extra string) []byte {
	t := ""
	if timeField != "" {
		t = `"time":` + timeField + `,`
	}
	return []byte(fmt.Sprintf(`{%s"request_id":"%s","ip":"10.1.2.3","datacenter":"unknown","tor":"none","remote_country":null,"application_id":[-1],"domain":"localhost","method":"GET","uri":"/etc/passwd","protocol":"none","status_code":499,"attack_type":"ptrav","block_status":"monitored","payload":["/etc/passwd"],"point":["uri"],"tags":{"lom_id":7}%s}`, t, id, extra))
}

func badUnix(t time.Time) string { return `"` + strconv.FormatInt(t.Unix(), 10) + `"` }

// TestBadInput: bad records of every shape, interleaved with good hits on two
// partitions, go to the dead-letter topic exactly once with the reason and their
// source; records whose time is garbage, missing or too far ahead fall back to or
// are clamped to the record timestamp and are delivered in that window; records
// of a tenant without an integration are skipped and counted; good hits are all
// delivered; the partitions keep flowing to the end; metrics count each outcome.
func TestBadInput(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	buckets := []string{"b-one", "b-two"}
	e := newEnv(t, 2, buckets...)
	cfg := e.config(t, integ("one-json", 1, "b-one", "json"), integ("two-ndjson", 2, "b-two", "ndjson"))
	const maxRecord = 256 << 10 // holds the 100,000-level record (200 KB) so it is too_deep, not too_large
	cfg.Kafka.MaxRecordBytes = maxRecord
	bucketOf := map[int64]string{1: "b-one", 2: "b-two"}

	base := time.Date(2023, 6, 20, 6, 0, 0, 0, time.UTC)
	fallbackRec := base.Add(35 * time.Minute) // window 06:30
	futureRec := base.Add(45 * time.Minute)   // window 06:40
	good := func(i int) []byte {
		return badHit(fmt.Sprintf("good%04d", i), badUnix(base.Add(time.Duration(i)*7*time.Second)), "")
	}
	deep := "[" + strings.Repeat("[", 100_000-2) + strings.Repeat("]", 100_000-2) + "]"
	oversize := badHit("oversize", badUnix(base), `,"big":"`+strings.Repeat("x", maxRecord+44<<10)+`"`)
	truncated := good(9999)
	truncated = truncated[:len(truncated)/2]
	withNUL := badHit("rawnul", badUnix(base), `,"note":"a`+"\x00"+`b"`)

	shapes := []badCase{
		{name: "not JSON", value: []byte("GET /etc/passwd HTTP/1.1"), header: "1", out: outDeadLetter, wantReason: "not_json"},
		{name: "JSON array", value: []byte("[" + string(good(9001)) + "]"), header: "1", out: outDeadLetter, wantReason: "not_object"},
		{name: "top-level string", value: []byte(`"a hit"`), header: "2", out: outDeadLetter, wantReason: "not_object"},
		{name: "truncated", value: truncated, header: "1", out: outDeadLetter, wantReason: "not_json"},
		{name: "empty record", value: nil, header: "1", out: outDeadLetter, wantReason: "empty"},
		{name: "two objects", value: append(append(good(9002), ' '), good(9003)...), header: "2", out: outDeadLetter, wantReason: "trailing_data"},
		{name: "invalid UTF-8 in a string", value: badHit("bad\xff\xfeutf8", badUnix(base), ""), header: "1", out: outDeadLetter, wantReason: "invalid_utf8"},
		{name: "over max_record_bytes", value: oversize, header: "2", out: outDeadLetter, wantReason: "too_large"},
		{name: "100,000 levels deep", value: badHit("deep", badUnix(base), `,"deep":`+deep), header: "1", out: outDeadLetter, wantReason: "too_deep"},
		{name: "raw NUL byte in a string", value: withNUL, header: "1", out: outDeadLetter, wantReason: "not_json"},
		{name: "no tenant", value: badHit("notenant", badUnix(base), ""), out: outDeadLetter, wantReason: "no_tenant"},
		{name: "garbage client_id header, none in the body", value: badHit("badheader", badUnix(base), ""), header: "acme", out: outDeadLetter, wantReason: "no_tenant"},
		{name: "unknown tenant", value: badHit("unknowntenant", badUnix(base), ""), header: "999", out: outSkip, id: "unknowntenant"},
		{name: "time garbage string", value: badHit("timegarbage", `"yesterday"`, ""), header: "1", recTime: fallbackRec,
			out: outDeliver, deliverTo: 1, wantWindow: base.Add(30 * time.Minute), id: "timegarbage"},
		{name: "time garbage object", value: badHit("timeobject", `{"s":1687241470}`, ""), header: "2", recTime: fallbackRec.Add(time.Second),
			out: outDeliver, deliverTo: 2, wantWindow: base.Add(30 * time.Minute), id: "timeobject"},
		{name: "time missing", value: badHit("timemissing", "", ""), header: "2", recTime: fallbackRec.Add(2 * time.Second),
			out: outDeliver, deliverTo: 2, wantWindow: base.Add(30 * time.Minute), id: "timemissing"},
		{name: "time far in the future", value: badHit("timefuture", `"4102444800"`, ""), header: "1", recTime: futureRec,
			out: outDeliver, deliverTo: 1, wantWindow: base.Add(40 * time.Minute), id: "timefuture"},
		{name: "escaped NUL in a string", value: badHit("escapednul", badUnix(base.Add(time.Minute)), `,"note":"a\u0000b"`), header: "2",
			out: outDeliver, deliverTo: 2, wantWindow: base, id: "escapednul"},
		{name: "client_id only in the body", value: badHit("bodytenant", badUnix(base.Add(2*time.Minute)), `,"client_id":2`),
			out: outDeliver, deliverTo: 2, wantWindow: base, id: "bodytenant"},
		{name: "header wins over the body", value: badHit("headerwins", badUnix(base.Add(3*time.Minute)), `,"client_id":2`), header: "1",
			out: outDeliver, deliverTo: 1, wantWindow: base, id: "headerwins"},
	}

	// Interleave: every shape is followed by a good hit on the same partition.
	var cases []badCase
	var msgs []kafka.Message
	for i, s := range shapes {
		g := badCase{name: fmt.Sprintf("good after %q", s.name), value: good(i), header: strconv.Itoa(1 + i%2),
			recTime: base.Add(time.Duration(i) * 7 * time.Second), out: outDeliver, deliverTo: int64(1 + i%2), wantWindow: base, id: fmt.Sprintf("good%04d", i)}
		if s.recTime.IsZero() {
			s.recTime = base.Add(time.Duration(i) * 7 * time.Second)
		}
		for _, c := range []badCase{s, g} {
			m := kafka.Message{Partition: i % 2, Key: []byte(fmt.Sprintf("k%03d", len(cases))), Value: c.value, Time: c.recTime}
			if c.header != "" {
				m.Headers = []kafka.Header{{Key: "client_id", Value: []byte(c.header)}}
			}
			cases = append(cases, c)
			msgs = append(msgs, m)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := e.kafka.Produce(ctx, e.topic, msgs); err != nil {
		t.Fatal(err)
	}
	// Where each record landed: key -> (partition, offset).
	src, err := e.kafka.ReadAll(ctx, e.topic)
	if err != nil {
		t.Fatal(err)
	}
	type pos struct {
		partition int
		offset    int64
	}
	srcPos := map[string]pos{}
	for _, m := range src {
		srcPos[string(m.Key)] = pos{m.Partition, m.Offset}
	}
	if len(srcPos) != len(msgs) {
		t.Fatalf("read back %d distinct records, produced %d", len(srcPos), len(msgs))
	}

	m := e.startMember(t, "a", cfg)
	waitFor(t, 90*time.Second, "offsets committed to the end", func() bool { return e.committedToEnd(t, cfg.Kafka.Group) })

	// Dead letters.
	dlq, err := e.kafka.ReadAll(ctx, e.dlq)
	if err != nil {
		t.Fatal(err)
	}
	dlqByKey := map[string][]kafka.Message{}
	for _, d := range dlq {
		dlqByKey[string(d.Key)] = append(dlqByKey[string(d.Key)], d)
	}
	wantBad := map[string]float64{}
	for i, c := range cases {
		key := fmt.Sprintf("k%03d", i)
		got := dlqByKey[key]
		if c.out != outDeadLetter {
			if len(got) != 0 {
				t.Errorf("%s: on the dead-letter topic (reason %s), want %v", c.name, badHeader(got[0], "hitship_reason"), c.out)
			}
			continue
		}
		wantBad[c.wantReason]++
		if len(got) != 1 {
			t.Errorf("%s: %d times on the dead-letter topic, want exactly once", c.name, len(got))
			continue
		}
		d, p := got[0], srcPos[key]
		for h, want := range map[string]string{
			"hitship_reason":           c.wantReason,
			"hitship_source_topic":     e.topic,
			"hitship_source_partition": strconv.Itoa(p.partition),
			"hitship_source_offset":    strconv.FormatInt(p.offset, 10),
			"client_id":                c.header,
		} {
			if g := badHeader(d, h); g != want {
				t.Errorf("%s: dead letter header %s = %q, want %q", c.name, h, g, want)
			}
		}
		if badHeader(d, "hitship_error") == "" {
			t.Errorf("%s: dead letter without hitship_error", c.name)
		}
		if len(c.value) > maxRecord {
			if g := badHeader(d, "hitship_truncated_from"); g != strconv.Itoa(len(c.value)) {
				t.Errorf("%s: hitship_truncated_from = %q, want %d", c.name, g, len(c.value))
			}
			// The head of the record, cut so that the whole dead letter fits
			// the topic (consumer.DeadLetterBatchBytes).
			if len(d.Value) < maxRecord/2 || len(d.Value) > maxRecord || !bytes.HasPrefix(c.value, d.Value) {
				t.Errorf("%s: dead letter value is not the head of the record, at most %d bytes (got %d bytes)", c.name, maxRecord, len(d.Value))
			}
		} else {
			if !bytes.Equal(d.Value, c.value) {
				t.Errorf("%s: dead letter value changed:\n got %.200q\nwant %.200q", c.name, d.Value, c.value)
			}
			if g := badHeader(d, "hitship_truncated_from"); g != "" {
				t.Errorf("%s: hitship_truncated_from = %q on a record within the limit", c.name, g)
			}
		}
	}
	if len(dlq) != int(badSum(wantBad)) {
		t.Errorf("%d records on the dead-letter topic, want %v", len(dlq), badSum(wantBad))
	}

	// Deliveries: every delivered record in exactly one object of its tenant's
	// integration, in the expected window, bytes unchanged; nothing else anywhere.
	byID := map[string]badCase{}
	for _, c := range cases {
		if c.id != "" {
			byID[c.id] = c
		}
	}
	keyRE := regexp.MustCompile(`^hits/wallarm_hits_(\d+)_(\d)_(\d+)_[0-9a-f]{16}\.(json|jsonl)$`)
	idRE := regexp.MustCompile(`"request_id":"([^"]*)"`)
	seen := map[string]map[string]int{} // bucket -> id -> count
	for _, o := range e.objects(t, buckets...) {
		km := keyRE.FindStringSubmatch(o.key)
		if km == nil {
			t.Fatalf("key %s/%s does not follow the default template", o.bucket, o.key)
		}
		start, _ := strconv.ParseInt(km[1], 10, 64)
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
				t.Errorf("%s: bytes changed:\n got %s\nwant %s", c.name, r, c.value)
			}
			if start != c.wantWindow.Unix() {
				t.Errorf("%s: in object %s of window %s, want window %s", c.name, o.key,
					time.Unix(start, 0).UTC().Format(time.TimeOnly), c.wantWindow.Format(time.TimeOnly))
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

	// Metrics.
	for _, r := range []string{"not_json", "not_object", "invalid_utf8", "too_deep", "trailing_data", "empty", "too_large", "no_tenant"} {
		if g := badMetric(t, m.reg, "hitship_bad_records_total", "reason", r); g != wantBad[r] {
			t.Errorf("hitship_bad_records_total{reason=%q} = %v, want %v", r, g, wantBad[r])
		}
	}
	for _, mc := range []struct {
		name, label, value string
		want               float64
	}{
		{"hitship_records_skipped_total", "reason", "no_integration", 1},
		{"hitship_records_skipped_total", "reason", "disabled", 0},
		{"hitship_dead_letter_records_total", "", "", badSum(wantBad)},
		{"hitship_fallback_times_total", "", "", 3},
		{"hitship_clamped_times_total", "", "", 1},
		{"hitship_records_consumed_total", "", "", float64(len(cases))},
	} {
		if g := badMetric(t, m.reg, mc.name, mc.label, mc.value); g != mc.want {
			t.Errorf("%s{%s=%q} = %v, want %v", mc.name, mc.label, mc.value, g, mc.want)
		}
	}
	if d := e.proxy.Denied(); len(d) > 0 {
		t.Fatalf("calls a PutObject-only policy denies: %s", strings.Join(d, ", "))
	}
}

func (o badOutcome) String() string {
	return [...]string{"dead letter", "delivered", "skipped"}[o]
}

// badHeader returns the value of the first header named key ("" when absent).
func badHeader(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func badSum(m map[string]float64) float64 {
	var s float64
	for _, v := range m {
		s += v
	}
	return s
}

// badMetric gathers reg and returns the sum of the counter or gauge samples of
// name whose label `label` is value (every sample when label is ""). A metric
// that is not registered fails the test.
func badMetric(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var s float64
		for _, mt := range mf.GetMetric() {
			match := label == ""
			for _, lp := range mt.GetLabel() {
				if lp.GetName() == label && lp.GetValue() == value {
					match = true
				}
			}
			if !match {
				continue
			}
			switch {
			case mt.GetCounter() != nil:
				s += mt.GetCounter().GetValue()
			case mt.GetGauge() != nil:
				s += mt.GetGauge().GetValue()
			}
		}
		return s
	}
	t.Fatalf("metric %s is not registered", name)
	return 0
}
