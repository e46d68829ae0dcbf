package deploy

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"hitship/metrics"
)

// readmeTables returns the markdown tables of text: runs of lines starting
// with "|", each with the line number of its first line.
func readmeTables(text string) (tables [][]string, starts []int) {
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "|") {
			continue
		}
		j := i
		for j < len(lines) && strings.HasPrefix(lines[j], "|") {
			j++
		}
		tables, starts = append(tables, lines[i:j]), append(starts, i+1)
		i = j
	}
	return tables, starts
}

var separatorRE = regexp.MustCompile(`^\|(\s*:?-{3,}:?\s*\|)+\s*$`)

// TestReadmeTablesRender: every markdown table of the README starts with a
// header row and a separator row. A blank line inside a table ends it, and the
// rows after it do not render (they become a paragraph of pipes): before, the
// config table's external_id, parking and http (admin) rows did not.
func TestReadmeTablesRender(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	tables, starts := readmeTables(string(data))
	if len(tables) == 0 {
		t.Fatal("no table in the README")
	}
	for i, tb := range tables {
		if len(tb) < 2 || !separatorRE.MatchString(tb[1]) {
			t.Errorf("README.md:%d: a table without a header and separator row (a blank line inside a table above it?): %q", starts[i], tb[0])
		}
	}
}

// metricLabels returns every hitship metric with its variable label names, from
// the descriptors metrics.New registers (children or not).
func metricLabels(t *testing.T) map[string][]string {
	t.Helper()
	reg := &recordingRegisterer{Registry: prometheus.NewRegistry()}
	metrics.New(reg)
	descRE := regexp.MustCompile(`^Desc\{fqName: "([^"]+)".*variableLabels: \{([^}]*)\}\}$`)
	out := map[string][]string{}
	for _, c := range reg.collectors {
		ch := make(chan *prometheus.Desc, 64)
		go func() { c.Describe(ch); close(ch) }()
		for d := range ch {
			m := descRE.FindStringSubmatch(d.String())
			if m == nil {
				t.Fatalf("cannot read %s", d)
			}
			var labels []string
			if m[2] != "" {
				labels = strings.Split(m[2], ",")
			}
			slices.Sort(labels)
			out[m[1]] = labels
		}
	}
	return out
}

// TestReadmeMetrics: every metric the README's metrics table names exists, with
// exactly the labels the table gives it, and every hitship metric is in the
// table. Before, hitship_open_buffers and hitship_undelivered_objects were
// documented with hitship_spool_bytes's label "where", which they do not have.
func TestReadmeMetrics(t *testing.T) {
	data, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	known := metricLabels(t)
	var table []string
	tables, _ := readmeTables(string(data))
	for _, tb := range tables {
		if len(tb) > 0 && strings.HasPrefix(strings.ReplaceAll(tb[0], " ", ""), "|metric|labels|") {
			table = tb
		}
	}
	if table == nil {
		t.Fatal(`no "| metric | labels | meaning |" table in the README`)
	}
	nameRE := regexp.MustCompile("`(hitship_[a-z0-9_]+)`")
	parenRE := regexp.MustCompile(`\([^)]*\)`)
	documented := map[string]bool{}
	for _, row := range table[2:] {
		cells := strings.Split(strings.Trim(row, "| "), "|")
		if len(cells) < 3 {
			t.Errorf("README metrics row %q: want three cells", row)
			continue
		}
		var labels []string
		for _, l := range strings.Split(parenRE.ReplaceAllString(cells[1], ""), ",") {
			if l = strings.TrimSpace(l); l != "" {
				labels = append(labels, l)
			}
		}
		slices.Sort(labels)
		for _, m := range nameRE.FindAllStringSubmatch(cells[0], -1) {
			name := m[1]
			documented[name] = true
			got, ok := known[name]
			if !ok {
				t.Errorf("README documents %s, which hitship does not export", name)
				continue
			}
			if !slices.Equal(got, labels) {
				t.Errorf("README documents %s with labels %v; it has %v", name, labels, got)
			}
		}
	}
	for name := range known {
		if !documented[name] {
			t.Errorf("%s is not in the README's metrics table", name)
		}
	}
}
