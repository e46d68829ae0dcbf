package config

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestRegionTypos: a region that is not an AWS region is a problem with the
// nearest one suggested, unless an endpoint of an S3-compatible store is set
// (any name signs there). Before, anything shaped like a region passed
// ("eu-west-7", "us-east-3"), and so did nothing else ("auto" of R2, even with
// an endpoint).
func TestRegionTypos(t *testing.T) {
	lookup := WithLookupEnv(func(string) (string, bool) { return "secret-value-0123456789", true })
	tests := []struct {
		name    string
		mutate  func(*Config)
		key     string // "" for no region problem
		suggest string
	}{
		{name: "known region", mutate: func(c *Config) {}},
		{name: "missing dash", mutate: func(c *Config) { c.Integrations[0].Region = "eu-central1" }, key: "integrations[0].region", suggest: "eu-central-1"},
		{name: "no such number", mutate: func(c *Config) { c.Integrations[0].Region = "us-east-3" }, key: "integrations[0].region", suggest: "us-east-1"},
		{name: "doubled letter", mutate: func(c *Config) { c.Integrations[0].Region = "eu-wesst-1" }, key: "integrations[0].region", suggest: "eu-west-1"},
		{name: "nothing near", mutate: func(c *Config) { c.Integrations[0].Region = "mars-north-9" }, key: "integrations[0].region"},
		{name: "upper case", mutate: func(c *Config) { c.Integrations[0].Region = "EU-WEST-1" }, key: "integrations[0].region"},
		{name: "sovereign cloud", mutate: func(c *Config) { c.Integrations[0].Region = "eusc-de-east-1" }},
		{name: "any name with the shared endpoint", mutate: func(c *Config) {
			c.S3.Endpoint, c.Integrations[0].Region = "https://r2.example", "auto"
		}},
		{name: "any name with its own endpoint", mutate: func(c *Config) {
			c.Integrations[0].Endpoint, c.Integrations[0].Region = "http://minio:9000", "garage"
		}},
		{name: "not a name even with an endpoint", mutate: func(c *Config) {
			c.S3.Endpoint, c.Integrations[0].Region = "https://r2.example", "us east"
		}, key: "integrations[0].region"},
		{name: "role with an endpoint still needs STS's region", mutate: func(c *Config) {
			in := &c.Integrations[0]
			c.S3.Endpoint, in.Region = "https://r2.example", "eu-centrall-1"
			in.Credentials = Credentials{RoleARN: "arn:aws:iam::123456789012:role/hitship"}
			c.ExternalID.SecretEnv = "EXT"
		}, key: "integrations[0].region", suggest: "eu-central-1"},
		{name: "role with an endpoint and an STS endpoint", mutate: func(c *Config) {
			in := &c.Integrations[0]
			c.S3.Endpoint, in.Region = "https://r2.example", "auto"
			in.Credentials = Credentials{RoleARN: "arn:aws:iam::123456789012:role/hitship"}
			c.ExternalID.SecretEnv, c.ExternalID.STSEndpoint = "EXT", "https://sts.example"
		}},
		{name: "parking typo", mutate: func(c *Config) {
			c.Parking = Parking{Bucket: "park-bucket", Region: "us-wst-2"}
		}, key: "parking.region", suggest: "us-west-2"},
		{name: "parking with an endpoint", mutate: func(c *Config) {
			c.Parking = Parking{Bucket: "park-bucket", Region: "local", Endpoint: "http://minio:9000"}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			in := DefaultIntegration()
			in.Name, in.ClientID, in.Region, in.Bucket = "acme", 1, "eu-west-1", "acme-hits"
			in.Credentials = Credentials{AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKeyEnv: "S3"}
			c.Integrations = []Integration{in}
			tt.mutate(&c)
			ps := c.Validate(lookup)
			var got []Problem
			for _, p := range ps {
				if strings.HasSuffix(p.Key, ".region") {
					got = append(got, p)
				}
			}
			if tt.key == "" {
				if len(got) > 0 || len(ps) > 0 {
					t.Fatalf("problems: %v", ps)
				}
				return
			}
			if len(got) != 1 || got[0].Key != tt.key {
				t.Fatalf("region problems %v, want one on %s", got, tt.key)
			}
			if tt.suggest != "" && !strings.Contains(got[0].Fix, `did you mean "`+tt.suggest+`"`) {
				t.Errorf("fix %q does not suggest %s", got[0].Fix, tt.suggest)
			}
		})
	}
}

// TestRegionsMatchSDK: the list of regions is the one of the AWS SDK in go.mod.
func TestRegionsMatchSDK(t *testing.T) {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/aws/aws-sdk-go-v2").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(strings.TrimSpace(string(out)), "internal", "endpoints", "awsrulesfn", "partitions.json"))
	if err != nil {
		t.Skipf("the SDK's partitions.json: %v", err)
	}
	var doc struct {
		Partitions []struct {
			Regions map[string]json.RawMessage `json:"regions"`
		} `json:"partitions"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var sdk []string
	for _, p := range doc.Partitions {
		for r := range p.Regions {
			if !strings.HasSuffix(r, "-global") {
				sdk = append(sdk, r)
			}
		}
	}
	slices.Sort(sdk)
	ours := slices.Sorted(slices.Values(awsRegions))
	if !slices.Equal(ours, sdk) {
		t.Errorf("config's AWS regions differ from the SDK's:\nours %v\nsdk  %v", ours, sdk)
	}
}
