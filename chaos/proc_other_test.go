//go:build !linux

package chaos

import "os/exec"

// setDeathSignal is Linux-only; elsewhere t.Cleanup's kill is all there is.
func setDeathSignal(*exec.Cmd) {}
