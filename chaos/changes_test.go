package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"hitship/internal/testenv"
)

// The runtime changes of the run (issue 11): a reload mid-window adds an
// integration, gives one to another tenant, moves one to another prefix and
// removes one; another integration is disabled and enabled again at runtime.
const (
	addedName    = "t1-added"   // added by the reload, for tenant 1
	retenantName = "t4-ndjson"  // tenant 4 until the reload, then tenant 24
	retenantTo   = int64(24)    // had no integration before
	movedName    = "t6-ndjson"  // prefix hits/ until the reload, then moved/
	removedName  = "t7-json"    // removed by the reload
	toggledName  = "t10-ndjson" // disabled, then enabled again (hitship disable/enable)
)

// reloaded is the config after the reload.
func reloaded(ins []integration) []integration {
	var out []integration
	for _, in := range ins {
		switch in.name {
		case removedName:
			continue
		case retenantName:
			in.client = retenantTo
		case movedName:
			in.prefix = "moved/"
		}
		out = append(out, in)
	}
	return append(out, integration{name: addedName, client: 1, bucket: "chaos-" + addedName, format: "ndjson"})
}

// allIntegrations is every integration that exists at some time, by name (the
// later version of one that changed).
func allIntegrations(lists ...[]integration) []integration {
	var out []integration
	for _, l := range lists {
		for _, in := range l {
			if i := slices.IndexFunc(out, func(o integration) bool { return o.name == in.name }); i >= 0 {
				out[i] = in
				continue
			}
			out = append(out, in)
		}
	}
	return out
}

func (w *world) find(name string, in []integration) integration {
	i := slices.IndexFunc(in, func(o integration) bool { return o.name == name })
	if i < 0 {
		w.t.Fatalf("no integration %s", name)
	}
	return in[i]
}

// reload writes the new config for every replica, then sends SIGHUP to the
// running ones (a replica started meanwhile reads the new file).
func (w *world) reload(reps []*replica, ins []integration) error {
	for _, r := range reps {
		if err := r.writeConfig(ins); err != nil {
			return fmt.Errorf("%s: %w", r.name, err)
		}
	}
	for _, r := range reps {
		r.hup()
	}
	return nil
}

// setEnabled runs `hitship enable|disable` as an operator would, against the
// replicas' Redis and the durable integration state in Kafka.
func (w *world) setEnabled(ctx context.Context, r *replica, name string, on bool) error {
	args := []string{"enable", "--config", r.config, name}
	if !on {
		args = []string{"disable", "--config", r.config, "--reason", "chaos: disabled mid-window", name}
	}
	var out []byte
	var err error
	for attempt := 0; attempt < 10; attempt++ { // Redis or Kafka may be cut just then
		cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
		cmd := exec.CommandContext(cctx, w.bin, args...)
		cmd.Env = append(os.Environ(), secretEnv+"="+secretValue)
		out, err = cmd.CombinedOutput()
		cancel()
		if err == nil || !sleepCtx(ctx, time.Second) {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("hitship %s: %v\n%s", args[0], err, out)
	}
	return nil
}

// deadLetterOutage makes the broker refuse every produce request to topic
// with a retriable error (NOT_ENOUGH_REPLICAS) until the returned function is
// called. Other topics are served as usual.
func deadLetterOutage(c *kfake.Cluster, topic string) (end func(), refused *atomic.Int64) {
	var over atomic.Bool
	refused = new(atomic.Int64)
	c.ControlKey(kmsg.Produce.Int16(), func(kreq kmsg.Request) (kmsg.Response, error, bool) {
		if over.Load() {
			c.DropControl()
			return nil, nil, false
		}
		req := kreq.(*kmsg.ProduceRequest)
		if !slices.ContainsFunc(req.Topics, func(t kmsg.ProduceRequestTopic) bool { return t.Topic == topic }) {
			return nil, nil, false
		}
		c.KeepControl()
		refused.Add(1)
		resp := req.ResponseKind().(*kmsg.ProduceResponse)
		for _, t := range req.Topics {
			rt := kmsg.NewProduceResponseTopic()
			rt.Topic = t.Topic
			rt.TopicID = t.TopicID
			for _, p := range t.Partitions {
				rp := kmsg.NewProduceResponseTopicPartition()
				rp.Partition = p.Partition
				rp.ErrorCode = kerr.NotEnoughReplicas.Code
				rp.BaseOffset = -1
				rt.Partitions = append(rt.Partitions, rp)
			}
			resp.Topics = append(resp.Topics, rt)
		}
		return resp, nil, true
	})
	return func() { over.Store(true) }, refused
}

// smallDisk mounts a tmpfs of size bytes for one replica's spool. It reports
// false when mounting is not permitted (not root): then the run has no disk
// fault, and says so; under CI=true that is an error.
func smallDisk(t *testing.T, dir string, size int) bool {
	t.Helper()
	unmount, err := testenv.MountTmpfs(dir, size)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no spool-disk fault (CI runs as root): %v", err)
		}
		t.Logf("no spool-disk fault: %v", err)
		return false
	}
	t.Cleanup(func() {
		if err := unmount(); err != nil {
			t.Error(err)
		}
	})
	return true
}

// flushAll is FLUSHALL: Redis loses every key while it runs.
func (w *world) flushAll(ctx context.Context) error { return w.redis.flushAll(ctx) }

// restartEmpty restarts Redis without its data (chaosRedis.restartEmpty): a
// restart without persistence, or a failover to a replica that had nothing.
func (w *world) restartEmpty(ctx context.Context, down time.Duration) error {
	return w.redis.restartEmpty(ctx, down)
}

// spoolErrors counts the log lines of a spool error (one per episode).
func spoolErrors(logPath string) int {
	b, _ := os.ReadFile(logPath)
	n := 0
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, `"level":"ERROR"`) && strings.Contains(l, "spool") {
			n++
		}
	}
	return n
}

// stateless is where partitions replayed without replay state Redis lost:
// from which committed offsets without the window snapshot (objects of windows
// open there may be written again under other keys) and without routing state
// (records are routed to every integration configured then, so one a reload
// moved gets records its old destination already had).
type stateless struct {
	snapshot map[int][]int64
	routing  map[int][]int64
}

// statelessReplays reads the replicas' logs for the warnings of both.
func statelessReplays(reps []*replica) stateless {
	out := stateless{snapshot: make(map[int][]int64), routing: make(map[int][]int64)}
	for _, r := range reps {
		b, _ := os.ReadFile(r.logPath)
		for _, l := range strings.Split(string(b), "\n") {
			var into map[int][]int64
			switch {
			case strings.Contains(l, "no window snapshot for the committed offset:"):
				into = out.snapshot
			case strings.Contains(l, "no routing state for the committed offset"):
				into = out.routing
			default:
				continue
			}
			var v struct {
				Partition *int   `json:"partition"`
				Offset    *int64 `json:"offset"`
			}
			if json.Unmarshal([]byte(l), &v) == nil && v.Partition != nil && v.Offset != nil {
				into[*v.Partition] = append(into[*v.Partition], *v.Offset)
			}
		}
	}
	return out
}

// steadyTenants is the tenants with an integration no runtime change touched:
// their records are routed to it, start to end.
func (w *world) steadyTenants() map[int64]bool {
	tl := &timeline{}
	out := make(map[int64]bool)
	for _, in := range w.ins {
		if !tl.special(in.name) {
			out[in.client] = true
		}
	}
	return out
}
