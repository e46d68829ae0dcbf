package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/segmentio/kafka-go"

	"hitship/hitgen"
	"hitship/internal/redisconn"
	"hitship/internal/testenv"
)

// prefix is hitship's default redis.key_prefix (single mode), and
// clusterPrefix its default in mode cluster.
const prefix, clusterPrefix = "hitship:", "{hitship}:"

// aclUser and aclPassword are the least-privilege user hitship runs as.
const aclUser, aclPassword = "hitship", "sizing-secret-1"

// parkingBucket is the operator's parking (and staging) bucket.
const parkingBucket = "sizing-parking"

// runCfg is one run: P partitions, I healthy integrations plus broken ones
// (their bucket does not exist: objects are parked after cycle 1).
type runCfg struct {
	staged     bool
	partitions int
	healthy    int
	broken     int
}

func (rc runCfg) String() string {
	mode := "per-partition"
	if rc.staged {
		mode = "staged"
	}
	return fmt.Sprintf("%s P=%d I=%d", mode, rc.partitions, rc.healthy)
}

// result is what a run left in Redis and cost it.
type result struct {
	cfg runCfg
	// used is INFO used_memory at the end minus the empty server's, and
	// clients the client connections' buffers in it (mem_clients_normal);
	// peak is the highest used_memory sampled during the run minus the
	// empty server's.
	used, clients, peak int64
	empty               int64 // used_memory of the server before hitship connected
	scripts             int64 // used_memory_scripts: the Lua scripts' cache, part of used
	fams                map[string]family
	counts              counts
	others              []string
	produced            int64
	objects, refused    int64
	// calls are the commands hitship sent (INFO commandstats, the
	// sampler's own INFO calls taken out); cpu is Redis's CPU time.
	calls   map[string]int64
	cpu     float64
	elapsed time.Duration
	denials []string // ACL LOG entries
	// oom counts the writes Redis refused for maxmemory (-maxmemory);
	// committed is the group's committed offsets, summed, at the end.
	oom, committed int64
	rssKiB         int64 // hitship's peak RSS
	keysUsed       int64 // sum of MEMORY USAGE over all keys
}

// run runs hitship for b.o.duration with rc against a fresh redis-server
// and reads what it left there while it still runs.
func (b *bench) run(ctx context.Context, rc runCfg) (result, error) {
	b.runs++
	res := result{cfg: rc}
	dir := filepath.Join(b.dir, "run-"+strconv.Itoa(b.runs))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return res, err
	}
	defer os.RemoveAll(dir)
	var rdb *redis.Client
	keys, where := prefix, "" // where: the redis section's address line(s)
	if b.o.cluster {
		node, err := startClusterNode(ctx, filepath.Join(dir, "redis"))
		if err != nil {
			return res, err
		}
		defer node.Close()
		rdb, keys, where = node.rdb, clusterPrefix, "mode: cluster\n  addrs: ["+node.addr+"]"
	} else {
		red, err := testenv.StartRedis(testenv.RedisOptions{})
		if err != nil {
			return res, err
		}
		defer red.Close()
		if red.Miniredis() {
			return res, errors.New("no redis-server binary: the sizes of miniredis say nothing")
		}
		rdb, where = red.Client(), "addr: "+red.Addr()
	}
	empty, _, err := usedMemory(ctx, rdb)
	if err != nil {
		return res, err
	}
	res.empty = empty
	args := []any{"acl", "setuser", aclUser, "reset", "on", ">" + aclPassword}
	for _, f := range strings.Fields(redisconn.ACLRule(keys, b.o.cluster)) {
		args = append(args, f)
	}
	if err := rdb.Do(ctx, args...).Err(); err != nil {
		return res, fmt.Errorf("acl setuser: %w", err)
	}
	if b.o.maxmemory > 0 {
		// A full Redis (-maxmemory): noeviction refuses writes with OOM.
		if err := rdb.ConfigSet(ctx, "maxmemory", strconv.FormatInt(empty+b.o.maxmemory, 10)).Err(); err != nil {
			return res, err
		}
		if err := rdb.ConfigSet(ctx, "maxmemory-policy", "noeviction").Err(); err != nil {
			return res, err
		}
	}
	if err := rdb.ConfigResetStat(ctx).Err(); err != nil {
		return res, err
	}

	topic := "hits-" + strconv.Itoa(b.runs)
	for _, t := range []string{topic, topic + "-dlq"} {
		if err := b.k.RecreateTopic(ctx, t, rc.partitions); err != nil {
			return res, err
		}
	}
	cust := &customers{}
	custURL, stopCust, err := serve(cust)
	if err != nil {
		return res, err
	}
	defer stopCust()
	park, err := testenv.StartS3(testenv.S3Options{Buckets: []string{parkingBucket}})
	if err != nil {
		return res, err
	}
	defer park.Close()

	var ins strings.Builder
	for c := 1; c <= rc.healthy+rc.broken; c++ {
		bucket := "sizing-" + strconv.Itoa(c)
		if c > rc.healthy {
			bucket = brokenPrefix + strconv.Itoa(c)
		}
		fmt.Fprintf(&ins, "  - {name: tenant-%d, client_id: %d, region: us-east-1, bucket: %s, format: ndjson, credentials: {access_key_id: SIZINGACCESSKEY1, secret_access_key_env: SIZING_SECRET}}\n", c, c, bucket)
	}
	cfg := fmt.Sprintf(`kafka:
  brokers: [%s]
  topic: %s
  dead_letter_topic: %s-dlq
  integrations_topic: %s-integrations
  group: sizing
window:
  size: %s
  grace: 1s
  idle_timeout: 5s
spool:
  dir: %s
delivery:
  staged: %t
s3:
  endpoint: %s
  path_style: true
  if_none_match: false
parking:
  bucket: %s
  region: us-east-1
  endpoint: %s
  path_style: true
  prefix: hitship/
  credentials: {access_key_id: SIZINGACCESSKEY2, secret_access_key_env: SIZING_SECRET}
redis:
  %s
  username: %s
  password_env: SIZING_REDIS_PASSWORD
http:
  listen: "127.0.0.1:0"
log:
  level: error
integrations:
%s`, strings.Join(b.k.Addrs(), ","), topic, topic, topic, b.o.window, filepath.Join(dir, "spool"), rc.staged, custURL,
		parkingBucket, park.URL(), where, aclUser, ins.String())
	path := filepath.Join(dir, "hitship.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		return res, err
	}

	cmd := exec.Command(b.bin, "run", "--config", path)
	cmd.Env = append(os.Environ(), "SIZING_SECRET=sizing-secret", "SIZING_REDIS_PASSWORD="+aclPassword)
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		// Redis has been read: a clean stop (cycle 1's retries run out
		// first) would only make the run longer.
		_ = cmd.Process.Kill()
		<-exited
	}()

	pctx, stopProducing := context.WithCancel(ctx)
	var produced atomic.Int64
	perr := make(chan error, 1)
	go func() { perr <- b.produce(pctx, topic, rc, &produced) }()

	// Sample used_memory until the end: its peak while hitship runs.
	var infos int64
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	var rssKiB int64
	// Until -duration has passed and the broken integrations' objects of a
	// window are parked (cycle 1 ends 29 s after a window's first attempt),
	// or 40 s more.
	entries := keys + "{retry}:entries"
	for time.Since(start) < b.o.duration || time.Since(start) < b.o.duration+40*time.Second && rdb.HLen(ctx, entries).Val() < int64(rc.broken) {
		select {
		case err := <-exited:
			stopProducing()
			<-perr
			exited <- err
			return res, fmt.Errorf("hitship exited early: %v", err)
		case <-tick.C:
		}
		u, _, err := usedMemory(ctx, rdb)
		infos++
		if err != nil {
			stopProducing()
			<-perr
			return res, err
		}
		res.peak = max(res.peak, u-empty)
		rssKiB = max(rssKiB, procStatusKiB(cmd.Process.Pid, "VmHWM:"))
	}
	stopProducing()
	if err := <-perr; err != nil {
		return res, err
	}
	res.elapsed = time.Since(start)
	res.produced, res.objects, res.refused, res.rssKiB = produced.Load(), cust.puts.Load(), cust.refused.Load(), rssKiB

	if res.calls, err = commandCalls(ctx, rdb); err != nil {
		return res, err
	}
	if errs, err := info(ctx, rdb, "errorstats"); err == nil {
		res.oom = statCount(errs["errorstat_OOM"])
	}
	if c, err := b.k.Committed(ctx, "sizing", topic); err == nil {
		for _, o := range c {
			res.committed += o
		}
	}
	res.calls["info"] -= infos
	delete(res.calls, "config|resetstat")
	delete(res.calls, "hlen") // the wait for parked entries above; hitship sends none
	if res.calls["info"] <= 0 {
		delete(res.calls, "info")
	}
	cpu, err := info(ctx, rdb, "cpu")
	if err != nil {
		return res, err
	}
	res.cpu = infoFloat(cpu, "used_cpu_sys") + infoFloat(cpu, "used_cpu_user")
	mem, err := info(ctx, rdb, "memory")
	if err != nil {
		return res, err
	}
	res.used, res.clients, res.scripts = infoInt(mem, "used_memory")-empty, infoInt(mem, "mem_clients_normal"), infoInt(mem, "used_memory_scripts")
	res.peak = max(res.peak, res.used)
	if res.fams, res.counts, res.others, err = families(ctx, rdb, keys); err != nil {
		return res, err
	}
	for _, f := range res.fams {
		res.keysUsed += f.bytes
	}
	log, err := rdb.Do(ctx, "acl", "log").Slice()
	if err != nil {
		return res, err
	}
	for _, e := range log {
		res.denials = append(res.denials, fmt.Sprint(e))
	}
	return res, nil
}

// produce writes b.o.rate hits a second with current event times, the
// integrations' clients in turn, each client's hits to partition client mod
// P (producers keyed by tenant) or, with -spread, round-robin.
func (b *bench) produce(ctx context.Context, topic string, rc runCfg, produced *atomic.Int64) error {
	g := hitgen.New(hitgen.Config{Seed: 3, Tenants: 1})
	const every = 100 * time.Millisecond
	t := time.NewTicker(every)
	defer t.Stop()
	per := max(1, b.o.rate/10)
	clients := rc.healthy + rc.broken
	batch := make([]kafka.Message, 0, per)
	i := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		now := time.Now()
		batch = batch[:0]
		for range per {
			client := 1 + i%clients
			p := client % rc.partitions
			if b.o.spread {
				p = i % rc.partitions
			}
			i++
			batch = append(batch, kafka.Message{Partition: p, Value: g.Next(now.Unix()).Value, Time: now,
				Headers: []kafka.Header{{Key: "client_id", Value: []byte(strconv.Itoa(client))}}})
		}
		if err := b.k.Produce(ctx, topic, batch); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		produced.Add(int64(len(batch)))
	}
}

// procStatusKiB returns a "kB" field of /proc/PID/status (Linux).
func procStatusKiB(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for l := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, field); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb
			}
		}
	}
	return 0
}

// statCount reads count= of an INFO errorstats value ("count=3").
func statCount(v string) int64 {
	n, _ := strconv.ParseInt(strings.TrimPrefix(v, "count="), 10, 64)
	return n
}
