// Package staging is staged delivery (DESIGN §3, §5): one object per
// integration per window, whatever the number of Kafka partitions, with the
// operator's own bucket (parking.bucket, the staging bucket) as the durable
// record between the two halves.
//
// Kafka half (Stager, a consumer.Delivery). A partition worker windows records
// as always; with consumer.Config.Staged a closed buffer is a segment: NDJSON
// lines "offset record" (the record as read, compact), written to the staging
// bucket under a key that names what it holds (Layout.SegmentKey: the boundary
// at which it closed, target, window, partition, first offset, digest of its
// offsets). The Stager reports it delivered once the bucket has it, so the
// commit rule reads "staged" where it read "delivered"; a failing staging
// bucket holds the offset (back-pressure). No customer bucket is on this path.
//
// Completeness (Coord). At every commit tick each partition publishes its mark
// in Redis: the greatest window boundary its watermark passed, lowered below
// the close boundary of every buffer still being staged. Quiet partitions pass
// boundaries through the idle close, and a partition that has read nothing
// since it started passes the wall clock's boundary once quiet for
// idle_timeout. Segments that closed at boundary B are complete when every
// partition of the topic published a mark >= B.
//
// Delivery half (Assembler). Every replica lists, each second, the boundaries
// that have segments (one delimiter listing), and for each complete one takes
// a Redis lease per (target, window) and:
//
//  1. reads the window's intents (kept under staging/obj/);
//  2. resumes an intent without a manifest: assembles exactly its records from
//     its segments and checks count, size and SHA-256 against it;
//  3. deletes segments that only finished intents list (a replay);
//  4. assembles the other segments into a new object: records in (partition,
//     offset) order, each once, leaving out every record an earlier intent of
//     the window holds; none left: the segments are deleted, nothing is
//     written. Otherwise the intent (key, record identities, size, SHA-256) is
//     created with If-None-Match: * before the first upload attempt;
//  5. sends the object through delivery.Inline (cycle 1 of the retry schedule,
//     then parking in the same bucket, retry workers, dead letters, health, as
//     for every object); once delivered or parked it writes the manifest and
//     deletes the intent's segments.
//
// Names. The window's first object is its main one ({late} renders ""); every
// later one is late, numbered 1, 2, … in the order they are assembled
// (sink.ParseStagedKeyTemplate refuses templates under which two could meet).
// A main object is made only from segments that closed at the window's end;
// records read after the window was complete close later (the next boundary
// the partition's watermark crosses) and form late objects, batched per
// boundary.
//
// What Redis losing data costs. Marks: republished within a commit tick.
// Leases: two replicas may assemble one window at once; the intent's
// conditional create lets one win for a given object name, and the other
// follows it at its next tick. Window state (snapshots, routing log): a replay
// stages segments again, and step 3 or 4 drops every record already in an
// intent: no duplicate in the customer's bucket.
//
// A reload that changes an integration's destination makes a new target; its
// staged segments go to the integration of the same name and client as
// configured now (never to another client). Intents, manifests, leases and
// late numbers are per integration (Namespace: name and client), not per
// target, so the old and the new target's segments of one window are
// numbered and de-duplicated together: never two objects under one key, never
// a hit twice. A replay after the move stages the old target's records for
// the new one (consumer: RouteSet.Successor). Segments of an integration no
// longer configured wait in the staging bucket, logged once per replica.
//
// Known limits. The staging bucket must honour If-None-Match: * on PutObject
// (AWS S3, MinIO, gofakes3 do): without it two replicas that both lost their
// lease (Redis lost it) could write different intents under one name. The
// marks are kept per group and topic, not per incarnation of the topic: after
// a topic is deleted and created again, its first windows may be assembled
// before every partition staged them, which splits them into a main and late
// objects (nothing is lost or doubled); delete {prefix}{group:topic}:staged
// in Redis when re-creating a topic.
//
// Retention. Intents and manifests stay: they are what later replays are
// checked against. Expire them with a lifecycle rule on staging/obj/ of a few
// days (longer than any replay can reach back: the committed offsets move
// within seconds of staging).
package staging
