//go:build unix

package job

import (
	"errors"
	"syscall"
)

// processGone reports whether no process has this PID on this machine.
func processGone(pid int) bool {
	if pid <= 0 {
		return false
	}
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
