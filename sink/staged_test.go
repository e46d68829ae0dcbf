package sink_test

import (
	"io"
	"strings"
	"testing"

	"hitship/config"
	"hitship/sink"
)

// The config package names the defaults without importing sink.
func TestDefaultTemplatesMatchConfig(t *testing.T) {
	if config.DefaultKeyTemplate != sink.DefaultKeyTemplate || config.DefaultStagedKeyTemplate != sink.DefaultStagedKeyTemplate {
		t.Errorf("config's default templates %q, %q; sink's %q, %q", config.DefaultKeyTemplate, config.DefaultStagedKeyTemplate,
			sink.DefaultKeyTemplate, sink.DefaultStagedKeyTemplate)
	}
}

func TestParseStagedKeyTemplate(t *testing.T) {
	for _, src := range []string{
		sink.DefaultStagedKeyTemplate,
		"{prefix}hitlogs-{window_start}{late}.{ext}",
		"{prefix}dt={yyyy}-{mm}-{dd}/hour={hh}/wallarm_hits_{window_start}{late}.{ext}",
		"{prefix}{integration}/{window_start}/part{late}_x.{ext}",
	} {
		if _, err := sink.ParseStagedKeyTemplate(src); err != nil {
			t.Errorf("%q refused: %v", src, err)
		}
	}
	for src, want := range map[string]string{
		"{prefix}wallarm_hits_{window_start}.{ext}":                               "lacks {late}",
		"{prefix}wallarm_hits_{late}.{ext}":                                       "lacks {window_start}",
		"{prefix}wallarm_hits_{window_start}_{partition}{late}.{ext}":             "{partition} names per-partition",
		"{prefix}wallarm_hits_{window_start}_{first_offset}_{digest}{late}.{ext}": "{first_offset} names per-partition",
		"{prefix}wallarm_hits_{window_start}{late}{client_id}.{ext}":              "must be followed by a character that is not a digit",
		"{prefix}wallarm_hits_{late}_{window_start}":                              "{window_start} must be followed",
		"{prefix}{late}{window_start}.{ext}":                                      "{late} must be followed",
		"wallarm_hits_{window_start}{late}.{ext}":                                 "must start with {prefix}",
	} {
		_, err := sink.ParseStagedKeyTemplate(src)
		if err == nil || !sink.IsInvalid(err) || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: got %v, want an invalid-template error saying %q", src, err, want)
		}
	}
	// {late} belongs to staged delivery only.
	if _, err := sink.ParseKeyTemplate("{prefix}x_{window_start}_{partition}_{first_offset}_{digest}{late}.{ext}"); err == nil || !strings.Contains(err.Error(), "{late}") {
		t.Errorf("per-partition template with {late}: %v", err)
	}
}

func TestStagedKeysNeverMeet(t *testing.T) {
	kt, err := sink.ParseStagedKeyTemplate(sink.DefaultStagedKeyTemplate)
	if err != nil {
		t.Fatal(err)
	}
	p := sink.KeyParams{Prefix: "hits/", WindowStart: 1687241400000, Format: sink.FormatNDJSON}
	if got := kt.Key(p); got != "hits/wallarm_hits_1687241400.jsonl" {
		t.Errorf("main key %q", got)
	}
	p.Late = 2
	p.Compression = sink.CompressionGzip
	if got := kt.Key(p); got != "hits/wallarm_hits_1687241400_late_2.jsonl.gz" {
		t.Errorf("late key %q", got)
	}
	seen := map[string]bool{}
	for w := int64(0); w < 40; w++ {
		for late := range 12 {
			k := kt.Key(sink.KeyParams{WindowStart: w * 1000, Late: late, Format: sink.FormatJSON})
			if seen[k] {
				t.Fatalf("key %q rendered twice", k)
			}
			seen[k] = true
		}
	}
}

func TestAppendTagged(t *testing.T) {
	s := newSpool(t, sink.SpoolConfig{})
	b := s.NewBuffer(sink.FormatNDJSON)
	if err := b.AppendTagged([]byte("17"), []byte(`{"a":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := b.AppendTagged([]byte("18"), []byte(`{"a":2}`)); err != nil {
		t.Fatal(err)
	}
	for _, bad := range [][2]string{{"1 2", `{}`}, {"", `{}`}, {"3", ""}, {"3", "{\n}"}} {
		if err := b.AppendTagged([]byte(bad[0]), []byte(bad[1])); !sink.IsInvalid(err) {
			t.Errorf("AppendTagged(%q, %q) = %v, want invalid", bad[0], bad[1], err)
		}
	}
	o, err := b.Finish(sink.CompressionNone)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Release()
	r, _ := o.Open()
	data, _ := io.ReadAll(r)
	_ = r.Close()
	if string(data) != "17 {\"a\":1}\n18 {\"a\":2}\n" || o.Records != 2 {
		t.Errorf("segment body %q, %d records", data, o.Records)
	}
	j := s.NewBuffer(sink.FormatJSON)
	defer j.Discard()
	if err := j.AppendTagged([]byte("1"), []byte(`{}`)); !sink.IsInvalid(err) {
		t.Errorf("tagged record in a JSON-array buffer: %v", err)
	}
}
