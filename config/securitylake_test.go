package config

import (
	"strings"
	"testing"
)

// lakeBase is validBase with its integration a Security Lake custom source.
func lakeBase() Config {
	c := validBase()
	c.Parking = Parking{Bucket: "ops-staging", Region: "us-east-1", Prefix: "hitship/"}
	c.ExternalID.SecretEnv = "EXT"
	in := &c.Integrations[0]
	in.Type, in.Format, in.Prefix = TypeSecurityLake, FormatOCSFParquet, ""
	in.Region, in.Bucket = "us-east-1", "aws-security-data-lake-us-east-1-abcdef"
	in.SecurityLake = SecurityLake{SourceName: "wallarm"}
	in.Credentials = Credentials{RoleARN: "arn:aws:iam::210987654321:role/AmazonSecurityLake-Provider-wallarm-us-east-1"}
	return c
}

// TestSecurityLakeValidation: a security_lake integration takes Security
// Lake's terms (ocsf-parquet, no compression, no prefix or manifest, a
// role, staged delivery, a source name of at most 20 characters, an
// account), each refused by field with its fix; security_lake on another
// type is refused.
func TestSecurityLakeValidation(t *testing.T) {
	in0 := func(f func(*Integration)) func(*Config) { return func(c *Config) { f(&c.Integrations[0]) } }
	for _, tt := range []struct {
		name    string
		mutate  func(*Config)
		wantKey string
	}{
		{name: "valid", mutate: func(*Config) {}},
		{name: "valid with a version and an account", mutate: in0(func(in *Integration) {
			in.SecurityLake.SourceVersion, in.SecurityLake.AccountID = "1.0", "123456789012"
		})},
		{name: "unknown type", mutate: in0(func(in *Integration) { in.Type = "lake" }), wantKey: "integrations[0].type"},
		{name: "no source name", mutate: in0(func(in *Integration) { in.SecurityLake.SourceName = "" }), wantKey: "integrations[0].security_lake.source_name"},
		{name: "source name of 21 characters", mutate: in0(func(in *Integration) { in.SecurityLake.SourceName = strings.Repeat("w", 21) }), wantKey: "integrations[0].security_lake.source_name"},
		{name: "source name with a slash", mutate: in0(func(in *Integration) { in.SecurityLake.SourceName = "a/b" }), wantKey: "integrations[0].security_lake.source_name"},
		{name: "bad version", mutate: in0(func(in *Integration) { in.SecurityLake.SourceVersion = ".." }), wantKey: "integrations[0].security_lake.source_version"},
		{name: "bad account", mutate: in0(func(in *Integration) { in.SecurityLake.AccountID = "12345" }), wantKey: "integrations[0].security_lake.account_id"},
		{name: "ndjson", mutate: in0(func(in *Integration) { in.Format = FormatNDJSON }), wantKey: "integrations[0].format"},
		{name: "gzip", mutate: in0(func(in *Integration) { in.Compression = CompressionGzip }), wantKey: "integrations[0].compression"},
		{name: "prefix", mutate: in0(func(in *Integration) { in.Prefix = "x/" }), wantKey: "integrations[0].prefix"},
		{name: "manifest", mutate: in0(func(in *Integration) { in.Manifest = true }), wantKey: "integrations[0].manifest"},
		{name: "access key", mutate: in0(func(in *Integration) {
			in.Credentials = Credentials{AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKeyEnv: "ACME_SECRET"}
		}), wantKey: "integrations[0].credentials"},
		{name: "access key, no account", mutate: in0(func(in *Integration) {
			in.Credentials = Credentials{AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKeyEnv: "ACME_SECRET"}
		}), wantKey: "integrations[0].security_lake.account_id"},
		{name: "not staged", mutate: func(c *Config) { c.Delivery.Staged = ptr(false) }, wantKey: "integrations[0].type"},
		{name: "security_lake on an s3 integration", mutate: func(c *Config) {
			c.Integrations[0] = validBase().Integrations[0]
			c.Integrations[0].SecurityLake.SourceName = "wallarm"
		}, wantKey: "integrations[0].security_lake"},
		{name: "two sources of one lake", mutate: func(c *Config) {
			in := c.Integrations[0]
			in.Name, in.ClientID = "other", 8
			c.Integrations = append(c.Integrations, in)
		}, wantKey: "integrations[1].prefix"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := lakeBase()
			tt.mutate(&c)
			ps := c.Validate(env(baseEnv))
			if tt.wantKey == "" {
				if len(ps) != 0 {
					t.Fatalf("unexpected problems: %v", ps)
				}
				return
			}
			if p, ok := findProblem(ps, tt.wantKey); !ok || p.Fix == "" {
				t.Fatalf("want a problem with a fix at %q, got %v", tt.wantKey, ps)
			}
		})
	}
}

// TestSecurityLakeKeyPrefix: the partitions above the day, with the role's
// account unless one is set; other integrations keep their prefix.
func TestSecurityLakeKeyPrefix(t *testing.T) {
	in := lakeBase().Integrations[0]
	if got, want := in.KeyPrefix(), "ext/wallarm/region=us-east-1/accountId=210987654321/"; got != want {
		t.Errorf("KeyPrefix = %q, want %q", got, want)
	}
	in.SecurityLake.SourceVersion, in.SecurityLake.AccountID = "2.0", "123456789012"
	if got, want := in.KeyPrefix(), "ext/wallarm/2.0/region=us-east-1/accountId=123456789012/"; got != want {
		t.Errorf("KeyPrefix = %q, want %q", got, want)
	}
	s3 := validBase().Integrations[0]
	if got := s3.KeyPrefix(); got != "wallarm/" {
		t.Errorf("s3 KeyPrefix = %q", got)
	}
}

// TestSecurityLakeDefaultFormat: a security_lake integration that names no
// format is ocsf-parquet; one that names another is refused.
func TestSecurityLakeDefaultFormat(t *testing.T) {
	base := `
kafka: {brokers: ["127.0.0.1:9092"]}
parking: {bucket: ops-staging, region: us-east-1}
external_id: {secret_env: EXT, account_id: "111122223333"}
integrations:
  - name: lake
    type: security_lake
    client_id: 7
    region: us-east-1
    bucket: aws-security-data-lake-us-east-1-abcdef
    security_lake: {source_name: wallarm}
    credentials: {role_arn: "arn:aws:iam::210987654321:role/AmazonSecurityLake-Provider-wallarm-us-east-1"}
`
	c, ps := Parse([]byte(base), env(baseEnv))
	if len(ps) != 0 {
		t.Fatalf("problems: %v", ps)
	}
	if got := c.Integrations[0].Format; got != FormatOCSFParquet {
		t.Errorf("format = %q, want %q", got, FormatOCSFParquet)
	}
	_, ps = Parse([]byte(base+"    format: json\n"), env(baseEnv))
	if _, ok := findProblem(ps, "integrations[0].format"); !ok {
		t.Errorf("format json with security_lake: want a problem, got %v", ps)
	}
}
