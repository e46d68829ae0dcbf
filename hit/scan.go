package hit

import (
	"bytes"
	"encoding/binary"
	"math/bits"
)

// Fast paths of Scan. Each returns exactly what the byte-at-a-time code it
// shortcuts would: they only skip work, never change a result.

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// skipPlain returns the index of the first byte at or after i, within the last
// whole 8-byte word of b, that is not a plain string byte (a control character,
// '"', '\\' or a byte >= 0x80); if every such word is plain it returns the start
// of the tail shorter than 8 bytes. The caller's byte loop goes on from there.
func skipPlain(b []byte, i int) int {
	for i+8 <= len(b) {
		x := binary.LittleEndian.Uint64(b[i:])
		q := x ^ (ones * '"')
		e := x ^ (ones * '\\')
		// Per byte: below 0x20, zero after the XORs ('"', '\\'), or high bit
		// set. Borrows only flag bytes above a flagged one, so the lowest
		// flag is exact.
		m := ((x-ones*0x20)&^x | (q-ones)&^q | (e-ones)&^e | x) & highs
		if m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
		i += 8
	}
	return i
}

// keyIs reports whether the validated key content raw, unescaped, equals the
// ASCII string s (equalDecoded, without decoding when raw has no escape).
func keyIs(raw []byte, s string) bool {
	switch {
	case len(raw) < len(s): // an escape only makes raw longer than its decoding
		return false
	case len(raw) == len(s): // equal only without escapes, byte for byte
		return string(raw) == s
	case bytes.IndexByte(raw, '\\') < 0:
		return false
	}
	return equalDecoded(raw, s)
}
