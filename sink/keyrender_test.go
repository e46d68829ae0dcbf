package sink_test

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"hitship/config"
	"hitship/sink"
)

// configAcceptsPrefix reports whether the config package accepts prefix as an
// integration's prefix: the check every prefix passes before it reaches Key.
func configAcceptsPrefix(prefix string) bool {
	c := config.Default()
	in := config.DefaultIntegration()
	in.Name, in.ClientID, in.Region, in.Bucket, in.Prefix = "fuzz", 1, "us-east-1", "fuzz-bucket", prefix
	in.Credentials.AccessKeyID, in.Credentials.SecretAccessKeyEnv = "FUZZACCESSKEY0001", "FUZZ_SECRET"
	c.Integrations = []config.Integration{in}
	for _, p := range c.Validate(config.WithLookupEnv(func(string) (string, bool) { return "fuzz-secret", true })) {
		if p.Key == "integrations[0].prefix" {
			return false
		}
	}
	return true
}

// FuzzKeyRender checks the guarantee of KeyTemplate.Key (sink/key.go, DESIGN
// §3) over every input a key is made of: for any template ParseKeyTemplate
// accepts and any prefix, client, partition, offsets, window start,
// integration and topic,
//
//   - the key is valid UTF-8 without control characters, does not start with
//     '/' and has no "." or ".." path segment (so no path escape, whatever
//     tool maps keys to paths);
//   - a prefix the config accepts is one sink.ValidatePrefix accepts, and the
//     key starts with it byte for byte: keys never leave the integration's
//     prefix;
//   - rendering is a function of its inputs (replays write the same key);
//   - two objects that differ only in partition, first offset or digest get
//     different keys (the reason the template must contain all three).
//
// "//" (an empty segment) is not refused: S3 keys are flat strings and the
// prefix guarantee is a byte-prefix one.
func FuzzKeyRender(f *testing.F) {
	f.Add(sink.DefaultKeyTemplate, "hits/", int64(7), 3, int64(42), int64(1687241400000), "acme-json", "hits", uint8(0), false, 4, int64(43), uint64(1), uint64(2))
	f.Add("{prefix}dt={yyyy}-{mm}-{dd}/hour={hh}/{MM}/wallarm_hits_{window_start}_{partition}_{first_offset}_{digest}.{ext}", "a/b/", int64(-1), 0, int64(0), int64(-1), "..", "../..", uint8(1), true, 1, int64(1), uint64(0), uint64(0))
	f.Add("{prefix}{client_id}/{integration}/{topic}/{partition}_{first_offset}_{digest}.{ext}", "../", int64(1), 1, int64(2), int64(0), "a/../b", "t\x00/..", uint8(1), false, 2, int64(2), uint64(3), uint64(4))
	f.Add("{prefix}{integration}{topic}/{partition}-{first_offset}-{digest}", "x/", int64(9), 11, int64(2), int64(0), ".", ".", uint8(0), false, 1, int64(12), uint64(5), uint64(5))
	f.Add("{prefix}/{partition}_{first_offset}_{digest}", "hits\u0085/", int64(0), 0, int64(0), int64(0), "\xff", "\u2028", uint8(0), false, 0, int64(1), uint64(0), uint64(1))
	f.Add("{prefix}.{topic}/{partition}_{first_offset}_{digest}", ".", int64(0), 0, int64(0), int64(0), "x", ".", uint8(0), false, 0, int64(1), uint64(0), uint64(0))
	f.Add("{prefix}{partition}_{first_offset}_{digest}", "a/./b/", int64(0), 0, int64(5), int64(0), "", "", uint8(0), false, 1, int64(5), uint64(0), uint64(0))
	f.Add("{prefix}{partition}{first_offset}_{digest}.{ext}", "", int64(0), 1, int64(23), int64(0), "", "", uint8(0), false, 12, int64(3), uint64(0), uint64(0))
	f.Add("{prefix}{partition}_{first_offset}{digest}.{ext}", "", int64(0), 1, int64(1), int64(0), "", "", uint8(0), false, 1, int64(12), uint64(0x3456789abcdef0), uint64(0x23456789abcdef))
	f.Add("{prefix}{digest}{partition}_{first_offset}.{ext}", "", int64(0), 1, int64(1), int64(0), "", "", uint8(0), false, 11, int64(1), uint64(0x1234567890123451), uint64(0x1123456789012345))
	f.Fuzz(func(t *testing.T, tmpl, prefix string, client int64, partition int, offset, ws int64,
		integration, topic string, format uint8, gz bool, partition2 int, offset2 int64, digest, digest2 uint64) {
		kt, err := sink.ParseKeyTemplate(tmpl)
		if err != nil {
			if !sink.IsInvalid(err) {
				t.Fatalf("ParseKeyTemplate(%q) error %v does not satisfy IsInvalid", tmpl, err)
			}
			return
		}
		// Partitions and offsets as Kafka has them: non-negative.
		partition, partition2 = absInt(partition), absInt(partition2)
		offset, offset2 = absInt64(offset), absInt64(offset2)
		p := sink.KeyParams{Prefix: prefix, WindowStart: ws, Partition: partition, FirstOffset: offset, Digest: digest,
			Format: sink.Format(format % 2), ClientID: client, Integration: integration, Topic: topic}
		if gz {
			p.Compression = sink.CompressionGzip
		}
		key := kt.Key(p)
		if !utf8.ValidString(key) {
			t.Fatalf("key %q is not valid UTF-8", key)
		}
		if strings.ContainsFunc(key, unicode.IsControl) {
			t.Fatalf("key %q has a control character", key)
		}
		if strings.HasPrefix(key, "/") {
			t.Fatalf("key %q starts with '/'", key)
		}
		for _, seg := range strings.Split(key, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("key %q (template %q, prefix %q) has a %q segment", key, tmpl, prefix, seg)
			}
		}
		if configAcceptsPrefix(prefix) {
			if err := sink.ValidatePrefix(prefix); err != nil {
				t.Fatalf("config accepts prefix %q, sink refuses it: %v", prefix, err)
			}
			if !strings.HasPrefix(key, prefix) {
				t.Fatalf("key %q does not start with the prefix %q (template %q)", key, prefix, tmpl)
			}
		}
		if again := kt.Key(p); again != key {
			t.Fatalf("Key is not a function of its inputs: %q then %q", key, again)
		}
		q := p
		q.Partition, q.FirstOffset, q.Digest = partition2, offset2, digest2
		if (q.Partition != p.Partition || q.FirstOffset != p.FirstOffset || q.Digest != p.Digest) && kt.Key(q) == key {
			t.Fatalf("template %q: partition %d offset %d digest %x and partition %d offset %d digest %x share the key %q",
				tmpl, p.Partition, p.FirstOffset, p.Digest, q.Partition, q.FirstOffset, q.Digest, key)
		}
	})
}

func absInt(v int) int {
	if v < 0 {
		return -(v + 1) // no overflow at math.MinInt
	}
	return v
}

func absInt64(v int64) int64 {
	if v < 0 {
		return -(v + 1)
	}
	return v
}

// TestKeyTemplateSeparatesOffsets: the fuzz finding kept as a test. A template
// that glues {partition} or {first_offset} to another changing number is
// refused at start-up; partition 1 offset 23 and partition 12 offset 3 would
// otherwise share a key and one object would overwrite the other.
func TestKeyTemplateSeparatesOffsets(t *testing.T) {
	tests := []struct {
		name string
		tmpl string
		ok   bool
	}{
		{name: "default", tmpl: sink.DefaultKeyTemplate, ok: true},
		{name: "glued partition and offset", tmpl: "{prefix}{partition}{first_offset}_{digest}.{ext}"},
		{name: "glued offset and partition", tmpl: "{prefix}x{first_offset}{partition}_{digest}.{ext}"},
		{name: "digits only between them", tmpl: "{prefix}{partition}00{first_offset}_{digest}.{ext}"},
		{name: "glued window start", tmpl: "{prefix}{window_start}{partition}_{first_offset}_{digest}.{ext}"},
		{name: "glued minute", tmpl: "{prefix}{first_offset}{MM}_{partition}_{digest}.{ext}"},
		{name: "glued offset and digest", tmpl: "{prefix}{partition}_{first_offset}{digest}.{ext}"},
		{name: "glued digest and partition", tmpl: "{prefix}{digest}{partition}_{first_offset}.{ext}"},
		{name: "glued digest and window start", tmpl: "{prefix}{window_start}{digest}/{partition}_{first_offset}.{ext}"},
		{name: "digest after a hex-looking letter", tmpl: "{prefix}{partition}_{first_offset}a{digest}.{ext}", ok: true},
		{name: "digit then a separator", tmpl: "{prefix}{partition}1_{first_offset}_{digest}.{ext}", ok: true},
		{name: "separated by ext", tmpl: "{prefix}{partition}.{ext}{first_offset}/{digest}", ok: true},
		{name: "hive date parts may touch each other", tmpl: "{prefix}dt={yyyy}{mm}{dd}/{hh}{MM}_{partition}_{first_offset}_{digest}.{ext}", ok: true},
		{name: "fixed placeholders do not separate", tmpl: "{prefix}{partition}{client_id}{first_offset}_{digest}.{ext}"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := sink.ParseKeyTemplate(tc.tmpl)
			if (err == nil) != tc.ok {
				t.Fatalf("ParseKeyTemplate(%q) = %v, want ok=%v", tc.tmpl, err, tc.ok)
			}
			if err != nil && !sink.IsInvalid(err) {
				t.Errorf("error %v does not satisfy IsInvalid", err)
			}
		})
	}
}
