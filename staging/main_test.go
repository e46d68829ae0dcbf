package staging_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine behind, such as
// an opener of segments ahead of the merge, or a segment's unclosed body.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
