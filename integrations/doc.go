// Package integrations holds what an integration is on a record's path and
// how the configured integrations become it:
//
//   - Target: one tenant's destination, named by an ID that fingerprints
//     where and for whom its records go (NewTargetID); RouteSet: a
//     membership, the targets a partition's records may go to.
//   - Build: the targets of a config (their stores from a StoreFactory,
//     S3Stores in production), reusing on a reload the targets whose ID did
//     not change, with their stores swapped in place when only credentials
//     changed (Built.Activate); Diff names what a reload added, changed and
//     removed.
//   - Routes: the live routing table (consumer.Routes): the configured
//     targets filtered by the runtime state, one atomic load per read.
//
// It sits below both the consumer (which routes records to targets) and the
// delivery (which uploads a target's objects), so that neither imports the
// other for these types. Targets and route sets are immutable once made and
// safe to share between goroutines. Routes is safe for concurrent use; Build
// calls the StoreFactory and nothing else does I/O.
package integrations
