package registry

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Reconciled says what one reconciliation changed, by integration name.
type Reconciled struct {
	// Restored: entries of the durable copy written back into Redis (missing
	// there, or older).
	Restored []string
	// Published: Redis entries written to the durable copy (missing there,
	// or older: the writer died between the two writes, or an older hitship
	// wrote Redis only).
	Published []string
	// Removed: Redis entries deleted because the durable copy deleted them
	// later (Forget on another replica).
	Removed []string
}

// Empty reports whether nothing changed.
func (r Reconciled) Empty() bool {
	return len(r.Restored) == 0 && len(r.Published) == 0 && len(r.Removed) == 0
}

// restoreScript: KEYS hash; ARGV name, JSON, version. Writes the entry unless
// Redis holds one of the same or a newer version. 1 written.
var restoreScript = redis.NewScript(`
local raw = redis.call('HGET', KEYS[1], ARGV[1])
if raw then
  local ok, st = pcall(cjson.decode, raw)
  if ok and type(st) == 'table' and (tonumber(st.version) or 0) >= tonumber(ARGV[3]) then return 0 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return 1
`)

// removeScript: KEYS hash; ARGV name, JSON. Deletes the entry if it is still
// exactly JSON. 1 deleted.
var removeScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 1
end
return 0
`)

// reconcile brings Redis (as read into raw) and the durable copy together,
// entry by entry; the newer version wins (a tombstone counts as a version of
// its time):
//
//   - in the durable copy, missing or older in Redis: written into Redis
//     (only if Redis did not get a newer one meanwhile);
//   - in Redis, missing or older in the durable copy: published to it;
//   - in Redis, deleted later in the durable copy: deleted from Redis (only
//     if unchanged meanwhile).
//
// Unreadable entries are left alone. It stops at the first failed write to
// the durable copy (Kafka unreachable: each would wait for its timeout) and
// returns what it did with the error. A no-op without a durable copy.
func (s *Store) reconcile(ctx context.Context, raw map[string]string) (Reconciled, error) {
	var out Reconciled
	if s.durable == nil {
		return out, nil
	}
	ds := s.durable.Entries()
	names := make([]string, 0, len(raw)+len(ds))
	for name := range raw {
		names = append(names, name)
	}
	for key := range ds {
		if name, ok := strings.CutPrefix(key, DurableKeyPrefix); ok && name != "" {
			if _, dup := raw[name]; !dup {
				names = append(names, name)
			}
		}
	}
	slices.Sort(names)
	var errs []error
	for _, name := range names {
		r, rok := raw[name]
		var rs Status
		if rok {
			var ok bool
			if rs, ok = decodeStrict(name, []byte(r)); !ok {
				continue // not ours to copy
			}
		}
		e, dok := ds[DurableKeyPrefix+name]
		var dsSt Status
		if dok && !e.Deleted() {
			var ok bool
			if dsSt, ok = decodeStrict(name, e.Value); !ok {
				dok = false // unreadable there: Redis's copy replaces it
			}
		}
		switch {
		case dok && e.Deleted():
			if rok && rs.Version <= e.Time.UnixMilli() {
				n, err := removeScript.Run(ctx, s.rdb, []string{s.hash}, name, r).Int()
				if err != nil {
					return out, fmt.Errorf("registry: reconcile %s: %w", name, err)
				}
				if n == 1 {
					out.Removed = append(out.Removed, name)
				}
				continue
			}
			if !rok {
				continue
			}
		case dok && (!rok || dsSt.Version > rs.Version):
			n, err := restoreScript.Run(ctx, s.rdb, []string{s.hash}, name, string(e.Value), dsSt.Version).Int()
			if err != nil {
				return out, fmt.Errorf("registry: reconcile %s: %w", name, err)
			}
			if n == 1 {
				out.Restored = append(out.Restored, name)
			}
			continue
		case dok && dsSt.Version == rs.Version:
			continue
		}
		if !rok {
			continue
		}
		// Redis's entry is newer than anything in the durable copy.
		dctx, cancel := context.WithTimeout(ctx, s.dtime)
		err := s.durable.Put(dctx, DurableKeyPrefix+name, []byte(r))
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("registry: reconcile %s: %w", name, err))
			break
		}
		out.Published = append(out.Published, name)
	}
	return out, errors.Join(errs...)
}

// forgetScript: KEYS hash, stream; ARGV name, maxlen, type, reason, by, at.
// Deletes the entry and records the event, atomically.
var forgetScript = redis.NewScript(`
redis.call('HDEL', KEYS[1], ARGV[1])
return redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*',
  'type', ARGV[3], 'integration', ARGV[1], 'reason', ARGV[4], 'by', ARGV[5], 'at', ARGV[6])
`)

// Forget deletes the runtime state of name: a tombstone in the durable copy
// first, then the Redis entry with a delete_integration event (one script).
// In that order a replica reconciling meanwhile cannot bring the state back:
// it may restore the entry into Redis from a copy that has not yet seen the
// tombstone, and removes it again once it has. The caller checks that name is
// no longer configured. It blocks for one acknowledged write to the durable
// copy and one Redis round trip; when the durable copy cannot be written,
// nothing is deleted.
func (s *Store) Forget(ctx context.Context, name, reason, by string) (Event, error) {
	if err := checkName(name); err != nil {
		return Event{}, err
	}
	reason, by = clip(reason), clip(by)
	if s.durable != nil {
		dctx, cancel := context.WithTimeout(ctx, s.dtime)
		err := s.durable.Delete(dctx, DurableKeyPrefix+name)
		cancel()
		if err != nil {
			return Event{}, fmt.Errorf("registry: forget %s: %w", name, err)
		}
	}
	at := s.now().UTC().Truncate(time.Millisecond)
	id, err := forgetScript.Run(ctx, s.rdb, []string{s.hash, s.stream},
		name, MaxEvents, DeleteEventType, reason, by, at.Format(timeLayout)).Text()
	if err != nil {
		return Event{}, fmt.Errorf("registry: forget %s: %w", name, err)
	}
	return Event{ID: id, Type: DeleteEventType, Integration: name, Reason: reason, By: by, At: at}, nil
}
