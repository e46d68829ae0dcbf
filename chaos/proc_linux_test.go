package chaos

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes the kernel kill the child when the test process dies,
// so a crashed test leaves no hitship behind.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
