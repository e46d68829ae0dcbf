// Package fakests holds test doubles for hitship's AWS credentials: a fake
// STS that implements sts:AssumeRole, and an authenticating S3 proxy.
//
// # STS
//
// Start serves the Query API (POST form, Action=AssumeRole,
// Version=2011-06-15) on 127.0.0.1:random. Every request must be SigV4
// signed with the configured base key (hitship's own identity): the
// signature is recomputed from the canonical request and compared, so a
// wrong key id answers 403 InvalidClientTokenId and a wrong secret 403
// SignatureDoesNotMatch. Credentials are issued only for a role registered
// with Trust and only when the request's ExternalId equals the one
// registered (the trust policy's sts:ExternalId condition); otherwise 403
// AccessDenied with AWS's message. Issued credentials live
// min(Options.Lifetime, DurationSeconds), so a test can make them expire
// every few seconds. RoleSessionName, ExternalId and DurationSeconds are
// checked against the AWS limits; with Options.Chained a duration above one
// hour is refused as for role chaining.
//
// # S3
//
// StartS3 puts a proxy in front of a path-style S3 stand-in
// (internal/testenv's gofakes3, which checks no signature). It accepts a
// request only when its signature verifies with the secret of its access
// key id, the credentials are currently valid (static keys registered with
// AllowKey; temporary credentials issued by the STS, not expired, with their
// X-Amz-Security-Token), the signing region is the server's, the payload hash
// matches the body, and the bucket allows that key or role (AllowKey,
// AllowRole). Refusals use S3's codes and statuses (see S3).
//
// Both servers are safe for concurrent use and stop all their goroutines on
// Close. Times come from Options.Now / S3Options.Now (time.Now by default).
package fakests
