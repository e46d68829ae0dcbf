package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// info returns the fields of INFO section.
func info(ctx context.Context, rdb *redis.Client, section string) (map[string]string, error) {
	s, err := rdb.Info(ctx, section).Result()
	if err != nil {
		return nil, err
	}
	m := map[string]string{}
	for line := range strings.SplitSeq(s, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			m[k] = v
		}
	}
	return m, nil
}

func infoInt(m map[string]string, k string) int64 {
	n, _ := strconv.ParseInt(m[k], 10, 64)
	return n
}

func infoFloat(m map[string]string, k string) float64 {
	f, _ := strconv.ParseFloat(m[k], 64)
	return f
}

// usedMemory is INFO memory's used_memory and mem_clients_normal (the
// buffers of the clients' connections, part of used_memory).
func usedMemory(ctx context.Context, rdb *redis.Client) (used, clients int64, err error) {
	m, err := info(ctx, rdb, "memory")
	if err != nil {
		return 0, 0, err
	}
	return infoInt(m, "used_memory"), infoInt(m, "mem_clients_normal"), nil
}

// commandCalls is INFO commandstats: calls per command (lower case; a
// subcommand as "client|setinfo"). Commands run by scripts are counted too.
func commandCalls(ctx context.Context, rdb *redis.Client) (map[string]int64, error) {
	m, err := info(ctx, rdb, "commandstats")
	if err != nil {
		return nil, err
	}
	calls := map[string]int64{}
	for k, v := range m {
		name, ok := strings.CutPrefix(k, "cmdstat_")
		if !ok {
			continue
		}
		for f := range strings.SplitSeq(v, ",") {
			if n, ok := strings.CutPrefix(f, "calls="); ok {
				calls[name], _ = strconv.ParseInt(n, 10, 64)
			}
		}
	}
	return calls, nil
}

// family is what the keys of one family of state/keys.go hold.
type family struct {
	keys  int64
	bytes int64 // MEMORY USAGE, summed
}

// counts are what the families hold, beside their bytes.
type counts struct {
	retryEntries int64 // HLEN of the retry queues' entries hashes: parked objects and dead letters
	ghosts       int64 // open buffers in the window snapshots
	snapshots    int64
	streamLen    int64 // XLEN of the events stream
}

// Families of state/keys.go, in the order they are printed.
var familyOrder = []string{
	"partition owner", "partition snapshots", "partition idle log", "partition dead letters", "partition routing log", "partition read mark",
	"route sets", "retry queue", "retry inline/done marks", "health ledgers", "last notes", "integrations hash", "events stream",
	"staging marks", "assembly leases", "definition locks", "event relay", "other",
}

// classify names the family of key (under prefix), after state/keys.go.
func classify(prefix, key string) string {
	rest, ok := strings.CutPrefix(key, prefix)
	if !ok {
		return "other"
	}
	switch {
	case strings.HasPrefix(rest, "routeset:"):
		return "route sets"
	case strings.HasPrefix(rest, "health:"):
		return "health ledgers"
	case strings.HasPrefix(rest, "last:"):
		return "last notes"
	case rest == "integrations":
		return "integrations hash"
	case rest == "events":
		return "events stream"
	case rest == "events:relay" || rest == "events:relayed":
		return "event relay"
	case strings.HasPrefix(rest, "deflock:"):
		return "definition locks"
	case !strings.HasPrefix(rest, "{"):
		return "other"
	}
	tag, suffix, ok := strings.Cut(rest[1:], "}:")
	if !ok {
		return "other"
	}
	f := strings.Split(suffix, ":")
	switch strings.Count(tag, ":") {
	case 2: // {group:topic:partition}:[inc:]name
		name := f[len(f)-1]
		if len(f) >= 2 && f[len(f)-2] == "snap" {
			name = "snap"
		}
		switch name {
		case "owner":
			return "partition owner"
		case "snaps", "snap":
			return "partition snapshots"
		case "idle":
			return "partition idle log"
		case "dead":
			return "partition dead letters"
		case "routes":
			return "partition routing log"
		case "read":
			return "partition read mark"
		}
	case 1: // {group:topic}:staged|assemble:...
		switch f[0] {
		case "staged":
			return "staging marks"
		case "assemble":
			return "assembly leases"
		}
	case 0: // {name}:entries|due|leased|tokens|dead|scan|inline:<id>|done:<id>
		switch f[0] {
		case "entries", "due", "leased", "tokens", "dead", "scan":
			return "retry queue"
		case "inline", "done":
			return "retry inline/done marks"
		}
	}
	return "other"
}

// families sums MEMORY USAGE (every element counted: SAMPLES 0) per family
// of the keys under prefix, and counts what some of them hold.
func families(ctx context.Context, rdb *redis.Client, prefix string) (map[string]family, counts, []string, error) {
	fams := map[string]family{}
	var c counts
	var others []string
	var keys []string
	it := rdb.Scan(ctx, 0, "*", 1000).Iterator()
	for it.Next(ctx) {
		keys = append(keys, it.Val())
	}
	if err := it.Err(); err != nil {
		return nil, c, nil, err
	}
	slices.Sort(keys)
	for batch := range slices.Chunk(keys, 500) {
		usage := make([]*redis.IntCmd, len(batch))
		if _, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, k := range batch {
				usage[i] = p.MemoryUsage(ctx, k, 0)
			}
			return nil
		}); err != nil && err != redis.Nil {
			return nil, c, nil, err
		}
		for i, k := range batch {
			n, err := usage[i].Result()
			if err == redis.Nil {
				continue // expired meanwhile
			}
			if err != nil {
				return nil, c, nil, err
			}
			name := classify(prefix, k)
			f := fams[name]
			f.keys++
			f.bytes += n
			fams[name] = f
			if name == "other" && len(others) < 5 {
				others = append(others, k)
			}
			rest := strings.TrimPrefix(k, prefix)
			switch {
			case name == "retry queue" && strings.HasSuffix(rest, "}:entries"):
				n, err := rdb.HLen(ctx, k).Result()
				if err != nil {
					return nil, c, nil, err
				}
				c.retryEntries += n
			case name == "partition snapshots" && strings.Contains(rest, ":snap:"):
				js, err := rdb.Get(ctx, k).Bytes()
				if err == redis.Nil {
					continue
				}
				if err != nil {
					return nil, c, nil, err
				}
				var s struct {
					Ghosts []json.RawMessage `json:"ghosts"`
				}
				if err := json.Unmarshal(js, &s); err != nil {
					return nil, c, nil, fmt.Errorf("snapshot %s: %w", k, err)
				}
				c.snapshots++
				c.ghosts += int64(len(s.Ghosts))
			case name == "events stream":
				if c.streamLen, err = rdb.XLen(ctx, k).Result(); err != nil {
					return nil, c, nil, err
				}
			}
		}
	}
	return fams, c, others, nil
}
