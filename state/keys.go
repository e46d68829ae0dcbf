package state

import "strconv"

// The Redis key layout of hitship, in one place: every key any package
// writes is named here, under the operator's redis.key_prefix. The packages
// that own each record (its scripts and its values) keep their validation;
// these functions only spell the names. The strings are stored state shared
// by every replica and version: TestKeyLayout pins them, and changing one is
// a migration, never a refactoring.
//
//	{prefix}{<group>:<topic>:<partition>}:[<inc>:]owner|idle|snaps|snap:<o>|dead|routes|read (state: PartitionKeys)
//	{prefix}routeset:<group>:<set id>                                            (state: RouteSetKey)
//	{prefix}{<name>}:entries|due|leased|tokens|dead|inline:<id>|done:<id>|scan  (retry: RetryQueueKeys)
//	{prefix}health:<integration>                                                 (health: HealthKey)
//	{prefix}last:<integration>                                                   (health: LastKey)
//	{prefix}integrations, {prefix}events                                         (registry: IntegrationsKey, EventsKey)
//	{prefix}{<group>:<topic>}:staged|assemble:<namespace>:<window>               (staging: StagingKeys)
//	{prefix}deflock:<integration>                                                (defs: DefinitionLockKey)
//	{prefix}events:relay, {prefix}events:relayed                                 (events: EventRelayKeys)

// PartitionKeyset is the keys of one partition's replay state (state/doc.go,
// "Keys"). All share the hash tag {group:topic:partition}.
type PartitionKeyset struct {
	Owner  string // hash: gen, member
	Idle   string // zset: the idle-close log
	Snaps  string // zset: index of snapshot offsets
	Snap   string // prefix of string keys Snap+<offset>: snapshots
	Dead   string // zset: dead letters acknowledged
	Routes string // zset: the routing log
	Read   string // string: the read mark (RecordReadMark)
}

// PartitionKeys returns the keys of partition of topic in group, for the
// topic's incarnation inc ("" for keys without one). It does not validate.
func PartitionKeys(prefix, group, topic string, partition int, inc string) PartitionKeyset {
	base := prefix + "{" + group + ":" + topic + ":" + strconv.Itoa(partition) + "}:"
	if inc != "" {
		base += inc + ":"
	}
	return PartitionKeyset{Owner: base + "owner", Idle: base + "idle", Snaps: base + "snaps", Snap: base + "snap:",
		Dead: base + "dead", Routes: base + "routes", Read: base + "read"}
}

// RouteSetKey returns the key of route set id of group: one per group,
// outside every partition's hash slot.
func RouteSetKey(prefix, group, id string) string {
	return prefix + "routeset:" + group + ":" + id
}

// RetryKeyset is the keys of one retry queue (retry/doc.go, "Queue"). All
// share the hash tag {name}.
type RetryKeyset struct {
	Entries string // hash: id -> entry JSON
	Due     string // zset: id -> due (Unix ms)
	Leased  string // zset: id -> lease deadline (Unix ms)
	Tokens  string // hash: id -> lease token
	Dead    string // zset: id -> dead-letter time (Unix ms)
	Inline  string // prefix of string keys Inline+<id>: first failed cycle-1 attempt
	Done    string // prefix of string keys Done+<id>: recently completed entries
	Scan    string // string: the scanner's lease
}

// RetryQueueKeys returns the keys of the retry queue name.
func RetryQueueKeys(prefix, name string) RetryKeyset {
	base := prefix + "{" + name + "}:"
	return RetryKeyset{Entries: base + "entries", Due: base + "due", Leased: base + "leased", Tokens: base + "tokens",
		Dead: base + "dead", Inline: base + "inline:", Done: base + "done:", Scan: base + "scan"}
}

// HealthKey returns the key of integration's 12-hour health ledger (a hash).
func HealthKey(prefix, integration string) string { return prefix + "health:" + integration }

// LastKey returns the key of integration's latest success and failure (a
// hash, health.Ledger.Note), with its last hour's deliveries per minute in
// the same hash (health.Ledger.Delivered).
func LastKey(prefix, integration string) string { return prefix + "last:" + integration }

// IntegrationsKey returns the key of the integrations' runtime state (a hash).
func IntegrationsKey(prefix string) string { return prefix + "integrations" }

// EventsKey returns the key of the system events stream.
func EventsKey(prefix string) string { return prefix + "events" }

// StagingKeyset is the keys of staged delivery's coordination (staging/doc.go).
// Both share the hash tag {group:topic}.
type StagingKeyset struct {
	Marks string // hash: partition -> the window boundary it passed with every segment below it staged (Unix ms)
	Lease string // prefix of string keys Lease+<namespace>:<window start>: the assembler's lease (staging.Namespace)
}

// StagingKeys returns the staging keys of topic in group.
func StagingKeys(prefix, group, topic string) StagingKeyset {
	base := prefix + "{" + group + ":" + topic + "}:"
	return StagingKeyset{Marks: base + "staged", Lease: base + "assemble:"}
}

// DefinitionLockKey returns the key of the writer lock of the definition of
// integration (a string holding the writer's token; integrations/defs).
func DefinitionLockKey(prefix, integration string) string { return prefix + "deflock:" + integration }

// EventRelayKeys returns the keys of the relay of the events stream to Kafka
// (integrations/events): the lease of the replica relaying and the id of the
// last event relayed. Both strings.
func EventRelayKeys(prefix string) (lease, cursor string) {
	return prefix + "events:relay", prefix + "events:relayed"
}
