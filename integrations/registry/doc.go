// Package registry holds the runtime state of integrations, shared by every
// replica: enabled, disabled (by an operator) or auto-disabled (by the health
// check), with the reason, since when, by whom, the client it was recorded
// for and a version.
//
// # Storage: Redis and a durable copy
//
// Redis is the coordinator: one hash, {prefix}integrations, maps an
// integration name to its Status as JSON (a name without an entry is
// enabled), and every change is made there by one Lua script, atomically
// with its event. Every state change is appended to the stream
// {prefix}events (capped at about MaxEvents entries, XADD MAXLEN ~) with the
// fields type=integration_state, integration, state, reason, by and at (RFC
// 3339, UTC, milliseconds); Forget records type=delete_integration.
//
// Redis is not the only copy (DESIGN §5: losing Redis must not re-enable
// anything). With a Durable copy (Config.Durable: a kstore.Map over the
// compacted topic kafka.integrations_topic, key "state/{name}", the Status
// JSON as value) every change is also written there, acknowledged by Kafka
// (acks=all), right after Redis took it. Each Status carries a version,
// max(previous + 1, now in Unix ms); of the two copies the higher version
// wins, and a tombstone in the durable copy counts as a version of its
// record time.
//
// Reads merge both: Store.Status and All read Redis and the replica's
// in-memory copy of the topic; the Watcher's snapshot, which routing reads,
// is the merge of Redis's entries at its last poll and the topic as the
// replica follows it. So the live source is both, newest first: a FLUSHALL
// (or a restart without persistence, or a failover that missed writes)
// changes nothing a replica sees, and a Kafka outage changes nothing either
// (Redis has every change, and the replica keeps the topic as it last read
// it).
//
// Every replica's Watcher reconciles the two at every poll (default every
// 2 s): an entry missing or older in Redis is written back into it (logged
// as restored); an entry missing or older in the topic is published (the
// writer died between its two writes, or an older hitship wrote Redis only);
// a Redis entry older than a tombstone is deleted. Transitions (Disable,
// Enable, AutoDisable) also start from the newer of the two, so an operator
// enabling an integration right after a FLUSHALL changes the state the topic
// holds, not Redis's empty one.
//
// # Clients
//
// SetConfigured tells the Store which client each configured integration
// belongs to. A change records that client id; a configured integration
// whose recorded state belongs to another client reads as enabled (Status,
// All, the Watcher): a name reused for another customer starts fresh, and
// does not inherit an auto-disable. A state without a client id (written
// before client ids were recorded, or by a Store without SetConfigured)
// applies whatever the client.
//
// # Forget
//
// Forget removes everything the registry keeps for a name: a tombstone in
// the durable copy first, then the Redis entry and a delete_integration
// event. In that order a replica reconciling meanwhile cannot bring the
// state back (see Forget). Tombstones are remembered by replicas that read
// them; Kafka drops them after the topic's delete.retention.ms (one day by
// default), after which a Redis entry that somehow survived is published
// again (never silently dropped).
//
// # Guarantees
//
//   - A change and its event are written by one Lua script: atomically, so
//     of two replicas disabling the same integration at once exactly one
//     changes it and exactly one event is recorded. A call that would not
//     change the state (disabling a disabled integration, enabling an enabled
//     one) writes nothing and records no event.
//   - A change returns once Redis took it and the durable copy acknowledged
//     it, or once the caller's deadline (at most Config.DurableTimeout) ran
//     out on the second write. When Kafka does not take it, the change is in
//     force through Redis, logged, and published by the next reconciliation
//     that reaches Kafka. A crash between the two
//     writes costs nothing either: the reconciliation publishes it. What
//     can be lost is a change whose Redis write was lost before any replica
//     reconciled it (about one poll interval) together with the writer.
//   - Both Redis keys are touched by one script, so in Redis Cluster the
//     prefix must carry a hash tag (e.g. "{hitship}:") to put them in one
//     slot.
//   - Versions and tombstone times come from the replicas' clocks, which
//     must be synchronised (NTP), as for the retry queue.
//   - Store methods block for one Redis round trip (plus the durable write
//     of a change) and are safe for concurrent use. Time comes from the
//     injected clock.
//   - A Watcher polls the hash (default every 2 s, and at once when the
//     durable copy changes) and publishes an immutable snapshot atomically:
//     Disabled is lock-free and allocates nothing, for the per-record hot
//     path. Replicas agree within one poll interval. When Redis is
//     unreachable the last Redis view merged with the durable copy stays in
//     force and Degraded reports it; nothing is ever assumed enabled or
//     disabled because of an outage.
package registry
