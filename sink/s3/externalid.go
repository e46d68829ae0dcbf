package s3

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"strconv"
	"strings"
)

// ExternalIDPrefix starts every external ID hitship derives.
const ExternalIDPrefix = "hitship-"

// MinExternalIDSecretBytes is the shortest server secret NewAssumeRoleProvider
// accepts: below it, external IDs could be guessed by brute force.
const MinExternalIDSecretBytes = 16

// externalIDDomain separates this use of the server secret from any other
// (and lets a future scheme change the version).
const externalIDDomain = "hitship/external-id/v1\x00"

// externalIDEncoding is lower-case base32 without padding: only [a-z2-7], all
// inside the STS ExternalId alphabet [\w+=,.@:/-].
var externalIDEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// ExternalID returns the external ID hitship sends with sts:AssumeRole for
// clientID: "hitship-" followed by the first 20 bytes (160 bits) of
// HMAC-SHA256(secret, domain || decimal clientID), lower-case base32 (32
// characters, 40 in all). It is stable for a (secret, clientID) pair, differs between
// clients and between secrets, and cannot be derived without the secret. The
// result satisfies the STS rules for ExternalId (2-1224 characters of
// [\w+=,.@:/-]).
//
// A customer never chooses it: the console shows this value and the
// customer puts it in the role's trust policy as the sts:ExternalId
// condition. Pure and safe for concurrent use; the caller keeps secret
// secret and should use at least MinExternalIDSecretBytes of it.
func ExternalID(secret []byte, clientID int64) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(externalIDDomain))
	m.Write([]byte(strconv.FormatInt(clientID, 10)))
	sum := m.Sum(nil)
	return ExternalIDPrefix + externalIDEncoding.EncodeToString(sum[:20])
}

// validExternalID reports whether s satisfies the STS ExternalId rules.
func validExternalID(s string) bool {
	if len(s) < 2 || len(s) > 1224 {
		return false
	}
	return strings.IndexFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_+=,.@:/-", r))
	}) < 0
}
