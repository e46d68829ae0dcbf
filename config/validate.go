package config

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"hitship/internal/rediskey"
)

// Option changes how Validate checks a configuration.
type Option func(*options)

type options struct {
	keyTemplate       func(string) error
	stagedKeyTemplate func(string) error
	lookupEnv         func(string) (string, bool)
	readFile          func(string) ([]byte, error)
}

// WithKeyTemplate makes Validate check s3.key_template with check (the
// sink package's template parser), so that config does not import sink.
// Without it only a non-empty template is required.
func WithKeyTemplate(check func(string) error) Option {
	return func(o *options) { o.keyTemplate = check }
}

// WithStagedKeyTemplate makes Validate check the effective key template of
// staged delivery (Config.EffectiveKeyTemplate) with check
// (sink.ParseStagedKeyTemplate).
func WithStagedKeyTemplate(check func(string) error) Option {
	return func(o *options) { o.stagedKeyTemplate = check }
}

// WithLookupEnv replaces os.LookupEnv for reading secrets from the
// environment (tests, or a wrapper that adds a prefix).
func WithLookupEnv(lookup func(string) (string, bool)) Option {
	return func(o *options) { o.lookupEnv = lookup }
}

// maxSecretFile bounds how much of a secret or TLS file is read.
const maxSecretFile = 1 << 20

func readSmallFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxSecretFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, maxSecretFile)
	}
	return b, nil
}

// ValidateWith is Validate(WithKeyTemplate(keyTemplate)).
func (c *Config) ValidateWith(keyTemplate func(string) error) []Problem {
	return c.Validate(WithKeyTemplate(keyTemplate))
}

// Validate checks the whole configuration and returns every problem found
// (nil when there is none). It also reads every configured secret from its
// environment variable or file into the Config, where the Password,
// SecretAccessKey, AdminToken and Secret methods return it; a secret with a
// problem reads as "". Validate reads files and the environment; it must not
// run concurrently with other uses of the same Config.
func (c *Config) Validate(opts ...Option) []Problem {
	o := options{lookupEnv: os.LookupEnv, readFile: readSmallFile}
	for _, opt := range opts {
		opt(&o)
	}
	v := &checker{o: o}
	v.kafka(&c.Kafka)
	v.window(c.Window)
	v.spool(c.Spool)
	v.delivery(c.Delivery)
	v.s3(c)
	v.redis(&c.Redis)
	v.http(&c.HTTP)
	v.log(c.Log)
	v.integrations(c)
	v.parking(c)
	v.secret("secrets.keys", c.Secrets.KeysEnv, c.Secrets.KeysFile, false, &c.Secrets.keys)
	return v.ps
}

type checker struct {
	o  options
	ps []Problem
}

func (v *checker) add(key, fix, format string, args ...any) {
	v.ps = append(v.ps, Problem{Key: key, Msg: fmt.Sprintf(format, args...), Fix: fix})
}

var (
	topicRE   = regexp.MustCompile(`^[a-zA-Z0-9._-]{1,249}$`)
	envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	// conventionalEnvNameRE is the upper-case convention of environment
	// variable names: only such a name is printed in a problem, since a value
	// of lower or mixed case in a *_env key may be a pasted secret.
	conventionalEnvNameRE = regexp.MustCompile(`^[A-Z_][A-Z0-9_]*$`)
	nameRE                = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	bucketRE              = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$`)
	roleARNRE             = regexp.MustCompile(`^arn:aws(-cn|-us-gov)?:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]{1,512}$`)
	accessKeyRE           = regexp.MustCompile(`^[A-Z0-9]{16,128}$`)
)

func (v *checker) positive(key string, d time.Duration) {
	if d <= 0 {
		v.add(key, `set a positive Go duration such as "30s"`, "must be positive, got %s", d)
	}
}

func (v *checker) enum(key, val string, allowed ...string) {
	for _, a := range allowed {
		if val == a {
			return
		}
	}
	v.add(key, fmt.Sprintf("use one of: %s", strings.Join(allowed, ", ")), "unknown value %q", val)
}

func (v *checker) hostPort(key, addr string, needHost bool) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		v.add(key, `write it as host:port, such as "localhost:9092"`, "invalid address %q: %v", addr, err)
		return
	}
	if needHost && host == "" {
		v.add(key, `write it as host:port, such as "localhost:9092"`, "address %q has no host", addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 || (needHost && p == 0) {
		v.add(key, "use a port number between 1 and 65535", "address %q has an invalid port", addr)
	}
}

func (v *checker) topic(key, t string) {
	if t == "" {
		v.add(key, "set the Kafka topic name", "is required")
		return
	}
	if !topicRE.MatchString(t) || t == "." || t == ".." {
		v.add(key, "use up to 249 of the characters a-z A-Z 0-9 . _ -", "invalid Kafka topic name %q", t)
	}
}

func (v *checker) endpoint(key, e string) {
	if e == "" {
		return
	}
	u, err := url.Parse(e)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.add(key, `write a URL such as "https://minio.example:9000", or leave it empty for AWS`, "invalid endpoint %q", e)
	}
}

// pathless drops the path from a file error: a *_file key (or a TLS key_file)
// may hold a pasted secret or private key instead of a path, and the error of
// opening it would print it. The key and line of the problem say which file.
func pathless(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Op, pe.Err)
	}
	return err
}

// secret loads one secret whose environment-variable key is key+"_env" and
// file key is key+"_file". A value that is neither a variable name nor a
// readable file is never printed in a problem: it may be the secret itself.
func (v *checker) secret(key, env, file string, required bool, dst *Secret) {
	*dst = Secret{}
	envKey, fileKey := key+"_env", key+"_file"
	switch {
	case env != "" && file != "":
		v.add(envKey, fmt.Sprintf("keep only one of %s and %s", envKey, fileKey), "both an environment variable and a file are set")
	case env == "" && file == "":
		if required {
			v.add(envKey, fmt.Sprintf("set %s to the name of an environment variable holding the secret, or %s to a file holding it", envKey, fileKey), "secret is required")
		}
	case env != "":
		// The value is never printed unless it looks like a conventional
		// variable name: what else is found here is often the secret itself.
		if !envNameRE.MatchString(env) {
			v.add(envKey, "put the secret in an environment variable of hitship's (such as HITSHIP_SECRET) and write that variable's name here; if the value here is a real secret, rotate it, since it was in the file",
				"is not an environment variable name (letters, digits and underscores, not starting with a digit); it looks like a secret itself, so it is not printed")
			return
		}
		name := "named here"
		if conventionalEnvNameRE.MatchString(env) {
			name = env
		}
		val, ok := v.o.lookupEnv(env)
		switch {
		case !ok:
			v.add(envKey, fmt.Sprintf("export the variable %s in hitship's environment; if the value here is the secret itself, put it in an environment variable and write that variable's name here", name),
				"environment variable %s is not set", name)
		case val == "":
			v.add(envKey, fmt.Sprintf("put the secret in the variable %s", name), "environment variable %s is empty", name)
		default:
			*dst = NewSecret(val)
		}
	default:
		b, err := v.o.readFile(file)
		if err != nil {
			v.add(fileKey, "point it at a readable regular file holding the secret; if the value here is the secret itself, put it in a file and write that file's path here", "cannot read secret file: %v", pathless(err))
			return
		}
		val := strings.TrimRight(string(b), "\r\n")
		if val == "" {
			v.add(fileKey, "put the secret in the file", "secret file %s is empty", file)
			return
		}
		*dst = NewSecret(val)
	}
}

func (v *checker) tls(key string, t TLS) {
	anyFile := t.CAFile != "" || t.CertFile != "" || t.KeyFile != ""
	if !t.Enabled {
		if anyFile || t.ServerName != "" || t.InsecureSkipVerify {
			v.add(key+".enabled", "set enabled: true, or remove the other tls keys", "TLS settings are given but TLS is disabled")
		}
		return
	}
	if t.CAFile != "" {
		if b, err := v.o.readFile(t.CAFile); err != nil {
			v.add(key+".ca_file", "point it at a readable PEM file of CA certificates", "cannot read CA file: %v", pathless(err))
		} else if !x509.NewCertPool().AppendCertsFromPEM(b) {
			v.add(key+".ca_file", "point it at a PEM file of CA certificates", "no PEM certificate found in %s", t.CAFile)
		}
	}
	if (t.CertFile == "") != (t.KeyFile == "") {
		v.add(key+".cert_file", "set both cert_file and key_file for a client certificate, or neither", "cert_file and key_file must be set together")
		return
	}
	if t.CertFile != "" {
		cert, errC := v.o.readFile(t.CertFile)
		if errC != nil {
			v.add(key+".cert_file", "point it at a readable PEM certificate", "cannot read certificate: %v", pathless(errC))
		}
		keyPEM, errK := v.o.readFile(t.KeyFile)
		if errK != nil {
			v.add(key+".key_file", "point it at a readable PEM private key", "cannot read key: %v", pathless(errK))
		}
		if errC == nil && errK == nil {
			if _, err := tls.X509KeyPair(cert, keyPEM); err != nil {
				v.add(key+".cert_file", "use a PEM certificate and the PEM private key that belongs to it", "certificate and key do not form a pair: %v", err)
			}
		}
	}
}

func (v *checker) kafka(k *Kafka) {
	if len(k.Brokers) == 0 {
		v.add("kafka.brokers", "list at least one broker as host:port", "is required")
	}
	for i, b := range k.Brokers {
		v.hostPort(fmt.Sprintf("kafka.brokers[%d]", i), b, true)
	}
	v.topic("kafka.topic", k.Topic)
	v.topic("kafka.dead_letter_topic", k.DeadLetterTopic)
	if k.Topic != "" && k.Topic == k.DeadLetterTopic {
		v.add("kafka.dead_letter_topic", "use a separate topic for dead letters", "must differ from kafka.topic")
	}
	v.topic("kafka.integrations_topic", k.IntegrationsTopic)
	if k.EventsTopic != "" {
		v.topic("kafka.events_topic", k.EventsTopic)
		for _, o := range []struct{ key, topic string }{{"kafka.topic", k.Topic}, {"kafka.dead_letter_topic", k.DeadLetterTopic}, {"kafka.integrations_topic", k.IntegrationsTopic}} {
			if k.EventsTopic == o.topic {
				v.add("kafka.events_topic", "give the events a topic of their own", "is also %s", o.key)
			}
		}
	}
	if k.IntegrationsTopic != "" && (k.IntegrationsTopic == k.Topic || k.IntegrationsTopic == k.DeadLetterTopic) {
		v.add("kafka.integrations_topic", "use a topic of its own (compacted, one partition) for the integrations' state",
			"must differ from kafka.topic and kafka.dead_letter_topic")
	}
	if k.Group == "" {
		v.add("kafka.group", "set the consumer group id", "is required")
	}
	if k.ClientID == "" {
		v.add("kafka.client_id", "set the Kafka client id", "is required")
	}
	if k.MaxRecordBytes <= 0 || k.MaxRecordBytes > 1<<30 {
		v.add("kafka.max_record_bytes", `set a size between 1 and 1GiB, such as "1MiB"`, "out of range: %d", k.MaxRecordBytes)
	}
	if k.MaxDepth < 1 || k.MaxDepth > 10000 {
		v.add("kafka.max_depth", "set a nesting limit between 1 and 10000 (encoding/json's own limit)", "out of range: %d", k.MaxDepth)
	}
	v.enum("kafka.sasl.mechanism", k.SASL.Mechanism, SASLNone, SASLPlain, SASLScramSHA256, SASLScramSHA512, SASLAWSMSKIAM)
	if k.SASL.AWSRegion != "" && k.SASL.Mechanism != SASLAWSMSKIAM {
		v.add("kafka.sasl.aws_region", "remove it, or set kafka.sasl.mechanism: aws_msk_iam", "is only for mechanism aws_msk_iam")
	}
	switch k.SASL.Mechanism {
	case SASLAWSMSKIAM:
		k.SASL.password = Secret{}
		if k.SASL.Username != "" || k.SASL.PasswordEnv != "" || k.SASL.PasswordFile != "" {
			v.add("kafka.sasl.mechanism", "remove kafka.sasl.username, password_env and password_file: with aws_msk_iam hitship logs in with its own AWS identity (AWS_* environment, web identity / IRSA, instance role)",
				"credentials are given but mechanism is aws_msk_iam")
		}
		if !k.TLS.Enabled {
			v.add("kafka.tls.enabled", "set kafka.tls.enabled: true: MSK's IAM listener (port 9098) takes TLS only", "is required with sasl.mechanism aws_msk_iam")
		}
	case SASLNone:
		k.SASL.password = Secret{}
		if k.SASL.Username != "" || k.SASL.PasswordEnv != "" || k.SASL.PasswordFile != "" {
			v.add("kafka.sasl.mechanism", "set a mechanism (plain, scram-sha-256, scram-sha-512) or remove the credentials", "credentials are given but mechanism is none")
		}
	default:
		if k.SASL.Username == "" {
			v.add("kafka.sasl.username", "set the SASL user name", "is required when sasl.mechanism is %s", k.SASL.Mechanism)
		}
		v.secret("kafka.sasl.password", k.SASL.PasswordEnv, k.SASL.PasswordFile, true, &k.SASL.password)
	}
	v.tls("kafka.tls", k.TLS)
	v.positive("kafka.session_timeout", k.SessionTimeout)
	v.positive("kafka.rebalance_timeout", k.RebalanceTimeout)
	v.positive("kafka.heartbeat_interval", k.HeartbeatInterval)
	v.positive("kafka.commit_interval", k.CommitInterval)
	if k.HeartbeatInterval > 0 && k.SessionTimeout > 0 && k.HeartbeatInterval >= k.SessionTimeout {
		v.add("kafka.heartbeat_interval", "make it at most a third of kafka.session_timeout", "must be less than session_timeout (%s)", k.SessionTimeout)
	}
}

func (v *checker) window(w Window) {
	switch {
	case w.Size <= 0:
		v.add("window.size", `set a positive duration such as "10m"`, "must be positive, got %s", w.Size)
	case w.Size%time.Second != 0:
		v.add("window.size", `use a whole number of seconds such as "10m"`, "%s is not a whole number of seconds", w.Size)
	case (24*time.Hour)%w.Size != 0:
		v.add("window.size", `use a size that divides 24h, such as "5m", "10m", "15m" or "1h"`, "%s does not divide 24h, so windows would not align with days", w.Size)
	}
	if w.Grace < 0 {
		v.add("window.grace", `set zero or a positive duration such as "1m"`, "must not be negative, got %s", w.Grace)
	} else if w.Size > 0 && w.Grace >= w.Size {
		v.add("window.grace", "make it shorter than window.size", "%s is not less than window.size %s", w.Grace, w.Size)
	}
	v.positive("window.idle_timeout", w.IdleTimeout)
	v.enum("window.timestamp", w.Timestamp, TimestampEvent, TimestampRecord)
	if w.MaxFutureSkew < 0 {
		v.add("window.max_future_skew", `set zero or a positive duration such as "5m"`, "must not be negative, got %s", w.MaxFutureSkew)
	}
}

func (v *checker) spool(s Spool) {
	if s.Dir == "" {
		v.add("spool.dir", "set a directory on a local disk for window spool files", "is required")
	}
	if s.MaxBytes <= 0 {
		v.add("spool.max_bytes", `set a positive size such as "10GiB"`, "must be positive, got %d", s.MaxBytes)
	}
	if s.MemoryBytes <= 0 {
		v.add("spool.memory_bytes", `set a positive size such as "64MiB"`, "must be positive, got %d", s.MemoryBytes)
	}
}

func (v *checker) delivery(d Delivery) {
	if d.Concurrency < 1 || d.Concurrency > 1024 {
		v.add("delivery.concurrency", "set a number of parallel uploads between 1 and 1024", "out of range: %d", d.Concurrency)
	}
	v.positive("delivery.upload_timeout", d.UploadTimeout)
	if d.HealthMinAttempts < 0 {
		v.add("delivery.health_min_attempts", "set 0 for the default (20) or a positive number", "is negative")
	}
	if d.HealthMinFailing <= 0 || d.HealthMinFailing > 12*time.Hour {
		v.add("delivery.health_min_failing", `set a duration up to the ledger's 12h, such as "1h"`, "out of range: %s", d.HealthMinFailing)
	}
	v.positive("delivery.retry_min", d.RetryMin)
	if d.RetryMax < d.RetryMin {
		v.add("delivery.retry_max", "make it at least delivery.retry_min", "%s is less than retry_min %s", d.RetryMax, d.RetryMin)
	}
}

const (
	minPart = 5 << 20 // S3 minimum part size (all parts but the last)
	maxPart = 5 << 30 // S3 maximum part size
)

func (v *checker) s3(c *Config) {
	s := c.S3
	v.endpoint("s3.endpoint", s.Endpoint)
	if s.MultipartThreshold < minPart {
		v.add("s3.multipart_threshold", `set at least "5MiB" (the S3 minimum part size)`, "%s is below 5MiB", s.MultipartThreshold)
	}
	if s.PartSize < minPart || s.PartSize > maxPart {
		v.add("s3.part_size", `set a size between "5MiB" and "5GiB" (S3 part limits)`, "%s is out of range", s.PartSize)
	}
	switch {
	case c.StagedDelivery():
		if v.o.stagedKeyTemplate != nil {
			if err := v.o.stagedKeyTemplate(c.EffectiveKeyTemplate()); err != nil {
				v.add("s3.key_template", "with delivery.staged one object holds a window of every partition: use {window_start} and {late}, without {partition}, {first_offset} or {digest}, e.g. "+DefaultStagedKeyTemplate, "%v", err)
			}
		}
	case s.KeyTemplate == "":
		v.add("s3.key_template", "set a template containing {partition} and {first_offset}", "is required")
	case v.o.keyTemplate != nil:
		if err := v.o.keyTemplate(s.KeyTemplate); err != nil {
			v.add("s3.key_template", "fix the template; it must contain {partition} and {first_offset} so keys are unique and replays overwrite", "%v", err)
		}
	}
}

func (v *checker) redis(r *Redis) {
	if r.Mode == "" {
		r.Mode = RedisSingle
	}
	switch r.Mode {
	case RedisSingle:
		v.hostPort("redis.addr", r.Addr, true)
		if len(r.Addrs) > 0 {
			v.add("redis.addrs", "list one server in redis.addr, or set redis.mode to sentinel or cluster", "is only read in modes sentinel and cluster")
		}
	case RedisSentinel:
		if len(r.Addrs) == 0 {
			v.add("redis.addrs", "list the sentinels as host:port (the port sentinels listen on, usually 26379)", "mode sentinel needs the sentinels' addresses")
		}
		if r.MasterName == "" {
			v.add("redis.master_name", "set the name the sentinels monitor the master under (sentinel monitor <name> ...)", "mode sentinel needs the master's name")
		}
	case RedisCluster:
		if len(r.Addrs) == 0 {
			v.hostPort("redis.addr", r.Addr, true)
		}
		if r.DB != 0 {
			v.add("redis.db", "remove redis.db: a Redis Cluster has only database 0", "is %d in mode cluster", r.DB)
		}
		if r.KeyPrefix == DefaultKeyPrefix {
			r.KeyPrefix = ClusterKeyPrefix
		}
		if _, ok := rediskey.HashTag(r.KeyPrefix); !ok {
			v.add("redis.key_prefix", fmt.Sprintf("put a hash tag in the prefix, such as %q: hitship's scripts use several keys at once, which a cluster allows only in one hash slot", "{"+strings.Trim(r.KeyPrefix, ":{}")+"}:"),
				"%q has no hash tag ({...}) in mode cluster", r.KeyPrefix)
		}
	default:
		v.add("redis.mode", "use single, sentinel or cluster", "unknown mode %q", r.Mode)
	}
	if r.Mode != RedisSingle {
		for i, a := range r.Addrs {
			v.hostPort(fmt.Sprintf("redis.addrs[%d]", i), a, true)
		}
	}
	if r.DB < 0 {
		v.add("redis.db", "set a database number of 0 or more", "must not be negative, got %d", r.DB)
	}
	v.secret("redis.password", r.PasswordEnv, r.PasswordFile, false, &r.password)
	if r.Username != "" && r.PasswordEnv == "" && r.PasswordFile == "" {
		v.add("redis.password_env", "set password_env or password_file for the Redis ACL user", "redis.username is set but no password is configured")
	}
	v.secret("redis.sentinel_password", r.SentinelPasswordEnv, r.SentinelPasswordFile, false, &r.sentinelPassword)
	if r.Mode != RedisSentinel && (r.SentinelUsername != "" || r.SentinelPasswordEnv != "" || r.SentinelPasswordFile != "" || r.MasterName != "") {
		v.add("redis.mode", "set mode: sentinel, or remove the sentinel settings", "sentinel settings are set in mode %s", r.Mode)
	}
	if r.SentinelUsername != "" && r.SentinelPasswordEnv == "" && r.SentinelPasswordFile == "" {
		v.add("redis.sentinel_password_env", "set sentinel_password_env or sentinel_password_file for the sentinels' ACL user", "redis.sentinel_username is set but no password is configured")
	}
	if r.KeyPrefix == "" {
		v.add("redis.key_prefix", fmt.Sprintf("set a prefix such as %q, so that hitship's keys are told apart from others", DefaultKeyPrefix), "is empty")
	} else if err := rediskey.CheckPrefix(r.KeyPrefix); err != nil {
		v.add("redis.key_prefix", "use braces only around one hash tag, such as {hitship}:, or not at all", "%v", err)
	}
	if r.WaitReplicas != nil && *r.WaitReplicas < 0 {
		v.add("redis.wait_replicas", "set 0 (never wait), a number of replicas, or remove it (auto: one when the master has a replica)", "must not be negative, got %d", *r.WaitReplicas)
	}
	if r.WaitTimeout == 0 {
		r.WaitTimeout = time.Second
	}
	if r.WaitTimeout < 10*time.Millisecond || r.WaitTimeout > time.Minute {
		v.add("redis.wait_timeout", "set a duration between 10ms and 1m, such as 1s", "is %s", r.WaitTimeout)
	}
	v.tls("redis.tls", r.TLS)
}

func (v *checker) http(h *HTTP) {
	v.hostPort("http.listen", h.Listen, false)
	v.secret("http.admin_token", h.AdminTokenEnv, h.AdminTokenFile, false, &h.adminToken)
	if t := h.adminToken.Reveal(); t != "" && len(t) < 16 {
		v.add("http.admin_token_env", "use a random token of at least 16 characters", "admin token is too short")
		h.adminToken = Secret{}
	}
	names, seen := map[string]bool{}, map[string]string{h.adminToken.Reveal(): "http.admin_token"}
	for i := range h.AdminTokens {
		t := &h.AdminTokens[i]
		key := fmt.Sprintf("http.admin_tokens[%d]", i)
		switch {
		case !nameRE.MatchString(t.Name):
			v.add(key+".name", "name the token after who holds it, in a-z 0-9 . _ - (it is recorded with every change it makes)", "invalid or missing name %q", t.Name)
		case names[t.Name]:
			v.add(key+".name", "give every token a different name", "duplicate name %q", t.Name)
		}
		names[t.Name] = true
		v.secret(key+".token", t.TokenEnv, t.TokenFile, true, &t.token)
		tok := t.token.Reveal()
		switch {
		case tok == "":
		case len(tok) < 16:
			v.add(key+".token_env", "use a random token of at least 16 characters", "token is too short")
			t.token = Secret{}
		case seen[tok] != "":
			v.add(key+".token_env", "give every holder a token of their own", "the same token as %s", seen[tok])
			t.token = Secret{}
		default:
			seen[tok] = key
		}
	}
}

func (v *checker) log(l Log) {
	v.enum("log.format", l.Format, LogJSON, LogText)
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(l.Level)); err != nil {
		v.add("log.level", "use one of: debug, info, warn, error", "unknown level %q", l.Level)
	}
}

func (v *checker) integrations(c *Config) {
	names := map[string]int{}
	dests := map[string]int{}
	needExternalID := false
	for i := range c.Integrations {
		in := &c.Integrations[i]
		key := fmt.Sprintf("integrations[%d]", i)
		switch {
		case in.Name == "":
			v.add(key+".name", "give the integration a unique name", "is required")
		case !nameRE.MatchString(in.Name):
			v.add(key+".name", "use up to 63 of a-z 0-9 . _ - starting with a letter or digit (it appears in URLs and metric labels)", "invalid name %q", in.Name)
		default:
			if j, dup := names[in.Name]; dup {
				v.add(key+".name", "give every integration a different name", "duplicate name %q (also integrations[%d])", in.Name, j)
			} else {
				names[in.Name] = i
			}
		}
		if in.ClientID <= 0 {
			v.add(key+".client_id", "set the customer's positive client account id", "must be positive, got %d", in.ClientID)
		}
		ep, _ := c.EndpointFor(*in)
		// With an endpoint (an S3-compatible store) any region name signs;
		// but a role is assumed on the region's AWS STS endpoint unless
		// external_id.sts_endpoint says where STS is.
		v.region(key+".region", "the bucket's", in.Region,
			ep == "" || in.Credentials.RoleARN != "" && c.ExternalID.STSEndpoint == "")
		v.bucket(key+".bucket", in.Bucket)
		v.prefix(key+".prefix", in.Prefix)
		v.securityLake(key, c, in)
		v.enum(key+".format", in.Format, FormatJSON, FormatNDJSON, FormatOCSF, FormatOCSFJSON, FormatParquet, FormatOCSFParquet)
		if (in.Format == FormatOCSF || in.Format == FormatOCSFJSON || in.Format == FormatParquet || in.Format == FormatOCSFParquet) && !in.IsSecurityLake() && !c.StagedDelivery() {
			v.add(key+".format", "configure a staging bucket (parking.bucket) and leave delivery.staged unset or true: OCSF records and Parquet files are made when a window's one object is assembled; or use json or ndjson", "%s needs staged delivery", in.Format)
		}
		if (in.Format == FormatParquet || in.Format == FormatOCSFParquet) && in.Compression == CompressionGzip && !in.IsSecurityLake() {
			v.add(key+".compression", "remove compression (or set none): a Parquet file is compressed inside (zstd)", "gzip with format %s", in.Format)
		}
		v.enum(key+".compression", in.Compression, CompressionNone, CompressionGzip)
		if in.Manifest && !c.StagedDelivery() {
			v.add(key+".manifest", "configure a staging bucket (parking.bucket) and leave delivery.staged unset or true: manifests describe the one object of a window that staged delivery writes; or remove manifest", "needs staged delivery")
		}
		if len(in.Events) == 0 {
			v.add(key+".events", "subscribe to at least: [hits]", "is empty")
		}
		seen := map[string]bool{}
		for j, e := range in.Events {
			ek := fmt.Sprintf("%s.events[%d]", key, j)
			if seen[e] {
				v.add(ek, "list each event once", "duplicate event %q", e)
			}
			seen[e] = true
			v.enum(ek, e, EventHits)
		}
		v.endpoint(key+".endpoint", in.Endpoint)
		if in.Credentials.RoleARN != "" {
			needExternalID = true
		}
		v.credentials(key+".credentials", &in.Credentials)
		dest := ep + "\x00" + in.Bucket + "\x00" + in.KeyPrefix()
		if j, dup := dests[dest]; dup && in.Bucket != "" {
			v.add(key+".prefix", "give integrations sharing a bucket different prefixes", "same bucket and prefix as integrations[%d]; their objects would overwrite each other", j)
		} else {
			dests[dest] = i
		}
	}
	e := &c.ExternalID
	v.secret("external_id.secret", e.SecretEnv, e.SecretFile, needExternalID, &e.secret)
	if s := e.secret.Reveal(); s != "" && len(s) < 16 {
		v.add("external_id.secret_env", "use a random secret of at least 16 characters (32 recommended)", "external ID secret is too short")
		e.secret = Secret{}
	}
	v.secret("external_id.previous_secret", e.PreviousSecretEnv, e.PreviousSecretFile, false, &e.previous)
	if p := e.previous.Reveal(); p != "" {
		switch {
		case len(p) < 16:
			v.add("external_id.previous_secret_env", "it must be the secret used before the current one (at least 16 characters)", "previous external ID secret is too short")
			e.previous = Secret{}
		case p == e.secret.Reveal():
			v.add("external_id.previous_secret_env", "set the new secret in external_id.secret_env/_file and the old one here, or remove this once every customer moved", "is the same as the current secret")
			e.previous = Secret{}
		}
	}
	if e.AccountID != "" && !accountIDRE.MatchString(e.AccountID) {
		v.add("external_id.account_id", "write the 12-digit AWS account id hitship runs as", "invalid account id %q", e.AccountID)
	}
	if e.STSEndpoint != "" {
		if u, err := url.Parse(e.STSEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.add("external_id.sts_endpoint", `write a URL such as "https://sts.eu-central-1.amazonaws.com"`, "invalid URL %q", e.STSEndpoint)
		}
	}
}

var accountIDRE = regexp.MustCompile(`^[0-9]{12}$`)

func (v *checker) credentials(key string, cr *Credentials) {
	cr.secretAccessKey = Secret{}
	hasRole, hasKey := cr.RoleARN != "", cr.AccessKeyID != ""
	switch {
	case hasRole && hasKey:
		v.add(key, "use either role_arn or access_key_id with a secret, not both", "both role_arn and access_key_id are set")
	case !hasRole && !hasKey:
		v.add(key, "set role_arn (recommended) or access_key_id with secret_access_key_env/_file", "no credentials configured")
	case hasRole:
		if !roleARNRE.MatchString(cr.RoleARN) {
			v.add(key+".role_arn", `use an IAM role ARN such as "arn:aws:iam::123456789012:role/hitship"`, "invalid role ARN %q", cr.RoleARN)
		}
		if cr.SecretAccessKeyEnv != "" || cr.SecretAccessKeyFile != "" {
			v.add(key+".role_arn", "remove secret_access_key_env/_file when using role_arn", "a secret access key is set with role_arn")
		}
	default:
		if !accessKeyRE.MatchString(cr.AccessKeyID) {
			v.add(key+".access_key_id", "use the access key id (16-128 upper-case letters and digits, such as AKIA...)", "invalid access key id")
		}
		if cr.inline.IsSet() {
			if cr.inline.Reveal() == "" {
				v.add(key+".secret_access_key", "send the access key's secret_access_key", "is empty")
			}
			cr.secretAccessKey = cr.inline
			break
		}
		v.secret(key+".secret_access_key", cr.SecretAccessKeyEnv, cr.SecretAccessKeyFile, true, &cr.secretAccessKey)
	}
}

// bucket checks the S3 general-purpose bucket naming rules.
func (v *checker) bucket(key, b string) {
	const fix = "use 3-63 lower-case letters, digits, dots and hyphens, starting and ending with a letter or digit"
	switch {
	case b == "":
		v.add(key, "set the customer's bucket name", "is required")
	case !bucketRE.MatchString(b):
		v.add(key, fix, "invalid bucket name %q", b)
	case strings.Contains(b, ".."), strings.Contains(b, ".-"), strings.Contains(b, "-."):
		v.add(key, fix, "invalid bucket name %q: adjacent dots or a dot next to a hyphen", b)
	case net.ParseIP(b) != nil:
		v.add(key, fix, "bucket name %q is formatted as an IP address", b)
	default:
		for _, p := range []string{"xn--", "sthree-", "amzn-s3-demo-"} {
			if strings.HasPrefix(b, p) {
				v.add(key, fix, "bucket names must not start with %q", p)
			}
		}
		for _, s := range []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"} {
			if strings.HasSuffix(b, s) {
				v.add(key, fix, "bucket names must not end with %q", s)
			}
		}
	}
}

func (v *checker) prefix(key, p string) {
	const fix = `use a relative prefix such as "wallarm/hits/" without "..", control characters or a leading "/"`
	switch {
	case !utf8.ValidString(p):
		v.add(key, fix, "is not valid UTF-8")
	case strings.HasPrefix(p, "/"):
		v.add(key, fix, "must not start with \"/\"")
	case len(p) > 512:
		v.add(key, fix, "is longer than 512 bytes")
	case strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || 0x7f <= r && r <= 0x9f }): // C0, DEL, C1: unicode.IsControl, as sink.ValidatePrefix
		v.add(key, fix, "contains a control character")
	default:
		for _, seg := range strings.Split(p, "/") {
			if seg == ".." || seg == "." {
				v.add(key, fix, "contains a %q segment", seg)
				return
			}
		}
	}
}

// region checks a region name: a known AWS region when aws (no endpoint of
// an S3-compatible store), with the nearest one suggested for a typo; else any
// plain name.
func (v *checker) region(key, whose, r string, aws bool) {
	switch {
	case r == "":
		v.add(key, fmt.Sprintf(`set %s AWS region, such as "eu-central-1"`, whose), "is required")
	case aws && !IsAWSRegion(r):
		fix := `use an AWS region name such as "eu-central-1" or "us-gov-west-1"`
		if c := closestRegion(r); c != "" {
			fix = fmt.Sprintf("did you mean %q? Use the AWS region name", c)
		}
		v.add(key, fix+" (any name is accepted with an endpoint of an S3-compatible store)", "unknown AWS region %q", r)
	case !anyRegionRE.MatchString(r):
		v.add(key, `use the region name the store expects, such as "us-east-1"`, "invalid region %q", r)
	}
}

// parking checks the parking bucket; an empty bucket turns parking off.
func (v *checker) parking(c *Config) {
	p := &c.Parking
	p.Credentials.secretAccessKey = Secret{}
	if !p.Enabled() {
		if c.StagedDelivery() {
			v.add("parking.bucket", "set parking.bucket (and region, credentials) to a bucket of your own: it is the staging bucket every segment, intent and manifest is kept in; or set delivery.staged: false for one object per partition and window", "delivery.staged needs a staging bucket")
		}
		return
	}
	v.bucket("parking.bucket", p.Bucket)
	v.region("parking.region", "the parking bucket's", p.Region, p.Endpoint == "")
	if p.Endpoint != "" {
		v.endpoint("parking.endpoint", p.Endpoint)
	}
	v.prefix("parking.prefix", p.Prefix)
	if p.Credentials.RoleARN != "" {
		v.add("parking.credentials.role_arn", "the parking bucket is the operator's own: use access_key_id with a secret, or no credentials for hitship's own AWS identity", "role_arn is not supported for the parking bucket")
		return
	}
	if p.Credentials.AccessKeyID != "" {
		v.credentials("parking.credentials", &p.Credentials)
	}
}
