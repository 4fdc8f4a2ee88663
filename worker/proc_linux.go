package worker

import (
	"os/exec"
	"syscall"
)

// setProcAttr makes the kernel kill a worker when its driver dies.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
