package service_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"

	"hitship/config"
	"hitship/deploy"
	"hitship/service"
)

// TestMetricContract: a running hitship (two integrations and a tenant without
// one, parking on, hits delivered and committed) is scraped over HTTP like
// Prometheus does. Every metric the Grafana dashboard and the alert rules use
// is in the scrape, promlint finds no problem in it, and /healthz and /readyz
// (the probes of the Kubernetes manifests) answer.
func TestMetricContract(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	e := newEnv(t, 2, "b-json", "b-ndjson", parkBucket)
	cfg := withParking(t, e, e.config(t, integ("c-json", 1, "b-json", "json"), integ("c-ndjson", 2, "b-ndjson", "ndjson")))
	base := time.Date(2023, 6, 20, 6, 0, 0, 0, time.UTC)
	e.produceHits(t, 3000, []int64{1, 2, 3}, base, 10*time.Minute, 2, 7)
	addr := startListening(t, cfg)

	waitFor(t, 90*time.Second, "offsets committed to the end", func() bool { return e.committedToEnd(t, cfg.Kafka.Group) })
	for path, want := range map[string]string{"/healthz": "ok", "/readyz": "ready"} {
		code, body := httpGet(t, "http://"+addr+path)
		if code != http.StatusOK || !strings.HasPrefix(body, want) {
			t.Errorf("GET %s: %d %q, want 200 %q", path, code, body, want)
		}
	}
	var scrape []byte
	// Gauges set by periodic loops (spool, Redis, integration states) appear
	// within a few seconds of the start; the pipeline has run far longer.
	waitFor(t, 30*time.Second, "delivered hits of both integrations in the scrape", func() bool {
		_, body := httpGet(t, "http://"+addr+"/metrics")
		scrape = []byte(body)
		v := sampleValues(scrape)
		return v[`hitship_hits_delivered_total{integration="c-json",result="ok"}`] > 0 &&
			v[`hitship_hits_delivered_total{integration="c-ndjson",result="ok"}`] > 0
	})

	have := seriesNames(scrape)
	qs, err := deploy.Queries()
	if err != nil {
		t.Fatal(err)
	}
	missing := map[string][]string{} // metric -> where it is used
	for _, q := range qs {
		for _, n := range deploy.MetricNames(q.Expr) {
			if n != "up" && !have[n] && !slices.Contains(missing[n], q.Where) {
				missing[n] = append(missing[n], q.Where)
			}
		}
	}
	for _, n := range sortedKeys(missing) {
		t.Errorf("metric %s is not in the scrape; used by %s", n, strings.Join(missing[n], "; "))
	}

	problems, err := promlint.New(bytes.NewReader(scrape)).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("promlint: %s: %s", p.Metric, p.Text)
	}
}

// startListening runs a replica in-process like startMember, but serving HTTP
// on a listener of a free port, with the collectors `hitship run` registers,
// and returns the listener's address. The replica stops cleanly at the end of
// the test.
func startListening(t *testing.T, cfg *config.Config) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	own := *cfg
	own.Spool.Dir = t.TempDir()
	log := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	svc, err := service.New(&own, service.Deps{Logger: log, Registry: reg, Listener: ln})
	if err != nil {
		_ = ln.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("replica: %v", err)
			}
		case <-time.After(60 * time.Second):
			t.Errorf("replica did not stop within 60s")
		}
	})
	return ln.Addr().String()
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(body)
}

// seriesNames returns the names of the series in a text-format scrape, from its
// TYPE lines: a histogram is name_bucket, name_sum and name_count, a summary
// name, name_sum and name_count.
func seriesNames(scrape []byte) map[string]bool {
	out := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(scrape))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 4 || f[0] != "#" || f[1] != "TYPE" {
			continue
		}
		switch name, typ := f[2], f[3]; typ {
		case "histogram":
			out[name+"_bucket"], out[name+"_sum"], out[name+"_count"] = true, true, true
		case "summary":
			out[name], out[name+"_sum"], out[name+"_count"] = true, true, true
		default:
			out[name] = true
		}
	}
	return out
}

// sampleValues returns every sample of a text-format scrape by its series
// (name and labels exactly as written).
func sampleValues(scrape []byte) map[string]float64 {
	out := map[string]float64{}
	for _, line := range strings.Split(string(scrape), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
