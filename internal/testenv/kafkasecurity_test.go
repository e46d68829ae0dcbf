package testenv

import (
	"context"
	"crypto/tls"
	"errors"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"hitship/internal/embedded"
)

// TestKafkaSecurity: a broker that requires SASL (each mechanism), TLS or
// mutual TLS refuses a client without the credentials, while the helpers
// (Produce, ReadAll, Committed, Commit) work through them.
func TestKafkaSecurity(t *testing.T) {
	certs := MustCerts(t)
	sasl := func(mech string) *embedded.KafkaSASL {
		return &embedded.KafkaSASL{Mechanism: mech, User: "hitship", Password: "pw-" + mech}
	}
	tests := []struct {
		name string
		opts KafkaOptions
	}{
		{name: "SASL PLAIN", opts: KafkaOptions{SASL: sasl(embedded.SASLPlain)}},
		{name: "SASL SCRAM-SHA-256", opts: KafkaOptions{SASL: sasl(embedded.SASLScramSHA256)}},
		{name: "SASL SCRAM-SHA-512", opts: KafkaOptions{SASL: sasl(embedded.SASLScramSHA512)}},
		{name: "TLS", opts: KafkaOptions{TLS: certs.ServerTLS(false), ClientTLS: certs.ClientTLS(false)}},
		{name: "mutual TLS", opts: KafkaOptions{TLS: certs.ServerTLS(true), ClientTLS: certs.ClientTLS(true)}},
		{name: "SCRAM over mutual TLS", opts: KafkaOptions{SASL: sasl(embedded.SASLScramSHA512), TLS: certs.ServerTLS(true), ClientTLS: certs.ClientTLS(true)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			tt.opts.Topics = []string{"hits"}
			k := MustKafka(t, tt.opts)
			if err := k.Produce(ctx, "hits", msgs(0, 3, "n")); err != nil {
				t.Fatal(err)
			}
			got, err := k.ReadAll(ctx, "hits")
			if err != nil || len(got) != 3 {
				t.Fatalf("ReadAll = %d records, %v; want 3", len(got), err)
			}
			if err := k.Commit(ctx, "g", "hits", 0, 2); err != nil {
				t.Fatal(err)
			}
			if c, err := k.Committed(ctx, "g", "hits"); err != nil || c[0] != 2 {
				t.Fatalf("Committed = %v, %v; want partition 0 at 2", c, err)
			}

			// Without the credentials (no SASL, no client certificate, or
			// no TLS at all) the broker answers nothing useful.
			var tc *tls.Config
			if tt.opts.TLS != nil {
				tc = certs.ClientTLS(false)
				if tt.opts.TLS.ClientAuth != tls.RequireAndVerifyClientCert && tt.opts.SASL == nil {
					tc = nil // TLS without SASL or mTLS: a plain-text client is the one refused
				}
			}
			tr := &kafka.Transport{DialTimeout: 2 * time.Second, IdleTimeout: time.Second, MetadataTTL: 2 * time.Second, TLS: tc}
			defer tr.CloseIdleConnections()
			bctx, bcancel := context.WithTimeout(ctx, 5*time.Second)
			defer bcancel()
			_, err = (&kafka.Client{Addr: kafka.TCP(k.Addrs()...), Transport: tr, Timeout: 5 * time.Second}).
				Metadata(bctx, &kafka.MetadataRequest{Topics: []string{"hits"}})
			if err == nil {
				t.Fatal("a client without the credentials read the metadata")
			}
			if errors.Is(err, context.DeadlineExceeded) && bctx.Err() != nil {
				t.Logf("refused client: timed out (%v)", err)
			} else {
				t.Logf("refused client: %v", err)
			}
		})
	}
}
