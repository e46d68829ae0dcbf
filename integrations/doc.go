// Package integrations holds what an integration is on a record's path: a
// Target (one tenant's destination, named by an ID that fingerprints it) and
// a RouteSet (a membership: the targets a partition's records may go to).
//
// It sits below both the consumer (which routes records to targets) and the
// delivery (which uploads a target's objects), so that neither imports the
// other for these types. Targets and route sets are immutable once made and
// safe to share between goroutines; nothing here blocks or does I/O.
package integrations
