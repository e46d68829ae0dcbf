// Package rediskey holds the rules of Redis Cluster key names that hitship's
// key layout (state/keys.go) and its config (redis.key_prefix) share: the
// hash tag and the hash slot.
package rediskey

import (
	"fmt"
	"strings"
)

// HashTag returns the key's hash tag — what lies between its first "{" and
// the first "}" after it, when that is not empty — and whether it has one.
func HashTag(key string) (string, bool) {
	i := strings.IndexByte(key, '{')
	if i < 0 {
		return "", false
	}
	j := strings.IndexByte(key[i+1:], '}')
	if j <= 0 {
		return "", false
	}
	return key[i+1 : i+1+j], true
}

// CheckPrefix checks a key prefix: without braces (every family of keys then
// has the hash tag of its own, state/keys.go), or with exactly one hash tag
// and no other brace (every key is then in the tag's slot). A stray brace
// would pair with a brace of the keys after it.
func CheckPrefix(prefix string) error {
	n := strings.Count(prefix, "{") + strings.Count(prefix, "}")
	if n == 0 {
		return nil
	}
	if _, ok := HashTag(prefix); !ok || n != 2 || strings.Index(prefix, "}") < strings.Index(prefix, "{") {
		return fmt.Errorf("key prefix %q: braces only as one hash tag, such as {hitship}:", prefix)
	}
	return nil
}

// Slot returns the Redis Cluster hash slot of key: CRC16 (XMODEM) of the
// key's hash tag, or of the whole key when it has none, modulo 16384 — the
// rule of the Redis Cluster specification, "Keys distribution model".
func Slot(key string) int {
	if tag, ok := HashTag(key); ok {
		key = tag
	}
	var crc uint16
	for k := 0; k < len(key); k++ {
		crc ^= uint16(key[k]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc % 16384)
}
