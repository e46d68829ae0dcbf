package service_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"hitship/config"
	"hitship/internal/embedded"
	"hitship/internal/testenv"
	"hitship/service"
)

// newSecureEnv is newEnv (2 partitions) with a broker started with kopts
// (SASL, TLS) and the topics given besides the source and dead-letter topics.
func newSecureEnv(t *testing.T, kopts testenv.KafkaOptions, buckets ...string) *env {
	t.Helper()
	return newEnvWith(t, 2, kopts, buckets...)
}

// secretFile writes a secret to a file of t's and returns its path (files,
// not t.Setenv: the subtests run in parallel).
func secretFile(t *testing.T, name, value string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// kafkaClientSide is the kafka section hitship needs for a broker: the SASL
// mechanism (config's name), user and password file, and TLS with the CA
// file, plus the client certificate for mutual TLS.
type kafkaClientSide struct {
	mechanism, user, passwordFile string
	tls                           bool
	caFile, certFile, keyFile     string
}

func (k kafkaClientSide) apply(c *config.Config) {
	if k.mechanism != "" {
		c.Kafka.SASL = config.SASL{Mechanism: k.mechanism, Username: k.user, PasswordFile: k.passwordFile}
	}
	if k.tls {
		c.Kafka.TLS = config.TLS{Enabled: true, CAFile: k.caFile, CertFile: k.certFile, KeyFile: k.keyFile}
	}
}

// configMechanism is the config's name of a broker's SASL mechanism.
var configMechanism = map[string]string{embedded.SASLPlain: config.SASLPlain,
	embedded.SASLScramSHA256: config.SASLScramSHA256, embedded.SASLScramSHA512: config.SASLScramSHA512}

// TestKafkaSecurityEndToEnd (issue #14): through a broker that requires SASL
// PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, serves TLS or mutual TLS, or SCRAM
// over mutual TLS, hits are consumed and land in S3 exactly once and the
// offsets are committed. The SCRAM-over-mutual-TLS case also proves the
// other connections: a bad record goes to the dead-letter topic, an
// integration created through the admin API (stored on the integrations
// topic, kstore) delivers its tenant's hits, and its create_integration
// event reaches the events topic.
func TestKafkaSecurityEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	certs := testenv.MustCerts(t)
	tests := []struct {
		name   string
		mech   string // the broker's SASL mechanism; "" none
		tls    bool
		mutual bool
		full   bool // dead letters, definitions and events too
	}{
		{name: "SASL PLAIN", mech: embedded.SASLPlain},
		{name: "SASL SCRAM-SHA-256", mech: embedded.SASLScramSHA256},
		{name: "SASL SCRAM-SHA-512", mech: embedded.SASLScramSHA512},
		{name: "TLS", tls: true},
		{name: "mutual TLS", tls: true, mutual: true},
		{name: "SCRAM over mutual TLS", mech: embedded.SASLScramSHA512, tls: true, mutual: true, full: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			const eventsTopic = "hitship-events"
			kopts := testenv.KafkaOptions{Topics: []string{eventsTopic}}
			var client kafkaClientSide
			if tt.mech != "" {
				pw := "secret-of-" + strings.ToLower(tt.mech)
				kopts.SASL = &embedded.KafkaSASL{Mechanism: tt.mech, User: "hitship", Password: pw}
				client.mechanism, client.user, client.passwordFile = configMechanism[tt.mech], "hitship", secretFile(t, "kafka-password", pw)
			}
			if tt.tls {
				kopts.TLS, kopts.ClientTLS = certs.ServerTLS(tt.mutual), certs.ClientTLS(tt.mutual)
				client.tls, client.caFile = true, certs.CAFile
				if tt.mutual {
					client.certFile, client.keyFile = certs.ClientCertFile, certs.ClientKeyFile
				}
			}
			e := newSecureEnv(t, kopts, "b-acme", "b-api")
			acme := integ("acme", 1, "b-acme", "ndjson")
			cfg := e.config(t, acme)
			cfg.Window.Size, cfg.Window.Grace, cfg.Window.IdleTimeout = 10*time.Second, time.Second, time.Second
			client.apply(cfg)
			const token = "admin-token-for-tests-0014"
			if tt.full {
				key := make([]byte, 32)
				_, _ = rand.Read(key)
				cfg.HTTP.AdminTokenFile = secretFile(t, "admin-token", token)
				cfg.Secrets.KeysFile = secretFile(t, "keys", "k1:"+base64.StdEncoding.EncodeToString(key))
				cfg.Kafka.EventsTopic = eventsTopic
			}
			if ps := cfg.Validate(); len(ps) > 0 {
				t.Fatal(config.AsError(ps))
			}
			svc, reg := startService(t, "a", cfg)
			waitFor(t, 30*time.Second, "the member owns both partitions", func() bool {
				return metricSum(t, reg, "hitship_kafka_assigned_partitions") == 2
			})

			clients := []int64{1}
			var api config.Integration
			if tt.full {
				srv := httptest.NewServer(svc.Handler())
				t.Cleanup(srv.Close)
				c := apiClient{t, srv.URL, token, &lockedBuffer{}}
				code, _, v := c.do(http.MethodPost, "/v1/integrations", `{"name":"api1","client_id":2,"region":"`+testenv.S3Region+
					`","bucket":"b-api","prefix":"hits/","format":"ndjson","credentials":{"access_key_id":"TESTACCESSKEY0001","secret_access_key":"`+testSecret+`"}}`)
				if code != http.StatusCreated {
					t.Fatalf("create through the API: %d %v", code, v)
				}
				api = integ("api1", 2, "b-api", "ndjson")
				clients = append(clients, 2)
			}

			hits := e.produceHits(t, 300, clients, time.Now().Add(-time.Minute), 10*time.Second, 2, 14)
			if tt.full {
				produceBad(t, e, 0, 3)
			}
			apiHits := 0
			for _, h := range hits {
				if h.client == 2 {
					apiHits++
				}
			}
			waitFor(t, 60*time.Second, "every hit delivered and the offsets committed", func() bool {
				if !allDelivered(t, e, hits, acme) || !e.committedToEnd(t, cfg.Kafka.Group) {
					return false
				}
				return !tt.full || len(apiDelivered(t, e, api)) == apiHits
			})
			checkExactlyOnce(t, e, hits, []config.Integration{acme})
			if !tt.full {
				return
			}
			got := apiDelivered(t, e, api)
			for _, h := range hits {
				if n := got[h.id]; h.client == 2 && n != 1 {
					t.Errorf("hit %s of the API's integration delivered %d times", h.id, n)
				}
			}
			if n := deadLetters(t, e); n != 3 {
				t.Errorf("%d records on the dead-letter topic, want 3", n)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			defsOnTopic := 0
			if err := e.kafka.Scan(ctx, cfg.Kafka.IntegrationsTopic, func(m *kafka.Message) error {
				if strings.Contains(string(m.Key), "api1") {
					defsOnTopic++
				}
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if defsOnTopic == 0 {
				t.Errorf("no record of integration api1 on the integrations topic %s", cfg.Kafka.IntegrationsTopic)
			}
			waitFor(t, 30*time.Second, "the create_integration event on the events topic", func() bool {
				msgs, err := e.kafka.ReadAll(ctx, eventsTopic)
				if err != nil {
					t.Fatal(err)
				}
				for _, m := range msgs {
					if strings.Contains(string(m.Value), `"create_integration"`) && strings.Contains(string(m.Value), `"api1"`) {
						return true
					}
				}
				return false
			})
		})
	}
}

// apiDelivered counts each request id in the objects of in's bucket,
// leaving out the sample hits the API's test-before-save writes.
func apiDelivered(t *testing.T, e *env, in config.Integration) map[string]int {
	t.Helper()
	out := map[string]int{}
	re := regexp.MustCompile(`"request_id":"([0-9a-f]+)"`)
	for _, o := range e.objects(t, in.Bucket) {
		if strings.Contains(o.key, "_test.") {
			continue
		}
		for _, r := range o.records {
			if m := re.FindSubmatch(r); m != nil {
				out[string(m[1])]++
			}
		}
	}
	return out
}

// TestKafkaSecurityStartupFailure (issue #14): when the broker refuses
// hitship's SASL or TLS settings, the service stops at start-up, at once
// rather than retrying, with an error that names the setting to fix.
func TestKafkaSecurityStartupFailure(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end")
	}
	certs, otherCA := testenv.MustCerts(t), testenv.MustCerts(t)
	const pw = "the-right-password"
	// One broker for every case: SCRAM-SHA-256 over mutual TLS.
	e := newSecureEnv(t, testenv.KafkaOptions{
		SASL: &embedded.KafkaSASL{Mechanism: embedded.SASLScramSHA256, User: "hitship", Password: pw},
		TLS:  certs.ServerTLS(true), ClientTLS: certs.ClientTLS(true),
	})
	good := kafkaClientSide{mechanism: config.SASLScramSHA256, user: "hitship", passwordFile: secretFile(t, "pw", pw),
		tls: true, caFile: certs.CAFile, certFile: certs.ClientCertFile, keyFile: certs.ClientKeyFile}
	tests := []struct {
		name   string
		change func(k *kafkaClientSide)
		want   []string // in the error
		waits  string   // no error: the service waits for Kafka, logging this hint
	}{
		{name: "good settings start", change: func(*kafkaClientSide) {}},
		{name: "plain text to the TLS listener waits, with a hint", change: func(k *kafkaClientSide) { k.tls = false },
			waits: "If the broker listens with TLS, set kafka.tls.enabled: true"},
		{name: "wrong SASL password", change: func(k *kafkaClientSide) { k.passwordFile = secretFile(t, "wrong", "not-the-password") },
			want: []string{"kafka.sasl", "password_file", "refused the SASL login", `"hitship"`}},
		{name: "wrong SASL mechanism", change: func(k *kafkaClientSide) { k.mechanism = config.SASLScramSHA512 },
			want: []string{"kafka.sasl", "kafka.sasl.mechanism"}},
		{name: "broker certificate not signed by the configured CA", change: func(k *kafkaClientSide) { k.caFile = otherCA.CAFile },
			want: []string{"kafka.tls.ca_file", "not signed by a CA hitship trusts", otherCA.CAFile}},
		{name: "no client certificate under mutual TLS", change: func(k *kafkaClientSide) { k.certFile, k.keyFile = "", "" },
			want: []string{"kafka.tls.cert_file", "requires a client certificate", "kafka.tls.key_file"}},
		{name: "client certificate of another CA", change: func(k *kafkaClientSide) { k.certFile, k.keyFile = otherCA.ClientCertFile, otherCA.ClientKeyFile },
			want: []string{"kafka.tls.cert_file", "refused hitship's client certificate"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client := good
			tt.change(&client)
			cfg := e.config(t)
			client.apply(cfg)
			if ps := cfg.Validate(); len(ps) > 0 {
				t.Fatal(config.AsError(ps))
			}
			logs := &lockedBuffer{}
			log := slog.New(slog.NewTextHandler(io.MultiWriter(testWriter{t}, logs), &slog.HandlerOptions{Level: slog.LevelDebug}))
			svc, err := service.New(cfg, service.Deps{Logger: log, Registry: prometheus.NewRegistry()})
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			start := time.Now()
			go func() { done <- svc.Run(ctx) }()
			if tt.want == nil {
				select {
				case err := <-done:
					t.Fatalf("the service stopped: %v", err)
				case <-time.After(3 * time.Second):
				}
				cancel()
				if err := <-done; err != nil {
					t.Fatal(err)
				}
				if !strings.Contains(logs.String(), tt.waits) {
					t.Errorf("the log does not say %q", tt.waits)
				}
				return
			}
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				cancel()
				<-done
				t.Fatalf("the service did not stop at start-up within 20 s; log:\n%s", logs.String())
			}
			if err == nil {
				t.Fatal("Run returned nil")
			}
			t.Logf("after %s: %v", time.Since(start).Round(time.Millisecond), err)
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("the error does not say %q", w)
				}
			}
			if strings.Contains(err.Error(), pw) || strings.Contains(logs.String(), pw) {
				t.Error("the password is in the error or the log")
			}
		})
	}
}
