package service

import (
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"hitship/config"
	"hitship/consumer"
	"hitship/sink"
)

// routes maps client ids to their enabled integrations. Immutable once built, so
// partition workers read it without locks.
type routes struct {
	byClient map[int64][]*consumer.Target
	all      []*consumer.Target
}

var _ consumer.Routes = (*routes)(nil)

func (r *routes) Targets(clientID int64) []*consumer.Target { return r.byClient[clientID] }

// StoreFactory builds the object store of one integration; tests and the demo
// may replace it.
type StoreFactory func(cfg *config.Config, in config.Integration) (sink.Store, error)

// S3Stores builds S3 stores, with httpClient if not nil.
func S3Stores(httpClient *http.Client) StoreFactory {
	return func(cfg *config.Config, in config.Integration) (sink.Store, error) {
		endpoint, pathStyle := cfg.EndpointFor(in)
		var creds aws.CredentialsProvider
		switch {
		case in.Credentials.AccessKeyID != "":
			creds = credentials.NewStaticCredentialsProvider(in.Credentials.AccessKeyID, in.Credentials.SecretAccessKey(), "")
		case in.Credentials.RoleARN != "":
			return nil, fmt.Errorf("integration %s: role_arn is not supported by this build yet; use access keys", in.Name)
		default:
			return nil, fmt.Errorf("integration %s: no credentials", in.Name)
		}
		return sink.NewS3Store(sink.S3Config{
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

// buildRoutes makes the routing table of the enabled integrations.
func buildRoutes(cfg *config.Config, keys *sink.KeyTemplate, stores StoreFactory) (*routes, error) {
	r := &routes{byClient: map[int64][]*consumer.Target{}}
	for _, in := range cfg.Integrations {
		if !in.Enabled {
			continue
		}
		f, err := sink.ParseFormat(in.Format)
		if err != nil {
			return nil, fmt.Errorf("integrations %s: %w", in.Name, err)
		}
		c, err := sink.ParseCompression(in.Compression)
		if err != nil {
			return nil, fmt.Errorf("integrations %s: %w", in.Name, err)
		}
		st, err := stores(cfg, in)
		if err != nil {
			return nil, err
		}
		t := &consumer.Target{Name: in.Name, ClientID: in.ClientID, Prefix: in.Prefix, Format: f, Compression: c,
			Keys: keys, Store: st, IfNoneMatch: cfg.S3.IfNoneMatch}
		r.byClient[in.ClientID] = append(r.byClient[in.ClientID], t)
		r.all = append(r.all, t)
	}
	return r, nil
}
