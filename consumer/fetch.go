package consumer

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/segmentio/kafka-go"
)

// fetcher reads one partition over a kafka-go Conn to its leader, in the
// worker's goroutine: fetch a batch (up to maxBytes, the broker holding an idle
// fetch up to maxWait), hand out its records one by one, fetch the next.
//
// Why not kafka.Reader: the Reader decodes in a goroutine of its own and passes
// every record through a channel to FetchMessage. Per record that is a channel
// send and receive, two time.Now, a deadline update and stats, and above all a
// goroutine wake-up whenever the channel runs empty or full: a drain-only
// Reader on the 2-core development machine read 0.49 M records/s, this loop 1.06 M
// (bench/README.md). Records, offsets and errors are kafka-go's own (Batch);
// what is left here is the Reader's recovery, done the same way: reconnect on
// network errors and leader changes, retry broker time-outs at once, and on
// OffsetOutOfRange move up to the first offset when the records asked for are
// gone (retention), loudly, or wait when asking past the end.
//
// Not safe for concurrent use, except that ctx ending closes the connection from
// another goroutine, which ends a blocked read.
type fetcher struct {
	dialer    *kafka.Dialer
	brokers   []string
	topic     string
	partition int
	maxBytes  int
	maxWait   time.Duration
	log       *slog.Logger

	conn   *kafka.Conn
	unhook func() bool // stops closing conn when ctx ends
	batch  *kafka.Batch
	// tap follows conn's protocol stream (the last connection dialled: the
	// leader's), filter drops the current batch's aborted and control records.
	tap    *txnTap
	filter txnFilter
	// yielded: the current fetch has handed out a record; idle, if set, is
	// called when a fetch ends without one (the partition is caught up).
	yielded bool
	idle    func()
	offset  int64 // next offset to read; < 0: the first offset of the partition
	msg     kafka.Message
	errs    int // consecutive failures, for the backoff
	// checkRange: the broker said offset is out of range; the next connection
	// reads the partition's first and last offsets before it fetches.
	checkRange bool
	// truncRef, if set, says after which Kafka time every record the caller
	// has not read was written: where a log truncation resumes (see resolve).
	truncRef func() (time.Time, bool)
}

// truncationMargin is how much earlier than the reference time a truncation
// resumes: producers' clocks and Kafka's CreateTime disagree by that much.
const truncationMargin = time.Minute

// truncatedError says the offset to read is past the partition's end: the log
// was truncated (an unclean leader election) or the topic re-created. To is
// where reading should resume: the first offset whose record was written at or
// after the reference time less truncationMargin, or the log start without a
// reference. The fetcher does not move there itself: the caller must drop its
// state first.
type truncatedError struct {
	Partition        int
	From, To         int64
	First, End       int64
	Ref              time.Time // zero: none
	ByTimestampError error     // why To is the log start although Ref is set
}

func (e *truncatedError) Error() string {
	return fmt.Sprintf("offset %d is past the end of partition %d (%d..%d): the log was truncated or the topic re-created; reading resumes at %d",
		e.From, e.Partition, e.First, e.End, e.To)
}

// batchTimeout bounds the reading of one batch beyond maxWait. The worker may
// pause between records (back-pressure, Redis); it calls touch after a wait.
const batchTimeout = 30 * time.Second

func newFetcher(dialer *kafka.Dialer, brokers []string, topic string, partition int, offset int64, maxBytes int, maxWait time.Duration, log *slog.Logger) *fetcher {
	if dialer == nil {
		dialer = kafka.DefaultDialer
	}
	f := &fetcher{brokers: brokers, topic: topic, partition: partition,
		offset: offset, maxBytes: maxBytes, maxWait: maxWait, log: log}
	f.dialer = tapDialer(ReadAheadDialer(dialer), func(t *txnTap) { f.tap = t })
	return f
}

// tapDialer returns a copy of d whose connections pass through a txnTap, given
// to onDial as each is dialled. TLS, if any, moves below the tap (the tap must
// see the protocol in the clear); SASL stays on top, as kafka-go does it.
func tapDialer(d *kafka.Dialer, onDial func(*txnTap)) *kafka.Dialer {
	td := *d
	dial := d.DialFunc // ReadAheadDialer always sets it
	cfg := d.TLS
	td.TLS = nil
	td.DialFunc = func(ctx context.Context, network, address string) (net.Conn, error) {
		c, err := dial(ctx, network, address)
		if err != nil {
			return nil, err
		}
		if cfg != nil {
			tc := cfg
			if tc.ServerName == "" { // as kafka-go infers it
				tc = cfg.Clone()
				host, _, err := net.SplitHostPort(address)
				if err != nil {
					host = address
				}
				tc.ServerName = host
			}
			t := tls.Client(c, tc)
			if err := t.HandshakeContext(ctx); err != nil {
				_ = c.Close()
				return nil, err
			}
			c = t
		}
		tap := newTxnTap()
		onDial(tap)
		return &tapConn{Conn: c, tap: tap}, nil
	}
	return &td
}

// tapConn feeds a txnTap with what passes.
type tapConn struct {
	net.Conn
	tap *txnTap
}

func (c *tapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.tap.read(p[:n])
	}
	return n, err
}

func (c *tapConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if n > 0 {
		c.tap.wrote(p[:n])
	}
	return n, err
}

// next returns the next record; the message and its slices stay valid until
// the following call (the slices are the caller's to keep). It blocks until a
// record arrives or ctx ends (then it returns ctx.Err()). Other errors are
// returned after the connection was dropped: calling next again reconnects
// (after a backoff) and goes on at the offset after the last record returned.
func (f *fetcher) next(ctx context.Context) (*kafka.Message, error) {
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if f.batch == nil {
			if err := f.fetch(ctx); err != nil {
				return nil, f.fail(ctx, err)
			}
		}
		m, err := f.batch.ReadMessage()
		if err == nil {
			f.errs = 0
			f.offset = m.Offset + 1
			if f.filter.dropped(m.Offset) {
				continue // an aborted transaction's record, or a transaction marker
			}
			f.yielded = true
			f.msg = m
			return &f.msg, nil
		}
		if errors.Is(err, io.EOF) {
			err = nil // the batch is done; Close says whether it ended well
		}
		if (err == nil || errors.Is(err, kafka.RequestTimedOut)) && !f.yielded && f.idle != nil {
			f.idle() // a fetch with nothing to hand out: caught up
		}
		if cerr := f.batch.Close(); err == nil {
			err = cerr
		}
		f.batch = nil
		if err == nil {
			if off, _ := f.conn.Offset(); off > f.offset {
				f.offset = off // past compacted records at a batch's end
			}
			continue
		}
		if err = f.recover(ctx, err); err != nil {
			return nil, f.fail(ctx, err)
		}
	}
}

// fetch connects if needed and sends the next fetch request.
func (f *fetcher) fetch(ctx context.Context) error {
	if f.conn == nil {
		if f.errs > 0 && !sleep(ctx, fetchBackoff(f.errs)) {
			return ctx.Err()
		}
		if err := f.connect(ctx); err != nil {
			return err
		}
	}
	if _, err := f.conn.Seek(f.offset, kafka.SeekAbsolute|kafka.SeekDontCheck); err != nil {
		return err
	}
	_ = f.conn.SetReadDeadline(time.Now().Add(f.maxWait + batchTimeout))
	// ReadCommitted: records up to the last stable offset only, so every
	// transactional record returned has its outcome; the filter drops the
	// aborted ones and the markers (txn.go).
	f.batch = f.conn.ReadBatchWith(kafka.ReadBatchConfig{MinBytes: 1, MaxBytes: f.maxBytes, MaxWait: f.maxWait,
		IsolationLevel: kafka.ReadCommitted})
	f.filter.reset(f.tap)
	f.yielded = false
	return nil
}

// connect dials the partition's leader through the first broker that answers
// and resolves a negative offset (nothing committed) to the first one.
func (f *fetcher) connect(ctx context.Context) error {
	var errs []error
	for _, b := range f.brokers {
		conn, err := f.dialer.DialLeader(ctx, "tcp", b, f.topic, f.partition)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if f.offset < 0 || f.checkRange {
			if err := f.resolve(conn); err != nil {
				conn.Close()
				errs = append(errs, err)
				continue
			}
		}
		f.conn = conn
		f.unhook = context.AfterFunc(ctx, func() { conn.Close() })
		return nil
	}
	return fmt.Errorf("connect to the leader of partition %d: %w", f.partition, errors.Join(errs...))
}

// resolve reads the partition's first and last offsets on conn: a negative
// offset (nothing committed) becomes the first; an offset whose records are
// gone (retention) moves up to the first, loudly. An offset past the end means
// the log lost records hitship had read (an unclean leader election) or the
// topic was re-created: records written since then sit at offsets below it and
// would never be read. resolve returns a *truncatedError naming where to
// resume: the first record written after the reference time (truncRef) less
// truncationMargin — records older than the last one read are not new — or the
// log start when there is no reference.
func (f *fetcher) resolve(conn *kafka.Conn) error {
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	defer func() { _ = conn.SetDeadline(time.Time{}) }()
	first, last, err := conn.ReadOffsets()
	switch {
	case err != nil:
		return fmt.Errorf("read the offsets of partition %d: %w", f.partition, err)
	case f.offset < 0:
		f.offset = first
	case f.offset < first:
		f.log.Error("records deleted by the topic's retention before hitship read them: skipping to the first offset",
			"from", f.offset, "to", first, "records", first-f.offset)
		f.offset = first
	case f.offset > last:
		te := &truncatedError{Partition: f.partition, From: f.offset, To: first, First: first, End: last}
		if f.truncRef != nil {
			if ref, ok := f.truncRef(); ok {
				te.Ref = ref
				off, err := conn.ReadOffset(ref.Add(-truncationMargin))
				switch {
				case err != nil:
					te.ByTimestampError = err
				case off < 0: // no record written that late: only new ones are to come
					te.To = last
				default:
					te.To = min(max(off, first), last)
				}
			}
		}
		return te
	}
	f.checkRange = false
	return nil
}

// recover handles the error that ended a batch: nil when the next fetch may go
// ahead at once. After an error answer a kafka-go Conn is not reliable (the
// next request fails with io.ErrNoProgress), so every error reconnects.
func (f *fetcher) recover(ctx context.Context, err error) error {
	switch {
	case ctx.Err() != nil:
		return ctx.Err()
	case errors.Is(err, kafka.RequestTimedOut):
		f.drop() // the broker's own time-out of an idle fetch: not a failure
		return nil
	case errors.Is(err, kafka.OffsetOutOfRange):
		f.checkRange = true // the next connection checks the range first
	}
	return err
}

// fail drops the connection after an error; the next call reconnects.
func (f *fetcher) fail(ctx context.Context, err error) error {
	f.errs++
	f.drop()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// touch extends the current batch's read deadline after the caller waited.
func (f *fetcher) touch() {
	if f.batch != nil && f.conn != nil {
		_ = f.conn.SetReadDeadline(time.Now().Add(batchTimeout))
	}
}

func (f *fetcher) drop() {
	if f.batch != nil {
		_ = f.batch.Close()
		f.batch = nil
	}
	if f.conn != nil {
		f.unhook()
		_ = f.conn.Close()
		f.conn = nil
	}
}

// close releases the connection.
func (f *fetcher) close() { f.drop() }

// fetchBackoff is the wait before reconnecting after n consecutive failures:
// 100 ms doubling to 5 s.
func fetchBackoff(n int) time.Duration {
	return min(100*time.Millisecond<<min(n-1, 6), 5*time.Second)
}

// readAhead is the read buffer in front of a fetch connection.
const readAhead = 256 << 10

// ReadAheadDialer returns a copy of d whose connections read through a
// readAhead buffer (hitship's partition reads; bench/e2e's drain baseline). A kafka-go Conn reads through a 4 KiB bufio.Reader: one
// system call per 4 KiB of records, ~9% of hitship's CPU at 600 MB/s
// (bench/README.md). TLS and SASL still apply on top (DialFunc only opens the
// TCP connection); the fields DialFunc makes kafka-go ignore are passed on.
func ReadAheadDialer(d *kafka.Dialer) *kafka.Dialer {
	rd := *d
	dial := d.DialFunc
	if dial == nil {
		dial = (&net.Dialer{LocalAddr: d.LocalAddr, FallbackDelay: d.FallbackDelay, KeepAlive: d.KeepAlive}).DialContext
	}
	rd.DialFunc = func(ctx context.Context, network, address string) (net.Conn, error) {
		c, err := dial(ctx, network, address)
		if err != nil {
			return nil, err
		}
		return &readAheadConn{Conn: c, r: bufio.NewReaderSize(c, readAhead)}, nil
	}
	return &rd
}

type readAheadConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *readAheadConn) Read(p []byte) (int, error) { return c.r.Read(p) }
