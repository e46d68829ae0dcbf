package main

import (
	"context"
	"io"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"hitship/internal/testenv"
)

// TestGenRetryFor: with -retry-for, gen writes through a broker outage that
// outlasts kafka-go's own attempts and produces every record; without it, the
// outage ends the run with an error.
func TestGenRetryFor(t *testing.T) {
	tests := []struct {
		name     string
		retryFor time.Duration
		wantErr  bool
	}{
		{name: "retries through the outage", retryFor: time.Minute},
		{name: "stops at the first error", retryFor: 0, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := testenv.MustKafka(t, testenv.KafkaOptions{Partitions: 2, Topics: []string{"hits"}})
			tr := &kafka.Transport{DialTimeout: 500 * time.Millisecond, IdleTimeout: time.Second, MetadataTTL: 100 * time.Millisecond}
			defer tr.CloseIdleConnections()
			w := &kafka.Writer{Addr: kafka.TCP(k.Addrs()...), Topic: "hits", Balancer: &kafka.Hash{}, BatchTimeout: 2e6,
				BatchSize: 500, RequiredAcks: kafka.RequireAll, MaxAttempts: 2, WriteBackoffMax: 50 * time.Millisecond, Transport: tr}
			defer w.Close()
			k.Cut()
			restored := make(chan struct{})
			go func() {
				defer close(restored)
				if tt.retryFor > 0 {
					// Restore once gen has failed at least one write (the
					// outage outlasts the writer's own two attempts).
					time.Sleep(1500 * time.Millisecond)
					k.Restore()
				}
			}()
			defer func() { <-restored }()
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			o := genOptions{topic: "hits", count: 1200, tenants: 3, seed: 1, retryFor: tt.retryFor}
			err := generate(ctx, o, w, io.Discard)
			if (err != nil) != tt.wantErr {
				t.Fatalf("generate() = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			hw, err := k.HighWater(ctx, "hits")
			if err != nil {
				t.Fatal(err)
			}
			var n int64
			for _, h := range hw {
				n += h
			}
			// At least once: a batch whose acknowledgement was lost is written again.
			if n < o.count {
				t.Fatalf("%d records in the topic, want at least %d", n, o.count)
			}
		})
	}
}
