package window

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strings"
)

// noWatermark is the watermark (and maxTs) of a partition that has seen nothing.
const noWatermark = math.MinInt64

// Key names a buffer: at most one open buffer per Key exists in a partition.
type Key struct {
	// Target names the destination (the consumer's target ID: one
	// integration of one tenant with one bucket, prefix and format), so a
	// buffer never mixes records of two tenants or two destinations.
	Target string
	Start  int64 // window start, ms
	Late   bool
}

// Buffer collects the records of one (target, window) of one partition.
// The Partition owns every field but Payload; the caller must not change them.
type Buffer struct {
	Key         Key
	FirstOffset int64
	// CloseAt is the watermark value at or after which the buffer closes: the
	// window end, or for a late buffer the first boundary > W at its creation.
	CloseAt int64
	// Ghost marks a buffer restored from a snapshot: it was already delivered,
	// records assigned to it must be discarded and its close ignored.
	Ghost bool
	// Payload is the caller's (the consumer hangs its byte buffer here). The
	// partition never reads it and drops its pointer when the buffer closes.
	Payload any

	// state just before the record at FirstOffset (meaningless for ghosts)
	preW, preMaxTs int64
}

// closedRec is what a partition remembers of a closed buffer until Forget.
type closedRec struct {
	key            Key
	first, closeAt int64
	// goneFrom is the smallest snapshot offset at which the buffer is no longer
	// open: N+1 when closed by Advance(N), N when closed by ApplyIdle(N).
	goneFrom       int64
	ghost          bool
	preW, preMaxTs int64
}

// mark is the state just before a dead-lettered record.
type mark struct {
	offset, w, maxTs int64
}

// Partition is the window state of one Kafka partition. It is not safe for
// concurrent use; none of its methods block.
type Partition struct {
	cfg Config

	w, maxTs     int64
	last         int64 // last offset given to Advance; -1 (or restore offset - 1) before
	preW, preMax int64 // w and maxTs before the last Advance
	idleNext     int64 // greatest nextOffset applied by ApplyIdle, 0 if none
	forgotten    int64 // greatest offset passed to Forget (or restored from)
	nextClose    int64 // min CloseAt of open buffers, MaxInt64 if none
	open         map[Key]*Buffer
	closed       []*Buffer // returned by Advance/ApplyIdle, reused
	history      []closedRec
	marks        []mark
}

// NewPartition returns an empty partition: no watermark, no buffers.
func NewPartition(cfg Config) (*Partition, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new partition: %w", err)
	}
	return &Partition{
		cfg:       cfg,
		w:         noWatermark,
		maxTs:     noWatermark,
		last:      -1,
		preW:      noWatermark,
		preMax:    noWatermark,
		nextClose: math.MaxInt64,
		open:      make(map[Key]*Buffer),
	}, nil
}

// Watermark returns W, math.MinInt64 when there is none yet.
func (p *Partition) Watermark() int64 { return p.w }

// MaxTs returns the greatest timestamp seen, math.MinInt64 when none.
func (p *Partition) MaxTs() int64 { return p.maxTs }

// Open returns the number of open buffers, ghosts included.
func (p *Partition) Open() int { return len(p.open) }

// Advance processes the timestamp ts of the record at offset: maxTs and the
// watermark move forward, and the buffers that close because of it
// (CloseAt <= W) are returned, sorted by (CloseAt, Target, Start, Late,
// FirstOffset). Ghosts are among them (Ghost=true) for the caller to drop.
//
// The returned slice is reused by the next Advance or ApplyIdle call: consume
// or copy it first. Offsets must increase from call to call. It does not
// allocate unless a buffer closes.
func (p *Partition) Advance(offset, ts int64) []*Buffer {
	ts = clampTs(ts)
	p.preW, p.preMax = p.w, p.maxTs
	p.last = max(p.last, offset)
	if ts > p.maxTs {
		p.maxTs = ts
		p.w = max(p.w, ts-p.cfg.Grace)
	}
	return p.closeDue(offset + 1)
}

// Assign returns the buffer that the record at offset with timestamp ts goes to
// for target: the open buffer of (target, window of ts), creating it
// with FirstOffset=offset if there is none. The record is on time when its window
// end is > W, late otherwise (then it goes to the open late buffer of its window).
// A returned Ghost buffer means: discard the record. Call it after Advance for the
// same offset. It does not allocate when the buffer exists.
func (p *Partition) Assign(offset, ts int64, target string) *Buffer {
	start := Start(clampTs(ts), p.cfg.Size)
	key := Key{Target: target, Start: start}
	closeAt := start + p.cfg.Size
	if closeAt <= p.w {
		key.Late = true
		closeAt = p.cfg.LateCloseAt(p.w)
	}
	if b, ok := p.open[key]; ok {
		return b
	}
	b := &Buffer{
		Key:         key,
		FirstOffset: offset,
		CloseAt:     closeAt,
		preW:        p.preW,
		preMaxTs:    p.preMax,
	}
	p.open[key] = b
	p.nextClose = min(p.nextClose, closeAt)
	return b
}

// IdleBoundary returns, for the wall-clock time now, the window boundary
// b = floor((now-Grace)/Size)*Size when it is past the boundary of the current
// watermark (ok=true), so that an idle advance would change something. It does
// not change the partition.
func (p *Partition) IdleBoundary(now int64) (b int64, ok bool) {
	b = Start(clampTs(now)-p.cfg.Grace, p.cfg.Size)
	if p.w == noWatermark || b > Start(p.w, p.cfg.Size) {
		return b, true
	}
	return 0, false
}

// ApplyIdle sets W = max(W, b) as if it happened just before the record at
// nextOffset was read, and returns the buffers that close, with the ordering and
// reuse rules of Advance. Applying the same advance again changes nothing and
// returns no buffer. A nextOffset not past the last advanced offset is taken as
// the one after it.
func (p *Partition) ApplyIdle(nextOffset, b int64) []*Buffer {
	b = min(max(b, minWatermark), MaxTimestamp)
	if b <= p.w {
		p.closed = p.closed[:0]
		return p.closed
	}
	nextOffset = max(nextOffset, p.last+1)
	p.w = b
	p.idleNext = max(p.idleNext, nextOffset)
	for i := range p.marks {
		if p.marks[i].offset >= nextOffset {
			p.marks[i].w = max(p.marks[i].w, b)
		}
	}
	return p.closeDue(nextOffset)
}

// Mark records the state just before the record at offset, so that
// Snapshot(offset) works though no buffer starts there (a dead-lettered record
// that the commit may stop at). Call it before Advance for that offset, if any.
// Marks at or below an advanced offset are ignored. Forget drops it.
func (p *Partition) Mark(offset int64) {
	if offset <= p.last {
		return
	}
	if n := len(p.marks); n > 0 && p.marks[n-1].offset >= offset {
		if p.marks[n-1].offset == offset {
			p.marks[n-1].w, p.marks[n-1].maxTs = p.w, p.maxTs
		}
		return
	}
	p.marks = append(p.marks, mark{offset: offset, w: p.w, maxTs: p.maxTs})
}

// closeDue closes the open buffers with CloseAt <= W; goneFrom is the first
// snapshot offset at which they no longer count as open.
func (p *Partition) closeDue(goneFrom int64) []*Buffer {
	p.closed = p.closed[:0]
	if p.w < p.nextClose {
		return p.closed
	}
	next := int64(math.MaxInt64)
	for k, b := range p.open {
		if b.CloseAt <= p.w {
			p.closed = append(p.closed, b)
			delete(p.open, k)
		} else {
			next = min(next, b.CloseAt)
		}
	}
	p.nextClose = next
	slices.SortFunc(p.closed, compareBuffers)
	for _, b := range p.closed {
		p.history = append(p.history, closedRec{
			key: b.Key, first: b.FirstOffset, closeAt: b.CloseAt, goneFrom: goneFrom,
			ghost: b.Ghost, preW: b.preW, preMaxTs: b.preMaxTs,
		})
	}
	return p.closed
}

func compareBuffers(a, b *Buffer) int {
	return compareMeta(a.CloseAt, a.Key, a.FirstOffset, b.CloseAt, b.Key, b.FirstOffset)
}

func compareMeta(ac int64, ak Key, af int64, bc int64, bk Key, bf int64) int {
	if c := cmp.Compare(ac, bc); c != 0 {
		return c
	}
	if c := strings.Compare(ak.Target, bk.Target); c != 0 {
		return c
	}
	if c := cmp.Compare(ak.Start, bk.Start); c != 0 {
		return c
	}
	if ak.Late != bk.Late {
		if !ak.Late {
			return -1
		}
		return 1
	}
	return cmp.Compare(af, bf)
}
