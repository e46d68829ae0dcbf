package rediskey

import "testing"

// TestSlot: the slots the Redis Cluster specification and CLUSTER KEYSLOT
// give (redis-cli -c cluster keyslot ...).
func TestSlot(t *testing.T) {
	for key, want := range map[string]int{
		"123456789":               12739, // the specification's CRC16 check value 0x31C3 mod 16384
		"foo":                     12182,
		"{user1000}.following":    Slot("user1000"),
		"foo{}{bar}":              Slot("foo{}{bar}"), // empty tag: the whole key
		"{hitship}:integrations":  Slot("hitship"),
		"{hitship}:{g:t:0}:owner": Slot("hitship"),
	} {
		if got := Slot(key); got != want {
			t.Errorf("Slot(%q) = %d, want %d", key, got, want)
		}
	}
	if Slot("foo{}{bar}") == Slot("bar") {
		t.Error("an empty hash tag must not select the next one")
	}
}

func TestCheckPrefix(t *testing.T) {
	for prefix, ok := range map[string]bool{
		"hitship:": true, "{hitship}:": true, "acme{hs}:": true, "": true,
		"{}:": false, "hs{:": false, "hs}:": false, "}hs{:": false, "{a}{b}:": false, "{a{b}:": false,
	} {
		if err := CheckPrefix(prefix); (err == nil) != ok {
			t.Errorf("CheckPrefix(%q) = %v, want ok %v", prefix, err, ok)
		}
	}
}
