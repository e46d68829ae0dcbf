package s3

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"hitship/sink"
)

// TestParams describe one "test integration" write.
type TestParams struct {
	// Prefix is the integration's key prefix (checked with sink.ValidatePrefix).
	Prefix      string
	Format      sink.Format
	Compression sink.Compression
	// Now names the object (Unix seconds); it must not be zero.
	Now time.Time
	// SecurityLake is a Security Lake custom source's test: the key is in
	// the eventDay= partition of Now's UTC day (sink.SecurityLakeKeyTemplate)
	// and the object holds no record (sink.EmptyObject), since every
	// subscriber of the lake would read the sample hits as real ones.
	SecurityLake bool
}

// TestKey returns the key TestWrite uses:
// {prefix}wallarm_hits_{now unix}_test.{ext}[.gz], or for a Security Lake
// source {prefix}eventDay={YYYYMMDD}/wallarm_hits_{now unix}_test.parquet.
func TestKey(p TestParams) string {
	day := ""
	if p.SecurityLake {
		day = "eventDay=" + p.Now.UTC().Format("20060102") + "/"
	}
	return p.Prefix + day + "wallarm_hits_" + strconv.FormatInt(p.Now.Unix(), 10) + "_test." + p.Format.Ext() + p.Compression.Ext()
}

// TestWrite is the console's "Test integration": it writes the two sample
// hits to store under TestKey(p), with the Content-Type and Content-Encoding
// of real objects, and returns the key. It blocks for one Put and does not
// retry; pass the error to Explain for an answer in plain words. A 412 (a
// test in the same second already wrote the key, with a store that writes
// conditionally) counts as success: the write was authorised. Safe for
// concurrent use.
func TestWrite(ctx context.Context, store sink.Store, p TestParams) (key string, err error) {
	if store == nil {
		return "", invalidf("test write: nil store")
	}
	if p.Now.IsZero() {
		return "", invalidf("test write: zero Now")
	}
	if err := sink.ValidatePrefix(p.Prefix); err != nil {
		return "", err
	}
	sample := sink.SampleObject
	if p.SecurityLake {
		sample = sink.EmptyObject
	}
	data, err := sample(p.Format, p.Compression)
	if err != nil {
		return "", err
	}
	key = TestKey(p)
	err = store.Put(ctx, key, sink.BytesBody(data), sink.PutOptions{
		ContentType:     p.Format.ContentType(),
		ContentEncoding: p.Compression.ContentEncoding(),
	})
	if err != nil && !sink.IsAlreadyExists(err) {
		return key, err
	}
	return key, nil
}

// Problem codes of an Answer. They are stable: the console maps them to its
// own texts.
const (
	ProblemAccessDenied        = "access_denied"
	ProblemNoSuchBucket        = "no_such_bucket"
	ProblemWrongRegion         = "wrong_region"
	ProblemBadCredentials      = "bad_credentials"
	ProblemSignatureMismatch   = "signature_mismatch"
	ProblemAssumeRoleDenied    = "assume_role_denied"
	ProblemEndpointUnreachable = "endpoint_unreachable"
	ProblemUnknown             = "unknown"
)

// Answer is the outcome of a test write in plain words. It never holds a
// secret: it is built from the bucket, key, region, S3 error code and
// status, never from credentials.
type Answer struct {
	OK bool `json:"ok"`
	// Problem is one of the Problem* codes; "" when OK.
	Problem string `json:"problem,omitempty"`
	// Message says what happened, in plain words.
	Message string `json:"message"`
	// Fix says what to change, e.g. the IAM policy to grant.
	Fix string `json:"fix,omitempty"`
}

// Explain turns the error of TestWrite (or of any Put) into an Answer.
// Explain(nil) is a success. Classification uses the predicates of sink and
// of this package, most specific first: a role that cannot be assumed is
// reported as such although STS answers "AccessDenied" too, and a signature
// mismatch apart from other credential errors.
func Explain(err error) Answer {
	if err == nil || sink.IsAlreadyExists(err) {
		return Answer{OK: true, Message: "hitship wrote the two sample hits to the bucket: the integration works."}
	}
	bucket, key := "the bucket", ""
	if se, ok := storeErr(err); ok {
		if se.Bucket != "" {
			bucket = se.Bucket
		}
		key = se.Key
	}
	if ce, ok := AsCredentialError(err); ok {
		return explainCredentialError(ce)
	}
	switch {
	case isSTSAssumeRoleDenied(err):
		return Answer{
			Problem: ProblemAssumeRoleDenied,
			Message: "AWS STS refused to let hitship assume the integration's role (AccessDenied). " +
				"STS does not say why; the likely cause is the role's trust policy: it must trust hitship's AWS account " +
				"and its sts:ExternalId condition must equal the external ID shown for this client account. " +
				"A role created for another client account never matches.",
			Fix: trustPolicyAdvice,
		}
	case IsSignatureMismatch(err):
		return Answer{
			Problem: ProblemSignatureMismatch,
			Message: "S3 rejected the request signature (SignatureDoesNotMatch): the access key ID exists, but the secret access key does not belong to it.",
			Fix:     "Set the secret access key that belongs to this access key ID (copy it again without spaces or line breaks), or create a new key pair for the IAM user.",
		}
	case sink.IsBadCredentials(err):
		return Answer{
			Problem: ProblemBadCredentials,
			Message: "S3 did not accept hitship's credentials (" + s3CodeOf(err) + "): the access key ID is unknown, deactivated or the temporary credentials expired.",
			Fix:     "Check the access key ID and that the key is active in IAM, or switch the integration to a role ARN.",
		}
	case sink.IsWrongRegion(err):
		msg := "The bucket " + bucket + " is in another region than the one configured for the integration."
		fix := "Set the integration's region to the bucket's region (S3 console, bucket properties)."
		if r := redirectRegion(err); r != "" {
			msg = "The bucket " + bucket + " is in region " + r + ", not in the region configured for the integration."
			fix = "Set the integration's region to " + r + "."
		}
		return Answer{Problem: ProblemWrongRegion, Message: msg, Fix: fix}
	case sink.IsNoSuchBucket(err):
		return Answer{
			Problem: ProblemNoSuchBucket,
			Message: "The bucket " + bucket + " does not exist.",
			Fix:     "Check the bucket name (it is the name only, without s3:// or a path) or create the bucket.",
		}
	case sink.IsAccessDenied(err):
		return Answer{
			Problem: ProblemAccessDenied,
			Message: "S3 refused the write (AccessDenied): hitship's identity may not put objects into " + bucket + ".",
			Fix: "Attach this policy to the role or user hitship uses (hitship needs s3:PutObject only; " +
				"with SSE-KMS also kms:GenerateDataKey on the key):\n" + putObjectPolicy(bucket, keyPrefixOf(key)),
		}
	case IsUnreachable(err):
		return Answer{
			Problem: ProblemEndpointUnreachable,
			Message: "hitship could not reach the S3 endpoint (no answer: DNS, connection or timeout).",
			Fix:     "Check the endpoint and region of the integration, and that hitship's network allows HTTPS to S3.",
		}
	}
	return Answer{
		Problem: ProblemUnknown,
		Message: "The write failed: " + describeFailure(err) + ".",
		Fix:     "Check the integration's settings; if the problem stays, give this message to support.",
	}
}

// explainCredentialError answers a failure of an AssumeRoleProvider (creds.go)
// with its own words, which name the role, the external ID and hitship's
// principal, and never a secret.
func explainCredentialError(ce *CredentialError) Answer {
	a := Answer{Message: ce.Msg, Fix: ce.Hint}
	switch ce.Kind {
	case KindAssumeRoleDenied:
		a.Problem = ProblemAssumeRoleDenied
		a.Message = "The role cannot be assumed: " + ce.Msg + ". STS does not say why; the sts:ExternalId condition of the role's trust policy is the likely cause."
		a.Fix = ce.Hint + ".\n" + trustPolicyAdvice
	case KindInvalidRole, KindRegionDisabled:
		a.Problem = ProblemAssumeRoleDenied
	case KindBadCredentials, KindBaseCredentials:
		a.Problem = ProblemBadCredentials
	case KindSTSUnreachable:
		a.Problem = ProblemEndpointUnreachable
	default:
		a.Problem = ProblemUnknown
	}
	if a.Fix == "" {
		a.Fix = "Check the integration's role ARN and region; if the problem stays, give this message to support."
	}
	return a
}

const trustPolicyAdvice = `Edit the role's trust policy so that it allows hitship's AWS account to assume it with this client's external ID (run "hitship external-id --client ID" or see the console):
{
  "Version": "2012-10-17",
  "Statement": [{
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::HITSHIP_ACCOUNT_ID:root"},
    "Action": "sts:AssumeRole",
    "Condition": {"StringEquals": {"sts:ExternalId": "EXTERNAL_ID"}}
  }]
}`

// putObjectPolicy is the least-privilege IAM policy for bucket/prefix.
func putObjectPolicy(bucket, prefix string) string {
	return `{
  "Version": "2012-10-17",
  "Statement": [{
    "Effect": "Allow",
    "Action": "s3:PutObject",
    "Resource": "arn:aws:s3:::` + policyEscape(bucket+"/"+prefix) + `*"
  }]
}`
}

func policyEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// keyPrefixOf returns the integration prefix of a key written by hitship: what
// precedes "wallarm_hits_" (or the key's folder for other layouts).
func keyPrefixOf(key string) string {
	if i := strings.LastIndex(key, "wallarm_hits_"); i >= 0 {
		return key[:i]
	}
	if i := strings.LastIndexByte(key, '/'); i >= 0 {
		return key[:i+1]
	}
	return ""
}

func s3CodeOf(err error) string {
	if se, ok := storeErr(err); ok && se.Code != "" {
		return se.Code
	}
	return "rejected"
}

// describeFailure names an unclassified error by its S3 code and HTTP status when
// there are some, else by its text. Neither holds credentials: the SDK never
// formats a secret into an error.
func describeFailure(err error) string {
	if se, ok := storeErr(err); ok && (se.Code != "" || se.StatusCode != 0) {
		s := "S3 answered"
		if se.StatusCode != 0 {
			s += " HTTP " + strconv.Itoa(se.StatusCode)
		}
		if se.Code != "" {
			s += " " + se.Code
		}
		return s
	}
	return err.Error()
}

// redirectRegion returns the bucket's region that S3 names in the
// x-amz-bucket-region header of a redirect or a region mismatch, or "".
func redirectRegion(err error) string {
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.Response == nil {
		return ""
	}
	r := re.Response.Header.Get("x-amz-bucket-region")
	for _, c := range r {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return ""
		}
	}
	return r
}

// IsSignatureMismatch reports whether S3 rejected the request signature
// (SignatureDoesNotMatch): usually a wrong secret key for an existing key ID.
// Such errors satisfy sink.IsBadCredentials too.
func IsSignatureMismatch(err error) bool {
	se, ok := storeErr(err)
	return ok && se.Code == "SignatureDoesNotMatch"
}

// IsUnreachable reports whether the store could not be reached at all: no
// HTTP answer because of DNS, a refused or reset connection, or a timeout.
func IsUnreachable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if se, ok := storeErr(err); ok && se.StatusCode != 0 {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var netErr net.Error
	return errors.As(err, &dnsErr) || errors.As(err, &opErr) || errors.As(err, &netErr)
}

// isSTSAssumeRoleDenied reports whether STS refused to assume the integration's
// role (AccessDenied from sts:AssumeRole): a trust policy that does not allow
// hitship's account, or whose sts:ExternalId condition does not match. The
// S3 call then fails before any request reaches the bucket, with STS's
// AccessDenied inside, which sink.IsAccessDenied would take for an S3 refusal.
// It looks for the STS operation error anywhere in the chain, so it works
// with any credentials provider that wraps it (IsAssumeRoleDenied of
// creds.go, once it exists, may be or-ed in by Explain).
func isSTSAssumeRoleDenied(err error) bool {
	found := false
	walkErr(err, func(e error) bool {
		oe, ok := e.(*smithy.OperationError)
		if !ok || oe.Service() != "STS" || !strings.HasPrefix(oe.Operation(), "AssumeRole") {
			return false
		}
		var ae smithy.APIError
		var re *awshttp.ResponseError
		switch {
		case errors.As(oe.Err, &ae):
			found = ae.ErrorCode() == "AccessDenied" || ae.ErrorCode() == "AccessDeniedException"
		case errors.As(oe.Err, &re):
			found = re.HTTPStatusCode() == http.StatusForbidden
		}
		return true
	})
	return found
}

// walkErr calls fn on err and everything it wraps (both Unwrap forms), depth
// first, until fn returns true.
func walkErr(err error, fn func(error) bool) bool {
	if err == nil {
		return false
	}
	if fn(err) {
		return true
	}
	switch u := err.(type) {
	case interface{ Unwrap() error }:
		return walkErr(u.Unwrap(), fn)
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if walkErr(e, fn) {
				return true
			}
		}
	}
	return false
}
