// Package deploy holds what operators deploy and watch hitship with: the Grafana
// dashboard (grafana/hitship.json), the Prometheus alert rules
// (prometheus/alerts.yml, with promtool unit tests), the Kubernetes manifests
// (kubernetes/, kustomize-able), the docker-compose configuration (compose/ and
// ../docker-compose.yml) and the Dockerfile at the repository root.
//
// The Go code here only reads the dashboard and the alert rules, which are
// embedded, and lists the PromQL queries they make and the metric names those
// queries use. The tests of this package check those names against the metrics
// hitship registers, and service's metric contract test checks them against a
// scrape of a running hitship, so that a renamed metric cannot silently leave a
// panel empty or an alert mute. Everything is read-only and safe for concurrent use.
package deploy

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

//go:embed grafana/hitship.json
var dashboardJSON []byte

//go:embed prometheus/alerts.yml
var alertsYAML []byte

// Dashboard is the part of a Grafana dashboard model the checks read.
type Dashboard struct {
	UID           string  `json:"uid"`
	Title         string  `json:"title"`
	SchemaVersion int     `json:"schemaVersion"`
	Panels        []Panel `json:"panels"`
	Templating    struct {
		List []Variable `json:"list"`
	} `json:"templating"`
}

// Panel is a dashboard panel or row; a collapsed row holds its panels.
type Panel struct {
	ID          int             `json:"id"`
	Type        string          `json:"type"`
	Title       string          `json:"title"`
	Description string          `json:"description"`
	Datasource  json.RawMessage `json:"datasource"`
	Targets     []Target        `json:"targets"`
	Panels      []Panel         `json:"panels"`
}

// Target is one query of a panel.
type Target struct {
	RefID      string          `json:"refId"`
	Expr       string          `json:"expr"`
	Datasource json.RawMessage `json:"datasource"`
}

// Variable is a templating variable. Query is a string or an object with a
// "query" field, depending on the Grafana version that saved it.
type Variable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Query      json.RawMessage `json:"query"`
	Definition string          `json:"definition"`
	Multi      bool            `json:"multi"`
	IncludeAll bool            `json:"includeAll"`
	Datasource json.RawMessage `json:"datasource"`
}

// QueryString returns the variable's query text.
func (v Variable) QueryString() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var o struct {
		Query string `json:"query"`
	}
	if json.Unmarshal(v.Query, &o) == nil && o.Query != "" {
		return o.Query
	}
	return v.Definition
}

// AllPanels returns every panel, rows' nested panels included, in order.
func (d *Dashboard) AllPanels() []Panel {
	var out []Panel
	var walk func([]Panel)
	walk = func(ps []Panel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// DashboardJSON returns the dashboard file's bytes.
func DashboardJSON() []byte { return bytes.Clone(dashboardJSON) }

// AlertsYAML returns the alert rules file's bytes.
func AlertsYAML() []byte { return bytes.Clone(alertsYAML) }

// ParseDashboard decodes the embedded dashboard.
func ParseDashboard() (*Dashboard, error) {
	var d Dashboard
	if err := json.Unmarshal(dashboardJSON, &d); err != nil {
		return nil, fmt.Errorf("grafana/hitship.json: %w", err)
	}
	return &d, nil
}

// RuleFile is a Prometheus rule file.
type RuleFile struct {
	Groups []RuleGroup `yaml:"groups"`
}

// RuleGroup is one group of rules.
type RuleGroup struct {
	Name     string `yaml:"name"`
	Interval string `yaml:"interval,omitempty"`
	Rules    []Rule `yaml:"rules"`
}

// Rule is an alerting or recording rule.
type Rule struct {
	Alert       string            `yaml:"alert,omitempty"`
	Record      string            `yaml:"record,omitempty"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for,omitempty"`
	Labels      map[string]string `yaml:"labels,omitempty"`
	Annotations map[string]string `yaml:"annotations,omitempty"`
}

// ParseRules decodes a rule file strictly (an unknown key is an error).
func ParseRules(data []byte) (*RuleFile, error) {
	var f RuleFile
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	return &f, nil
}

// ParseAlerts decodes the embedded alert rules.
func ParseAlerts() (*RuleFile, error) {
	f, err := ParseRules(alertsYAML)
	if err != nil {
		return nil, fmt.Errorf("prometheus/alerts.yml: %w", err)
	}
	return f, nil
}

// Query is one PromQL expression of the dashboard or the alert rules.
type Query struct {
	Where string // which panel, variable or alert it belongs to
	Expr  string
}

// labelValuesRE matches Grafana's label_values(selector, label) variable query.
var labelValuesRE = regexp.MustCompile(`^\s*label_values\((.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$`)

// Queries returns every PromQL expression of the dashboard (panel targets, and
// the selectors of label_values variables) and of the alert rules.
func Queries() ([]Query, error) {
	d, err := ParseDashboard()
	if err != nil {
		return nil, err
	}
	var out []Query
	for _, p := range d.AllPanels() {
		for _, t := range p.Targets {
			out = append(out, Query{Where: fmt.Sprintf("dashboard panel %q target %s", p.Title, t.RefID), Expr: t.Expr})
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		if m := labelValuesRE.FindStringSubmatch(v.QueryString()); m != nil {
			out = append(out, Query{Where: fmt.Sprintf("dashboard variable %s", v.Name), Expr: m[1]})
		}
	}
	rf, err := ParseAlerts()
	if err != nil {
		return nil, err
	}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			out = append(out, Query{Where: "alert " + r.Alert + r.Record, Expr: r.Expr})
		}
	}
	return out, nil
}

var (
	stringRE   = regexp.MustCompile("\"(?:[^\"\\\\]|\\\\.)*\"|'(?:[^'\\\\]|\\\\.)*'|`[^`]*`")
	matcherRE  = regexp.MustCompile(`\{[^{}]*\}`)
	rangeRE    = regexp.MustCompile(`\[[^\[\]]*\]`)
	groupingRE = regexp.MustCompile(`\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)`)
	modifierRE = regexp.MustCompile(`\boffset\s+-?[0-9a-zA-Z_$]+|@\s*(?:start\(\)|end\(\)|[0-9.]+)`)
	wordRE     = regexp.MustCompile(`[A-Za-z0-9_:.$]+`)
	keywords   = map[string]bool{"and": true, "or": true, "unless": true, "bool": true, "by": true, "without": true,
		"on": true, "ignoring": true, "group_left": true, "group_right": true, "offset": true, "inf": true, "nan": true}
)

// MetricNames returns the metric names a PromQL expression selects, sorted and
// without duplicates: every identifier that is not a function or aggregation,
// a keyword, a label name in a grouping clause, a label matcher or a Grafana
// variable. It is a lexical scan, not a parser: it expects a valid expression
// (promtool checks that) and does not handle {__name__="..."} selectors.
func MetricNames(expr string) []string {
	s := stringRE.ReplaceAllString(expr, `""`)
	s = matcherRE.ReplaceAllString(s, " ")
	for {
		r := rangeRE.ReplaceAllString(s, " ")
		if r == s {
			break
		}
		s = r
	}
	s = groupingRE.ReplaceAllString(s, " ")
	s = modifierRE.ReplaceAllString(s, " ")
	var out []string
	for _, loc := range wordRE.FindAllStringIndex(s, -1) {
		w := s[loc[0]:loc[1]]
		c := w[0]
		if !(c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) || keywords[strings.ToLower(w)] {
			continue
		}
		if rest := strings.TrimLeft(s[loc[1]:], " \t\r\n"); strings.HasPrefix(rest, "(") {
			continue // a function or an aggregation
		}
		if !slices.Contains(out, w) {
			out = append(out, w)
		}
	}
	slices.Sort(out)
	return out
}

// variableRE matches Grafana variable references: $name, ${name}, ${name:format}, [[name]].
var variableRE = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)(?::[^}]*)?\}|\$([A-Za-z0-9_]+)|\[\[([A-Za-z0-9_]+)\]\]`)

// Variables returns the Grafana variables an expression refers to, sorted and
// without duplicates.
func Variables(expr string) []string {
	var out []string
	for _, m := range variableRE.FindAllStringSubmatch(expr, -1) {
		v := m[1] + m[2] + m[3]
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return out
}
