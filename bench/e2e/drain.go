package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"hitship/consumer"
)

// The drain-only baselines: the Kafka read limit hitship is measured against.
// Each runs in a child process of its own (this program, re-run with
// -drain-child), as hitship does, so that neither shares the Go runtime of the
// in-process broker: in one process the readers' goroutines and kfake's
// compete for the same scheduler, which made the old in-process figure swing
// between 0.5 and 1.2 M records/s from one machine to the next.
//
//   - reader: kafka.Reader per partition (FetchMessage), the settings hitship
//     used before it read batches itself (4 MiB fetches, queue 1,000). The
//     issue's baseline ("kafka-go readers").
//   - batch: kafka-go Conn batches read in the consuming goroutine, through
//     the same read-ahead connection as hitship's fetcher (consumer/fetch.go):
//     the faster of the two on this machine and so the stricter baseline.
var drainModes = []string{"reader", "batch"}

// drainResult is one baseline's rate and its process's CPU per record.
type drainResult struct {
	mode   string
	rate   float64 // records/s, from the child's own clock
	cpuRec time.Duration
}

// drains measures every drain mode, each in a child process.
func (b *bench) drains(ctx context.Context) ([]drainResult, error) {
	hw, err := b.k.HighWater(ctx, topic)
	if err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	var hws []string
	var total int64
	for p := range parts {
		hws = append(hws, strconv.FormatInt(hw[p], 10))
		total += hw[p]
	}
	var out []drainResult
	for _, mode := range drainModes {
		cmd := exec.CommandContext(ctx, self, "-drain-child", mode, "-drain-brokers", strings.Join(b.k.Addrs(), ","), "-drain-hw", strings.Join(hws, ","))
		cmd.Stderr = os.Stderr
		o, err := cmd.Output()
		if err != nil {
			return nil, fmt.Errorf("drain %s: %w", mode, err)
		}
		secs, err := strconv.ParseFloat(strings.TrimSpace(string(o)), 64)
		if err != nil {
			return nil, fmt.Errorf("drain %s: %q: %w", mode, o, err)
		}
		cpu := cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
		r := drainResult{mode: mode, rate: float64(total) / secs, cpuRec: cpu / time.Duration(max(total, 1))}
		fmt.Printf("drain-only (%s, %d partitions, own process): %.0f records/s, %.2f us CPU/record\n", modeName(mode), parts, r.rate, float64(r.cpuRec.Nanoseconds())/1000)
		out = append(out, r)
	}
	return out, nil
}

func modeName(mode string) string {
	if mode == "reader" {
		return "kafka-go Reader"
	}
	return "kafka-go Conn batches"
}

// drainChild is the child's side: read every partition to its high-water mark
// and print the seconds it took (joining excluded: no group).
func drainChild(mode, brokers, hwList string) error {
	var hw []int64
	for _, f := range strings.Split(hwList, ",") {
		v, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return err
		}
		hw = append(hw, v)
	}
	addrs := strings.Split(brokers, ",")
	ctx := context.Background()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, len(hw))
	for p, end := range hw {
		if end == 0 {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if mode == "reader" {
				err = drainReader(ctx, addrs, p, end)
			} else {
				err = drainBatches(ctx, addrs, p, end)
			}
			if err != nil {
				errs <- fmt.Errorf("partition %d: %w", p, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	fmt.Println(time.Since(start).Seconds())
	return nil
}

func drainReader(ctx context.Context, addrs []string, p int, end int64) error {
	r := kafka.NewReader(kafka.ReaderConfig{Brokers: addrs, Topic: topic, Partition: p,
		MinBytes: 1, MaxBytes: 4 << 20, MaxWait: 2 * time.Second, QueueCapacity: 1000})
	defer r.Close()
	for {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			return err
		}
		if m.Offset+1 >= end {
			return nil
		}
	}
}

func drainBatches(ctx context.Context, addrs []string, p int, end int64) error {
	conn, err := consumer.ReadAheadDialer(kafka.DefaultDialer).DialLeader(ctx, "tcp", addrs[0], topic, p)
	if err != nil {
		return err
	}
	defer conn.Close()
	for off := int64(0); off < end; {
		if _, err := conn.Seek(off, kafka.SeekAbsolute|kafka.SeekDontCheck); err != nil {
			return err
		}
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		batch := conn.ReadBatchWith(kafka.ReadBatchConfig{MinBytes: 1, MaxBytes: 4 << 20, MaxWait: time.Second})
		for {
			m, err := batch.ReadMessage()
			if err != nil {
				if !errors.Is(err, io.EOF) {
					batch.Close()
					return err
				}
				break
			}
			off = m.Offset + 1
		}
		if err := batch.Close(); err != nil {
			return err
		}
	}
	return nil
}
