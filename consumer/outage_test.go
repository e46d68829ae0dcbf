package consumer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"hitship/metrics"
	"hitship/state"
	"hitship/window"
)

var errDown = errors.New("dial tcp: connection refused")

// fakeState is a PartitionState whose Redis can be down; it records the
// snapshots it took and the prunes it was asked for.
type fakeState struct {
	mu     sync.Mutex
	down   bool
	fenced bool
	calls  int
	saved  []int64 // offsets of the snapshots taken, in order
	pruned []int64
	sets   map[string][]string
	routes []state.RouteEntry
}

func (f *fakeState) fail() error {
	f.calls++
	if f.down {
		return errDown
	}
	return nil
}

func (f *fakeState) Claim(context.Context, string, int, state.Owner) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(); err != nil {
		return err
	}
	if f.fenced {
		return fmt.Errorf("%w: test", state.ErrFenced)
	}
	return nil
}

func (f *fakeState) Ownership(context.Context, string, int, state.Owner) (state.Ownership, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return state.Owned, f.fail()
}

func (f *fakeState) RecordIdleCloseClaim(context.Context, string, int, state.Owner, state.IdleClose) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return false, f.fail()
}

func (f *fakeState) DropFrom(context.Context, string, int, state.Owner, int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fail()
}

func (f *fakeState) IdleCloses(context.Context, string, int, int64) ([]state.IdleClose, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return nil, f.fail()
}

func (f *fakeState) SaveSnapshot(_ context.Context, _ string, _ int, offset int64, _ []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(); err != nil {
		return err
	}
	f.saved = append(f.saved, offset)
	return nil
}

func (f *fakeState) NoteDeadLettered(context.Context, string, int, []int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fail()
}

func (f *fakeState) DeadLettered(context.Context, string, int, int64) ([]int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return nil, f.fail()
}

func (f *fakeState) LoadSnapshot(context.Context, string, int, int64) ([]byte, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return nil, false, f.fail()
}

func (f *fakeState) SaveRouteSet(_ context.Context, id string, members []string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(); err != nil {
		return err
	}
	if f.sets == nil {
		f.sets = map[string][]string{}
	}
	f.sets[id] = members
	return nil
}

func (f *fakeState) LoadRouteSet(_ context.Context, id string) ([]string, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(); err != nil {
		return nil, false, err
	}
	m, ok := f.sets[id]
	return m, ok, nil
}

func (f *fakeState) RecordRouteClaim(_ context.Context, _ string, _ int, _ state.Owner, e state.RouteEntry) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(); err != nil {
		return false, err
	}
	f.routes = append(f.routes, e)
	return false, nil
}

func (f *fakeState) RouteLog(context.Context, string, int) ([]state.RouteEntry, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.routes), f.fail()
}

func (f *fakeState) RecordReadMark(context.Context, string, int, int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.fail()
}

func (f *fakeState) ReadMark(context.Context, string, int) (int64, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return 0, false, f.fail()
}

func (f *fakeState) Prune(_ context.Context, _ string, _ int, committed int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.fail(); err != nil {
		return err
	}
	f.pruned = append(f.pruned, committed)
	return nil
}

var _ PartitionState = (*fakeState)(nil)

func testWorker(st PartitionState) (*worker, *metrics.Metrics) {
	m := metrics.New(prometheus.NewRegistry())
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := &Consumer{cfg: Config{Window: window.DefaultConfig()}, deps: Deps{Logger: log, Metrics: m, State: st, Routes: newStaticRoutes()}, log: log}
	return &worker{c: c, topic: "hits", partition: 3, log: log, owner: state.Owner{Generation: 1, Member: "m"}}, m
}

// TestPendingSnapshots: snapshots Redis refused are kept (the latest few), written
// back oldest first when it answers, and pruning waits until they are in.
func TestPendingSnapshots(t *testing.T) {
	tests := []struct {
		name       string
		kept       []int64 // offsets refused while Redis is down, in commit order
		committed  int64
		wantSaved  []int64
		wantPruned []int64
	}{
		{name: "one snapshot", kept: []int64{10}, committed: 10, wantSaved: []int64{10}, wantPruned: []int64{10}},
		{name: "the same offset twice is kept once", kept: []int64{10, 10}, committed: 10, wantSaved: []int64{10}, wantPruned: []int64{10}},
		{name: "only the latest few", kept: []int64{10, 20, 30, 40, 50, 60}, committed: 60,
			wantSaved: []int64{30, 40, 50, 60}, wantPruned: []int64{60}},
		{name: "nothing committed yet: nothing to prune", kept: []int64{5}, committed: -1, wantSaved: []int64{5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &fakeState{down: true}
			w, m := testWorker(st)
			for _, off := range tt.kept {
				w.c.keepSnapshot(w.partition, off, []byte(`{}`), errDown)
			}
			if tt.committed >= 0 {
				w.c.noteCommitted(w.partition, tt.committed)
			}
			if got, want := testutil.ToFloat64(m.PendingSnapshots), float64(min(len(slices.Compact(slices.Clone(tt.kept))), maxPendingSnapshots)); got != want {
				t.Fatalf("pending gauge = %v, want %v", got, want)
			}
			if w.c.writeBackAll(context.Background()) {
				t.Fatal("writeBack reported success while Redis is down")
			}
			if len(st.saved) > 0 || len(st.pruned) > 0 {
				t.Fatalf("Redis down, yet saved %v pruned %v", st.saved, st.pruned)
			}
			st.down = false
			if !w.c.writeBackAll(context.Background()) {
				t.Fatal("writeBack failed with Redis up")
			}
			if !slices.Equal(st.saved, tt.wantSaved) || !slices.Equal(st.pruned, tt.wantPruned) {
				t.Fatalf("saved %v pruned %v, want %v and %v", st.saved, st.pruned, tt.wantSaved, tt.wantPruned)
			}
			if got := pendingOffsets(w.c, w.partition); len(got) != 0 || testutil.ToFloat64(m.PendingSnapshots) != 0 {
				t.Fatalf("still pending: %v (gauge %v)", got, testutil.ToFloat64(m.PendingSnapshots))
			}
		})
	}
}

// TestPendingKeepsTheConfirmedSnapshot (issue #11): while Redis is down and
// Kafka refuses commits, snapshots of offsets never committed pile up after the
// one Kafka confirmed last. The cap evicts the oldest of the others, never the
// confirmed one: a crash restarts the partition at that offset, and without its
// snapshot the next owner would start empty (duplicates). Before, the oldest
// went first, whatever it was.
func TestPendingKeepsTheConfirmedSnapshot(t *testing.T) {
	st := &fakeState{down: true}
	w, _ := testWorker(st)
	w.c.keepSnapshot(w.partition, 10, []byte(`{}`), errDown)
	w.c.noteCommitted(w.partition, 10)                // Kafka took 10
	for _, off := range []int64{20, 30, 40, 50, 60} { // Kafka refuses these commits
		w.c.keepSnapshot(w.partition, off, []byte(`{}`), errDown)
	}
	if got, want := pendingOffsets(w.c, w.partition), []int64{10, 40, 50, 60}; !slices.Equal(got, want) {
		t.Fatalf("held snapshots %v, want %v: the confirmed offset's must stay", got, want)
	}
	st.down = false
	if !w.c.writeBackAll(context.Background()) {
		t.Fatal("write-back failed with Redis up")
	}
	if !slices.Equal(st.saved, []int64{10, 40, 50, 60}) || !slices.Equal(st.pruned, []int64{10}) {
		t.Fatalf("saved %v pruned %v", st.saved, st.pruned)
	}
}

// TestWriteBackStopsAtFirstFailure: a partial write-back keeps the rest, in order,
// and does not prune.
func TestWriteBackStopsAtFirstFailure(t *testing.T) {
	st := &flakyState{fakeState: fakeState{}, failAfter: 1}
	w, _ := testWorker(st)
	for _, off := range []int64{10, 20, 30} {
		w.c.keepSnapshot(w.partition, off, []byte(`{}`), errDown)
	}
	w.c.noteCommitted(w.partition, 30)
	if w.c.writeBackAll(context.Background()) {
		t.Fatal("writeBack reported success after a failure")
	}
	if !slices.Equal(st.saved, []int64{10}) || len(st.pruned) != 0 {
		t.Fatalf("saved %v pruned %v, want [10] and nothing", st.saved, st.pruned)
	}
	if got := pendingOffsets(w.c, w.partition); !slices.Equal(got, []int64{20, 30}) {
		t.Fatalf("pending %v, want offsets 20 and 30", got)
	}
}

// pendingOffsets returns the offsets of partition's held snapshots.
func pendingOffsets(c *Consumer, partition int) []int64 {
	c.pending.mu.Lock()
	defer c.pending.mu.Unlock()
	var offs []int64
	if p := c.pending.parts[partition]; p != nil {
		for _, s := range p.snaps {
			offs = append(offs, s.offset)
		}
	}
	return offs
}

// TestPendingOutlivesGeneration: snapshots held for a partition whose worker is
// gone (its generation ended during the outage) are written back by the
// consumer when Redis answers, oldest first, then pruned below the last
// offset committed through this process; those of other partitions too.
func TestPendingOutlivesGeneration(t *testing.T) {
	st := &fakeState{down: true}
	w, m := testWorker(st)
	c := w.c
	for _, off := range []int64{10, 20} {
		w.c.keepSnapshot(w.partition, off, []byte(`{}`), errDown)
	}
	c.noteCommitted(w.partition, 20)
	c.keepSnapshot(5, 7, []byte(`{}`), errDown) // another partition, never committed here
	// The generation ends: from here on only the consumer has the snapshots.
	if c.writeBackAll(context.Background()) {
		t.Fatal("write-back reported success while Redis is down")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.writeBackLoop(ctx) }()
	st.mu.Lock()
	st.down = false
	st.mu.Unlock()
	deadline := time.Now().Add(5 * time.Second)
	for c.hasPending() {
		if time.Now().After(deadline) {
			t.Fatal("the held snapshots were not written back after Redis came back")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	st.mu.Lock()
	defer st.mu.Unlock()
	// Partition 3's two, then partition 5's; only partition 3 had a commit.
	if !slices.Equal(st.saved, []int64{10, 20, 7}) || !slices.Equal(st.pruned, []int64{20}) {
		t.Fatalf("saved %v pruned %v, want [10 20 7] and [20]", st.saved, st.pruned)
	}
	if got := testutil.ToFloat64(m.PendingSnapshots); got != 0 {
		t.Fatalf("pending gauge %v, want 0", got)
	}
}

// flakyState takes failAfter snapshots, then is down.
type flakyState struct {
	fakeState
	failAfter int
}

func (f *flakyState) SaveSnapshot(ctx context.Context, topic string, p int, offset int64, data []byte) error {
	f.mu.Lock()
	f.down = len(f.saved) >= f.failAfter
	f.mu.Unlock()
	return f.fakeState.SaveSnapshot(ctx, topic, p, offset, data)
}

// TestCommittedAtDefersPrune: a commit whose snapshot is only in memory does not
// prune Redis (pruning would run ahead of the snapshot of the committed offset).
func TestCommittedAtDefersPrune(t *testing.T) {
	st := &fakeState{}
	w, _ := testWorker(st)
	if err := w.start(context.Background(), -1); err != nil {
		t.Fatal(err)
	}
	w.c.keepSnapshot(w.partition, 7, []byte(`{}`), errDown)
	w.committedAt(context.Background(), 7, nil, w.epoch)
	if len(st.pruned) != 0 {
		t.Fatalf("pruned %v with the snapshot still pending", st.pruned)
	}
	w.c.pending.parts = nil
	w.committedAt(context.Background(), 9, nil, w.epoch)
	if !slices.Equal(st.pruned, []int64{9}) {
		t.Fatalf("pruned %v, want [9]", st.pruned)
	}
}

// TestStartWaitsForRedis: a worker starting during an outage waits with backoff
// for its claim, starts when Redis answers, gives up at once when fenced, and
// stops waiting when its context ends.
func TestStartWaitsForRedis(t *testing.T) {
	tests := []struct {
		name      string
		upAfter   time.Duration // Redis comes back after this (0: never)
		fenced    bool
		cancelAt  time.Duration
		wantErr   func(error) bool
		minCalls  int
		wantStart bool
	}{
		{name: "Redis returns", upAfter: 7 * time.Second, cancelAt: time.Minute, wantErr: func(err error) bool { return err == nil }, minCalls: 5, wantStart: true},
		{name: "fenced: no wait", fenced: true, cancelAt: time.Minute, wantErr: state.IsFenced, minCalls: 1},
		{name: "context ends", cancelAt: 3 * time.Second, wantErr: func(err error) bool { return errors.Is(err, context.Canceled) }, minCalls: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				st := &fakeState{down: !tt.fenced, fenced: tt.fenced}
				w, _ := testWorker(st)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				if tt.upAfter > 0 {
					time.AfterFunc(tt.upAfter, func() { st.mu.Lock(); st.down = false; st.mu.Unlock() })
				}
				time.AfterFunc(tt.cancelAt, cancel)
				startAt := time.Now()
				err := w.start(ctx, 100)
				if !tt.wantErr(err) {
					t.Fatalf("start = %v", err)
				}
				if tt.upAfter > 0 && time.Since(startAt) < tt.upAfter {
					t.Fatalf("started after %v, before Redis returned at %v", time.Since(startAt), tt.upAfter)
				}
				if st.calls < tt.minCalls {
					t.Fatalf("%d Redis calls, want at least %d", st.calls, tt.minCalls)
				}
				if got := w.part != nil; got != tt.wantStart {
					t.Fatalf("window state built = %v, want %v", got, tt.wantStart)
				}
				if tt.wantStart && (w.next != 100 || w.committed != 100) {
					t.Fatalf("next %d committed %d, want 100", w.next, w.committed)
				}
			})
		})
	}
}

// lateSnapshotState has no snapshot until `after` LoadSnapshot calls, then the
// one of a window state with a ghost buffer.
type lateSnapshotState struct {
	fakeState
	after, loads int
	data         []byte
}

func (s *lateSnapshotState) LoadSnapshot(context.Context, string, int, int64) ([]byte, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loads++
	return s.data, s.loads > s.after, nil
}

// TestStartAwaitsSnapshot: a worker starting at a committed offset whose
// snapshot is not in Redis yet (the previous owner writing it back after an
// outage) waits for it and restores it, and without one starts empty after
// snapshotWait.
func TestStartAwaitsSnapshot(t *testing.T) {
	p, err := window.NewPartition(window.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	p.Advance(0, 1687241470000)
	p.Assign(0, 1687241470000, "acme")
	snap, ok := p.Snapshot(1)
	if !ok {
		t.Fatal("no snapshot at offset 1")
	}
	data, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		after    int
		restored bool
	}{
		{"arrives after a few tries", 3, true},
		{"never arrives", 1 << 30, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := &lateSnapshotState{after: tc.after, data: data}
			w, _ := testWorker(st)
			start := time.Now()
			if err := w.start(context.Background(), 1); err != nil {
				t.Fatal(err)
			}
			took := time.Since(start)
			got, _ := w.part.Snapshot(1)
			restored := len(got.Ghosts) > 0
			if restored != tc.restored {
				t.Fatalf("restored %v (snapshot %+v), want %v", restored, got, tc.restored)
			}
			if !tc.restored && took < snapshotWait {
				t.Fatalf("gave up after %s, want %s", took, snapshotWait)
			}
		})
	}
}
