package service_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	pq "github.com/parquet-go/parquet-go"

	"hitship/config"
	"hitship/internal/testenv"
	s3sink "hitship/sink/s3"
)

// TestSecurityLake (issue #15): an integration of type security_lake,
// created through the admin API, is a custom source of Amazon Security
// Lake. The create answers what the customer passes to CreateCustomLogSource
// (principal, the client's external ID, HTTP_ACTIVITY, the source name); its
// test write puts a Parquet file without rows in the source's partition; its
// tenant's hits arrive once each as OCSF HTTP Activity records in Parquet
// under ext/{source}/region={region}/accountId={account}/eventDay={YYYYMMDD}/,
// the day every record's UTC day, written with the provider role assumed
// with the client's external ID (the fake STS refuses any other, and the
// authenticating S3 proxy lets only that role write). A source whose role
// does not trust the client's external ID is refused with the answer.
func TestSecurityLake(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	const (
		token     = "admin-token-for-tests-lake"
		extSecret = "external-id-secret-for-tests-lake-0123"
		lake      = "aws-security-data-lake-lake-0001"
		role      = "arn:aws:iam::210987654321:role/AmazonSecurityLake-Provider-wallarm-" + testenv.S3Region
		otherRole = "arn:aws:iam::210987654321:role/AmazonSecurityLake-Provider-other-" + testenv.S3Region
	)
	t.Setenv("HITSHIP_TEST_ADMIN_TOKEN", token)
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	t.Setenv("HITSHIP_TEST_KEYS", "k1:"+base64.StdEncoding.EncodeToString(key))
	t.Setenv("HITSHIP_TEST_EXTID", extSecret)
	const parts = 4
	e := newEnv(t, parts, lake, "b-other", parkBucket)
	sts, authS3 := e.fakeAWS(t)
	sts.Trust(role, s3sink.ExternalID([]byte(extSecret), 1))
	sts.Trust(otherRole, s3sink.ExternalID([]byte(extSecret), 2)) // client 2's, not client 3's
	authS3.AllowRole(lake, role)
	authS3.AllowRole(lake, otherRole)

	cfg := e.config(t, integ("other", 2, "b-other", config.FormatNDJSON))
	cfg.Window.IdleTimeout = time.Second
	cfg.HTTP.AdminTokenEnv = "HITSHIP_TEST_ADMIN_TOKEN"
	cfg.Secrets.KeysEnv = "HITSHIP_TEST_KEYS"
	cfg.ExternalID = config.ExternalID{SecretEnv: "HITSHIP_TEST_EXTID", AccountID: "111122223333", STSEndpoint: sts.URL()}
	cfg = stagedConfig(t, e, cfg)
	svc, _ := startService(t, "a", cfg)
	srv := httptest.NewServer(svc.Handler())
	t.Cleanup(srv.Close)
	api := apiClient{t, srv.URL, token, &lockedBuffer{}}

	source := func(name string, client int, roleARN string) string {
		return `{"name":"` + name + `","type":"security_lake","client_id":` + strconv.Itoa(client) + `,"region":"` + testenv.S3Region +
			`","bucket":"` + lake + `","endpoint":"` + authS3.URL() + `","path_style":true,
			"security_lake":{"source_name":"` + name + `"},"credentials":{"role_arn":"` + roleARN + `"}}`
	}
	before := time.Now().UTC()
	code, _, v := api.do(http.MethodPost, "/v1/integrations", source("wallarm", 1, role))
	if code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, v)
	}
	if v["type"] != "security_lake" || v["format"] != config.FormatOCSFParquet ||
		v["location"] != "s3://"+lake+"/ext/wallarm/region="+testenv.S3Region+"/accountId=210987654321/" {
		t.Errorf("create answer: %v", v)
	}
	ob, _ := v["onboarding"].(map[string]any)
	sl, _ := ob["security_lake"].(map[string]any)
	extID := s3sink.ExternalID([]byte(extSecret), 1)
	if sl == nil || sl["principal"] != "111122223333" || sl["external_id"] != extID || sl["source_name"] != "wallarm" ||
		!strings.Contains(sl["command"].(string), "--event-classes HTTP_ACTIVITY") || !strings.Contains(sl["command"].(string), "externalId="+extID) {
		t.Errorf("onboarding for CreateCustomLogSource: %v", ob)
	}
	if cls, _ := sl["event_classes"].([]any); len(cls) != 1 || cls[0] != "HTTP_ACTIVITY" {
		t.Errorf("event classes: %v", sl["event_classes"])
	}
	// The same values for the console before the source exists.
	code, _, v = api.do(http.MethodGet, "/v1/clients/1/onboarding?source_name=wallarm", "")
	if sl2, _ := v["security_lake"].(map[string]any); code != http.StatusOK || sl2["external_id"] != extID || sl2["command"] != sl["command"] {
		t.Errorf("onboarding with a source name: %d %v", code, v)
	}
	if code, _, v := api.do(http.MethodGet, "/v1/clients/1/onboarding?source_name=a%3Brm", ""); code != http.StatusBadRequest {
		t.Errorf("onboarding with a bad source name: %d %v", code, v)
	}

	// A role that does not trust client 3's external ID: refused, with why.
	code, _, v = api.do(http.MethodPost, "/v1/integrations", source("lake3", 3, otherRole))
	if ans, _ := v["test"].(map[string]any); code != http.StatusUnprocessableEntity || ans["problem"] != s3sink.ProblemAssumeRoleDenied {
		t.Errorf("create with a role not trusting the client: %d %v", code, v)
	}
	// Security Lake's terms, by field.
	code, _, v = api.do(http.MethodPost, "/v1/integrations", strings.Replace(source("x", 1, role), `"source_name":"x"`, `"source_name":"a-name-of-21-chars-xx"`, 1))
	if code != http.StatusBadRequest || !strings.Contains(mustJSON(t, v), "security_lake.source_name") {
		t.Errorf("create with a long source name: %d %v", code, v)
	}

	prefix := "ext/wallarm/region=" + testenv.S3Region + "/accountId=210987654321/"
	keyRE := regexp.MustCompile(`^` + regexp.QuoteMeta(prefix) + `eventDay=(\d{8})/wallarm_hits_(\d+)(_late_\d+)?\.parquet$`)
	testRE := regexp.MustCompile(`^` + regexp.QuoteMeta(prefix) + `eventDay=(\d{8})/wallarm_hits_(\d+)_test\.parquet$`)

	base := time.Date(2023, 6, 20, 23, 30, 0, 0, time.UTC) // two windows of one day, and one of the next
	hits := produceHitsAt(t, e, 71, spreadHits(600, []int64{1, 2}, parts, base, 10*time.Minute, 6, 71))
	want := map[string]bool{}
	for _, h := range hits {
		if h.client == 1 {
			want[h.id] = true
		}
	}
	type found struct {
		seen  map[string]int
		tests int
	}
	read := func() found {
		f := found{seen: map[string]int{}}
		objs, err := e.s3.Objects(t.Context(), lake)
		if err != nil {
			t.Fatal(err)
		}
		for k, data := range objs {
			rows, err := pq.Read[pqOCSF](bytes.NewReader(data), int64(len(data)))
			if err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			if m := testRE.FindStringSubmatch(k); m != nil {
				f.tests++
				if day := m[1]; len(rows) != 0 || (day != before.Format("20060102") && day != time.Now().UTC().Format("20060102")) {
					t.Fatalf("test object %s: %d rows, day %s", k, len(rows), day)
				}
				continue
			}
			m := keyRE.FindStringSubmatch(k)
			if m == nil {
				t.Fatalf("key %s is not in the source's layout", k)
			}
			for i, r := range rows {
				if r.Time == nil || r.Metadata == nil || r.Metadata.UID == nil || r.ClassUID == nil || *r.ClassUID != 4002 ||
					r.TypeUID == nil || *r.TypeUID/100 != 4002 {
					t.Fatalf("%s row %d is not an HTTP Activity record: %+v", k, i, r)
				}
				if day := r.Time.UTC().Format("20060102"); day != m[1] {
					t.Fatalf("%s: a record of %s under eventDay=%s", k, day, m[1])
				}
				if i > 0 && r.Time.Before(*rows[i-1].Time) {
					t.Fatalf("%s: row %d before row %d in time", k, i, i-1)
				}
				if !want[*r.Metadata.UID] {
					t.Fatalf("%s: hit %s is not the tenant's", k, *r.Metadata.UID)
				}
				f.seen[*r.Metadata.UID]++
			}
		}
		return f
	}
	waitFor(t, 90*time.Second, "every hit of the tenant in the lake", func() bool { return len(read().seen) == len(want) })
	f := read()
	for id, n := range f.seen {
		if n != 1 {
			t.Errorf("hit %s in %d rows", id, n)
		}
	}
	if f.tests != 1 {
		t.Errorf("%d test objects, want the create's one", f.tests)
	}
	days := map[string]bool{}
	objs, _ := e.s3.Objects(t.Context(), lake)
	for k := range objs {
		if m := keyRE.FindStringSubmatch(k); m != nil {
			days[m[1]] = true
		}
	}
	if !days["20230620"] || !days["20230621"] {
		t.Errorf("days %v, want the windows of 2023-06-20 and 2023-06-21", days)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
