package hit

import (
	"errors"
	"fmt"
	"math"
	"unicode/utf8"
)

// Info is what Scan extracts from a valid hit.
type Info struct {
	// TimeMs is the top-level "time" in Unix milliseconds; valid when HasTime.
	TimeMs  int64
	HasTime bool
	// TimeGarbage is true when a top-level "time" is present but unusable.
	TimeGarbage bool
	// ClientID is the top-level "client_id"; valid when HasClientID.
	ClientID    int64
	HasClientID bool
	// Compact is true when the record has no whitespace outside strings, so
	// its bytes can be written out as they are.
	Compact bool
}

// Reason names why a record is bad. It is used as the dead-letter header
// value and as a metric label, so its values are stable.
type Reason string

// Reasons for bad records. Scan returns the first six; the caller decides
// ReasonTooLarge (before scanning) and ReasonNoTenant (after).
const (
	ReasonNotJSON      Reason = "not_json"
	ReasonNotObject    Reason = "not_object"
	ReasonInvalidUTF8  Reason = "invalid_utf8"
	ReasonTooDeep      Reason = "too_deep"
	ReasonTrailingData Reason = "trailing_data"
	ReasonEmpty        Reason = "empty"
	ReasonTooLarge     Reason = "too_large"
	ReasonNoTenant     Reason = "no_tenant"
)

// Reasons lists every Reason, for pre-creating metric label values.
func Reasons() []Reason {
	return []Reason{ReasonNotJSON, ReasonNotObject, ReasonInvalidUTF8, ReasonTooDeep,
		ReasonTrailingData, ReasonEmpty, ReasonTooLarge, ReasonNoTenant}
}

// Error is a validation failure of one record.
type Error struct {
	Reason Reason
	Offset int // byte offset in the record where the problem was found
	Msg    string
}

// Error implements error.
func (e *Error) Error() string {
	return fmt.Sprintf("hit: %s at byte %d: %s", e.Reason, e.Offset, e.Msg)
}

// ReasonOf returns the Reason of err when err is or wraps an *Error.
func ReasonOf(err error) (Reason, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason, true
	}
	return "", false
}

// IsBadRecord reports whether err is or wraps an *Error, i.e. the record itself
// is at fault and belongs on the dead-letter topic.
func IsBadRecord(err error) bool {
	_, ok := ReasonOf(err)
	return ok
}

func newErr(r Reason, off int, msg string) error {
	return &Error{Reason: r, Offset: off, Msg: msg}
}

// byte classes for the string fast path.
const (
	clsPlain  = 0
	clsQuote  = 1
	clsEscape = 2
	clsCtrl   = 3
	clsHigh   = 4
)

var strClass = func() (t [256]byte) {
	for i := 0; i < 0x20; i++ {
		t[i] = clsCtrl
	}
	t['"'] = clsQuote
	t['\\'] = clsEscape
	for i := 0x80; i < 0x100; i++ {
		t[i] = clsHigh
	}
	return t
}()

func isWS(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func isHex(c byte) bool {
	return ('0' <= c && c <= '9') || ('a' <= c && c <= 'f') || ('A' <= c && c <= 'F')
}

func hexVal(c byte) rune {
	switch {
	case c <= '9':
		return rune(c - '0')
	case c >= 'a':
		return rune(c-'a') + 10
	default:
		return rune(c-'A') + 10
	}
}

// field identifies the top-level key whose value is being scanned.
type field uint8

const (
	fieldNone field = iota
	fieldTime
	fieldClientID
)

// inlineDepth is the nesting depth the bit stack holds without allocating.
const inlineDepth = 64 * 64

// Scan validates that b is exactly one JSON object (optionally surrounded by
// whitespace) in valid UTF-8 with nesting depth at most maxDepth, and extracts
// the top-level "time" and "client_id". It does not allocate for valid input
// and does not recurse. A maxDepth below 1 rejects every object. Scan does not
// block and is safe for concurrent use.
func Scan(b []byte, maxDepth int) (Info, error) {
	info := Info{Compact: true}
	n := len(b)
	var inline [inlineDepth / 64]uint64 // bit set = array, clear = object
	stack := inline[:]
	depth := 0
	cur := fieldNone // field of the value about to be scanned
	i := 0

	for i < n && isWS(b[i]) {
		i++
		info.Compact = false
	}
	if i >= n {
		return info, newErr(ReasonEmpty, i, "no JSON value")
	}
	topObject := b[i] == '{'

value:
	// i is at the first byte of a value (whitespace already skipped).
	if i >= n {
		return info, newErr(ReasonNotJSON, i, "unexpected end of input, want a value")
	}
	switch c := b[i]; {
	case c == '{' || c == '[':
		if depth >= maxDepth {
			return info, newErr(ReasonTooDeep, i, fmt.Sprintf("nesting deeper than %d", maxDepth))
		}
		if depth >= len(stack)*64 {
			grown := make([]uint64, (maxDepth+63)/64)
			copy(grown, stack)
			stack = grown
		}
		if cur != fieldNone {
			info.setGarbage(cur)
			cur = fieldNone
		}
		if c == '[' {
			stack[depth>>6] |= 1 << (depth & 63)
		} else {
			stack[depth>>6] &^= 1 << (depth & 63)
		}
		depth++
		i++
		for i < n && isWS(b[i]) {
			i++
			info.Compact = false
		}
		if i < n && (b[i] == '}' && c == '{' || b[i] == ']' && c == '[') {
			i++
			depth--
			goto after
		}
		if c == '[' {
			goto value
		}
		goto key
	case c == '"':
		start := i + 1
		end, err := scanString(b, i)
		if err != nil {
			return info, err
		}
		i = end
		if cur != fieldNone {
			info.setField(cur, b[start:end-1], true)
			cur = fieldNone
		}
		goto after
	case c == '-' || ('0' <= c && c <= '9'):
		start := i
		end, err := scanNumber(b, i)
		if err != nil {
			return info, err
		}
		i = end
		if cur != fieldNone {
			info.setField(cur, b[start:end], false)
			cur = fieldNone
		}
		goto after
	case c == 't':
		if !hasLit(b, i, "true") {
			return info, newErr(ReasonNotJSON, i, "invalid literal")
		}
		i += 4
	case c == 'f':
		if !hasLit(b, i, "false") {
			return info, newErr(ReasonNotJSON, i, "invalid literal")
		}
		i += 5
	case c == 'n':
		if !hasLit(b, i, "null") {
			return info, newErr(ReasonNotJSON, i, "invalid literal")
		}
		i += 4
	default:
		return info, newErr(ReasonNotJSON, i, fmt.Sprintf("invalid character %q looking for a value", c))
	}
	if cur != fieldNone {
		info.setGarbage(cur)
		cur = fieldNone
	}

after:
	// A value ended at i.
	for i < n && isWS(b[i]) {
		i++
		info.Compact = false
	}
	if depth == 0 {
		if i < n {
			return info, newErr(ReasonTrailingData, i, "data after the JSON value")
		}
		if !topObject {
			return info, newErr(ReasonNotObject, 0, "top-level value is not an object")
		}
		return info, nil
	}
	if i >= n {
		return info, newErr(ReasonNotJSON, i, "unexpected end of input")
	}
	{
		inArray := stack[(depth-1)>>6]&(1<<((depth-1)&63)) != 0
		switch c := b[i]; {
		case c == ',':
			i++
			for i < n && isWS(b[i]) {
				i++
				info.Compact = false
			}
			if inArray {
				goto value
			}
			goto key
		case c == ']' && inArray, c == '}' && !inArray:
			i++
			depth--
			goto after
		default:
			return info, newErr(ReasonNotJSON, i, fmt.Sprintf("invalid character %q after a value", c))
		}
	}

key:
	// i is at the first byte of an object key (whitespace already skipped).
	if i >= n {
		return info, newErr(ReasonNotJSON, i, "unexpected end of input, want a key")
	}
	if b[i] != '"' {
		return info, newErr(ReasonNotJSON, i, fmt.Sprintf("invalid character %q looking for a key", b[i]))
	}
	{
		start := i + 1
		end, err := scanString(b, i)
		if err != nil {
			return info, err
		}
		i = end
		if depth == 1 && topObject {
			raw := b[start : end-1]
			switch {
			case keyIs(raw, "time"):
				cur = fieldTime
			case keyIs(raw, "client_id"):
				cur = fieldClientID
			}
		}
	}
	for i < n && isWS(b[i]) {
		i++
		info.Compact = false
	}
	if i >= n || b[i] != ':' {
		return info, newErr(ReasonNotJSON, i, "want ':' after a key")
	}
	i++
	for i < n && isWS(b[i]) {
		i++
		info.Compact = false
	}
	goto value
}

func (info *Info) setGarbage(f field) {
	switch f {
	case fieldTime:
		info.TimeMs, info.HasTime, info.TimeGarbage = 0, false, true
	case fieldClientID:
		info.ClientID, info.HasClientID = 0, false
	}
}

func (info *Info) setField(f field, raw []byte, isString bool) {
	switch f {
	case fieldTime:
		ms, ok := parseTimeMs(raw)
		if ok {
			info.TimeMs, info.HasTime, info.TimeGarbage = ms, true, false
		} else {
			info.setGarbage(f)
		}
	case fieldClientID:
		id, ok := parseID(raw)
		info.ClientID, info.HasClientID = id, ok
	}
}

func hasLit(b []byte, i int, lit string) bool {
	return len(b)-i >= len(lit) && string(b[i:i+len(lit)]) == lit
}

// scanString validates the string whose opening quote is at b[i] and returns
// the index just after its closing quote.
func scanString(b []byte, i int) (int, error) {
	n := len(b)
	i++
	for {
		i = skipPlain(b, i)
		for i < n && strClass[b[i]] == clsPlain {
			i++
		}
		if i >= n {
			return i, newErr(ReasonNotJSON, i, "unterminated string")
		}
		switch strClass[b[i]] {
		case clsQuote:
			return i + 1, nil
		case clsCtrl:
			return i, newErr(ReasonNotJSON, i, fmt.Sprintf("control character 0x%02x in string", b[i]))
		case clsEscape:
			if i+1 >= n {
				return i, newErr(ReasonNotJSON, i, "unterminated escape")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if n-i < 6 || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return i, newErr(ReasonNotJSON, i, "invalid \\u escape")
				}
				i += 6
			default:
				return i, newErr(ReasonNotJSON, i, fmt.Sprintf("invalid escape %q", b[i+1]))
			}
		default: // clsHigh
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size <= 1 {
				return i, newErr(ReasonInvalidUTF8, i, "invalid UTF-8 in string")
			}
			i += size
		}
	}
}

// scanNumber validates the JSON number starting at b[i] and returns the index
// just after it.
func scanNumber(b []byte, i int) (int, error) {
	n := len(b)
	start := i
	if b[i] == '-' {
		i++
	}
	switch {
	case i < n && b[i] == '0':
		i++
	case i < n && '1' <= b[i] && b[i] <= '9':
		for i < n && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	default:
		return i, newErr(ReasonNotJSON, start, "invalid number")
	}
	if i < n && b[i] == '.' {
		i++
		if i >= n || b[i] < '0' || b[i] > '9' {
			return i, newErr(ReasonNotJSON, start, "invalid number: no digits after '.'")
		}
		for i < n && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	}
	if i < n && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < n && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= n || b[i] < '0' || b[i] > '9' {
			return i, newErr(ReasonNotJSON, start, "invalid number: no digits in exponent")
		}
		for i < n && '0' <= b[i] && b[i] <= '9' {
			i++
		}
	}
	return i, nil
}

// decodedAt returns the character at raw[i] with JSON escapes decoded (raw
// is the validated content of a string or a number), the index after it, and
// whether the character is ASCII. Non-ASCII characters are reported as
// ascii=false; callers only compare against ASCII.
func decodedAt(raw []byte, i int) (c byte, next int, ascii bool) {
	if raw[i] != '\\' {
		return raw[i], i + 1, raw[i] < utf8.RuneSelf
	}
	switch e := raw[i+1]; e {
	case 'b':
		return '\b', i + 2, true
	case 'f':
		return '\f', i + 2, true
	case 'n':
		return '\n', i + 2, true
	case 'r':
		return '\r', i + 2, true
	case 't':
		return '\t', i + 2, true
	case 'u':
		r := hexVal(raw[i+2])<<12 | hexVal(raw[i+3])<<8 | hexVal(raw[i+4])<<4 | hexVal(raw[i+5])
		if r < utf8.RuneSelf {
			return byte(r), i + 6, true
		}
		return 0, i + 6, false
	default: // '"', '\\', '/'
		return e, i + 2, true
	}
}

// equalDecoded reports whether the validated string content raw, unescaped,
// equals the ASCII string s.
func equalDecoded(raw []byte, s string) bool {
	i, k := 0, 0
	for i < len(raw) {
		c, next, ascii := decodedAt(raw, i)
		if !ascii || k >= len(s) || c != s[k] {
			return false
		}
		i, k = next, k+1
	}
	return k == len(s)
}

// parseTimeMs parses DIGITS or DIGITS.DIGITS seconds (raw possibly escaped)
// into milliseconds, truncating below a millisecond.
func parseTimeMs(raw []byte) (int64, bool) {
	const maxSec = math.MaxInt64 / 1000
	var sec, frac int64
	i, digits, fracDigits := 0, 0, 0
	for i < len(raw) {
		c, next, ascii := decodedAt(raw, i)
		if !ascii || c < '0' || c > '9' {
			break
		}
		if sec > (maxSec-int64(c-'0'))/10 {
			return 0, false
		}
		sec = sec*10 + int64(c-'0')
		i, digits = next, digits+1
	}
	if digits == 0 {
		return 0, false
	}
	if i < len(raw) {
		c, next, _ := decodedAt(raw, i)
		if c != '.' {
			return 0, false
		}
		i = next
		for i < len(raw) {
			c, next, ascii := decodedAt(raw, i)
			if !ascii || c < '0' || c > '9' {
				return 0, false
			}
			if fracDigits < 3 {
				frac = frac*10 + int64(c-'0')
			}
			i, fracDigits = next, fracDigits+1
		}
		if fracDigits == 0 {
			return 0, false
		}
	}
	for k := fracDigits; k < 3; k++ {
		frac *= 10
	}
	ms := sec * 1000
	if ms > math.MaxInt64-frac {
		return 0, false
	}
	return ms + frac, true
}

// parseID parses a positive decimal integer (raw possibly escaped).
func parseID(raw []byte) (int64, bool) {
	var v int64
	if len(raw) == 0 {
		return 0, false
	}
	for i := 0; i < len(raw); {
		c, next, ascii := decodedAt(raw, i)
		if !ascii || c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if v > (math.MaxInt64-d)/10 {
			return 0, false
		}
		v = v*10 + d
		i = next
	}
	return v, v > 0
}

// ParseClientID parses a client_id Kafka header value: decimal digits only,
// no sign or spaces, value in 1..math.MaxInt64. It is safe for concurrent use.
func ParseClientID(s string) (int64, bool) {
	var v int64
	if s == "" {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		d := int64(c - '0')
		if v > (math.MaxInt64-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, v > 0
}

// AppendCompact appends src to dst with every whitespace byte outside strings
// removed and returns the extended slice. src must be valid JSON (Scan it
// first); on other input the result is unspecified but AppendCompact does not
// panic. It is safe for concurrent use.
func AppendCompact(dst, src []byte) []byte {
	run := 0 // start of the pending run of bytes to copy
	inString := false
	for i := 0; i < len(src); i++ {
		c := src[i]
		if inString {
			switch c {
			case '\\':
				i++
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case ' ', '\t', '\n', '\r':
			dst = append(dst, src[run:i]...)
			run = i + 1
		}
	}
	if run < len(src) {
		dst = append(dst, src[run:]...)
	}
	return dst
}
