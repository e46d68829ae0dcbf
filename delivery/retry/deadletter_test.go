package retry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// scriptFault fails the next n Lua scripts whose keys are exactly keys,
// before they reach Redis: a fault injected around the real server.
type scriptFault struct {
	mu   sync.Mutex
	keys []string
	n    int
}

func (f *scriptFault) arm(keys []string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keys, f.n = keys, n
}

func (f *scriptFault) DialHook(next redis.DialHook) redis.DialHook { return next }

func (f *scriptFault) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func (f *scriptFault) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		args := cmd.Args()
		if name := strings.ToLower(fmt.Sprint(args[0])); (name == "evalsha" || name == "eval") && len(args) > 3 {
			f.mu.Lock()
			hit := false
			if nk, _ := args[2].(int); f.n > 0 && nk == len(f.keys) && len(args) >= 3+nk {
				hit = true
				for i, k := range f.keys {
					hit = hit && args[3+i] == k
				}
			}
			if hit {
				f.n--
			}
			f.mu.Unlock()
			if hit {
				err := errors.New("injected: script not run")
				cmd.SetErr(err)
				return err
			}
		}
		return next(ctx, cmd)
	}
}

// deadBucket is the caller's side of a dead-lettering, as the service has it:
// a parked copy, a dead copy and events.
type deadBucket struct {
	mu      sync.Mutex
	objects map[string]bool
	events  int
	handles int
	// order records the steps in the order they happened.
	order []string
}

func (b *deadBucket) step(s string) {
	b.order = append(b.order, s)
}

// TestDeadLetterCrashPoints: a holder that stops at any point of a
// dead-lettering leaves an entry the next holder finishes, without a new
// attempt, and the parked copy is deleted only after the dead letter is
// recorded. Each case stops worker A at one point (a failing hook or Redis
// script); worker B takes the entry over once A's lease expired.
func TestDeadLetterCrashPoints(t *testing.T) {
	tests := []struct {
		name string
		// fail arms A's fault: the hook that fails, or the Redis key whose
		// script fails.
		failBefore, failAfter bool
		failScriptOn          func(q *Queue) []string
		wantParkedLeft        bool
	}{
		{name: "copy made, event not written (hook fails)", failBefore: true},
		{name: "copy and event made, dead-letter record fails",
			failScriptOn: func(q *Queue) []string { return []string{q.leased, q.tokens, q.entries, q.dead} }},
		{name: "mark dying fails: the last attempt is made again",
			failScriptOn: func(q *Queue) []string { return []string{q.tokens, q.entries} }},
		{name: "recorded, deleting the parked copy fails", failAfter: true, wantParkedLeft: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			q, r := newQueue(t, false)
			fault := &scriptFault{}
			rdbA := redis.NewClient(&redis.Options{Addr: r.Addr()})
			rdbA.AddHook(fault)
			t.Cleanup(func() { rdbA.Close() })
			qa, err := NewQueue(rdbA, QueueConfig{Prefix: "test:"})
			if err != nil {
				t.Fatal(err)
			}
			e := entry("x", "acme", Last, time.Now())
			if _, err := q.Enqueue(ctx, e); err != nil {
				t.Fatal(err)
			}
			b := &deadBucket{objects: map[string]bool{e.ParkedKey: true}}
			deadKey := "dead/" + e.ID
			cfg := func(q *Queue, faulty bool) WorkerConfig {
				return WorkerConfig{
					Queue: q, Lease: 500 * time.Millisecond, Poll: 20 * time.Millisecond,
					Handle: func(ctx context.Context, c Claimed) error {
						b.mu.Lock()
						defer b.mu.Unlock()
						b.handles++
						return errors.New("NoSuchBucket")
					},
					BeforeDeadLetter: func(ctx context.Context, c Claimed, reason string) (string, error) {
						b.mu.Lock()
						defer b.mu.Unlock()
						if !c.Dying {
							return "", fmt.Errorf("BeforeDeadLetter on an entry not marked dying: %+v", c.Entry)
						}
						if !b.objects[c.ParkedKey] && !b.objects[deadKey] {
							return "", errors.New("both copies gone")
						}
						b.objects[deadKey] = true
						b.step("copy")
						if faulty && tc.failBefore {
							return "", errors.New("injected: XADD failed")
						}
						b.events++
						b.step("event")
						return deadKey, nil
					},
					AfterDeadLetter: func(ctx context.Context, c Claimed, dead string) error {
						b.mu.Lock()
						defer b.mu.Unlock()
						if faulty && tc.failAfter {
							return errors.New("injected: DELETE failed")
						}
						list, err := q.DeadLetters(ctx, "", time.Time{})
						if err != nil || len(list) != 1 {
							return fmt.Errorf("parked copy deleted before the dead letter was recorded (%v, %v)", list, err)
						}
						delete(b.objects, c.ParkedKey)
						b.step("delete")
						return nil
					},
				}
			}
			if tc.failScriptOn != nil {
				fault.arm(tc.failScriptOn(q), 1)
			}
			stopA := runWorker(t, newWorker(t, cfg(qa, true)))
			waitFor(t, 10*time.Second, "A's attempt", func() bool {
				b.mu.Lock()
				defer b.mu.Unlock()
				return b.handles == 1
			})
			// A's fault stops it at one point; give it time to get there, then
			// "crash" it (stop: it records nothing more).
			time.Sleep(100 * time.Millisecond)
			stopA()
			fault.mu.Lock()
			if fault.n != 0 {
				t.Fatalf("the injected script fault never fired")
			}
			fault.mu.Unlock()
			if !tc.failAfter {
				list, err := q.DeadLetters(ctx, "", time.Time{})
				if err != nil || len(list) != 0 {
					t.Fatalf("dead letters after A stopped: %v, %v; want none yet", list, err)
				}
			}
			runWorker(t, newWorker(t, cfg(q, false)))
			waitFor(t, 10*time.Second, "the dead letter", func() bool {
				list, err := q.DeadLetters(ctx, "", time.Time{})
				return err == nil && len(list) == 1 && stats(t, q) == Stats{Dead: 1}
			})
			time.Sleep(100 * time.Millisecond) // B's AfterDeadLetter
			b.mu.Lock()
			defer b.mu.Unlock()
			list, _ := q.DeadLetters(ctx, "", time.Time{})
			if list[0].ParkedKey != deadKey || list[0].Dying || list[0].DeadReason != "NoSuchBucket" {
				t.Errorf("dead letter %+v; want parked key %s, reason NoSuchBucket, not dying", list[0], deadKey)
			}
			if !b.objects[deadKey] {
				t.Errorf("no dead copy: %v", b.objects)
			}
			if b.objects[e.ParkedKey] != tc.wantParkedLeft {
				t.Errorf("parked copy left = %v; want %v (steps %v)", b.objects[e.ParkedKey], tc.wantParkedLeft, b.order)
			}
			wantHandles := 1
			if tc.name == "mark dying fails: the last attempt is made again" {
				wantHandles = 2
			}
			if b.handles != wantHandles {
				t.Errorf("%d attempts; want %d (finishing a dead-lettering makes none)", b.handles, wantHandles)
			}
			if b.events < 1 || b.events > 2 {
				t.Errorf("%d events; want 1 (2 when the record failed after the event)", b.events)
			}
		})
	}
}
