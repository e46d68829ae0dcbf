// Package chaos holds hitship's chaos test (`make chaos`, and a 60-second
// version in `make test`) and the S3 fault injector it puts in front of the
// S3 stand-in.
//
// TestChaos runs three real `hitship run` processes in one consumer group
// against a kfake broker with 12 partitions (state on disk), an in-process S3
// (gofakes3) behind an [Injector] (5% 500/503 answers, slow answers, dropped
// connections) and the PutObject-only policy proxy, a parking bucket, and a
// real redis-server with an append-only file. `hitship gen` feeds hits of 50
// tenants with late and malformed records while the test SIGKILLs a random
// replica every few seconds and starts it again, cuts the broker's connections
// twice, restarts Redis once and makes one integration's bucket fail. It then
// proves, from S3, the dead-letter topic, the group's offsets and Redis alone,
// that every well-formed hit is in every integration of its tenant exactly
// once, every malformed record is in the dead-letter topic, the offsets are
// committed to the end and nothing is left parked.
//
// One window is left out of the kills: from the Redis stop until 3 s after it
// started again. A replica that commits while Redis is down holds the window
// snapshots of those offsets in memory until Redis takes them; killed before
// that, its partitions replay without them, and records of windows open at the
// committed offset may be written again (README "Redis outage": possible
// duplicates, never loss). That is the product's documented outcome, not a
// failure this test should find at random; rebalances, broker cuts and
// deliveries go on through the outage as usual, and a kill lands just before
// it or right after the write-back.
//
// Guarantees of the package's non-test code: an Injector is safe for
// concurrent use, its faults are drawn from a seeded source (the share of
// each fault is what its config says, over many requests) and it never
// changes a request it forwards.
package chaos
