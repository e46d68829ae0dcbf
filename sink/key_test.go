package sink_test

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"strings"
	"testing"
	"unicode"

	"hitship/sink"
)

func ExampleKeyTemplate_Key() {
	t, err := sink.ParseKeyTemplate(sink.DefaultKeyTemplate)
	if err != nil {
		fmt.Println(err)
		return
	}
	// An object holding the records at offsets 1042, 1043 and 1045.
	d := sink.DigestSeed
	for _, off := range []int64{1042, 1043, 1045} {
		d = sink.DigestOffset(d, off)
	}
	fmt.Println(t.Key(sink.KeyParams{Prefix: "hits/", WindowStart: 1687241400000, Partition: 3, FirstOffset: 1042, Digest: d, Format: sink.FormatJSON}))
	// The same window, partition and first offset with one record more: another key.
	fmt.Println(t.Key(sink.KeyParams{Prefix: "hits/", WindowStart: 1687241400000, Partition: 3, FirstOffset: 1042, Digest: sink.DigestOffset(d, 1046), Format: sink.FormatJSON}))
	fmt.Println(t.Key(sink.KeyParams{WindowStart: 1687241400000, Partition: 0, FirstOffset: 7, Digest: sink.DigestOffset(sink.DigestSeed, 7), Format: sink.FormatNDJSON, Compression: sink.CompressionGzip}))
	// Output:
	// hits/wallarm_hits_1687241400_3_1042_880c57e2200092bd.json
	// hits/wallarm_hits_1687241400_3_1042_e8aa9ad62d6ca177.json
	// wallarm_hits_1687241400_0_7_4bd7a317074c5b62.jsonl.gz
}

func ExampleParseKeyTemplate_hive() {
	t, err := sink.ParseKeyTemplate("{prefix}dt={yyyy}-{mm}-{dd}/hour={hh}/{integration}_{client_id}_{yyyy}{mm}{dd}T{hh}{MM}_{partition}_{first_offset}_{digest}.{ext}")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(t.Key(sink.KeyParams{
		Prefix: "wallarm/", WindowStart: 1687241400000, Partition: 2, FirstOffset: 99, Digest: 0xfeedface,
		Format: sink.FormatNDJSON, ClientID: 7, Integration: "acme-s3",
	}))
	// Output:
	// wallarm/dt=2023-06-20/hour=06/acme-s3_7_20230620T0610_2_99_00000000feedface.jsonl
}

func ExampleParseKeyTemplate_refused() {
	_, err := sink.ParseKeyTemplate("{prefix}wallarm_hits_{window_start}.{ext}")
	fmt.Println(sink.IsInvalid(err))
	fmt.Println(strings.Contains(err.Error(), "lacks {partition} and {first_offset}"))
	_, err = sink.ParseKeyTemplate("{prefix}wallarm_hits_{window_start}_{partition}_{first_offset}.{ext}")
	fmt.Println(strings.Contains(err.Error(), "lacks {digest}"))
	// Output:
	// true
	// true
	// true
}

func TestParseKeyTemplate(t *testing.T) {
	cases := []struct {
		name    string
		tmpl    string
		wantErr string // substring; "" = valid
	}{
		{name: "default", tmpl: sink.DefaultKeyTemplate},
		{name: "hive", tmpl: "{prefix}dt={yyyy}-{mm}-{dd}/hour={hh}/wallarm_hits_{window_start}_{partition}_{first_offset}_{digest}.{ext}"},
		{name: "all placeholders", tmpl: "{prefix}{topic}/{integration}/{client_id}/{yyyy}{mm}{dd}{hh}{MM}_{window_start}_{partition}_{first_offset}_{digest}.{ext}"},
		{name: "digest first", tmpl: "{prefix}{digest}/{partition}_{first_offset}.{ext}"},
		{name: "no digest", tmpl: "{prefix}wallarm_hits_{window_start}_{partition}_{first_offset}.{ext}", wantErr: "lacks {digest}"},
		{name: "no partition", tmpl: "{prefix}wallarm_hits_{window_start}_{first_offset}.{ext}", wantErr: "lacks {partition}"},
		{name: "no first offset", tmpl: "{prefix}wallarm_hits_{window_start}_{partition}.{ext}", wantErr: "lacks {first_offset}"},
		{name: "neither", tmpl: "{prefix}x.{ext}", wantErr: "lacks {partition} and {first_offset}"},
		{name: "unknown placeholder", tmpl: "{prefix}{partition}_{first_offset}_{date}", wantErr: "unknown placeholder {date}"},
		{name: "case matters", tmpl: "{prefix}{Partition}_{first_offset}", wantErr: "unknown placeholder {Partition}"},
		{name: "unclosed brace", tmpl: "{prefix}{partition}_{first_offset", wantErr: "unbalanced '{'"},
		{name: "nested brace", tmpl: "{prefix}{part{ition}}_{first_offset}", wantErr: "unbalanced '{'"},
		{name: "stray close", tmpl: "{prefix}{partition}}_{first_offset}", wantErr: "unbalanced '}'"},
		{name: "empty placeholder", tmpl: "{prefix}{}{partition}{first_offset}", wantErr: "unknown placeholder {}"},
		{name: "no prefix", tmpl: "wallarm_hits_{partition}_{first_offset}", wantErr: "must start with {prefix}"},
		{name: "prefix not first", tmpl: "x/{prefix}{partition}_{first_offset}", wantErr: "must start with {prefix}"},
		{name: "empty", tmpl: "", wantErr: "must start with {prefix}"},
		{name: "dotdot segment", tmpl: "{prefix}../{partition}_{first_offset}_{digest}", wantErr: `".." path segments`},
		{name: "dot segment", tmpl: "{prefix}a/./{partition}_{first_offset}_{digest}", wantErr: `"." path segments`},
		{name: "control character", tmpl: "{prefix}a\n{partition}_{first_offset}", wantErr: "control character"},
		{name: "invalid utf8", tmpl: "{prefix}\xff{partition}_{first_offset}", wantErr: "invalid UTF-8"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kt, err := sink.ParseKeyTemplate(tc.tmpl)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if kt.String() != tc.tmpl {
					t.Errorf("String() = %q", kt.String())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !sink.IsInvalid(err) {
				t.Fatalf("error = %v, want IsInvalid containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestKeyTemplateKey(t *testing.T) {
	all := "{prefix}{topic}/{integration}/c{client_id}/{yyyy}-{mm}-{dd}T{hh}:{MM}/{window_start}_{partition}_{first_offset}_{digest}.{ext}"
	base := sink.KeyParams{Prefix: "p/", WindowStart: 1687241470123, Partition: 5, FirstOffset: 77, Digest: 0x0123456789abcdef, ClientID: 7, Integration: "i", Topic: "hits"}
	cases := []struct {
		name   string
		tmpl   string
		modify func(p *sink.KeyParams)
		want   string
	}{
		{name: "all placeholders", tmpl: all, want: "p/hits/i/c7/2023-06-20T06:11/1687241470_5_77_0123456789abcdef.json"},
		{name: "digest zero padded", tmpl: sink.DefaultKeyTemplate, modify: func(p *sink.KeyParams) { p.Digest = 0xa }, want: "p/wallarm_hits_1687241470_5_77_000000000000000a.json"},
		{name: "digest all ones", tmpl: sink.DefaultKeyTemplate, modify: func(p *sink.KeyParams) { p.Digest = ^uint64(0) }, want: "p/wallarm_hits_1687241470_5_77_ffffffffffffffff.json"},
		{name: "gzip ndjson", tmpl: sink.DefaultKeyTemplate, modify: func(p *sink.KeyParams) { p.Format, p.Compression = sink.FormatNDJSON, sink.CompressionGzip },
			want: "p/wallarm_hits_1687241470_5_77_0123456789abcdef.jsonl.gz"},
		{name: "gzip json", tmpl: sink.DefaultKeyTemplate, modify: func(p *sink.KeyParams) { p.Compression = sink.CompressionGzip },
			want: "p/wallarm_hits_1687241470_5_77_0123456789abcdef.json.gz"},
		{name: "epoch, padded parts", tmpl: all, modify: func(p *sink.KeyParams) { p.WindowStart = 0 }, want: "p/hits/i/c7/1970-01-01T00:00/0_5_77_0123456789abcdef.json"},
		{name: "negative window floors", tmpl: sink.DefaultKeyTemplate, modify: func(p *sink.KeyParams) { p.WindowStart = -1 }, want: "p/wallarm_hits_-1_5_77_0123456789abcdef.json"},
		{name: "leading slash prefix dropped", tmpl: sink.DefaultKeyTemplate, modify: func(p *sink.KeyParams) { p.Prefix = "//abs/" }, want: "abs/wallarm_hits_1687241470_5_77_0123456789abcdef.json"},
		{name: "dotdot prefix neutralised", tmpl: sink.DefaultKeyTemplate, modify: func(p *sink.KeyParams) { p.Prefix = "../../etc/" }, want: "__/__/etc/wallarm_hits_1687241470_5_77_0123456789abcdef.json"},
		{name: "slash in integration", tmpl: all, modify: func(p *sink.KeyParams) { p.Integration = "../x" }, want: "p/hits/.._x/c7/2023-06-20T06:11/1687241470_5_77_0123456789abcdef.json"},
		{name: "dotdot integration", tmpl: all, modify: func(p *sink.KeyParams) { p.Integration = ".." }, want: "p/hits/__/c7/2023-06-20T06:11/1687241470_5_77_0123456789abcdef.json"},
		{name: "control in topic", tmpl: all, modify: func(p *sink.KeyParams) { p.Topic = "a\r\nb" }, want: "p/a__b/i/c7/2023-06-20T06:11/1687241470_5_77_0123456789abcdef.json"},
		{name: "negative client", tmpl: all, modify: func(p *sink.KeyParams) { p.ClientID = -3 }, want: "p/hits/i/c-3/2023-06-20T06:11/1687241470_5_77_0123456789abcdef.json"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			kt, err := sink.ParseKeyTemplate(tc.tmpl)
			if err != nil {
				t.Fatal(err)
			}
			p := base
			if tc.modify != nil {
				tc.modify(&p)
			}
			if got := kt.Key(p); got != tc.want {
				t.Errorf("Key = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestValidatePrefix(t *testing.T) {
	cases := []struct {
		name   string
		prefix string
		ok     bool
	}{
		{name: "empty", prefix: "", ok: true},
		{name: "folder", prefix: "wallarm/hits/", ok: true},
		{name: "no slash", prefix: "hits-", ok: true},
		{name: "dots inside names", prefix: "a..b/.c/", ok: true},
		{name: "leading slash", prefix: "/hits/"},
		{name: "dotdot", prefix: "hits/../"},
		{name: "dot", prefix: "./hits/"},
		{name: "control", prefix: "hits\x00/"},
		{name: "invalid utf8", prefix: "\xffhits/"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := sink.ValidatePrefix(tc.prefix)
			if (err == nil) != tc.ok {
				t.Fatalf("ValidatePrefix(%q) = %v, want ok=%v", tc.prefix, err, tc.ok)
			}
			if err != nil && !sink.IsInvalid(err) {
				t.Errorf("error %v does not satisfy IsInvalid", err)
			}
		})
	}
}

// FuzzKeyTemplate checks that the parser never panics and that every key a
// valid template renders stays under the prefix: no leading '/', no "." or
// ".." segment, no control characters, and the (valid) prefix kept as is.
func FuzzKeyTemplate(f *testing.F) {
	f.Add(sink.DefaultKeyTemplate, "hits/", "integ", "topic", int64(1687241470000))
	f.Add("{prefix}dt={yyyy}-{mm}-{dd}/hour={hh}/{partition}_{first_offset}_{digest}.{ext}", "", "..", "../..", int64(-1))
	f.Add("{prefix}{integration}{topic}/{partition}{first_offset}{digest}", "a/", ".", ".", int64(0))
	f.Add("{prefix}{integration}{topic}/{partition}-{first_offset}-{digest}", "a/", ".", ".", int64(0))
	f.Add("{prefix}.{topic}/{partition}_{first_offset}_{digest}", ".", "x", ".", int64(0))
	f.Add("{prefix}{{partition}}", "p", "i", "t", int64(1))
	f.Fuzz(func(t *testing.T, tmpl, prefix, integration, topic string, ws int64) {
		kt, err := sink.ParseKeyTemplate(tmpl)
		if err != nil {
			if !sink.IsInvalid(err) {
				t.Fatalf("error %v does not satisfy IsInvalid", err)
			}
			return
		}
		if !strings.HasPrefix(tmpl, "{prefix}") || !strings.Contains(tmpl, "{partition}") || !strings.Contains(tmpl, "{first_offset}") || !strings.Contains(tmpl, "{digest}") {
			t.Fatalf("accepted %q", tmpl)
		}
		key := kt.Key(sink.KeyParams{Prefix: prefix, WindowStart: ws, Partition: 1, FirstOffset: 2, Digest: uint64(ws), Integration: integration, Topic: topic})
		if strings.HasPrefix(key, "/") {
			t.Fatalf("key %q starts with '/'", key)
		}
		for _, seg := range strings.Split(key, "/") {
			if seg == "." || seg == ".." {
				t.Fatalf("key %q has a %q segment", key, seg)
			}
		}
		for _, r := range key {
			if unicode.IsControl(r) || r == unicode.ReplacementChar && !strings.ContainsRune(tmpl+prefix+integration+topic, r) {
				t.Fatalf("key %q has control or invalid characters", key)
			}
		}
		if sink.ValidatePrefix(prefix) == nil && !strings.HasSuffix(prefix, ".") && !strings.HasPrefix(key, prefix) {
			t.Fatalf("key %q does not start with prefix %q", key, prefix)
		}
	})
}

// TestDigestOffsetIsFNV1a: the {digest} of an object is FNV-1a 64 over its
// records' offsets, 8 bytes little endian each, in order (what an operator
// can recompute from the object's records), and order and count matter.
func TestDigestOffsetIsFNV1a(t *testing.T) {
	tests := []struct {
		name    string
		offsets []int64
	}{
		{"no record", nil},
		{"one", []int64{0}},
		{"several", []int64{1042, 1043, 1045}},
		{"large offsets", []int64{1 << 40, 1<<62 + 7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := fnv.New64a()
			d := sink.DigestSeed
			for _, o := range tt.offsets {
				var b [8]byte
				binary.LittleEndian.PutUint64(b[:], uint64(o))
				h.Write(b[:])
				d = sink.DigestOffset(d, o)
			}
			if d != h.Sum64() {
				t.Fatalf("digest %x, want FNV-1a %x", d, h.Sum64())
			}
		})
	}
	a := sink.DigestOffset(sink.DigestOffset(sink.DigestSeed, 1), 2)
	b := sink.DigestOffset(sink.DigestOffset(sink.DigestSeed, 2), 1)
	c := sink.DigestOffset(a, 3)
	if a == b || a == c {
		t.Fatalf("digests of different record lists collide: %x %x %x", a, b, c)
	}
	if allocs := testing.AllocsPerRun(100, func() { a = sink.DigestOffset(a, 9) }); allocs != 0 {
		t.Fatalf("DigestOffset allocates %.1f times", allocs)
	}
}
