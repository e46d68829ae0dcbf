package staging

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"hitship/delivery"
	"hitship/delivery/parking"
	"hitship/integrations"
	"hitship/metrics"
	"hitship/sink"
	"hitship/sink/parquet"
)

// Targets is the routing table as the assembler sees it
// (*integrations.Routes).
type Targets interface {
	Target(id string) (*integrations.Target, bool)
	All() *integrations.RouteSet
}

// Deliverer sends an assembled object to its customer on the retry schedule
// (*delivery.Inline): done(nil) once it is delivered or parked.
type Deliverer interface {
	Deliver(ctx context.Context, j *delivery.Job, done func(error))
}

// AssemblerConfig tunes an Assembler.
type AssemblerConfig struct {
	Topic  string
	Window time.Duration // the window size
	// Interval is how often the marks are read and the ready boundaries
	// listed (default 1s).
	Interval time.Duration
	// LeaseTTL is the lease of one assembly of a (target, window), renewed
	// every third of it while the assembly runs (default 30s): a replica
	// that dies assembling delays the window by about that much.
	LeaseTTL time.Duration
	// Concurrency bounds the assemblies at once (default 16).
	Concurrency int
	// ParquetBuilds bounds the assemblies at once that encode Parquet
	// (default GOMAXPROCS): each holds its records for sorting (up to
	// assemblyMemory) and parquet-go's column buffers, and encoding is
	// CPU-bound, so more at once than there are cores only adds memory
	// (16 at once took ocsf-parquet past the soft memory limit, where the
	// runtime spent a third of hitship's CPU collecting and returning memory;
	// bench/README.md, "ocsf-parquet"). A build holds its slot from its
	// first segment read to the finished file; its segments are opened
	// together, ahead of their merge (openAhead), so the slot waits about
	// one round trip to the staging bucket, not one per segment.
	ParquetBuilds int
}

// AssemblerDeps are an Assembler's collaborators.
type AssemblerDeps struct {
	Store      *parking.Store
	Layout     Layout
	Coord      *Coord
	Targets    Targets
	Partitions func(ctx context.Context) (int, error) // the topic's partition count
	Spool      *sink.Spool
	Deliver    Deliverer
	Logger     *slog.Logger
	Metrics    *metrics.Metrics
	// Manifest reports whether the integration of that name wants a manifest
	// beside each of its objects (config Integration.Manifest); nil: none.
	Manifest func(integration string) bool
}

// Assembler is the delivery half (see the package doc). Every replica runs
// one; a Redis lease per (target, window) lets one of them assemble it.
type Assembler struct {
	cfg  AssemblerConfig
	d    AssemblerDeps
	q    *queue
	mu   sync.Mutex
	busy map[string]bool // (namespace, window) assembling or queued here
	// started counts, per boundary, the assemblies a listing of it started
	// that have not finished: Tick lists a boundary again only once they
	// all have (the listing of every complete boundary at every tick was the
	// only full listing hitship made, 12% of its CPU with 1,000 tenants).
	started map[int64]int
	wg      sync.WaitGroup
	// warned holds the targets whose segments wait for a configured integration.
	warned map[string]bool
	// parquetBuilds holds a token per Parquet build running (ParquetBuilds).
	parquetBuilds chan struct{}
}

// NewAssembler returns an Assembler.
func NewAssembler(cfg AssemblerConfig, d AssemblerDeps) (*Assembler, error) {
	if d.Store == nil || d.Coord == nil || d.Targets == nil || d.Partitions == nil || d.Spool == nil || d.Deliver == nil ||
		d.Logger == nil || d.Metrics == nil {
		return nil, errors.New("staging: assembler dependencies missing")
	}
	if cfg.Window <= 0 {
		return nil, errors.New("staging: window size must be positive")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Second
	}
	if cfg.LeaseTTL <= 0 {
		cfg.LeaseTTL = 30 * time.Second
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 16
	}
	if cfg.ParquetBuilds <= 0 {
		cfg.ParquetBuilds = runtime.GOMAXPROCS(0)
	}
	return &Assembler{cfg: cfg, d: d, q: newQueue(cfg.Concurrency), busy: map[string]bool{}, started: map[int64]int{}, warned: map[string]bool{},
		parquetBuilds: make(chan struct{}, cfg.ParquetBuilds)}, nil
}

// Run assembles until ctx ends, then waits for the assemblies it started.
func (a *Assembler) Run(ctx context.Context) error {
	t := time.NewTicker(a.cfg.Interval)
	defer t.Stop()
	var lastErr string
	for {
		if err := a.Tick(ctx); err != nil && ctx.Err() == nil {
			if err.Error() != lastErr {
				a.d.Logger.Warn("staged delivery: cannot look for complete windows; trying again", "err", err)
			}
			lastErr = err.Error()
		} else {
			lastErr = ""
		}
		select {
		case <-ctx.Done():
			a.wg.Wait()
			return nil
		case <-t.C:
		}
	}
}

// Wait waits for the assemblies started by Tick.
func (a *Assembler) Wait() { a.wg.Wait() }

// Tick starts an assembly for every (target, window) with segments at a
// boundary every partition has passed, unless one runs here already.
func (a *Assembler) Tick(ctx context.Context) error {
	n, err := a.d.Partitions(ctx)
	if err != nil {
		return fmt.Errorf("partition count: %w", err)
	}
	marks, err := a.d.Coord.Marks(ctx)
	if err != nil {
		return fmt.Errorf("marks: %w", err)
	}
	g, ok := Complete(marks, n)
	if !ok {
		return nil
	}
	dirs, err := a.d.Store.Dirs(ctx, a.d.Layout.SegPrefix())
	if err != nil {
		return err
	}
	var failed error // a boundary whose listing failed; the others go on
	for _, d := range dirs {
		b, err := strconv.ParseInt(d, 10, 64)
		if err != nil || b > g {
			continue
		}
		a.mu.Lock()
		running := a.started[b] > 0
		a.mu.Unlock()
		if running {
			continue
		}
		groups := map[string][]string{} // target\x00window -> segment keys
		var order []string
		err = a.d.Store.List(ctx, a.d.Layout.BoundaryPrefix(b), func(keys []string) error {
			for _, k := range keys {
				id, err := a.d.Layout.ParseSegmentKey(k)
				if err != nil {
					a.d.Logger.Warn("staged delivery: ignoring a foreign object among the segments", "key", k)
					continue
				}
				gk := Namespace(id.Target) + "\x00" + strconv.FormatInt(id.Window, 10)
				if groups[gk] == nil {
					order = append(order, gk)
				}
				groups[gk] = append(groups[gk], k)
			}
			return nil
		})
		if err != nil {
			failed = cmp.Or(failed, fmt.Errorf("listing the segments of boundary %d: %w", b, err))
			continue
		}
		for _, gk := range order {
			ns, ws, _ := strings.Cut(gk, "\x00")
			window, _ := strconv.ParseInt(ws, 10, 64)
			a.start(ctx, ns, window, b, groups[gk])
		}
	}
	return failed
}

func (a *Assembler) start(ctx context.Context, target string, window, closeAt int64, segs []string) {
	bk := target + "\x00" + strconv.FormatInt(window, 10)
	a.mu.Lock()
	if a.busy[bk] {
		a.mu.Unlock()
		return
	}
	a.busy[bk] = true
	a.started[closeAt]++
	a.mu.Unlock()
	a.wg.Add(1)
	a.q.push(func() {
		defer a.wg.Done()
		defer func() {
			a.mu.Lock()
			delete(a.busy, bk)
			if a.started[closeAt]--; a.started[closeAt] <= 0 {
				delete(a.started, closeAt)
			}
			a.mu.Unlock()
		}()
		if ctx.Err() != nil {
			return
		}
		if err := a.assemble(ctx, target, window, closeAt, segs); err != nil && ctx.Err() == nil {
			a.d.Metrics.Assembled.WithLabelValues("any", metrics.ResultError).Inc()
			a.d.Logger.Warn("staged delivery: assembly failed; tried again at the next tick", "target", target,
				"window", time.UnixMilli(window).UTC().Format(time.RFC3339), "err", err)
		}
	})
}

// Namespace is the namespace of a target's objects in the staging bucket
// (intents, manifests, leases, late numbers): its integration
// (integrations.IntegrationKey, "name:clientID"), not its destination, so that
// the segments a target staged before a reload moved it and those its
// successor staged after are one window's records, numbered and de-duplicated
// together, and never two objects under one key.
func Namespace(targetID string) string {
	if k, ok := integrations.IntegrationKey(targetID); ok {
		return k
	}
	return targetID
}

// resolve finds the target segments of a namespace (or target ID) go to: the
// configured integration of the same name and client, wherever its
// destination is now, never another tenant's.
func (a *Assembler) resolve(id string) (*integrations.Target, bool) {
	return a.d.Targets.All().Successor(id)
}

// assemble delivers the segments segs of namespace ns's window that closed at
// closeAt, under the (ns, window) lease.
func (a *Assembler) assemble(ctx context.Context, ns string, window, closeAt int64, segs []string) error {
	t, ok := a.resolve(ns)
	if !ok {
		a.mu.Lock()
		warn := !a.warned[ns]
		a.warned[ns] = true
		a.mu.Unlock()
		if warn {
			a.d.Logger.Warn("staged delivery: segments of an integration that is no longer configured wait in the staging bucket (configure it again, or delete them)",
				"integration", ns, "prefix", a.d.Layout.BoundaryPrefix(closeAt))
		}
		return nil
	}
	release, err := a.d.Coord.Lease(ctx, ns, window, a.cfg.LeaseTTL)
	if errors.Is(err, ErrLeaseHeld) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("lease: %w", err)
	}
	defer release()

	intents, manifests, err := a.loadObjects(ctx, ns, window)
	if err != nil {
		return err
	}
	present := map[string]bool{}
	for _, k := range segs {
		present[k] = true
	}
	// Unfinished intents first: their record set is fixed.
	claimed := map[string]bool{}
	for _, in := range intents {
		for _, k := range in.Segments {
			claimed[k] = true
		}
	}
	for _, in := range intents {
		if manifests[in.Object] {
			continue
		}
		missing := 0
		for _, k := range in.Segments {
			if !present[k] {
				missing++
			}
		}
		if in.CloseAt != closeAt {
			continue // another boundary's listing resumes it
		}
		if missing > 0 {
			return fmt.Errorf("intent %s lists %d segments that are gone; it cannot be assembled again", in.Object, missing)
		}
		if err := a.deliver(ctx, t, in); err != nil {
			return err
		}
	}
	// Segments that finished intents list are leftovers of a replay: delete.
	var fresh []string
	for _, k := range segs {
		if !claimed[k] {
			fresh = append(fresh, k)
		}
	}
	for _, in := range intents {
		if !manifests[in.Object] {
			continue
		}
		for _, k := range in.Segments {
			if present[k] {
				if err := a.d.Store.Delete(ctx, k); err != nil {
					return err
				}
			}
		}
	}
	if len(fresh) == 0 {
		return nil
	}
	// A new object from the fresh segments, without the records any earlier
	// object of the window holds.
	have := Offsets{}
	late := 0
	hasMain := false
	for _, in := range intents {
		o, err := DecodeOffsets(in.Partitions)
		if err != nil {
			return fmt.Errorf("intent %s: %w", in.Object, err)
		}
		have.Merge(o)
		late = max(late, in.Late)
		hasMain = hasMain || in.Late == 0
	}
	n := 0
	if hasMain || closeAt != window+a.cfg.Window.Milliseconds() {
		n = late + 1
	}
	in := &Intent{Version: 1, Target: ns, Integration: t.Name, ClientID: t.ClientID, Window: window, CloseAt: closeAt,
		Object: ObjectName(n), Late: n, Format: t.Format.String(), Compression: t.Compression.String(), Segments: sorted(fresh)}
	in.Key = t.Keys.Key(sink.KeyParams{Prefix: t.Prefix, WindowStart: window, Format: t.Format, Compression: t.Compression,
		ClientID: t.ClientID, Integration: t.Name, Topic: a.cfg.Topic, Late: n})
	obj, ids, err := a.build(ctx, t.Format, t.Compression, in, func(p int, off int64) bool { return !have.Has(p, off) })
	if err != nil {
		return err
	}
	defer obj.Release()
	kind := "main"
	if n > 0 {
		kind = "late"
	}
	if ids.Len() == 0 {
		// Every record is in an object already (a replay after Redis lost state).
		a.d.Metrics.Assembled.WithLabelValues(kind, metrics.ResultDuplicate).Inc()
		a.d.Logger.Info("staged delivery: segments hold only records already delivered; deleting them", "integration", t.Name,
			"window", time.UnixMilli(window).UTC().Format(time.RFC3339), "segments", len(fresh))
		for _, k := range fresh {
			if err := a.d.Store.Delete(ctx, k); err != nil {
				return err
			}
		}
		return nil
	}
	in.Partitions = ids.Encode()
	in.Records = obj.Records
	in.Size = obj.Size()
	if in.SHA256, err = digestOf(obj); err != nil {
		return err
	}
	data, err := json.Marshal(in)
	if err != nil {
		return err
	}
	if err := a.d.Store.PutNew(ctx, a.d.Layout.IntentKey(ns, window, in.Object), sink.BytesBody(data),
		sink.PutOptions{ContentType: "application/json"}); err != nil {
		if sink.IsAlreadyExists(err) {
			return nil // another assembler made it first: the next tick follows it
		}
		return fmt.Errorf("intent: %w", err)
	}
	a.d.Metrics.Assembled.WithLabelValues(kind, metrics.ResultOK).Inc()
	return a.send(ctx, t, in, obj)
}

// deliver assembles an existing intent again and sends it.
func (a *Assembler) deliver(ctx context.Context, t *integrations.Target, in *Intent) error {
	want, err := DecodeOffsets(in.Partitions)
	if err != nil {
		return fmt.Errorf("intent %s: %w", in.Object, err)
	}
	// The intent's format, not the integration's now: a reload may have
	// changed it since, and the bytes are fixed.
	f, err := sink.ParseFormat(in.Format)
	if err != nil {
		return fmt.Errorf("intent %s: %w", in.Object, err)
	}
	c, err := sink.ParseCompression(in.Compression)
	if err != nil {
		return fmt.Errorf("intent %s: %w", in.Object, err)
	}
	obj, _, err := a.build(ctx, f, c, in, want.Has)
	if err != nil {
		return err
	}
	defer obj.Release()
	sum, err := digestOf(obj)
	if err != nil {
		return err
	}
	if obj.Size() != in.Size || sum != in.SHA256 || obj.Records != in.Records {
		return fmt.Errorf("intent %s: assembled %d records, %d bytes, sha256 %s; the intent says %d, %d, %s: not uploading",
			in.Object, obj.Records, obj.Size(), sum, in.Records, in.Size, in.SHA256)
	}
	return a.send(ctx, t, in, obj)
}

// send delivers obj on the retry schedule, then records the manifest and
// deletes the segments.
func (a *Assembler) send(ctx context.Context, t *integrations.Target, in *Intent, obj *sink.Object) error {
	ch := make(chan error, 1)
	j := &delivery.Job{Target: t, Topic: a.cfg.Topic, Partition: -1, Key: in.Key, WindowStart: in.Window,
		WindowEnd: in.Window + a.cfg.Window.Milliseconds(), CloseAt: in.CloseAt, Late: in.Late > 0, Records: in.Records,
		Object: obj, Fence: func(context.Context) error { return nil }}
	var parked bool
	j.Parked = func() { parked = true }
	a.d.Deliver.Deliver(ctx, j, func(err error) { ch <- err })
	if err := <-ch; err != nil {
		return err
	}
	m := Manifest{Key: in.Key, State: "delivered", Records: in.Records, Size: in.Size, SHA256: in.SHA256, Partitions: summary(in.Partitions)}
	if parked {
		m.State = "parked" // ParkedDelivered writes the customer's manifest and "delivered"
	} else if err := a.customerManifest(ctx, t, in); err != nil {
		return err
	}
	data, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := a.d.Store.Put(ctx, a.d.Layout.ManifestKey(in.Target, in.Window, in.Object), sink.BytesBody(data),
		sink.PutOptions{ContentType: "application/json"}); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	for _, k := range in.Segments {
		if err := a.d.Store.Delete(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

// build assembles the records of in.Segments that keep accepts, in canonical
// order (partition, then offset), each once, into a finished object of the
// target's format. It returns the identities it took.
func (a *Assembler) build(ctx context.Context, f sink.Format, c sink.Compression, in *Intent, keep func(p int, off int64) bool) (*sink.Object, Offsets, error) {
	byPart := map[int][]string{}
	var parts []int
	for _, k := range in.Segments {
		id, err := a.d.Layout.ParseSegmentKey(k)
		if err != nil {
			return nil, nil, err
		}
		if byPart[id.Partition] == nil {
			parts = append(parts, id.Partition)
		}
		byPart[id.Partition] = append(byPart[id.Partition], k)
	}
	slices.Sort(parts)
	// The object stays in memory up to assemblyMemory (the spool's budget
	// still rules) and its SHA-256 is computed as it is written: spilling
	// every object above the per-buffer 2 MiB to a file and reading it back to
	// hash it cost a fifth of the assembler's CPU (bench/README.md).
	buf := a.d.Spool.NewBufferWith(f, sink.BufferOptions{MemoryBytes: assemblyMemory, Digest: true})
	ids := Offsets{}
	add := buf.Append
	var enc *parquet.Encoder
	if f.Parquet() {
		select {
		case a.parquetBuilds <- struct{}{}:
		case <-ctx.Done():
			buf.Discard()
			return nil, nil, ctx.Err()
		}
		defer func() { <-a.parquetBuilds }()
		// The encoder sorts the records by time (spilling past
		// assemblyMemory) and writes the file into buf at Finish; seq, the
		// canonical (partition, offset) position, breaks ties, so a replay
		// writes the same bytes.
		var err error
		if enc, err = parquet.NewEncoder(buf, f.ParquetSchema(), parquet.Options{MemoryBytes: assemblyMemory, TempDir: a.d.Spool.Dir()}); err != nil {
			buf.Discard()
			return nil, nil, err
		}
		var seq uint64
		add = func(rec []byte) error {
			seq++
			return enc.Add(rec, seq)
		}
		if f.OCSF() {
			// Each hit's OCSF record goes to the encoder as column values,
			// never as JSON to be read back (bench/README.md,
			// "ocsf-parquet"); the row is the one its JSON record makes,
			// and a hit the mapping refuses is kept as AppendOCSFOrKeep
			// keeps it.
			vals := parquet.NewValues(f.ParquetSchema())
			var scratch []byte
			add = func(hit []byte) error {
				seq++
				vals.Reset()
				var err error
				if scratch, err = sink.OCSFColumns(vals, hit, in.Window, scratch); err != nil {
					return err
				}
				return enc.AddValues(vals, seq)
			}
		}
	}
	if f.OCSF() && !f.Parquet() {
		// Each hit becomes its OCSF record here, deterministically: a
		// replay of the intent writes the same bytes. A hit the mapping
		// refuses is kept whole in a record of the window's start.
		var rec []byte
		next := add
		add = func(hit []byte) error {
			var err error
			if rec, err = sink.AppendOCSFOrKeep(rec[:0], hit, in.Window); err != nil {
				return err
			}
			return next(rec)
		}
	}
	ahead := a.openAhead(ctx, parts, byPart)
	defer ahead.stop()
	for _, p := range parts {
		readers, err := ahead.next()
		if err == nil {
			err = a.mergePartition(p, readers, keep, add, ids)
		}
		if err != nil {
			if enc != nil {
				enc.Discard()
			}
			buf.Discard()
			return nil, nil, err
		}
	}
	if enc != nil {
		if err := enc.Finish(ctx); err != nil {
			buf.Discard()
			return nil, nil, err
		}
		buf.AddRecords(int(enc.Stats().Records))
	}
	obj, err := buf.Finish(c)
	if err != nil {
		return nil, nil, err
	}
	return obj, ids, nil
}

// Segments are opened ahead of their merge: a GET's answer takes a round
// trip to the staging bucket (tens of milliseconds on S3) before its first
// byte, and opened one after the other the segments of a window spread over
// many partitions cost one round trip each, during which a Parquet build
// holds one of its few slots (AssemblerConfig.ParquetBuilds). openAhead
// opens each partition's segments at once (up to openAtOnce), and up to
// openAheadParts partitions ahead of the one being merged, so a build waits
// about one round trip in all, and holds at most that many partitions'
// readers (16 KiB each) open.
const (
	openAtOnce     = 8
	openAheadParts = 2
)

// opened is one partition's segments, open and at their first record, or
// the error that stopped opening them.
type opened struct {
	readers []*segReader
	err     error
}

// ahead opens partitions' segments in the background, in the order of the
// merge.
type ahead struct {
	ch     chan opened
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
}

func (a *Assembler) openAhead(ctx context.Context, parts []int, byPart map[int][]string) *ahead {
	ctx, cancel := context.WithCancel(ctx)
	h := &ahead{ch: make(chan opened, openAheadParts), ctx: ctx, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(h.done)
		defer close(h.ch)
		for _, p := range parts {
			o := a.openSegments(ctx, byPart[p])
			select {
			case h.ch <- o:
			case <-ctx.Done():
				closeReaders(o.readers)
				return
			}
			if o.err != nil {
				return
			}
		}
	}()
	return h
}

// next returns the next partition's readers, which the caller closes.
func (h *ahead) next() ([]*segReader, error) {
	o, ok := <-h.ch
	if !ok {
		if err := h.ctx.Err(); err != nil {
			return nil, err // the build's context ended (stop was not called yet)
		}
		return nil, errors.New("staging: segments: opened fewer partitions than merged") // a bug
	}
	return o.readers, o.err
}

// stop ends the opening and closes what was opened and not taken.
func (h *ahead) stop() {
	h.cancel()
	<-h.done
	for o := range h.ch {
		closeReaders(o.readers)
	}
}

func closeReaders(rs []*segReader) {
	for _, r := range rs {
		r.close()
	}
}

// openSegments opens keys (one partition's segments) at once, up to
// openAtOnce at a time, each read to its first record.
func (a *Assembler) openSegments(ctx context.Context, keys []string) opened {
	readers := make([]*segReader, len(keys))
	errs := make([]error, len(keys))
	sem := make(chan struct{}, openAtOnce)
	var wg sync.WaitGroup
	for i, k := range keys {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			rc, err := a.d.Store.Open(ctx, k)
			if err != nil {
				errs[i] = err
				return
			}
			readers[i] = newSegReader(k, rc)
			_, errs[i] = readers[i].next()
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil { // the first key's, as opened one by one
			for _, r := range readers {
				if r != nil {
					r.close()
				}
			}
			return opened{err: err}
		}
	}
	return opened{readers: readers}
}

// mergePartition merges one partition's segments by offset, and closes
// their readers.
func (a *Assembler) mergePartition(p int, readers []*segReader, keep func(int, int64) bool, add func([]byte) error, ids Offsets) error {
	defer closeReaders(readers)
	last := int64(-1)
	for {
		var cur *segReader
		for _, r := range readers {
			if !r.eof && (cur == nil || r.off < cur.off) {
				cur = r
			}
		}
		if cur == nil {
			return nil
		}
		if cur.off != last && keep(p, cur.off) {
			if err := add(cur.rec); err != nil {
				return err
			}
			ids.Add(p, cur.off)
		}
		last = cur.off
		if _, err := cur.next(); err != nil {
			return err
		}
	}
}

// loadObjects reads namespace ns's window's intents and which of them have a manifest.
func (a *Assembler) loadObjects(ctx context.Context, ns string, window int64) ([]*Intent, map[string]bool, error) {
	var intents []*Intent
	manifests := map[string]bool{}
	var keys []string
	if err := a.d.Store.List(ctx, a.d.Layout.ObjPrefix(ns, window), func(ks []string) error {
		keys = append(keys, ks...)
		return nil
	}); err != nil {
		return nil, nil, err
	}
	for _, k := range keys {
		base := k[strings.LastIndexByte(k, '/')+1:]
		switch {
		case strings.HasSuffix(base, ".manifest"):
			manifests[strings.TrimSuffix(base, ".manifest")] = true
		case strings.HasSuffix(base, ".intent"):
			o, err := a.d.Store.Get(ctx, k)
			if err != nil {
				return nil, nil, err
			}
			in, err := decodeIntent(o.Data)
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", k, err)
			}
			intents = append(intents, in)
		}
	}
	return intents, manifests, nil
}

// assemblyMemory is how much of one assembled object may stay in memory.
const assemblyMemory = 16 << 20

func digestOf(obj *sink.Object) (string, error) {
	if s := obj.SHA256(); s != "" {
		return s, nil
	}
	return "", errors.New("staging: an assembled object without its SHA-256") // build always asks for it
}

func sorted(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return out
}

// CustomerManifest is what an integration with manifest: true finds beside
// each object, under the object's key + ".manifest.json", written after the
// object. Its bytes are a function of the object alone. The main object's
// manifest says its window is complete: every partition passed its end.
type CustomerManifest struct {
	Object      string             `json:"object"`
	WindowStart string             `json:"window_start"` // RFC 3339, UTC
	WindowEnd   string             `json:"window_end"`
	Late        int                `json:"late"` // 0: the window's main object
	Records     int                `json:"records"`
	Size        int64              `json:"size"`
	SHA256      string             `json:"sha256"`
	Partitions  []PartitionRecords `json:"partitions"` // offset ranges, without the offsets
}

// ManifestSuffix ends the key of an object's manifest.
const ManifestSuffix = ".manifest.json"

// customerManifest writes in's object's manifest if its integration wants one.
func (a *Assembler) customerManifest(ctx context.Context, t *integrations.Target, in *Intent) error {
	if a.d.Manifest == nil || !a.d.Manifest(t.Name) {
		return nil
	}
	cm := CustomerManifest{Object: in.Key, WindowStart: time.UnixMilli(in.Window).UTC().Format(time.RFC3339),
		WindowEnd: time.UnixMilli(in.Window + a.cfg.Window.Milliseconds()).UTC().Format(time.RFC3339),
		Late:      in.Late, Records: in.Records, Size: in.Size, SHA256: in.SHA256, Partitions: summary(in.Partitions)}
	data, err := json.MarshalIndent(cm, "", "  ")
	if err != nil {
		return err
	}
	actx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := t.Store.Put(actx, in.Key+ManifestSuffix, sink.BytesBody(append(data, '\n')), sink.PutOptions{ContentType: "application/json"}); err != nil {
		return fmt.Errorf("customer manifest: %w", err)
	}
	return nil
}

// ParkedDelivered is the retry workers' hook after a parked object reached its
// customer: for a staged object it writes the customer's manifest and marks
// the staging manifest delivered. Objects of per-partition delivery have no
// intent and pass through. An error makes the worker try again.
func (a *Assembler) ParkedDelivered(ctx context.Context, integration, target, key string, window int64) error {
	keys := []string{}
	if err := a.d.Store.List(ctx, a.d.Layout.ObjPrefix(Namespace(target), window), func(ks []string) error {
		keys = append(keys, ks...)
		return nil
	}); err != nil {
		return err
	}
	for _, k := range keys {
		if !strings.HasSuffix(k, ".intent") {
			continue
		}
		o, err := a.d.Store.Get(ctx, k)
		if err != nil {
			return err
		}
		in, err := decodeIntent(o.Data)
		if err != nil || in.Key != key {
			continue
		}
		if t, ok := a.resolve(in.Target); ok {
			if err := a.customerManifest(ctx, t, in); err != nil {
				return err
			}
		}
		m := Manifest{Key: in.Key, State: "delivered", Records: in.Records, Size: in.Size, SHA256: in.SHA256, Partitions: summary(in.Partitions)}
		data, err := json.Marshal(m)
		if err != nil {
			return err
		}
		return a.d.Store.Put(ctx, a.d.Layout.ManifestKey(in.Target, in.Window, in.Object), sink.BytesBody(data),
			sink.PutOptions{ContentType: "application/json"})
	}
	return nil
}
