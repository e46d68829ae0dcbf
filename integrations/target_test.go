package integrations

import (
	"testing"

	"hitship/config"
)

func TestIntegrationKey(t *testing.T) {
	for _, c := range []struct {
		id, want string
		ok       bool
	}{
		{NewTargetID("acme", 42, "bucket-a"), "acme:42", true},
		{"acme:42", "acme:42", true},
		{"acme", "", false},
		{"acme:x:0123", "", false},
		{":42:0123", "", false},
	} {
		got, ok := IntegrationKey(c.id)
		if got != c.want || ok != c.ok {
			t.Errorf("IntegrationKey(%q) = %q, %v; want %q, %v", c.id, got, ok, c.want, c.ok)
		}
	}
}

func TestSuccessorIsTheSameIntegrationOnly(t *testing.T) {
	moved := &Target{ID: NewTargetID("acme", 42, "bucket-b"), Name: "acme", ClientID: 42}
	other := &Target{ID: NewTargetID("acme2", 42, "bucket-a"), Name: "acme2", ClientID: 42}
	otherClient := &Target{ID: NewTargetID("acme", 43, "bucket-a"), Name: "acme", ClientID: 43}
	set := NewRouteSet([]*Target{other, otherClient, moved})
	got, ok := set.Successor(NewTargetID("acme", 42, "bucket-a"))
	if !ok || got != moved {
		t.Fatalf("Successor of acme/42's old target = %v, %v; want the moved target", got, ok)
	}
	if got, ok := set.Successor(NewTargetID("acme", 44, "bucket-a")); ok {
		t.Fatalf("Successor of another client's target = %v; want none", got.ID)
	}
	if got, ok := set.Successor("garbage"); ok {
		t.Fatalf("Successor of a malformed ID = %v; want none", got.ID)
	}
}

// TestIncarnationsAreApart: an API integration deleted and created again
// under the same name and client is another integration to the staging and
// parking buckets (the incarnation in its target ID): what the first staged
// never goes to the second; a replace keeps the incarnation and its successor.
func TestIncarnationsAreApart(t *testing.T) {
	first := NewTargetID("api1~1733390000000", 2, "bucket-a")
	again := &Target{ID: NewTargetID("api1~1733390999999", 2, "bucket-a"), Name: "api1", ClientID: 2}
	if first == again.ID {
		t.Fatal("two incarnations have one target ID")
	}
	if got, ok := NewRouteSet([]*Target{again}).Successor(first); ok {
		t.Fatalf("the deleted incarnation's target resolves to the new one: %s", got.ID)
	}
	moved := &Target{ID: NewTargetID("api1~1733390000000", 2, "bucket-b"), Name: "api1", ClientID: 2}
	if got, ok := NewRouteSet([]*Target{moved}).Successor(first); !ok || got != moved {
		t.Fatal("a replaced (moved) API integration lost what it had staged")
	}
}

func TestTargetIDCarriesTheIncarnation(t *testing.T) {
	cfg := config.Default()
	in := config.DefaultIntegration()
	in.Name, in.ClientID, in.Region, in.Bucket = "api1", 2, "us-east-1", "b"
	file := targetID(&cfg, in)
	in.Incarnation = "1733390000000"
	api := targetID(&cfg, in)
	if k, _ := IntegrationKey(api); k != "api1~1733390000000:2" || file == api {
		t.Fatalf("target IDs %s (file) and %s (API): want the incarnation in the API one's name part", file, api)
	}
}
