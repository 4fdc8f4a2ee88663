package testenv

import (
	"bytes"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Proxy is a loopback TCP proxy in front of a server, able to drop a
// connection right after it forwarded a request: the server acts on the
// request, the client never sees the answer.
type Proxy struct {
	// Addr is the proxy's address (127.0.0.1:port).
	Addr   string
	target string
	ln     net.Listener

	mu      sync.Mutex
	trigger []byte // drop after forwarding a read that contains it
	drops   atomic.Int64
	conns   map[net.Conn]struct{}
}

// StartProxy listens on a free loopback port and forwards every connection
// to target, until the test ends.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: ln.Addr().String(), target: target, ln: ln, conns: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(p.Close)
	return p
}

// DropAfter arms the proxy: the next client read containing trigger is
// forwarded to the server, then the connection is closed both ways before
// any answer can come back (trigger is matched ignoring case). It fires once.
func (p *Proxy) DropAfter(trigger string) {
	p.mu.Lock()
	p.trigger = bytes.ToLower([]byte(trigger))
	p.mu.Unlock()
}

// Drops returns how many connections the proxy dropped on a trigger.
func (p *Proxy) Drops() int { return int(p.drops.Load()) }

// Close stops the proxy and its connections.
func (p *Proxy) Close() {
	p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
}

func (p *Proxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[s] = struct{}{}, struct{}{}
		p.mu.Unlock()
		go p.pipe(c, s)
		go func() { io.Copy(c, s); c.Close() }()
	}
}

// pipe forwards client to server, watching for the trigger.
func (p *Proxy) pipe(c, s net.Conn) {
	defer c.Close()
	defer s.Close()
	buf := make([]byte, 64<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			p.mu.Lock()
			fire := p.trigger != nil && bytes.Contains(bytes.ToLower(buf[:n]), p.trigger)
			if fire {
				p.trigger = nil
			}
			p.mu.Unlock()
			if fire {
				// Cut the client off first, so no answer can reach it, then
				// let the server act on the request.
				c.Close()
				p.drops.Add(1)
				s.Write(buf[:n])
				time.Sleep(50 * time.Millisecond)
				return
			}
			if _, werr := s.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}
