// Command redis-sizing measures how much Redis memory hitship needs (issue
// #14; README, "Redis in production"). It runs the real binary (`hitship
// run`, built from this tree or -bin) against an in-process kfake topic, a
// discarding S3 endpoint for the customers' buckets and gofakes3 for the
// parking (and staging) bucket, each run with a fresh redis-server of its own
// and hitship connected as the least-privilege ACL user of
// redisconn.ACLRule; live traffic with current event times for -duration
// (windows of -window), per-partition delivery and staged delivery, over a
// few (partitions, integrations) points. Some integrations point at a
// bucket that does not exist: their objects fail cycle 1 and are parked, so
// the retry queue holds entries.
//
// While hitship still runs it reads Redis: INFO memory's used_memory minus
// the empty server's (and its peak, sampled every 0.5 s), MEMORY USAGE of
// every key summed per family of state/keys.go, INFO commandstats (commands
// a second and per partition and window) and Redis's CPU, and ACL LOG (any
// denial fails the run). Then it derives bytes per partition (runs that
// differ in P), per integration (runs that differ in I), per retry entry and
// per open buffer of a snapshot, and fills an events stream to its cap
// (registry.MaxEvents, XADD MAXLEN ~).
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"hitship/integrations/registry"
	"hitship/internal/redisconn"
	"hitship/internal/testenv"
)

type options struct {
	points   string
	modes    string
	broken   int
	rate     int
	window   string
	duration time.Duration
	spread   bool
	cluster  bool
	// maxmemory > 0 sets maxmemory to the empty server's use plus this,
	// with noeviction: how hitship fares when Redis is full.
	maxmemory int64
	bin       string
}

type bench struct {
	o    options
	k    *testenv.Kafka
	dir  string
	bin  string
	runs int
}

func main() {
	var o options
	flag.StringVar(&o.points, "points", "12x10,48x10,12x1000", "the runs' (partitions)x(healthy integrations), comma-separated; runs differing in one of them give the per-partition and per-integration figures")
	flag.StringVar(&o.modes, "modes", "per-partition,staged", "delivery modes to run every point in: per-partition, staged")
	flag.IntVar(&o.broken, "broken", 20, "integrations (besides -points') whose bucket does not exist: their objects are parked")
	flag.IntVar(&o.rate, "rate", 2000, "hits per second, the integrations' clients in turn")
	flag.StringVar(&o.window, "window", "10s", "window.size")
	flag.DurationVar(&o.duration, "duration", 40*time.Second, "how long each run goes before Redis is read; then up to 40 s more until the broken integrations' objects of a window are parked (cycle 1 takes 29 s)")
	flag.BoolVar(&o.spread, "spread", false, "round-robin over the partitions instead of partition = client id mod P: every integration in every partition")
	flag.BoolVar(&o.cluster, "cluster", false, "run hitship in redis.mode cluster against a one-node Redis Cluster (prefix {hitship}:)")
	flag.Int64Var(&o.maxmemory, "maxmemory", 0, "bytes Redis may hold over an empty server's (maxmemory-policy noeviction): a full Redis refuses writes; 0: no limit")
	flag.StringVar(&o.bin, "bin", "", "run this hitship binary instead of building ./cmd/hitship")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "redis-sizing:", err)
		os.Exit(1)
	}
}

func parsePoints(s string) ([][2]int, error) {
	var pts [][2]int
	for f := range strings.SplitSeq(s, ",") {
		ps, is, ok := strings.Cut(strings.TrimSpace(f), "x")
		p, err1 := strconv.Atoi(ps)
		i, err2 := strconv.Atoi(is)
		if !ok || err1 != nil || err2 != nil || p < 1 || i < 1 {
			return nil, fmt.Errorf("-points: %q is not PxI", f)
		}
		pts = append(pts, [2]int{p, i})
	}
	return pts, nil
}

func run(o options) error {
	ctx := context.Background()
	pts, err := parsePoints(o.points)
	if err != nil {
		return err
	}
	var cfgs []runCfg
	for m := range strings.SplitSeq(o.modes, ",") {
		if m != "per-partition" && m != "staged" {
			return fmt.Errorf("-modes: unknown mode %q", m)
		}
		for _, pt := range pts {
			cfgs = append(cfgs, runCfg{staged: m == "staged", partitions: pt[0], healthy: pt[1], broken: o.broken})
		}
	}
	dir, err := os.MkdirTemp("", "hitship-redis-sizing")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := o.bin
	if bin == "" {
		bin = filepath.Join(dir, "hitship")
		if err := testenv.BuildHitship(ctx, ".", bin); err != nil {
			return err
		}
	}
	k, err := testenv.StartKafka(testenv.KafkaOptions{Partitions: 1})
	if err != nil {
		return err
	}
	defer k.Close()
	b := &bench{o: o, k: k, dir: dir, bin: bin}
	fmt.Printf("redis-sizing: %d runs of %s each, windows %s, %d hits/s (%s), %d broken integrations besides the healthy ones; hitship as ACL user %q (%s)\n",
		len(cfgs), o.duration, o.window, o.rate, partitioning(o.spread), o.broken, aclUser, redisconn.ACLRule(map[bool]string{false: prefix, true: clusterPrefix}[o.cluster], o.cluster))
	var res []result
	for _, rc := range cfgs {
		t0 := time.Now()
		r, err := b.run(ctx, rc)
		if err != nil {
			return fmt.Errorf("%s: %w", rc, err)
		}
		fmt.Printf("  %s: %s, used %s, %d retry entries, %d objects written, %d refused, %d of %d records committed, %d writes refused for maxmemory, %d ACL denials\n",
			rc, time.Since(t0).Round(time.Second), kb(r.used), r.counts.retryEntries, r.objects, r.refused, r.committed, r.produced, r.oom, len(r.denials))
		res = append(res, r)
	}
	red, err := testenv.StartRedis(testenv.RedisOptions{})
	if err != nil {
		return err
	}
	defer red.Close()
	st, err := fillSteady(ctx, red.Client())
	if err != nil {
		return err
	}
	report(o, res, st)
	for _, r := range res {
		if len(r.denials) > 0 {
			return fmt.Errorf("%s: the ACL user was denied: %s", r.cfg, strings.Join(r.denials, "; "))
		}
	}
	return nil
}

func partitioning(spread bool) string {
	if spread {
		return "round-robin over the partitions"
	}
	return "partition = client id mod P"
}

func kb(n int64) string {
	switch {
	case n >= 10<<20:
		return fmt.Sprintf("%.1f MB", float64(n)/(1<<20))
	case n >= 10<<10 || n <= -10<<10:
		return fmt.Sprintf("%.0f KB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// data is a run's used memory without the client connections' buffers,
// the scripts' cache (both the same whatever the size) and the retry queue
// (parked objects: c).
func (r result) data() int64 {
	return r.used - r.clients - r.scripts - r.fams["retry queue"].bytes - r.fams["retry inline/done marks"].bytes
}

func report(o options, res []result, st steady) {
	fmt.Println()
	fmt.Println("| run | empty server | used_memory - empty | of it client buffers | of it scripts | peak during the run | keys (MEMORY USAGE) | retry entries | snapshot open buffers | objects (written + refused) | commands/s | per object | Redis CPU | hitship peak RSS |")
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, r := range res {
		var calls int64
		for _, n := range r.calls {
			calls += n
		}
		secs := r.elapsed.Seconds()
		fmt.Printf("| %s | %s | %s | %s | %s | %s | %s | %d | %d | %d | %.0f | %.1f | %.1f%% | %d MB |\n", r.cfg, kb(r.empty), kb(r.used), kb(r.clients), kb(r.scripts), kb(r.peak), kb(r.keysUsed),
			r.counts.retryEntries, r.counts.ghosts, r.objects+r.refused, float64(calls)/secs, float64(calls)/float64(max(r.objects+r.refused, 1)), 100*r.cpu/secs, r.rssKiB>>10)
	}
	fmt.Println()
	fmt.Print("| family |")
	for _, r := range res {
		fmt.Printf(" %s |", r.cfg)
	}
	fmt.Print("\n| --- |")
	for range res {
		fmt.Print(" --- |")
	}
	fmt.Println()
	for _, name := range familyOrder {
		any := false
		for _, r := range res {
			any = any || r.fams[name].keys > 0
		}
		if !any {
			continue
		}
		fmt.Printf("| %s |", name)
		for _, r := range res {
			f := r.fams[name]
			fmt.Printf(" %s (%d) |", kb(f.bytes), f.keys)
		}
		fmt.Println()
	}
	for _, r := range res {
		if len(r.others) > 0 {
			fmt.Printf("%s: keys of no family of state/keys.go, e.g. %s\n", r.cfg, strings.Join(r.others, ", "))
		}
	}

	fmt.Println()
	fmt.Println("Derived from used_memory - empty - client buffers - scripts - retry queue (a: runs that differ only in P, b: only in I):")
	for _, staged := range []bool{false, true} {
		var mine []result
		for _, r := range res {
			if r.cfg.staged == staged {
				mine = append(mine, r)
			}
		}
		if len(mine) == 0 {
			continue
		}
		mode := mine[0].cfg.String()
		mode = mode[:strings.IndexByte(mode, ' ')]
		for i, x := range mine {
			for _, y := range mine[i+1:] {
				switch {
				case x.cfg.healthy == y.cfg.healthy && x.cfg.partitions != y.cfg.partitions:
					fmt.Printf("  %s: a = %.0f bytes per partition (P %d -> %d at I=%d); partition families alone %.0f\n", mode,
						float64(y.data()-x.data())/float64(y.cfg.partitions-x.cfg.partitions), x.cfg.partitions, y.cfg.partitions, x.cfg.healthy,
						float64(partitionBytes(y)-partitionBytes(x))/float64(y.cfg.partitions-x.cfg.partitions))
				case x.cfg.partitions == y.cfg.partitions && x.cfg.healthy != y.cfg.healthy:
					fmt.Printf("  %s: b = %.0f bytes per integration (I %d -> %d at P=%d); health ledgers + last notes + integrations hash alone %.0f\n", mode,
						float64(y.data()-x.data())/float64(y.cfg.healthy-x.cfg.healthy), x.cfg.healthy, y.cfg.healthy, x.cfg.partitions,
						float64(integrationBytes(y)-integrationBytes(x))/float64(y.cfg.healthy-x.cfg.healthy))
				}
			}
		}
		slices.SortFunc(mine, func(x, y result) int { return int(y.counts.retryEntries - x.counts.retryEntries) })
		if r := mine[0]; r.counts.retryEntries > 0 {
			q := r.fams["retry queue"].bytes + r.fams["retry inline/done marks"].bytes
			fmt.Printf("  %s: c = %.0f bytes per retry entry (%s: retry queue keys %s over %d entries)\n", mode,
				float64(q)/float64(r.counts.retryEntries), r.cfg, kb(q), r.counts.retryEntries)
		}
		var ghosts, snapBytes int64
		for _, r := range mine {
			ghosts += r.counts.ghosts
			snapBytes += r.fams["partition snapshots"].bytes
		}
		if ghosts > 0 {
			fmt.Printf("  %s: snapshots %.0f bytes per open buffer (integration x open window in a partition), all runs\n", mode, float64(snapBytes)/float64(ghosts))
		}
	}
	fmt.Printf("  events stream at its cap (XADD MAXLEN ~ %d): %s with 100-byte reasons, %s with %d-byte reason and by (the most a reason keeps); %d entries after %d appends\n",
		registry.MaxEvents, kb(st.evTypical), kb(st.evWorst), registry.MaxReasonBytes, st.evLen, registry.MaxEvents+registry.MaxEvents/4)
	fmt.Printf("  health ledger after 12 hours: %s (outcomes in 1 minute of 10: 10-minute windows), %s (every minute: 1-minute windows), %s (customer-side failures every minute: the most)\n",
		kb(st.ledger10m), kb(st.ledger1m), kb(st.ledgerFailing))
	fmt.Println()
	fmt.Println("Commands hitship sent (INFO commandstats, all runs; scripts' commands included):")
	all := map[string]int64{}
	for _, r := range res {
		for c, n := range r.calls {
			all[c] += n
		}
	}
	names := make([]string, 0, len(all))
	for c := range all {
		names = append(names, c)
	}
	slices.SortFunc(names, func(x, y string) int { return int(all[y] - all[x]) })
	var line []string
	allowed := map[string]bool{}
	for _, c := range redisconn.ACLCommands {
		allowed[c] = true
	}
	for _, c := range redisconn.ACLClusterCommands {
		allowed[c] = o.cluster
	}
	for _, c := range names {
		mark := ""
		if !allowed[c] {
			mark = " (NOT IN redisconn.ACLCommands)"
		}
		line = append(line, fmt.Sprintf("%s %d%s", c, all[c], mark))
	}
	fmt.Println("  " + strings.Join(line, ", "))
}

func partitionBytes(r result) int64 {
	var n int64
	for name, f := range r.fams {
		if strings.HasPrefix(name, "partition ") {
			n += f.bytes
		}
	}
	return n
}

func integrationBytes(r result) int64 {
	return r.fams["health ledgers"].bytes + r.fams["last notes"].bytes + r.fams["integrations hash"].bytes
}
