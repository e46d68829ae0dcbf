package config

import (
	"time"
)

// Config is the whole hitship configuration file. Build it with [Default]
// (or [Load]/[Parse], which start from Default), then call [Config.Validate].
// Secret values are available only after a Validate that reported no problem
// for them.
type Config struct {
	Kafka        Kafka         `yaml:"kafka"`
	Window       Window        `yaml:"window"`
	Spool        Spool         `yaml:"spool"`
	Delivery     Delivery      `yaml:"delivery"`
	S3           S3            `yaml:"s3"`
	Redis        Redis         `yaml:"redis"`
	HTTP         HTTP          `yaml:"http"`
	Log          Log           `yaml:"log"`
	ExternalID   ExternalID    `yaml:"external_id"`
	Parking      Parking       `yaml:"parking"`
	Secrets      Secrets       `yaml:"secrets"`
	Integrations []Integration `yaml:"integrations"`
}

// Secrets configures the key ring that seals the secrets of integrations
// created through the admin API (package secrets): an environment variable
// or a file holding one "ID:BASE64KEY" line per key encryption key, the
// newest last. Without it only role integrations can be created there.
type Secrets struct {
	KeysEnv  string `yaml:"keys_env"`
	KeysFile string `yaml:"keys_file"`

	keys Secret
}

// Keys returns the key ring's text read by Validate ("" when not configured).
func (s Secrets) Keys() string { return s.keys.Reveal() }

// KeysSource names where the key ring was read from, for messages.
func (s Secrets) KeysSource() string {
	if s.KeysFile != "" {
		return "secrets.keys_file " + s.KeysFile
	}
	return "secrets.keys_env " + s.KeysEnv
}

// Parking is the operator's own bucket where objects that failed retry cycle 1
// wait for the retry workers (DESIGN §5), and where dead letters are kept.
// When Bucket is empty parking is off: every object is retried in-process
// until it is written, holding its partition's offset.
type Parking struct {
	Endpoint    string      `yaml:"endpoint"`
	Region      string      `yaml:"region"`
	Bucket      string      `yaml:"bucket"`
	Prefix      string      `yaml:"prefix"`
	PathStyle   bool        `yaml:"path_style"`
	Credentials Credentials `yaml:"credentials"`
}

// Enabled reports whether a parking bucket is configured.
func (p Parking) Enabled() bool { return p.Bucket != "" }

// Kafka is the source topic, consumer group and dead-letter topic.
type Kafka struct {
	Brokers         []string `yaml:"brokers"`
	Topic           string   `yaml:"topic"`
	Group           string   `yaml:"group"`
	ClientID        string   `yaml:"client_id"`
	DeadLetterTopic string   `yaml:"dead_letter_topic"`
	// IntegrationsTopic is the compacted topic that holds the durable copy of
	// the integrations' runtime state (registry, kstore). hitship creates it
	// (one partition, cleanup.policy=compact) when it is missing.
	IntegrationsTopic string `yaml:"integrations_topic"`
	// EventsTopic, if set, receives the system events of integrations
	// (create_integration, ..., integration_broken) for the platform's
	// notification service (integrations/events). It must exist.
	EventsTopic       string        `yaml:"events_topic"`
	MaxRecordBytes    Size          `yaml:"max_record_bytes"`
	MaxDepth          int           `yaml:"max_depth"`
	SASL              SASL          `yaml:"sasl"`
	TLS               TLS           `yaml:"tls"`
	SessionTimeout    time.Duration `yaml:"session_timeout"`
	RebalanceTimeout  time.Duration `yaml:"rebalance_timeout"`
	HeartbeatInterval time.Duration `yaml:"heartbeat_interval"`
	CommitInterval    time.Duration `yaml:"commit_interval"`
}

// SASL mechanisms.
const (
	SASLNone        = "none"
	SASLPlain       = "plain"
	SASLScramSHA256 = "scram-sha-256"
	SASLScramSHA512 = "scram-sha-512"
	// SASLAWSMSKIAM is Amazon MSK's IAM access control: hitship signs its
	// login with its own AWS identity (the SDK's default chain: environment,
	// web identity / IRSA, ECS, instance role), no user name or password.
	SASLAWSMSKIAM = "aws_msk_iam"
)

// SASL is Kafka authentication. The password comes from an environment
// variable or a file, never from the YAML itself.
type SASL struct {
	Mechanism    string `yaml:"mechanism"`
	Username     string `yaml:"username"`
	PasswordEnv  string `yaml:"password_env"`
	PasswordFile string `yaml:"password_file"`
	// AWSRegion is the MSK cluster's region (aws_msk_iam only); "" takes
	// the SDK's default (AWS_REGION, the shared config).
	AWSRegion string `yaml:"aws_region"`

	password Secret
}

// Password returns the SASL password read by Validate ("" before).
func (s SASL) Password() string { return s.password.Reveal() }

// TLS is client TLS to Kafka or Redis.
type TLS struct {
	Enabled            bool   `yaml:"enabled"`
	CAFile             string `yaml:"ca_file"`
	CertFile           string `yaml:"cert_file"`
	KeyFile            string `yaml:"key_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
	ServerName         string `yaml:"server_name"`
}

// Timestamp sources for windowing.
const (
	TimestampEvent  = "event"
	TimestampRecord = "record"
)

// Window is the tumbling-window policy.
type Window struct {
	Size          time.Duration `yaml:"size"`
	Grace         time.Duration `yaml:"grace"`
	IdleTimeout   time.Duration `yaml:"idle_timeout"`
	Timestamp     string        `yaml:"timestamp"`
	MaxFutureSkew time.Duration `yaml:"max_future_skew"`
}

// Spool is the local disk buffer for windows larger than memory.
type Spool struct {
	Dir         string `yaml:"dir"`
	MaxBytes    Size   `yaml:"max_bytes"`
	MemoryBytes Size   `yaml:"memory_bytes"`
}

// Delivery is the upload worker pool and the in-process retry backoff.
type Delivery struct {
	Concurrency   int           `yaml:"concurrency"`
	UploadTimeout time.Duration `yaml:"upload_timeout"`
	RetryMin      time.Duration `yaml:"retry_min"`
	RetryMax      time.Duration `yaml:"retry_max"`
	// HealthMinAttempts is the least number of attempts in the 12-hour
	// health ledger before an integration can be auto-disabled; 0 takes the
	// health package's default (20). The ledger is kept with or without a
	// parking bucket.
	HealthMinAttempts int `yaml:"health_min_attempts"`
	// HealthMinFailing is the least time from the first to the last
	// customer-side failure in the 12-hour ledger before an integration can
	// be auto-disabled (default 1h): a burst of trouble is not a broken
	// customer.
	HealthMinFailing time.Duration `yaml:"health_min_failing"`
	// Staged is staged delivery (DESIGN §3, §5; staging/): partitions write
	// segments to the parking bucket (the staging bucket), and one object per
	// integration and window is assembled from them and delivered. Unset, it
	// is on exactly when parking.bucket is set (Config.StagedDelivery); true
	// needs parking.bucket; false keeps one object per partition and window.
	Staged *bool `yaml:"staged"`
}

// StagedDelivery reports whether staged delivery is on: delivery.staged, or
// when it is unset, whether a staging (parking) bucket is configured.
func (c *Config) StagedDelivery() bool {
	if c.Delivery.Staged != nil {
		return *c.Delivery.Staged
	}
	return c.Parking.Enabled()
}

// DefaultKeyTemplate is the per-partition key template (s3.key_template's
// default) and DefaultStagedKeyTemplate the one of staged delivery.
const (
	DefaultKeyTemplate       = "{prefix}wallarm_hits_{window_start}_{partition}_{first_offset}_{digest}.{ext}"
	DefaultStagedKeyTemplate = "{prefix}wallarm_hits_{window_start}{late}.{ext}"
)

// EffectiveKeyTemplate is the key template in force: s3.key_template, except
// that with staged delivery the per-partition default stands for
// DefaultStagedKeyTemplate.
func (c *Config) EffectiveKeyTemplate() string {
	if c.StagedDelivery() && (c.S3.KeyTemplate == "" || c.S3.KeyTemplate == DefaultKeyTemplate) {
		return DefaultStagedKeyTemplate
	}
	return c.S3.KeyTemplate
}

// S3 holds the settings shared by every integration's bucket.
type S3 struct {
	Endpoint           string `yaml:"endpoint"`
	PathStyle          bool   `yaml:"path_style"`
	IfNoneMatch        bool   `yaml:"if_none_match"`
	MultipartThreshold Size   `yaml:"multipart_threshold"`
	PartSize           Size   `yaml:"part_size"`
	AllowAbort         bool   `yaml:"allow_abort"`
	KeyTemplate        string `yaml:"key_template"`
}

// Redis modes (redis.mode).
const (
	RedisSingle   = "single"
	RedisSentinel = "sentinel"
	RedisCluster  = "cluster"
)

// DefaultKeyPrefix is redis.key_prefix's default; in cluster mode it is read
// as ClusterKeyPrefix, which holds a hash tag so that every key hitship
// writes is in one hash slot (internal/redisconn, "Cluster").
const (
	DefaultKeyPrefix = "hitship:"
	ClusterKeyPrefix = "{hitship}:"
)

// Redis is the shared state store.
type Redis struct {
	// Mode is single (one server, or a proxy such as a managed endpoint),
	// sentinel or cluster. "" is single.
	Mode string `yaml:"mode"`
	// Addr is the server of mode single, and in mode cluster the
	// configuration endpoint when Addrs is empty.
	Addr string `yaml:"addr"`
	// Addrs are the sentinels of mode sentinel and the seed nodes of mode
	// cluster.
	Addrs []string `yaml:"addrs"`
	// MasterName is the name the sentinels monitor the master under.
	MasterName string `yaml:"master_name"`
	// SentinelUsername and SentinelPassword* authenticate to the sentinels
	// (their own requirepass or ACL user), apart from the data nodes'.
	SentinelUsername     string `yaml:"sentinel_username"`
	SentinelPasswordEnv  string `yaml:"sentinel_password_env"`
	SentinelPasswordFile string `yaml:"sentinel_password_file"`
	Username             string `yaml:"username"`
	PasswordEnv          string `yaml:"password_env"`
	PasswordFile         string `yaml:"password_file"`
	DB                   int    `yaml:"db"`
	TLS                  TLS    `yaml:"tls"`
	KeyPrefix            string `yaml:"key_prefix"`
	// WaitReplicas is how many replicas must acknowledge each write (WAIT)
	// before hitship acts on it. nil is auto: one whenever the master has a
	// replica connected, none when it has none. 0 never waits.
	WaitReplicas *int `yaml:"wait_replicas"`
	// WaitTimeout bounds that wait; a write not acknowledged in time is an
	// error, handled as Redis being degraded (1s).
	WaitTimeout time.Duration `yaml:"wait_timeout"`

	password         Secret
	sentinelPassword Secret
}

// Password returns the Redis password read by Validate ("" when none is
// configured).
func (r Redis) Password() string { return r.password.Reveal() }

// SentinelPassword returns the sentinels' password read by Validate ("" when
// none is configured).
func (r Redis) SentinelPassword() string { return r.sentinelPassword.Reveal() }

// Nodes returns the addresses to connect to: the sentinels, the cluster's
// seed nodes (or its configuration endpoint), or the single server.
func (r Redis) Nodes() []string {
	if r.Mode != RedisSingle && r.Mode != "" && len(r.Addrs) > 0 {
		return r.Addrs
	}
	return []string{r.Addr}
}

// HTTP is the metrics, health and admin listener.
type HTTP struct {
	Listen         string `yaml:"listen"`
	AdminTokenEnv  string `yaml:"admin_token_env"`
	AdminTokenFile string `yaml:"admin_token_file"`
	// AdminTokens are named tokens of the admin API: every change records
	// the name of the token that made it.
	AdminTokens []NamedToken `yaml:"admin_tokens"`

	adminToken Secret
}

// NamedToken is one named bearer token of the admin API.
type NamedToken struct {
	Name      string `yaml:"name"`
	TokenEnv  string `yaml:"token_env"`
	TokenFile string `yaml:"token_file"`

	token Secret
}

// AdminToken returns the bearer token of the /v1/ admin API read by Validate;
// "" when none (the admin API runs when it or a named token is set).
func (h HTTP) AdminToken() string { return h.adminToken.Reveal() }

// NamedTokens returns the named tokens read by Validate, by name.
func (h HTTP) NamedTokens() map[string]string {
	out := make(map[string]string, len(h.AdminTokens))
	for _, t := range h.AdminTokens {
		if v := t.token.Reveal(); v != "" {
			out[t.Name] = v
		}
	}
	return out
}

// Log formats and levels.
const (
	LogJSON = "json"
	LogText = "text"
)

// Log is the slog handler choice.
type Log struct {
	Format string `yaml:"format"`
	Level  string `yaml:"level"`
}

// ExternalID is the server secret under which per-client external IDs for
// sts:AssumeRole are derived. Required when an integration uses role_arn.
type ExternalID struct {
	SecretEnv  string `yaml:"secret_env"`
	SecretFile string `yaml:"secret_file"`
	// AccountID is the AWS account hitship runs as: customers' role trust policies
	// name it as the principal (shown by `hitship external-id`).
	AccountID string `yaml:"account_id"`
	// STSEndpoint overrides the regional STS endpoint (VPC endpoints, tests).
	STSEndpoint string `yaml:"sts_endpoint"`
	// PreviousSecretEnv/File hold the secret before the current one while
	// it is rotated: a role that refuses the current external ID is assumed
	// with the previous one's (README "Rotating the external-ID secret").
	PreviousSecretEnv  string `yaml:"previous_secret_env"`
	PreviousSecretFile string `yaml:"previous_secret_file"`

	secret, previous Secret
}

// PreviousSecret returns the previous external-ID secret read by Validate
// ("" when no rotation is in progress).
func (e ExternalID) PreviousSecret() string { return e.previous.Reveal() }

// Secret returns the external-ID server secret read by Validate.
func (e ExternalID) Secret() string { return e.secret.Reveal() }

// Integration formats and compressions.
const (
	FormatJSON     = "json"
	FormatNDJSON   = "ndjson"
	FormatOCSF     = "ocsf"      // NDJSON of OCSF HTTP Activity records (package ocsf); staged delivery only
	FormatOCSFJSON = "ocsf-json" // a JSON array of them; staged delivery only
	FormatParquet  = "parquet"   // the hits as one Parquet file, typed (sink/parquet); staged delivery only
	// FormatOCSFParquet is their OCSF records as one Parquet file in OCSF's
	// nesting (sink/parquet OCSFSchema); staged delivery only.
	FormatOCSFParquet = "ocsf-parquet"
	CompressionNone   = "none"
	CompressionGzip   = "gzip"
	EventHits         = "hits"
)

// Integration is one customer's S3 destination.
type Integration struct {
	Name     string `yaml:"name"`
	ClientID int64  `yaml:"client_id"`
	// Type is the kind of destination: TypeS3 ("s3" or empty: the
	// customer's bucket) or TypeSecurityLake ("security_lake": a custom
	// source of Amazon Security Lake, configured in SecurityLake).
	Type         string       `yaml:"type"`
	SecurityLake SecurityLake `yaml:"security_lake"`
	Enabled      bool         `yaml:"enabled"`
	Region       string       `yaml:"region"`
	Bucket       string       `yaml:"bucket"`
	Prefix       string       `yaml:"prefix"`
	Format       string       `yaml:"format"`
	Compression  string       `yaml:"compression"`
	Events       []string     `yaml:"events"`
	Endpoint     string       `yaml:"endpoint"`
	PathStyle    bool         `yaml:"path_style"`
	Credentials  Credentials  `yaml:"credentials"`
	// Manifest (staged delivery only) writes beside every object a
	// "{key}.manifest.json" naming it, its record count, per-partition
	// offset ranges and SHA-256, after the object: for downstream jobs that
	// wait for a window to be complete (the main object's manifest).
	Manifest bool `yaml:"manifest"`
	// Source is where the integration is defined: "" (the config file) or
	// SourceAPI (created through the admin API, stored in the integrations
	// topic: integrations/defs). Never read from the file.
	Source string `yaml:"-"`
	// Incarnation tells an API integration from an earlier one of the same
	// name that was deleted (its creation time); "" for the file's.
	Incarnation string `yaml:"-"`
}

// SourceAPI marks an integration created through the admin API.
const SourceAPI = "api"

// Credentials is how hitship authenticates to the customer's bucket: either
// a role to assume (with the derived external ID) or a static access key.
type Credentials struct {
	RoleARN             string `yaml:"role_arn"`
	AccessKeyID         string `yaml:"access_key_id"`
	SecretAccessKeyEnv  string `yaml:"secret_access_key_env"`
	SecretAccessKeyFile string `yaml:"secret_access_key_file"`

	secretAccessKey Secret
	inline          Secret // SetInlineSecret: given by the API, not by the environment or a file
}

// SetInlineSecret gives an access-key integration its secret directly (an
// integration created through the API, whose secret is stored sealed),
// in place of secret_access_key_env/_file. Validate takes it as the secret.
func (c *Credentials) SetInlineSecret(s string) { c.inline = NewSecret(s) }

// SecretAccessKey returns the static secret key read by Validate.
func (c Credentials) SecretAccessKey() string { return c.secretAccessKey.Reveal() }

// EndpointFor returns the S3 endpoint override for integration in: its own, or
// the shared s3.endpoint, or "" for AWS.
func (c *Config) EndpointFor(in Integration) (endpoint string, pathStyle bool) {
	if in.Endpoint != "" {
		return in.Endpoint, in.PathStyle
	}
	return c.S3.Endpoint, c.S3.PathStyle || in.PathStyle
}
