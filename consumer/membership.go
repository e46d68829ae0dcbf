package consumer

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/segmentio/kafka-go"

	"hitship/integrations"
	"hitship/state"
)

// Routing is replay state.
//
// A partition worker routes with a membership of its own (the set of target
// IDs its records may go to), never with the live routing table: which
// integrations are enabled changes at any time (a reload, a disable or an
// enable by hand, an auto-disable), and a replay after a crash must route
// every record as the first run did, or it writes records a second time under
// other keys (the first run's objects hold them) or skips records that the
// first run had in buffers it never delivered.
//
// So before a worker routes with a membership other than the one it has, it
// records it in the partition's routing log in Redis, at the offset of the
// record it applies from, fenced like an idle close (the set itself is
// stored once per content, before). A worker starting at committed offset C
// reads the log: the membership at C is the latest entry at or below C (Prune
// keeps it), later entries apply when the read position reaches them, and it
// follows them up to replayEnd = max(last entry + 1, the read mark): earlier
// owners may have routed that far with the last membership. Every owner
// records a read mark readMarkAhead records ahead of what it reads, before it
// routes further (state.RecordReadMark); without a mark (Redis lost it, or an
// older version wrote the log) the high-water mark at the first fetch stands
// in for it. From replayEnd on it adopts the live membership, recording it.
// (With the high-water mark alone, a partition whose owners kept changing
// during a catch-up never read past it, and a change was never taken: the
// records of an integration a reload added, moved or gave another tenant went
// to the old routing, or nowhere, long after the reload.)
// Records routed to a target while it was a member stay in the buffers that
// hold them and are delivered (or retried, or dead-lettered) as usual, even
// if it is disabled or removed before they close.
//
// Without an entry at or below C:
//   - nothing committed and no log at all (the partition's first start): the
//     live membership is recorded at offset 0 and used at once;
//   - otherwise (Redis lost its data, or the first start after upgrading
//     from a version without the log) the worker cannot know what the
//     previous run did, so it routes conservatively, to every configured
//     target of each tenant, disabled ones included, until replayEnd,
//     recording that set at C; then it adopts the live membership. That may
//     cost duplicates and deliveries to integrations disabled meanwhile,
//     never a lost record.
//
// A member ID that no configured integration has any more (removed, or
// changed by a reload into another target) cannot be delivered: its records
// are skipped and counted (reason "removed") and the ID is logged once.
// Removing an integration is final for what it had not delivered. With staged
// delivery a member a reload moved (same integration name and client, another
// destination: RouteSet.Successor) is not removed: a replay stages its
// records for the integration as configured now, and the assembler delivers
// them, once, with what the old target staged (staging.Namespace). Per
// partition, where the old target's objects may already hold them, it is
// removed as before.
//
// When Redis fails, the worker keeps routing with its current membership and
// tries again after idleRetry: live changes wait for Redis. When the failure
// does not prove the entry was not written (a lost reply), the change is in
// doubt: the partition reads no further record until Redis confirms it.

// tenantRoute is where one tenant's records go under a membership.
type tenantRoute struct {
	targets []*integrations.Target // configured members of the tenant
	others  int                    // configured targets of the tenant that are not members
	removed []string               // members of the tenant no configured integration has
}

// membership is a worker's own routing table. Immutable; only the fetch
// goroutine holds one.
type membership struct {
	id           string
	ids          []string
	conservative bool // every configured target, chosen for lack of routing state
	byClient     map[int64]*tenantRoute
}

// newMembership resolves the route set (id, ids) against the configured
// targets of r: members by resolve (nil: r.Target), the others of each
// tenant from r.All().
//
// successor (nil: none) resolves a member no configured target has to the
// target it moved to (staged delivery: RouteSet.Successor), which then takes
// its records.
func newMembership(id string, ids []string, r Routes, resolve, successor func(string) (*integrations.Target, bool)) *membership {
	if resolve == nil {
		resolve = r.Target
	}
	m := &membership{id: id, ids: ids, byClient: map[int64]*tenantRoute{}}
	tenant := func(c int64) *tenantRoute {
		tr := m.byClient[c]
		if tr == nil {
			tr = &tenantRoute{}
			m.byClient[c] = tr
		}
		return tr
	}
	in := make(map[string]bool, len(ids))
	for _, x := range ids {
		in[x] = true
	}
	for _, x := range ids {
		t, ok := resolve(x)
		if !ok && successor != nil {
			if t, ok = successor(x); ok && in[t.ID] {
				continue // a member already, or another moved member's successor
			}
			if ok {
				in[t.ID] = true
			}
		}
		if ok {
			tr := tenant(t.ClientID)
			tr.targets = append(tr.targets, t)
			continue
		}
		if c, ok := integrations.TargetClient(x); ok {
			tr := tenant(c)
			tr.removed = append(tr.removed, x)
		}
	}
	for _, t := range r.All().Members {
		if !in[t.ID] {
			tenant(t.ClientID).others++
		}
	}
	return m
}

// membershipOf is the membership of a RouteSet of configured targets.
func membershipOf(set *integrations.RouteSet, r Routes) *membership {
	byID := make(map[string]*integrations.Target, len(set.Members))
	for _, t := range set.Members {
		byID[t.ID] = t
	}
	return newMembership(set.ID, set.IDs, r, func(id string) (*integrations.Target, bool) { t, ok := byID[id]; return t, ok }, nil)
}

// loggedRoute is an entry of the routing log with its set, as loaded at start.
type loggedRoute struct {
	offset int64
	id     string
	ids    []string
	known  bool // the set was in Redis; false: route conservatively
}

// routePlan is what start decides about routing.
type routePlan struct {
	base      loggedRoute   // the membership at the start
	pending   []loggedRoute // entries above the start, applied when reached
	replayEnd int64
	needHWM   bool // replayEnd waits for the first fetched high-water mark
	// conservative is set when no routing state was found for the start.
	conservative bool
	// deferBase: base (every configured target, conservative) is recorded
	// at the first record the worker routes, with the configured targets of
	// that moment, not at the start.
	deferBase bool
}

// loadRoutes reads the partition's routing log and decides the membership at
// the start offset (committed, or -1: none), recording it when the log has
// none there (see the comment at the top). Called by start under waitRedis,
// after the claim.
func (w *worker) loadRoutes(ctx context.Context, committed int64) (routePlan, error) {
	entries, err := w.st.RouteLog(ctx, w.topic, w.partition)
	if err != nil {
		return routePlan{}, fmt.Errorf("load routing log: %w", err)
	}
	load := func(e state.RouteEntry) (loggedRoute, error) {
		ids, ok, err := w.st.LoadRouteSet(ctx, e.SetID)
		if err != nil {
			return loggedRoute{}, fmt.Errorf("load route set %s: %w", e.SetID, err)
		}
		return loggedRoute{offset: e.Offset, id: e.SetID, ids: ids, known: ok}, nil
	}
	c := max(committed, 0)
	var p routePlan
	base := -1
	for i, e := range entries {
		if e.Offset <= c {
			base = i
		}
	}
	for _, e := range entries[base+1:] {
		lr, err := load(e)
		if err != nil {
			return routePlan{}, err
		}
		p.pending = append(p.pending, lr)
	}
	mark, hasMark, err := w.st.ReadMark(ctx, w.topic, w.partition)
	if err != nil {
		return routePlan{}, fmt.Errorf("load read mark: %w", err)
	}
	if len(entries) > 0 {
		p.replayEnd, p.needHWM = entries[len(entries)-1].Offset+1, !hasMark
	}
	if hasMark {
		p.replayEnd = max(p.replayEnd, mark)
	}
	if base >= 0 {
		if p.base, err = load(entries[base]); err != nil {
			return routePlan{}, err
		}
		if p.base.known {
			return p, nil
		}
	}
	if committed >= 0 || len(entries) > 0 {
		// No routing state for the start: conservative, recorded when the
		// first record is routed (an owner that routes nothing records
		// nothing, so its successor decides again, with the integrations
		// configured then and its own high-water mark; recorded at the
		// start, the set of that moment would be followed by every later
		// owner up to its own high-water mark, ignoring every reload since).
		set := w.c.deps.Routes.All()
		p.conservative, p.needHWM, p.deferBase = true, !hasMark, true
		p.replayEnd = max(p.replayEnd, c)
		p.base = loggedRoute{offset: c, id: set.ID, ids: set.IDs, known: true}
		return p, nil
	}
	set := w.c.deps.Routes.Live() // the partition's first start
	if err := w.recordRoute(ctx, c, set.ID, set.IDs); err != nil {
		return routePlan{}, err
	}
	p.base = loggedRoute{offset: c, id: set.ID, ids: set.IDs, known: true}
	return p, nil
}

// recordDeferredBase records the conservative membership a start deferred
// (routePlan.deferBase) at the start offset. At its first call it takes every
// target configured now and routes with it; when Redis fails it keeps routing
// with that set (it holds every configured target) and records the same set
// again after idleRetry, without touching the membership the log's later
// entries may have set meanwhile. Only a fenced worker stops.
func (w *worker) recordDeferredBase(ctx context.Context) error {
	if w.deferSet == nil {
		set := w.c.deps.Routes.All()
		w.deferSet = set
		if set.ID != w.mem.id {
			m := membershipOf(set, w.c.deps.Routes)
			m.conservative = true
			w.setMembership(m)
			w.routeMu.Lock()
			if len(w.routeHist) > 0 && w.routeHist[0].offset == w.baseOffset {
				w.routeHist[0] = loggedRoute{offset: w.baseOffset, id: set.ID, ids: set.IDs, known: true}
			}
			w.routeMu.Unlock()
		}
	}
	if time.Now().Before(w.routeRetryAt) {
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, stateTimeout)
	defer cancel()
	err := w.recordRoute(rctx, w.baseOffset, w.deferSet.ID, w.deferSet.IDs)
	if state.IsFenced(err) {
		w.stopFenced(err)
		return fmt.Errorf("routing state refused, another member owns partition %d: %w", w.partition, err)
	}
	if err != nil {
		w.routeRetryAt = time.Now().Add(idleRetry)
		w.log.Warn("degraded: cannot record the conservative routing of a start without routing state; routing to every configured integration meanwhile", "offset", w.baseOffset, "err", err)
		return nil
	}
	w.deferBase, w.deferSet = false, nil
	return nil
}

// recordRoute stores the route set and records it in the routing log at
// offset (fenced). inDoubt is set when the entry may have been recorded
// although an error came back (a reply lost after Redis ran the script).
func (w *worker) recordRoute(ctx context.Context, offset int64, id string, ids []string) (err error) {
	_, err = w.recordRouteDoubt(ctx, offset, id, ids)
	return err
}

func (w *worker) recordRouteDoubt(ctx context.Context, offset int64, id string, ids []string) (inDoubt bool, err error) {
	if err := w.st.SaveRouteSet(ctx, id, ids); err != nil {
		return false, fmt.Errorf("save route set: %w", err)
	}
	reclaimed, err := w.st.RecordRouteClaim(ctx, w.topic, w.partition, w.owner, state.RouteEntry{Offset: offset, SetID: id})
	if err != nil {
		return !state.IsFenced(err) && !state.IsNotExecuted(err), fmt.Errorf("record routing change at offset %d: %w", offset, err)
	}
	if reclaimed {
		// The owner key was gone: Redis lost data, the log with it.
		w.log.Warn("Redis lost this partition's owner key (data loss): claimed it again while recording a routing change; writing back the replay state this worker holds")
		w.restoreAfterLoss(ctx)
	}
	return false, nil
}

// settleDoubt records the change at offset again until Redis takes it (the
// entry is replaced in place, so this is idempotent), the worker is fenced,
// or ctx ends. Until then the partition does not read on: a change Redis may
// hold must be the one the worker routes with. It logs once.
func (w *worker) settleDoubt(ctx context.Context, offset int64, id string, ids []string, first error) error {
	w.log.Warn("degraded: a routing change may or may not be in Redis (its reply was lost); the partition waits until Redis confirms it", "offset", offset, "err", first)
	for backoff := 100 * time.Millisecond; ; backoff = min(2*backoff, 5*time.Second) {
		if !sleep(ctx, backoff) {
			return ctx.Err()
		}
		rctx, cancel := context.WithTimeout(ctx, stateTimeout)
		err := w.recordRoute(rctx, offset, id, ids)
		cancel()
		if err == nil || state.IsFenced(err) {
			if err == nil {
				w.log.Info("routing change confirmed by Redis", "offset", offset)
			}
			return err
		}
	}
}

// applyPlan installs what loadRoutes decided. Called by start with mu held.
func (w *worker) applyPlan(p routePlan) {
	w.setMembership(w.membershipFor(p.base))
	w.routeLog = p.pending
	w.routeMu.Lock()
	w.routeHist = append(append(w.routeHist[:0], p.base), p.pending...)
	w.routeMu.Unlock()
	w.replayEnd, w.needHWM = p.replayEnd, p.needHWM
	w.deferBase, w.baseOffset, w.deferSet = p.deferBase, p.base.offset, nil
	w.liveSeen = nil
	if p.conservative {
		w.log.Warn("no routing state for the committed offset (Redis lost data, or the first start of this version): routing every tenant's records to all its configured integrations, disabled ones included, until the previous owner's last read position; possible duplicates and deliveries to integrations disabled meanwhile, never a lost record",
			"offset", p.base.offset)
	}
}

// membershipFor resolves a logged route set; a set Redis no longer holds
// stands for every configured target (conservative).
func (w *worker) membershipFor(lr loggedRoute) *membership {
	if !lr.known {
		w.log.Warn("a route set of the routing log is gone from Redis: routing conservatively from there, to every configured integration", "set", lr.id, "offset", lr.offset)
		all := w.c.deps.Routes.All()
		m := membershipOf(all, w.c.deps.Routes)
		m.conservative = true
		return m
	}
	var successor func(string) (*integrations.Target, bool)
	if w.c.cfg.Staged {
		successor = w.c.deps.Routes.All().Successor
	}
	return newMembership(lr.id, lr.ids, w.c.deps.Routes, nil, successor)
}

func (w *worker) setMembership(m *membership) {
	w.mem = m
	w.curSet.Store(&routeSetRef{id: m.id, ids: m.ids})
}

// routeSetRef is the current membership's set, for the committer's touch.
type routeSetRef struct {
	id  string
	ids []string
}

// route brings the worker's membership up to the record m: the logged
// changes its offset reached, then, from replayEnd on, the live membership
// (recorded first) or, after a re-claim, the current one again. It is called
// by the fetch loop before process, without mu (only the fetch goroutine
// touches the membership); a Redis call happens only when the membership
// changes. It returns an error when another member owns the partition, or
// when ctx ended while a change was in doubt (then the record must not be
// processed).
func (w *worker) route(ctx context.Context, m *kafka.Message) error {
	off := m.Offset
	if w.needHWM {
		w.needHWM = false
		w.replayEnd = max(w.replayEnd, m.HighWaterMark)
	}
	if w.deferBase {
		if err := w.recordDeferredBase(ctx); err != nil {
			return err
		}
	}
	w.markRead(ctx, off)
	for len(w.routeLog) > 0 && w.routeLog[0].offset <= off {
		w.setMembership(w.membershipFor(w.routeLog[0]))
		w.routeLog = w.routeLog[1:]
	}
	live := w.c.deps.Routes.Live()
	if off < w.replayEnd || live == w.liveSeen {
		return nil
	}
	if live.ID == w.mem.id {
		w.liveSeen = live
		return nil
	}
	now := time.Now()
	if now.Before(w.routeRetryAt) {
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, stateTimeout)
	defer cancel()
	doubt, err := w.recordRouteDoubt(rctx, off, live.ID, live.IDs)
	if doubt {
		// Redis may hold the change: the worker must route with it, and
		// may not before Redis confirms it.
		if err = w.settleDoubt(ctx, off, live.ID, live.IDs, err); err != nil && !state.IsFenced(err) {
			return err // ctx ended: the generation or the member stops
		}
	}
	if err != nil {
		if state.IsFenced(err) {
			w.stopFenced(err)
			return fmt.Errorf("routing change refused, another member owns partition %d: %w", w.partition, err)
		}
		w.routeRetryAt = now.Add(idleRetry)
		if !w.routeDegraded {
			w.routeDegraded = true
			w.log.Warn("degraded: cannot record the routing change in Redis; the partition keeps routing with its current integrations until Redis answers", "retry_in", idleRetry, "err", err)
		}
		return nil
	}
	if w.routeDegraded {
		w.routeDegraded = false
		w.log.Info("routing change recorded: Redis answers")
	}
	w.setMembership(membershipOf(live, w.c.deps.Routes))
	w.liveSeen = live
	w.log.Info("routing change taken: records from this offset on go to the integrations configured and enabled now", "offset", off, "route_set", live.ID, "targets", len(live.IDs))
	w.routeMu.Lock()
	w.routeHist = append(w.routeHist, loggedRoute{offset: off, id: live.ID, ids: live.IDs, known: true})
	w.routeMu.Unlock()
	return nil
}

// readMarkAhead is how far ahead of the record it routes an owner records its
// read mark: one Redis write every readMarkAhead records of a partition; a
// change waits at most that many records after a takeover.
const readMarkAhead = 128

// markRead records the read mark readMarkAhead past off when off reached the
// last one recorded. When Redis fails, the partition goes on (it is not held
// for this) and tries again after idleRetry: a crash meanwhile makes the next
// owner follow the previous mark, or the high-water mark without one.
func (w *worker) markRead(ctx context.Context, off int64) {
	if w.readMarkLost.Load() && w.readMarkLost.Swap(false) { // a plain load per record
		w.readMark = 0
	}
	if off < w.readMark || time.Now().Before(w.readMarkAt) {
		return
	}
	// Never below replayEnd: the next owner then follows the log no further
	// than this one does (without a mark, it would follow it to its own
	// high-water mark).
	mark := max(off+readMarkAhead, w.replayEnd)
	rctx, cancel := context.WithTimeout(ctx, stateTimeout)
	defer cancel()
	if err := w.st.RecordReadMark(rctx, w.topic, w.partition, mark); err != nil {
		w.readMarkAt = time.Now().Add(idleRetry)
		w.log.Debug("read mark not recorded; trying again later", "err", err)
		return
	}
	w.readMark = mark
}

// rerecordRoutes records again, after Redis lost the partition's state
// while this worker ran (a re-claim), the routing log entries it knows from
// the latest one at or below its committed offset on, at their offsets: a
// replay from the committed offset then routes as this run did. Safe from
// any goroutine (route records its own new entries; both are idempotent).
func (w *worker) rerecordRoutes(ctx context.Context, committed int64) error {
	w.routeMu.Lock()
	hist := slices.Clone(w.routeHist[latestRoute(w.routeHist, committed):])
	w.routeMu.Unlock()
	for _, lr := range hist {
		if !lr.known {
			continue
		}
		if err := w.recordRoute(ctx, lr.offset, lr.id, lr.ids); err != nil {
			return err
		}
	}
	return nil
}

// latestRoute is the index in hist (oldest first) of the latest entry at or
// below offset, 0 when there is none.
func latestRoute(hist []loggedRoute, offset int64) int {
	i := 0
	for j, lr := range hist {
		if lr.offset <= max(offset, 0) {
			i = j
		}
	}
	return i
}

// replanAt is the routing plan of a restart at offset at (the committed
// offset; restart.go) from what this worker recorded: the membership of the
// latest entry at or below it, the later ones applied when reached, followed
// up to the read position the worker had (readNext), since it routed the
// records before it with them. Called with mu held by a restart.
func (w *worker) replanAt(at, readNext int64) routePlan {
	w.routeMu.Lock()
	defer w.routeMu.Unlock()
	if len(w.routeHist) == 0 { // never happens after start; conservative
		return routePlan{base: loggedRoute{offset: max(at, 0)}, replayEnd: max(at, readNext), conservative: true}
	}
	i := latestRoute(w.routeHist, at)
	p := routePlan{base: w.routeHist[i], pending: slices.Clone(w.routeHist[i+1:])}
	p.replayEnd = max(w.routeHist[len(w.routeHist)-1].offset+1, readNext)
	return p
}

// pruneRoutes forgets the entries below the latest one at or below
// committed. Committer only.
func (w *worker) pruneRoutes(committed int64) {
	w.routeMu.Lock()
	defer w.routeMu.Unlock()
	if i := latestRoute(w.routeHist, committed); i > 0 {
		w.routeHist = slices.Delete(w.routeHist, 0, i)
	}
}

// routeSetTouchEvery is how often the committer re-writes the route set the
// worker routes with, so that it outlives RouteSetTTL however long it stays.
const routeSetTouchEvery = time.Hour

// touchRouteSet re-writes the current route set when routeSetTouchEvery has
// passed. Committer only.
func (w *worker) touchRouteSet(ctx context.Context) {
	cur := w.curSet.Load()
	if cur == nil || time.Since(w.routeTouchedAt) < routeSetTouchEvery {
		return
	}
	tctx, cancel := context.WithTimeout(ctx, stateTimeout)
	defer cancel()
	if err := w.st.SaveRouteSet(tctx, cur.id, cur.ids); err != nil {
		w.log.Debug("refreshing the route set failed", "err", err)
		return
	}
	w.routeTouchedAt = time.Now()
}
