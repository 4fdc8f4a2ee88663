package worker

import (
	"os"

	"golang.org/x/sys/unix"
)

// newCapturer redirects fds 1 and 2 to a pipe while a call computes; nil
// if the descriptors cannot be duplicated.
func newCapturer() *capturer {
	r, w, err := os.Pipe()
	if err != nil {
		return nil
	}
	out1, err1 := unix.Dup(1)
	out2, err2 := unix.Dup(2)
	if err1 != nil || err2 != nil {
		r.Close()
		w.Close()
		return nil
	}
	c := &capturer{r: r, w: w, out: os.NewFile(uintptr(out2), "stderr"), marks: make(chan struct{})}
	c.redir = func() {
		unix.Dup3(int(w.Fd()), 1, 0)
		unix.Dup3(int(w.Fd()), 2, 0)
	}
	c.restore = func() {
		unix.Dup3(out1, 1, 0)
		unix.Dup3(out2, 2, 0)
	}
	go c.read()
	return c
}
