package parking

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// This file holds what `hitship forget` and DELETE /v1/integrations/{name}
// need of the parking bucket: the objects kept for an integration that is no
// longer configured, and deleting them (only with --purge / ?purge=true).

// IntegrationObjects lists the keys kept for integration: parked (waiting
// for a retry worker) and dead (dead letters). It lists the two prefixes
// (ListObjectsV2: the operator's own bucket, full access).
func (s *Store) IntegrationObjects(ctx context.Context, integration string) (parked, dead []string, err error) {
	if integration == "" {
		return nil, nil, fmt.Errorf("parking: list without an integration: %w", ErrInvalid)
	}
	if parked, err = s.list(ctx, s.ParkedKey(integration, "")); err != nil {
		return nil, nil, err
	}
	if dead, err = s.list(ctx, s.DeadKey(integration, "")); err != nil {
		return nil, nil, err
	}
	return parked, dead, nil
}

func (s *Store) list(ctx context.Context, prefix string) ([]string, error) {
	var keys []string
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: aws.String(s.cfg.Bucket), Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return keys, fmt.Errorf("parking: list %s: %w", prefix, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	return keys, nil
}

// DeleteIntegration deletes every object kept for integration (parked and
// dead) and returns how many of each it deleted. A failure stops it; what
// was deleted stays deleted.
func (s *Store) DeleteIntegration(ctx context.Context, integration string) (parked, dead int, err error) {
	pk, dk, err := s.IntegrationObjects(ctx, integration)
	if err != nil {
		return 0, 0, err
	}
	for _, k := range pk {
		if err := s.Delete(ctx, k); err != nil {
			return parked, dead, err
		}
		parked++
	}
	for _, k := range dk {
		if err := s.Delete(ctx, k); err != nil {
			return parked, dead, err
		}
		dead++
	}
	return parked, dead, nil
}
