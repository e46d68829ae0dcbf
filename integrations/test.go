package integrations

import (
	"context"
	"fmt"
	"time"

	"hitship/config"
	"hitship/sink"
	s3sink "hitship/sink/s3"
)

// Test is the console's "Test integration" for integration name of cfg: it
// writes the two sample hits to its bucket as wallarm_hits_{now}_test.{ext}
// (a security_lake integration: an object without records, in its source's
// partitions; see s3sink.TestParams.SecurityLake)
// with a store from stores (nil: S3Stores(nil)) and answers success or what
// is wrong in plain words. The error is for an unknown integration or a bad
// format or compression. Blocks for the upload; safe for concurrent use.
func Test(ctx context.Context, cfg *config.Config, name string, stores StoreFactory) (s3sink.Answer, error) {
	if stores == nil {
		stores = S3Stores(nil)
	}
	for _, in := range cfg.Integrations {
		if in.Name != name {
			continue
		}
		f, err := sink.ParseFormat(in.Format)
		if err != nil {
			return s3sink.Answer{}, err
		}
		c, err := sink.ParseCompression(in.Compression)
		if err != nil {
			return s3sink.Answer{}, err
		}
		st, err := stores(cfg, in)
		if err != nil {
			return s3sink.Explain(err), nil
		}
		_, err = s3sink.TestWrite(ctx, st, s3sink.TestParams{Prefix: in.KeyPrefix(), Format: f, Compression: c, Now: time.Now(),
			SecurityLake: in.IsSecurityLake()})
		return s3sink.Explain(err), nil
	}
	return s3sink.Answer{}, fmt.Errorf("no integration named %q", name)
}
