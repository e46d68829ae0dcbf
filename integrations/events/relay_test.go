package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"hitship/integrations/events"
	"hitship/integrations/registry"
	"hitship/internal/testenv"
	"hitship/state"
)

const topic = "hitship-events"

type failing struct{ err error }

func (f failing) WriteMessages(context.Context, ...kafka.Message) error { return f.err }

// TestRelayPublishesEachEventOnceInOrder: the changes recorded in Redis reach
// the events topic in order under the product's names; a second replica's
// relay sends nothing while the first holds the lease; a write the topic
// refused is sent again at the next step, and nothing twice.
func TestRelayPublishesEachEventOnceInOrder(t *testing.T) {
	k := testenv.MustKafka(t, testenv.KafkaOptions{Topics: []string{topic}})
	r := testenv.MustRedis(t, testenv.RedisOptions{})
	ctx := t.Context()
	reg, err := registry.New(r.Client(), "t:", time.Now)
	if err != nil {
		t.Fatal(err)
	}
	w := &kafka.Writer{Addr: kafka.TCP(k.Addrs()...), Topic: topic, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
	t.Cleanup(func() { _ = w.Close() })
	lease, cursor := state.EventRelayKeys("t:")
	relay := func(wr events.Writer) *events.Relay {
		rl, err := events.New(events.Config{Registry: reg, Redis: r.Client(), Lease: lease, Cursor: cursor, Writer: wr})
		if err != nil {
			t.Fatal(err)
		}
		return rl
	}
	a := relay(w)
	if _, err := reg.Record(ctx, registry.CreateEventType, "acme", "", "admin-api@x"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := reg.Disable(ctx, "acme", "customer asked", "admin-api@x"); err != nil {
		t.Fatal(err)
	}
	// The topic refuses the first write: nothing is noted as sent.
	if err := relay(failing{errors.New("NOT_ENOUGH_REPLICAS")}).Step(ctx); err == nil {
		t.Fatal("a refused write was not reported")
	}
	_ = r.Client().Del(ctx, lease) // that relay died; its lease lapsed
	if err := a.Step(ctx); err != nil {
		t.Fatal(err)
	}
	if _, _, err := reg.Enable(ctx, "acme", "admin-api@x"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := reg.AutoDisable(ctx, "acme", "60% of attempts failed", "health"); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Record(ctx, registry.UpdateEventType, "acme", "", "admin-api@y"); err != nil {
		t.Fatal(err)
	}
	if err := relay(w).Step(ctx); err != nil { // another replica: a holds the lease
		t.Fatal(err)
	}
	if err := a.Step(ctx); err != nil {
		t.Fatal(err)
	}

	rd := kafka.NewReader(kafka.ReaderConfig{Brokers: k.Addrs(), Topic: topic, MaxWait: 200 * time.Millisecond})
	t.Cleanup(func() { _ = rd.Close() })
	var got []string
	ids := map[string]bool{}
	rctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	for {
		m, err := rd.ReadMessage(rctx)
		if err != nil {
			break
		}
		var ev struct{ ID, Type, Integration, Reason, By, At string }
		if err := json.Unmarshal(m.Value, &ev); err != nil || string(m.Key) != "acme" || ev.At == "" {
			t.Fatalf("record %s: %s (%v)", m.Key, m.Value, err)
		}
		if ids[ev.ID] {
			t.Fatalf("event %s sent twice", ev.ID)
		}
		ids[ev.ID] = true
		got = append(got, ev.Type)
	}
	want := []string{"create_integration", "disable_integration", "enable_integration", "integration_broken", "update_integration"}
	if !slices.Equal(got, want) {
		t.Fatalf("events on the topic %v, want %v", got, want)
	}
}
