package chaos

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// timeline is when the run's runtime changes happened (wall clock, as the
// test saw them done) and the rules they must keep. A record's time is its
// Kafka timestamp, which hitship gen sets when it makes the record: a record
// with a time after a change was read after the change.
//
// The rules, from the README ("Disabling applies to records that arrive
// after it"; "Config change": a change takes effect at an offset of each
// partition, recorded before use, so replays route as the first run did):
//
//   - added: in each partition, the integration holds every hit of its tenant
//     from some offset on (a suffix) and none before; every hit made after
//     the reload is there, once.
//   - removed: no hit made after the reload, none twice. What was open at the
//     removal may be delivered or not (removal is final for what was not).
//   - given another tenant: every object holds one tenant's hits; the old
//     tenant's hits made after the reload are not there, none twice; the new
//     tenant's hits form a suffix of each partition, all those made after the
//     reload are there, once.
//   - moved to another prefix: no hit twice, across both prefixes; in each
//     partition the new prefix holds a suffix, and every hit made after the
//     reload is under it. What the old destination had open at the change
//     may be delivered or not: a changed destination is final for what it
//     had not delivered, as a removal is.
//   - disabled, then enabled: in each partition at most one run of offsets is
//     skipped; every hit made after the enable is there, once.
//
// On the staged path (delivery.staged) the rules are the same but for the
// moved integration, and no hit may be there twice, whatever Redis lost
// (chaos/doc.go says why):
//
//   - moved (staged): every hit of its tenant exactly once, across both
//     prefixes, those made before the move included; every hit made after
//     the move is under the new prefix. Segments staged for the old
//     destination go to the integration as configured now, so nothing it
//     had open at the move is lost. No suffix per partition: an object is
//     made per window, by whichever replica assembles it, and its
//     destination is the one configured there when it is assembled.
//
// slack is the time a change needs to reach every replica and partition. A
// partition records a change in Redis before it routes by it, and keeps its
// current routing while Redis does not answer: a Redis outage that begins
// within slack of a change delays it to slack after the outage.
type timeline struct {
	reload, disable, enable time.Time
	slack                   time.Duration
	t0                      time.Time // for printing
	outages                 [][2]time.Time
	staged                  bool // the staged path's rules
}

// effective is the time from which every partition routes by a change made
// at t.
func (tl *timeline) effective(t time.Time) time.Time {
	eff := t.Add(tl.slack)
	for changed := true; changed; {
		changed = false
		for _, o := range tl.outages {
			if !o[0].After(eff) && o[1].After(t) && o[1].Add(tl.slack).After(eff) {
				eff, changed = o[1].Add(tl.slack), true
			}
		}
	}
	return eff
}

func (tl *timeline) special(name string) bool {
	switch name {
	case addedName, removedName, retenantName, movedName, toggledName:
		return true
	}
	return false
}

func (tl *timeline) at(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return "+" + t.Sub(tl.t0).Round(100*time.Millisecond).String()
}

// shape is the pattern of delivered (1) and skipped (0) hits of a partition,
// by offset, with repeats folded: "01" is a suffix, "101" one gap.
func shape(hits []hitInfo, delivered func(hitInfo) bool) map[int]string {
	byPart := make(map[int][]hitInfo)
	for _, h := range hits {
		byPart[h.pos.partition] = append(byPart[h.pos.partition], h)
	}
	out := make(map[int]string)
	for p, hs := range byPart {
		slices.SortFunc(hs, func(a, b hitInfo) int { return int(a.pos.offset - b.pos.offset) })
		var b strings.Builder
		last := byte(0)
		for _, h := range hs {
			c := byte('0')
			if delivered(h) {
				c = '1'
			}
			if c != last {
				b.WriteByte(c)
				last = c
			}
		}
		out[p] = b.String()
	}
	return out
}

// shapeOK reports whether every partition's shape is one of allowed.
func shapeOK(shapes map[int]string, allowed ...string) (bool, string) {
	for p, s := range shapes {
		if s != "" && !slices.Contains(allowed, s) {
			return false, fmt.Sprintf("partition %d has the pattern %q (want one of %q)", p, s, allowed)
		}
	}
	return true, ""
}

// verify checks one integration with a runtime change: before and after are
// its config before and after the reload (the same for a toggled one; before
// alone for the removed one, after alone for the added one).
func (tl *timeline) verify(r *report, ex *expected, before, after integration, objs map[string][]byte) error {
	where := make(map[reqID][]string) // hit -> keys holding it
	for key, data := range objs {
		r.objects++
		recs, err := splitRecords(key, after.format, data)
		if err != nil {
			return fmt.Errorf("%s/%s: %w", after.bucket, key, err)
		}
		tenants := make(map[int64]bool)
		for _, rec := range recs {
			id, ok := requestID(rec)
			h, known := ex.hits[id]
			if !ok || !known || (h.client != before.client && h.client != after.client) {
				r.foreign++
				r.example("%s/%s holds a record of another tenant or unknown: %.80s", after.bucket, key, rec)
				continue
			}
			tenants[h.client] = true
			where[id] = append(where[id], key)
		}
		if len(tenants) > 1 {
			r.foreign++
			r.example("%s/%s holds hits of tenants %v: one object, one tenant", after.bucket, key, tenants)
		}
	}
	hitsOf := func(client int64) []hitInfo {
		var out []hitInfo
		for _, id := range ex.byClient[client] {
			if h := ex.hits[id]; h.copies == 1 { // gen's retried copies have two offsets: left out of the shapes
				out = append(out, h)
			}
		}
		return out
	}
	idOf := make(map[srcPos]reqID)
	for id, h := range ex.hits {
		idOf[h.pos] = id
	}
	in := func(h hitInfo) bool { return len(where[idOf[h.pos]]) > 0 }
	after1 := func(h hitInfo, t time.Time) bool { return !t.IsZero() && h.time.After(tl.effective(t)) }
	// Every hit at most as often as the topic holds it.
	for id, keys := range where {
		r.extraCopies(after.name, id, ex.hits[id].copies, keys)
	}
	var notes []string
	check := func(ok bool, what string, args ...any) {
		if !ok {
			r.misrouted++
			r.example(after.name+": "+what, args...)
		}
	}
	mustAll := func(hits []hitInfo, since time.Time, what string) int {
		n := 0
		for _, h := range hits {
			if after1(h, since) {
				n++
				r.toDeliver++
				if in(h) {
					r.delivered++
				} else {
					r.missing++
					r.example("%s: hit at %d/%d made %s, after %s, missing", after.name, h.pos.partition, h.pos.offset, tl.at(h.time), what)
				}
			}
		}
		return n
	}
	mustNone := func(hits []hitInfo, since time.Time, what string) {
		for _, h := range hits {
			check(!(after1(h, since) && in(h)), "hit at %d/%d made %s, after %s, delivered", h.pos.partition, h.pos.offset, tl.at(h.time), what)
		}
	}
	count := func(hits []hitInfo) (n int) {
		for _, h := range hits {
			if in(h) {
				n++
			}
		}
		return n
	}
	switch after.name {
	case addedName:
		hs := hitsOf(after.client)
		ok, why := shapeOK(shape(hs, in), "0", "01", "1")
		check(ok, "not a suffix of each partition: %s", why)
		n := mustAll(hs, tl.reload, "the reload")
		notes = append(notes, fmt.Sprintf("%s (added for tenant %d at %s): %d of the tenant's %d hits, a suffix of each partition; all %d made after the reload",
			after.name, after.client, tl.at(tl.reload), count(hs), len(hs), n))
	case removedName:
		hs := hitsOf(before.client)
		mustNone(hs, tl.reload, "the removal")
		notes = append(notes, fmt.Sprintf("%s (tenant %d, removed at %s): %d of the tenant's %d hits, none made after the removal",
			after.name, before.client, tl.at(tl.reload), count(hs), len(hs)))
	case retenantName:
		old, nw := hitsOf(before.client), hitsOf(after.client)
		mustNone(old, tl.reload, "the tenant changed")
		ok, why := shapeOK(shape(nw, in), "0", "01", "1")
		check(ok, "the new tenant's hits are not a suffix of each partition: %s", why)
		n := mustAll(nw, tl.reload, "the tenant changed")
		notes = append(notes, fmt.Sprintf("%s (tenant %d, then %d from %s): %d of tenant %d's hits, %d of tenant %d's (a suffix; all %d made after the change); one tenant an object",
			after.name, before.client, after.client, tl.at(tl.reload), count(old), before.client, count(nw), after.client, n))
	case movedName:
		hs := hitsOf(after.client)
		underNew := func(h hitInfo) bool {
			for _, k := range where[idOf[h.pos]] {
				if strings.HasPrefix(k, after.keyPrefix()) {
					return true
				}
			}
			return false
		}
		if tl.staged {
			r.toDeliver += int64(len(hs))
			news, olds := 0, 0
			for _, h := range hs {
				switch {
				case !in(h):
					r.missing++
					r.example("%s: hit at %d/%d made %s missing (moved at %s; staged, nothing of it may be lost)", after.name, h.pos.partition, h.pos.offset, tl.at(h.time), tl.at(tl.reload))
					continue
				case underNew(h):
					news++
				default:
					olds++
				}
				r.delivered++
				if after1(h, tl.reload) {
					check(underNew(h), "hit at %d/%d made %s, after the move, not under %s", h.pos.partition, h.pos.offset, tl.at(h.time), after.keyPrefix())
				}
			}
			notes = append(notes, fmt.Sprintf("%s (moved from %s to %s at %s): %d of %d hits (%d under %s, %d under %s); every one made after the move under %s",
				after.name, before.keyPrefix(), after.keyPrefix(), tl.at(tl.reload), count(hs), len(hs), olds, before.keyPrefix(), news, after.keyPrefix(), after.keyPrefix()))
			break
		}
		n := mustAll(hs, tl.reload, "the move")
		ok, why := shapeOK(shape(hs, underNew), "0", "01", "1")
		check(ok, "the new prefix does not hold a suffix of each partition: %s", why)
		for _, h := range hs {
			if after1(h, tl.reload) {
				check(underNew(h), "hit at %d/%d made %s, after the move, not under %s", h.pos.partition, h.pos.offset, tl.at(h.time), after.keyPrefix())
			}
		}
		notes = append(notes, fmt.Sprintf("%s (moved from %s to %s at %s): %d of %d hits, a suffix of each partition under %s; all %d made after the move, there",
			after.name, before.keyPrefix(), after.keyPrefix(), tl.at(tl.reload), count(hs), len(hs), after.keyPrefix(), n))
	case toggledName:
		hs := hitsOf(after.client)
		ok, why := shapeOK(shape(hs, in), "1", "10", "01", "101", "0")
		check(ok, "more than one skipped run of offsets in a partition: %s", why)
		n := mustAll(hs, tl.enable, "the enable")
		notes = append(notes, fmt.Sprintf("%s (tenant %d, disabled at %s, enabled at %s): %d of %d hits, %d skipped in one run of offsets a partition; all %d made after the enable",
			after.name, after.client, tl.at(tl.disable), tl.at(tl.enable), count(hs), len(hs), len(hs)-count(hs), n))
	}
	r.changes = append(r.changes, notes...)
	return nil
}
