// Package kafkaconn turns the kafka section of the config into how hitship
// connects to the brokers: the SASL mechanism and TLS config, the kafka-go
// dialer of the consumer group, the transport of the dead-letter writer, and
// the franz-go options of the incarnation lookup, all with the same SASL and
// TLS settings. Nothing here connects but Check, the start-up check that
// tells a refused SASL or TLS setting (IsMisconfigured, naming the key to
// fix) from a broker that is not there yet; every function is safe for
// concurrent use.
package kafkaconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	mskiam "github.com/segmentio/kafka-go/sasl/aws_msk_iam_v2"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
	"github.com/twmb/franz-go/pkg/kgo"
	faws "github.com/twmb/franz-go/pkg/sasl/aws"
	fplain "github.com/twmb/franz-go/pkg/sasl/plain"
	fscram "github.com/twmb/franz-go/pkg/sasl/scram"

	"hitship/config"
	"hitship/internal/logx"
)

// Auth builds the SASL mechanism and TLS config of the Kafka connection.
func Auth(k config.Kafka) (sasl.Mechanism, *tls.Config, error) {
	var mech sasl.Mechanism
	switch k.SASL.Mechanism {
	case "", config.SASLNone:
	case config.SASLPlain:
		mech = plain.Mechanism{Username: k.SASL.Username, Password: k.SASL.Password()}
	case config.SASLScramSHA256, config.SASLScramSHA512:
		algo := scram.SHA256
		if k.SASL.Mechanism == config.SASLScramSHA512 {
			algo = scram.SHA512
		}
		m, err := scram.Mechanism(algo, k.SASL.Username, k.SASL.Password())
		if err != nil {
			return nil, nil, fmt.Errorf("kafka.sasl: %w", err)
		}
		mech = m
	case config.SASLAWSMSKIAM:
		ac, err := awsConfig(k.SASL)
		if err != nil {
			return nil, nil, err
		}
		mech = mskiam.NewMechanism(ac)
	default:
		return nil, nil, fmt.Errorf("kafka.sasl.mechanism: unknown %q", k.SASL.Mechanism)
	}
	tc, err := TLSConfig(k.TLS)
	if err != nil {
		return nil, nil, fmt.Errorf("kafka.tls: %w", err)
	}
	return mech, tc, nil
}

// TLSConfig turns a TLS section into a *tls.Config (nil when disabled). The
// Redis client's TLS section uses it too.
func TLSConfig(t config.TLS) (*tls.Config, error) {
	if !t.Enabled {
		return nil, nil
	}
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify} //nolint:gosec // operator's explicit choice
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s holds no PEM certificate", t.CAFile)
		}
		tc.RootCAs = pool
	}
	if t.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, err
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}

// Dialer is the kafka-go dialer of the consumer group.
func Dialer(k config.Kafka, mech sasl.Mechanism, tc *tls.Config) *kafka.Dialer {
	return &kafka.Dialer{ClientID: k.ClientID, Timeout: 10 * time.Second, DualStack: true, SASLMechanism: mech, TLS: tc}
}

// DeadLetterWriter is the synchronous writer to the dead-letter topic;
// batchBytes caps its batches (consumer.DeadLetterBatchBytes).
func DeadLetterWriter(k config.Kafka, mech sasl.Mechanism, tc *tls.Config, batchBytes int) *kafka.Writer {
	return &kafka.Writer{
		Addr:         kafka.TCP(k.Brokers...),
		Topic:        k.DeadLetterTopic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond,
		BatchBytes:   int64(batchBytes),
		MaxAttempts:  3,
		Transport:    &kafka.Transport{ClientID: k.ClientID, SASL: mech, TLS: tc},
	}
}

// EventsWriter is the writer to the events topic (integrations/events).
func EventsWriter(k config.Kafka, mech sasl.Mechanism, tc *tls.Config) *kafka.Writer {
	return &kafka.Writer{
		Addr:         kafka.TCP(k.Brokers...),
		Topic:        k.EventsTopic,
		Balancer:     &kafka.Hash{},
		RequiredAcks: kafka.RequireAll,
		BatchTimeout: 5 * time.Millisecond,
		MaxAttempts:  3,
		Transport:    &kafka.Transport{ClientID: k.ClientID, SASL: mech, TLS: tc},
	}
}

// FranzOpts are the franz-go client options of the incarnation lookup
// (consumer.KafkaIncarnations: the topic's cluster id and topic id), with the
// same SASL and TLS settings as the consumer's kafka-go connections.
func FranzOpts(k config.Kafka, tc *tls.Config) ([]kgo.Opt, error) {
	opts := []kgo.Opt{}
	if k.ClientID != "" {
		opts = append(opts, kgo.ClientID(k.ClientID))
	}
	if tc != nil {
		opts = append(opts, kgo.DialTLSConfig(tc.Clone()))
	}
	switch k.SASL.Mechanism {
	case "", config.SASLNone:
	case config.SASLPlain:
		opts = append(opts, kgo.SASL(fplain.Auth{User: k.SASL.Username, Pass: k.SASL.Password()}.AsMechanism()))
	case config.SASLScramSHA256:
		opts = append(opts, kgo.SASL(fscram.Auth{User: k.SASL.Username, Pass: k.SASL.Password()}.AsSha256Mechanism()))
	case config.SASLScramSHA512:
		opts = append(opts, kgo.SASL(fscram.Auth{User: k.SASL.Username, Pass: k.SASL.Password()}.AsSha512Mechanism()))
	case config.SASLAWSMSKIAM:
		ac, err := awsConfig(k.SASL)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.SASL(faws.ManagedStreamingIAM(func(ctx context.Context) (faws.Auth, error) {
			c, err := ac.Credentials.Retrieve(ctx)
			if err != nil {
				return faws.Auth{}, fmt.Errorf("kafka.sasl (aws_msk_iam): hitship's own AWS credentials: %w", err)
			}
			return faws.Auth{AccessKey: c.AccessKeyID, SecretKey: c.SecretAccessKey, SessionToken: c.SessionToken}, nil
		})))
	default:
		return nil, fmt.Errorf("kafka.sasl.mechanism: unknown %q", k.SASL.Mechanism)
	}
	return opts, nil
}

// awsConfig is hitship's own AWS identity and the MSK cluster's region for
// aws_msk_iam: the SDK's default chain (environment, shared config, web
// identity / IRSA, ECS, instance role), whose log lines go to slog.Default().
// It fetches no credentials; each login signs with the current ones.
func awsConfig(s config.SASL) (aws.Config, error) {
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithLogger(logx.AWS(slog.Default()))}
	if s.AWSRegion != "" {
		opts = append(opts, awsconfig.WithRegion(s.AWSRegion))
	}
	ac, err := awsconfig.LoadDefaultConfig(context.Background(), opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("kafka.sasl (aws_msk_iam): cannot load hitship's own AWS configuration (check the AWS_* environment variables and the shared config files): %w", err)
	}
	if ac.Region == "" {
		return aws.Config{}, errors.New("kafka.sasl.aws_region: aws_msk_iam signs for the MSK cluster's region: set kafka.sasl.aws_region (or AWS_REGION)")
	}
	if ac.Credentials == nil {
		return aws.Config{}, errors.New("kafka.sasl (aws_msk_iam): the default AWS credential chain is empty: give hitship an AWS identity (AWS_* environment, web identity / IRSA, instance role)")
	}
	return ac, nil
}
