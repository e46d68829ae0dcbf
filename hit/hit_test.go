package hit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

const testMaxDepth = 512

func sampleLines(t testing.TB) [][]byte {
	t.Helper()
	b, err := os.ReadFile("testdata/sample_hits.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) != 2 {
		t.Fatalf("want 2 sample hits, got %d", len(lines))
	}
	return lines
}

func TestScan(t *testing.T) {
	lines := sampleLines(t)
	deep := strings.Repeat(`{"a":`, 100000) + "1" + strings.Repeat("}", 100000)
	deepArr := `{"a":` + strings.Repeat("[", 100000) + strings.Repeat("]", 100000) + "}"
	tests := []struct {
		name     string
		in       string
		maxDepth int // 0 means testMaxDepth
		want     Info
		reason   Reason // "" means valid
	}{
		{name: "sample hit 1", in: string(lines[0]), want: Info{TimeMs: 1687241470000, HasTime: true, Compact: true}},
		{name: "sample hit 2", in: string(lines[1]), want: Info{TimeMs: 1687241475000, HasTime: true, Compact: true}},
		{name: "empty object", in: `{}`, want: Info{Compact: true}},
		{name: "time number", in: `{"time":1687241470}`, want: Info{TimeMs: 1687241470000, HasTime: true, Compact: true}},
		{name: "time string", in: `{"time":"1687241470"}`, want: Info{TimeMs: 1687241470000, HasTime: true, Compact: true}},
		{name: "time fraction number", in: `{"time":1687241470.5}`, want: Info{TimeMs: 1687241470500, HasTime: true, Compact: true}},
		{name: "time fraction string truncated to ms", in: `{"time":"1687241470.123999"}`, want: Info{TimeMs: 1687241470123, HasTime: true, Compact: true}},
		{name: "time fraction two digits", in: `{"time":"1.25"}`, want: Info{TimeMs: 1250, HasTime: true, Compact: true}},
		{name: "time zero", in: `{"time":0}`, want: Info{TimeMs: 0, HasTime: true, Compact: true}},
		{name: "time string leading zeros", in: `{"time":"0001687241470"}`, want: Info{TimeMs: 1687241470000, HasTime: true, Compact: true}},
		{name: "time escaped digits", in: `{"time":"\u0031\u0030"}`, want: Info{TimeMs: 10000, HasTime: true, Compact: true}},
		{name: "time max ms", in: `{"time":"9223372036854775.807"}`, want: Info{TimeMs: math.MaxInt64, HasTime: true, Compact: true}},
		{name: "time just over max ms", in: `{"time":"9223372036854775.808"}`, want: Info{TimeGarbage: true, Compact: true}},
		{name: "time out of range", in: `{"time":99999999999999999999}`, want: Info{TimeGarbage: true, Compact: true}},
		{name: "time object", in: `{"time":{"s":1}}`, want: Info{TimeGarbage: true, Compact: true}},
		{name: "time array", in: `{"time":[1]}`, want: Info{TimeGarbage: true, Compact: true}},
		{name: "time null", in: `{"time":null}`, want: Info{TimeGarbage: true, Compact: true}},
		{name: "time bool", in: `{"time":true}`, want: Info{TimeGarbage: true, Compact: true}},
		{name: "time garbage string", in: `{"time":"yesterday"}`, want: Info{TimeGarbage: true, Compact: true}},
		{name: "time empty string", in: `{"time":""}`, want: Info{TimeGarbage: true, Compact: true}},
		{name: "time string with space", in: `{"time":" 1687241470"}`, want: Info{TimeGarbage: true, Compact: true}},
		{name: "time string trailing dot", in: `{"time":"1687241470."}`, want: Info{TimeGarbage: true, Compact: true}},
		{name: "time negative number", in: `{"time":-1687241470}`, want: Info{TimeGarbage: true, Compact: true}},
		{name: "time negative string", in: `{"time":"-5"}`, want: Info{TimeGarbage: true, Compact: true}},
		{name: "time exponent", in: `{"time":1.68724147e9}`, want: Info{TimeGarbage: true, Compact: true}},
		{name: "time non-ascii escape", in: `{"time":"1\u00e9"}`, want: Info{TimeGarbage: true, Compact: true}},
		{name: "nested time ignored", in: `{"tags":{"time":5,"client_id":3}}`, want: Info{Compact: true}},
		{name: "time in array ignored", in: `{"a":["time",1]}`, want: Info{Compact: true}},
		{name: "client_id number", in: `{"client_id":7}`, want: Info{ClientID: 7, HasClientID: true, Compact: true}},
		{name: "client_id string", in: `{"client_id":"42"}`, want: Info{ClientID: 42, HasClientID: true, Compact: true}},
		{name: "client_id zero", in: `{"client_id":0}`, want: Info{Compact: true}},
		{name: "client_id negative", in: `{"client_id":-7}`, want: Info{Compact: true}},
		{name: "client_id fraction", in: `{"client_id":7.5}`, want: Info{Compact: true}},
		{name: "client_id overflow", in: `{"client_id":9223372036854775808}`, want: Info{Compact: true}},
		{name: "client_id max", in: `{"client_id":9223372036854775807}`, want: Info{ClientID: math.MaxInt64, HasClientID: true, Compact: true}},
		{name: "client_id object", in: `{"client_id":{}}`, want: Info{Compact: true}},
		{name: "both fields", in: `{"client_id":7,"x":[{}],"time":"10"}`, want: Info{TimeMs: 10000, HasTime: true, ClientID: 7, HasClientID: true, Compact: true}},
		{name: "duplicate time last wins", in: `{"time":1,"time":2}`, want: Info{TimeMs: 2000, HasTime: true, Compact: true}},
		{name: "duplicate time last garbage wins", in: `{"time":1,"time":"x"}`, want: Info{TimeGarbage: true, Compact: true}},
		{name: "duplicate time last good wins", in: `{"time":{},"time":3}`, want: Info{TimeMs: 3000, HasTime: true, Compact: true}},
		{name: "duplicate client_id last wins", in: `{"client_id":1,"client_id":"x"}`, want: Info{Compact: true}},
		{name: "escaped key time", in: `{"\u0074ime":"5"}`, want: Info{TimeMs: 5000, HasTime: true, Compact: true}},
		{name: "escaped key client_id", in: `{"client\u005fid":9}`, want: Info{ClientID: 9, HasClientID: true, Compact: true}},
		{name: "key prefix of time", in: `{"tim":5,"times":6,"Time":7}`, want: Info{Compact: true}},
		{name: "leading space", in: ` {}`, want: Info{Compact: false}},
		{name: "trailing newline", in: "{}\n", want: Info{Compact: false}},
		{name: "space after colon", in: `{"time": 5}`, want: Info{TimeMs: 5000, HasTime: true}},
		{name: "tabs and CRLF", in: "{\r\n\t\"a\" :\t[ 1 , 2 ]\r\n}", want: Info{}},
		{name: "space inside string is compact", in: `{"a":"x y\tz"}`, want: Info{Compact: true}},
		{name: "escaped quote inside string", in: `{"a":"x\" y"}`, want: Info{Compact: true}},
		{name: "unicode and surrogate pair escape", in: `{"a":"héllo \ud83d\ude00 😀"}`, want: Info{Compact: true}},
		{name: "lone surrogate escape accepted", in: `{"a":"\ud800"}`, want: Info{Compact: true}},
		{name: "all literal kinds", in: `{"a":true,"b":false,"c":null,"d":-0.5e+10,"e":[],"f":{}}`, want: Info{Compact: true}},
		{name: "deep nesting within limit", in: strings.Repeat(`{"a":`, 99) + "1" + strings.Repeat("}", 99), maxDepth: 99, want: Info{Compact: true}},
		{name: "deep nesting beyond inline stack", in: strings.Repeat(`[`, 5000), maxDepth: 10000, reason: ReasonNotJSON},
		{name: "deep nesting 100000 objects", in: deep, reason: ReasonTooDeep},
		{name: "deep nesting 100000 arrays", in: deepArr, reason: ReasonTooDeep},
		{name: "deep nesting 100000 allowed", in: deep, maxDepth: 100000, want: Info{Compact: true}},
		{name: "deep nesting over limit by one", in: strings.Repeat(`{"a":`, 100) + "1" + strings.Repeat("}", 100), maxDepth: 99, reason: ReasonTooDeep},
		{name: "max depth negative", in: `{}`, maxDepth: -1, reason: ReasonTooDeep},
		{name: "empty input", in: ``, reason: ReasonEmpty},
		{name: "only whitespace", in: " \n\t", reason: ReasonEmpty},
		{name: "not json", in: `hello`, reason: ReasonNotJSON},
		{name: "json array", in: `[{"time":1}]`, reason: ReasonNotObject},
		{name: "json string", in: `"abc"`, reason: ReasonNotObject},
		{name: "json number", in: `12`, reason: ReasonNotObject},
		{name: "json null", in: `null`, reason: ReasonNotObject},
		{name: "truncated", in: `{"time":"168724`, reason: ReasonNotJSON},
		{name: "truncated after comma", in: `{"a":1,`, reason: ReasonNotJSON},
		{name: "truncated sample", in: string(lines[0][:len(lines[0])-1]), reason: ReasonNotJSON},
		{name: "trailing comma", in: `{"a":1,}`, reason: ReasonNotJSON},
		{name: "sample with trailing comma", in: string(lines[0]) + ",", reason: ReasonTrailingData},
		{name: "two objects", in: `{}{}`, reason: ReasonTrailingData},
		{name: "trailing garbage after space", in: `{} x`, reason: ReasonTrailingData},
		{name: "invalid utf8 in string", in: "{\"a\":\"\xff\"}", reason: ReasonInvalidUTF8},
		{name: "truncated utf8 in string", in: "{\"a\":\"\xc3\"}", reason: ReasonInvalidUTF8},
		{name: "utf8 encoded surrogate", in: "{\"a\":\"\xed\xa0\x80\"}", reason: ReasonInvalidUTF8},
		{name: "invalid utf8 in key", in: "{\"\xc0\xaf\":1}", reason: ReasonInvalidUTF8},
		{name: "non-ascii outside string", in: "{\"a\":1}\xff", reason: ReasonTrailingData},
		{name: "nul byte in string", in: "{\"a\":\"x\x00y\"}", reason: ReasonNotJSON},
		{name: "nul byte outside string", in: "{\"a\":1\x00}", reason: ReasonNotJSON},
		{name: "nul byte after object", in: "{}\x00", reason: ReasonTrailingData},
		{name: "bad escape", in: `{"a":"\x"}`, reason: ReasonNotJSON},
		{name: "short unicode escape", in: `{"a":"\u12"}`, reason: ReasonNotJSON},
		{name: "single quotes", in: `{'a':1}`, reason: ReasonNotJSON},
		{name: "unquoted key", in: `{a:1}`, reason: ReasonNotJSON},
		{name: "missing colon", in: `{"a" 1}`, reason: ReasonNotJSON},
		{name: "leading zero number", in: `{"a":01}`, reason: ReasonNotJSON},
		{name: "plus number", in: `{"a":+1}`, reason: ReasonNotJSON},
		{name: "bare minus", in: `{"a":-}`, reason: ReasonNotJSON},
		{name: "dot without digits", in: `{"a":1.}`, reason: ReasonNotJSON},
		{name: "exponent without digits", in: `{"a":1e}`, reason: ReasonNotJSON},
		{name: "bad literal", in: `{"a":tru}`, reason: ReasonNotJSON},
		{name: "mismatched brackets", in: `{"a":[1}`, reason: ReasonNotJSON},
		{name: "mismatched close", in: `{"a":{]}`, reason: ReasonNotJSON},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			md := tt.maxDepth
			if md == 0 {
				md = testMaxDepth
			}
			got, err := Scan([]byte(tt.in), md)
			if tt.reason != "" {
				r, ok := ReasonOf(err)
				if !ok || r != tt.reason {
					t.Fatalf("Scan error = %v, want reason %q", err, tt.reason)
				}
				if !IsBadRecord(fmt.Errorf("wrapped: %w", err)) {
					t.Fatalf("IsBadRecord(wrapped %v) = false", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Scan: unexpected error %v", err)
			}
			if got != tt.want {
				t.Fatalf("Scan = %+v, want %+v", got, tt.want)
			}
			// Cross-check against encoding/json for inputs it can handle.
			if md <= 10000 && !json.Valid([]byte(tt.in)) {
				t.Fatalf("Scan accepted input json.Valid rejects")
			}
		})
	}
}

func TestErrorOffsetAndMessage(t *testing.T) {
	_, err := Scan([]byte(`{"a":1,"b":x}`), 8)
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("want *Error, got %v", err)
	}
	if e.Offset != 11 || e.Reason != ReasonNotJSON {
		t.Fatalf("got reason %q offset %d, want not_json at 11", e.Reason, e.Offset)
	}
	if !strings.Contains(e.Error(), "not_json") || !strings.Contains(e.Error(), "11") {
		t.Fatalf("Error() = %q lacks reason or offset", e.Error())
	}
	if _, ok := ReasonOf(errors.New("other")); ok {
		t.Fatal("ReasonOf(other error) reported a reason")
	}
	if IsBadRecord(nil) {
		t.Fatal("IsBadRecord(nil) = true")
	}
}

func TestAppendCompact(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "already compact", in: `{"a":[1,2]}`, want: `{"a":[1,2]}`},
		{name: "spaces everywhere", in: " { \"a\" : [ 1 , 2 ] } \n", want: `{"a":[1,2]}`},
		{name: "strings keep spaces", in: `{ "a b" : "c\t d" }`, want: `{"a b":"c\t d"}`},
		{name: "escaped quote then space", in: `{"a":"x\" y" , "b\\" : 1}`, want: `{"a":"x\" y","b\\":1}`},
		{name: "crlf tabs", in: "{\r\n\t\"t\":\"1\"\r\n}", want: `{"t":"1"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prefix := []byte("P")
			got := AppendCompact(prefix, []byte(tt.in))
			if string(got) != "P"+tt.want {
				t.Fatalf("AppendCompact = %q, want %q", got, "P"+tt.want)
			}
			info, err := Scan(got[1:], 8)
			if err != nil || !info.Compact {
				t.Fatalf("compacted output not compact: %+v %v", info, err)
			}
		})
	}
}

func TestParseClientID(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want int64
		ok   bool
	}{
		{name: "simple", in: "7", want: 7, ok: true},
		{name: "leading zeros", in: "007", want: 7, ok: true},
		{name: "max", in: "9223372036854775807", want: math.MaxInt64, ok: true},
		{name: "overflow", in: "9223372036854775808"},
		{name: "zero", in: "0"},
		{name: "empty", in: ""},
		{name: "negative", in: "-7"},
		{name: "plus", in: "+7"},
		{name: "space", in: " 7"},
		{name: "hex", in: "0x7"},
		{name: "fraction", in: "7.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := ParseClientID(tt.in)
			if got != tt.want && tt.ok || ok != tt.ok {
				t.Fatalf("ParseClientID(%q) = %d, %v; want %d, %v", tt.in, got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestScanZeroAllocs(t *testing.T) {
	lines := sampleLines(t)
	spaced := []byte(" {\"time\" : \"1687241470.5\", \"client_id\": \"7\", \"a\": [1, {\"b\": null}]}\n")
	for _, b := range [][]byte{lines[0], lines[1], spaced} {
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := Scan(b, testMaxDepth); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Fatalf("Scan allocated %v times per run on %q", allocs, b)
		}
	}
}

func ExampleScan() {
	info, err := Scan([]byte(`{"time":"1687241470.25","client_id":7,"tags":{"time":1}}`), 512)
	fmt.Println(info.TimeMs, info.HasTime, info.ClientID, info.HasClientID, info.Compact, err)

	_, err = Scan([]byte(`[1,2]`), 512)
	r, _ := ReasonOf(err)
	fmt.Println(r)
	// Output:
	// 1687241470250 true 7 true true <nil>
	// not_object
}

func ExampleAppendCompact() {
	fmt.Println(string(AppendCompact(nil, []byte("{ \"uri\" : \"/a b\" ,\n \"status_code\": 499 }"))))
	// Output: {"uri":"/a b","status_code":499}
}

// ---- fuzzing against encoding/json ----

var (
	timeRef = regexp.MustCompile(`^[0-9]+(\.[0-9]+)?$`)
	idRef   = regexp.MustCompile(`^[0-9]+$`)
)

// refInfo computes Info for a valid object with encoding/json and math/big,
// independently of the scanner.
func refInfo(t *testing.T, b []byte) Info {
	t.Helper()
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("reference decode of valid input failed: %v", err)
	}
	var info Info
	var cb bytes.Buffer
	if err := json.Compact(&cb, b); err != nil {
		t.Fatalf("json.Compact: %v", err)
	}
	info.Compact = bytes.Equal(cb.Bytes(), b)
	text := func(v any) (string, bool) {
		switch v := v.(type) {
		case json.Number:
			return string(v), true
		case string:
			return v, true
		}
		return "", false
	}
	if v, present := m["time"]; present {
		info.TimeGarbage = true
		if s, ok := text(v); ok && timeRef.MatchString(s) {
			r, _ := new(big.Rat).SetString(s)
			r.Mul(r, big.NewRat(1000, 1))
			ms := new(big.Int).Quo(r.Num(), r.Denom()) // non-negative: truncation is floor
			if ms.IsInt64() {
				info.TimeMs, info.HasTime, info.TimeGarbage = ms.Int64(), true, false
			}
		}
	}
	if v, present := m["client_id"]; present {
		if s, ok := text(v); ok && idRef.MatchString(s) {
			id, _ := new(big.Int).SetString(s, 10)
			if id.IsInt64() && id.Sign() > 0 {
				info.ClientID, info.HasClientID = id.Int64(), true
			}
		}
	}
	return info
}

// refDepth is the maximum nesting depth of a valid JSON value.
func refDepth(t *testing.T, b []byte) int {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // numbers beyond float64 (1E700) are valid JSON
	depth, maxD := 0, 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return maxD
		}
		if err != nil {
			t.Fatalf("reference tokenize of valid input failed: %v", err)
		}
		if d, ok := tok.(json.Delim); ok {
			if d == '{' || d == '[' {
				depth++
				maxD = max(maxD, depth)
			} else {
				depth--
			}
		}
	}
}

// decodeAny decodes a valid JSON value with numbers kept as text.
func decodeAny(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("reference decode of valid input failed: %v", err)
	}
	return v
}

// FuzzScan checks Scan and AppendCompact against encoding/json: Scan never
// panics and never hangs, accepts exactly what encoding/json accepts (plus the
// UTF-8 and object rules in doc.go), extracts the same time and client_id as a
// decode into a map (duplicate keys: the last wins), and AppendCompact's output
// equals json.Compact, is valid JSON and decodes to the same value.
func FuzzScan(f *testing.F) {
	for _, name := range []string{"testdata/sample_hits.json", "testdata/sample_hits.jsonl"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		for _, line := range bytes.Split(b, []byte("\n")) {
			f.Add(line)
		}
	}
	for _, s := range []string{
		`{}`, ` {"time" : 1687241470 } `, `{"time":"1687241470.123456"}`, `{"time":1.5e3}`,
		`{"time":-1}`, `{"time":{"a":[]}}`, `{"\u0074ime":"\u0031"}`, `{"client_id":"7","client_id":8}`,
		`{"time":"9223372036854775.807"}`, `{"time":"9223372036854775.808"}`, `{"client_id":9223372036854775808}`,
		"{\"a\":\"\xff\"}", "{\"a\":\"\x00\"}", `{"a":"\ud800\udc00"}`, `[` + strings.Repeat("[", 600) + `]`,
		strings.Repeat(`{"a":`, 600) + `1` + strings.Repeat(`}`, 600), `{"a":1}{"b":2}`, `{"a":[1,2,]}`,
		`{"a":"\/\b\f\n\r\t\"\\"}`, "\ufeff{}", `{"time":"1e3"}`, `{"client_id":" 7"}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// Bounded time: Scan and AppendCompact are single forward passes. A
		// hang (an infinite loop) crashes the fuzz worker so that the engine
		// keeps the input; the limit is a hang detector, orders of magnitude
		// above the microseconds a fuzz input takes, not a speed check.
		watchdog := time.AfterFunc(30*time.Second, func() { panic(fmt.Sprintf("Scan/AppendCompact hung on %q", b)) })
		defer watchdog.Stop()
		const jsonMaxDepth = 10000 // encoding/json's own nesting limit
		// AppendCompact must not panic even on input Scan refuses.
		_ = AppendCompact(nil, b)
		got, err := Scan(b, jsonMaxDepth)
		i := 0
		for i < len(b) && isWS(b[i]) {
			i++
		}
		wantValid := json.Valid(b) && utf8.Valid(b) && i < len(b) && b[i] == '{'
		if (err == nil) != wantValid {
			t.Fatalf("Scan(%q) error = %v, want valid=%v", b, err, wantValid)
		}
		if err != nil {
			if _, ok := ReasonOf(err); !ok {
				t.Fatalf("Scan error %v is not an *Error", err)
			}
			return
		}
		if want := refInfo(t, b); got != want {
			t.Fatalf("Scan(%q) = %+v, reference %+v", b, got, want)
		}
		d := refDepth(t, b)
		if _, err := Scan(b, d); err != nil {
			t.Fatalf("Scan(%q, depth %d) = %v, want ok", b, d, err)
		}
		if _, err := Scan(b, d-1); err == nil {
			t.Fatalf("Scan(%q, depth %d) accepted depth %d", b, d-1, d)
		}
		if d <= testMaxDepth {
			if _, err := Scan(b, testMaxDepth); err != nil {
				t.Fatalf("Scan(%q, default depth %d) = %v, want ok", b, testMaxDepth, err)
			}
		}
		var cb bytes.Buffer
		_ = json.Compact(&cb, b)
		c := AppendCompact(nil, b)
		if !bytes.Equal(c, cb.Bytes()) {
			t.Fatalf("AppendCompact(%q) = %q, json.Compact %q", b, c, cb.Bytes())
		}
		// The compact form is valid JSON with the same meaning: the same
		// value decoded, the same routing fields scanned.
		if !json.Valid(c) {
			t.Fatalf("AppendCompact(%q) = %q is not valid JSON", b, c)
		}
		if !reflect.DeepEqual(decodeAny(t, c), decodeAny(t, b)) {
			t.Fatalf("AppendCompact(%q) = %q decodes to a different value", b, c)
		}
		gotC, err := Scan(c, jsonMaxDepth)
		if err != nil {
			t.Fatalf("Scan(AppendCompact(%q)) = %v", b, err)
		}
		if want := (Info{TimeMs: got.TimeMs, HasTime: got.HasTime, TimeGarbage: got.TimeGarbage,
			ClientID: got.ClientID, HasClientID: got.HasClientID, Compact: true}); gotC != want {
			t.Fatalf("Scan(AppendCompact(%q)) = %+v, want %+v", b, gotC, want)
		}
	})
}

func BenchmarkScan(b *testing.B) {
	line := sampleLines(b)[0]
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Scan(line, testMaxDepth); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkJSONValid(b *testing.B) {
	line := sampleLines(b)[0]
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		if !json.Valid(line) {
			b.Fatal("invalid")
		}
	}
}

func BenchmarkAppendCompact(b *testing.B) {
	line := sampleLines(b)[0]
	buf := make([]byte, 0, len(line))
	b.SetBytes(int64(len(line)))
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendCompact(buf[:0], line)
	}
}
