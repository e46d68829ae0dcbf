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
