package ocsf

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// The scanning helpers below run only on input that json.Valid and
// utf8.Valid accepted, so they skip rather than validate.

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	return i
}

// skipString returns the index just past the string whose opening quote is
// at b[i].
func skipString(b []byte, i int) int {
	i++
	for {
		j := bytes.IndexAny(b[i:], `"\`)
		i += j
		if b[i] == '"' {
			return i + 1
		}
		i += 2 // a backslash and the byte it escapes
	}
}

// skipValue returns the index just past the value starting at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for {
			switch b[i] {
			case '"':
				i = skipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
	default: // number, true, false, null
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				return i
			}
			i++
		}
		return i
	}
}

// splitObject appends the top-level members of the object hit to ms, one per
// key (decoded): the value is the last one given, the position the first.
// It reports false when hit is not an object.
func splitObject(hit []byte, ms []member) ([]member, bool) {
	i := skipSpace(hit, 0)
	if i >= len(hit) || hit[i] != '{' {
		return ms, false
	}
	i = skipSpace(hit, i+1)
	if hit[i] == '}' {
		return ms, true
	}
	for {
		ks := i
		i = skipString(hit, i)
		quoted := hit[ks:i]
		key := quoted[1 : len(quoted)-1]
		i = skipSpace(hit, i)
		i = skipSpace(hit, i+1) // ':'
		vs := i
		i = skipValue(hit, i)
		val := hit[vs:i]

		escaped := bytes.IndexByte(key, '\\') >= 0
		var field int
		if escaped {
			field = fieldOf(unquote(quoted))
		} else {
			field = fieldOf(string(key)) // no allocation: switch on a converted slice
		}
		dup := -1
		for j := range ms {
			if field >= 0 {
				if ms[j].field == field {
					dup = j
					break
				}
			} else if ms[j].field < 0 && sameKey(ms[j].key, key) {
				dup = j
				break
			}
		}
		if dup >= 0 {
			ms[dup].val = val
		} else {
			ms = append(ms, member{key: key, val: val, field: field})
		}

		i = skipSpace(hit, i)
		if hit[i] == '}' {
			return ms, true
		}
		i = skipSpace(hit, i+1) // ','
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
