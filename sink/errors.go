package sink

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
)

var (
	// ErrInvalid marks configuration that cannot work (bad template, prefix,
	// format, spool or store settings).
	ErrInvalid = errors.New("invalid")
	// ErrAlreadyExists marks a conditional write (If-None-Match: *) refused with
	// 412 Precondition Failed: the object is already there, written by a replay
	// or a stale writer with the same key, and so (the key's {digest} names
	// the records) with the same records. Callers count it as delivered.
	ErrAlreadyExists = errors.New("object already exists")
	// ErrReleased is returned by Object.Open after Release.
	ErrReleased = errors.New("object released")
	// ErrBufferDone is returned by Buffer.Append after Finish or Discard.
	ErrBufferDone = errors.New("buffer finished or discarded")
	// ErrSpool marks a failed disk operation of the spool (a full disk, an I/O
	// error) in Buffer.Append, Buffer.Finish, Object.Open and Spool.Check.
	ErrSpool = errors.New("sink: spool")
)

// StoreError is a failed store call with the S3 error code and HTTP status
// when the server answered.
type StoreError struct {
	Op         string // e.g. "PutObject", "UploadPart"
	Bucket     string
	Key        string
	StatusCode int    // 0 when no response
	Code       string // S3 error code, e.g. "AccessDenied"; "" when none
	Err        error
}

func (e *StoreError) Error() string {
	s := "sink: " + e.Op + " s3://" + e.Bucket + "/" + e.Key
	if e.Code != "" {
		s += ": " + e.Code
	}
	return s + ": " + e.Err.Error()
}

func (e *StoreError) Unwrap() error { return e.Err }

func storeErr(err error) (*StoreError, bool) {
	var se *StoreError
	ok := errors.As(err, &se)
	return se, ok
}

// IsInvalid reports whether err is a configuration error.
func IsInvalid(err error) bool { return errors.Is(err, ErrInvalid) }

// IsSpoolError reports whether err is a failed disk operation of the spool:
// the records are intact in Kafka, and the caller should read them again once
// the disk takes writes (Spool.Check).
func IsSpoolError(err error) bool { return errors.Is(err, ErrSpool) }

// IsAlreadyExists reports whether a conditional Put found the object already
// there (412). The delivery counts it as delivered.
func IsAlreadyExists(err error) bool { return errors.Is(err, ErrAlreadyExists) }

// IsPreconditionFailed is IsAlreadyExists under the HTTP name.
func IsPreconditionFailed(err error) bool { return IsAlreadyExists(err) }

// IsAccessDenied reports whether the store refused the call for lack of
// permission (403 AccessDenied and friends, not bad credentials).
func IsAccessDenied(err error) bool {
	se, ok := storeErr(err)
	if !ok {
		return false
	}
	switch se.Code {
	case "AccessDenied", "AllAccessDisabled", "AccountProblem":
		return true
	case "":
		return se.StatusCode == http.StatusForbidden
	}
	return false
}

// IsBadCredentials reports whether the credentials were rejected (unknown
// key, wrong secret, expired token) or could not be obtained.
func IsBadCredentials(err error) bool {
	se, ok := storeErr(err)
	if !ok {
		return false
	}
	switch se.Code {
	case "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidToken", "TokenRefreshRequired", "InvalidClientTokenId":
		return true
	}
	return false
}

// IsNoSuchBucket reports whether the bucket does not exist.
func IsNoSuchBucket(err error) bool {
	se, ok := storeErr(err)
	return ok && se.Code == "NoSuchBucket"
}

// IsWrongRegion reports whether the bucket lives in another region than the
// one configured.
func IsWrongRegion(err error) bool {
	se, ok := storeErr(err)
	if !ok {
		return false
	}
	switch se.Code {
	case "PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException":
		return true
	}
	return se.StatusCode == http.StatusMovedPermanently
}

// IsRetryable reports whether err is transient: a network error, a timeout,
// throttling, a 5xx, or a conflicting concurrent operation. Permission,
// credential, bucket and "already exists" errors and a cancelled context are
// not. (The delivery retries every failure on its schedule anyway; this tells
// operators and metrics which failures should heal by themselves.)
func IsRetryable(err error) bool {
	if err == nil || IsAlreadyExists(err) || errors.Is(err, context.Canceled) {
		return false
	}
	if se, ok := storeErr(err); ok {
		switch se.Code {
		case "SlowDown", "RequestTimeout", "RequestTimeTooSkewed", "InternalError", "ServiceUnavailable",
			"OperationAborted", "ConditionalRequestConflict", "Throttling", "ThrottlingException", "RequestLimitExceeded":
			return true
		}
		if se.StatusCode >= 500 || se.StatusCode == http.StatusTooManyRequests || se.StatusCode == http.StatusRequestTimeout {
			return true
		}
		if se.StatusCode != 0 {
			return false
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe)
}

// Side says on whose side the cause of a failed upload lies (DESIGN §5
// Health): only the customer's side may switch an integration off, so that
// an outage of S3 itself, or of hitship, never disables healthy customers.
type Side string

// Sides of a failure.
const (
	// SideNone: no failure (nil, or a 412: the object is there).
	SideNone Side = ""
	// SideCustomer: the customer's bucket or account refused: access denied,
	// no such bucket, wrong region, bad key or credentials, a role that
	// cannot be assumed.
	SideCustomer Side = "customer"
	// SideProvider: the storage or STS provider failed: 5xx, throttling,
	// timeouts, connection errors, no answer.
	SideProvider Side = "provider"
	// SideHitship: hitship's own: its own AWS identity, its parking bucket or
	// disk (errors marked with OwnFailure), or an answer hitship's request
	// caused (an unclassified 4xx).
	SideHitship Side = "hitship"
)

// ErrOwnFailure marks an error as hitship's own (see OwnFailure).
var ErrOwnFailure = errors.New("hitship's own failure")

// OwnFailure marks err as a failure on hitship's side (reading a parked
// object, a local disk, a missing configuration): Blame (sink/s3) answers
// SideHitship whatever err wraps. nil stays nil.
func OwnFailure(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrOwnFailure, err)
}
