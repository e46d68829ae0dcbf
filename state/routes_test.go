package state

import (
	"reflect"
	"testing"
)

// TestRouteSets: a route set reads back as written, an empty one too; a
// missing one is not found; bad ids and members are refused.
func TestRouteSets(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := ctxT(t)
	if err := s.SaveRouteSet(ctx, "abc", []string{"a:1:00", "b:2:00"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveRouteSet(ctx, "none", nil); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.LoadRouteSet(ctx, "abc")
	if err != nil || !ok || !reflect.DeepEqual(got, []string{"a:1:00", "b:2:00"}) {
		t.Fatalf("LoadRouteSet = %v %v %v", got, ok, err)
	}
	if got, ok, err := s.LoadRouteSet(ctx, "none"); err != nil || !ok || len(got) != 0 {
		t.Fatalf("empty set = %v %v %v", got, ok, err)
	}
	if _, ok, err := s.LoadRouteSet(ctx, "missing"); err != nil || ok {
		t.Fatalf("missing set found: %v %v", ok, err)
	}
	if err := s.SaveRouteSet(ctx, "a{b}", nil); err == nil {
		t.Fatal("id with braces accepted")
	}
	if err := s.SaveRouteSet(ctx, "x", []string{"a\nb"}); err == nil {
		t.Fatal("member with a newline accepted")
	}
}

// TestRouteLog: entries are fenced like idle closes, ordered by offset, an
// entry at an offset replaces an earlier one there, and Prune keeps the
// latest entry at or below the committed offset.
func TestRouteLog(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := ctxT(t)
	o := Owner{2, "a"}
	if err := s.Claim(ctx, topic, 0, o); err != nil {
		t.Fatal(err)
	}
	for _, e := range []RouteEntry{{0, "s1"}, {10, "s2"}, {20, "s3"}, {20, "s4"}, {35, "s5"}} {
		if err := s.RecordRoute(ctx, topic, 0, o, e); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.RecordRoute(ctx, topic, 0, Owner{1, "old"}, RouteEntry{40, "s9"}); !IsFenced(err) {
		t.Fatalf("a zombie's routing change: %v, want fenced", err)
	}
	if err := s.RecordRoute(ctx, topic, 0, Owner{2, "b"}, RouteEntry{40, "s9"}); !IsFenced(err) {
		t.Fatalf("another member's routing change: %v, want fenced", err)
	}
	log, err := s.RouteLog(ctx, topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []RouteEntry{{0, "s1"}, {10, "s2"}, {20, "s4"}, {35, "s5"}}
	if !reflect.DeepEqual(log, want) {
		t.Fatalf("log %v, want %v", log, want)
	}
	for _, tt := range []struct {
		committed int64
		want      []RouteEntry
	}{
		{5, []RouteEntry{{0, "s1"}, {10, "s2"}, {20, "s4"}, {35, "s5"}}},
		{25, []RouteEntry{{20, "s4"}, {35, "s5"}}},
		{35, []RouteEntry{{35, "s5"}}},
		{1000, []RouteEntry{{35, "s5"}}},
	} {
		if err := s.Prune(ctx, topic, 0, tt.committed); err != nil {
			t.Fatal(err)
		}
		if log, err = s.RouteLog(ctx, topic, 0); err != nil || !reflect.DeepEqual(log, tt.want) {
			t.Fatalf("after Prune(%d): %v (%v), want %v", tt.committed, log, err, tt.want)
		}
	}
	if err := s.RecordRoute(ctx, topic, 0, o, RouteEntry{-1, "s"}); err == nil {
		t.Fatal("negative offset accepted")
	}
}
