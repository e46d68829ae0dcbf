package main

import (
	"bytes"
	"testing"
	"time"
)

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 1, 2, 15, 4, 5, 0, time.UTC)
	tests := []struct {
		name    string
		in      string
		want    time.Time
		wantErr bool
	}{
		{name: "empty: every dead letter", in: "", want: time.Time{}},
		{name: "RFC 3339", in: "2026-01-01T00:00:00Z", want: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		{name: "duration before now", in: "24h", want: now.Add(-24 * time.Hour)},
		{name: "negative duration", in: "-1h", wantErr: true},
		{name: "garbage", in: "yesterday", wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSince(tc.in, now)
			if (err != nil) != tc.wantErr || !got.Equal(tc.want) {
				t.Errorf("parseSince(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.wantErr)
			}
		})
	}
}

func TestRedeliverUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want int
	}{
		{name: "no config", args: []string{"redeliver"}, want: 2},
		{name: "bad since", args: []string{"redeliver", "--since", "soon", "--config", "x.yaml"}, want: 2},
		{name: "missing config file", args: []string{"redeliver", "--config", "/nonexistent/hitship.yaml"}, want: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if got := run(tc.args, &out, &errb); got != tc.want {
				t.Errorf("exit %d; want %d (stderr %q)", got, tc.want, errb.String())
			}
		})
	}
}
