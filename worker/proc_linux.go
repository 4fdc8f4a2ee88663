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

// maxRSS returns the process's peak resident memory in bytes.
func maxRSS() int64 {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return ru.Maxrss * 1024
}
