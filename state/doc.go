// Package state keeps hitship's per-partition pipeline state in Redis:
// partition ownership (fencing), the idle-close log and window snapshots at
// committed offsets. See docs/architecture.md, "Fencing" and "Commit rule and
// replay determinism".
//
// # Keys
//
// keys.go names every Redis key hitship writes, of this package and of the
// others (retry queue, health ledger, integrations' runtime state, events),
// pinned by TestKeyLayout. All keys of one partition are
//
//	{prefix}{<group>:<topic>:<partition>}:<inc>:owner     hash  gen, member
//	{prefix}{<group>:<topic>:<partition>}:<inc>:idle      zset  idle-close log
//	{prefix}{<group>:<topic>:<partition>}:<inc>:snaps     zset  index of snapshot offsets
//	{prefix}{<group>:<topic>:<partition>}:<inc>:snap:<o>  string snapshot before offset o
//	{prefix}{<group>:<topic>:<partition>}:<inc>:dead      zset  dead letters acknowledged
//	{prefix}{<group>:<topic>:<partition>}:<inc>:routes    zset  routing log: <offset>:<set id>
//	{prefix}{<group>:<topic>:<partition>}:<inc>:read      string read mark: no owner routed at or above it
//	{prefix}routeset:<group>:<set id>                     string a route set's target IDs, one a line
//
// The braces are a Redis Cluster hash tag: a partition's keys share one slot,
// so the Lua scripts and MULTI blocks work on a cluster as on one server.
// <inc> is the topic's incarnation (Store.ForIncarnation: the consumer uses
// the Kafka cluster id and the topic id), so the state of a rebuilt cluster
// or a re-created topic, whose offsets and generation ids start again, is
// never applied to the new records: a new incarnation starts with no state
// (no claim to be refused by, no dead letter, idle close or snapshot). A
// Store without an incarnation uses the keys without ":<inc>". The state of
// an incarnation nobody reads any more expires with SnapshotTTL, except its
// owner keys (a few bytes per partition).
// Offsets are stored zero-padded to 19 digits, so lexicographic order is
// numeric order and no offset loses precision in a float score.
//
// # Guarantees
//
//   - Fencing. Claim is one Lua script: it refuses (ErrFenced) a generation
//     older than the stored one, and another member of the stored
//     generation; the current owner may re-claim. Generations therefore only
//     move forward, and of two racing claims of the same generation exactly
//     one wins.
//   - Ownership is tri-state: Owned, NotOwned (a newer generation, or
//     another member of the caller's) and Unclaimed (no owner key, or one of
//     an older generation). Nothing deletes an owner key and Claim refuses
//     older generations, so Unclaimed means Redis lost data (FLUSHALL, a
//     restart without persistence, a failover that missed writes): the owner
//     claims again, and the claim fails only if a newer generation claimed
//     meanwhile. A missing key is never read as "another owner".
//   - RecordIdleClose checks ownership and appends in one Lua script: a
//     worker whose generation has been superseded can never add an idle close
//     (it gets ErrFenced and must stop without uploading). On an Unclaimed
//     partition the script claims it for the caller and records
//     (RecordIdleCloseClaim reports that). Duplicate records of the same
//     close collapse into one entry.
//   - After a data loss a zombie of an older generation may claim an
//     Unclaimed partition; the live owner's next check sees Unclaimed (an
//     older generation) and takes it back. An idle close the zombie recorded
//     in between stays in the log: a later replay may close there (a
//     possible duplicate, never loss; it needs Redis data loss and a zombie
//     at once).
//   - IdleCloses are returned ordered by NextOffset, then Boundary.
//   - RecordRoute checks ownership and appends to the routing log in one Lua
//     script, like RecordIdleClose; an entry at the same offset is replaced.
//     Route sets are content-addressed (the set id names the members), shared
//     by the group's partitions, written before the entry that names them
//     (outside the partition's slot), and live RouteSetTTL after their last
//     write or read. Prune keeps the latest routing entry at or below the
//     committed offset.
//   - Prune drops idle closes with NextOffset < committed and snapshots of
//     offsets < committed; nothing at or after the committed offset is
//     touched.
//   - Retention. Snapshots expire SnapshotTTL (14 days) after they were
//     written, and the idle log SnapshotTTL after its last append, so an
//     abandoned consumer group does not grow Redis forever; a live group
//     prunes on every commit long before. Owner keys do not expire (a few
//     bytes per partition): expiring them would let a zombie of an old
//     generation claim again.
//
// A Store is safe for concurrent use by many goroutines and replicas. Every
// method blocks for one Redis round trip (Prune for two) and returns Redis
// errors wrapped; classify with IsFenced.
package state
