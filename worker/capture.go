package worker

import (
	"bytes"
	"io"
	"os"
	"sync"
)

// MaxLog is the most of a call's output kept in the store: the tail.
const MaxLog = 64 << 10

// logTailLines is how many last lines of a failed call's output its status
// carries (and its CallError shows).
const logTailLines = 20

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max  int
	b    []byte
	lost int64
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.lost += int64(over)
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

// bytes returns the kept output, with a note of what was cut.
func (t *tailBuffer) bytes() []byte {
	if t.lost == 0 {
		return t.b
	}
	return append([]byte("[... the first bytes were cut: the output is capped at the last 64 KiB ...]\n"), t.b...)
}

// lastLines returns the last n lines of b.
func lastLines(b []byte, n int) string {
	b = bytes.TrimRight(b, "\n")
	i := len(b)
	for k := 0; k < n && i > 0; k++ {
		j := bytes.LastIndexByte(b[:i], '\n')
		if j < 0 {
			i = 0
			break
		}
		i = j
	}
	if i > 0 {
		i++
	}
	s := string(b[i:])
	if len(s) > 4096 {
		s = s[len(s)-4096:]
	}
	return s
}

// capturer collects what a worker process writes to its stdout and stderr
// while each call computes (one call computes at a time), and passes it on
// to the process's real output as well.
type capturer struct {
	mu      sync.Mutex
	cur     *tailBuffer
	r, w    *os.File
	out     io.Writer // the real output
	marks   chan struct{}
	restore func()
	redir   func()
}

// marker ends a call's output in the pipe.
const marker = "\x00wren-end-of-call\x00\n"

// start begins capturing a call's output.
func (c *capturer) start() {
	c.mu.Lock()
	c.cur = &tailBuffer{max: MaxLog}
	c.mu.Unlock()
	c.redir()
}

// stop ends the capture and returns the call's output.
func (c *capturer) stop() []byte {
	c.restore()
	// Everything the call wrote is in the pipe before the marker.
	c.w.WriteString(marker)
	<-c.marks
	c.mu.Lock()
	defer c.mu.Unlock()
	b := c.cur.bytes()
	c.cur = nil
	return b
}

func (c *capturer) read() {
	buf := make([]byte, 32<<10)
	var pending []byte
	for {
		n, err := c.r.Read(buf)
		pending = append(pending, buf[:n]...)
		for {
			i := bytes.Index(pending, []byte(marker))
			chunk := pending
			if i >= 0 {
				chunk = pending[:i]
			} else if k := len(pending) - len(marker); k > 0 {
				chunk = pending[:k] // keep a possible partial marker
			} else {
				chunk = nil
			}
			if len(chunk) > 0 {
				c.out.Write(chunk)
				c.mu.Lock()
				if c.cur != nil {
					c.cur.Write(chunk)
				}
				c.mu.Unlock()
			}
			pending = pending[len(chunk):]
			if i < 0 {
				break
			}
			pending = pending[len(marker):]
			c.marks <- struct{}{}
		}
		if err != nil {
			return
		}
	}
}
