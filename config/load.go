package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Problem is one thing wrong with a configuration.
type Problem struct {
	Key  string // key path such as "integrations[1].bucket"; "" for the whole file
	Line int    // line in the YAML file, 0 when unknown
	Msg  string // what is wrong
	Fix  string // one sentence saying how to fix it
}

// String formats the problem for an operator, on one line.
func (p Problem) String() string {
	var b strings.Builder
	if p.Key != "" {
		b.WriteString(p.Key)
	} else {
		b.WriteString("config")
	}
	if p.Line > 0 {
		fmt.Fprintf(&b, " (line %d)", p.Line)
	}
	b.WriteString(": ")
	b.WriteString(p.Msg)
	if p.Fix != "" {
		b.WriteString(". Fix: ")
		b.WriteString(p.Fix)
	}
	return b.String()
}

// ErrInvalid is wrapped by the error AsError returns.
var ErrInvalid = errors.New("invalid configuration")

// AsError returns nil when there are no problems, else an error wrapping
// ErrInvalid that lists every problem, one per line.
func AsError(problems []Problem) error {
	if len(problems) == 0 {
		return nil
	}
	lines := make([]string, len(problems))
	for i, p := range problems {
		lines[i] = "  " + p.String()
	}
	return fmt.Errorf("%w: %d problem(s):\n%s", ErrInvalid, len(problems), strings.Join(lines, "\n"))
}

// IsInvalid reports whether err says the configuration is invalid (as
// opposed to, say, unreadable).
func IsInvalid(err error) bool { return errors.Is(err, ErrInvalid) }

// Load reads the YAML file at path, parses it strictly on top of [Default]
// and validates it. err is non-nil only when the file cannot be read. The
// returned Config is nil when the YAML cannot be decoded at all; otherwise it
// is usable when problems is empty. Load does blocking file I/O and may be
// called concurrently.
func Load(path string, opts ...Option) (*Config, []Problem, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("config: read %s: %w", path, err)
	}
	cfg, problems := Parse(data, opts...)
	return cfg, problems, nil
}

// Parse is Load for bytes already in memory: strict decoding on top of
// [Default], then [Config.Validate] with opts. Unknown keys, type errors and
// duplicate keys become Problems with their key path and line.
func Parse(data []byte, opts ...Option) (*Config, []Problem) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, []Problem{yamlProblem(err)}
	}
	lines := map[string]int{}
	byLine := map[int]string{}
	var problems []Problem
	if root.Kind != 0 {
		w := walker{lines: lines, byLine: byLine}
		w.walk(&root, reflect.TypeFor[Config](), "")
		problems = w.problems
	}
	unknownReported := len(problems) > 0

	cfg := Default()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, append(problems, yamlProblem(err))
		}
		for _, msg := range te.Errors {
			if unknownReported && strings.Contains(msg, "not found in type") {
				continue // the walker already reported it with its key path
			}
			problems = append(problems, typeProblem(msg, byLine))
		}
	}
	for _, p := range cfg.Validate(opts...) {
		if p.Line == 0 {
			p.Line = lineOf(p.Key, lines)
		}
		problems = append(problems, p)
	}
	return &cfg, problems
}

// lineOf finds the line of key or of its closest ancestor present in the file.
func lineOf(key string, lines map[string]int) int {
	for key != "" {
		if l, ok := lines[key]; ok {
			return l
		}
		i := strings.LastIndexAny(key, ".[")
		if i < 0 {
			return 0
		}
		key = key[:i]
	}
	return 0
}

// (?s): a message quotes the offending value, which may hold a newline.
var lineRE = regexp.MustCompile(`(?s)^(?:yaml: )?line (\d+): (.*)$`)

func yamlProblem(err error) Problem {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	p := Problem{Msg: msg, Fix: "correct the YAML syntax at the line shown"}
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		p.Msg = m[2]
	}
	return p
}

func typeProblem(msg string, byLine map[int]string) Problem {
	p := Problem{Msg: msg, Fix: "give the value the type the key expects (see config/doc.go)"}
	if m := lineRE.FindStringSubmatch(msg); m != nil {
		p.Line, _ = strconv.Atoi(m[1])
		p.Msg = m[2]
		p.Key = byLine[p.Line]
		// A line the walker could not place (inside a value of the wrong
		// shape, such as a mapping where a list belongs) belongs to the
		// closest key above it.
		for l := p.Line - 1; p.Key == "" && l > 0; l-- {
			p.Key = byLine[l]
		}
		// Nothing above it: a node anchored before the first key (the top
		// mapping itself, aliased further down) belongs to the first key.
		for l, last := p.Line+1, maxLine(byLine); p.Key == "" && l <= last; l++ {
			p.Key = byLine[l]
		}
	}
	switch {
	case strings.Contains(p.Msg, "time.Duration"):
		p.Fix = `write the duration as a Go duration string such as "30s", "10m" or "1h"`
	case strings.Contains(p.Msg, "already defined"):
		p.Fix = "remove the duplicate key"
	case strings.Contains(p.Msg, "size"):
		p.Fix = `write the size as bytes or with a unit, such as "64MiB" or "1GB"`
	}
	return p
}

func maxLine(byLine map[int]string) int {
	m := 0
	for l := range byLine {
		m = max(m, l)
	}
	return m
}

var (
	durationType = reflect.TypeFor[time.Duration]()
	sizeType     = reflect.TypeFor[Size]()
)

// walker checks the YAML tree against the struct types for unknown keys and
// records the line of every key path.
type walker struct {
	lines    map[string]int
	byLine   map[int]string
	problems []Problem
}

func (w *walker) record(path string, line int) {
	w.lines[path] = line
	if _, ok := w.byLine[line]; !ok {
		w.byLine[line] = path
	}
}

func (w *walker) walk(n *yaml.Node, t reflect.Type, path string) {
	if n.Kind == yaml.DocumentNode {
		for _, c := range n.Content {
			w.walk(c, t, path)
		}
		return
	}
	// Aliases are not followed: the decoder handles them and guards against
	// alias expansion bombs.
	if t == durationType || t == sizeType {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return // the decoder reports the type mismatch
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := joinKey(path, k.Value)
			w.record(p, k.Line)
			f, ok := fields[k.Value]
			if !ok {
				if k.Value == "<<" {
					// A merge key: the merged mappings' keys are this
					// mapping's keys (aliases are not followed, as above).
					merged := []*yaml.Node{v}
					if v.Kind == yaml.SequenceNode {
						merged = v.Content
					}
					for _, m := range merged {
						w.walk(m, t, path)
					}
					continue
				}
				w.problems = append(w.problems, Problem{
					Key:  p,
					Line: k.Line,
					Msg:  fmt.Sprintf("unknown key %q", k.Value),
					Fix:  fmt.Sprintf("remove it or use one of: %s", strings.Join(sortedKeys(fields), ", ")),
				})
				continue
			}
			w.walk(v, f, p)
			// A value on a line of its own (after its children claimed
			// theirs) belongs to this key: a type error there names it.
			if _, ok := w.byLine[v.Line]; !ok {
				w.byLine[v.Line] = p
			}
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, c := range n.Content {
			p := fmt.Sprintf("%s[%d]", path, i)
			w.record(p, c.Line)
			w.walk(c, t.Elem(), p)
		}
	}
}

func joinKey(path, k string) string {
	if k == "" {
		k = `""` // an empty YAML key still gets a visible name in problems
	}
	if path == "" {
		return k
	}
	return path + "." + k
}

func yamlFields(t reflect.Type) map[string]reflect.Type {
	m := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = f.Type
	}
	return m
}

func sortedKeys(m map[string]reflect.Type) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// UnmarshalYAML decodes one integrations[] entry on top of
// [DefaultIntegration].
func (in *Integration) UnmarshalYAML(n *yaml.Node) error {
	type plain Integration
	v := plain(DefaultIntegration())
	err := n.Decode(&v) // a *yaml.TypeError keeps the decoder going
	if !formatGiven(n) {
		v.Format = DefaultFormat(v.Type)
	}
	*in = Integration(v)
	return err
}
