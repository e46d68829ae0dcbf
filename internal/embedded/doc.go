// Package embedded runs hitship's outside systems in process, for `hitship
// demo` (and `make run`), which ships in the production binary:
//
//   - Kafka: a single-broker franz-go kfake cluster (StartKafka), driven
//     through kafka-go, the product's client. With a DataDir, Restart keeps
//     topics, records and committed offsets; Cut, Restore and Slow simulate
//     a network outage or a loaded broker without losing broker state. A
//     member kfake keeps in a group past its session timeout is removed, as
//     a broker would (expiry.go). KafkaOptions.SASL makes it require a SASL
//     login (PLAIN, SCRAM-SHA-256/512) and KafkaOptions.TLS serve TLS, with
//     client certificates for mutual TLS; ClientSASL and ClientTLS are what
//     a client needs then.
//   - S3: gofakes3 over plain HTTP (StartS3), in memory or as plain files
//     Dir/<bucket>/<key>; an upload cut off mid-body stores nothing, as S3.
//   - Redis: miniredis (StartRedis).
//
// Package testenv builds the test harnesses on these (fault injection,
// reading topics back, a real redis-server); the binary must not link it
// (cmd/hitship's TestBinaryLinksNoTestHarness checks).
//
// Guarantees: every service listens on 127.0.0.1 only, on a port chosen at
// start. Constructors return (*X, error); Close stops every goroutine the
// service started and is safe to call twice. All methods are safe for
// concurrent use.
package embedded
