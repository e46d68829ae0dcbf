// Package parking is the operator's own parking bucket (DESIGN §5): objects
// whose first retry cycle failed wait here for the retry workers, and objects
// whose last attempt failed are kept here as dead letters.
//
// Layout under the configured prefix:
//
//	{prefix}parked/{integration}/{key}  waiting for a retry worker
//	{prefix}dead/{integration}/{key}    dead letters (hitship redeliver)
//
// Guarantees:
//
//   - Put writes the object with its content type and encoding; Download
//     returns them, so a parked object reaches the customer byte for byte as
//     the inline upload would have written it.
//   - Download streams the object into a temporary file (TempPattern) of the
//     caller's directory and returns it as a sink.Body: memory use does not
//     depend on the object's size. Get reads into memory (small objects,
//     tests).
//   - The delivery writes a parked object with its retry entry's fields as
//     user metadata (retry.Entry.Metadata), and Copy keeps them: List and
//     Head let retry.Scanner make an entry that Redis lost again.
//   - Keys are deterministic (integration + customer key): parking the same
//     object twice overwrites it with the same bytes.
//   - Delete of a missing object succeeds; Get of a missing object returns an
//     error satisfying IsNotFound.
//   - Copy is made by the bucket (CopyObject; UploadPartCopy above 5 GiB):
//     no byte of the object passes through hitship, whatever its size.
//   - Copy never deletes: moving an object is Copy, then whatever has to be
//     recorded, then Delete (the retry worker's dead-lettering), so a crash
//     at any point leaves the object in at least one place.
//   - No call retries; the callers own retries. Safe for concurrent use.
package parking
