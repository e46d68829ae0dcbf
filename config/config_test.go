package config

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// env returns a lookup over m, for WithLookupEnv.
func env(m map[string]string) Option {
	return WithLookupEnv(func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	})
}

func withReadFile(f func(string) ([]byte, error)) Option {
	return func(o *options) { o.readFile = f }
}

func findProblem(ps []Problem, key string) (Problem, bool) {
	for _, p := range ps {
		if p.Key == key {
			return p, true
		}
	}
	return Problem{}, false
}

func TestDefaultValidates(t *testing.T) {
	c := Default()
	if ps := c.Validate(env(nil)); len(ps) != 0 {
		t.Fatalf("Default() has problems: %v", ps)
	}
}

func TestEmptyFileIsDefault(t *testing.T) {
	for _, in := range []string{"", "# only a comment\n", "---\n"} {
		c, ps := Parse([]byte(in), env(nil))
		if len(ps) != 0 || c == nil {
			t.Fatalf("Parse(%q) = %v, %v", in, c, ps)
		}
		d := Default()
		if c.Window.Size != d.Window.Size || c.Kafka.Topic != d.Kafka.Topic || c.S3.KeyTemplate != d.S3.KeyTemplate {
			t.Fatalf("Parse(%q) did not keep defaults: %+v", in, c)
		}
	}
}

func TestExampleYAML(t *testing.T) {
	const acme, extID = "acme-secret-value-123", "external-id-server-secret-0123456789"
	checked := ""
	c, ps, err := Load("example.yaml",
		env(map[string]string{"ACME_SECRET": acme, "HITSHIP_EXTERNAL_ID_SECRET": extID}),
		WithKeyTemplate(func(s string) error { checked = s; return nil }))
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 0 {
		t.Fatalf("example.yaml has problems:\n%v", AsError(ps))
	}
	if checked != Default().S3.KeyTemplate {
		t.Fatalf("key template validator saw %q", checked)
	}
	if len(c.Integrations) != 2 {
		t.Fatalf("want 2 integrations, got %d", len(c.Integrations))
	}
	acmeIn, globex := c.Integrations[0], c.Integrations[1]
	if acmeIn.Credentials.SecretAccessKey() != acme || c.ExternalID.Secret() != extID {
		t.Fatal("secrets not loaded from the environment")
	}
	// globex leaves enabled and events out: integration defaults apply.
	if !globex.Enabled || len(globex.Events) != 1 || globex.Events[0] != EventHits || globex.Format != FormatNDJSON {
		t.Fatalf("integration defaults not applied: %+v", globex)
	}
	if c.Kafka.MaxRecordBytes != 1<<20 || c.Spool.MaxBytes != 10<<30 || c.Window.Size != 10*time.Minute {
		t.Fatalf("sizes/durations misparsed: %+v", c)
	}
}

func TestDefaultsFillMissingKeys(t *testing.T) {
	c, ps := Parse([]byte("window:\n  size: 5m\nkafka:\n  brokers: [a:1, b:2]\n"), env(nil))
	if len(ps) != 0 {
		t.Fatal(ps)
	}
	d := Default()
	if c.Window.Size != 5*time.Minute || c.Window.Grace != d.Window.Grace || c.Window.Timestamp != TimestampEvent {
		t.Fatalf("window = %+v", c.Window)
	}
	if len(c.Kafka.Brokers) != 2 || c.Kafka.Brokers[1] != "b:2" || c.Kafka.Topic != d.Kafka.Topic {
		t.Fatalf("kafka = %+v", c.Kafka)
	}
}

func TestParseProblems(t *testing.T) {
	tests := []struct {
		name    string
		yaml    string
		wantKey string
		line    int
		msg     string
		nilCfg  bool
	}{
		{name: "unknown top-level key", yaml: "kafka:\n  topic: x\nwindw:\n  size: 1m\n", wantKey: "windw", line: 3, msg: "unknown key"},
		{name: "unknown nested key", yaml: "kafka:\n  topic: x\n  tpoic: y\n", wantKey: "kafka.tpoic", line: 3, msg: "unknown key"},
		{name: "unknown key in tls", yaml: "redis:\n  tls:\n    enabled: false\n    ca: x\n", wantKey: "redis.tls.ca", line: 4, msg: "unknown key"},
		{name: "unknown key in integration", yaml: "integrations:\n  - name: a\n  - name: b\n    bukcet: x\n", wantKey: "integrations[1].bukcet", line: 4, msg: "unknown key"},
		// parking.manifest was accepted and did nothing (a copy of the
		// integration's field): a manifest is per integration.
		{name: "manifest under parking", yaml: "parking:\n  bucket: b\n  manifest: true\n", wantKey: "parking.manifest", line: 3, msg: "unknown key"},
		{name: "unknown key in credentials", yaml: "integrations:\n  - credentials:\n      secret_access_key: inline\n", wantKey: "integrations[0].credentials.secret_access_key", line: 3, msg: "unknown key"},
		{name: "bad duration", yaml: "window:\n  size: 10 minutes\n", wantKey: "window.size", line: 2, msg: "time.Duration"},
		{name: "integer duration", yaml: "window:\n  grace: 60\n", wantKey: "window.grace", line: 2, msg: "time.Duration"},
		{name: "bad size", yaml: "spool:\n  max_bytes: lots\n", wantKey: "spool.max_bytes", line: 2, msg: "invalid size"},
		{name: "size list", yaml: "spool:\n  max_bytes: [1]\n", wantKey: "spool.max_bytes", line: 2, msg: "want a size"},
		{name: "string for int", yaml: "delivery:\n  concurrency: many\n", wantKey: "delivery.concurrency", line: 2, msg: "cannot unmarshal"},
		{name: "bad client_id type", yaml: "integrations:\n  - name: a\n    client_id: seven\n", wantKey: "integrations[0].client_id", line: 3, msg: "cannot unmarshal"},
		{name: "duplicate key", yaml: "kafka:\n  topic: a\n  topic: b\n", wantKey: "kafka.topic", line: 3, msg: "already defined"},
		// Found by FuzzLoad: the quoted value holds a newline, and the line
		// number must still be read from the message.
		{name: "value with a newline", yaml: "integrations:\n  - name: a\n    client_id: \"a\\nb\"\n", wantKey: "integrations[0].client_id", line: 3, msg: "cannot unmarshal"},
		// The top mapping, anchored above its first key and aliased below:
		// no key at or above the line, so the first key below names it.
		{name: "anchored top mapping", yaml: "\n&a\nintegrations: [{client_id: *a}]\n", wantKey: "integrations", line: 2, msg: "cannot unmarshal"},
		{name: "syntax error", yaml: "kafka:\n  topic: [a\n", line: 0, msg: "", nilCfg: true},
		{name: "tab indentation", yaml: "kafka:\n\ttopic: a\n", nilCfg: true},
		{name: "top level list", yaml: "- a\n- b\n", msg: "cannot unmarshal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, ps := Parse([]byte(tt.yaml), env(nil))
			if (c == nil) != tt.nilCfg {
				t.Fatalf("cfg nil = %v, want %v (problems %v)", c == nil, tt.nilCfg, ps)
			}
			if len(ps) == 0 {
				t.Fatal("no problems reported")
			}
			p, ok := findProblem(ps, tt.wantKey)
			if !ok {
				t.Fatalf("no problem for key %q in %v", tt.wantKey, ps)
			}
			if tt.line != 0 && p.Line != tt.line {
				t.Fatalf("problem %v: line %d, want %d", p, p.Line, tt.line)
			}
			if !strings.Contains(p.Msg, tt.msg) || p.Fix == "" {
				t.Fatalf("problem %v: want message containing %q and a fix", p, tt.msg)
			}
			if tt.nilCfg && p.Line == 0 {
				t.Fatalf("syntax problem %v has no line", p)
			}
		})
	}
}

func TestUnknownKeysAllReported(t *testing.T) {
	_, ps := Parse([]byte("kafka:\n  a: 1\n  b: 2\nlog:\n  colour: red\n"), env(nil))
	for _, k := range []string{"kafka.a", "kafka.b", "log.colour"} {
		if _, ok := findProblem(ps, k); !ok {
			t.Errorf("unknown key %s not reported in %v", k, ps)
		}
	}
	if len(ps) != 3 {
		t.Fatalf("want exactly 3 problems, got %v", ps)
	}
	p, _ := findProblem(ps, "log.colour")
	if p.Line != 5 || !strings.Contains(p.String(), "log.colour (line 5)") || !strings.Contains(p.Fix, "format, level") {
		t.Fatalf("problem = %q, fix %q", p.String(), p.Fix)
	}
}

// validBase is a complete valid config with one static-key integration.
func validBase() Config {
	c := Default()
	in := DefaultIntegration()
	in.Name, in.ClientID, in.Region, in.Bucket, in.Prefix = "acme", 7, "eu-central-1", "acme-hits", "wallarm/"
	in.Credentials = Credentials{AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKeyEnv: "ACME_SECRET"}
	c.Integrations = []Integration{in}
	return c
}

var baseEnv = map[string]string{"ACME_SECRET": "s3cr3t", "EMPTY": "", "EXT": "0123456789abcdef0123"}

func TestValidateProblems(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM := selfSigned(t)
	caFile := filepath.Join(dir, "ca.pem")
	certFile := filepath.Join(dir, "cert.pem")
	keyFile := filepath.Join(dir, "key.pem")
	junkFile := filepath.Join(dir, "junk.pem")
	for f, b := range map[string][]byte{caFile: certPEM, certFile: certPEM, keyFile: keyPEM, junkFile: []byte("junk")} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	missing := filepath.Join(dir, "missing")
	in0 := func(f func(*Integration)) func(*Config) { return func(c *Config) { f(&c.Integrations[0]) } }
	second := func(f func(*Integration)) func(*Config) {
		return func(c *Config) {
			in := c.Integrations[0]
			in.Name, in.Prefix = "second", "other/"
			f(&in)
			c.Integrations = append(c.Integrations, in)
		}
	}
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantKey string // "" means: no problem at all
	}{
		{name: "valid base", mutate: func(*Config) {}},
		{name: "valid tls with client cert", mutate: func(c *Config) {
			c.Kafka.TLS = TLS{Enabled: true, CAFile: caFile, CertFile: certFile, KeyFile: keyFile}
		}},
		{name: "valid role arn", mutate: func(c *Config) {
			c.Integrations[0].Credentials = Credentials{RoleARN: "arn:aws:iam::123456789012:role/hitship"}
			c.ExternalID.SecretEnv = "EXT"
		}},
		{name: "valid sasl", mutate: func(c *Config) {
			c.Kafka.SASL = SASL{Mechanism: SASLScramSHA512, Username: "u", PasswordEnv: "ACME_SECRET"}
		}},
		{name: "valid hive key template", mutate: func(c *Config) { c.S3.KeyTemplate = "dt={date}/{partition}_{first_offset}" }},
		{name: "valid redis sentinel", mutate: func(c *Config) {
			c.Redis.Mode, c.Redis.Addrs, c.Redis.MasterName = RedisSentinel, []string{"s1:26379", "s2:26379"}, "hitship"
			c.Redis.SentinelUsername, c.Redis.SentinelPasswordEnv = "sentinel", "ACME_SECRET"
		}},
		{name: "valid redis cluster, default prefix read with its hash tag", mutate: func(c *Config) {
			c.Redis.Mode, c.Redis.Addrs = RedisCluster, []string{"n1:6379"}
		}},
		{name: "valid redis cluster endpoint with a tagged prefix", mutate: func(c *Config) {
			c.Redis.Mode, c.Redis.Addr, c.Redis.KeyPrefix = RedisCluster, "clustercfg.example:6379", "acme{hs}:"
		}},
		{name: "redis cluster prefix without a hash tag", mutate: func(c *Config) {
			c.Redis.Mode, c.Redis.Addrs, c.Redis.KeyPrefix = RedisCluster, []string{"n1:6379"}, "hs:"
		}, wantKey: "redis.key_prefix"},
		{name: "redis cluster prefix with an empty hash tag", mutate: func(c *Config) {
			c.Redis.Mode, c.Redis.Addrs, c.Redis.KeyPrefix = RedisCluster, []string{"n1:6379"}, "{}hs:"
		}, wantKey: "redis.key_prefix"},
		{name: "redis cluster db", mutate: func(c *Config) { c.Redis.Mode, c.Redis.DB = RedisCluster, 2 }, wantKey: "redis.db"},
		{name: "redis sentinel without sentinels", mutate: func(c *Config) { c.Redis.Mode, c.Redis.MasterName = RedisSentinel, "m" }, wantKey: "redis.addrs"},
		{name: "redis sentinel without master name", mutate: func(c *Config) { c.Redis.Mode, c.Redis.Addrs = RedisSentinel, []string{"s:26379"} }, wantKey: "redis.master_name"},
		{name: "redis sentinel bad address", mutate: func(c *Config) {
			c.Redis.Mode, c.Redis.Addrs, c.Redis.MasterName = RedisSentinel, []string{"s:26379", "s2"}, "m"
		}, wantKey: "redis.addrs[1]"},
		{name: "redis sentinel settings in mode single", mutate: func(c *Config) { c.Redis.MasterName = "m" }, wantKey: "redis.mode"},
		{name: "redis addrs in mode single", mutate: func(c *Config) { c.Redis.Addrs = []string{"a:1"} }, wantKey: "redis.addrs"},
		{name: "redis unknown mode", mutate: func(c *Config) { c.Redis.Mode = "replicated" }, wantKey: "redis.mode"},
		{name: "redis negative wait_replicas", mutate: func(c *Config) { n := -1; c.Redis.WaitReplicas = &n }, wantKey: "redis.wait_replicas"},
		{name: "redis wait_timeout too long", mutate: func(c *Config) { c.Redis.WaitTimeout = time.Hour }, wantKey: "redis.wait_timeout"},
		{name: "redis sentinel user without password", mutate: func(c *Config) {
			c.Redis.Mode, c.Redis.Addrs, c.Redis.MasterName, c.Redis.SentinelUsername = RedisSentinel, []string{"s:26379"}, "m", "u"
		}, wantKey: "redis.sentinel_password_env"},
		{name: "no brokers", mutate: func(c *Config) { c.Kafka.Brokers = nil }, wantKey: "kafka.brokers"},
		{name: "broker without port", mutate: func(c *Config) { c.Kafka.Brokers = []string{"a:1", "kafka"} }, wantKey: "kafka.brokers[1]"},
		{name: "broker bad port", mutate: func(c *Config) { c.Kafka.Brokers = []string{"a:99999"} }, wantKey: "kafka.brokers[0]"},
		{name: "empty topic", mutate: func(c *Config) { c.Kafka.Topic = "" }, wantKey: "kafka.topic"},
		{name: "bad topic", mutate: func(c *Config) { c.Kafka.Topic = "hits/x" }, wantKey: "kafka.topic"},
		{name: "dead letter equals topic", mutate: func(c *Config) { c.Kafka.DeadLetterTopic = c.Kafka.Topic }, wantKey: "kafka.dead_letter_topic"},
		{name: "empty integrations topic", mutate: func(c *Config) { c.Kafka.IntegrationsTopic = "" }, wantKey: "kafka.integrations_topic"},
		{name: "integrations topic equals topic", mutate: func(c *Config) { c.Kafka.IntegrationsTopic = c.Kafka.Topic }, wantKey: "kafka.integrations_topic"},
		{name: "integrations topic equals dead letter topic", mutate: func(c *Config) { c.Kafka.IntegrationsTopic = c.Kafka.DeadLetterTopic }, wantKey: "kafka.integrations_topic"},
		{name: "no group", mutate: func(c *Config) { c.Kafka.Group = "" }, wantKey: "kafka.group"},
		{name: "no client id", mutate: func(c *Config) { c.Kafka.ClientID = "" }, wantKey: "kafka.client_id"},
		{name: "max record bytes zero", mutate: func(c *Config) { c.Kafka.MaxRecordBytes = 0 }, wantKey: "kafka.max_record_bytes"},
		{name: "max depth zero", mutate: func(c *Config) { c.Kafka.MaxDepth = 0 }, wantKey: "kafka.max_depth"},
		{name: "max depth too big", mutate: func(c *Config) { c.Kafka.MaxDepth = 10001 }, wantKey: "kafka.max_depth"},
		{name: "sasl mechanism unknown", mutate: func(c *Config) { c.Kafka.SASL.Mechanism = "kerberos" }, wantKey: "kafka.sasl.mechanism"},
		{name: "sasl no username", mutate: func(c *Config) { c.Kafka.SASL = SASL{Mechanism: SASLPlain, PasswordEnv: "ACME_SECRET"} }, wantKey: "kafka.sasl.username"},
		{name: "sasl no password", mutate: func(c *Config) { c.Kafka.SASL = SASL{Mechanism: SASLPlain, Username: "u"} }, wantKey: "kafka.sasl.password_env"},
		{name: "sasl env and file", mutate: func(c *Config) {
			c.Kafka.SASL = SASL{Mechanism: SASLPlain, Username: "u", PasswordEnv: "ACME_SECRET", PasswordFile: keyFile}
		}, wantKey: "kafka.sasl.password_env"},
		{name: "sasl env unset", mutate: func(c *Config) { c.Kafka.SASL = SASL{Mechanism: SASLPlain, Username: "u", PasswordEnv: "NOPE"} }, wantKey: "kafka.sasl.password_env"},
		{name: "sasl env empty", mutate: func(c *Config) { c.Kafka.SASL = SASL{Mechanism: SASLPlain, Username: "u", PasswordEnv: "EMPTY"} }, wantKey: "kafka.sasl.password_env"},
		{name: "sasl env is a secret not a name", mutate: func(c *Config) {
			c.Kafka.SASL = SASL{Mechanism: SASLPlain, Username: "u", PasswordEnv: "pa$$word"}
		}, wantKey: "kafka.sasl.password_env"},
		{name: "sasl file missing", mutate: func(c *Config) { c.Kafka.SASL = SASL{Mechanism: SASLPlain, Username: "u", PasswordFile: missing} }, wantKey: "kafka.sasl.password_file"},
		{name: "sasl file is a directory", mutate: func(c *Config) { c.Kafka.SASL = SASL{Mechanism: SASLPlain, Username: "u", PasswordFile: dir} }, wantKey: "kafka.sasl.password_file"},
		{name: "sasl credentials without mechanism", mutate: func(c *Config) { c.Kafka.SASL.Username = "u" }, wantKey: "kafka.sasl.mechanism"},
		{name: "tls files while disabled", mutate: func(c *Config) { c.Kafka.TLS.CAFile = caFile }, wantKey: "kafka.tls.enabled"},
		{name: "tls ca missing", mutate: func(c *Config) { c.Kafka.TLS = TLS{Enabled: true, CAFile: missing} }, wantKey: "kafka.tls.ca_file"},
		{name: "tls ca not pem", mutate: func(c *Config) { c.Kafka.TLS = TLS{Enabled: true, CAFile: junkFile} }, wantKey: "kafka.tls.ca_file"},
		{name: "tls cert without key", mutate: func(c *Config) { c.Redis.TLS = TLS{Enabled: true, CertFile: certFile} }, wantKey: "redis.tls.cert_file"},
		{name: "tls key missing", mutate: func(c *Config) { c.Redis.TLS = TLS{Enabled: true, CertFile: certFile, KeyFile: missing} }, wantKey: "redis.tls.key_file"},
		{name: "tls pair mismatch", mutate: func(c *Config) { c.Redis.TLS = TLS{Enabled: true, CertFile: certFile, KeyFile: junkFile} }, wantKey: "redis.tls.cert_file"},
		{name: "session timeout zero", mutate: func(c *Config) { c.Kafka.SessionTimeout = 0 }, wantKey: "kafka.session_timeout"},
		{name: "rebalance timeout zero", mutate: func(c *Config) { c.Kafka.RebalanceTimeout = 0 }, wantKey: "kafka.rebalance_timeout"},
		{name: "commit interval negative", mutate: func(c *Config) { c.Kafka.CommitInterval = -time.Second }, wantKey: "kafka.commit_interval"},
		{name: "heartbeat not below session", mutate: func(c *Config) { c.Kafka.HeartbeatInterval = c.Kafka.SessionTimeout }, wantKey: "kafka.heartbeat_interval"},
		{name: "window size zero", mutate: func(c *Config) { c.Window.Size = 0 }, wantKey: "window.size"},
		{name: "window size fractional seconds", mutate: func(c *Config) { c.Window.Size = 1500 * time.Millisecond; c.Window.Grace = 0 }, wantKey: "window.size"},
		{name: "window size not dividing a day", mutate: func(c *Config) { c.Window.Size = 7 * time.Minute }, wantKey: "window.size"},
		{name: "grace not below size", mutate: func(c *Config) { c.Window.Grace = c.Window.Size }, wantKey: "window.grace"},
		{name: "grace negative", mutate: func(c *Config) { c.Window.Grace = -time.Second }, wantKey: "window.grace"},
		{name: "idle timeout zero", mutate: func(c *Config) { c.Window.IdleTimeout = 0 }, wantKey: "window.idle_timeout"},
		{name: "timestamp unknown", mutate: func(c *Config) { c.Window.Timestamp = "ingest" }, wantKey: "window.timestamp"},
		{name: "future skew negative", mutate: func(c *Config) { c.Window.MaxFutureSkew = -time.Second }, wantKey: "window.max_future_skew"},
		{name: "spool dir empty", mutate: func(c *Config) { c.Spool.Dir = "" }, wantKey: "spool.dir"},
		{name: "spool max bytes zero", mutate: func(c *Config) { c.Spool.MaxBytes = 0 }, wantKey: "spool.max_bytes"},
		{name: "spool memory zero", mutate: func(c *Config) { c.Spool.MemoryBytes = 0 }, wantKey: "spool.memory_bytes"},
		{name: "concurrency zero", mutate: func(c *Config) { c.Delivery.Concurrency = 0 }, wantKey: "delivery.concurrency"},
		{name: "upload timeout zero", mutate: func(c *Config) { c.Delivery.UploadTimeout = 0 }, wantKey: "delivery.upload_timeout"},
		{name: "retry min zero", mutate: func(c *Config) { c.Delivery.RetryMin = 0 }, wantKey: "delivery.retry_min"},
		{name: "retry max below min", mutate: func(c *Config) { c.Delivery.RetryMax = time.Millisecond }, wantKey: "delivery.retry_max"},
		{name: "negative health minimum", mutate: func(c *Config) { c.Delivery.HealthMinAttempts = -1 }, wantKey: "delivery.health_min_attempts"},
		{name: "no failing span", mutate: func(c *Config) { c.Delivery.HealthMinFailing = 0 }, wantKey: "delivery.health_min_failing"},
		{name: "failing span beyond the ledger", mutate: func(c *Config) { c.Delivery.HealthMinFailing = 13 * time.Hour }, wantKey: "delivery.health_min_failing"},
		{name: "s3 endpoint not url", mutate: func(c *Config) { c.S3.Endpoint = "minio:9000" }, wantKey: "s3.endpoint"},
		{name: "multipart threshold small", mutate: func(c *Config) { c.S3.MultipartThreshold = 1 << 20 }, wantKey: "s3.multipart_threshold"},
		{name: "part size small", mutate: func(c *Config) { c.S3.PartSize = 1 << 20 }, wantKey: "s3.part_size"},
		{name: "part size huge", mutate: func(c *Config) { c.S3.PartSize = 6 << 30 }, wantKey: "s3.part_size"},
		{name: "key template empty", mutate: func(c *Config) { c.S3.KeyTemplate = "" }, wantKey: "s3.key_template"},
		{name: "key template rejected by injected parser", mutate: func(c *Config) { c.S3.KeyTemplate = "wallarm_hits_{window_start}.json" }, wantKey: "s3.key_template"},
		{name: "redis addr bad", mutate: func(c *Config) { c.Redis.Addr = "redis" }, wantKey: "redis.addr"},
		{name: "redis db negative", mutate: func(c *Config) { c.Redis.DB = -1 }, wantKey: "redis.db"},
		{name: "redis username without password", mutate: func(c *Config) { c.Redis.Username = "hitship" }, wantKey: "redis.password_env"},
		{name: "redis password env unset", mutate: func(c *Config) { c.Redis.PasswordEnv = "REDIS_PASSWORD" }, wantKey: "redis.password_env"},
		{name: "http listen bad", mutate: func(c *Config) { c.HTTP.Listen = "9464" }, wantKey: "http.listen"},
		{name: "admin token short", mutate: func(c *Config) { c.HTTP.AdminTokenEnv = "ACME_SECRET" }, wantKey: "http.admin_token_env"},
		{name: "log format unknown", mutate: func(c *Config) { c.Log.Format = "xml" }, wantKey: "log.format"},
		{name: "log level unknown", mutate: func(c *Config) { c.Log.Level = "verbose" }, wantKey: "log.level"},
		{name: "integration name empty", mutate: in0(func(in *Integration) { in.Name = "" }), wantKey: "integrations[0].name"},
		{name: "integration name bad", mutate: in0(func(in *Integration) { in.Name = "Acme S3" }), wantKey: "integrations[0].name"},
		{name: "integration name duplicate", mutate: second(func(in *Integration) { in.Name = "acme" }), wantKey: "integrations[1].name"},
		{name: "client id zero", mutate: in0(func(in *Integration) { in.ClientID = 0 }), wantKey: "integrations[0].client_id"},
		{name: "client id negative", mutate: second(func(in *Integration) { in.ClientID = -3 }), wantKey: "integrations[1].client_id"},
		{name: "region empty", mutate: in0(func(in *Integration) { in.Region = "" }), wantKey: "integrations[0].region"},
		{name: "region bad", mutate: in0(func(in *Integration) { in.Region = "Frankfurt" }), wantKey: "integrations[0].region"},
		{name: "bucket empty", mutate: in0(func(in *Integration) { in.Bucket = "" }), wantKey: "integrations[0].bucket"},
		{name: "bucket upper case", mutate: in0(func(in *Integration) { in.Bucket = "Acme-Hits" }), wantKey: "integrations[0].bucket"},
		{name: "bucket too short", mutate: in0(func(in *Integration) { in.Bucket = "ab" }), wantKey: "integrations[0].bucket"},
		{name: "bucket too long", mutate: in0(func(in *Integration) { in.Bucket = strings.Repeat("a", 64) }), wantKey: "integrations[0].bucket"},
		{name: "bucket underscore", mutate: in0(func(in *Integration) { in.Bucket = "acme_hits" }), wantKey: "integrations[0].bucket"},
		{name: "bucket ends with hyphen", mutate: in0(func(in *Integration) { in.Bucket = "acme-" }), wantKey: "integrations[0].bucket"},
		{name: "bucket double dot", mutate: in0(func(in *Integration) { in.Bucket = "acme..hits" }), wantKey: "integrations[0].bucket"},
		{name: "bucket ip address", mutate: in0(func(in *Integration) { in.Bucket = "192.168.5.4" }), wantKey: "integrations[0].bucket"},
		{name: "bucket xn prefix", mutate: in0(func(in *Integration) { in.Bucket = "xn--acme" }), wantKey: "integrations[0].bucket"},
		{name: "bucket s3alias suffix", mutate: in0(func(in *Integration) { in.Bucket = "acme-s3alias" }), wantKey: "integrations[0].bucket"},
		{name: "prefix leading slash", mutate: in0(func(in *Integration) { in.Prefix = "/wallarm/" }), wantKey: "integrations[0].prefix"},
		{name: "prefix dotdot", mutate: in0(func(in *Integration) { in.Prefix = "a/../b/" }), wantKey: "integrations[0].prefix"},
		{name: "prefix control char", mutate: in0(func(in *Integration) { in.Prefix = "a\nb/" }), wantKey: "integrations[0].prefix"},
		{name: "prefix invalid utf8", mutate: in0(func(in *Integration) { in.Prefix = "a\xff/" }), wantKey: "integrations[0].prefix"},
		{name: "format unknown", mutate: in0(func(in *Integration) { in.Format = "csv" }), wantKey: "integrations[0].format"},
		{name: "compression unknown", mutate: in0(func(in *Integration) { in.Compression = "zstd" }), wantKey: "integrations[0].compression"},
		{name: "events empty", mutate: in0(func(in *Integration) { in.Events = nil }), wantKey: "integrations[0].events"},
		{name: "event unknown", mutate: in0(func(in *Integration) { in.Events = []string{"hits", "attacks"} }), wantKey: "integrations[0].events[1]"},
		{name: "event duplicate", mutate: in0(func(in *Integration) { in.Events = []string{"hits", "hits"} }), wantKey: "integrations[0].events[1]"},
		{name: "integration endpoint bad", mutate: in0(func(in *Integration) { in.Endpoint = "ftp://x" }), wantKey: "integrations[0].endpoint"},
		{name: "same bucket and prefix", mutate: second(func(in *Integration) { in.Prefix = "wallarm/" }), wantKey: "integrations[1].prefix"},
		{name: "no credentials", mutate: in0(func(in *Integration) { in.Credentials = Credentials{} }), wantKey: "integrations[0].credentials"},
		{name: "role and key", mutate: in0(func(in *Integration) { in.Credentials.RoleARN = "arn:aws:iam::123456789012:role/x" }), wantKey: "integrations[0].credentials"},
		{name: "role arn bad", mutate: func(c *Config) {
			c.Integrations[0].Credentials = Credentials{RoleARN: "arn:aws:iam::1234:user/x"}
			c.ExternalID.SecretEnv = "EXT"
		}, wantKey: "integrations[0].credentials.role_arn"},
		{name: "role arn without external id secret", mutate: in0(func(in *Integration) {
			in.Credentials = Credentials{RoleARN: "arn:aws:iam::123456789012:role/x"}
		}), wantKey: "external_id.secret_env"},
		{name: "external id secret short", mutate: func(c *Config) { c.ExternalID.SecretEnv = "ACME_SECRET" }, wantKey: "external_id.secret_env"},
		{name: "access key id bad", mutate: in0(func(in *Integration) { in.Credentials.AccessKeyID = "akia-lower" }), wantKey: "integrations[0].credentials.access_key_id"},
		{name: "secret key missing", mutate: in0(func(in *Integration) { in.Credentials.SecretAccessKeyEnv = "" }), wantKey: "integrations[0].credentials.secret_access_key_env"},
		{name: "secret key env and file", mutate: in0(func(in *Integration) { in.Credentials.SecretAccessKeyFile = keyFile }), wantKey: "integrations[0].credentials.secret_access_key_env"},
		{name: "secret key env unset", mutate: second(func(in *Integration) { in.Credentials.SecretAccessKeyEnv = "GLOBEX" }), wantKey: "integrations[1].credentials.secret_access_key_env"},
		{name: "secret key file missing", mutate: in0(func(in *Integration) {
			in.Credentials.SecretAccessKeyEnv, in.Credentials.SecretAccessKeyFile = "", missing
		}), wantKey: "integrations[0].credentials.secret_access_key_file"},
	}
	keyTemplate := func(s string) error {
		if !strings.Contains(s, "{partition}") || !strings.Contains(s, "{first_offset}") {
			return errors.New("template must contain {partition} and {first_offset}")
		}
		return nil
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validBase()
			tt.mutate(&c)
			ps := c.Validate(env(baseEnv), WithKeyTemplate(keyTemplate))
			for _, p := range ps {
				if p.Fix == "" || p.Msg == "" || p.Key == "" {
					t.Errorf("problem without key, message or fix: %#v", p)
				}
			}
			if tt.wantKey == "" {
				if len(ps) != 0 {
					t.Fatalf("unexpected problems: %v", ps)
				}
				return
			}
			if _, ok := findProblem(ps, tt.wantKey); !ok {
				t.Fatalf("want a problem at %q, got %v", tt.wantKey, ps)
			}
		})
	}
}

func TestValidateListsEveryProblem(t *testing.T) {
	c := validBase()
	c.Kafka.Topic = ""
	c.Window.Grace = time.Hour
	c.Log.Format = "xml"
	c.Integrations[0].Bucket = "B"
	c.Integrations[0].ClientID = 0
	ps := c.Validate(env(baseEnv))
	want := []string{"kafka.topic", "window.grace", "log.format", "integrations[0].bucket", "integrations[0].client_id"}
	if len(ps) != len(want) {
		t.Fatalf("want %d problems, got %v", len(want), ps)
	}
	for _, k := range want {
		if _, ok := findProblem(ps, k); !ok {
			t.Errorf("missing problem %s", k)
		}
	}
	err := AsError(ps)
	if !IsInvalid(err) || !strings.Contains(err.Error(), "integrations[0].bucket") {
		t.Fatalf("AsError = %v", err)
	}
	if AsError(nil) != nil {
		t.Fatal("AsError(nil) != nil")
	}
}

func TestLoadLinesOnValidationProblems(t *testing.T) {
	y := "window:\n  size: 10m\n  grace: 20m\nintegrations:\n  - name: a\n    client_id: 1\n    region: eu-west-1\n    bucket: Bad_Bucket\n    credentials: {role_arn: \"arn:aws:iam::123456789012:role/r\"}\nexternal_id: {secret_env: EXT}\n"
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	_, ps, err := Load(path, env(baseEnv))
	if err != nil {
		t.Fatal(err)
	}
	if p, ok := findProblem(ps, "window.grace"); !ok || p.Line != 3 {
		t.Fatalf("window.grace problem line: %v", ps)
	}
	if p, ok := findProblem(ps, "integrations[0].bucket"); !ok || p.Line != 8 {
		t.Fatalf("bucket problem line: %v", ps)
	}
	if len(ps) != 2 {
		t.Fatalf("want 2 problems, got %v", ps)
	}
	if _, _, err := Load(filepath.Join(t.TempDir(), "none.yaml")); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Load(missing) err = %v", err)
	}
}

func TestSecretsFromEnvAndFile(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "redis")
	if err := os.WriteFile(f, []byte("file-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HITSHIP_TEST_KAFKA_PW", "from-env")
	c := validBase()
	c.Kafka.SASL = SASL{Mechanism: SASLPlain, Username: "u", PasswordEnv: "HITSHIP_TEST_KAFKA_PW"}
	c.Redis.PasswordFile = f
	c.Integrations[0].Credentials.SecretAccessKeyEnv = "HITSHIP_TEST_KAFKA_PW"
	if ps := c.Validate(); len(ps) != 0 { // real os.LookupEnv and files
		t.Fatal(ps)
	}
	if c.Kafka.SASL.Password() != "from-env" || c.Redis.Password() != "file-secret" || c.Integrations[0].Credentials.SecretAccessKey() != "from-env" {
		t.Fatalf("secrets: %q %q %q", c.Kafka.SASL.Password(), c.Redis.Password(), c.Integrations[0].Credentials.SecretAccessKey())
	}
	// The environment overrides on the next Validate (e.g. SIGHUP reload).
	t.Setenv("HITSHIP_TEST_KAFKA_PW", "rotated")
	if ps := c.Validate(); len(ps) != 0 || c.Kafka.SASL.Password() != "rotated" {
		t.Fatalf("after rotation: %q %v", c.Kafka.SASL.Password(), ps)
	}
	// A secret with a problem reads as empty.
	c.Kafka.SASL.PasswordEnv = "HITSHIP_TEST_UNSET_VAR"
	if ps := c.Validate(); len(ps) != 1 || c.Kafka.SASL.Password() != "" {
		t.Fatalf("unset var: %q %v", c.Kafka.SASL.Password(), ps)
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	const (
		kafkaPW = "kafka-pw-7f3a9c"
		redisPW = "redis-pw-1b2c3d"
		s3key   = "s3-secret-9e8d7c"
		admin   = "admin-token-0123456789"
		ext     = "external-secret-abcdef0123"
	)
	y := `kafka:
  sasl: {mechanism: plain, username: u, password_env: KPW}
redis: {password_env: RPW}
http: {admin_token_env: ADM}
external_id: {secret_env: EXT}
integrations:
  - name: a
    client_id: 1
    region: eu-west-1
    bucket: abc-bucket
    credentials: {access_key_id: AKIAIOSFODNN7EXAMPLE, secret_access_key_env: S3}
`
	c, ps := Parse([]byte(y), env(map[string]string{"KPW": kafkaPW, "RPW": redisPW, "ADM": admin, "EXT": ext, "S3": s3key}))
	if len(ps) != 0 {
		t.Fatal(ps)
	}
	if c.HTTP.AdminToken() != admin || c.ExternalID.Secret() != ext {
		t.Fatal("secrets not loaded")
	}
	var out bytes.Buffer
	for _, v := range []any{*c, c, c.Kafka.SASL, c.Redis, c.Integrations, c.Integrations[0].Credentials, c.HTTP, c.ExternalID, NewSecret(kafkaPW)} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x"} {
			fmt.Fprintf(&out, verb+"\n", v)
		}
		text := slog.New(slog.NewTextHandler(&out, nil))
		text.Info("cfg", "v", v)
		slog.New(slog.NewJSONHandler(&out, nil)).Info("cfg", "v", v)
		if b, err := json.Marshal(v); err == nil {
			out.Write(b)
		}
		if b, err := yaml.Marshal(v); err == nil {
			out.Write(b)
		}
	}
	s := out.String()
	for _, secret := range []string{kafkaPW, redisPW, s3key, admin, ext} {
		if strings.Contains(s, secret) {
			t.Fatalf("secret %q printed in:\n%s", secret, s)
		}
		if strings.Contains(s, fmt.Sprintf("%x", secret)) {
			t.Fatalf("secret %q printed in hex", secret)
		}
	}
	if !strings.Contains(s, Redacted) {
		t.Fatal("no [REDACTED] marker printed at all")
	}
	sec := NewSecret(kafkaPW)
	if fmt.Sprint(sec) != Redacted || fmt.Sprintf("%#v", sec) != Redacted || sec.LogValue().String() != Redacted || sec.Reveal() != kafkaPW {
		t.Fatal("Secret formatting")
	}
}

func TestSize(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Size
		ok   bool
	}{
		{name: "plain", in: "4096", want: 4096, ok: true},
		{name: "MiB", in: "64MiB", want: 64 << 20, ok: true},
		{name: "GB", in: "1GB", want: 1e9, ok: true},
		{name: "GiB with space", in: "10 GiB", want: 10 << 30, ok: true},
		{name: "KB", in: "2KB", want: 2000, ok: true},
		{name: "B", in: "7B", want: 7, ok: true},
		{name: "TiB", in: "1TiB", want: 1 << 40, ok: true},
		{name: "zero", in: "0", want: 0, ok: true},
		{name: "negative", in: "-1MiB"},
		{name: "fraction", in: "1.5GiB"},
		{name: "unknown unit", in: "5XB"},
		{name: "lower case unit", in: "5mib"},
		{name: "empty", in: ""},
		{name: "overflow", in: "9000000TiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSize(tt.in)
			if (err == nil) != tt.ok || (tt.ok && got != tt.want) {
				t.Fatalf("ParseSize(%q) = %d, %v; want %d ok=%v", tt.in, got, err, tt.want, tt.ok)
			}
			if tt.ok {
				back, err := ParseSize(got.String())
				if err != nil || back != got {
					t.Fatalf("round trip %q -> %q -> %d, %v", tt.in, got.String(), back, err)
				}
			}
		})
	}
}

func ExampleParse() {
	cfg, problems := Parse([]byte("window:\n  size: 7m\nkafka:\n  topik: hits\n"),
		WithLookupEnv(func(string) (string, bool) { return "", false }))
	fmt.Println(cfg.Window.Size)
	for _, p := range problems {
		fmt.Println(p.Key, p.Line, p.Msg)
	}
	// Output:
	// 7m0s
	// kafka.topik 4 unknown key "topik"
	// window.size 2 7m0s does not divide 24h, so windows would not align with days
}

// topIsMapping reports whether data is YAML whose document is a mapping (or
// empty).
func topIsMapping(data []byte) bool {
	var root yaml.Node
	if yaml.Unmarshal(data, &root) != nil {
		return false
	}
	return root.Kind == 0 || len(root.Content) == 0 || root.Content[0].Kind == yaml.MappingNode
}

func FuzzLoad(f *testing.F) {
	example, err := os.ReadFile("example.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example)
	f.Add([]byte("kafka: {brokers: [a:1], topic: x}\nintegrations: [{name: a, client_id: 1}]\n"))
	f.Add([]byte("a: &a [*a, *a]\nb: *a\n"))
	f.Add([]byte("spool: {max_bytes: 1GiB, memory_bytes: [x]}\n"))
	f.Add([]byte("<<: {kafka: 1}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// A hang crashes the fuzz worker so that the engine keeps the input:
		// a hang detector far above the time an input takes, not a speed check.
		watchdog := time.AfterFunc(30*time.Second, func() { panic(fmt.Sprintf("Parse hung on %q", data)) })
		defer watchdog.Stop()
		opts := []Option{
			WithLookupEnv(func(k string) (string, bool) { return "value-of-" + k, len(k)%2 == 0 }),
			withReadFile(func(string) ([]byte, error) { return nil, os.ErrNotExist }),
			WithKeyTemplate(func(string) error { return nil }),
		}
		c, ps := Parse(data, opts...)
		for _, p := range ps {
			if p.Msg == "" || p.Fix == "" {
				t.Fatalf("problem without message or fix: %#v", p)
			}
			// Every problem of a file whose top level is a mapping names its
			// key. Only a file that is not YAML (c == nil) or whose top level
			// is not a mapping has a problem about the whole file (Key "").
			if c != nil && p.Key == "" && topIsMapping(data) {
				t.Fatalf("problem without a key: %#v", p)
			}
		}
		if c != nil && len(ps) == 0 {
			if again := c.Validate(opts...); len(again) != 0 {
				t.Fatalf("valid config invalid on second Validate: %v", again)
			}
		}
	})
}

// selfSigned returns a PEM certificate and its PEM private key.
func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "hitship-test"},
		NotBefore:    time.Unix(0, 0),
		NotAfter:     time.Date(9000, 1, 1, 0, 0, 0, 0, time.UTC),
		IsCA:         true,
		KeyUsage:     x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// TestInlineSecret: an integration created through the API carries its
// secret directly (SetInlineSecret), in place of an environment variable or
// a file; an empty one is a problem naming the field.
func TestInlineSecret(t *testing.T) {
	c := validBase()
	c.Integrations[0].Credentials = Credentials{AccessKeyID: "AKIAIOSFODNN7EXAMPLE"}
	c.Integrations[0].Credentials.SetInlineSecret("from-the-api")
	c.Integrations[0].Source = SourceAPI
	if ps := c.Validate(WithLookupEnv(func(string) (string, bool) { return "", false })); len(ps) != 0 {
		t.Fatalf("problems %v", ps)
	}
	if got := c.Integrations[0].Credentials.SecretAccessKey(); got != "from-the-api" {
		t.Fatalf("secret %q", got)
	}
	c.Integrations[0].Credentials.SetInlineSecret("")
	ps := c.Validate()
	if len(ps) != 1 || ps[0].Key != "integrations[0].credentials.secret_access_key" {
		t.Fatalf("problems %v, want one for integrations[0].credentials.secret_access_key", ps)
	}
}

// TestNamedAdminTokens: named tokens are read by name; a missing name, a
// duplicate, a short token or one shared with another holder is a problem.
func TestNamedAdminTokens(t *testing.T) {
	env := map[string]string{"ACME_SECRET": "s3cr3t", "T_ALICE": "alice-token-0000000001", "T_BOB": "bob-token-000000000001", "T_SHORT": "short"}
	lookup := WithLookupEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	c := validBase()
	c.HTTP.AdminTokens = []NamedToken{{Name: "ops-alice", TokenEnv: "T_ALICE"}, {Name: "console", TokenEnv: "T_BOB"}}
	if ps := c.Validate(lookup); len(ps) != 0 {
		t.Fatalf("problems %v", ps)
	}
	if got := c.HTTP.NamedTokens(); len(got) != 2 || got["ops-alice"] != env["T_ALICE"] || got["console"] != env["T_BOB"] {
		t.Fatalf("named tokens %v", got)
	}
	c.HTTP.AdminTokens = []NamedToken{{Name: "", TokenEnv: "T_ALICE"}, {Name: "b", TokenEnv: "T_SHORT"}, {Name: "b", TokenEnv: "T_ALICE"}}
	keys := map[string]bool{}
	for _, p := range c.Validate(lookup) {
		keys[p.Key] = true
	}
	for _, k := range []string{"http.admin_tokens[0].name", "http.admin_tokens[1].token_env", "http.admin_tokens[2].name", "http.admin_tokens[2].token_env"} {
		if !keys[k] {
			t.Errorf("no problem for %s in %v", k, keys)
		}
	}
}

// TestClusterDefaultPrefix: in mode cluster the default key prefix is read
// with a hash tag (internal/redisconn, "Cluster"); other modes keep it, so
// that an upgrade finds its keys.
func TestClusterDefaultPrefix(t *testing.T) {
	for mode, want := range map[string]string{RedisCluster: ClusterKeyPrefix, RedisSingle: DefaultKeyPrefix, "": DefaultKeyPrefix} {
		c := validBase()
		c.Redis.Mode = mode
		if ps := c.Validate(env(baseEnv), WithKeyTemplate(func(string) error { return nil })); len(ps) > 0 {
			t.Fatal(ps)
		}
		if c.Redis.KeyPrefix != want {
			t.Errorf("mode %q: key_prefix %q, want %q", mode, c.Redis.KeyPrefix, want)
		}
	}
}
