// Package buildinfo names the build of hitship: its version, the VCS revision
// it was built from and the Go version, for `hitship version`, the start-up log
// and the hitship_build_info metric.
//
// Every build the project makes sets the version and the revision at link time
// (`-ldflags "-X hitship/internal/buildinfo.revision=<commit> -X
// hitship/internal/buildinfo.version=<git describe>"`): the Makefile from git,
// the Dockerfile from its REVISION and VERSION build arguments (.git is not in
// the image's build context), the tests and benchmarks that build the binary
// through testenv.BuildHitship. The Go toolchain's own VCS stamp (-buildvcs) is
// the fallback; it is off on some machines (GOFLAGS=-buildvcs=false) and does
// not see git worktrees. Without either, the revision is "unknown".
//
// Get only reads; it is safe for concurrent use.
package buildinfo

import (
	"runtime"
	"runtime/debug"
)

// Set with -ldflags -X; "" when the build did not.
var (
	version  string
	revision string
)

// Unknown is what a field says when the build did not record it.
const Unknown = "unknown"

// Info describes the running binary.
type Info struct {
	Version   string // e.g. "v1.2.0", "3f2a9c1-dirty", or the module version "(devel)"
	Revision  string // the full commit hash, or Unknown
	GoVersion string // e.g. "go1.26.8"
}

// Get returns the build's description: the values set at link time, else the
// Go toolchain's stamp, else Unknown.
func Get() Info {
	in := Info{Version: version, Revision: revision, GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if in.Version == "" {
			in.Version = bi.Main.Version
		}
		for _, kv := range bi.Settings {
			if kv.Key == "vcs.revision" && in.Revision == "" {
				in.Revision = kv.Value
			}
		}
	}
	if in.Version == "" {
		in.Version = Unknown
	}
	if in.Revision == "" {
		in.Revision = Unknown
	}
	return in
}

// String is the one line `hitship version` prints:
// "hitship v1.2.0 (revision 3f2a9c1…, go1.26.8)".
func (i Info) String() string {
	return "hitship " + i.Version + " (revision " + i.Revision + ", " + i.GoVersion + ")"
}
