package config

import (
	"errors"
	"strings"
	"testing"
)

// TestStagedValidation: staged delivery needs a staging bucket, takes the
// staged default key template in place of the per-partition default, checks
// a configured template with the staged rules, and manifests need it.
func TestStagedValidation(t *testing.T) {
	staged := func(s string) error {
		if !strings.Contains(s, "{late}") {
			return errors.New("lacks {late}")
		}
		return nil
	}
	perPartition := func(s string) error {
		if strings.Contains(s, "{late}") {
			return errors.New("{late} is staged only")
		}
		return nil
	}
	withBucket := func(c *Config) {
		c.Parking = Parking{Bucket: "ops-staging", Region: "us-east-1", Prefix: "hitship/"}
	}
	for _, tt := range []struct {
		name    string
		mutate  func(*Config)
		wantKey string
	}{
		{name: "staged with a bucket", mutate: func(c *Config) { c.Delivery.Staged = ptr(true); withBucket(c) }},
		{name: "staged without a bucket", mutate: func(c *Config) { c.Delivery.Staged = ptr(true) }, wantKey: "parking.bucket"},
		{name: "staged with a per-partition template", mutate: func(c *Config) {
			c.Delivery.Staged = ptr(true)
			withBucket(c)
			c.S3.KeyTemplate = "{prefix}x_{window_start}_{partition}_{first_offset}_{digest}.{ext}"
		}, wantKey: "s3.key_template"},
		{name: "staged template without staged delivery", mutate: func(c *Config) { c.S3.KeyTemplate = DefaultStagedKeyTemplate }, wantKey: "s3.key_template"},
		{name: "manifest without staged delivery", mutate: func(c *Config) { c.Integrations[0].Manifest = true }, wantKey: "integrations[0].manifest"},
		{name: "manifest with a bucket, staged unset", mutate: func(c *Config) { withBucket(c); c.Integrations[0].Manifest = true }},
		{name: "ocsf with staged delivery", mutate: func(c *Config) { withBucket(c); c.Integrations[0].Format = FormatOCSF }},
		{name: "ocsf-json with staged delivery", mutate: func(c *Config) { withBucket(c); c.Integrations[0].Format = FormatOCSFJSON }},
		{name: "parquet with staged delivery", mutate: func(c *Config) { withBucket(c); c.Integrations[0].Format = FormatParquet }},
		{name: "parquet without staged delivery", mutate: func(c *Config) { c.Integrations[0].Format = FormatParquet }, wantKey: "integrations[0].format"},
		{name: "parquet gzipped", mutate: func(c *Config) {
			withBucket(c)
			c.Integrations[0].Format, c.Integrations[0].Compression = FormatParquet, CompressionGzip
		}, wantKey: "integrations[0].compression"},
		{name: "ocsf-parquet with staged delivery", mutate: func(c *Config) { withBucket(c); c.Integrations[0].Format = FormatOCSFParquet }},
		{name: "ocsf-parquet without staged delivery", mutate: func(c *Config) { c.Integrations[0].Format = FormatOCSFParquet }, wantKey: "integrations[0].format"},
		{name: "ocsf-parquet gzipped", mutate: func(c *Config) {
			withBucket(c)
			c.Integrations[0].Format, c.Integrations[0].Compression = FormatOCSFParquet, CompressionGzip
		}, wantKey: "integrations[0].compression"},
		{name: "ocsf without staged delivery", mutate: func(c *Config) { c.Integrations[0].Format = FormatOCSF }, wantKey: "integrations[0].format"},
		{name: "ocsf-json with staged off", mutate: func(c *Config) {
			withBucket(c)
			c.Delivery.Staged = ptr(false)
			c.Integrations[0].Format = FormatOCSFJSON
		}, wantKey: "integrations[0].format"},
		{name: "manifest with staged off", mutate: func(c *Config) {
			withBucket(c)
			c.Delivery.Staged = ptr(false)
			c.Integrations[0].Manifest = true
		}, wantKey: "integrations[0].manifest"},
		{name: "per-partition template with a bucket, staged off", mutate: func(c *Config) {
			withBucket(c)
			c.Delivery.Staged = ptr(false)
			c.S3.KeyTemplate = "{prefix}x_{window_start}_{partition}_{first_offset}_{digest}.{ext}"
		}},
		{name: "manifest with staged delivery", mutate: func(c *Config) { c.Delivery.Staged = ptr(true); withBucket(c); c.Integrations[0].Manifest = true }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := validBase()
			tt.mutate(&c)
			ps := c.Validate(env(baseEnv), WithKeyTemplate(perPartition), WithStagedKeyTemplate(staged))
			if tt.wantKey == "" {
				if len(ps) != 0 {
					t.Fatalf("unexpected problems: %v", ps)
				}
				return
			}
			p, ok := findProblem(ps, tt.wantKey)
			if !ok || p.Fix == "" {
				t.Fatalf("want a problem with a fix at %q, got %v", tt.wantKey, ps)
			}
		})
	}
	c := validBase()
	c.Delivery.Staged = ptr(true)
	if got := c.EffectiveKeyTemplate(); got != DefaultStagedKeyTemplate {
		t.Errorf("staged with the default template: %q", got)
	}
	c.S3.KeyTemplate = "{prefix}hitlogs-{window_start}{late}.{ext}"
	if got := c.EffectiveKeyTemplate(); got != c.S3.KeyTemplate {
		t.Errorf("staged with a template of its own: %q", got)
	}
}

func ptr[T any](v T) *T { return &v }

// TestStagedByDefaultWithABucket: unset, delivery.staged follows the staging
// bucket: on with parking.bucket, off without; set, it decides.
func TestStagedByDefaultWithABucket(t *testing.T) {
	c := validBase()
	if c.StagedDelivery() {
		t.Error("staged without a staging bucket")
	}
	c.Parking = Parking{Bucket: "ops-staging", Region: "us-east-1", Prefix: "hitship/"}
	if !c.StagedDelivery() || c.EffectiveKeyTemplate() != DefaultStagedKeyTemplate {
		t.Errorf("with a staging bucket: staged %v, template %q", c.StagedDelivery(), c.EffectiveKeyTemplate())
	}
	c.Delivery.Staged = ptr(false)
	if c.StagedDelivery() || c.EffectiveKeyTemplate() != DefaultKeyTemplate {
		t.Errorf("staged: false: staged %v, template %q", c.StagedDelivery(), c.EffectiveKeyTemplate())
	}
}
