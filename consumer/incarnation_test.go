package consumer

import (
	"context"
	"strings"
	"testing"
	"time"

	"hitship/internal/testenv"
	"hitship/sink"
)

func TestFormatIncarnation(t *testing.T) {
	id := [16]byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0, 0, 0, 0, 0, 0, 0, 0xff}
	tests := []struct {
		name, cluster string
		topic         [16]byte
		want          string
	}{
		{"cluster and topic id", "MkU3OEVBNTcwNTJENDM2Qg", id, "MkU3OEVBNTcwNTJENDM2Qg.0123456789abcdef00000000000000ff"},
		{"no topic id (Kafka before 2.8)", "MkU3OEVBNTcwNTJENDM2Qg", [16]byte{}, "MkU3OEVBNTcwNTJENDM2Qg"},
		{"nothing", "", [16]byte{}, ""},
		{"odd cluster id is hashed", "a:b{c}", id, "c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := FormatIncarnation(tt.cluster, tt.topic)
			if tt.want == "c" {
				if !strings.HasPrefix(got, "c") || len(got) != 17+33 || strings.ContainsAny(got, ":{}") {
					t.Fatalf("FormatIncarnation = %q, want a hashed cluster id", got)
				}
				return
			}
			if got != tt.want {
				t.Fatalf("FormatIncarnation = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestKafkaIncarnations: two topics, or one topic re-created, have different
// incarnations; asking twice gives the same one.
func TestKafkaIncarnations(t *testing.T) {
	k := testenv.MustKafka(t, testenv.KafkaOptions{Partitions: 1, Topics: []string{"a", "b"}})
	ki := KafkaIncarnations{Brokers: k.Addrs()}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	a1, err := ki.Incarnation(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	a2, err := ki.Incarnation(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	b, err := ki.Incarnation(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	if a1 != a2 || a1 == b || !strings.Contains(a1, ".") {
		t.Fatalf("incarnations a %q then %q, b %q: want a stable one per topic, with a topic id", a1, a2, b)
	}
	if digestSeed(a1) == digestSeed(b) || digestSeed("") != sink.DigestSeed {
		t.Fatal("digest seeds do not follow the incarnation")
	}
	if _, err := ki.Incarnation(ctx, "missing"); err == nil {
		t.Fatal("a topic that does not exist has an incarnation")
	}
}
