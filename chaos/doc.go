// Package chaos holds hitship's chaos test (`make chaos`, and a short
// version in `make test`) and the S3 fault injector it puts in front of the
// S3 stand-in. It runs the staged path by default (see "The staged path"
// below); HITSHIP_CHAOS_PATH=partition runs the per-partition path.
//
// TestChaos runs three real `hitship run` processes in one consumer group
// against a kfake broker with 12 partitions (state on disk), an in-process S3
// (gofakes3) behind an [Injector] (5% 500/503 answers, slow answers, dropped
// connections) and the PutObject-only policy proxy, a parking bucket, and a
// real redis-server with an append-only file. `hitship gen` feeds hits of 50
// tenants with late and malformed records while the test SIGKILLs a random
// replica every few seconds and starts it again, cuts the broker's connections
// twice, restarts Redis once and makes one integration's bucket fail. Issue
// 11 added the faults of Redis as a coordinator and of the config: a Redis
// FLUSHALL and a Redis restart without its data; a reload (SIGHUP to every
// replica) that adds an integration, gives one to another tenant, moves one
// to another prefix and removes one, mid-window; `hitship disable` and
// `hitship enable` of one integration; a dead-letter topic that refuses writes
// (a kfake control answering NOT_ENOUGH_REPLICAS); and a spool disk that fills
// (replica c's spool is a 64 MiB tmpfs, with a 64 KiB memory budget so that
// it spills, and a ballast file fills it). It then proves, from S3, the
// dead-letter topic, the group's offsets and Redis alone, that every
// well-formed hit is in every integration of its tenant exactly once, every
// malformed record is in the dead-letter topic, the offsets are committed to
// the end and nothing is left parked; the integrations a runtime change
// touched are checked against the rules of timeline_test.go (what a change
// may cost and what it may not, by the records' Kafka timestamps).
//
// On the per-partition path three spans are left out of the kills: from the Redis stop until 3 s after
// it started again, and 5 s after each loss of Redis data (the write-back of
// what was lost; a crash before it may cost duplicates and deliveries to an
// integration disabled meanwhile, as the README says). A replica that
// commits while Redis is down holds the window snapshots of those offsets in
// memory until Redis takes them; killed before
// that, its partitions replay without them, and records of windows open at the
// committed offset may be written again (README "Redis outage": possible
// duplicates, never loss). That is the product's documented outcome, not a
// failure this test should find at random; rebalances, broker cuts and
// deliveries go on through the outage as usual, and a kill lands just before
// it or right after the write-back.
//
// # The staged path (the default)
//
// TestChaos runs staged delivery (DESIGN §3, §5; package staging) unless
// HITSHIP_CHAOS_PATH=partition, which runs the per-partition path above with
// its checks as they were. On the staged path the replicas' config has
// delivery.staged: true, the parking bucket is the staging bucket (under
// parking.prefix: staging/seg/ for segments, staging/obj/ for intents and
// manifests, parked/ for parked objects) and the key template is the staged
// default, {prefix}wallarm_hits_{window_start}{late}.{ext}. Each replica
// reaches the staging bucket through a tap of its own (staged_test.go),
// which sees its intents and manifests; and since gofakes3 ignores
// If-None-Match, the test answers a conditional PUT to the staging bucket
// as S3 does (412 when the key exists): the intents are created that way.
//
// Two faults are added: the staging bucket answers 503 to everything for
// 20 s in the middle of the feed, and a replica is SIGKILLed while it has an
// object in hand (its intent written, its manifest not yet), found through
// the taps after a window end and named in the event log. The kills do not
// pause around Redis' outages and data losses: on this path a replay
// without the state Redis lost may stage other segments, but the intents
// drop every record already in an object of the window, so it may cost time
// and never a duplicate.
//
// The run converges when, besides the above, the staging bucket holds no
// segment and no intent without a manifest of an integration configured
// now. The verification requires, from S3, Kafka and Redis alone:
//   - every well-formed hit in each unchanged integration of its tenant
//     exactly once: every copy beyond the topic's is a failure, whatever the
//     replicas' logs say (no "documented duplicates" on this path);
//   - every customer key follows the staged template, with the
//     integration's prefix and extension and a window start on a window
//     boundary; every record lies in its object's window (by its event
//     time) and the records of an object are in (partition, offset) order,
//     the identities read from the topic again; per window of an
//     integration, under all its prefixes together (a moved one has two: one
//     window, one numbering), at most one main object, and late objects
//     numbered 1, 2, … without a gap or a number twice;
//   - every intent has a manifest (but those of integrations no longer
//     configured, which wait), and every manifest's object is in its
//     integration's bucket with the manifest's SHA-256 and record count,
//     holding exactly the hits at the identities its intent lists, all of
//     the intent's tenant; no customer key is named by two manifests (two
//     assemblies of one object name, one overwriting the other: a second
//     main object of the window), and every customer object is named by
//     one;
//   - nothing left under staging/seg/ but segments of integrations no
//     longer configured (the removed one, and the re-tenanted one's old
//     tenant: staged segments go only to an integration of the same name and
//     tenant), each holding records of its own tenant only;
//   - nothing parked, offsets committed to the end, malformed records in the
//     dead-letter topic (as on the other path);
//   - during the staging outage no partition committed past the first record
//     of a tenant with an unchanged integration read after the outage began
//     (such a record is in a buffer that could not be staged), and the
//     replicas logged the refused segments.
//
// On the staged path one integration (tenant 5's) is in format ocsf-parquet:
// its objects are read as Parquet (parquet_test.go), their rows must be in
// time order and, within one time, in (partition, offset) order, and every
// hit must be there once like in any other integration. On both paths a
// ledger in front of the customers' store (putLedger) keeps the SHA-256 of
// every object written: a key written again with other bytes fails the run
// (a replay, of a Parquet file too, must write the same bytes), and the
// report counts the keys written again with the same ones.
//
// The runtime changes keep the rules of timeline_test.go, but for the moved
// integration: on the staged path the segments staged for its old
// destination go to the integration as configured when they are assembled,
// so every hit of its tenant must be there exactly once (across both
// prefixes: the old one holds the windows assembled before the move), and
// every hit made after the move under the new prefix; there is no per-
// partition suffix, since an object is made per window by whichever replica
// assembles it. The added one holds a suffix of each partition with every
// hit made after the reload; the removed one nothing made after the
// removal; the re-tenanted one one tenant per object, none of the old
// tenant's hits made after the change and a suffix of the new tenant's with
// all made after it; the disabled-then-enabled one skips at most one run of
// offsets a partition (routing is the Kafka half's, as on the other path).
//
// Guarantees of the package's non-test code: an Injector is safe for
// concurrent use, its faults are drawn from a seeded source (the share of
// each fault is what its config says, over many requests) and it never
// changes a request it forwards.
package chaos
