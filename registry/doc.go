// Package registry holds the runtime state of integrations in Redis, shared
// by every replica: enabled, disabled (by an operator) or auto-disabled (by
// the health check), with the reason, since when and by whom.
//
// # Storage
//
// One Redis hash, {prefix}integrations, maps an integration name to its
// Status as JSON; a name without an entry is enabled. Every state change is
// appended to the stream {prefix}events (capped at about MaxEvents entries,
// XADD MAXLEN ~) with the fields type=integration_state, integration,
// state, reason, by and at (RFC 3339, UTC, milliseconds).
//
// # Guarantees
//
//   - A change and its event are written by one Lua script: atomically, so
//     of two replicas disabling the same integration at once exactly one
//     changes it and exactly one event is recorded. A call that would not
//     change the state (disabling a disabled integration, enabling an enabled
//     one) writes nothing and records no event.
//   - Both keys are touched by one script, so in Redis Cluster the prefix
//     must carry a hash tag (e.g. "{hitship}:") to put them in one slot.
//   - Store methods block for one Redis round trip and are safe for
//     concurrent use. Time comes from the injected clock.
//   - A Watcher polls the hash (default every 2 s) and publishes an
//     immutable snapshot atomically: Disabled is lock-free and allocates
//     nothing, for the per-record hot path. Replicas agree within one poll
//     interval. When Redis is unreachable the last snapshot stays in force
//     and Degraded reports it; nothing is ever assumed enabled or disabled
//     because of an outage.
package registry
