package integrations

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"hitship/config"
	"hitship/sink"
	s3sink "hitship/sink/s3"
)

// StoreFactory builds the object store of one integration; tests and the demo
// may replace it.
type StoreFactory func(cfg *config.Config, in config.Integration) (sink.Store, error)

// S3Stores builds S3 stores, with httpClient if not nil. Integrations with
// access keys sign with them; integrations with role_arn assume the role with
// sts:AssumeRole and the external ID derived for their client, from hitship's own
// identity (the default AWS credential chain, loaded once when first needed).
func S3Stores(httpClient *http.Client) StoreFactory {
	var (
		once    sync.Once
		base    aws.CredentialsProvider
		baseErr error
	)
	return func(cfg *config.Config, in config.Integration) (sink.Store, error) {
		endpoint, pathStyle := cfg.EndpointFor(in)
		var creds aws.CredentialsProvider
		switch {
		case in.Credentials.AccessKeyID != "":
			p, err := s3sink.NewStaticProvider(in.Credentials.AccessKeyID, in.Credentials.SecretAccessKey())
			if err != nil {
				return nil, fmt.Errorf("integration %s: %w", in.Name, err)
			}
			creds = p
		case in.Credentials.RoleARN != "":
			once.Do(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				base, baseErr = s3sink.DefaultBaseCredentials(ctx)
			})
			if baseErr != nil {
				return nil, fmt.Errorf("integration %s: hitship's own AWS identity: %w", in.Name, baseErr)
			}
			p, err := s3sink.NewAssumeRoleProvider(s3sink.AssumeRoleConfig{
				Base: base, RoleARN: in.Credentials.RoleARN, ClientID: in.ClientID,
				ExternalIDSecret: []byte(cfg.ExternalID.Secret()), PreviousExternalIDSecret: []byte(cfg.ExternalID.PreviousSecret()), Region: in.Region,
				STSEndpoint: cfg.ExternalID.STSEndpoint, TrustedPrincipal: cfg.ExternalID.AccountID,
				HTTPClient: httpClient,
			})
			if err != nil {
				return nil, fmt.Errorf("integration %s: %w", in.Name, err)
			}
			creds = p
		default:
			return nil, fmt.Errorf("integration %s: no credentials", in.Name)
		}
		return s3sink.NewS3Store(s3sink.S3Config{
			Bucket:             in.Bucket,
			Region:             in.Region,
			Endpoint:           endpoint,
			PathStyle:          pathStyle,
			Credentials:        creds,
			HTTPClient:         httpClient,
			IfNoneMatch:        cfg.S3.IfNoneMatch,
			MultipartThreshold: int64(cfg.S3.MultipartThreshold),
			PartSize:           int64(cfg.S3.PartSize),
			AllowAbort:         cfg.S3.AllowAbort,
		})
	}
}
