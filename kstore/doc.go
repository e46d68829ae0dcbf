// Package kstore is a small durable, replicated map of string keys to byte
// values, kept in a compacted Kafka topic with one partition: the pattern of
// Kafka Connect's config topic and Schema Registry's _schemas. Every replica
// reads the whole topic at start-up, follows it afterwards, and answers reads
// from memory; writes go to the topic and are acknowledged by every in-sync
// replica (acks=all). hitship keeps the integrations' runtime state in it
// (integrations/registry/); issue #13 puts whole integration definitions into the same
// topic.
//
// # Topic
//
// Start creates the topic when it is missing: one partition, the broker's
// default replication factor, cleanup.policy=compact. An existing topic must
// have exactly one partition (the map's order is the partition's order) and
// should be compacted (a delete policy would expire the values: Start refuses
// it when it can read the topic's configuration). Errors name the config key
// (Config.Key) and, for authorization failures, the ACL the principal needs:
// Describe, Read and Write on the topic, and Create on the topic (or the
// cluster) to let hitship create it.
//
// # Records
//
// A record's key is the map key, its value the map value; a record with a null
// value (a tombstone) deletes the key. Values are never empty (Put refuses an
// empty value: kafka-go reads an empty value and a null one alike). The
// record's timestamp is the writer's clock (Config.Now) and is kept with the
// entry, so a reader can tell when a key was deleted (Lookup).
//
// # Guarantees
//
//   - Start returns once the map holds every record up to the end offset the
//     topic had when Start asked (or fails after Config.StartTimeout); the
//     follower then applies every later record in offset order.
//   - Put and Delete return once the broker acknowledged the record with
//     acks=all and this replica's follower has applied it (read your own
//     writes): a Get after Put returns the value, or a later one.
//   - Writers race by offset order: the last record of a key in the partition
//     wins, on every replica alike. Callers that need "newer wins" put a
//     version into the value and compare (registry does).
//   - A follower that finds its position past the end of the partition (the
//     topic was deleted and created again, or truncated) logs it, empties the
//     map and reads the topic again from its start; OnChange("") tells.
//   - When Kafka is unreachable the map keeps the last state it read and the
//     follower retries with a backoff (100 ms to 5 s); Err says why. Put and
//     Delete fail after Config.WriteTimeout.
//   - Tombstones are remembered in memory as long as the process runs; the
//     broker drops them from a compacted topic after delete.retention.ms (one
//     day by default), so a replica started later may not see them.
//
// Get, Lookup, All, Entries and Err are safe for concurrent use and never
// block on Kafka. Put, Delete and Sync block (see above) and are safe for
// concurrent use. Start and Close are called once each.
package kstore
