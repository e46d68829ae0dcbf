// Package admin is hitship's operator HTTP API under /v1/:
//
//	GET  /v1/integrations               list (config view + runtime state)
//	POST /v1/integrations               create (body: Request), 201 with its ETag; its
//	                                    test write runs first (422 when it fails,
//	                                    unless ?save_anyway=true)
//	POST /v1/integrations/test          test before save (body: Request), stores nothing
//	GET  /v1/clients/{id}/onboarding    account ID, external ID and the role's policies
//	GET  /v1/integrations/{name}        one integration (an API one with its ETag)
//	PUT  /v1/integrations/{name}        replace an API integration; If-Match required
//	                                    (428 without, 412 when it changed meanwhile)
//	POST /v1/integrations/{name}/test   write the sample hits, answer in plain words
//	POST /v1/integrations/{name}/disable  body {"reason": "..."} (optional)
//	POST /v1/integrations/{name}/enable
//	GET  /v1/integrations/{name}/events[?limit=N]  its latest events (who, when, why)
//	DELETE /v1/integrations/{name}[?purge=true]  forget an integration that left the config
//
// # Guarantees
//
//   - Every request needs "Authorization: Bearer <token>". The token is
//     compared in constant time on SHA-256 digests of fixed length, so
//     neither content nor length leaks through timing. A missing or wrong
//     token gets 401 with a WWW-Authenticate header, before routing: an
//     unauthenticated caller cannot even learn which integrations exist.
//   - No response ever holds a secret: Integration, the view this package
//     gets, has no field for one; an access-key integration shows its key
//     id only. Errors of the tester are logged, not returned.
//   - Every answer, errors included, is JSON ({"error": ..., "message": ...}).
//   - State changes go to the shared registry (Redis and its durable copy in
//     the integrations topic), so every replica follows within its watcher's
//     poll interval; each change is logged with its event.
//   - DELETE answers 409 for an integration that is still configured (on
//     this replica) and otherwise removes what hitship keeps for it (the
//     service's Forgetter): runtime state, health ledger, retry entries,
//     inline-failure notes, and with purge=true its parked and dead objects;
//     a delete_integration event names the caller. It is idempotent: after a
//     503, calling it again finishes the job. "by" is "admin-api@" plus the TCP peer address (behind a
//     proxy that is the proxy's; X-Forwarded-For is not trusted).
//   - Create and replace validate the request as the config file's
//     integrations are validated (400 with every problem by field and its
//     fix; unknown fields refused by name). The secret of an access key comes
//     in the body and is never answered. Integrations of the config file are
//     read-only here (409).
//
// An API is safe for concurrent use.
package admin
