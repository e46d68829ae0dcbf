package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/segmentio/kafka-go"

	"hitship/hitgen"
)

// genOptions is `hitship gen`.
type genOptions struct {
	config    string
	brokers   string
	topic     string
	rate      float64
	count     int64
	duration  time.Duration
	tenants   int
	firstID   int64
	late      float64
	malformed float64
	seed      uint64
	inBody    bool
	noHeader  bool
	retryFor  time.Duration
}

func (o *genOptions) flags(fs *flag.FlagSet) {
	fs.StringVar(&o.config, "config", "", "take the brokers, SASL, TLS and client id (and the topic, unless -topic) from this config file's kafka section, as the service connects")
	fs.StringVar(&o.brokers, "brokers", "localhost:9092", "comma-separated Kafka bootstrap brokers (with -config: kafka.brokers unless given)")
	fs.StringVar(&o.topic, "topic", "hits", "topic to produce to (with -config: kafka.topic unless given)")
	fs.Float64Var(&o.rate, "rate", 1000, "hits per second (0: as fast as possible)")
	fs.Int64Var(&o.count, "count", 0, "stop after this many records (0: no limit)")
	fs.DurationVar(&o.duration, "duration", 0, "stop after this long (0: no limit)")
	fs.IntVar(&o.tenants, "tenants", 2, "number of tenants (client ids first-id..first-id+tenants-1)")
	fs.Int64Var(&o.firstID, "first-id", 1, "first client id")
	fs.Float64Var(&o.late, "late", 0, "share of late hits (0..1): time 15 minutes in the past")
	fs.Float64Var(&o.malformed, "malformed", 0, "share of malformed records (0..1)")
	fs.Uint64Var(&o.seed, "seed", uint64(time.Now().UnixNano()), "random seed")
	fs.BoolVar(&o.inBody, "client-id-field", false, `also write "client_id" into each hit`)
	fs.BoolVar(&o.noHeader, "no-header", false, "do not set the client_id header (tenant only in the body)")
	fs.DurationVar(&o.retryFor, "retry-for", 0, "keep retrying a batch the broker refused for up to this long (0: stop at the first error); a retried record may be written twice")
}

func (o *genOptions) validate() error {
	var errs []error
	if o.topic == "" {
		errs = append(errs, errors.New("-topic: set the topic to produce to"))
	}
	if o.rate < 0 {
		errs = append(errs, errors.New("-rate: must be >= 0"))
	}
	if o.tenants < 1 {
		errs = append(errs, errors.New("-tenants: must be >= 1"))
	}
	if o.late < 0 || o.malformed < 0 || o.late+o.malformed > 1 {
		errs = append(errs, errors.New("-late, -malformed: shares between 0 and 1 whose sum is at most 1"))
	}
	if o.retryFor < 0 {
		errs = append(errs, errors.New("-retry-for: must be >= 0"))
	}
	if o.noHeader && !o.inBody {
		errs = append(errs, errors.New("-no-header needs -client-id-field, or records would have no tenant"))
	}
	return errors.Join(errs...)
}

// generate produces hits until ctx ends or a limit is reached, and reports counts.
func generate(ctx context.Context, o genOptions, w *kafka.Writer, out io.Writer) error {
	g := hitgen.New(hitgen.Config{Seed: o.seed, Tenants: o.tenants, FirstID: o.firstID,
		LateShare: o.late, BadShare: o.malformed, ClientIDInBody: o.inBody || o.noHeader})
	const batch = 500
	msgs := make([]kafka.Message, 0, batch)
	var kinds [3]int64
	start := time.Now()
	var total int64
	var deadline time.Time
	if o.duration > 0 {
		deadline = start.Add(o.duration)
	}
	for {
		if ctx.Err() != nil || (o.count > 0 && total >= o.count) || (!deadline.IsZero() && time.Now().After(deadline)) {
			break
		}
		n := batch
		if o.rate > 0 {
			// Produce what the rate allows by now, in small batches.
			due := int64(o.rate*time.Since(start).Seconds()) - total
			if due <= 0 {
				if !sleepCtx(ctx, 5*time.Millisecond) {
					break
				}
				continue
			}
			n = int(min(due, batch))
		}
		if o.count > 0 {
			n = int(min(int64(n), o.count-total))
		}
		msgs = msgs[:0]
		now := time.Now()
		for range n {
			r := g.Next(now.Unix())
			kinds[r.Kind]++
			m := kafka.Message{Key: r.Key, Value: r.Value, Time: now}
			if !o.noHeader {
				m.Headers = []kafka.Header{{Key: "client_id", Value: []byte(strconv.FormatInt(r.ClientID, 10))}}
			}
			msgs = append(msgs, m)
		}
		if err := writeRetrying(ctx, w, msgs, o.retryFor); err != nil {
			if ctx.Err() != nil {
				break
			}
			return fmt.Errorf("produce to %s: %w", o.topic, err)
		}
		total += int64(n)
	}
	el := time.Since(start)
	fmt.Fprintf(out, "produced %d records to %s in %s (%.0f/s): %d hits, %d late, %d malformed\n",
		total, o.topic, el.Round(time.Millisecond), float64(total)/max(el.Seconds(), 1e-9), kinds[hitgen.Good], kinds[hitgen.Late], kinds[hitgen.Malformed])
	return nil
}

// writeRetrying writes msgs; while the broker refuses some of them (an outage),
// it writes the refused ones again until retryFor has passed since the first
// failure. kafka-go's writer is not idempotent: a batch whose acknowledgement
// was lost is written twice (at-least-once, as any plain producer).
func writeRetrying(ctx context.Context, w *kafka.Writer, msgs []kafka.Message, retryFor time.Duration) error {
	var giveUp time.Time
	for {
		err := w.WriteMessages(ctx, msgs...)
		if err == nil || retryFor <= 0 || ctx.Err() != nil {
			return err
		}
		if giveUp.IsZero() {
			giveUp = time.Now().Add(retryFor)
		} else if time.Now().After(giveUp) {
			return err
		}
		var werrs kafka.WriteErrors
		if errors.As(err, &werrs) && len(werrs) == len(msgs) {
			failed := make([]kafka.Message, 0, werrs.Count())
			for i, e := range werrs {
				if e != nil {
					failed = append(failed, msgs[i])
				}
			}
			msgs = failed
		}
		if !sleepCtx(ctx, 200*time.Millisecond) {
			return ctx.Err()
		}
	}
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
