package integrations

import "testing"

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
