package consumer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"hitship/internal/testenv"
)

const fetchTopic = "fetch"

// fetchWorld is a broker with a 2-partition topic; partition 0 holds n records
// whose value and client_id header name their offset.
func fetchWorld(t *testing.T, n int) *testenv.Kafka {
	t.Helper()
	k, err := testenv.StartKafka(testenv.KafkaOptions{Partitions: 2, Topics: []string{fetchTopic}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(k.Close)
	produceN(t, k, 0, n)
	return k
}

// produceN appends n records to partition 0, numbered from `from`, in record
// batches of 50 (a fetch returns whole batches: one big batch would come in
// one fetch whatever its size limit).
func produceN(t *testing.T, k *testenv.Kafka, from, n int) {
	t.Helper()
	for lo := from; lo < from+n; lo += 50 {
		msgs := make([]kafka.Message, 0, 50)
		for i := lo; i < min(lo+50, from+n); i++ {
			msgs = append(msgs, kafka.Message{Partition: 0, Value: []byte(fmt.Sprintf(`{"n":%d,"pad":"%0200d"}`, i, i)),
				Headers: []kafka.Header{{Key: "client_id", Value: []byte(strconv.Itoa(i))}}})
		}
		if err := k.Produce(t.Context(), fetchTopic, msgs); err != nil {
			t.Fatal(err)
		}
	}
}

func newTestFetcher(k *testenv.Kafka, offset int64, maxBytes int) *fetcher {
	return newFetcher(&kafka.Dialer{Timeout: 2 * time.Second}, k.Addrs(), fetchTopic, 0, offset, maxBytes, 200*time.Millisecond,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
}

// readUpTo reads until the record at offset `to` (exclusive), retrying errors
// as the worker's fetch loop does, and checks that the records come in order
// without gaps or repeats, starting at `from`, with their headers.
func readUpTo(t *testing.T, f *fetcher, from, to int64, onRead func(off int64)) (errs int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	want := from
	for want < to {
		m, err := f.next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				t.Fatalf("at offset %d: %v", want, err)
			}
			errs++
			if errs <= 10 {
				t.Logf("next: %v", err)
			}
			continue
		}
		if m.Offset != want {
			t.Fatalf("read offset %d, want %d", m.Offset, want)
		}
		if wantV := fmt.Sprintf(`{"n":%d,`, want); string(m.Value[:len(wantV)]) != wantV {
			t.Fatalf("offset %d: value %q", want, m.Value)
		}
		if c, ok := headerClientID(m.Headers); !ok && want > 0 || ok && c != want {
			t.Fatalf("offset %d: client_id header %d (%v)", want, c, ok)
		}
		if m.HighWaterMark <= m.Offset {
			t.Fatalf("offset %d: high-water mark %d", want, m.HighWaterMark)
		}
		want++
		if onRead != nil {
			onRead(m.Offset)
		}
	}
	return errs
}

// TestFetcherReadsInOrder: from the start (nothing committed) and from an
// offset, in one batch or many small ones (each fetch cut short by max bytes).
func TestFetcherReadsInOrder(t *testing.T) {
	k := fetchWorld(t, 2000)
	for _, tc := range []struct {
		name     string
		from     int64
		maxBytes int
	}{
		{"first offset, big fetches", -1, 4 << 20},
		{"from 1234, big fetches", 1234, 4 << 20},
		{"first offset, fetches of 3 KiB", -1, 3 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newTestFetcher(k, tc.from, tc.maxBytes)
			defer f.close()
			if errs := readUpTo(t, f, max(tc.from, 0), 2000, nil); errs != 0 {
				t.Fatalf("%d errors on a healthy broker", errs)
			}
		})
	}
}

// TestFetcherBrokerErrors: a leader change and broker time-outs answered to
// fetches, and the broker's connections cut twice mid-read: every record
// still comes once, in order.
func TestFetcherBrokerErrors(t *testing.T) {
	k := fetchWorld(t, 3000)
	fh := k.Cluster().Fault(
		kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Topic: fetchTopic, Err: kerr.NotLeaderForPartition, Count: 2},
		kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch}, Topic: fetchTopic, Err: kerr.RequestTimedOut, Count: 2},
	)
	defer fh.Remove()
	f := newTestFetcher(k, -1, 8<<10)
	defer f.close()
	cut := func(at int64) func(int64) {
		return func(off int64) {
			if off == at || off == at+1000 {
				k.Cut()
				time.AfterFunc(300*time.Millisecond, k.Restore)
			}
		}
	}
	// Two leader changes and at least one failed read per cut (the broker's
	// time-outs are retried quietly).
	if errs := readUpTo(t, f, 0, 3000, cut(700)); errs < 4 {
		t.Fatalf("%d errors surfaced, want at least 4: the faults or cuts did not happen", errs)
	}
}

// TestFetcherRetention: the committed offset's records were deleted by
// retention: the fetcher moves up to the first offset (and says so) instead of
// stopping the partition.
func TestFetcherRetention(t *testing.T) {
	k := fetchWorld(t, 500)
	if err := k.Cluster().DeleteRecords(fetchTopic, 0, 200); err != nil {
		t.Fatal(err)
	}
	f := newTestFetcher(k, 50, 4<<20)
	defer f.close()
	readUpTo(t, f, 200, 500, nil)
}

// TestFetcherPastEnd: an offset beyond the end of the partition is a
// *truncatedError naming where reading should resume (the log start without a
// reference time, the first record written after it with one); the fetcher
// itself does not move (the worker drops its state first, truncate.go), and
// once records reach the offset reading goes on from exactly there.
func TestFetcherPastEnd(t *testing.T) {
	k := fetchWorld(t, 100)
	f := newTestFetcher(k, 150, 4<<20)
	defer f.close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var te *truncatedError
	for ctx.Err() == nil && te == nil { // the first answer is Offset Out Of Range
		if _, err := f.next(ctx); err == nil {
			t.Fatal("next past the end returned a record")
		} else if !errors.As(err, &te) && ctx.Err() != nil {
			t.Fatalf("next past the end: %v", err)
		}
	}
	if te.From != 150 || te.To != 0 || te.End != 100 {
		t.Fatalf("truncation %+v, want from 150 to 0 (the log start) with end 100", te)
	}
	f.truncRef = func() (time.Time, bool) { return time.Now().Add(time.Hour), true }
	te = nil
	for ctx.Err() == nil && te == nil {
		_, err := f.next(ctx)
		errors.As(err, &te)
	}
	if te.To != 100 {
		t.Fatalf("with a reference after every record: resume at %d, want the end 100", te.To)
	}
	f.truncRef = nil
	produceN(t, k, 100, 100)
	readUpTo(t, f, 150, 200, nil)
}

// TestFetcherStops: a fetch waiting for records ends as soon as ctx does.
func TestFetcherStops(t *testing.T) {
	k := fetchWorld(t, 10)
	f := newFetcher(&kafka.Dialer{Timeout: 2 * time.Second}, k.Addrs(), fetchTopic, 0, 10, 4<<20, 10*time.Second,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer f.close()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, err := f.next(ctx)
		done <- err
	}()
	time.Sleep(300 * time.Millisecond) // the fetch is at the broker, waiting
	start := time.Now()
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("next: %v, want context.Canceled", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("next returned %s after cancel", d)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("next still blocked 5 s after cancel")
	}
}
