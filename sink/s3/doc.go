// Package s3 is the S3 side of package sink: the S3 store, the credentials
// it signs with, the external ID of an assumed role, and the console's "Test
// integration" with its answers in plain words. It imports sink (the Store
// contract, the store error vocabulary, formats, keys); sink does not import
// it. Callers that also use the AWS SDK's s3 import it as s3sink.
//
// # Store
//
// S3Store is a sink.Store on one bucket, checked by
// sink/storetest.Acceptance. It uses only requests an IAM policy granting
// s3:PutObject on bucket/* allows (PutObject and the multipart
// create/upload-part/complete calls), plus AbortMultipartUpload only when
// S3Config.AllowAbort. It sends If-None-Match: * when asked; a 412 is
// reported as an error satisfying sink.IsAlreadyExists, which the delivery
// counts as delivered: keys name their records ({digest}), so the object
// there holds exactly the same ones; so is a 412 a server sends before it
// closes the connection on a body it did not want (the shared client of
// NewHTTPClient reads it rather than reporting the reset). It never retries;
// errors are sink.StoreErrors, classified by sink.IsRetryable,
// sink.IsAccessDenied, sink.IsBadCredentials, sink.IsNoSuchBucket,
// sink.IsWrongRegion and sink.IsAlreadyExists, and by Blame into the side of
// their cause (the customer's, the provider's, hitship's own) for the health
// ledger.
//
// A single PutObject is one SigV4-signed PUT made by the store itself on the
// SDK's endpoint resolution, signer, credentials and error types (s3put.go),
// without the SDK's per-call middleware stack, which was most of the cost of an
// object of a few KiB; multipart uploads go through the SDK. TestPutterMatchesSDK
// checks both paths send the same request and report the same errors.
//
// # Credentials
//
// StaticProvider holds an integration's access key and never formats its
// secret; AssumeRoleProvider obtains and renews temporary credentials for a
// customer's role with sts:AssumeRole, sending ExternalID (derived from the
// client id and a server secret, never chosen by the customer);
// DefaultBaseCredentials is hitship's own identity from the SDK's default
// chain. Credential failures are CredentialErrors that say, without a
// secret, what happened and what to change.
//
// # Test integration
//
// TestWrite writes sink.SampleObject under TestKey with the headers of real
// objects; Explain turns its error, or any Put's, into an Answer: a stable
// Problem code, what happened and what to change.
package s3
