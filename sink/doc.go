// Package sink turns closed windows into objects and writes them to stores.
//
// # Keys
//
// A KeyTemplate renders object keys from (prefix, window start, partition,
// first offset, digest, format, compression, ...). Every template contains
// {partition}, {first_offset} and {digest} and starts with {prefix}, so a key
// is unique per buffer and a replay or retry of the same records overwrites
// the same key instead of adding a duplicate. The digest (DigestOffset) names
// the records an object holds: an object with other records (a replay that
// diverged after Redis lost state or a config changed) gets another key, so
// a conditional write answered 412 means that an object with exactly these
// records is already there. Keys never leave the prefix: substituted values
// cannot introduce a leading '/', a "." or ".." segment or a control
// character.
//
// # Encoding
//
// Records are passed through byte for byte (the caller compacts them):
// NDJSON is every record followed by "\n"; a JSON array is "[\n", the
// records joined by ",\n", then "\n]\n" (an empty array is "[\n\n]\n").
// Equal records in equal order give equal bytes, gzip included (no name, zero
// mtime) for a given build of hitship.
//
// # Spool
//
// A Spool bounds memory however large a window grows. A Buffer keeps at most
// SpoolConfig.BufferMemoryBytes in memory and appends the rest to its own
// file; when all buffers and in-memory objects together pass
// SpoolConfig.MemoryBytes, the largest spill to disk. No file descriptor is
// held between calls, so 10,000 buffers need no more than one descriptor
// each at the moment they spill. Spool.Full reports when the spill files
// reach SpoolConfig.MaxBytes: the caller pauses fetching (back-pressure);
// nothing is refused. Finished Objects are immutable and can be opened any
// number of times, concurrently, until Release: a retry re-reads the spool,
// never Kafka. Files left by a previous run are deleted by NewSpool (their
// records are still uncommitted in Kafka and will be read again). A spool
// directory belongs to one Spool: NewSpool takes an exclusive lock on
// SpoolLockFile in it (flock; the file holds the holder's pid) and refuses a
// directory another process or Spool holds, with a SpoolLockedError, before
// deleting anything. The lock lasts until Spool.Close or the end of the
// process (a killed process leaves the file but no lock).
//
// One goroutine appends to a given Buffer; Spool, Object and the other
// Buffer methods are safe for concurrent use.
//
// # Stores
//
// Store is the one contract, with MemStore here and S3Store (package
// sink/s3) as implementations, both checked by sink/storetest.Acceptance;
// SwapStore replaces the Store under running uploads (a credential
// rotation). A conditional Put (PutOptions.IfNoneMatch) of a key that is
// already there fails with an error satisfying IsAlreadyExists, which the
// delivery counts as delivered: keys name their records ({digest}), so the
// object there holds exactly the same ones. Stores never retry; their
// errors are StoreErrors with the S3 error code and HTTP status (MemStore
// speaks the same vocabulary), classified by IsRetryable, IsAccessDenied,
// IsBadCredentials, IsNoSuchBucket, IsWrongRegion and IsAlreadyExists. Side
// names where the cause of a failure lies (the customer's, the provider's,
// hitship's own) for the health ledger; OwnFailure marks an error as
// hitship's own; Blame of sink/s3 classifies.
//
// SampleObject is the object of the console's "Test integration" (TestWrite
// of sink/s3): the two sample hits encoded as the spool encodes them.
//
// # The S3 side
//
// Package sink/s3 holds the S3 store, its credentials, the external ID and
// the test write with its plain-words answers. It imports sink; sink
// imports neither it nor the AWS SDK.
package sink
