package main

import (
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// testOnly are the packages that exist for tests alone. The production binary
// must link none of them: what `hitship demo` runs on (the in-process Kafka, S3
// and Redis) is product code in internal/embedded.
var testOnly = []string{
	"hitship/internal/testenv", // and everything under it (fakests, s3policy)
	"hitship/sink/storetest",
}

// TestBinaryLinksNoTestHarness: `go list -deps` of the binary names no
// test-only package.
func TestBinaryLinksNoTestHarness(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", "hitship/cmd/hitship").Output()
	if err != nil {
		var stderr []byte
		if ee := (*exec.ExitError)(nil); errors.As(err, &ee) {
			stderr = ee.Stderr
		}
		t.Fatalf("go list -deps hitship/cmd/hitship: %v\n%s", err, stderr)
	}
	deps := strings.Fields(string(out))
	if len(deps) == 0 || deps[len(deps)-1] != "hitship/cmd/hitship" {
		t.Fatalf("go list -deps printed no dependency list ending in hitship/cmd/hitship:\n%s", out)
	}
	for _, d := range deps {
		for _, bad := range testOnly {
			if d == bad || strings.HasPrefix(d, bad+"/") {
				t.Errorf("the production binary links %s, a test-only package", d)
			}
		}
	}
}
