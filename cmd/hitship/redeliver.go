package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"hitship/delivery"
	"hitship/service"
)

// parseSince reads --since: an RFC 3339 time, or a duration meaning that long
// before now ("24h"). "" is the zero time (every dead letter).
func parseSince(s string, now time.Time) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return time.Time{}, fmt.Errorf("--since %q: want an RFC 3339 time such as 2026-01-02T15:04:05Z or a duration such as 24h", s)
	}
	return now.Add(-d), nil
}

// cmdRedeliver queues dead letters again (after the customer fixed the bucket).
func cmdRedeliver(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("redeliver", "redeliver --config FILE [--integration NAME] [--since T]")
	integration := fs.String("integration", "", "only this integration's dead letters (default: all)")
	since := fs.String("since", "", "only dead letters from this time on (RFC 3339, or a duration before now such as 24h)")
	cfgPath := fs.String("config", "", "config file (required)")
	pos, code, ok := parseFlags(fs, args, stdout, stderr)
	if !ok {
		return code
	}
	if *cfgPath == "" || len(pos) != 0 {
		fmt.Fprintln(stderr, "usage: hitship redeliver [--integration NAME] [--since T] --config FILE")
		return 2
	}
	now := time.Now()
	from, err := parseSince(*since, now)
	if err != nil {
		fmt.Fprintf(stderr, "hitship: %v\n", err)
		return 2
	}
	cfg, ok := loadConfig(*cfgPath, stderr)
	if !ok {
		return 1
	}
	if *integration != "" {
		// A mistyped name would match no dead letter and report success.
		if err := service.CheckIntegration(cfg, *integration); err != nil {
			fmt.Fprintf(stderr, "hitship redeliver: --integration: %v\n", err)
			return 1
		}
	}
	if !cfg.Parking.Enabled() {
		fmt.Fprintln(stderr, "hitship: no parking bucket configured (parking.bucket): there are no dead letters")
		return 1
	}
	rdb, err := service.NewRedisClient(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "hitship: %v\n", err)
		return 1
	}
	defer func() { _ = rdb.Close() }()
	st, err := service.NewParkingStore(ctx, cfg)
	if err != nil {
		fmt.Fprintf(stderr, "hitship: %v\n", err)
		return 1
	}
	q, err := service.NewRetryQueue(cfg, rdb)
	if err != nil {
		fmt.Fprintf(stderr, "hitship: %v\n", err)
		return 1
	}
	n, err := delivery.Redeliver(ctx, st, q, *integration, from, now)
	if err != nil {
		fmt.Fprintf(stderr, "hitship: redeliver: %d requeued before: %v\n", n, err)
		return 1
	}
	fmt.Fprintf(stdout, "%d dead letter(s) queued for delivery\n", n)
	return 0
}
