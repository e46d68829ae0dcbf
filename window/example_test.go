package window_test

import (
	"encoding/json"
	"fmt"

	"hitship/window"
)

const minute = 60_000

func show(what string, closed []*window.Buffer) {
	for _, b := range closed {
		fmt.Printf("%s closes %s window %dm-%dm late=%t first offset %d ghost=%t\n",
			what, b.Key.Target, b.Key.Start/minute, (b.Key.Start+10*minute)/minute, b.Key.Late, b.FirstOffset, b.Ghost)
	}
}

// A partition's story: on-time records, a close driven by a record, a late
// record batched into a late buffer, and a quiet partition closed by an idle
// advance.
func Example() {
	p, err := window.NewPartition(window.Config{Size: 10 * minute, Grace: minute})
	if err != nil {
		fmt.Println(err)
		return
	}
	record := func(offset, ts int64, integration string) {
		show(fmt.Sprintf("record %d", offset), p.Advance(offset, ts))
		b := p.Assign(offset, ts, integration)
		fmt.Printf("record %d (t=%dm) -> %s window %dm late=%t, closes at W>=%dm\n",
			offset, ts/minute, b.Key.Target, b.Key.Start/minute, b.Key.Late, b.CloseAt/minute)
	}
	record(0, 2*minute, "acme")
	record(1, 9*minute, "acme")
	record(2, 10*minute, "acme") // W = 9m: [0m,10m) stays open for the grace
	record(3, 11*minute, "acme") // W = 10m: [0m,10m) closes
	record(4, 5*minute, "acme")  // late: batched until the next boundary
	fmt.Println("open:", p.Open(), "W:", p.Watermark()/minute, "m")

	// Nothing arrives; the wall clock says 21m30s.
	if b, ok := p.IdleBoundary(21*minute + 30_000); ok {
		show("idle", p.ApplyIdle(5, b))
	}
	fmt.Println("open:", p.Open(), "W:", p.Watermark()/minute, "m")
	// Output:
	// record 0 (t=2m) -> acme window 0m late=false, closes at W>=10m
	// record 1 (t=9m) -> acme window 0m late=false, closes at W>=10m
	// record 2 (t=10m) -> acme window 10m late=false, closes at W>=20m
	// record 3 closes acme window 0m-10m late=false first offset 0 ghost=false
	// record 3 (t=11m) -> acme window 10m late=false, closes at W>=20m
	// record 4 (t=5m) -> acme window 0m late=true, closes at W>=20m
	// open: 2 W: 10 m
	// idle closes acme window 0m-10m late=true first offset 4 ghost=false
	// idle closes acme window 10m-20m late=false first offset 2 ghost=false
	// open: 0 W: 20 m
}

// Replay from a committed offset: the snapshot saved before the commit brings
// back the buffers that were open as ghosts, whose records are discarded.
func ExampleRestore() {
	cfg := window.Config{Size: 10 * minute, Grace: minute}
	p, _ := window.NewPartition(cfg)
	p.Advance(0, 2*minute)
	p.Assign(0, 2*minute, "acme")
	p.Advance(1, 3*minute)
	p.Assign(1, 3*minute, "globex")

	// Offset 1 is committed once acme's buffer (first offset 0) is delivered.
	s, _ := p.Snapshot(1)
	data, _ := json.Marshal(s)
	fmt.Println(string(data))

	var saved window.Snapshot
	_ = json.Unmarshal(data, &saved)
	q, err := window.Restore(cfg, saved)
	if err != nil {
		fmt.Println(err)
		return
	}
	q.Advance(1, 3*minute)
	b := q.Assign(1, 3*minute, "globex")
	fmt.Printf("globex first offset %d ghost=%t\n", b.FirstOffset, b.Ghost)
	q.Advance(2, 4*minute)
	b = q.Assign(2, 4*minute, "acme")
	fmt.Printf("acme first offset %d ghost=%t\n", b.FirstOffset, b.Ghost)
	// Output:
	// {"offset":1,"size_ms":600000,"grace_ms":60000,"max_future_skew_ms":0,"timestamp":"event","watermark_ms":60000,"max_ts_ms":120000,"ghosts":[{"target":"acme","start_ms":0,"late":false,"close_at_ms":600000,"first_offset":0}]}
	// globex first offset 1 ghost=false
	// acme first offset 0 ghost=true
}

func ExampleStart() {
	fmt.Println(window.Start(1_687_241_470_000, 10*minute))
	fmt.Println(window.Start(-1, 10*minute))
	// Output:
	// 1687241400000
	// -600000
}
