package hitgen

import (
	"encoding/json"
	"testing"
	"unicode/utf8"
)

func TestGeneratorShapes(t *testing.T) {
	g := New(Config{Seed: 1, Tenants: 3, LateShare: 0.1, BadShare: 0.1, ClientIDInBody: true})
	var kinds [3]int
	for i := 0; i < 5000; i++ {
		r := g.Next(1687241470)
		kinds[r.Kind]++
		if r.ClientID < 1 || r.ClientID > 3 {
			t.Fatalf("client id %d out of range", r.ClientID)
		}
		if r.Kind == Malformed {
			var m map[string]any
			if utf8.Valid(r.Value) && json.Unmarshal(r.Value, &m) == nil {
				t.Fatalf("malformed record is a valid object: %s", r.Value)
			}
			continue
		}
		var h struct {
			Time     string `json:"time"`
			ClientID int64  `json:"client_id"`
		}
		if err := json.Unmarshal(r.Value, &h); err != nil {
			t.Fatalf("hit does not decode: %v: %s", err, r.Value)
		}
		want := "1687241470"
		if r.Kind == Late {
			want = "1687240570"
		}
		if h.Time != want || h.ClientID != r.ClientID {
			t.Fatalf("hit time %q client %d, want %q %d", h.Time, h.ClientID, want, r.ClientID)
		}
	}
	for k, n := range kinds {
		if n < 300 {
			t.Errorf("kind %d produced only %d times of 5000", k, n)
		}
	}
}

func TestGeneratorDeterministic(t *testing.T) {
	a, b := New(Config{Seed: 9}), New(Config{Seed: 9})
	for i := 0; i < 100; i++ {
		if x, y := a.Next(100), b.Next(100); string(x.Value) != string(y.Value) {
			t.Fatalf("record %d differs", i)
		}
	}
}
