package consumer

import (
	"encoding/binary"
	"slices"
	"sync"
)

// Transactions.
//
// hitship reads with isolation level ReadCommitted, so the broker returns
// records only up to the last stable offset: every transactional record it
// returns belongs to a transaction already committed or aborted. It still
// returns the records of aborted transactions, and the transaction markers
// (control records): the client must drop them, using the list of aborted
// transactions of the fetch response and each record batch's producer id and
// attributes. kafka-go's Conn reads those fields and throws them away (it
// hands out aborted records and markers as ordinary messages), so the fetch
// connection's bytes pass through a txnTap: it parses the framing of every
// request and response on the connection and, in Fetch responses, the aborted
// transactions and the record batch headers, without copying or holding the
// records. The fetcher asks it, per message, whether to drop it (txnFilter).

// batchInfo is what the tap keeps of one record batch of a fetch response.
type batchInfo struct {
	base, last    int64
	producer      int64
	transactional bool
	control       bool
	abort         bool // a control batch whose marker is an abort
}

type abortedTxn struct{ producer, first int64 }

// fetchResult is what the tap parsed of one Fetch response so far: it grows
// while the response streams in (under the tap's lock).
type fetchResult struct {
	aborted []abortedTxn
	batches []batchInfo
	broken  bool // the tap could not parse it (never expected): keep everything
}

// txnTap parses the Kafka protocol stream of one connection. Write and Read
// feed it the bytes in the order they pass; it never changes them. Safe for
// concurrent use (the writer and the reader of a Conn may be different
// goroutines).
type txnTap struct {
	mu      sync.Mutex
	fetches map[int32]int16 // correlation id -> Fetch version, for requests in flight
	req     framer
	resp    respParser
	results []*fetchResult // Fetch responses seen, oldest first, not yet taken
}

func newTxnTap() *txnTap {
	t := &txnTap{fetches: map[int32]int16{}}
	t.req.onHeader = t.onRequest
	t.resp.tap = t
	return t
}

func (t *txnTap) wrote(p []byte) {
	t.mu.Lock()
	t.req.feed(p)
	t.mu.Unlock()
}

func (t *txnTap) read(p []byte) {
	t.mu.Lock()
	t.resp.feed(p)
	t.mu.Unlock()
}

// onRequest notes a Fetch request (api key 1) by its correlation id.
func (t *txnTap) onRequest(h []byte) {
	key := int16(binary.BigEndian.Uint16(h[0:2]))
	if key == 1 {
		t.fetches[int32(binary.BigEndian.Uint32(h[4:8]))] = int16(binary.BigEndian.Uint16(h[2:4]))
	}
}

// take returns the oldest Fetch response seen and not yet taken (it may still
// be streaming in), or nil.
func (t *txnTap) take() *fetchResult {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.results) == 0 {
		return nil
	}
	r := t.results[0]
	t.results = slices.Delete(t.results, 0, 1)
	return r
}

// framer follows size-prefixed frames and hands the first 8 bytes of each
// (request: api key, version, correlation id) to onHeader.
type framer struct {
	onHeader func(h []byte)
	hdr      [12]byte
	have     int
	left     int64 // bytes of the current frame not seen yet, after the header
}

func (f *framer) feed(p []byte) {
	for len(p) > 0 {
		if f.left > 0 {
			k := min(int64(len(p)), f.left)
			f.left -= k
			p = p[k:]
			continue
		}
		k := copy(f.hdr[f.have:], p)
		f.have += k
		p = p[k:]
		if f.have < len(f.hdr) {
			continue
		}
		size := int64(int32(binary.BigEndian.Uint32(f.hdr[0:4])))
		f.onHeader(f.hdr[4:12])
		f.have = 0
		f.left = max(size-8, 0)
	}
}

// respParser follows the responses of a connection and parses the Fetch ones.
// It is a state machine over the byte stream: each step asks for a number of
// bytes (need) or to skip some, and runs when they have arrived.
type respParser struct {
	tap *txnTap

	buf  [64]byte
	need int
	have int
	skip int64
	step func(b []byte)

	frameLeft int64 // bytes of the current response after its size field
	inFrame   bool

	// the Fetch response being parsed
	version   int16
	res       *fetchResult
	topics    int32
	parts     int32
	aborted   int32
	recLeft   int64 // bytes left of the current partition's records
	batch     batchInfo
	batchLeft int64 // bytes of the current batch after its length field
	varBytes  int   // bytes of the varint being read
	varVal    uint64
	varDone   func(v int64)
}

// feed consumes p. Every byte of a frame is counted in frameLeft, so a frame
// the parser gives up on is skipped to its end and the next one is found.
func (r *respParser) feed(p []byte) {
	for len(p) > 0 {
		if !r.inFrame {
			k := copy(r.buf[r.have:4], p)
			r.have += k
			p = p[k:]
			if r.have < 4 {
				return
			}
			r.have = 0
			r.frameLeft = int64(int32(binary.BigEndian.Uint32(r.buf[0:4])))
			r.inFrame = true
			r.res = nil
			r.expect(4, r.onCorrelation)
			continue
		}
		if r.frameLeft <= 0 {
			r.endFrame()
			continue
		}
		if r.skip > 0 {
			k := min(int64(len(p)), r.skip, r.frameLeft)
			r.skip -= k
			r.frameLeft -= k
			p = p[k:]
			if r.skip == 0 && r.step == nil {
				r.skipRest()
			}
			continue
		}
		if r.step == nil {
			r.skipRest()
			continue
		}
		k := min(r.need-r.have, len(p), int(min(r.frameLeft, int64(r.need))))
		copy(r.buf[r.have:], p[:k])
		r.have += k
		r.frameLeft -= int64(k)
		p = p[k:]
		if r.have < r.need {
			if r.frameLeft <= 0 { // the frame ended inside a field
				r.fail()
			}
			continue
		}
		st := r.step
		r.step, r.have = nil, 0
		st(r.buf[:r.need])
	}
	if r.inFrame && r.frameLeft <= 0 {
		r.endFrame()
	}
}

func (r *respParser) expect(n int, step func(b []byte)) { r.need, r.have, r.step = n, 0, step }

// skipThen skips n bytes, then expects k bytes for step.
func (r *respParser) skipThen(n int64, k int, step func(b []byte)) {
	r.skip = n
	r.expect(k, step)
}

func (r *respParser) skipRest() {
	r.step = nil
	r.skip = r.frameLeft
}

// fail gives up on the current response (it is skipped to its end).
func (r *respParser) fail() {
	if r.res != nil {
		r.res.broken = true
		r.res = nil
	}
	r.skipRest()
}

func (r *respParser) endFrame() {
	r.res = nil
	r.inFrame, r.step, r.skip, r.have = false, nil, 0, 0
}

func be32(b []byte) int32 { return int32(binary.BigEndian.Uint32(b)) }
func be64(b []byte) int64 { return int64(binary.BigEndian.Uint64(b)) }
func be16(b []byte) int16 { return int16(binary.BigEndian.Uint16(b)) }

func (r *respParser) onCorrelation(b []byte) {
	id := be32(b)
	v, ok := r.tap.fetches[id]
	if !ok {
		r.skipRest()
		return
	}
	delete(r.tap.fetches, id)
	if v < 4 || v > 11 { // no aborted transactions before v4; v12 is a flexible version kafka-go does not send
		r.skipRest()
		return
	}
	r.version = v
	r.res = &fetchResult{}
	r.tap.results = append(r.tap.results, r.res)
	// throttle_time_ms, then (v7+) error_code and session_id
	head := int64(4)
	if v >= 7 {
		head += 6
	}
	r.skipThen(head, 4, r.onTopics)
}

func (r *respParser) onTopics(b []byte) {
	r.topics = be32(b)
	r.nextTopic()
}

func (r *respParser) nextTopic() {
	if r.topics <= 0 {
		r.skipRest()
		return
	}
	r.topics--
	r.expect(2, func(b []byte) { // topic name length
		r.skipThen(int64(max(be16(b), 0)), 4, func(b []byte) {
			r.parts = be32(b)
			r.nextPartition()
		})
	})
}

func (r *respParser) nextPartition() {
	if r.parts <= 0 {
		r.nextTopic()
		return
	}
	r.parts--
	// partition_index, error_code, high_watermark, last_stable_offset, log_start_offset (v5+)
	head := int64(4 + 2 + 8 + 8)
	if r.version >= 5 {
		head += 8
	}
	r.skipThen(head, 4, func(b []byte) {
		r.aborted = be32(b)
		r.nextAborted()
	})
}

func (r *respParser) nextAborted() {
	if r.aborted <= 0 {
		after := int64(0)
		if r.version >= 11 {
			after = 4 // preferred_read_replica
		}
		r.skipThen(after, 4, func(b []byte) {
			r.recLeft = int64(be32(b))
			r.nextBatch()
		})
		return
	}
	r.aborted--
	r.expect(16, func(b []byte) {
		r.res.aborted = append(r.res.aborted, abortedTxn{producer: be64(b[0:8]), first: be64(b[8:16])})
		r.nextAborted()
	})
}

// batchHead is what nextBatch reads of a batch: base_offset, batch_length,
// partition_leader_epoch, magic.
const batchHead = 8 + 4 + 4 + 1

func (r *respParser) nextBatch() {
	if r.recLeft < batchHead {
		r.skip = max(r.recLeft, 0)
		r.recLeft = 0
		r.step = nil
		r.afterRecords()
		return
	}
	r.expect(batchHead, func(b []byte) {
		r.recLeft -= batchHead
		r.batch = batchInfo{base: be64(b[0:8])}
		length := int64(be32(b[8:12]))
		magic := int8(b[16])
		r.batchLeft = length - 5 // after partition_leader_epoch and magic
		if magic < 2 || r.batchLeft < 4+2+4+8+8+8+2+4+4 || r.batchLeft > r.recLeft {
			// An old message set (no transactions), or a batch cut off by the
			// fetch's size limit: nothing to learn, skip what is left of it.
			n := min(max(r.batchLeft, 0), r.recLeft)
			r.recLeft -= n
			r.skip = n
			r.step = nil
			r.afterSkipBatch()
			return
		}
		// crc, attributes, last_offset_delta, base_timestamp, max_timestamp, producer_id
		r.expect(4+2+4+8+8+8, func(b []byte) {
			attrs := be16(b[4:6])
			r.batch.last = r.batch.base + int64(be32(b[6:10]))
			r.batch.producer = be64(b[26:34])
			r.batch.transactional = attrs&0x10 != 0
			r.batch.control = attrs&0x20 != 0
			r.recLeft -= 34
			r.batchLeft -= 34
			if !r.batch.control {
				r.endBatch()
				return
			}
			// producer_epoch, base_sequence, records_count; then the first record:
			// length, attributes(int8), timestamp_delta, offset_delta, key_length,
			// key = version(int16) type(int16): type 0 is an abort marker.
			r.recLeft -= 10
			r.batchLeft -= 10
			r.skipThen(10, 0, nil)
			r.readVarint(func(int64) { // record length
				r.expect(1, func([]byte) { // record attributes
					r.recLeft--
					r.batchLeft--
					r.readVarint(func(int64) { // timestamp delta
						r.readVarint(func(int64) { // offset delta
							r.readVarint(func(int64) { // key length
								r.expect(4, func(b []byte) {
									r.recLeft -= 4
									r.batchLeft -= 4
									r.batch.abort = be16(b[2:4]) == 0
									r.endBatch()
								})
							})
						})
					})
				})
			})
		})
	})
}

// readVarint reads one varint (zig-zag, as in record fields) and calls done.
func (r *respParser) readVarint(done func(v int64)) {
	r.varBytes, r.varVal, r.varDone = 0, 0, done
	r.expect(1, r.varByte)
}

func (r *respParser) varByte(b []byte) {
	r.recLeft--
	r.batchLeft--
	r.varVal |= uint64(b[0]&0x7f) << (7 * r.varBytes)
	r.varBytes++
	if b[0]&0x80 != 0 && r.varBytes < 10 {
		r.expect(1, r.varByte)
		return
	}
	v := int64(r.varVal>>1) ^ -int64(r.varVal&1)
	r.varDone(v)
}

// endBatch records the batch and skips the rest of it.
func (r *respParser) endBatch() {
	r.res.batches = append(r.res.batches, r.batch)
	n := max(r.batchLeft, 0)
	r.recLeft -= n
	r.skip = n
	r.step = nil
	r.afterSkipBatch()
}

// afterSkipBatch goes on with the next batch once the skip is done. The skip
// runs in feed; the next step is queued behind it.
func (r *respParser) afterSkipBatch() {
	r.expectAfterSkip(r.nextBatch)
}

func (r *respParser) afterRecords() {
	r.expectAfterSkip(r.nextPartition)
}

// expectAfterSkip runs next once the pending skip is consumed (at once when
// there is none).
func (r *respParser) expectAfterSkip(next func()) {
	if r.skip == 0 {
		next()
		return
	}
	r.expect(0, func([]byte) { next() })
}

// txnFilter decides, message by message, which records of one Fetch response
// to drop: those of aborted transactions and the control records (Kafka's
// consumer algorithm: an aborted transaction's producer is "aborting" from
// the transaction's first offset to its abort marker). Fetch loop only.
type txnFilter struct {
	tap      *txnTap
	res      *fetchResult
	aborted  []abortedTxn // of res, sorted, not yet reached
	i        int          // next batch of res to pass
	aborting map[int64]bool
	cur      batchInfo // the batch of the last message asked about
	hasCur   bool
	drop     bool // the verdict for cur
}

// reset starts on the next Fetch response of tap (none: keep everything).
func (f *txnFilter) reset(tap *txnTap) {
	f.tap, f.res, f.aborted, f.i, f.hasCur, f.drop = tap, nil, nil, 0, false, false
	clear(f.aborting)
	if tap == nil {
		return
	}
	f.res = tap.take()
}

// batch returns batch i of the response, if the tap has parsed it yet.
func (f *txnFilter) batch(i int) (batchInfo, bool) {
	f.tap.mu.Lock()
	defer f.tap.mu.Unlock()
	if f.aborted == nil && len(f.res.aborted) > 0 {
		f.aborted = slices.Clone(f.res.aborted)
		slices.SortFunc(f.aborted, func(a, b abortedTxn) int {
			switch {
			case a.first < b.first:
				return -1
			case a.first > b.first:
				return 1
			}
			return 0
		})
	}
	if f.res.broken || i >= len(f.res.batches) {
		return batchInfo{}, false
	}
	return f.res.batches[i], true
}

// dropped reports whether the message at offset is an aborted or control
// record. Offsets must not decrease between calls for one response.
func (f *txnFilter) dropped(offset int64) bool {
	if f.res == nil {
		return false
	}
	if f.hasCur && offset >= f.cur.base && offset <= f.cur.last {
		return f.drop
	}
	for {
		b, ok := f.batch(f.i)
		if !ok {
			// The tap saw no batch for this message (a broken parse; never
			// expected): keep it.
			return false
		}
		if offset < b.base {
			return false // likewise
		}
		f.i++
		for len(f.aborted) > 0 && f.aborted[0].first <= b.last {
			if f.aborting == nil {
				f.aborting = map[int64]bool{}
			}
			f.aborting[f.aborted[0].producer] = true
			f.aborted = f.aborted[1:]
		}
		drop := false
		switch {
		case b.control:
			if b.abort {
				delete(f.aborting, b.producer)
			}
			drop = true
		case b.transactional && f.aborting[b.producer]:
			drop = true
		}
		if offset <= b.last {
			f.cur, f.hasCur, f.drop = b, true, drop
			return drop
		}
	}
}
