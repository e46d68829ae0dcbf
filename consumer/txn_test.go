package consumer

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"hitship/internal/testenv"
)

// txnProducer produces into topic's partition 0 in transactions.
type txnProducer struct {
	t  *testing.T
	cl *kgo.Client
}

func newTxnProducer(t *testing.T, k *testenv.Kafka, topic, id string) *txnProducer {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(k.Addrs()...), kgo.TransactionalID(id), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return &txnProducer{t: t, cl: cl}
}

// txn writes values in one transaction and commits or aborts it.
func (p *txnProducer) txn(commit bool, values ...[]byte) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := p.cl.BeginTransaction(); err != nil {
		p.t.Fatal(err)
	}
	for _, v := range values {
		if err := p.cl.ProduceSync(ctx, &kgo.Record{Value: v}).FirstErr(); err != nil {
			p.t.Fatal(err)
		}
	}
	if err := p.cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		p.t.Fatal(err)
	}
}

// TestFetcherDropsAbortedTransactions: the fetcher reads with ReadCommitted and
// hands out neither the records of aborted transactions nor the transaction
// markers, with two producers' transactions in turn, from the start and from
// an offset inside an aborted transaction. kafka-go's Conn hands out both (it
// reads and drops the fields that tell them apart); hitship sent the aborted
// hits to customers and the markers to the dead-letter topic.
//
// The fetches are large enough for the whole log: kfake leaves the aborted
// transactions out of a response that reached the request's MaxBytes (its
// fetch handler's "break full" skips that lookup), which kafka-go sets equal to
// the partition's limit; Kafka itself sends them.
func TestFetcherDropsAbortedTransactions(t *testing.T) {
	k := testenv.MustKafka(t, testenv.KafkaOptions{Partitions: 2, Topics: []string{fetchTopic}})
	a := newTxnProducer(t, k, fetchTopic, "a")
	b := newTxnProducer(t, k, fetchTopic, "b")
	type rec struct {
		val    string
		offset int64
	}
	var want []rec
	val := func(s string) []byte { return fmt.Appendf(nil, `{"n":%q}`, s) }
	off := int64(0)
	for i := 0; i < 6; i++ {
		commit := i%2 == 0
		p := a
		if i%3 == 2 {
			p = b
		}
		var vals [][]byte
		for j := 0; j < 3; j++ {
			s := fmt.Sprintf("%d-%d", i, j)
			vals = append(vals, val(s))
			if commit {
				want = append(want, rec{string(val(s)), off})
			}
			off++
		}
		off++ // the marker
		p.txn(commit, vals...)
	}
	for _, from := range []int64{-1, 5} { // 5: inside the aborted transaction 1 (offsets 4-6)
		t.Run(fmt.Sprintf("from %d", from), func(t *testing.T) {
			f := newTestFetcher(k, from, 4<<20)
			defer f.close()
			ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
			defer cancel()
			var exp []rec
			for _, r := range want {
				if r.offset >= from {
					exp = append(exp, r)
				}
			}
			var got []rec
			for len(got) < len(exp) {
				m, err := f.next(ctx)
				if err != nil {
					if ctx.Err() != nil {
						t.Fatalf("after %d records: %v", len(got), err)
					}
					continue
				}
				got = append(got, rec{string(m.Value), m.Offset})
			}
			for i := range exp {
				if got[i] != exp[i] {
					t.Fatalf("record %d: %v, want %v (all: %v)", i, got[i], exp[i], got)
				}
			}
			// Nothing else comes: the last transaction was aborted, its marker is dropped.
			sctx, scancel := context.WithTimeout(t.Context(), 2*time.Second)
			defer scancel()
			if m, err := f.next(sctx); err == nil {
				t.Fatalf("an extra record: offset %d value %q", m.Offset, m.Value)
			}
		})
	}
}

// TestAbortedTransactionsNotDelivered (issue #11): hits written in
// transactions, one aborted. The committed ones are delivered once, the
// aborted ones never, and the transaction markers are not dead letters. Before,
// the worker read uncommitted: the aborted hits went to the customer's bucket
// and every marker to the dead-letter topic.
func TestAbortedTransactionsNotDelivered(t *testing.T) {
	wd := newWorld(t, 1)
	p := newTxnProducer(t, wd.kafka, wTopic, "hits-producer")
	base := time.Now().Add(-24*time.Hour).Unix() / 600 * 600
	p.txn(true, hitAt(1, base, "c0"), hitAt(1, base+1, "c1"))
	p.txn(false, hitAt(1, base+2, "a0"), hitAt(1, base+3, "a1"), hitAt(1, base+4, "a2"))
	p.txn(true, hitAt(1, base+5, "c2"), hitAt(1, base+600+61, "closer"))
	mb := wd.start("a", memberOpts{idle: time.Hour})
	waitUntil(t, 30*time.Second, "the window's object", func() bool { return len(wd.store.Keys()) == 1 })
	got := wd.delivered()
	for _, id := range []string{"c0", "c1", "c2"} {
		if got[id] != 1 {
			t.Errorf("committed hit %s delivered %d times", id, got[id])
		}
	}
	for _, id := range []string{"a0", "a1", "a2"} {
		if got[id] != 0 {
			t.Errorf("aborted hit %s delivered", id)
		}
	}
	if n := counter(mb.m.DeadLettered); n != 0 {
		t.Errorf("%v dead letters: transaction markers are not bad records", n)
	}
}

// TestFetcherTLSSeesTransactions: with TLS the tap must sit above it, so the
// fetcher does the handshake itself (tapDialer): records are read over TLS and
// an aborted transaction is still dropped.
func TestFetcherTLSSeesTransactions(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kfake"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, fetchTopic),
		kfake.TLS(&tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	ctls := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DialTLSConfig(ctls), kgo.TransactionalID("tls"),
		kgo.DefaultProduceTopic(fetchTopic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	p := &txnProducer{t: t, cl: cl}
	p.txn(false, []byte(`{"n":"aborted"}`))
	p.txn(true, []byte(`{"n":"committed"}`))
	f := newFetcher(&kafka.Dialer{Timeout: 5 * time.Second, TLS: ctls}, c.ListenAddrs(), fetchTopic, 0, -1, 4<<20, 200*time.Millisecond,
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer f.close()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	for {
		m, err := f.next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				t.Fatal(err)
			}
			continue
		}
		if string(m.Value) != `{"n":"committed"}` || m.Offset != 2 {
			t.Fatalf("read offset %d %q, want the committed record at 2", m.Offset, m.Value)
		}
		return
	}
}
