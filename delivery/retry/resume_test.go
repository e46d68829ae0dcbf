package retry

import (
	"testing"
	"time"
)

func TestResumeInline(t *testing.T) {
	// Cycle 1 attempts at 0, 1, 4, 9, 19, 29 s after the first.
	tests := []struct {
		name    string
		elapsed time.Duration
		want    Position
	}{
		{name: "nothing elapsed", elapsed: 0, want: First},
		{name: "between the first and second", elapsed: 500 * time.Millisecond, want: Position{1, 2}},
		{name: "exactly at the second", elapsed: time.Second, want: Position{1, 2}},
		{name: "just after the third", elapsed: 4*time.Second + time.Millisecond, want: Position{1, 4}},
		{name: "before the last", elapsed: 25 * time.Second, want: Position{1, 6}},
		{name: "all due", elapsed: 29 * time.Second, want: Position{1, 6}},
		{name: "long over", elapsed: time.Hour, want: Position{1, 6}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ResumeInline(tc.elapsed); got != tc.want {
				t.Fatalf("ResumeInline(%s) = %s, want %s", tc.elapsed, got, tc.want)
			}
		})
	}
}

func TestInlineFailure(t *testing.T) {
	ctx := t.Context()
	q, _ := newQueue(t, false)
	if _, ok, err := q.InlineFailure(ctx, "acme/k"); err != nil || ok {
		t.Fatalf("InlineFailure before any = %v, %v", ok, err)
	}
	first, err := q.NoteInlineFailure(ctx, "acme/k", t0)
	if err != nil || !first.Equal(t0) {
		t.Fatalf("NoteInlineFailure = %v, %v; want %v", first, err, t0)
	}
	// A later failure (another owner) keeps the first time.
	if again, err := q.NoteInlineFailure(ctx, "acme/k", t0.Add(10*time.Second)); err != nil || !again.Equal(t0) {
		t.Fatalf("second NoteInlineFailure = %v, %v; want %v", again, err, t0)
	}
	if got, ok, err := q.InlineFailure(ctx, "acme/k"); err != nil || !ok || !got.Equal(t0) {
		t.Fatalf("InlineFailure = %v, %v, %v; want %v", got, ok, err, t0)
	}
	if err := q.ForgetInlineFailure(ctx, "acme/k"); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := q.InlineFailure(ctx, "acme/k"); err != nil || ok {
		t.Fatalf("InlineFailure after Forget = %v, %v", ok, err)
	}
}
