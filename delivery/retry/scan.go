package retry

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Metadata keys of a parked object (S3 user metadata, x-amz-meta-<key>): the
// fields of its retry entry that are not in the object's key, so that an
// entry lost with Redis can be made again from the object alone (Scanner).
const (
	MetaIntegration = "hitship-integration"
	// MetaTarget is the entry's Target (integration, tenant, destination):
	// an entry made again after Redis lost it is sent to that target or
	// nowhere, as the original would have been.
	MetaTarget      = "hitship-target"
	MetaTopic       = "hitship-topic"
	MetaPartition   = "hitship-partition"
	MetaWindowStart = "hitship-window-start" // Unix ms
	MetaFirstOffset = "hitship-first-offset"
	MetaRecords     = "hitship-records"
	MetaBytes       = "hitship-bytes"
	MetaPosition    = "hitship-position"  // cycle/attempt of the next attempt when parked
	MetaParkedAt    = "hitship-parked-at" // Unix ms
)

// Metadata returns the user metadata to store with e's parked object: every
// field a scanner needs to make e again, besides its integration and key
// (which the object's key holds) and its content type and encoding (which
// the object has). Values are ASCII: topic names are, integration names are.
func (e Entry) Metadata() map[string]string {
	m := map[string]string{
		MetaIntegration: e.Integration,
		MetaPartition:   strconv.Itoa(e.Partition),
		MetaWindowStart: strconv.FormatInt(e.WindowStart, 10),
		MetaFirstOffset: strconv.FormatInt(e.FirstOffset, 10),
		MetaRecords:     strconv.Itoa(e.Records),
		MetaBytes:       strconv.FormatInt(e.Bytes, 10),
		MetaPosition:    e.Position().String(),
		MetaParkedAt:    strconv.FormatInt(e.Enqueued.UnixMilli(), 10),
	}
	if e.Topic != "" {
		m[MetaTopic] = e.Topic
	}
	if e.Target != "" {
		m[MetaTarget] = e.Target
	}
	return m
}

// fromMetadata fills the fields Metadata wrote into e; missing or malformed
// fields are left as they are (objects parked before the metadata existed
// still make a deliverable entry).
func (e *Entry) fromMetadata(m map[string]string) {
	get := func(k string) string {
		for mk, v := range m { // S3 SDKs lower-case the keys, others may not
			if strings.EqualFold(mk, k) {
				return v
			}
		}
		return ""
	}
	e.Topic = get(MetaTopic)
	e.Target = get(MetaTarget)
	if v, err := strconv.Atoi(get(MetaPartition)); err == nil {
		e.Partition = v
	}
	if v, err := strconv.ParseInt(get(MetaWindowStart), 10, 64); err == nil {
		e.WindowStart = v
	}
	if v, err := strconv.ParseInt(get(MetaFirstOffset), 10, 64); err == nil {
		e.FirstOffset = v
	}
	if v, err := strconv.Atoi(get(MetaRecords)); err == nil {
		e.Records = v
	}
	if v, err := strconv.ParseInt(get(MetaBytes), 10, 64); err == nil {
		e.Bytes = v
	}
	if v, err := strconv.ParseInt(get(MetaParkedAt), 10, 64); err == nil && v > 0 {
		e.Enqueued = time.UnixMilli(v)
	}
}

// ObjectInfo is what a scanner learns of one object of the parking bucket.
type ObjectInfo struct {
	ContentType string
	Size        int64
	Modified    time.Time
	Metadata    map[string]string
}

// ScanBucket is the parking bucket as a Scanner sees it (the service adapts
// *parking.Store): declared here, where it is used.
type ScanBucket interface {
	// List calls fn with the key of every object under prefix, in pages; it
	// stops at fn's first error and returns it.
	List(ctx context.Context, prefix string, fn func(keys []string) error) error
	// Head returns what the bucket knows of key; found is false when the
	// object is gone.
	Head(ctx context.Context, key string) (info ObjectInfo, found bool, err error)
}

// ScannerConfig configures a Scanner.
type ScannerConfig struct {
	Queue  *Queue
	Bucket ScanBucket
	// ParkedPrefix and DeadPrefix are where parked objects and dead letters
	// are kept, each followed by "<integration>/<key>".
	ParkedPrefix, DeadPrefix string
	// Interval is the time between scans (default 5m); the first scan runs at
	// once.
	Interval time.Duration
	// Lease is how long a scan holds the Redis lease that keeps other
	// replicas from scanning at the same time (default 10m); it is renewed
	// after every page.
	Lease time.Duration
	// Clock is the time source (default RealClock).
	Clock Clock
	// Logger receives what the scanner found (default: discarded).
	Logger *slog.Logger
	// OnRestored, when set, is called for every entry made again.
	OnRestored func(e Entry, dead bool)
}

// Scanner finds objects in the parking bucket whose retry entry is gone
// (Redis lost it: FLUSHALL, a restart without persistence, a failover that
// missed writes) and makes the entry again from the object's key and
// metadata. Every replica runs one; a Redis lease lets one scan at a time.
//
// A parked object without an entry is enqueued at Requeued (2/1), due at
// once: the parked part of the schedule starts over (about 51 minutes of
// attempts), whatever position it had reached. That costs time and attempts,
// never a record. A dead letter's object without an entry becomes a dead
// letter again, dead since the object's last modification, with reason
// RestoredReason, so that `hitship redeliver` finds it.
//
// Objects whose entry exists, or whose entry was completed within DoneTTL
// (a delivery that is deleting its parked copy), are left alone; so are
// objects that vanish before they are looked at.
type Scanner struct {
	cfg ScannerConfig
	log *slog.Logger
}

// RestoredReason is the dead-letter reason of a dead letter made again from
// its object.
const RestoredReason = "dead letter restored from the parking bucket (its retry entry was lost)"

// NewScanner validates cfg, fills defaults and returns the scanner.
func NewScanner(cfg ScannerConfig) (*Scanner, error) {
	if cfg.Queue == nil || cfg.Bucket == nil || cfg.ParkedPrefix == "" || cfg.DeadPrefix == "" {
		return nil, fmt.Errorf("retry: scanner needs a queue, a bucket and both prefixes: %w", ErrInvalid)
	}
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Minute
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 10 * time.Minute
	}
	if cfg.Clock == nil {
		cfg.Clock = RealClock{}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Scanner{cfg: cfg, log: log}, nil
}

// ScanResult counts what one scan did.
type ScanResult struct {
	Parked, Dead      int // objects looked at
	Requeued, Revived int // entries made again: parked, dead letters
}

// Run scans at once and then every Interval until ctx ends; a scan another
// replica holds the lease for is skipped. Errors are logged. It blocks and
// returns nil when ctx ends.
func (s *Scanner) Run(ctx context.Context) error {
	for {
		res, ran, err := s.Scan(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Warn("retry: scan of the parking bucket failed; it runs again later", "err", err)
		case ran && (res.Requeued > 0 || res.Revived > 0):
			s.log.Warn("retry: parked objects without a retry entry found and queued again",
				"requeued", res.Requeued, "dead_letters_restored", res.Revived, "parked", res.Parked, "dead", res.Dead)
		}
		if s.cfg.Clock.Sleep(ctx, s.cfg.Interval) != nil {
			return nil
		}
	}
}

// releaseScript: KEYS lease; ARGV token. Deletes the lease if it is ours.
var releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// renewScript: KEYS lease; ARGV token, ttl ms. Extends the lease if it is ours.
var renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`)

// Scan takes the scan lease and, when it got it, scans both prefixes once.
// ran is false when another replica holds the lease. Blocks for the scan.
func (s *Scanner) Scan(ctx context.Context) (res ScanResult, ran bool, err error) {
	var raw [12]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return res, false, fmt.Errorf("retry: scan lease token: %w", err)
	}
	tok := hex.EncodeToString(raw[:])
	key := s.cfg.Queue.scanLease
	ok, err := s.cfg.Queue.rdb.SetNX(ctx, key, tok, s.cfg.Lease).Result()
	if err != nil {
		return res, false, fmt.Errorf("retry: scan lease: %w", err)
	}
	if !ok {
		return res, false, nil
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
		defer cancel()
		_ = releaseScript.Run(rctx, s.cfg.Queue.rdb, []string{key}, tok).Err()
	}()
	renew := func() error {
		n, err := renewScript.Run(ctx, s.cfg.Queue.rdb, []string{key}, tok, s.cfg.Lease.Milliseconds()).Int()
		if err != nil {
			return fmt.Errorf("retry: scan lease: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("retry: scan lease lost: %w", ErrLeaseLost)
		}
		return nil
	}
	n, err := s.scan(ctx, s.cfg.DeadPrefix, true, renew)
	res.Dead, res.Revived = n.seen, n.made
	if err != nil {
		return res, true, err
	}
	n, err = s.scan(ctx, s.cfg.ParkedPrefix, false, renew)
	res.Parked, res.Requeued = n.seen, n.made
	return res, true, err
}

// ScanDead makes the dead letters whose entry is gone again, without a lease
// (it only adds entries that are missing, idempotently): `hitship redeliver`
// runs it before it lists the dead letters.
func (s *Scanner) ScanDead(ctx context.Context) (int, error) {
	n, err := s.scan(ctx, s.cfg.DeadPrefix, true, func() error { return nil })
	return n.made, err
}

type scanCount struct{ seen, made int }

func (s *Scanner) scan(ctx context.Context, prefix string, dead bool, renew func() error) (scanCount, error) {
	var n scanCount
	err := s.cfg.Bucket.List(ctx, prefix, func(keys []string) error {
		n.seen += len(keys)
		ids := make([]string, 0, len(keys))
		byID := make(map[string]string, len(keys))
		for _, k := range keys {
			rest := strings.TrimPrefix(k, prefix)
			integration, key, ok := strings.Cut(rest, "/")
			if !ok || integration == "" || key == "" {
				continue
			}
			id := integration + "/" + key
			ids = append(ids, id)
			byID[id] = k
		}
		known, err := s.cfg.Queue.known(ctx, ids)
		if err != nil {
			return err
		}
		for i, id := range ids {
			if known[i] {
				continue
			}
			made, err := s.restore(ctx, id, byID[id], dead)
			if err != nil {
				return err
			}
			if made {
				n.made++
			}
		}
		return renew()
	})
	return n, err
}

// restore makes the entry id of the object at objKey again.
func (s *Scanner) restore(ctx context.Context, id, objKey string, dead bool) (bool, error) {
	info, found, err := s.cfg.Bucket.Head(ctx, objKey)
	if err != nil || !found {
		return false, err
	}
	integration, key, _ := strings.Cut(id, "/")
	now := s.cfg.Clock.Now()
	e := Entry{ID: id, Integration: integration, ParkedKey: objKey, Key: key, Cycle: Requeued.Cycle, Attempt: Requeued.Attempt,
		Due: now, Bytes: info.Size, ContentType: info.ContentType, Enqueued: info.Modified}
	e.fromMetadata(info.Metadata)
	e.Cycle, e.Attempt, e.Due = Requeued.Cycle, Requeued.Attempt, now
	if e.Bytes == 0 {
		e.Bytes = info.Size
	}
	if e.Enqueued.IsZero() {
		e.Enqueued = now
	}
	log := s.log.With("id", id, "integration", integration, "object", objKey)
	var made bool
	if dead {
		e.DeadAt, e.DeadReason, e.LastError = info.Modified, RestoredReason, RestoredReason
		if e.DeadAt.IsZero() {
			e.DeadAt = now
		}
		made, err = s.cfg.Queue.restoreDead(ctx, e)
	} else {
		e.LastError = "retry entry restored from the parking bucket (its entry was lost)"
		made, err = s.cfg.Queue.Enqueue(ctx, e)
	}
	if err != nil {
		return false, err
	}
	if made {
		if dead {
			log.Warn("retry: dead letter without an entry restored; hitship redeliver finds it again")
		} else {
			log.Warn("retry: parked object without an entry queued again at the start of the parked schedule", "position", Requeued.String())
		}
		if s.cfg.OnRestored != nil {
			s.cfg.OnRestored(e, dead)
		}
	}
	return made, nil
}

// known reports, for each id, whether the queue has its entry (in any state)
// or completed it within DoneTTL. One pipelined round trip.
func (q *Queue) known(ctx context.Context, ids []string) ([]bool, error) {
	out := make([]bool, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	has := make([]*redis.BoolCmd, len(ids))
	done := make([]*redis.IntCmd, len(ids))
	_, err := q.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			has[i] = p.HExists(ctx, q.entries, id)
			done[i] = p.Exists(ctx, q.done+id)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("retry: scan: %w", err)
	}
	for i := range ids {
		out[i] = has[i].Val() || done[i].Val() == 1
	}
	return out, nil
}

// restoreDeadScript: KEYS entries, dead; ARGV id, json, dead ms. 1 added, 0
// exists.
var restoreDeadScript = redis.NewScript(`
if redis.call('HSETNX', KEYS[1], ARGV[1], ARGV[2]) == 0 then return 0 end
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return 1
`)

// restoreDead adds e as a dead letter unless an entry with its id exists.
func (q *Queue) restoreDead(ctx context.Context, e Entry) (bool, error) {
	if err := e.check(); err != nil {
		return false, err
	}
	b, err := json.Marshal(e)
	if err != nil {
		return false, fmt.Errorf("retry: encode entry %s: %w", e.ID, err)
	}
	n, err := restoreDeadScript.Run(ctx, q.rdb, []string{q.entries, q.dead}, e.ID, b, ms(e.DeadAt)).Int()
	if err != nil {
		return false, fmt.Errorf("retry: restore dead letter %s: %w", e.ID, err)
	}
	return n == 1, nil
}
