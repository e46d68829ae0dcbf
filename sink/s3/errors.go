package s3

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"hitship/sink"
)

// newStoreError classifies err from the AWS SDK.
func newStoreError(op, bucket, key string, err error) error {
	se := &sink.StoreError{Op: op, Bucket: bucket, Key: key, Err: err}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		se.StatusCode = re.HTTPStatusCode()
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		se.Code = ae.ErrorCode()
	}
	if se.StatusCode == http.StatusPreconditionFailed || se.Code == "PreconditionFailed" {
		se.Err = errors.Join(sink.ErrAlreadyExists, err)
	}
	return se
}

// storeErr returns the sink.StoreError in err's chain.
func storeErr(err error) (*sink.StoreError, bool) {
	var se *sink.StoreError
	ok := errors.As(err, &se)
	return se, ok
}

// invalidf is a configuration error (sink.IsInvalid), worded as the sink
// package words its own.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("sink: "+format+": %w", append(args, sink.ErrInvalid)...)
}

// Blame classifies a failed Put by the side its cause lies on. It reuses
// Explain, which answers the console's "Test integration" with the same
// classes: the customer's problems (access denied, no such bucket, wrong
// region, bad credentials, signature mismatch, role not assumable) are
// sink.SideCustomer; an unreachable endpoint, a 5xx, throttling and timeouts
// are sink.SideProvider; a credential failure of hitship's own identity, an
// error marked with sink.OwnFailure and anything unclassified are
// sink.SideHitship.
func Blame(err error) sink.Side {
	switch {
	case err == nil || sink.IsAlreadyExists(err):
		return sink.SideNone
	case errors.Is(err, sink.ErrOwnFailure) || errors.Is(err, context.Canceled):
		return sink.SideHitship
	}
	if ce, ok := AsCredentialError(err); ok {
		switch ce.Kind {
		case KindAssumeRoleDenied, KindInvalidRole, KindRegionDisabled, KindBadCredentials:
			return sink.SideCustomer
		case KindBaseCredentials:
			return sink.SideHitship
		default: // STS unreachable, throttling, 5xx
			return sink.SideProvider
		}
	}
	switch Explain(err).Problem {
	case ProblemAccessDenied, ProblemNoSuchBucket, ProblemWrongRegion, ProblemBadCredentials, ProblemSignatureMismatch, ProblemAssumeRoleDenied:
		return sink.SideCustomer
	case ProblemEndpointUnreachable:
		return sink.SideProvider
	}
	if sink.IsRetryable(err) {
		return sink.SideProvider
	}
	return sink.SideHitship
}

// IsCustomerSide reports whether err is a failure on the customer's side
// (Blame): the only kind that counts toward auto-disabling an integration.
func IsCustomerSide(err error) bool { return Blame(err) == sink.SideCustomer }
