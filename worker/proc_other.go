//go:build !linux

package worker

import "os/exec"

// setProcAttr does nothing here: a worker notices its driver's death when
// its pipe closes.
func setProcAttr(cmd *exec.Cmd) {}

// lowerThreadPriority does nothing here.
func lowerThreadPriority() {}

// maxRSS is not measured here.
func maxRSS() int64 { return 0 }
