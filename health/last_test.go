package health_test

import (
	"testing"
	"time"

	"hitship/health"
	"hitship/internal/testenv"
)

// TestNoteKeepsTheNewest: the latest success and the latest failure, with
// its class and plain words, are kept apart; an older note changes neither;
// ForgetLast removes them.
func TestNoteKeepsTheNewest(t *testing.T) {
	r := testenv.MustRedis(t, testenv.RedisOptions{})
	l, err := health.New(r.Client(), health.Config{Prefix: "t:"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	t0 := time.Date(2026, 12, 5, 9, 12, 0, 0, time.UTC)
	if err := l.Note(ctx, "acme", health.Success, t0, "", "", ""); err != nil {
		t.Fatal(err)
	}
	if err := l.Note(ctx, "acme", health.FailCustomer, t0.Add(time.Minute), "access_denied", "S3 answered AccessDenied", "grant s3:PutObject"); err != nil {
		t.Fatal(err)
	}
	if err := l.Note(ctx, "acme", health.FailProvider, t0.Add(-time.Hour), "server_error", "older", ""); err != nil {
		t.Fatal(err)
	}
	if err := l.Note(ctx, "acme", health.Success, t0.Add(-time.Hour), "", "", ""); err != nil {
		t.Fatal(err)
	}
	last, err := l.Last(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if !last.SuccessAt.Equal(t0) || last.Error == nil || !last.Error.At.Equal(t0.Add(time.Minute)) || last.Error.Class != "customer" ||
		last.Error.Problem != "access_denied" || last.Error.Fix != "grant s3:PutObject" {
		t.Fatalf("last %+v (error %+v)", last, last.Error)
	}
	if err := l.ForgetLast(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if last, err := l.Last(ctx, "acme"); err != nil || !last.SuccessAt.IsZero() || last.Error != nil {
		t.Fatalf("after ForgetLast: %+v, %v", last, err)
	}
}

// TestDeliveredInHour: objects and hits delivered count in the hour they
// fall in, a minute's slot reused an hour later starts afresh, other
// integrations' deliveries are theirs, and ForgetLast removes the counts.
func TestDeliveredInHour(t *testing.T) {
	r := testenv.MustRedis(t, testenv.RedisOptions{})
	l, err := health.New(r.Client(), health.Config{Prefix: "t:"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	t0 := time.Date(2026, 12, 5, 9, 12, 30, 0, time.UTC)
	for _, d := range []struct {
		name string
		hits int
		at   time.Time
	}{
		{"acme", 100, t0.Add(-2 * time.Hour)},                 // two hours ago: out of the hour
		{"acme", 7, t0.Add(-64*time.Minute + 10*time.Second)}, // same slot as t0: reset by t0's
		{"acme", 5, t0.Add(-59 * time.Minute)},
		{"acme", 10, t0.Add(-30 * time.Minute)},
		{"acme", 20, t0},
		{"acme", 1, t0},
		{"globex", 1000, t0},
	} {
		if err := l.Delivered(ctx, d.name, d.hits, d.at); err != nil {
			t.Fatal(err)
		}
	}
	last, err := l.Last(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		now  time.Time
		want health.Delivered
	}{
		{name: "now", now: t0, want: health.Delivered{Objects: 4, Hits: 36}},
		{name: "a minute later the oldest minute left", now: t0.Add(time.Minute), want: health.Delivered{Objects: 3, Hits: 31}},
		{name: "half an hour later", now: t0.Add(31 * time.Minute), want: health.Delivered{Objects: 2, Hits: 21}},
		{name: "two hours later", now: t0.Add(2 * time.Hour), want: health.Delivered{}},
		{name: "before any", now: t0.Add(-3 * time.Hour), want: health.Delivered{}},
	}
	for _, tc := range cases {
		if got := last.DeliveredInHour(tc.now); got != tc.want {
			t.Errorf("%s: DeliveredInHour = %+v, want %+v", tc.name, got, tc.want)
		}
	}
	if err := l.Delivered(ctx, "acme", -1, t0); !health.IsInvalid(err) {
		t.Errorf("Delivered(-1 hits) = %v, want invalid", err)
	}
	if err := l.ForgetLast(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if last, err := l.Last(ctx, "acme"); err != nil || last.DeliveredInHour(t0) != (health.Delivered{}) {
		t.Errorf("after ForgetLast: %+v, %v", last.DeliveredInHour(t0), err)
	}
}
