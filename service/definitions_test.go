package service_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"hitship/config"
	"hitship/internal/testenv"
	s3sink "hitship/sink/s3"
)

// apiClient calls one replica's admin API.
type apiClient struct {
	t     *testing.T
	url   string
	token string
	// seen collects every response body, to look for secrets (calls run
	// concurrently).
	seen *lockedBuffer
}

func (c apiClient) do(method, path, body string, hdr ...string) (int, http.Header, map[string]any) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.url+path, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	c.seen.Write(data)
	var v map[string]any
	_ = json.Unmarshal(data, &v)
	return resp.StatusCode, resp.Header, v
}

// TestIntegrationCreatedThroughTheAPI: an integration created through
// replica A's admin API is on replica B within 2 s and delivers its tenant's
// hits, every one once, without a restart; a replace through B with a stale
// ETag is refused (412), with the current one it moves the integration to
// another bucket and later windows go there; a request with problems is
// answered 400 naming each field and its fix; the file's integrations are
// not the API's to change; no response and no record of the integrations
// topic holds the secret.
func TestIntegrationCreatedThroughTheAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	const token = "admin-token-for-tests-0002"
	t.Setenv("HITSHIP_TEST_ADMIN_TOKEN", token)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	t.Setenv("HITSHIP_TEST_KEYS", "k1:"+base64.StdEncoding.EncodeToString(key))
	const extSecret = "external-id-secret-for-tests-0123456789"
	t.Setenv("HITSHIP_TEST_EXTID", extSecret)
	e := newEnv(t, 2, "b-file", "b-api", "b-api2")
	const eventsTopic = "hitship-events"
	tr := &kafka.Transport{}
	cl := &kafka.Client{Addr: kafka.TCP(e.kafka.Addrs()...), Transport: tr}
	_, err := cl.CreateTopics(t.Context(), &kafka.CreateTopicsRequest{Topics: []kafka.TopicConfig{{Topic: eventsTopic, NumPartitions: 1, ReplicationFactor: 1}}})
	tr.CloseIdleConnections()
	if err != nil {
		t.Fatal(err)
	}
	mk := func() *config.Config {
		c := *e.config(t, integ("file1", 1, "b-file", "ndjson"))
		c.Window.Size, c.Window.Grace, c.Window.IdleTimeout = 10*time.Second, time.Second, time.Second
		c.HTTP.AdminTokenEnv = "HITSHIP_TEST_ADMIN_TOKEN"
		c.Secrets.KeysEnv = "HITSHIP_TEST_KEYS"
		c.Kafka.EventsTopic = eventsTopic
		c.ExternalID.SecretEnv, c.ExternalID.AccountID = "HITSHIP_TEST_EXTID", "111122223333"
		if ps := c.Validate(); len(ps) > 0 {
			t.Fatal(config.AsError(ps))
		}
		return &c
	}
	a, regA := startService(t, "a", mk())
	b, regB := startService(t, "b", mk())
	srvA, srvB := httptest.NewServer(a.Handler()), httptest.NewServer(b.Handler())
	t.Cleanup(srvA.Close)
	t.Cleanup(srvB.Close)
	seen := &lockedBuffer{}
	apiA, apiB := apiClient{t, srvA.URL, token, seen}, apiClient{t, srvB.URL, token, seen}
	waitFor(t, 30*time.Second, "both members own a partition", func() bool {
		return metricSum(t, regA, "hitship_kafka_assigned_partitions") == 1 && metricSum(t, regB, "hitship_kafka_assigned_partitions") == 1
	})

	body := func(bucket string) string {
		return `{"name":"api1","client_id":2,"region":"` + testenv.S3Region + `","bucket":"` + bucket + `","prefix":"hits/","format":"ndjson",
			"credentials":{"access_key_id":"TESTACCESSKEY0001","secret_access_key":"` + testSecret + `"}}`
	}
	// Problems, each by field.
	code, _, v := apiA.do(http.MethodPost, "/v1/integrations", `{"name":"bad","client_id":3,"bucket":"Not_A_Bucket","format":"xml","credentials":{"role_arn":"nope"}}`)
	if code != http.StatusBadRequest {
		t.Fatalf("create with problems: %d %v", code, v)
	}
	fields := map[string]bool{}
	for _, p := range v["problems"].([]any) {
		pm := p.(map[string]any)
		fields[pm["field"].(string)] = true
		if pm["fix"] == "" {
			t.Errorf("problem without a fix: %v", pm)
		}
	}
	for _, f := range []string{"region", "bucket", "format", "credentials.role_arn"} {
		if !fields[f] {
			t.Errorf("no problem for field %s in %v", f, v["problems"])
		}
	}
	if code, _, v := apiA.do(http.MethodPost, "/v1/integrations", `{"name":"x","client_id":3,"bukcet":"b"}`); code != http.StatusBadRequest || !strings.Contains(v["message"].(string), "bukcet") {
		t.Fatalf("unknown field: %d %v", code, v)
	}
	if code, _, _ := apiA.do(http.MethodPost, "/v1/integrations", strings.Replace(body("b-api"), `"api1"`, `"file1"`, 1)); code != http.StatusConflict {
		t.Fatalf("create with the file's name: %d", code)
	}
	if code, _, _ := apiA.do(http.MethodPut, "/v1/integrations/file1", strings.Replace(body("b-api"), `"api1"`, `"file1"`, 1), "If-Match", `"1"`); code != http.StatusConflict {
		t.Fatalf("replace of the file's integration: %d", code)
	}

	// Past the first owners' read marks (consumer/membership.go: after a
	// takeover a partition follows the routing its previous owner may have
	// used, up to readMarkAhead records past what it read), so that the
	// create applies from the next record.
	e.produceHits(t, 600, []int64{1}, time.Now().Add(-30*time.Second), 10*time.Second, 1, 9)
	waitFor(t, 60*time.Second, "the warm-up read", func() bool { return e.committedToEnd(t, mk().Kafka.Group) })

	// Onboarding: what the console shows for a role, ready to paste.
	code, _, v = apiA.do(http.MethodGet, "/v1/clients/2/onboarding?bucket=b-api", "")
	if code != http.StatusOK || v["external_id"] != s3sink.ExternalID([]byte(extSecret), 2) || v["account_id"] != "111122223333" ||
		!strings.Contains(fmt.Sprint(v["permission_policy"]), "arn:aws:s3:::b-api/*") || !strings.Contains(fmt.Sprint(v["trust_policy"]), v["external_id"].(string)) {
		t.Fatalf("onboarding: %d %v", code, v)
	}

	// Test before save: a missing bucket is answered in plain words, and
	// refuses the create; the good one passes.
	code, _, v = apiA.do(http.MethodPost, "/v1/integrations/test", body("b-missing"))
	if code != http.StatusOK || v["ok"] != false || v["problem"] == "" || v["fix"] == "" {
		t.Fatalf("test of a missing bucket: %d %v", code, v)
	}
	if code, _, v := apiA.do(http.MethodPost, "/v1/integrations", body("b-missing")); code != http.StatusUnprocessableEntity || v["test"] == nil {
		t.Fatalf("create of an integration whose test fails: %d %v", code, v)
	}
	if code, _, v := apiA.do(http.MethodPost, "/v1/integrations/test", body("b-api")); code != http.StatusOK || v["ok"] != true {
		t.Fatalf("test of a good integration: %d %v", code, v)
	}
	// The create's own test first then writes the sample hits in another
	// second than the test above, under another key (a flake in CI before
	// the tenant's hits were told from them).
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second)))
	code, hdr, v := apiA.do(http.MethodPost, "/v1/integrations", body("b-api"))
	if code != http.StatusCreated || v["source"] != "api" || hdr.Get("ETag") == "" {
		t.Fatalf("create: %d %v %v", code, hdr, v)
	}
	etag := hdr.Get("ETag")
	created := time.Now()
	waitFor(t, 2*time.Second, "replica B shows the integration created through A", func() bool {
		code, hdr, _ := apiB.do(http.MethodGet, "/v1/integrations/api1", "")
		return code == http.StatusOK && hdr.Get("ETag") == etag
	})
	t.Logf("on replica B %v after the create", time.Since(created).Round(time.Millisecond))
	if code, _, _ := apiB.do(http.MethodPost, "/v1/integrations", body("b-api")); code != http.StatusConflict {
		t.Fatalf("second create: %d", code)
	}

	ids := func(bucket string) map[string]int {
		out := map[string]int{}
		re := regexp.MustCompile(`"request_id":"([0-9a-f]+)"`)
		for _, o := range e.objects(t, bucket) {
			// The sample hits of the test writes (the test and each
			// create's or replace's test first) are not the tenant's;
			// two tests in different seconds write them twice.
			if strings.Contains(o.key, "_test.") {
				continue
			}
			for _, r := range o.records {
				out[string(re.FindSubmatch(r)[1])]++
			}
		}
		return out
	}
	first := e.produceHits(t, 300, []int64{1, 2}, time.Now().Add(-30*time.Second), 10*time.Second, 2, 1)
	defer func() {
		if t.Failed() {
			for _, reason := range []string{"no_integration", "disabled", "removed"} {
				t.Logf("skipped %s: a %v, b %v", reason, metricSum(t, regA, "hitship_records_skipped_total", "reason", reason), metricSum(t, regB, "hitship_records_skipped_total", "reason", reason))
			}
			t.Logf("b-file %d objects, b-api %d", len(e.objects(t, "b-file")), len(e.objects(t, "b-api")))
		}
	}()
	waitFor(t, 60*time.Second, "the tenant's hits in the API integration's bucket", func() bool {
		got := ids("b-api")
		for _, h := range first {
			if h.client == 2 && got[h.id] != 1 {
				return false
			}
		}
		return true
	})
	for id, n := range ids("b-api") {
		if n != 1 {
			t.Fatalf("hit %s delivered %d times", id, n)
		}
	}

	// Its status shows the latest success and the 12-hour ledger.
	code, _, v = apiB.do(http.MethodGet, "/v1/integrations/api1", "")
	if led, _ := v["ledger_12h"].(map[string]any); code != http.StatusOK || v["last_success_at"] == nil || led == nil || led["attempts"].(float64) < 1 {
		t.Fatalf("status after delivery: %d %v", code, v)
	}

	stale, _ := strconv.ParseInt(strings.Trim(etag, `"`), 10, 64)
	if code, _, _ := apiB.do(http.MethodPut, "/v1/integrations/api1", body("b-api2"), "If-Match", strconv.Quote(strconv.FormatInt(stale-1, 10))); code != http.StatusPreconditionFailed {
		t.Fatalf("replace with a stale ETag: %d", code)
	}
	if code, _, _ := apiB.do(http.MethodPut, "/v1/integrations/api1", body("b-api2")); code != http.StatusPreconditionRequired {
		t.Fatalf("replace without If-Match: %d", code)
	}
	code, hdr, v = apiB.do(http.MethodPut, "/v1/integrations/api1", strings.Replace(body("b-api2"), `,"secret_access_key":"`+testSecret+`"`, "", 1), "If-Match", etag)
	if code != http.StatusOK || v["bucket"] != "b-api2" || hdr.Get("ETag") == etag {
		t.Fatalf("replace: %d %v %v", code, hdr, v)
	}
	time.Sleep(2 * time.Second) // every replica applied it
	second := e.produceHits(t, 200, []int64{2}, time.Now().Add(15*time.Second), 10*time.Second, 1, 2)
	waitFor(t, 60*time.Second, "later windows in the new bucket", func() bool {
		got := ids("b-api2")
		for _, h := range second {
			if got[h.id] != 1 {
				return false
			}
		}
		return true
	})

	// Delete through B: a stale ETag is refused; the current one removes it
	// from every replica, and the name can be created again, with a newer
	// version.
	current := hdr.Get("ETag")
	if code, _, _ := apiB.do(http.MethodDelete, "/v1/integrations/api1", "", "If-Match", etag); code != http.StatusPreconditionFailed {
		t.Fatalf("delete with a stale ETag: %d", code)
	}
	if code, _, v := apiB.do(http.MethodDelete, "/v1/integrations/api1", "", "If-Match", current); code != http.StatusOK || v["deleted"] != "api1" {
		t.Fatalf("delete: %d %v", code, v)
	}
	waitFor(t, 2*time.Second, "replica A no longer shows it", func() bool {
		code, _, _ := apiA.do(http.MethodGet, "/v1/integrations/api1", "")
		return code == http.StatusNotFound
	})
	code, hdr, _ = apiA.do(http.MethodPost, "/v1/integrations", body("b-api"))
	if code != http.StatusCreated || hdr.Get("ETag") <= current {
		t.Fatalf("created again: %d, ETag %s after %s", code, hdr.Get("ETag"), current)
	}

	// A broken bucket (saved anyway): its status says why, whose side, the fix.
	broken := `{"name":"broken","client_id":3,"region":"` + testenv.S3Region + `","bucket":"b-missing","format":"ndjson",
		"credentials":{"access_key_id":"TESTACCESSKEY0001","secret_access_key":"` + testSecret + `"}}`
	if code, _, v := apiA.do(http.MethodPost, "/v1/integrations?save_anyway=true", broken); code != http.StatusCreated {
		t.Fatalf("create anyway: %d %v", code, v)
	}
	time.Sleep(2 * time.Second)
	e.produceHits(t, 20, []int64{3}, time.Now().Add(-30*time.Second), 10*time.Second, 1, 3)
	waitFor(t, 60*time.Second, "the broken integration's status names its failure", func() bool {
		_, _, v := apiB.do(http.MethodGet, "/v1/integrations/broken", "")
		le, _ := v["last_error"].(map[string]any)
		return le != nil && le["class"] == "customer" && le["message"] != "" && le["fix"] != ""
	})

	// The events topic has every change, in order, under the product's names.
	var types []string
	waitFor(t, 10*time.Second, "the events on the events topic", func() bool {
		msgs, err := e.kafka.ReadAll(t.Context(), eventsTopic)
		if err != nil {
			t.Fatal(err)
		}
		types = types[:0]
		for _, m := range msgs {
			var ev struct{ Type, Integration, By string }
			if err := json.Unmarshal(m.Value, &ev); err != nil || (ev.Integration != "api1" && ev.Integration != "broken") || ev.By == "" {
				t.Fatalf("event %s: %v", m.Value, err)
			}
			types = append(types, ev.Type)
		}
		return len(types) >= 5
	})
	if want := []string{"create_integration", "update_integration", "delete_integration", "create_integration", "create_integration"}; strings.Join(types, ",") != strings.Join(want, ",") {
		t.Fatalf("events %v, want %v", types, want)
	}

	if bytes.Contains(seen.Bytes(), []byte(testSecret)) {
		t.Fatal("an API response holds the secret")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: e.kafka.Addrs(), Topic: mk().Kafka.IntegrationsTopic, MaxWait: 200 * time.Millisecond})
	defer r.Close()
	defsSeen := 0
	for defsSeen < 2 {
		m, err := r.ReadMessage(ctx)
		if err != nil {
			t.Fatalf("reading the integrations topic: %v (%d definitions read)", err, defsSeen)
		}
		if bytes.Contains(m.Value, []byte(testSecret)) {
			t.Fatalf("record %s of the integrations topic holds the secret", m.Key)
		}
		if strings.HasPrefix(string(m.Key), "def/") {
			defsSeen++
		}
	}
}
