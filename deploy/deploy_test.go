package deploy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
	"go.yaml.in/yaml/v3"

	"hitship/config"
	"hitship/internal/testenv"
	"hitship/metrics"
	"hitship/sink"
)

var update = flag.Bool("update", false, "rewrite kubernetes/prometheusrule.yaml from prometheus/alerts.yml")

// cleanStop is the longest a clean stop takes by design: the consumer waits up
// to 20 s (consumer.Config.ShutdownTimeout's default) for closed objects to be
// delivered, then service.Run gives the HTTP server 5 s to shut down. Grace
// periods must leave room for the commit and the group leave on top of it.
const cleanStop = 25 * time.Second

// recordingRegisterer remembers every collector registered through it, so
// that the test can list their descriptors (vectors without children do not
// show in Gather).
type recordingRegisterer struct {
	*prometheus.Registry
	collectors []prometheus.Collector
}

func (r *recordingRegisterer) Register(c prometheus.Collector) error {
	r.collectors = append(r.collectors, c)
	return r.Registry.Register(c)
}

func (r *recordingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

var fqNameRE = regexp.MustCompile(`fqName: "([^"]+)"`)

// knownMetrics returns every series name hitship exports: the metrics package
// on a fresh registry plus the collectors cmd/hitship's newRegistry adds
// (histograms expand to _bucket, _sum and _count), and `up`, which Prometheus
// adds to every target.
func knownMetrics(t *testing.T) map[string]bool {
	t.Helper()
	reg := &recordingRegisterer{Registry: prometheus.NewRegistry()}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewBuildInfoCollector())
	m := metrics.New(reg)
	// Series whose labels are only known at run time: create one child each.
	m.Integration("example")
	for _, v := range []*prometheus.GaugeVec{m.CommittedOffset, m.ConsumerLag, m.OldestUncommittedAge} {
		v.WithLabelValues("0")
	}
	m.RecordsConsumed.WithLabelValues("0")
	m.BuildInfo.WithLabelValues("v0.0.0", "0000000", "go1.26")
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	known := map[string]bool{"up": true}
	gathered := map[string]bool{}
	for _, mf := range mfs {
		name := mf.GetName()
		gathered[name] = true
		switch mf.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			known[name+"_bucket"], known[name+"_sum"], known[name+"_count"] = true, true, true
		case dto.MetricType_SUMMARY:
			known[name], known[name+"_sum"], known[name+"_count"] = true, true, true
		default:
			known[name] = true
		}
	}
	// Every registered metric must be in the set, or a name used by the
	// dashboard could be reported missing although hitship exports it.
	for _, c := range reg.collectors {
		ch := make(chan *prometheus.Desc, 64)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			mm := fqNameRE.FindStringSubmatch(d.String())
			if mm == nil {
				t.Fatalf("cannot read the name of %s", d)
			}
			if !gathered[mm[1]] {
				t.Errorf("metric %s has no series in the test registry: create one of its children in knownMetrics", mm[1])
			}
		}
	}
	return known
}

// promtoolPath returns promtool, or skips the test when it is not installed
// (fails under CI=true: .ci/run installs Debian's prometheus package).
func promtoolPath(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("promtool not found; .ci/run installs it (apt-get install prometheus)")
		}
		t.Skip("promtool not installed (apt-get install prometheus)")
	}
	return p
}

func runPromtool(t *testing.T, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(promtoolPath(t), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestMetricNames(t *testing.T) {
	tests := []struct {
		name, expr string
		want       []string
	}{
		{name: "selector", expr: `up{job="hitship"} == 0`, want: []string{"up"}},
		{name: "rate with grafana interval", expr: `sum by (integration) (rate(hitship_hits_delivered_total{job=~"$job", result=~"ok|exists"}[$__rate_interval]))`,
			want: []string{"hitship_hits_delivered_total"}},
		{name: "histogram quantile", expr: `histogram_quantile(0.99, sum by (le, integration) (rate(hitship_delivery_latency_seconds_bucket[5m])))`,
			want: []string{"hitship_delivery_latency_seconds_bucket"}},
		{name: "binary with on and unless", expr: "a_total / on (x, y) group_left (z) b_total unless ignoring(q) c offset 1h",
			want: []string{"a_total", "b_total", "c"}},
		{name: "subquery with offset", expr: `min_over_time(sum by (job) (lag{job="hitship"})[15m:1m] offset 15m) > 1.1 * lag`,
			want: []string{"lag"}},
		{name: "strings and numbers", expr: `label_replace(m, "dst", "$1", "src", "(.*)") > 1e3 or vector(0)`,
			want: []string{"m"}},
		{name: "keywords are not metrics", expr: `x > bool 1 and y or z unless w`, want: []string{"w", "x", "y", "z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := MetricNames(tt.expr); !slices.Equal(got, tt.want) {
				t.Errorf("MetricNames(%q) = %v, want %v", tt.expr, got, tt.want)
			}
		})
	}
}

func TestVariables(t *testing.T) {
	tests := []struct {
		name, expr string
		want       []string
	}{
		{name: "plain", expr: `x{job=~"$job"}[$__rate_interval]`, want: []string{"__rate_interval", "job"}},
		{name: "braces and format", expr: `x{i=~"${integration:regex}"} ${datasource}`, want: []string{"datasource", "integration"}},
		{name: "old style", expr: `x{i=~"[[integration]]"}`, want: []string{"integration"}},
		{name: "none", expr: `sum(x)`, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Variables(tt.expr); !slices.Equal(got, tt.want) {
				t.Errorf("Variables(%q) = %v, want %v", tt.expr, got, tt.want)
			}
		})
	}
}

// grafanaBuiltins are the variables Grafana defines itself.
var grafanaBuiltins = map[string]bool{"__rate_interval": true, "__interval": true, "__interval_ms": true,
	"__range": true, "__range_s": true, "__range_ms": true, "__dashboard": true, "__from": true, "__to": true}

// TestDashboard: the dashboard parses; it has the datasource, job and
// integration variables; every panel has a title, a description and the
// datasource variable; every query uses only metrics hitship exports and
// declared variables.
func TestDashboard(t *testing.T) {
	d, err := ParseDashboard()
	if err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || d.Title == "" || d.SchemaVersion < 36 {
		t.Errorf("uid %q, title %q, schemaVersion %d: want a uid, a title and schemaVersion >= 36", d.UID, d.Title, d.SchemaVersion)
	}
	vars := map[string]Variable{}
	for _, v := range d.Templating.List {
		vars[v.Name] = v
	}
	if v, ok := vars["datasource"]; !ok || v.Type != "datasource" || v.QueryString() != "prometheus" {
		t.Errorf("want a variable datasource of type datasource querying prometheus, got %+v", v)
	}
	if v, ok := vars["integration"]; !ok || v.Type != "query" || !v.Multi || !v.IncludeAll ||
		!strings.HasPrefix(v.QueryString(), "label_values(hitship_hits_delivered_total") || !strings.HasSuffix(v.QueryString(), ", integration)") {
		t.Errorf("want a multi-value variable integration with All from label_values(hitship_hits_delivered_total, integration), got %+v (query %q)", v, v.QueryString())
	}
	known := knownMetrics(t)
	dsVar := `{"type":"prometheus","uid":"${datasource}"}`
	checkDS := func(where string, raw json.RawMessage) {
		var c bytes.Buffer
		if err := json.Compact(&c, raw); err != nil || c.String() != dsVar {
			t.Errorf("%s: datasource %s, want %s", where, raw, dsVar)
		}
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			checkDS("variable "+v.Name, v.Datasource)
		}
	}
	ids := map[int]string{}
	panels := 0
	for _, p := range d.AllPanels() {
		if prev, dup := ids[p.ID]; dup {
			t.Errorf("panels %q and %q share id %d", prev, p.Title, p.ID)
		}
		ids[p.ID] = p.Title
		if p.Type == "row" {
			continue
		}
		panels++
		where := fmt.Sprintf("panel %q", p.Title)
		if p.Title == "" || len(p.Description) < 40 || !strings.Contains(p.Description, "Bad") {
			t.Errorf("%s: want a title and a description that says what bad looks like, got %q", where, p.Description)
		}
		checkDS(where, p.Datasource)
		if len(p.Targets) == 0 {
			t.Errorf("%s: no query", where)
		}
		for _, tg := range p.Targets {
			checkDS(where+" target "+tg.RefID, tg.Datasource)
		}
	}
	if panels < 20 {
		t.Errorf("%d panels; the dashboard should cover delivery, lag, latency, failures, input and replicas", panels)
	}
	qs, err := Queries()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range qs {
		if !strings.HasPrefix(q.Where, "dashboard") {
			continue
		}
		names := MetricNames(q.Expr)
		if len(names) == 0 {
			t.Errorf("%s: no metric in %q", q.Where, q.Expr)
		}
		for _, n := range names {
			if !known[n] {
				t.Errorf("%s: metric %s is not exported by hitship (expr %q)", q.Where, n, q.Expr)
			}
		}
		for _, v := range Variables(q.Expr) {
			if _, ok := vars[v]; !ok && !grafanaBuiltins[v] {
				t.Errorf("%s: undeclared variable $%s", q.Where, v)
			}
		}
	}
}

// grafanaValues replaces the dashboard's variables by values Prometheus accepts.
var grafanaValues = strings.NewReplacer("$__rate_interval", "1m", "$__interval", "1m", "$__range", "1h",
	"${datasource}", "prometheus", "$job", "hitship", "$integration", ".*")

// TestDashboardQueriesParse: every dashboard query, with its variables
// replaced, is valid PromQL (promtool checks it as a recording rule).
func TestDashboardQueriesParse(t *testing.T) {
	promtoolPath(t)
	qs, err := Queries()
	if err != nil {
		t.Fatal(err)
	}
	rf := RuleFile{Groups: []RuleGroup{{Name: "dashboard"}}}
	for i, q := range qs {
		if strings.HasPrefix(q.Where, "dashboard") {
			rf.Groups[0].Rules = append(rf.Groups[0].Rules, Rule{Record: fmt.Sprintf("dashboard:query_%d", i), Expr: grafanaValues.Replace(q.Expr)})
		}
	}
	data, err := yaml.Marshal(rf)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dashboard.rules.yml"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	runPromtool(t, dir, "check", "rules", "dashboard.rules.yml")
}

// alertTests is the part of a promtool test file the checks read.
type alertTests struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		Name          string `yaml:"name"`
		AlertRuleTest []struct {
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
	} `yaml:"tests"`
}

// TestAlertRules: the rules parse; every alert has a severity, a summary, a
// description and a runbook line and uses only metrics hitship exports;
// alerts_test.yml has a case where each fires and one where it stays quiet;
// promtool checks the rules, runs the unit tests and checks the compose
// Prometheus config that loads them.
func TestAlertRules(t *testing.T) {
	rf, err := ParseAlerts()
	if err != nil {
		t.Fatal(err)
	}
	known := knownMetrics(t)
	alerts := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: rule %q is not an alert", g.Name, r.Record)
				continue
			}
			if alerts[r.Alert] {
				t.Errorf("alert %s defined twice", r.Alert)
			}
			alerts[r.Alert] = true
			if r.Labels["severity"] != "warning" && r.Labels["severity"] != "critical" {
				t.Errorf("alert %s: severity %q, want warning or critical", r.Alert, r.Labels["severity"])
			}
			for _, a := range []string{"summary", "description", "runbook"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("alert %s: no %s annotation", r.Alert, a)
				}
			}
			if strings.Contains(strings.TrimSpace(r.Annotations["runbook"]), "\n") {
				t.Errorf("alert %s: the runbook is one line", r.Alert)
			}
			names := MetricNames(r.Expr)
			if len(names) == 0 {
				t.Errorf("alert %s: no metric in %q", r.Alert, r.Expr)
			}
			for _, n := range names {
				if !known[n] {
					t.Errorf("alert %s: metric %s is not exported by hitship", r.Alert, n)
				}
			}
		}
	}
	for _, want := range []string{"HitshipConsumerLagGrowing", "HitshipIntegrationNotDelivering", "HitshipIntegrationAutoDisabled",
		"HitshipDeadLetters", "HitshipBadRecordRate", "HitshipRedisDown", "HitshipReplicaDown", "HitshipAbsent"} {
		if !alerts[want] {
			t.Errorf("alert %s is missing", want)
		}
	}

	data, err := os.ReadFile("prometheus/alerts_test.yml")
	if err != nil {
		t.Fatal(err)
	}
	var at alertTests
	if err := yaml.Unmarshal(data, &at); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(at.RuleFiles, []string{"alerts.yml"}) {
		t.Errorf("alerts_test.yml tests %v, want [alerts.yml]", at.RuleFiles)
	}
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range at.Tests {
		for _, a := range tc.AlertRuleTest {
			if !alerts[a.Alertname] {
				t.Errorf("test %q checks unknown alert %s", tc.Name, a.Alertname)
			}
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	for a := range alerts {
		if !fires[a] || !quiet[a] {
			t.Errorf("alert %s: alerts_test.yml needs a case where it fires (%t) and one where it stays quiet (%t)", a, fires[a], quiet[a])
		}
	}

	runPromtool(t, "prometheus", "check", "rules", "alerts.yml")
	runPromtool(t, "prometheus", "test", "rules", "alerts_test.yml")
	runPromtool(t, "prometheus", "check", "config", "prometheus.yml")
}

const prometheusRuleHeader = `# GENERATED from deploy/prometheus/alerts.yml by
#   go test ./deploy -run TestPrometheusRule -update
# Do not edit: edit alerts.yml (a test fails when the two differ).
# The Prometheus Operator picks it up when its ruleSelector matches these labels
# (many installations select on a "release" label: add it in the kustomization).
apiVersion: monitoring.coreos.com/v1
kind: PrometheusRule
metadata:
  name: hitship
  labels:
    app.kubernetes.io/name: hitship
spec:
`

// TestPrometheusRule: the PrometheusRule's spec.groups are alerts.yml's
// groups, so there is one source of truth. -update rewrites it.
func TestPrometheusRule(t *testing.T) {
	const file = "kubernetes/prometheusrule.yaml"
	if *update {
		var b strings.Builder
		b.WriteString(prometheusRuleHeader)
		for _, line := range strings.SplitAfter(string(alertsYAML), "\n") {
			if strings.TrimSpace(line) != "" {
				b.WriteString("  ")
			}
			b.WriteString(line)
		}
		if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var pr struct {
		APIVersion string         `yaml:"apiVersion"`
		Kind       string         `yaml:"kind"`
		Spec       map[string]any `yaml:"spec"`
	}
	if err := yaml.Unmarshal(data, &pr); err != nil {
		t.Fatal(err)
	}
	var src map[string]any
	if err := yaml.Unmarshal(alertsYAML, &src); err != nil {
		t.Fatal(err)
	}
	if pr.APIVersion != "monitoring.coreos.com/v1" || pr.Kind != "PrometheusRule" {
		t.Errorf("%s is %s %s", file, pr.APIVersion, pr.Kind)
	}
	if !reflect.DeepEqual(pr.Spec["groups"], src["groups"]) {
		t.Errorf("%s differs from prometheus/alerts.yml: run go test ./deploy -run TestPrometheusRule -update", file)
	}
}

// manifest is one Kubernetes object, decoded loosely.
type manifest struct {
	file string
	obj  map[string]any
}

func (m manifest) kind() string { return str(m.obj, "kind") }
func (m manifest) name() string { return str(m.obj, "metadata", "name") }

// get walks maps (string keys) and lists (int keys).
func get(v any, keys ...any) any {
	for _, k := range keys {
		switch k := k.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any, keys ...any) string {
	s, _ := get(v, keys...).(string)
	return s
}

func list(v any, keys ...any) []any {
	l, _ := get(v, keys...).([]any)
	return l
}

func stringMap(v any) map[string]string {
	out := map[string]string{}
	m, _ := v.(map[string]any)
	for k, x := range m {
		out[k] = fmt.Sprint(x)
	}
	return out
}

// subset reports whether every key of sel has the same value in labels.
func subset(sel, labels map[string]string) bool {
	if len(sel) == 0 {
		return false
	}
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func readYAMLDocs(t *testing.T, file string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var docs []map[string]any
	for {
		var doc map[string]any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
	return docs
}

// loadConfig runs the checks `hitship check-config` runs on file, with the
// environment env instead of the process's, and fails the test on any problem.
func loadConfig(t *testing.T, file string, env map[string]string) *config.Config {
	t.Helper()
	cfg, problems, err := config.Load(file, config.WithKeyTemplate(func(s string) error { _, err := sink.ParseKeyTemplate(s); return err }),
		config.WithLookupEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }))
	if err != nil {
		t.Fatal(err)
	}
	if len(problems) > 0 {
		t.Fatalf("%s does not pass check-config with the environment %v:\n%v", file, keys(env), config.AsError(problems))
	}
	return cfg
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// envKeys returns the values of every *_env key of a YAML config file: the
// environment variables it reads secrets from.
func envKeys(t *testing.T, file string) []string {
	t.Helper()
	docs := readYAMLDocs(t, file)
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for k, x := range v {
				if s, ok := x.(string); ok && strings.HasSuffix(k, "_env") && s != "" {
					out = append(out, s)
				}
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	for _, d := range docs {
		walk(d)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

func listenPort(t *testing.T, listen string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(listen)
	if err != nil {
		t.Fatalf("http.listen %q: %v", listen, err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatalf("http.listen %q: %v", listen, err)
	}
	return n
}

var quantityRE = regexp.MustCompile(`^([0-9]+)(Ki|Mi|Gi|Ti|k|M|G|T)?$`)

// quantity parses the Kubernetes quantities the manifests use.
func quantity(t *testing.T, s string) int64 {
	t.Helper()
	m := quantityRE.FindStringSubmatch(s)
	if m == nil {
		t.Fatalf("quantity %q not understood", s)
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	mult := map[string]int64{"": 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12}
	return n * mult[m[2]]
}

// placeholderSecret is what the tests put in every secret environment variable
// (long enough for the admin token and external-ID minimums).
const placeholderSecret = "placeholder-secret-0123456789abcdef"

// TestKubernetes: the kustomization's resources parse and agree with each other
// and with the code: the mounted config passes check-config with the env vars
// the Deployment sets, which are exactly the config's *_env names and come from
// keys of the example Secret; the container port is http.listen's; the probes
// hit /healthz and /readyz; the spool emptyDir is mounted at spool.dir with a
// size limit above spool.max_bytes; the pods run as non-root on a read-only
// root filesystem with a grace period longer than a clean stop.
func TestKubernetes(t *testing.T) {
	const dir = "kubernetes"
	kust := readYAMLDocs(t, filepath.Join(dir, "kustomization.yaml"))
	if len(kust) != 1 || str(kust[0], "kind") != "Kustomization" {
		t.Fatalf("kustomization.yaml: want one Kustomization")
	}
	k := kust[0]
	var ms []manifest
	listed := map[string]bool{"kustomization.yaml": true, "config.yaml": true, "secret.example.yaml": true}
	for _, r := range list(k, "resources") {
		f := r.(string)
		listed[f] = true
		for _, d := range readYAMLDocs(t, filepath.Join(dir, f)) {
			m := manifest{file: f, obj: d}
			if str(d, "apiVersion") == "" || m.kind() == "" || m.name() == "" {
				t.Errorf("%s: object without apiVersion, kind or metadata.name", f)
			}
			ms = append(ms, m)
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !listed[e.Name()] {
			t.Errorf("%s/%s is not in the kustomization's resources", dir, e.Name())
		}
	}
	byKind := map[string]manifest{}
	for _, m := range ms {
		if _, dup := byKind[m.kind()]; dup {
			t.Errorf("two objects of kind %s", m.kind())
		}
		byKind[m.kind()] = m
	}
	for _, kind := range []string{"Deployment", "Service", "PodDisruptionBudget", "ServiceMonitor", "PrometheusRule", "ServiceAccount"} {
		if _, ok := byKind[kind]; !ok {
			t.Fatalf("no %s among the kustomization's resources", kind)
		}
	}

	dep := byKind["Deployment"].obj
	if n, _ := get(dep, "spec", "replicas").(int); n != 3 {
		t.Errorf("Deployment: %d replicas, want 3", n)
	}
	pod := get(dep, "spec", "template", "spec")
	podLabels := stringMap(get(dep, "spec", "template", "metadata", "labels"))
	if sel := stringMap(get(dep, "spec", "selector", "matchLabels")); !subset(sel, podLabels) {
		t.Errorf("Deployment selector %v does not select its pods %v", sel, podLabels)
	}
	if sa := str(pod, "serviceAccountName"); sa != byKind["ServiceAccount"].name() {
		t.Errorf("serviceAccountName %q, want the ServiceAccount %q", sa, byKind["ServiceAccount"].name())
	}
	if g, _ := get(pod, "terminationGracePeriodSeconds").(int); time.Duration(g)*time.Second < cleanStop+15*time.Second {
		t.Errorf("terminationGracePeriodSeconds %d: a clean stop takes up to %s, leave at least 15 s more", g, cleanStop)
	}
	if get(pod, "securityContext", "runAsNonRoot") != true {
		t.Errorf("pod securityContext.runAsNonRoot is not true")
	}
	if u, _ := get(pod, "securityContext", "runAsUser").(int); u == 0 {
		t.Errorf("pod securityContext.runAsUser is 0 or missing")
	}
	ctrs := list(pod, "containers")
	if len(ctrs) != 1 {
		t.Fatalf("%d containers, want 1", len(ctrs))
	}
	c := ctrs[0]
	if get(c, "securityContext", "readOnlyRootFilesystem") != true || get(c, "securityContext", "allowPrivilegeEscalation") != false {
		t.Errorf("container securityContext: want readOnlyRootFilesystem true and allowPrivilegeEscalation false")
	}
	for _, r := range []string{"requests", "limits"} {
		if get(c, "resources", r, "memory") == nil {
			t.Errorf("container resources.%s.memory is not set", r)
		}
	}
	if get(c, "resources", "requests", "cpu") == nil {
		t.Errorf("container resources.requests.cpu is not set")
	}
	if img := str(c, "image"); img != str(k, "images", 0, "name") {
		t.Errorf("container image %q is not the kustomization's images[0].name %q", img, str(k, "images", 0, "name"))
	}

	// The config: args, mount, generator.
	var args []string
	for _, a := range list(c, "args") {
		args = append(args, a.(string))
	}
	if len(args) != 3 || args[0] != "run" || args[1] != "--config" {
		t.Fatalf("container args %v, want run --config FILE", args)
	}
	mounts := map[string]string{} // volume -> mountPath
	for _, vm := range list(c, "volumeMounts") {
		mounts[str(vm, "name")] = str(vm, "mountPath")
	}
	volumes := map[string]any{}
	for _, v := range list(pod, "volumes") {
		volumes[str(v, "name")] = v
	}
	var cfgFile string
	for name, mp := range mounts {
		cm := str(volumes[name], "configMap", "name")
		if cm == "" || path.Dir(args[2]) != mp {
			continue
		}
		for _, g := range list(k, "configMapGenerator") {
			if str(g, "name") != cm {
				continue
			}
			for _, f := range list(g, "files") {
				if path.Base(f.(string)) == path.Base(args[2]) {
					cfgFile = filepath.Join(dir, f.(string))
				}
			}
		}
	}
	if cfgFile == "" {
		t.Fatalf("--config %s is not a file of a configMapGenerator mounted at %s", args[2], path.Dir(args[2]))
	}

	// Secrets: env vars from secretKeyRef of the example Secret's keys.
	secret := readYAMLDocs(t, filepath.Join(dir, "secret.example.yaml"))[0]
	env := map[string]string{}
	for _, e := range list(c, "env") {
		name := str(e, "name")
		ref := get(e, "valueFrom", "secretKeyRef")
		if ref == nil {
			env[name] = str(e, "value")
			continue
		}
		if str(ref, "name") != str(secret, "metadata", "name") || get(secret, "stringData", str(ref, "key")) == nil {
			t.Errorf("env %s: secretKeyRef %s/%s is not a key of secret.example.yaml", name, str(ref, "name"), str(ref, "key"))
		}
		env[name] = placeholderSecret
	}
	if want := envKeys(t, cfgFile); !slices.Equal(keys(env), want) {
		t.Errorf("the Deployment sets %v; %s reads secrets from %v", keys(env), cfgFile, want)
	}
	cfg := loadConfig(t, cfgFile, env)

	// Port and probes.
	port := listenPort(t, cfg.HTTP.Listen)
	var portName string
	for _, p := range list(c, "ports") {
		if n, _ := get(p, "containerPort").(int); n == port {
			portName = str(p, "name")
		}
	}
	if portName == "" {
		t.Fatalf("no container port %d (http.listen %s)", port, cfg.HTTP.Listen)
	}
	for probe, want := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
		if p := str(c, probe, "httpGet", "path"); p != want {
			t.Errorf("%s path %q, want %s", probe, p, want)
		}
		if p := get(c, probe, "httpGet", "port"); p != portName && p != port {
			t.Errorf("%s port %v, want %s (%d)", probe, p, portName, port)
		}
	}

	// Spool.
	var spoolVol string
	for name, mp := range mounts {
		if mp == cfg.Spool.Dir {
			spoolVol = name
		}
	}
	ed := get(volumes[spoolVol], "emptyDir")
	if spoolVol == "" || ed == nil {
		t.Fatalf("spool.dir %s is not an emptyDir mount", cfg.Spool.Dir)
	}
	limit := str(ed, "sizeLimit")
	if limit == "" || quantity(t, limit) <= int64(cfg.Spool.MaxBytes) {
		t.Errorf("spool emptyDir sizeLimit %q must exceed spool.max_bytes %d, or the pod is evicted before partitions pause", limit, cfg.Spool.MaxBytes)
	}

	// Service, ServiceMonitor, PDB.
	svc := byKind["Service"]
	if sel := stringMap(get(svc.obj, "spec", "selector")); !subset(sel, podLabels) {
		t.Errorf("Service selector %v does not select the pods %v", sel, podLabels)
	}
	var svcPort string
	for _, p := range list(svc.obj, "spec", "ports") {
		if n, _ := get(p, "port").(int); n == port && (get(p, "targetPort") == portName || get(p, "targetPort") == port) {
			svcPort = str(p, "name")
		}
	}
	if svcPort == "" {
		t.Errorf("Service has no named port %d targeting the container's %s", port, portName)
	}
	sm := byKind["ServiceMonitor"].obj
	if sel := stringMap(get(sm, "spec", "selector", "matchLabels")); !subset(sel, stringMap(get(svc.obj, "metadata", "labels"))) {
		t.Errorf("ServiceMonitor selector %v does not select the Service", sel)
	}
	if p := str(sm, "spec", "endpoints", 0, "port"); p != svcPort || str(sm, "spec", "endpoints", 0, "path") != "/metrics" {
		t.Errorf("ServiceMonitor endpoint port %q path %q, want %q /metrics", p, str(sm, "spec", "endpoints", 0, "path"), svcPort)
	}
	// The alert rules select job="hitship": the Operator names the job after the Service.
	if svc.name() != "hitship" || str(sm, "spec", "jobLabel") != "" {
		t.Errorf("the alerts expect job=\"hitship\": keep the Service named hitship and no jobLabel")
	}
	pdb := byKind["PodDisruptionBudget"].obj
	if sel := stringMap(get(pdb, "spec", "selector", "matchLabels")); !subset(sel, podLabels) {
		t.Errorf("PodDisruptionBudget selector %v does not select the pods", sel)
	}
	if get(pdb, "spec", "maxUnavailable") == nil && get(pdb, "spec", "minAvailable") == nil {
		t.Errorf("PodDisruptionBudget sets neither maxUnavailable nor minAvailable")
	}
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// hitshipBinary builds cmd/hitship once per test process.
func hitshipBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		dir, err := os.MkdirTemp("", "hitship-deploy-test")
		if err != nil {
			binErr = err
			return
		}
		binPath = filepath.Join(dir, "hitship")
		// Named like a Makefile build (hitship_build_info names the commit).
		binErr = testenv.BuildHitship(context.Background(), "..", binPath)
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if binPath != "" {
		_ = os.RemoveAll(filepath.Dir(binPath))
	}
	os.Exit(code)
}

// genFlags returns the flags `hitship gen` accepts, from its -h output.
func genFlags(t *testing.T) map[string]bool {
	t.Helper()
	out, _ := exec.Command(hitshipBinary(t), "gen", "-h").CombinedOutput()
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+-([a-z][a-z0-9-]*)`).FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = true
	}
	if len(flags) < 5 {
		t.Fatalf("cannot read the flags of hitship gen -h:\n%s", out)
	}
	return flags
}

func stringsOf(t *testing.T, v any) []string {
	t.Helper()
	switch v := v.(type) {
	case nil:
		return nil
	case string:
		return strings.Fields(v)
	case []any:
		out := make([]string, len(v))
		for i, x := range v {
			out[i] = fmt.Sprint(x)
		}
		return out
	}
	t.Fatalf("not a command: %v", v)
	return nil
}

// flagValue returns the value of --name (or -name) in args.
func flagValue(args []string, name string) string {
	for i, a := range args {
		if (a == "--"+name || a == "-"+name) && i+1 < len(args) {
			return args[i+1]
		}
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v
		}
	}
	return ""
}

// TestCompose: docker-compose.yml parses and agrees with the code and the
// other files: the three replicas run a config that passes check-config with
// the environment they get, their spool tmpfs is spool.dir and their published
// port is http.listen's; the topics Kafka gets and the buckets MinIO gets are
// the config's; gen's flags exist and feed the config's topic and tenants;
// Prometheus scrapes every replica with the alert rules loaded; Grafana gets
// the datasource and the dashboard.
func TestCompose(t *testing.T) {
	docs := readYAMLDocs(t, "../docker-compose.yml")
	if len(docs) != 1 {
		t.Fatalf("docker-compose.yml: %d documents", len(docs))
	}
	services, _ := docs[0]["services"].(map[string]any)
	for _, s := range []string{"kafka", "kafka-init", "redis", "minio", "minio-init", "gen", "prometheus", "grafana"} {
		if services[s] == nil {
			t.Errorf("no service %s", s)
		}
	}
	volumeOf := func(svc any, target string) string {
		for _, v := range list(svc, "volumes") {
			parts := strings.Split(v.(string), ":")
			if len(parts) >= 2 && parts[1] == target {
				return filepath.Join("..", parts[0])
			}
		}
		return ""
	}
	envOf := func(svc any) map[string]string { return stringMap(get(svc, "environment")) }

	var replicas []string
	var cfg *config.Config
	for name, svc := range services {
		args := stringsOf(t, get(svc, "command"))
		if len(args) == 0 || args[0] != "run" {
			continue
		}
		replicas = append(replicas, name)
		file := volumeOf(svc, flagValue(args, "config"))
		if file == "" {
			t.Fatalf("%s: --config %s is not a mounted file", name, flagValue(args, "config"))
		}
		env := envOf(svc)
		if want := envKeys(t, file); !slices.Equal(keys(env), want) {
			t.Errorf("%s sets %v; %s reads secrets from %v", name, keys(env), file, want)
		}
		c := loadConfig(t, file, env)
		// And the command itself, as an operator would run it.
		cmd := exec.Command(hitshipBinary(t), "check-config", file)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
		for k, v := range env {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: hitship check-config %s: %v\n%s", name, file, err, out)
		}
		cfg = c
		var tmpfs []string
		for _, x := range list(svc, "tmpfs") {
			tmpfs = append(tmpfs, strings.SplitN(x.(string), ":", 2)[0])
		}
		if !slices.Contains(tmpfs, c.Spool.Dir) {
			t.Errorf("%s: spool.dir %s is not one of its tmpfs mounts %v", name, c.Spool.Dir, tmpfs)
		}
		if get(svc, "read_only") != true {
			t.Errorf("%s: read_only is not true (the Kubernetes pod has a read-only root)", name)
		}
		if d, err := time.ParseDuration(str(svc, "stop_grace_period")); err != nil || d < cleanStop+15*time.Second {
			t.Errorf("%s: stop_grace_period %q, want at least %s", name, str(svc, "stop_grace_period"), cleanStop+15*time.Second)
		}
		port := strconv.Itoa(listenPort(t, c.HTTP.Listen))
		published := false
		for _, p := range list(svc, "ports") {
			if s := fmt.Sprint(p); strings.HasSuffix(s, ":"+port) {
				published = true
			}
		}
		if !published {
			t.Errorf("%s: container port %s (http.listen) is not published", name, port)
		}
	}
	slices.Sort(replicas)
	if !slices.Equal(replicas, []string{"hitship-1", "hitship-2", "hitship-3"}) {
		t.Fatalf("replicas %v, want hitship-1..3", replicas)
	}

	// Kafka: the broker address and the topics.
	if adv := stringMap(get(services["kafka"], "environment"))["KAFKA_ADVERTISED_LISTENERS"]; !strings.Contains(adv, "://"+cfg.Kafka.Brokers[0]) {
		t.Errorf("kafka advertises %q; the config's brokers are %v", adv, cfg.Kafka.Brokers)
	}
	initCmd := strings.Join(stringsOf(t, get(services["kafka-init"], "command")), " ")
	for _, topic := range []string{cfg.Kafka.Topic, cfg.Kafka.DeadLetterTopic} {
		if !strings.Contains(initCmd, "--create --if-not-exists --topic "+topic+" ") {
			t.Errorf("kafka-init does not create topic %s", topic)
		}
	}
	// Redis and MinIO.
	if host, _, _ := net.SplitHostPort(cfg.Redis.Addr); services[host] == nil {
		t.Errorf("redis.addr %s is not a compose service", cfg.Redis.Addr)
	}
	if !strings.HasPrefix(cfg.S3.Endpoint, "http://minio:9000") || !cfg.S3.PathStyle {
		t.Errorf("s3.endpoint %q path_style %t, want http://minio:9000 with path-style", cfg.S3.Endpoint, cfg.S3.PathStyle)
	}
	mcCmd := strings.Join(stringsOf(t, get(services["minio-init"], "command")), " ")
	mcEnv := envOf(services["minio-init"])
	buckets := []string{cfg.Parking.Bucket}
	for _, in := range cfg.Integrations {
		buckets = append(buckets, in.Bucket)
		if in.Credentials.AccessKeyID != mcEnv["WRITER_KEY"] {
			t.Errorf("integration %s writes with key %s; minio-init creates %s", in.Name, in.Credentials.AccessKeyID, mcEnv["WRITER_KEY"])
		}
		if in.Credentials.SecretAccessKey() != mcEnv["WRITER_SECRET"] {
			t.Errorf("integration %s: its secret is not minio-init's WRITER_SECRET", in.Name)
		}
	}
	for _, b := range buckets {
		if !regexp.MustCompile(`\bmc mb [^&]*demo/` + regexp.QuoteMeta(b) + `\b`).MatchString(mcCmd) {
			t.Errorf("minio-init does not create bucket %s", b)
		}
	}

	// gen: flags exist, and it feeds the config's topic and tenants.
	gen := stringsOf(t, get(services["gen"], "command"))
	if len(gen) == 0 || gen[0] != "gen" {
		t.Fatalf("gen command %v", gen)
	}
	flags := genFlags(t)
	for _, a := range gen[1:] {
		if !strings.HasPrefix(a, "-") {
			continue // a flag's value
		}
		f, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if !flags[f] {
			t.Errorf("hitship gen has no flag -%s", f)
		}
	}
	if b := flagValue(gen, "brokers"); b != strings.Join(cfg.Kafka.Brokers, ",") || flagValue(gen, "topic") != cfg.Kafka.Topic {
		t.Errorf("gen produces to %s %s; the replicas read %v %s", b, flagValue(gen, "topic"), cfg.Kafka.Brokers, cfg.Kafka.Topic)
	}
	tenants, _ := strconv.Atoi(flagValue(gen, "tenants"))
	first := int64(1)
	if f := flagValue(gen, "first-id"); f != "" {
		first, _ = strconv.ParseInt(f, 10, 64)
	}
	for _, in := range cfg.Integrations {
		if in.ClientID < first || in.ClientID >= first+int64(tenants) {
			t.Errorf("integration %s (client %d) gets no hits from gen (clients %d..%d)", in.Name, in.ClientID, first, first+int64(tenants)-1)
		}
	}

	// Prometheus: every replica scraped, the alert rules loaded.
	prom := services["prometheus"]
	promFile := volumeOf(prom, "/etc/prometheus/prometheus.yml")
	if promFile == "" {
		t.Fatal("prometheus.yml is not mounted at /etc/prometheus/prometheus.yml")
	}
	pc := readYAMLDocs(t, promFile)[0]
	var targets []string
	for _, sc := range list(pc, "scrape_configs") {
		if str(sc, "job_name") != "hitship" {
			continue
		}
		for _, x := range list(sc, "static_configs", 0, "targets") {
			targets = append(targets, x.(string))
		}
	}
	var want []string
	for _, r := range replicas {
		want = append(want, net.JoinHostPort(r, strconv.Itoa(listenPort(t, cfg.HTTP.Listen))))
	}
	slices.Sort(targets)
	if !slices.Equal(targets, want) {
		t.Errorf("Prometheus job hitship scrapes %v, want %v", targets, want)
	}
	for _, rf := range list(pc, "rule_files") {
		p := rf.(string)
		if !path.IsAbs(p) {
			p = path.Join("/etc/prometheus", p)
		}
		if got := volumeOf(prom, p); got != filepath.Join("..", "deploy/prometheus/alerts.yml") {
			t.Errorf("rule file %s is mounted from %q, want deploy/prometheus/alerts.yml", p, got)
		}
	}
	if len(list(pc, "rule_files")) == 0 {
		t.Errorf("prometheus.yml loads no rule files")
	}

	// Grafana: provisioning and the dashboard.
	gr := services["grafana"]
	prov := volumeOf(gr, "/etc/grafana/provisioning")
	if prov == "" {
		t.Fatal("grafana: no provisioning directory mounted at /etc/grafana/provisioning")
	}
	ds := readYAMLDocs(t, filepath.Join(prov, "datasources", "prometheus.yml"))[0]
	if str(ds, "datasources", 0, "type") != "prometheus" || str(ds, "datasources", 0, "url") != "http://prometheus:9090" {
		t.Errorf("grafana datasource %v, want type prometheus at http://prometheus:9090", get(ds, "datasources", 0))
	}
	dp := readYAMLDocs(t, filepath.Join(prov, "dashboards", "hitship.yml"))[0]
	dashDir := str(dp, "providers", 0, "options", "path")
	if got := volumeOf(gr, path.Join(dashDir, "hitship.json")); got != filepath.Join("..", "deploy/grafana/hitship.json") {
		t.Errorf("grafana: %s/hitship.json is mounted from %q, want deploy/grafana/hitship.json", dashDir, got)
	}
}

// TestDockerfile: a multi-stage build of a static ./cmd/hitship on golang:1.26
// into a distroless nonroot image; the exposed port is http.listen's default;
// the build context (.dockerignore) keeps every package the binary needs.
func TestDockerfile(t *testing.T) {
	data, err := os.ReadFile("../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	text := regexp.MustCompile(`\\\n`).ReplaceAllString(string(data), " ")
	var froms, runs, users, exposes, entry []string
	for _, line := range strings.Split(text, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		rest := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(line), f[0]))
		switch strings.ToUpper(f[0]) {
		case "FROM":
			froms = append(froms, rest)
		case "RUN":
			runs = append(runs, rest)
		case "USER":
			users = append(users, rest)
		case "EXPOSE":
			exposes = append(exposes, rest)
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &entry); err != nil {
				t.Errorf("ENTRYPOINT %s: want the exec form: %v", rest, err)
			}
		}
	}
	if len(froms) < 2 || !strings.HasPrefix(froms[0], "golang:1.26") {
		t.Errorf("FROM %v: want a golang:1.26 build stage and a final stage", froms)
	}
	if last := froms[len(froms)-1]; !strings.Contains(last, "distroless/static") && last != "scratch" {
		t.Errorf("final stage FROM %s: want distroless static or scratch", last)
	}
	build := ""
	for _, r := range runs {
		if strings.Contains(r, "go build") {
			build = r
		}
	}
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "./cmd/hitship"} {
		if !strings.Contains(build, want) {
			t.Errorf("go build %q lacks %s", build, want)
		}
	}
	// The image names its commit (hitship version, hitship_build_info): .git is
	// not in the build context, so the revision is a build argument that the
	// build links in, and every build the project makes passes it.
	for _, arg := range []string{"REVISION", "VERSION"} {
		if !regexp.MustCompile(`(?m)^ARG ` + arg + `\b`).MatchString(text) {
			t.Errorf("Dockerfile has no ARG %s", arg)
		}
	}
	for _, want := range []string{"-X hitship/internal/buildinfo.revision=${REVISION}", "-X hitship/internal/buildinfo.version=${VERSION}"} {
		if !strings.Contains(build, want) {
			t.Errorf("go build %q lacks %s", build, want)
		}
	}
	mk, err := os.ReadFile("../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`docker build [^\n]*--build-arg REVISION=\$\(REVISION\)`).Match(mk) {
		t.Error("the Makefile's docker build does not pass --build-arg REVISION")
	}
	compose := readYAMLDocs(t, "../docker-compose.yml")[0]
	for name, svc := range compose["services"].(map[string]any) {
		if get(svc, "build") == nil {
			continue
		}
		if args := stringMap(get(get(svc, "build"), "args")); args["REVISION"] == "" {
			t.Errorf("docker-compose.yml: %s builds the image without the REVISION build argument", name)
		}
	}
	if len(users) == 0 || strings.HasPrefix(users[len(users)-1], "root") || strings.HasPrefix(users[len(users)-1], "0") {
		t.Errorf("USER %v: want a non-root user last", users)
	}
	def := config.Default()
	if want := strconv.Itoa(listenPort(t, def.HTTP.Listen)); !slices.Contains(exposes, want) {
		t.Errorf("EXPOSE %v, want %s (http.listen's default)", exposes, want)
	}
	if len(entry) == 0 || !strings.Contains(build, "-o /out"+entry[0]) {
		t.Errorf("ENTRYPOINT %v is not the built binary (%s)", entry, build)
	}

	ign, err := os.ReadFile("../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(ign), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			patterns = append(patterns, strings.TrimSuffix(l, "/"))
		}
	}
	for _, want := range []string{".git", "bin", "var"} {
		if !slices.Contains(patterns, want) {
			t.Errorf(".dockerignore does not exclude %s", want)
		}
	}
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.Dir}}{{end}}", "../cmd/hitship").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range strings.Fields(string(out)) {
		rel, err := filepath.Rel(root, dir)
		if err != nil || strings.HasPrefix(rel, "..") {
			continue // a module dependency
		}
		for _, p := range patterns {
			if ok, _ := filepath.Match(p, strings.Split(filepath.ToSlash(rel), "/")[0]); ok || rel == p || strings.HasPrefix(filepath.ToSlash(rel), p+"/") {
				t.Errorf(".dockerignore pattern %q excludes %s, which ./cmd/hitship needs", p, rel)
			}
		}
	}
}
