package worker

import (
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"
)

// setProcAttr makes the kernel kill a worker when its driver dies.
func setProcAttr(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}

// lowerThreadPriority lowers the calling OS thread's scheduling priority
// (nice 10); the caller has locked its goroutine to the thread.
func lowerThreadPriority() {
	_ = unix.Setpriority(unix.PRIO_PROCESS, unix.Gettid(), 10)
}
