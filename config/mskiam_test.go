package config

import (
	"strings"
	"testing"
)

// TestValidateAWSMSKIAM: mechanism aws_msk_iam needs TLS and no user name or
// password (hitship's own AWS identity signs the login); aws_region belongs
// to it alone.
func TestValidateAWSMSKIAM(t *testing.T) {
	tests := []struct {
		name    string
		sasl    SASL
		tls     bool
		wantKey string // "" means: no problem at all
		msg     string
	}{
		{name: "valid", sasl: SASL{Mechanism: SASLAWSMSKIAM, AWSRegion: "eu-west-1"}, tls: true},
		{name: "valid, region from the environment", sasl: SASL{Mechanism: SASLAWSMSKIAM}, tls: true},
		{name: "without TLS", sasl: SASL{Mechanism: SASLAWSMSKIAM}, wantKey: "kafka.tls.enabled", msg: "aws_msk_iam"},
		{name: "with a password", sasl: SASL{Mechanism: SASLAWSMSKIAM, Username: "u", PasswordEnv: "ACME_SECRET"}, tls: true,
			wantKey: "kafka.sasl.mechanism", msg: "credentials are given"},
		{name: "region for another mechanism", sasl: SASL{Mechanism: SASLPlain, Username: "u", PasswordEnv: "ACME_SECRET", AWSRegion: "eu-west-1"},
			wantKey: "kafka.sasl.aws_region", msg: "only for mechanism aws_msk_iam"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validBase()
			c.Kafka.SASL, c.Kafka.TLS.Enabled = tt.sasl, tt.tls
			ps := c.Validate(env(baseEnv))
			if tt.wantKey == "" {
				if len(ps) > 0 {
					t.Fatalf("unexpected problems: %v", ps)
				}
				return
			}
			p, ok := findProblem(ps, tt.wantKey)
			if !ok {
				t.Fatalf("no problem for key %q in %v", tt.wantKey, ps)
			}
			if !strings.Contains(p.Msg, tt.msg) || p.Fix == "" {
				t.Fatalf("problem %v: want message containing %q and a fix", p, tt.msg)
			}
		})
	}
}
