package window_test

import (
	"math"
	"testing"

	"hitship/window"
)

func TestStart(t *testing.T) {
	tests := []struct {
		name     string
		ts, size int64
		want     int64
	}{
		{"zero", 0, 600_000, 0},
		{"inside first window", 599_999, 600_000, 0},
		{"on a boundary", 600_000, 600_000, 600_000},
		{"real time", 1_687_241_470_000, 600_000, 1_687_241_400_000},
		{"minus one", -1, 600_000, -600_000},
		{"negative boundary", -600_000, 600_000, -600_000},
		{"negative inside", -600_001, 600_000, -1_200_000},
		{"size one", -7, 1, -7},
		{"lowest clamped timestamp", window.MinTimestamp, 600_000, window.MinTimestamp - 600_000 + ((-window.MinTimestamp) % 600_000)},
		{"size zero returns ts", 42, 0, 42},
		{"negative size returns ts", 42, -5, 42},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := window.Start(tt.ts, tt.size)
			if got != tt.want {
				t.Fatalf("Start(%d, %d) = %d, want %d", tt.ts, tt.size, got, tt.want)
			}
			if tt.size > 0 && (got > tt.ts || tt.ts-got >= tt.size || got%tt.size != 0) {
				t.Fatalf("Start(%d, %d) = %d is not the window start", tt.ts, tt.size, got)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     window.Config
		wantErr bool
	}{
		{"defaults", window.DefaultConfig(), false},
		{"zero grace and skew", window.Config{Size: 1}, false},
		{"zero size", window.Config{Size: 0}, true},
		{"negative size", window.Config{Size: -1}, true},
		{"huge size", window.Config{Size: math.MaxInt64}, true},
		{"negative grace", window.Config{Size: 10, Grace: -1}, true},
		{"negative skew", window.Config{Size: 10, MaxFutureSkew: -1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Validate() = %v, want error %t", err, tt.wantErr)
			}
			if err != nil && !window.IsInvalidConfig(err) {
				t.Fatalf("error %v is not classified as invalid config", err)
			}
			if _, err := window.NewPartition(tt.cfg); (err != nil) != tt.wantErr || (err != nil && !window.IsInvalidConfig(err)) {
				t.Fatalf("NewPartition() = %v, want error %t", err, tt.wantErr)
			}
		})
	}
}

func TestTimestamp(t *testing.T) {
	ev := window.Config{Size: 600_000, MaxFutureSkew: 300_000}
	rec := ev
	rec.UseRecordTime = true
	tests := []struct {
		name                  string
		cfg                   window.Config
		event                 int64
		hasEvent              bool
		record                int64
		want                  int64
		wantFallback, wantClp bool
	}{
		{"event time", ev, 1_000, true, 5_000, 1_000, false, false},
		{"event time in the past", ev, -1_000_000, true, 5_000, -1_000_000, false, false},
		{"event ahead within skew", ev, 305_000, true, 5_000, 305_000, false, false},
		{"event ahead past skew clamped", ev, 305_001, true, 5_000, 5_000, false, true},
		{"no event time falls back", ev, 0, false, 5_000, 5_000, true, false},
		{"record mode ignores event", rec, 1_000, true, 5_000, 5_000, false, false},
		{"record mode without event", rec, 0, false, 5_000, 5_000, false, false},
		{"no overflow near max", ev, math.MaxInt64, true, math.MaxInt64 - 10, math.MaxInt64, false, false},
		{"no overflow near min", ev, math.MaxInt64, true, math.MinInt64, math.MinInt64, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts, fb, cl := tt.cfg.Timestamp(tt.event, tt.hasEvent, tt.record)
			if ts != tt.want || fb != tt.wantFallback || cl != tt.wantClp {
				t.Fatalf("Timestamp() = (%d, %t, %t), want (%d, %t, %t)", ts, fb, cl, tt.want, tt.wantFallback, tt.wantClp)
			}
		})
	}
}

func TestLateCloseAt(t *testing.T) {
	cfg := window.Config{Size: 100}
	tests := []struct {
		name string
		w    int64
		want int64
	}{
		{"inside a window", 250, 300},
		{"on a boundary is strictly greater", 300, 400},
		{"negative", -150, -100},
		{"no watermark does not overflow", math.MinInt64, window.Start(window.MinTimestamp-(1<<53), 100) + 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cfg.LateCloseAt(tt.w); got != tt.want {
				t.Fatalf("LateCloseAt(%d) = %d, want %d", tt.w, got, tt.want)
			}
		})
	}
}
