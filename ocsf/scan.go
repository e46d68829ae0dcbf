package ocsf

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/bits"
	"unicode/utf8"
)

// splitObject and the valid* functions validate the hit in one pass; the
// skip* and append* helpers then run only on spans they accepted, so they
// skip rather than validate.

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skipString returns the index just past the valid string whose opening
// quote is at b[i].
func skipString(b []byte, i int) int {
	for i++; ; i++ {
		switch b[i] {
		case '"':
			return i + 1
		case '\\':
			i++ // skip the escaped byte; \uXXXX's hex digits are plain
		}
	}
}

// maxDepth is the deepest nesting accepted, counting the hit's own object
// as 1; encoding/json refuses deeper input too.
const maxDepth = 10000

// splitObject validates hit as one JSON object (RFC 8259 grammar, like
// json.Valid; UTF-8 is checked by the caller) and appends its top-level
// members to ms, one per key (decoded): the value is the last one given, the
// position the first. It reports whether hit is a valid JSON object.
// idx[f] is set to the index in ms of known field f; it must hold -1s.
func splitObject(hit []byte, ms []member, idx *[nKnown]int) ([]member, bool) {
	i := skipSpace(hit, 0)
	if i >= len(hit) || hit[i] != '{' {
		return ms, false
	}
	i = skipSpace(hit, i+1)
	if i < len(hit) && hit[i] == '}' {
		return ms, skipSpace(hit, i+1) == len(hit)
	}
	for {
		if i >= len(hit) || hit[i] != '"' {
			return ms, false
		}
		ks := i
		var ok bool
		if i, ok = validString(hit, i); !ok {
			return ms, false
		}
		quoted := hit[ks:i]
		key := quoted[1 : len(quoted)-1]
		i = skipSpace(hit, i)
		if i >= len(hit) || hit[i] != ':' {
			return ms, false
		}
		vs := skipSpace(hit, i+1)
		if i, ok = validValue(hit, vs, 1); !ok {
			return ms, false
		}
		val := hit[vs:i]

		esc := bytes.IndexByte(key, '\\') >= 0
		var field int
		if esc {
			field = fieldOf(unquote(quoted))
		} else {
			field = fieldOf(string(key)) // no allocation: switch on a converted slice
		}
		dup := -1
		if field >= 0 {
			dup = idx[field]
		} else {
			for j := range ms {
				m := &ms[j]
				if m.field >= 0 {
					continue
				}
				if !esc && !m.esc {
					if len(m.key) == len(key) && string(m.key) == string(key) {
						dup = j
						break
					}
				} else if sameKey(m.key, key) {
					dup = j
					break
				}
			}
		}
		if dup >= 0 {
			ms[dup].val = val
		} else {
			if field >= 0 {
				idx[field] = len(ms)
			}
			ms = append(ms, member{key: key, val: val, field: field, esc: esc})
		}

		i = skipSpace(hit, i)
		if i >= len(hit) {
			return ms, false
		}
		switch hit[i] {
		case '}':
			return ms, skipSpace(hit, i+1) == len(hit)
		case ',':
			i = skipSpace(hit, i+1)
		default:
			return ms, false
		}
	}
}

// validString returns the index just past the string whose opening quote is
// at b[i], and whether it is a valid JSON string (no control characters,
// only the escapes JSON defines).
func validString(b []byte, i int) (int, bool) {
	for i++; i < len(b); {
		i = skipPlain(b, i)
		if i >= len(b) {
			break
		}
		c := b[i]
		switch {
		case c == '"':
			return i + 1, true
		case c < 0x20:
			return i, false
		case c == '\\':
			if i+1 >= len(b) {
				return i, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex(b[i+2]) || !isHex(b[i+3]) || !isHex(b[i+4]) || !isHex(b[i+5]) {
					return i, false
				}
				i += 6
			default:
				return i, false
			}
		default:
			i++
		}
	}
	return i, false
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// skipPlain returns the index of the first byte at or after i that may need
// a look in a string (a control character, '"' or '\\'), checking 8 bytes
// at a time; bytes >= 0x80 are plain (UTF-8 is checked by the caller). It
// stops at the tail shorter than 8 bytes, which the caller's loop handles.
func skipPlain(b []byte, i int) int {
	for i+8 <= len(b) {
		x := binary.LittleEndian.Uint64(b[i:])
		q := x ^ (ones * '"')
		e := x ^ (ones * '\\')
		// Per byte: below 0x20, or zero after the XORs (bytes >= 0x80 are
		// masked by &^x). Borrows only flag bytes above a flagged one, so the
		// lowest flag is exact; a false flag above would only cost a
		// byte-at-a-time step anyway.
		m := (x-ones*0x20)&^x | (q-ones)&^q | (e-ones)&^e
		if m&highs != 0 {
			return i + bits.TrailingZeros64(m&highs)>>3
		}
		i += 8
	}
	return i
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// validValue returns the index just past the JSON value at b[i], and
// whether it is valid; depth is the number of containers around it.
func validValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	switch b[i] {
	case '{', '[':
		return validContainer(b, i, depth)
	}
	return validScalar(b, i)
}

func validScalar(b []byte, i int) (int, bool) {
	switch b[i] {
	case '"':
		return validString(b, i)
	case 't':
		return validLiteral(b, i, "true")
	case 'f':
		return validLiteral(b, i, "false")
	case 'n':
		return validLiteral(b, i, "null")
	}
	return validNumber(b, i)
}

func validLiteral(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, false
	}
	return i + len(lit), true
}

// validNumber checks -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?; the
// caller checks what follows.
func validNumber(b []byte, i int) (int, bool) {
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return i, false
	case b[i] == '0':
		i++
	case b[i] >= '1' && b[i] <= '9':
		for i++; i < len(b) && isDigit(b[i]); i++ {
		}
	default:
		return i, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || !isDigit(b[i]) {
			return i, false
		}
		for ; i < len(b) && isDigit(b[i]); i++ {
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || !isDigit(b[i]) {
			return i, false
		}
		for ; i < len(b) && isDigit(b[i]); i++ {
		}
	}
	return i, true
}

// validContainer validates the object or array at b[i] without recursion:
// open containers are a bit stack (1 = object), 256 levels without
// allocating.
func validContainer(b []byte, i, depth int) (int, bool) {
	var small [4]uint64
	stack := small[:]
	n := 0 // containers open in this call
	const (
		sOpen = iota
		sKey
		sValue
		sAfter
	)
	st := sOpen
	for {
		switch st {
		case sOpen: // b[i] is '{' or '['
			if depth+n >= maxDepth {
				return i, false
			}
			if n == len(stack)*64 {
				stack = append(stack, make([]uint64, len(stack))...)
			}
			obj := b[i] == '{'
			if obj {
				stack[n>>6] |= 1 << (n & 63)
			} else {
				stack[n>>6] &^= 1 << (n & 63)
			}
			n++
			i = skipSpace(b, i+1)
			if i >= len(b) {
				return i, false
			}
			if obj && b[i] == '}' || !obj && b[i] == ']' {
				i++
				n--
				if n == 0 {
					return i, true
				}
				st = sAfter
			} else if obj {
				st = sKey
			} else {
				st = sValue
			}
		case sKey:
			if i >= len(b) || b[i] != '"' {
				return i, false
			}
			var ok bool
			if i, ok = validString(b, i); !ok {
				return i, false
			}
			i = skipSpace(b, i)
			if i >= len(b) || b[i] != ':' {
				return i, false
			}
			i = skipSpace(b, i+1)
			st = sValue
		case sValue:
			if i >= len(b) {
				return i, false
			}
			if b[i] == '{' || b[i] == '[' {
				st = sOpen
				continue
			}
			var ok bool
			if i, ok = validScalar(b, i); !ok {
				return i, false
			}
			st = sAfter
		case sAfter:
			i = skipSpace(b, i)
			if i >= len(b) {
				return i, false
			}
			obj := stack[(n-1)>>6]&(1<<((n-1)&63)) != 0
			switch {
			case b[i] == ',':
				i = skipSpace(b, i+1)
				if obj {
					st = sKey
				} else {
					st = sValue
				}
			case obj && b[i] == '}' || !obj && b[i] == ']':
				i++
				n--
				if n == 0 {
					return i, true
				}
			default:
				return i, false
			}
		}
	}
}

// sameKey compares two raw keys after decoding their escapes.
func sameKey(a, b []byte) bool {
	if bytes.IndexByte(a, '\\') < 0 && bytes.IndexByte(b, '\\') < 0 {
		return bytes.Equal(a, b)
	}
	return unquoteRaw(a) == unquoteRaw(b)
}

// unquote decodes a valid JSON string literal (with its quotes).
func unquote(quoted []byte) string {
	var s string
	_ = json.Unmarshal(quoted, &s) // valid by construction
	return s
}

// unquoteRaw decodes the contents of a valid JSON string (without quotes).
func unquoteRaw(raw []byte) string {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw)
	}
	q := make([]byte, 0, len(raw)+2)
	q = append(q, '"')
	q = append(q, raw...)
	q = append(q, '"')
	return unquote(q)
}

// rawEq reports whether the contents of a JSON string equal s once decoded.
func rawEq(raw []byte, s string) bool {
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw) == s
	}
	return unquoteRaw(raw) == s
}

// appendCompact appends the valid JSON value v without whitespace outside
// strings, so that every record is one line.
func appendCompact(dst, v []byte) []byte {
	i := 0
	for i < len(v) {
		c := v[i]
		switch {
		case c == '"':
			j := skipString(v, i)
			dst = append(dst, v[i:j]...)
			i = j
		case isSpace(c):
			i++
		default:
			// copy a run of non-space, non-quote bytes at once
			j := i + 1
			for j < len(v) && v[j] != '"' && !isSpace(v[j]) {
				j++
			}
			dst = append(dst, v[i:j]...)
			i = j
		}
	}
	return dst
}

// isStringArray reports whether the valid JSON value v is an array whose
// elements are all strings.
func isStringArray(v []byte) bool {
	if v[0] != '[' {
		return false
	}
	i := skipSpace(v, 1)
	if v[i] == ']' {
		return true
	}
	for {
		if v[i] != '"' {
			return false
		}
		i = skipSpace(v, skipString(v, i))
		if v[i] == ']' {
			return true
		}
		i = skipSpace(v, i+1)
	}
}

// appendRawString appends the contents of a valid JSON string as a quoted
// string, escapes as written.
func appendRawString(dst, raw []byte) []byte {
	dst = append(dst, '"')
	dst = append(dst, raw...)
	return append(dst, '"')
}

// appendPathQuery appends `"path":...` and, when the URI has a '?',
// `,"query_string":...` for the contents raw of the hit's uri.
func appendPathQuery(dst, raw []byte) []byte {
	if bytes.IndexByte(raw, '\\') >= 0 {
		// An escaped '?' (\u003f) still splits: decode, split, re-encode.
		s := unquoteRaw(raw)
		dst = append(dst, `"path":`...)
		q := -1
		for i := 0; i < len(s); i++ {
			if s[i] == '?' {
				q = i
				break
			}
		}
		if q < 0 {
			return appendString(dst, s)
		}
		dst = appendString(dst, s[:q])
		dst = append(dst, `,"query_string":`...)
		return appendString(dst, s[q+1:])
	}
	dst = append(dst, `"path":`...)
	q := bytes.IndexByte(raw, '?')
	if q < 0 {
		return appendRawString(dst, raw)
	}
	dst = appendRawString(dst, raw[:q])
	dst = append(dst, `,"query_string":`...)
	return appendRawString(dst, raw[q+1:])
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. s is valid UTF-8 (decoded from
// valid JSON, or checked by Options.Validate).
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= utf8.RuneSelf {
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == '\u2028' || r == '\u2029' {
				dst = append(dst, `\u202`...)
				dst = append(dst, hexDigits[r&0xF])
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
			continue
		}
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c == '\n':
			dst = append(dst, `\n`...)
		case c == '\r':
			dst = append(dst, `\r`...)
		case c == '\t':
			dst = append(dst, `\t`...)
		case c < 0x20:
			dst = append(dst, `\u00`...)
			dst = append(dst, hexDigits[c>>4], hexDigits[c&0xF])
		default:
			dst = append(dst, c)
		}
		i++
	}
	return append(dst, '"')
}
