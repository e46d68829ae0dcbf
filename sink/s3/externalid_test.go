package s3_test

import (
	"fmt"
	"regexp"
	"testing"

	s3sink "hitship/sink/s3"
)

func TestExternalID(t *testing.T) {
	secret := []byte("server-secret-0123456789abcdef")
	stsRule := regexp.MustCompile(`^hitship-[a-z2-7]{32}$`) // inside STS's [\w+=,.@:/-]{2,1224}
	tests := []struct {
		name       string
		a, b       func() string
		wantEqual  bool
		wantFormat bool
	}{
		{
			name:      "stable for one client and secret",
			a:         func() string { return s3sink.ExternalID(secret, 7) },
			b:         func() string { return s3sink.ExternalID([]byte("server-secret-0123456789abcdef"), 7) },
			wantEqual: true,
		},
		{
			name: "differs per client",
			a:    func() string { return s3sink.ExternalID(secret, 7) },
			b:    func() string { return s3sink.ExternalID(secret, 8) },
		},
		{
			name: "differs for negative client ids",
			a:    func() string { return s3sink.ExternalID(secret, 7) },
			b:    func() string { return s3sink.ExternalID(secret, -7) },
		},
		{
			name: "differs per secret",
			a:    func() string { return s3sink.ExternalID(secret, 7) },
			b:    func() string { return s3sink.ExternalID([]byte("server-secret-0123456789abcdeF"), 7) },
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := tt.a(), tt.b()
			if (a == b) != tt.wantEqual {
				t.Errorf("%q vs %q: equal = %v, want %v", a, b, a == b, tt.wantEqual)
			}
			for _, id := range []string{a, b} {
				if !stsRule.MatchString(id) {
					t.Errorf("%q does not match %v", id, stsRule)
				}
			}
		})
	}
	// No collisions over many clients (160 bits: any collision is a bug).
	seen := map[string]int64{}
	for c := int64(-500); c < 5000; c++ {
		id := s3sink.ExternalID(secret, c)
		if prev, dup := seen[id]; dup {
			t.Fatalf("clients %d and %d share external ID %s", prev, c, id)
		}
		seen[id] = c
	}
}

func ExampleExternalID() {
	secret := []byte("example-server-secret-not-for-production")
	id := s3sink.ExternalID(secret, 7)
	fmt.Println(id)
	fmt.Println(len(id), id == s3sink.ExternalID(secret, 7), id == s3sink.ExternalID(secret, 8))
	// Output:
	// hitship-fzyc3tqpazupzfz62dg6bvjy57julrrk
	// 40 true false
}
