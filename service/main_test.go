package service_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves goroutines behind: members
// started in-process (startMember) must stop every worker, ticker, delivery,
// dead-letter writer and HTTP server they started, and the harness must close
// its Kafka, S3 and Redis.
func TestMain(m *testing.M) {
	if err := os.Setenv(testSecretEnv, testSecret); err != nil {
		panic(err)
	}
	goleak.VerifyTestMain(m)
}
