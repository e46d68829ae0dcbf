package window

import (
	"fmt"
	"slices"
)

// Snapshot is the state of a partition just before the record at Offset was
// processed (idle advances applied just before it included). It is what the
// consumer saves in Redis before committing Offset, as JSON.
//
// It names every setting that decides where records go and when buffers
// close (size, grace, max future skew, timestamp mode): a replay under other
// settings would not reproduce the original run, and its ghosts could swallow
// records the original run put into other buffers, so Restore refuses it.
type Snapshot struct {
	Offset        int64  `json:"offset"`
	Size          int64  `json:"size_ms"`            // window size it was taken with
	Grace         int64  `json:"grace_ms"`           // grace it was taken with
	MaxFutureSkew int64  `json:"max_future_skew_ms"` // max future skew it was taken with
	Timestamp     string `json:"timestamp"`          // TimestampEvent or TimestampRecord; "" before it was recorded
	Watermark     int64  `json:"watermark_ms"`       // math.MinInt64: none
	MaxTs         int64  `json:"max_ts_ms"`          // math.MinInt64: none
	// Ghosts are the buffers open at that point (all with FirstOffset < Offset),
	// sorted like closed buffers. Never nil.
	Ghosts []GhostBuffer `json:"ghosts"`
}

// GhostBuffer is a buffer open at a snapshot's offset.
type GhostBuffer struct {
	Target      string `json:"target"` // Key.Target
	Start       int64  `json:"start_ms"`
	Late        bool   `json:"late"`
	CloseAt     int64  `json:"close_at_ms"`
	FirstOffset int64  `json:"first_offset"`
}

// Snapshot returns the state just before the record at offset was processed.
// offset must be the FirstOffset of a buffer the partition still remembers (open,
// or closed and not yet forgotten), an offset given to Mark and not yet
// forgotten, the offset a partition was restored at, or an offset past the last
// advanced one (the current state); ok=false otherwise. It allocates.
func (p *Partition) Snapshot(offset int64) (s Snapshot, ok bool) {
	if offset < 0 || offset < p.forgotten {
		return Snapshot{}, false
	}
	w, maxTs, found := p.stateBefore(offset)
	if !found {
		return Snapshot{}, false
	}
	s = Snapshot{Offset: offset, Size: p.cfg.Size, Grace: p.cfg.Grace, MaxFutureSkew: p.cfg.MaxFutureSkew,
		Timestamp: p.cfg.TimestampMode(), Watermark: w, MaxTs: maxTs, Ghosts: []GhostBuffer{}}
	for _, b := range p.open {
		if b.FirstOffset < offset {
			s.Ghosts = append(s.Ghosts, ghostOf(b.Key, b.CloseAt, b.FirstOffset))
		}
	}
	for _, r := range p.history {
		if r.first < offset && offset < r.goneFrom {
			s.Ghosts = append(s.Ghosts, ghostOf(r.key, r.closeAt, r.first))
		}
	}
	slices.SortFunc(s.Ghosts, func(a, b GhostBuffer) int {
		return compareMeta(a.CloseAt, a.key(), a.FirstOffset, b.CloseAt, b.key(), b.FirstOffset)
	})
	return s, true
}

func (p *Partition) stateBefore(offset int64) (w, maxTs int64, ok bool) {
	if offset > p.last && offset >= p.idleNext {
		return p.w, p.maxTs, true
	}
	for _, m := range p.marks {
		if m.offset == offset {
			return m.w, m.maxTs, true
		}
	}
	for _, b := range p.open {
		if b.FirstOffset == offset && !b.Ghost {
			return b.preW, b.preMaxTs, true
		}
	}
	for _, r := range p.history {
		if r.first == offset && !r.ghost {
			return r.preW, r.preMaxTs, true
		}
	}
	return 0, 0, false
}

func ghostOf(k Key, closeAt, first int64) GhostBuffer {
	return GhostBuffer{Target: k.Target, Start: k.Start, Late: k.Late, CloseAt: closeAt, FirstOffset: first}
}

func (g GhostBuffer) key() Key { return Key{Target: g.Target, Start: g.Start, Late: g.Late} }

// Forget drops what the partition remembers of closed buffers and marks that no
// snapshot at an offset >= committed needs. Call it after committing. Snapshots
// below the greatest committed offset given are no longer available.
func (p *Partition) Forget(committed int64) {
	p.forgotten = max(p.forgotten, committed)
	h := p.history[:0]
	for _, r := range p.history {
		if r.first >= committed || r.goneFrom > committed {
			h = append(h, r)
		}
	}
	clear(p.history[len(h):])
	p.history = h
	m := p.marks[:0]
	for _, mk := range p.marks {
		if mk.offset >= committed {
			m = append(m, mk)
		}
	}
	p.marks = m
}

// Restore builds a partition from a snapshot taken with Snapshot(s.Offset) by a
// partition of the same settings (SameReplay). The snapshot's buffers come
// back as ghosts. The next record to give Advance is s.Offset or later. An
// error wrapping ErrBadSnapshot means the snapshot is inconsistent, was taken
// under other settings, or names none (it was written by a version that did
// not record them: its grace, skew and timestamp mode are unknown, so it is
// refused too); the caller then starts from an empty state.
func Restore(cfg Config, s Snapshot) (*Partition, error) {
	p, err := NewPartition(cfg)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if err := checkSnapshot(cfg, s); err != nil {
		return nil, fmt.Errorf("restore snapshot at offset %d: %w", s.Offset, err)
	}
	p.w, p.maxTs = s.Watermark, s.MaxTs
	p.preW, p.preMax = s.Watermark, s.MaxTs
	p.last = s.Offset - 1
	p.forgotten = s.Offset
	p.marks = append(p.marks, mark{offset: s.Offset, w: s.Watermark, maxTs: s.MaxTs})
	for _, g := range s.Ghosts {
		p.open[g.key()] = &Buffer{Key: g.key(), FirstOffset: g.FirstOffset, CloseAt: g.CloseAt, Ghost: true}
		p.nextClose = min(p.nextClose, g.CloseAt)
	}
	return p, nil
}

func checkSnapshot(cfg Config, s Snapshot) error {
	if s.Offset < 0 {
		return fmt.Errorf("negative offset: %w", ErrBadSnapshot)
	}
	if s.Timestamp == "" {
		return fmt.Errorf("taken by a version that did not record its grace, max future skew and timestamp mode: %w", ErrBadSnapshot)
	}
	if taken := (Config{Size: s.Size, Grace: s.Grace, MaxFutureSkew: s.MaxFutureSkew, UseRecordTime: s.Timestamp == TimestampRecord}); s.Timestamp != TimestampEvent && s.Timestamp != TimestampRecord || !taken.SameReplay(cfg) {
		return fmt.Errorf("taken with window size %d ms, grace %d ms, max future skew %d ms, timestamp %q; now size %d ms, grace %d ms, max future skew %d ms, timestamp %q: %w",
			s.Size, s.Grace, s.MaxFutureSkew, s.Timestamp, cfg.Size, cfg.Grace, cfg.MaxFutureSkew, cfg.TimestampMode(), ErrBadSnapshot)
	}
	if s.Watermark != noWatermark && (s.Watermark < minWatermark || s.Watermark > MaxTimestamp) {
		return fmt.Errorf("watermark %d out of range: %w", s.Watermark, ErrBadSnapshot)
	}
	if s.MaxTs != noWatermark && (s.MaxTs < MinTimestamp || s.MaxTs > MaxTimestamp) {
		return fmt.Errorf("max timestamp %d out of range: %w", s.MaxTs, ErrBadSnapshot)
	}
	seen := make(map[Key]bool, len(s.Ghosts))
	for _, g := range s.Ghosts {
		if err := checkGhost(cfg, s, g); err != nil {
			return fmt.Errorf("ghost %q start %d late %t: %w", g.Target, g.Start, g.Late, err)
		}
		if seen[g.key()] {
			return fmt.Errorf("ghost %q start %d late %t twice: %w", g.Target, g.Start, g.Late, ErrBadSnapshot)
		}
		seen[g.key()] = true
	}
	return nil
}

func checkGhost(cfg Config, s Snapshot, g GhostBuffer) error {
	switch {
	case g.FirstOffset < 0 || g.FirstOffset >= s.Offset:
		return fmt.Errorf("first offset %d not in [0, %d): %w", g.FirstOffset, s.Offset, ErrBadSnapshot)
	case g.Start < MinTimestamp-cfg.Size || g.Start > MaxTimestamp || Start(g.Start, cfg.Size) != g.Start:
		return fmt.Errorf("window start not a boundary in range: %w", ErrBadSnapshot)
	case !g.Late && g.CloseAt != g.Start+cfg.Size:
		return fmt.Errorf("close at %d is not the window end: %w", g.CloseAt, ErrBadSnapshot)
	case g.Late && (g.CloseAt <= g.Start+cfg.Size || g.CloseAt > MaxTimestamp+cfg.Size || Start(g.CloseAt, cfg.Size) != g.CloseAt):
		return fmt.Errorf("late close at %d is not a boundary after the window: %w", g.CloseAt, ErrBadSnapshot)
	case g.CloseAt <= s.Watermark:
		return fmt.Errorf("close at %d not after watermark %d: %w", g.CloseAt, s.Watermark, ErrBadSnapshot)
	}
	return nil
}
