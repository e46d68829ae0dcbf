// Package testenv starts real stand-ins for hitship's outside systems, for
// tests and benchmarks (never linked into the binary: `hitship demo` runs on
// package embedded, which these harnesses build on):
//
//   - Kafka: the in-process kfake broker of package embedded (StartKafka),
//     driven through kafka-go, the product's client, with helpers to produce
//     to chosen partitions, read topics back and inspect or set committed
//     offsets. Cut and Restore simulate a network outage without losing
//     broker state; with a DataDir, Restart keeps topics, records and
//     committed offsets. KafkaOptions.SASL and TLS make it require SASL
//     (PLAIN, SCRAM) or serve TLS / mutual TLS; the helpers log in with the
//     options' client side.
//   - Certificates: a throw-away CA with a server (127.0.0.1, localhost) and
//     a client certificate as PEM files (NewCerts, MustCerts), for TLS to
//     any of these.
//   - S3: the gofakes3 server of package embedded (StartS3), in memory or as
//     plain files Dir/<bucket>/<key>. FailBucket/HealBucket inject S3 errors
//     per bucket.
//   - Redis: a real redis-server child process on a random port (StartRedis),
//     never 6379; Stop and Start simulate an outage on the same address. When
//     no redis-server binary exists it falls back to miniredis and logs why.
//     With TLS (TLS only, optionally mutual, with a generated CA) or ACL
//     Users it needs the real binary.
//   - Redis topologies, real redis-server processes only: a Sentinel
//     setup of master, replica and three sentinels (StartRedisSentinel;
//     KillMaster, WaitFailover, Restart) and a three-master Cluster,
//     optionally with replicas (StartRedisCluster; StopNode, StartNode,
//     RestartMaster). Without redis-server they return ErrNoRedisServer and
//     their MustX wrappers skip the test, or fail it under CI=true. Every
//     child process gets SIGKILL when the test process dies (Linux).
//
// Guarantees: every service listens on 127.0.0.1 only, on a port chosen at
// start, so tests never depend on a fixed port. Constructors return
// (*X, error) and never take a *testing.T; the MustX wrappers are for tests
// and close the service in t.Cleanup. Close stops every goroutine the
// harness started (tests run under goleak) and is safe to call twice. All
// methods are safe for concurrent use.
package testenv
