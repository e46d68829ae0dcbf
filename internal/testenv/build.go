package testenv

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// BuildLDFlags returns the -ldflags value that names the build the way the
// Makefile does (hitship/internal/buildinfo): the commit of the git checkout
// at repo and `git describe --tags --always --dirty`. Without git, or outside
// a checkout, it returns "" (the binary then reports revision "unknown").
func BuildLDFlags(ctx context.Context, repo string) string {
	git := func(args ...string) string {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = repo
		out, err := cmd.Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}
	rev := git("rev-parse", "HEAD")
	if rev == "" {
		return ""
	}
	flags := "-X hitship/internal/buildinfo.revision=" + rev
	if v := git("describe", "--tags", "--always", "--dirty"); v != "" && !strings.ContainsAny(v, " \t'\"") {
		flags += " -X hitship/internal/buildinfo.version=" + v
	}
	return flags
}

// BuildHitship builds ./cmd/hitship of the module at repo into out, named as
// the Makefile names it (BuildLDFlags), for the tests and benchmarks that run
// the real binary. extra go build flags (such as "-race") come first.
func BuildHitship(ctx context.Context, repo, out string, extra ...string) error {
	args := append([]string{"build"}, extra...)
	if fl := BuildLDFlags(ctx, repo); fl != "" {
		args = append(args, "-ldflags", fl)
	}
	args = append(args, "-o", out, "./cmd/hitship")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = repo
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, b)
	}
	return nil
}
