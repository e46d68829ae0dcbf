package config

import "time"

// Default returns the configuration used for every key the file leaves out.
// It is the one place defaults are defined; [DefaultIntegration] holds the
// defaults of one integrations[] entry. Default has no integrations and
// validates (no secrets needed).
func Default() Config {
	return Config{
		Kafka: Kafka{
			Brokers:           []string{"localhost:9092"},
			Topic:             "hits",
			Group:             "hitship",
			ClientID:          "hitship",
			DeadLetterTopic:   "hits-dead-letter",
			IntegrationsTopic: "hitship-integrations",
			MaxRecordBytes:    1 << 20,
			MaxDepth:          512,
			SASL:              SASL{Mechanism: SASLNone},
			SessionTimeout:    30 * time.Second,
			RebalanceTimeout:  30 * time.Second,
			HeartbeatInterval: 3 * time.Second,
			CommitInterval:    time.Second,
		},
		Window: Window{
			Size:          10 * time.Minute,
			Grace:         time.Minute,
			IdleTimeout:   30 * time.Second,
			Timestamp:     TimestampEvent,
			MaxFutureSkew: 5 * time.Minute,
		},
		Spool: Spool{
			Dir:         "/var/lib/hitship/spool",
			MaxBytes:    10 << 30,
			MemoryBytes: 64 << 20,
		},
		Delivery: Delivery{
			Concurrency:   16,
			UploadTimeout: 60 * time.Second,
			RetryMin:      time.Second,
			RetryMax:      30 * time.Second,

			HealthMinFailing: time.Hour,
		},
		S3: S3{
			IfNoneMatch:        true,
			MultipartThreshold: 64 << 20,
			PartSize:           16 << 20,
			KeyTemplate:        DefaultKeyTemplate,
		},
		Redis: Redis{
			Mode:        RedisSingle,
			Addr:        "127.0.0.1:6379",
			KeyPrefix:   DefaultKeyPrefix,
			WaitTimeout: time.Second,
		},
		HTTP:    HTTP{Listen: ":9464"},
		Parking: Parking{Prefix: "hitship/"},
		Log:     Log{Format: LogJSON, Level: "info"},
	}
}

// DefaultIntegration returns the defaults of one integrations[] entry; the
// YAML of the entry is decoded on top of it.
func DefaultIntegration() Integration {
	return Integration{
		Enabled:     true,
		Format:      FormatJSON,
		Compression: CompressionNone,
		Events:      []string{EventHits},
	}
}
