// Package secrets encrypts integration secrets at rest (issue #13) with
// envelope encryption, and gives decrypted secrets a type, [Secret], that no
// log, error, response or event can print.
//
// Each value is encrypted with AES-256-GCM under its own random data key; the
// data key is wrapped with AES-256-GCM under a key encryption key from a
// [Keyring], read from a keys file or an environment variable. The result, a
// [Sealed] envelope, is what gets stored (the integrations topic); without
// the keys it reveals nothing but the value's length and the key id.
// Standard library only.
//
// # Envelope format
//
// A [Sealed] marshals with encoding/json to one compact object; []byte
// fields are standard base64 with padding:
//
//	{"v":1,"kid":"k2","wdek":"<base64>","nonce":"<base64>","ct":"<base64>"}
//
//	v      format version, 1
//	kid    id of the key encryption key that wrapped the data key
//	wdek   the wrapped data key: 12-byte GCM nonce || AES-256-GCM(KEK, 32-byte data key) || 16-byte tag
//	nonce  12-byte GCM nonce of ct
//	ct     AES-256-GCM(data key, plaintext) || 16-byte tag
//
// The caller's AAD (build it with [AAD], such as AAD("integration", name,
// "secret_access_key")) is bound into both GCM operations, each behind its
// own domain label ("hitship/secrets v1 data-key\x00" and
// "hitship/secrets v1 data\x00"); the wrapping also binds the key id (one
// length byte, then the id). Version 1 envelopes keep opening in later
// builds: a golden envelope in the tests pins the format.
//
// # Keys
//
// A keys file holds one key per line, ID:BASE64KEY; the id is 1-64 of A-Z
// a-z 0-9 . _ - and the key is 32 random bytes in standard base64:
//
//	# hitship key encryption keys; the last line is the newest
//	k1:<base64>
//	k2:<output of: head -c32 /dev/urandom | base64>
//
// Blank lines and lines starting with '#' are skipped. An environment
// variable holds the same entries separated by ';' or newlines. The last key
// listed is the newest: [Sealer.Seal] wraps under it; every listed key
// unwraps. [ParseKeyring], [LoadKeyringFile] and [LoadKeyringEnv] refuse a
// malformed line, an invalid id, bad base64, a key that is not 32 bytes or is
// all zero bytes, an id listed twice, one key under two ids, and an empty
// keyring, naming the source, the line and the fix.
//
// [LoadKeyringFile] refuses a file that others can read or write or its
// group can write (chmod 0400 fixes it). Group read is allowed: Kubernetes
// adds it to secret volume files when the pod sets fsGroup, as
// deploy/kubernetes does. The keyring is read once, at start; a change takes
// effect when a replica restarts.
//
// # Guarantees
//
//   - Confidentiality and integrity: GCM authenticates every byte of the
//     envelope that matters. Altering the ciphertext, the nonce, the wrapped
//     key or the key id, or opening with another AAD (another integration or
//     field), fails with [ErrNotAuthentic]; an unknown version, a missing
//     field or a wrong length fails with [ErrMalformed]; a key id the keyring
//     does not hold fails with [ErrUnknownKey]. Test them with errors.Is.
//   - Every Seal draws a fresh data key and fresh nonces from crypto/rand,
//     so two Seals of one plaintext share nothing. A data key encrypts one
//     value only. A key encryption key wraps with random 96-bit nonces,
//     whose limit (NIST SP 800-38D) is 2^32 wraps (Seals and Rewraps) per
//     key: orders of magnitude beyond an integration store, and rotation
//     resets it.
//   - Seal, Open and Rewrap refuse an empty AAD: a secret always names
//     where it belongs.
//   - Nothing leaks: no error from this package contains a plaintext, a
//     data key, a key encryption key or its base64 (a key id is named only
//     once valid; a keys-file path that contains ':' and cannot be opened is
//     not shown, as it may be a pasted key). A [Secret] prints as
//     [Redacted] under every fmt verb, slog handler and marshaller; a
//     [Keyring] prints its ids and newest id only. A [Sealed] holds nothing
//     secret and may be printed.
//   - Concurrency: a Keyring and a Sealer are immutable once made and safe
//     for concurrent use. Nothing here blocks except on crypto/rand, and
//     nothing does I/O except LoadKeyringFile (reads the file) and
//     LoadKeyringEnv (reads the environment).
//   - Data keys are cleared from memory after use, best effort: Go may have
//     copied them, and the key encryption keys stay in memory for the
//     process's life. This protects stored secrets from someone who reads
//     the topic or its backups, not from someone who can read the keys file
//     or the process's memory.
//
// # Rotating the key encryption key
//
// Replicas read the keyring at start, so every step below ends with a
// rolling restart of all replicas.
//
//  1. Generate a key with a new id:
//     printf 'k2:%s\n' "$(head -c32 /dev/urandom | base64)".
//  2. Add its line above the current last line, so k1 stays the newest,
//     and roll the replicas. Every replica can now open k2 and none seals
//     with it yet. (Adding it as the last line at once also works, but
//     while the roll runs an old replica cannot open what a new one sealed
//     under k2: [ErrUnknownKey] naming k2, until it is replaced.)
//  3. Move the k2 line to the end and roll. New seals use k2; everything
//     sealed under k1 still opens.
//  4. Rewrap what is stored: for each envelope, [Sealer.NeedsRewrap], then
//     [Sealer.Rewrap] and write the result back. Rewrap re-wraps only the
//     data key; the ciphertext is kept. hitship does this at every start
//     (integrations/defs Store.RewrapAll): the roll of step 3 moves every
//     integration's secret to k2, logged as "re-wrapped".
//  5. Only when nothing current is sealed under k1, remove its line and roll.
//     An envelope still under k1 then fails with an error naming k1 and the
//     fix: add the k1 line back. Keep a backup of every key until then: a lost
//     key loses every secret sealed under it. In a compacted topic,
//     superseded records sealed under k1 may linger until compaction; they
//     are replaced by newer records, and a reader must treat them so.
//
// # Not built
//
// AWS KMS: [KeyEncrypter] is the seam, and Keyring its one implementation.
// A KMS implementation would wrap data keys with KMS Encrypt under a key
// ARN, pass the AAD as the encryption context, and give each ARN a short key
// id for the envelope. Nor is hot reload of the keyring (restart instead).
package secrets
