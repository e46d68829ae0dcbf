package chaos

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"time"
)

// FaultConfig says how often an Injector misbehaves. The shares are
// independent draws per request and their sum must be at most 1.
type FaultConfig struct {
	// ErrorShare of requests is answered 500 InternalError or 503 SlowDown
	// (half each) with an S3 XML error body, without reaching the server.
	ErrorShare float64
	// DropShare of requests has its connection closed without an answer:
	// half before the request reaches the server, half after the server
	// handled it (the client cannot know whether the write happened).
	DropShare float64
	// SlowShare of requests waits a random time in [SlowMin, SlowMax] before
	// it is forwarded.
	SlowShare        float64
	SlowMin, SlowMax time.Duration
	// Seed makes the sequence of faults repeatable for one request order.
	Seed uint64
}

// Validate reports a config that cannot work.
func (c FaultConfig) Validate() error {
	var errs []error
	for _, s := range []struct {
		name string
		v    float64
	}{{"ErrorShare", c.ErrorShare}, {"DropShare", c.DropShare}, {"SlowShare", c.SlowShare}} {
		if s.v < 0 || s.v > 1 {
			errs = append(errs, fmt.Errorf("chaos: %s %v is not in [0, 1]", s.name, s.v))
		}
	}
	if c.ErrorShare+c.DropShare+c.SlowShare > 1 {
		errs = append(errs, errors.New("chaos: ErrorShare+DropShare+SlowShare is over 1"))
	}
	if c.SlowMin < 0 || c.SlowMax < c.SlowMin {
		errs = append(errs, fmt.Errorf("chaos: slow range [%s, %s] is empty or negative", c.SlowMin, c.SlowMax))
	}
	return errors.Join(errs...)
}

// FaultCounts counts what an Injector did.
type FaultCounts struct {
	Requests      int64 // every request seen
	Errors500     int64
	Errors503     int64
	DroppedBefore int64 // closed before reaching the server
	DroppedAfter  int64 // closed after the server answered
	Slow          int64
}

// Injector is an http.Handler that forwards to next, except for the faults its
// FaultConfig draws. Safe for concurrent use.
type Injector struct {
	next http.Handler
	cfg  FaultConfig

	mu     sync.Mutex
	rng    *rand.Rand
	counts FaultCounts
	off    bool
}

// NewInjector returns an Injector in front of next.
func NewInjector(next http.Handler, cfg FaultConfig) (*Injector, error) {
	if next == nil {
		return nil, errors.New("chaos: nil handler")
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Injector{next: next, cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x5851f42d4c957f2d))}, nil
}

// SetFaults turns fault injection on (the default) or off; with it off every
// request is forwarded unchanged.
func (in *Injector) SetFaults(on bool) {
	in.mu.Lock()
	in.off = !on
	in.mu.Unlock()
}

// Counts returns what the Injector did so far.
func (in *Injector) Counts() FaultCounts {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.counts
}

// fault is one draw.
type fault int

const (
	faultNone fault = iota
	fault500
	fault503
	faultDropBefore
	faultDropAfter
	faultSlow
)

// draw picks the fault for one request and counts it.
func (in *Injector) draw() (fault, time.Duration) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.counts.Requests++
	if in.off {
		return faultNone, 0
	}
	x := in.rng.Float64()
	c := in.cfg
	switch {
	case x < c.ErrorShare:
		if in.rng.IntN(2) == 0 {
			in.counts.Errors500++
			return fault500, 0
		}
		in.counts.Errors503++
		return fault503, 0
	case x < c.ErrorShare+c.DropShare:
		if in.rng.IntN(2) == 0 {
			in.counts.DroppedBefore++
			return faultDropBefore, 0
		}
		in.counts.DroppedAfter++
		return faultDropAfter, 0
	case x < c.ErrorShare+c.DropShare+c.SlowShare:
		in.counts.Slow++
		d := c.SlowMin
		if span := c.SlowMax - c.SlowMin; span > 0 {
			d += time.Duration(in.rng.Int64N(int64(span) + 1))
		}
		return faultSlow, d
	}
	return faultNone, 0
}

// ServeHTTP forwards r or injects the fault drawn for it.
func (in *Injector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f, delay := in.draw()
	switch f {
	case fault500, fault503:
		status := http.StatusInternalServerError
		code := "InternalError"
		if f == fault503 {
			status, code = http.StatusServiceUnavailable, "SlowDown"
		}
		// Read the body first, so the client reads the answer rather than
		// a reset connection.
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 256<<20))
		body, _ := xml.Marshal(s3Error{Code: code, Message: "chaos: injected " + code, Resource: r.URL.Path, RequestID: "chaos"})
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			_, _ = w.Write(append([]byte(xml.Header), body...))
		}
	case faultDropBefore:
		drop(w)
	case faultDropAfter:
		// Let the server handle the request completely, then lose the answer.
		rec := httptest.NewRecorder()
		in.next.ServeHTTP(rec, r)
		drop(w)
	case faultSlow:
		if !sleepCtx(r.Context(), delay) {
			return
		}
		in.next.ServeHTTP(w, r)
	default:
		in.next.ServeHTTP(w, r)
	}
}

// drop closes the client's connection without an answer.
func drop(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		// HTTP/2 or a recorder: abort the handler, which resets the stream.
		panic(http.ErrAbortHandler)
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// s3Error is the XML body of an S3 error response.
type s3Error struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	Resource  string   `xml:"Resource"`
	RequestID string   `xml:"RequestId"`
}
