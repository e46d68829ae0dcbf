package config

import (
	"strings"
	"testing"
)

// TestPastedSecretsNotEchoed: a secret pasted into a *_env or *_file key (or a
// private key into a TLS key_file) is refused with a problem on that key that
// says what to do, and no problem prints the pasted value. Before, the env case
// printed `invalid environment variable name "<the secret>"` and the file case
// `open <the secret>: no such file or directory`, in check-config, at start-up
// and in the SIGHUP reload log.
func TestPastedSecretsNotEchoed(t *testing.T) {
	const (
		awsSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY" // not a variable name
		b64Token  = "dGhpc0lzQVRva2VuVGhhdExvb2tzTGlrZUFOYW1l"  // a valid, unset variable name
		pemKey    = "-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----"
	)
	in0 := func(f func(*Integration)) func(*Config) {
		return func(c *Config) {
			in := DefaultIntegration()
			in.Name, in.ClientID, in.Region, in.Bucket = "acme", 1, "eu-west-1", "acme-hits"
			in.Credentials.AccessKeyID = "AKIAIOSFODNN7EXAMPLE"
			f(&in)
			c.Integrations = []Integration{in}
		}
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		value  string
		key    string
	}{
		{name: "s3 secret in secret_access_key_env", value: awsSecret, key: "integrations[0].credentials.secret_access_key_env",
			mutate: in0(func(in *Integration) { in.Credentials.SecretAccessKeyEnv = awsSecret })},
		{name: "token that is a valid name", value: b64Token, key: "integrations[0].credentials.secret_access_key_env",
			mutate: in0(func(in *Integration) { in.Credentials.SecretAccessKeyEnv = b64Token })},
		{name: "s3 secret in secret_access_key_file", value: awsSecret, key: "integrations[0].credentials.secret_access_key_file",
			mutate: in0(func(in *Integration) { in.Credentials.SecretAccessKeyFile = awsSecret })},
		{name: "kafka password", value: awsSecret, key: "kafka.sasl.password_env",
			mutate: func(c *Config) { c.Kafka.SASL = SASL{Mechanism: SASLPlain, Username: "u", PasswordEnv: awsSecret} }},
		{name: "kafka password file", value: awsSecret, key: "kafka.sasl.password_file",
			mutate: func(c *Config) { c.Kafka.SASL = SASL{Mechanism: SASLPlain, Username: "u", PasswordFile: awsSecret} }},
		{name: "redis password", value: awsSecret, key: "redis.password_env", mutate: func(c *Config) { c.Redis.PasswordEnv = awsSecret }},
		{name: "redis password file", value: awsSecret, key: "redis.password_file", mutate: func(c *Config) { c.Redis.PasswordFile = awsSecret }},
		{name: "admin token", value: b64Token + "==", key: "http.admin_token_env", mutate: func(c *Config) { c.HTTP.AdminTokenEnv = b64Token + "==" }},
		{name: "admin token file", value: b64Token, key: "http.admin_token_file", mutate: func(c *Config) { c.HTTP.AdminTokenFile = b64Token }},
		{name: "external id secret", value: awsSecret, key: "external_id.secret_env", mutate: func(c *Config) { c.ExternalID.SecretEnv = awsSecret }},
		{name: "parking secret", value: awsSecret, key: "parking.credentials.secret_access_key_env", mutate: func(c *Config) {
			c.Parking = Parking{Bucket: "park-bucket", Region: "us-east-1"}
			c.Parking.Credentials.AccessKeyID, c.Parking.Credentials.SecretAccessKeyEnv = "AKIAIOSFODNN7EXAMPLE", awsSecret
		}},
		{name: "private key in redis tls key_file", value: "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg", key: "redis.tls.key_file", mutate: func(c *Config) {
			c.Redis.TLS = TLS{Enabled: true, CertFile: "/nonexistent/cert.pem", KeyFile: pemKey}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.mutate(&c)
			ps := c.Validate(WithLookupEnv(func(string) (string, bool) { return "", false }))
			p, ok := findProblem(ps, tt.key)
			if !ok {
				t.Fatalf("no problem on %s: %v", tt.key, ps)
			}
			if tt.key != "redis.tls.key_file" && !strings.Contains(p.Fix, "write that") {
				t.Errorf("the fix does not say to name a variable or file instead: %s", p)
			}
			if all := AsError(ps).Error(); strings.Contains(all, tt.value) {
				t.Fatalf("the pasted value is printed:\n%s", all)
			}
		})
	}

	t.Run("a conventional name is still named", func(t *testing.T) {
		c := Default()
		c.Redis.PasswordEnv = "HITSHIP_REDIS_PASSWORD"
		ps := c.Validate(WithLookupEnv(func(string) (string, bool) { return "", false }))
		if p, ok := findProblem(ps, "redis.password_env"); !ok || !strings.Contains(p.String(), "HITSHIP_REDIS_PASSWORD is not set") {
			t.Fatalf("problem %v does not name the unset variable", ps)
		}
	})
}
