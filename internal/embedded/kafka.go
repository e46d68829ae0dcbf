package embedded

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
	"github.com/twmb/franz-go/pkg/kfake"
)

// KafkaOptions configures StartKafka.
type KafkaOptions struct {
	// Partitions of every seeded topic (default 1).
	Partitions int
	// Topics created at start (only on the first start of a DataDir).
	Topics []string
	// DataDir, when set, persists the cluster there so that Restart (or a new
	// StartKafka on the same DataDir) keeps topics, records and committed
	// offsets. "" keeps everything in memory.
	DataDir string
	// GroupMinSessionTimeout lowers the broker's minimum consumer-group
	// session timeout (kfake's default is 6s) so that tests can use 1-6s
	// sessions. 0 keeps the default.
	GroupMinSessionTimeout time.Duration
	// Port to listen on; 0 picks a free one.
	Port int
	// SASL, when set, makes the broker refuse every request but the SASL
	// handshake until a client authenticated as this user (a superuser, so
	// no ACL applies). The package's own clients (and testenv's) log in as
	// the same user.
	SASL *KafkaSASL
	// TLS, when set, makes the broker serve TLS only, with this config:
	// its certificate, and for mutual TLS ClientAuth and ClientCAs.
	TLS *tls.Config
	// ClientTLS is the TLS config of the package's own clients (and
	// testenv's): the CA that signed the broker's certificate, and a client
	// certificate under mutual TLS. Required with TLS.
	ClientTLS *tls.Config
}

// SASL mechanisms of KafkaSASL, as Kafka names them.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// KafkaSASL is the one SASL user of the broker.
type KafkaSASL struct {
	// Mechanism is SASLPlain, SASLScramSHA256 or SASLScramSHA512.
	Mechanism string
	User      string
	Password  string
}

// Client returns the kafka-go mechanism that logs in as s.
func (s KafkaSASL) Client() (sasl.Mechanism, error) {
	switch s.Mechanism {
	case SASLPlain:
		return plain.Mechanism{Username: s.User, Password: s.Password}, nil
	case SASLScramSHA256:
		return scram.Mechanism(scram.SHA256, s.User, s.Password)
	case SASLScramSHA512:
		return scram.Mechanism(scram.SHA512, s.User, s.Password)
	}
	return nil, fmt.Errorf("embedded: unknown SASL mechanism %q (want %s, %s or %s)", s.Mechanism, SASLPlain, SASLScramSHA256, SASLScramSHA512)
}

// Kafka is an in-process single-broker Kafka (franz-go kfake) on 127.0.0.1.
//
// Cut and Restore simulate a network outage without losing broker state:
// while cut, every existing client connection is closed and new ones are
// closed as soon as they are accepted. All methods are safe for concurrent use.
type Kafka struct {
	opts KafkaOptions
	gate *gate
	mech sasl.Mechanism // the own clients' login; nil without SASL

	mu      sync.Mutex
	cluster *kfake.Cluster
	port    int
	closed  bool
	expiry  *memberExpiry
}

// StartKafka starts the broker. The caller must Close it.
func StartKafka(opts KafkaOptions) (*Kafka, error) {
	if opts.Partitions <= 0 {
		opts.Partitions = 1
	}
	if opts.TLS != nil && opts.ClientTLS == nil {
		return nil, errors.New("embedded: KafkaOptions.TLS needs ClientTLS (the config of the broker's own clients)")
	}
	k := &Kafka{opts: opts, gate: newGate(), port: opts.Port}
	if opts.SASL != nil {
		m, err := opts.SASL.Client()
		if err != nil {
			return nil, err
		}
		k.mech = m
	}
	k.expiry = newMemberExpiry(k)
	if err := k.start(); err != nil {
		return nil, err
	}
	go k.expiry.run()
	return k, nil
}

func (k *Kafka) start() error {
	kopts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(k.port),
		kfake.ListenFn(k.gate.listen),
	}
	if len(k.opts.Topics) > 0 {
		kopts = append(kopts, kfake.SeedTopics(int32(k.opts.Partitions), k.opts.Topics...))
	}
	if k.opts.DataDir != "" {
		kopts = append(kopts, kfake.DataDir(k.opts.DataDir))
	}
	if k.opts.GroupMinSessionTimeout > 0 {
		kopts = append(kopts, kfake.GroupMinSessionTimeout(k.opts.GroupMinSessionTimeout))
	}
	if s := k.opts.SASL; s != nil {
		kopts = append(kopts, kfake.EnableSASL(), kfake.Superuser(s.Mechanism, s.User, s.Password))
	}
	if k.opts.TLS != nil {
		kopts = append(kopts, kfake.TLS(k.opts.TLS.Clone()))
	}
	c, err := kfake.NewCluster(kopts...)
	if err != nil {
		return fmt.Errorf("embedded: start kfake: %w", err)
	}
	addrs := c.ListenAddrs()
	if len(addrs) != 1 {
		c.Close()
		return fmt.Errorf("embedded: kfake listens on %d addresses, want 1", len(addrs))
	}
	_, portStr, err := net.SplitHostPort(addrs[0])
	if err != nil {
		c.Close()
		return fmt.Errorf("embedded: kfake address %q: %w", addrs[0], err)
	}
	k.port, _ = strconv.Atoi(portStr)
	k.cluster = c
	k.expiry.watch(c)
	return nil
}

// Addrs returns the bootstrap addresses (host:port). They stay the same
// across Restart.
func (k *Kafka) Addrs() []string {
	return []string{net.JoinHostPort("127.0.0.1", strconv.Itoa(k.port))}
}

// ClientSASL is the SASL mechanism a client needs to talk to the broker (nil
// without KafkaOptions.SASL).
func (k *Kafka) ClientSASL() sasl.Mechanism { return k.mech }

// ClientTLS is a copy of the TLS config a client needs to talk to the broker
// (nil without KafkaOptions.TLS).
func (k *Kafka) ClientTLS() *tls.Config {
	if k.opts.ClientTLS == nil {
		return nil
	}
	return k.opts.ClientTLS.Clone()
}

// Cluster returns the underlying kfake cluster (for group inspection and
// fault injection). It changes on Restart.
func (k *Kafka) Cluster() *kfake.Cluster {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.cluster
}

// Cut closes every open client connection and refuses new ones until
// Restore. Broker state (records, groups, offsets) is kept.
func (k *Kafka) Cut() { k.gate.cut() }

// Restore lets clients connect again after Cut.
func (k *Kafka) Restore() { k.gate.restore() }

// Slow makes the broker wait d before every write to a client (0: no wait),
// as a broker under load answers late.
func (k *Kafka) Slow(d time.Duration) { k.gate.slow.Store(int64(d)) }

// Restart closes the broker and starts it again on the same port. With a
// DataDir the state survives; without one Restart is refused, because an
// empty broker behind the same address would silently lose data.
func (k *Kafka) Restart() error {
	if k.opts.DataDir == "" {
		return errors.New("embedded: Kafka.Restart needs KafkaOptions.DataDir")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return errors.New("embedded: kafka is closed")
	}
	k.cluster.Close()
	k.gate.closeConns()
	var err error
	// The port is free again once the listener is closed; retry briefly.
	for attempt := 0; attempt < 50; attempt++ {
		if err = k.start(); err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

// Close shuts the broker down and closes all client connections. It is safe
// to call more than once.
func (k *Kafka) Close() {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		return
	}
	k.closed = true
	k.mu.Unlock()
	k.expiry.close() // it takes k.mu (Cluster)
	k.mu.Lock()
	k.cluster.Close()
	k.gate.closeConns()
}

// transport returns a private kafka-go transport for one call: the package
// default one keeps background goroutines alive, which goleak would report.
// Made per call, its cached metadata is never stale, so MetadataTTL only
// matters as what kafka-go also makes of it, the timeout of each metadata
// request, which must outlast a broker slowed by load.
func (k *Kafka) transport() *kafka.Transport {
	return &kafka.Transport{DialTimeout: 2 * time.Second, IdleTimeout: time.Second, MetadataTTL: 5 * time.Second,
		SASL: k.ClientSASL(), TLS: k.ClientTLS()}
}

func (k *Kafka) client(tr *kafka.Transport) *kafka.Client {
	return &kafka.Client{Addr: kafka.TCP(k.Addrs()...), Transport: tr, Timeout: 10 * time.Second}
}

// gate is the listener wrapper behind Cut and Restore: it tracks accepted
// connections so that cut can close them.
type gate struct {
	mu    sync.Mutex
	isCut bool
	conns map[*gatedConn]struct{}
	slow  atomic.Int64 // nanoseconds every write of the broker waits
}

func newGate() *gate { return &gate{conns: make(map[*gatedConn]struct{})} }

func (g *gate) listen(network, address string) (net.Listener, error) {
	l, err := net.Listen(network, address)
	if err != nil {
		return nil, err
	}
	return &gatedListener{Listener: l, g: g}, nil
}

func (g *gate) cut() {
	g.mu.Lock()
	g.isCut = true
	g.mu.Unlock()
	g.closeConns()
}

func (g *gate) restore() {
	g.mu.Lock()
	g.isCut = false
	g.mu.Unlock()
}

func (g *gate) closeConns() {
	g.mu.Lock()
	conns := make([]*gatedConn, 0, len(g.conns))
	for c := range g.conns {
		conns = append(conns, c)
	}
	g.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
}

// admit registers c, or reports false while the gate is cut.
func (g *gate) admit(c *gatedConn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.isCut {
		return false
	}
	g.conns[c] = struct{}{}
	return true
}

func (g *gate) forget(c *gatedConn) {
	g.mu.Lock()
	delete(g.conns, c)
	g.mu.Unlock()
}

type gatedListener struct {
	net.Listener
	g *gate
}

// Accept closes connections that arrive while the gate is cut and keeps
// waiting, so the broker never sees them.
func (l *gatedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		gc := &gatedConn{Conn: c, g: l.g}
		if l.g.admit(gc) {
			return gc, nil
		}
		_ = c.Close()
	}
}

type gatedConn struct {
	net.Conn
	g    *gate
	once sync.Once
	err  error
}

func (c *gatedConn) Write(b []byte) (int, error) {
	if d := time.Duration(c.g.slow.Load()); d > 0 {
		time.Sleep(d)
	}
	return c.Conn.Write(b)
}

func (c *gatedConn) Close() error {
	c.once.Do(func() {
		c.g.forget(c)
		c.err = c.Conn.Close()
	})
	return c.err
}
