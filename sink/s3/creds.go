package s3

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"hitship/internal/logx"
	"hitship/sink"
)

// AssumeRole defaults and limits.
const (
	// DefaultAssumeRoleDuration is the session length asked of STS. It is
	// also the cap STS puts on a session obtained by role chaining (hitship
	// itself running under an assumed role, e.g. IRSA): asking more then fails.
	DefaultAssumeRoleDuration = time.Hour
	// MinAssumeRoleDuration and MaxAssumeRoleDuration are the STS limits; the
	// role's MaxSessionDuration may be lower than the maximum.
	MinAssumeRoleDuration = 15 * time.Minute
	MaxAssumeRoleDuration = 12 * time.Hour
	// DefaultExpiryWindow: temporary credentials are renewed this long before
	// they expire, minus up to DefaultExpiryJitter of it (so that many
	// integrations do not renew in the same second).
	DefaultExpiryWindow = 5 * time.Minute
	DefaultExpiryJitter = 0.2
	// DefaultSTSAttempts is how many times one credential fetch may call STS
	// (the SDK's standard retryer: throttling, 5xx and network errors only).
	DefaultSTSAttempts = 3
	maxSTSBackoff      = 2 * time.Second
)

// CredentialKind says, in a word, what went wrong while obtaining or using
// credentials.
type CredentialKind string

// Credential error kinds.
const (
	// KindAssumeRoleDenied: STS answered AccessDenied to sts:AssumeRole. The
	// role's trust policy does not allow hitship with this external ID (or
	// the role belongs to someone else: the confused deputy).
	KindAssumeRoleDenied CredentialKind = "assume-role-denied"
	// KindBaseCredentials: hitship's own AWS identity is missing or was
	// rejected by STS. An operator problem, not the customer's.
	KindBaseCredentials CredentialKind = "base-credentials"
	// KindBadCredentials: S3 rejected the integration's credentials
	// (unknown key id, wrong secret, expired token).
	KindBadCredentials CredentialKind = "bad-credentials"
	// KindInvalidRole: STS refused the request as malformed (a bad role ARN,
	// a duration above the role's or role chaining's limit).
	KindInvalidRole CredentialKind = "invalid-role"
	// KindRegionDisabled: STS is not activated in the integration's region.
	KindRegionDisabled CredentialKind = "sts-region-disabled"
	// KindSTSUnreachable: no answer from STS (network, timeout).
	KindSTSUnreachable CredentialKind = "sts-unreachable"
	// KindSTS: any other STS answer (throttling, 5xx, ...).
	KindSTS CredentialKind = "sts-error"
)

// CredentialError explains a credential failure in plain words. Msg says
// what happened, Hint what to change. Neither ever holds a secret: only key
// ids, role ARNs, external IDs and AWS error codes.
type CredentialError struct {
	Kind CredentialKind
	Msg  string
	Hint string
	// Code is the AWS error code when a server answered ("AccessDenied").
	Code string
	// Err is the cause when there was no answer (network, context, the base
	// credential chain); nil otherwise, so that an STS error code is not
	// mistaken for the bucket's by the store error predicates.
	Err error
}

func (e *CredentialError) Error() string {
	s := "sink: credentials: " + e.Msg
	if e.Hint != "" {
		s += "; " + e.Hint
	}
	return s
}

func (e *CredentialError) Unwrap() error { return e.Err }

// AsCredentialError returns the CredentialError in err's chain.
func AsCredentialError(err error) (*CredentialError, bool) {
	var ce *CredentialError
	ok := errors.As(err, &ce)
	return ce, ok
}

// IsAssumeRoleDenied reports whether STS refused sts:AssumeRole with
// AccessDenied.
func IsAssumeRoleDenied(err error) bool {
	ce, ok := AsCredentialError(err)
	return ok && ce.Kind == KindAssumeRoleDenied
}

// IsExternalIDLikelyCause reports whether a failure is most likely the
// role's sts:ExternalId condition: missing, different, or the role is
// another tenant's. STS answers AccessDenied with the same message whether
// the principal or the external ID does not match, so hitship cannot tell
// them apart; the external ID is the usual culprit (the principal is
// copied from the console, the ID is easy to forget), and it is what stops
// the confused deputy. The error's Hint states the exact condition.
func IsExternalIDLikelyCause(err error) bool { return IsAssumeRoleDenied(err) }

// ExplainCredentials returns the plain-words explanation of a credential
// failure in err: the CredentialError from an AssumeRole provider, or one
// built from a store error whose code says the credentials were rejected
// (sink.IsBadCredentials). ok is false for other errors.
func ExplainCredentials(err error) (ce *CredentialError, ok bool) {
	if ce, ok := AsCredentialError(err); ok {
		return ce, true
	}
	if !sink.IsBadCredentials(err) {
		return nil, false
	}
	se, _ := storeErr(err)
	ce = &CredentialError{Kind: KindBadCredentials, Code: se.Code}
	switch se.Code {
	case "InvalidAccessKeyId", "InvalidClientTokenId":
		ce.Msg = "the bucket's S3 does not know this access key id (" + se.Code + ")"
		ce.Hint = "check access_key_id: the key may be deleted, inactive or from another AWS partition"
	case "SignatureDoesNotMatch":
		ce.Msg = "the secret access key does not match the access key id (SignatureDoesNotMatch)"
		ce.Hint = "check the secret given by secret_access_key_env or secret_access_key_file"
	default:
		ce.Msg = "the temporary credentials were rejected as expired or invalid (" + se.Code + ")"
		ce.Hint = "they are renewed on the next attempt; if this persists, check the clock of this host"
	}
	return ce, true
}

// StaticProvider holds an integration's access key. The secret appears in
// the aws.Credentials it returns (the signer needs it) and nowhere else: it
// formats as the key id only, with every fmt verb. Safe for concurrent use.
type StaticProvider struct {
	keyID string
	// secret sits behind a pointer: fmt prints an address, not the value,
	// even where it cannot call Format (an unexported field of another
	// struct holding a StaticProvider).
	secret *string
}

var (
	_ aws.CredentialsProvider = (*StaticProvider)(nil)
	_ fmt.Formatter           = (*StaticProvider)(nil)
	_ aws.CredentialsProvider = (*AssumeRoleProvider)(nil)
)

// NewStaticProvider returns a provider of a long-term access key. Errors
// name the key id, never the secret.
func NewStaticProvider(keyID, secret string) (*StaticProvider, error) {
	if keyID == "" {
		return nil, invalidf("credentials: access key id is empty")
	}
	if strings.TrimSpace(keyID) != keyID || strings.ContainsAny(keyID, " \t\r\n") {
		return nil, invalidf("credentials: access key id %q contains white space", keyID)
	}
	if secret == "" {
		return nil, invalidf("credentials: secret access key of %s is empty", keyID)
	}
	if strings.TrimSpace(secret) != secret {
		// A trailing newline from a secret file is the classic mistake.
		return nil, invalidf("credentials: secret access key of %s has leading or trailing white space", keyID)
	}
	return &StaticProvider{keyID: keyID, secret: &secret}, nil
}

// Retrieve returns the key. It never fails and never blocks.
func (p *StaticProvider) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: p.keyID, SecretAccessKey: *p.secret, Source: "hitship-static"}, nil
}

// KeyID returns the access key id.
func (p StaticProvider) KeyID() string { return p.keyID }

// String returns the key id and a redaction mark.
func (p StaticProvider) String() string {
	return "static credentials " + p.keyID + " (secret redacted)"
}

// GoString is String: %#v must not reveal the secret either.
func (p StaticProvider) GoString() string { return p.String() }

// Format prints String for every verb (%v, %+v, %#v, %s, %q, ...).
func (p StaticProvider) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(p.String())) }

// DefaultBaseCredentials returns hitship's own AWS identity from the SDK's
// default chain (environment, shared config, web identity / IRSA, ECS,
// EC2 instance role), as an aws.CredentialsCache. It reads configuration
// files but fetches no credentials: the first Retrieve does.
//
// Pitfall: config.LoadDefaultConfig honours AWS_CA_BUNDLE by rebuilding the
// HTTP client's transport; combined with config.WithHTTPClient(c) for any c
// that is not an *awshttp.BuildableClient it fails ("unable to add custom
// RootCAs HTTPClient"). So this function passes no HTTP client, and clients
// that need their own (tests, proxies) build the base provider without
// LoadDefaultConfig and pass AssumeRoleConfig.HTTPClient instead.
//
// The SDK's own log lines (of the clients the default chain builds: IMDS, STS
// web identity, SSO) go to slog.Default() through logx.AWS, which `hitship
// run` sets to its logger; the SDK's default wrote plain text to stderr.
func DefaultBaseCredentials(ctx context.Context) (aws.CredentialsProvider, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx, awsconfig.WithLogger(logx.AWS(slog.Default())))
	if err != nil {
		return nil, &CredentialError{
			Kind: KindBaseCredentials,
			Msg:  "cannot load hitship's own AWS configuration: " + err.Error(),
			Hint: "check AWS_* environment variables, the shared config files and AWS_CA_BUNDLE",
			Err:  err,
		}
	}
	if cfg.Credentials == nil {
		return nil, &CredentialError{Kind: KindBaseCredentials, Msg: "the default AWS credential chain is empty"}
	}
	return cfg.Credentials, nil
}

// AssumeRoleConfig configures an AssumeRoleProvider. The external ID and the
// session name are derived from ClientID; an integration cannot choose them.
type AssumeRoleConfig struct {
	// Base is hitship's own identity, which calls sts:AssumeRole
	// (DefaultBaseCredentials in production). Required.
	Base aws.CredentialsProvider
	// RoleARN is the customer's role. Required.
	RoleARN string
	// ClientID is the tenant the integration belongs to.
	ClientID int64
	// ExternalIDSecret is the server secret of ExternalID (at least
	// MinExternalIDSecretBytes).
	ExternalIDSecret []byte
	// PreviousExternalIDSecret, during a rotation of the server secret, is
	// the secret before it: when the role refuses the current external ID,
	// the previous one is tried, so that customers who have not yet put the
	// new external ID into their trust policy keep delivering (UsesPrevious
	// says who). nil: no rotation in progress.
	PreviousExternalIDSecret []byte
	// Region is the integration's region: STS is called on its regional
	// endpoint, sts.{region}.amazonaws.com. Required.
	Region string
	// STSEndpoint overrides the endpoint (tests, VPC endpoints), e.g.
	// "http://127.0.0.1:4566".
	STSEndpoint string
	// TrustedPrincipal names hitship's identity in hints ("arn:aws:iam::
	// 111122223333:root"); "" says "hitship's AWS account".
	TrustedPrincipal string
	// Duration of a session (default DefaultAssumeRoleDuration, between
	// MinAssumeRoleDuration and MaxAssumeRoleDuration). When hitship runs
	// under an assumed role itself, STS caps chained sessions at one hour and
	// refuses a longer Duration (KindInvalidRole).
	Duration time.Duration
	// ExpiryWindow: credentials are renewed this long before they expire
	// (default DefaultExpiryWindow; must be shorter than Duration).
	ExpiryWindow time.Duration
	// ExpiryJitter takes a random fraction up to it off the window (default
	// DefaultExpiryJitter; negative for none; at most 1).
	ExpiryJitter float64
	// MaxAttempts per credential fetch (default DefaultSTSAttempts; 1 for no
	// retry). AssumeRole is safe to repeat; only throttling, 5xx and network
	// errors are retried, with at most 2 s between attempts, because the
	// delivery retries the whole upload on its own schedule anyway.
	MaxAttempts int
	// HTTPClient for STS; the SDK's default otherwise.
	HTTPClient *http.Client
}

// AssumeRoleProvider obtains temporary credentials for a customer's role with
// sts:AssumeRole and caches them (aws.CredentialsCache): Retrieve calls STS
// only when there are none or they are within the expiry window (jittered)
// of their expiration, so they are renewed before they expire. The
// credentials it returns already carry that earlier expiration, so a second
// cache around it (S3Store adds one) renews at the same moment. Failures
// are *CredentialError. Safe for concurrent use; concurrent callers share
// one STS call.
type AssumeRoleProvider struct {
	roleARN     string
	externalID  string
	previousID  string      // "" unless a rotation is in progress
	onPrevious  atomic.Bool // the last credentials came with previousID
	sessionName string
	region      string
	principal   string
	duration    int32
	client      *sts.Client
	cache       *aws.CredentialsCache
}

// NewAssumeRoleProvider validates cfg and builds the STS client. It makes no
// request.
func NewAssumeRoleProvider(cfg AssumeRoleConfig) (*AssumeRoleProvider, error) {
	switch {
	case cfg.Base == nil:
		return nil, invalidf("assume role: Base credentials are required")
	case cfg.Region == "":
		return nil, invalidf("assume role: Region is required")
	case len(cfg.ExternalIDSecret) < MinExternalIDSecretBytes:
		return nil, invalidf("assume role: the external ID secret must have at least %d bytes", MinExternalIDSecretBytes)
	}
	if err := checkRoleARN(cfg.RoleARN); err != nil {
		return nil, err
	}
	if cfg.Duration == 0 {
		cfg.Duration = DefaultAssumeRoleDuration
	}
	if cfg.Duration < MinAssumeRoleDuration || cfg.Duration > MaxAssumeRoleDuration {
		return nil, invalidf("assume role: Duration %v is outside [%v, %v]", cfg.Duration, MinAssumeRoleDuration, MaxAssumeRoleDuration)
	}
	if cfg.ExpiryWindow == 0 {
		cfg.ExpiryWindow = DefaultExpiryWindow
	}
	if cfg.ExpiryWindow < 0 || cfg.ExpiryWindow >= cfg.Duration {
		return nil, invalidf("assume role: ExpiryWindow %v must be positive and shorter than Duration %v", cfg.ExpiryWindow, cfg.Duration)
	}
	switch {
	case cfg.ExpiryJitter == 0:
		cfg.ExpiryJitter = DefaultExpiryJitter
	case cfg.ExpiryJitter < 0:
		cfg.ExpiryJitter = 0
	case cfg.ExpiryJitter > 1:
		return nil, invalidf("assume role: ExpiryJitter %v is above 1", cfg.ExpiryJitter)
	}
	if cfg.MaxAttempts == 0 {
		cfg.MaxAttempts = DefaultSTSAttempts
	}
	if cfg.MaxAttempts < 0 {
		return nil, invalidf("assume role: MaxAttempts must not be negative")
	}
	externalID := ExternalID(cfg.ExternalIDSecret, cfg.ClientID)
	if !validExternalID(externalID) {
		return nil, invalidf("assume role: derived external ID is not valid for STS") // cannot happen
	}
	previousID := ""
	if len(cfg.PreviousExternalIDSecret) > 0 {
		if len(cfg.PreviousExternalIDSecret) < MinExternalIDSecretBytes {
			return nil, invalidf("assume role: the previous external ID secret must have at least %d bytes", MinExternalIDSecretBytes)
		}
		previousID = ExternalID(cfg.PreviousExternalIDSecret, cfg.ClientID)
	}
	base := cfg.Base
	if !aws.IsCredentialsProvider(base, (*aws.CredentialsCache)(nil)) {
		base = aws.NewCredentialsCache(base)
	}
	opts := sts.Options{
		Region:      cfg.Region,
		Credentials: baseProvider{base},
		Retryer: retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = cfg.MaxAttempts
			o.MaxBackoff = maxSTSBackoff
		}),
	}
	if cfg.STSEndpoint != "" {
		opts.BaseEndpoint = aws.String(cfg.STSEndpoint)
	}
	if cfg.HTTPClient != nil {
		opts.HTTPClient = cfg.HTTPClient
	}
	p := &AssumeRoleProvider{
		roleARN:     cfg.RoleARN,
		externalID:  externalID,
		previousID:  previousID,
		sessionName: "hitship-" + strconv.FormatInt(cfg.ClientID, 10),
		region:      cfg.Region,
		principal:   cfg.TrustedPrincipal,
		duration:    int32(cfg.Duration / time.Second),
		client:      sts.New(opts),
	}
	p.cache = aws.NewCredentialsCache(fetcher{p}, func(o *aws.CredentialsCacheOptions) {
		o.ExpiryWindow = cfg.ExpiryWindow
		o.ExpiryWindowJitterFrac = cfg.ExpiryJitter
	})
	return p, nil
}

// checkRoleARN accepts arn:{partition}:iam::{12 digits}:role/{path/}name
// with IAM's character set ([\w+=,.@-] and '/' in the path).
func checkRoleARN(arn string) error {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[1] == "" || strings.Trim(parts[1], "abcdefghijklmnopqrstuvwxyz-") != "" ||
		parts[2] != "iam" || parts[3] != "" ||
		len(parts[4]) != 12 || strings.Trim(parts[4], "0123456789") != "" ||
		!strings.HasPrefix(parts[5], "role/") || strings.HasSuffix(parts[5], "/") || len(arn) > 2048 ||
		strings.IndexFunc(parts[5], func(r rune) bool {
			return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_+=,.@-/", r))
		}) >= 0 {
		return invalidf("assume role: role ARN %q is not of the form arn:aws:iam::123456789012:role/NAME", arn)
	}
	return nil
}

// Retrieve returns cached temporary credentials, calling sts:AssumeRole when
// there are none or they are within the expiry window. It blocks for the
// STS call (bounded by ctx and the retryer).
func (p *AssumeRoleProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	return p.cache.Retrieve(ctx)
}

// RoleARN returns the role assumed.
func (p *AssumeRoleProvider) RoleARN() string { return p.roleARN }

// ExternalID returns the external ID sent (derived from the client id).
func (p *AssumeRoleProvider) ExternalID() string { return p.externalID }

// UsesPrevious reports whether the role was last assumed with the previous
// secret's external ID: its customer has not moved to the new one yet.
func (p *AssumeRoleProvider) UsesPrevious() bool { return p.onPrevious.Load() }

// SessionName returns the role session name, "hitship-{client}", which the
// customer sees in CloudTrail.
func (p *AssumeRoleProvider) SessionName() string { return p.sessionName }

// String describes the provider without secrets.
func (p *AssumeRoleProvider) String() string {
	return "assume role " + p.roleARN + " (external ID " + p.externalID + ", session " + p.sessionName + ")"
}

// fetcher is the uncached sts:AssumeRole call behind the cache.
type fetcher struct{ p *AssumeRoleProvider }

func (f fetcher) Retrieve(ctx context.Context) (aws.Credentials, error) {
	p := f.p
	assume := func(externalID string) (*sts.AssumeRoleOutput, error) {
		return p.client.AssumeRole(ctx, &sts.AssumeRoleInput{
			RoleArn:         aws.String(p.roleARN),
			RoleSessionName: aws.String(p.sessionName),
			ExternalId:      aws.String(externalID),
			DurationSeconds: aws.Int32(p.duration),
		})
	}
	out, err := assume(p.externalID)
	onPrevious := false
	if err != nil && p.previousID != "" && IsAssumeRoleDenied(p.classify(err)) {
		// A rotation of the server secret is in progress and this role
		// still trusts the previous external ID only.
		if prev, perr := assume(p.previousID); perr == nil {
			out, err, onPrevious = prev, nil, true
		}
	}
	if err != nil {
		return aws.Credentials{}, p.classify(err)
	}
	p.onPrevious.Store(onPrevious)
	c := out.Credentials
	if c == nil || c.AccessKeyId == nil || c.SecretAccessKey == nil || c.SessionToken == nil || c.Expiration == nil {
		return aws.Credentials{}, &CredentialError{
			Kind: KindSTS,
			Msg:  "STS answered AssumeRole for " + p.roleARN + " without complete credentials",
		}
	}
	return aws.Credentials{
		AccessKeyID:     *c.AccessKeyId,
		SecretAccessKey: *c.SecretAccessKey,
		SessionToken:    *c.SessionToken,
		Source:          "hitship-assume-role",
		CanExpire:       true,
		Expires:         *c.Expiration,
	}, nil
}

// baseProvider marks failures of hitship's own credentials, so that they
// are told apart from STS answers.
type baseProvider struct{ aws.CredentialsProvider }

type baseError struct{ err error }

func (e *baseError) Error() string { return "hitship's own credentials: " + e.err.Error() }
func (e *baseError) Unwrap() error { return e.err }

func (b baseProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := b.CredentialsProvider.Retrieve(ctx)
	if err != nil {
		return c, &baseError{err}
	}
	return c, nil
}

// classify turns an AssumeRole failure into a CredentialError. Context
// cancellation by the caller is returned wrapped, not classified.
func (p *AssumeRoleProvider) classify(err error) error {
	if errors.Is(err, context.Canceled) {
		return fmt.Errorf("sink: assume role %s: %w", p.roleARN, err)
	}
	var be *baseError
	if errors.As(err, &be) {
		return &CredentialError{
			Kind: KindBaseCredentials,
			Msg:  "hitship has no usable AWS identity of its own to call STS: " + be.err.Error(),
			Hint: "configure the default credential chain of this deployment (environment, web identity / IRSA, instance role); the integration is not at fault",
			Err:  be.err,
		}
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return &CredentialError{
			Kind: KindSTSUnreachable,
			Msg:  "no answer from STS in " + p.region + ": " + err.Error(),
			Hint: "check network access to sts." + p.region + ".amazonaws.com",
			Err:  err,
		}
	}
	code, msg := ae.ErrorCode(), ae.ErrorMessage()
	ce := &CredentialError{Code: code}
	principal := p.principal
	if principal == "" {
		principal = "hitship's AWS account"
	}
	switch code {
	case "AccessDenied":
		ce.Kind = KindAssumeRoleDenied
		ce.Msg = "STS refused to let hitship assume role " + p.roleARN + " (AccessDenied: " + msg + ")"
		ce.Hint = "the role's trust policy must allow principal " + principal +
			" to call sts:AssumeRole with the condition StringEquals sts:ExternalId = " + p.externalID +
			"; a missing or different external ID condition is the likely cause, or the role is not this customer's"
	case "InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken", "ExpiredTokenException",
		"IncompleteSignature", "MissingAuthenticationToken", "InvalidAccessKeyId":
		ce.Kind = KindBaseCredentials
		ce.Msg = "STS rejected hitship's own AWS credentials (" + code + ")"
		ce.Hint = "fix the deployment's AWS identity (default credential chain); the integration is not at fault"
	case "RegionDisabledException":
		ce.Kind = KindRegionDisabled
		ce.Msg = "STS is not activated in region " + p.region + " (" + code + ")"
		ce.Hint = "activate STS for " + p.region + " in the IAM account settings of the role's account, or check the integration's region"
	case "ValidationError", "MalformedPolicyDocument", "PackedPolicyTooLarge":
		ce.Kind = KindInvalidRole
		ce.Msg = "STS refused the AssumeRole request for " + p.roleARN + " (" + code + ": " + msg + ")"
		ce.Hint = "check role_arn; a session longer than the role's maximum, or than 1 hour when hitship itself runs under an assumed role, is refused"
	default:
		ce.Kind = KindSTS
		ce.Msg = "STS failed AssumeRole for " + p.roleARN + " (" + code + ": " + msg + ")"
	}
	return ce
}
