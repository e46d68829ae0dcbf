package kafkaconn

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go/sasl"
	"github.com/twmb/franz-go/pkg/kgo"
	fsasl "github.com/twmb/franz-go/pkg/sasl"

	"hitship/config"
)

// isolateAWS gives the test an AWS identity of its own in the environment
// and no shared config files.
func isolateAWS(t *testing.T, region string) {
	dir := t.TempDir()
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID": "AKIDHITSHIPTEST", "AWS_SECRET_ACCESS_KEY": "hitship-test-secret-key", "AWS_SESSION_TOKEN": "",
		"AWS_REGION": region, "AWS_DEFAULT_REGION": "", "AWS_PROFILE": "",
		"AWS_CONFIG_FILE": filepath.Join(dir, "config"), "AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
		"AWS_EC2_METADATA_DISABLED": "true",
	} {
		t.Setenv(k, v)
	}
}

// TestAWSMSKIAM (issue #14): mechanism aws_msk_iam builds kafka-go's and
// franz-go's AWS_MSK_IAM mechanisms, which sign their first message with
// hitship's own AWS identity for the configured region (no broker: kfake
// does not do MSK IAM); without a region it is refused naming
// kafka.sasl.aws_region.
func TestAWSMSKIAM(t *testing.T) {
	tests := []struct {
		name      string
		envRegion string
		cfgRegion string
		wantErr   string
	}{
		{name: "region in the config", cfgRegion: "eu-west-1"},
		{name: "region from AWS_REGION", envRegion: "eu-west-1"},
		{name: "no region", wantErr: "kafka.sasl.aws_region"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateAWS(t, tt.envRegion)
			k := config.Default().Kafka
			k.SASL = config.SASL{Mechanism: config.SASLAWSMSKIAM, AWSRegion: tt.cfgRegion}
			mech, _, err := Auth(k)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("Auth = %v, want an error naming %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if mech.Name() != "AWS_MSK_IAM" {
				t.Fatalf("kafka-go mechanism %q", mech.Name())
			}
			ctx := sasl.WithMetadata(context.Background(), &sasl.Metadata{Host: "b-1.hits.abc123.c2.kafka.eu-west-1.amazonaws.com", Port: 9098})
			_, first, err := mech.Start(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"kafka-cluster:Connect", "AKIDHITSHIPTEST", "eu-west-1/kafka-cluster/aws4_request"} {
				if !strings.Contains(string(first), want) {
					t.Errorf("kafka-go's first message does not hold %q: %s", want, first)
				}
			}
			if strings.Contains(string(first), "hitship-test-secret-key") {
				t.Error("kafka-go's first message holds the secret key")
			}

			opts, err := FranzOpts(k, nil)
			if err != nil {
				t.Fatal(err)
			}
			cl, err := kgo.NewClient(append(opts, kgo.SeedBrokers("127.0.0.1:9"))...)
			if err != nil {
				t.Fatal(err)
			}
			defer cl.Close()
			mechs, _ := cl.OptValue(kgo.SASL).([]fsasl.Mechanism)
			if len(mechs) != 1 || mechs[0].Name() != "AWS_MSK_IAM" {
				t.Fatalf("franz-go mechanisms %v", mechs)
			}
			_, ffirst, err := mechs[0].Authenticate(context.Background(), "b-1.hits.abc123.c2.kafka.eu-west-1.amazonaws.com:9098")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(ffirst), "AKIDHITSHIPTEST") || !strings.Contains(string(ffirst), "kafka-cluster:Connect") {
				t.Errorf("franz-go's first message: %s", ffirst)
			}
		})
	}
}
