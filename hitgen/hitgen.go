// Package hitgen makes seed-shaped hits: the shape of the documented example hits
// (../shared/testdata/sample_hits.json), with varying time, request id, address,
// attack type and tenant. It feeds `hitship gen`, `hitship demo`, the tests and the
// benchmarks. A Generator is deterministic for a given seed and not safe for
// concurrent use.
package hitgen

import (
	"encoding/hex"
	"math/rand/v2"
	"strconv"
)

// Kind says what a generated record is.
type Kind int

const (
	// Good is a well-formed hit in its window.
	Good Kind = iota
	// Late is a well-formed hit whose time lies Config.LateBy in the past.
	Late
	// Malformed is a record that is not a valid hit (it goes to the dead-letter topic).
	Malformed
)

// Config shapes the feed.
type Config struct {
	Seed       uint64
	Tenants    int     // client ids 1..Tenants (default 2)
	FirstID    int64   // first client id (default 1)
	LateShare  float64 // share of late hits, 0..1
	BadShare   float64 // share of malformed records, 0..1
	LateBySecs int64   // how far in the past late hits lie (default 15 minutes)
	// ClientIDInBody also writes "client_id" into the JSON (the fallback path).
	ClientIDInBody bool
}

// Record is one generated Kafka record.
type Record struct {
	Kind     Kind
	ClientID int64
	Value    []byte
	Key      []byte // the client id, as producers should key records
}

// Generator produces records.
type Generator struct {
	cfg Config
	rng *rand.Rand
	seq uint64
}

// New returns a generator; zero fields of cfg take their defaults.
func New(cfg Config) *Generator {
	if cfg.Tenants <= 0 {
		cfg.Tenants = 2
	}
	if cfg.FirstID <= 0 {
		cfg.FirstID = 1
	}
	if cfg.LateBySecs <= 0 {
		cfg.LateBySecs = 15 * 60
	}
	return &Generator{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, cfg.Seed^0x9e3779b97f4a7c15))}
}

var (
	attacks  = []string{"ptrav", "sqli", "xss", "rce", "scanner", "brute"}
	uris     = []string{"/etc/passwd", "/login", "/api/v1/users?id=1%27%20OR%201=1", "/search?q=%3Cscript%3E", "/admin"}
	methods  = []string{"GET", "POST", "PUT"}
	statuses = []int{200, 403, 404, 499, 500}
	bad      = [][]byte{
		[]byte(`not json at all`),
		[]byte(`[1,2,3]`),
		[]byte(`{"time":"1687241470","request_id":`),
		[]byte("{\"time\":\"1687241470\",\"uri\":\"\xff\xfe\"}"),
		[]byte(`"just a string"`),
	}
)

// Next returns the next record, with event time nowUnix (seconds) unless it is late.
func (g *Generator) Next(nowUnix int64) Record {
	g.seq++
	id := g.cfg.FirstID + int64(g.rng.IntN(g.cfg.Tenants))
	r := Record{Kind: Good, ClientID: id, Key: strconv.AppendInt(nil, id, 10)}
	x := g.rng.Float64()
	switch {
	case x < g.cfg.BadShare:
		r.Kind = Malformed
		r.Value = append([]byte(nil), bad[g.rng.IntN(len(bad))]...)
		return r
	case x < g.cfg.BadShare+g.cfg.LateShare:
		r.Kind = Late
		nowUnix -= g.cfg.LateBySecs
	}
	r.Value = g.hit(nowUnix, id)
	return r
}

// Hit returns one well-formed hit of tenant id at time t (Unix seconds).
func (g *Generator) hit(t, id int64) []byte {
	var reqID [16]byte
	for i := range reqID {
		reqID[i] = byte(g.rng.UintN(256))
	}
	b := make([]byte, 0, 640)
	b = append(b, `{"time":"`...)
	b = strconv.AppendInt(b, t, 10)
	b = append(b, `","request_id":"`...)
	b = hex.AppendEncode(b, reqID[:])
	b = append(b, `","ip":"10.`...)
	b = strconv.AppendInt(b, int64(g.rng.IntN(256)), 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(g.rng.IntN(256)), 10)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(g.rng.IntN(256)), 10)
	b = append(b, `","datacenter":"unknown","tor":"none","remote_country":null,"application_id":[-1],"domain":"shop.example.com","method":"`...)
	b = append(b, methods[g.rng.IntN(len(methods))]...)
	b = append(b, `","uri":`...)
	b = strconv.AppendQuote(b, uris[g.rng.IntN(len(uris))])
	b = append(b, `,"protocol":"none","status_code":`...)
	b = strconv.AppendInt(b, int64(statuses[g.rng.IntN(len(statuses))]), 10)
	b = append(b, `,"attack_type":"`...)
	b = append(b, attacks[g.rng.IntN(len(attacks))]...)
	b = append(b, `","block_status":"monitored","payload":["/etc/passwd"],"point":["uri"],"tags":{"lom_id":7,"libproton_version":"4.4.11","brute_counter":"c188cd2baa2cefb3f3688cb4008a649e","wallarm_mode":"monitoring","final_wallarm_mode":"monitoring"}`...)
	if g.cfg.ClientIDInBody {
		b = append(b, `,"client_id":`...)
		b = strconv.AppendInt(b, id, 10)
	}
	b = append(b, '}')
	return b
}
