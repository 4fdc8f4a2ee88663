// Package redisserver starts and stops redis-server processes on free
// loopback ports, for tests, benchmarks and drivers that have no Redis
// configured.
package redisserver

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Options configure a server. Zero values take the documented defaults.
type Options struct {
	// Binary is the redis-server executable; "" means "redis-server" on PATH.
	Binary string
	// Dir holds the server's files; "" means a new temporary directory,
	// removed by Stop.
	Dir string
	// AppendOnly turns on the append-only file with fsync on every write, so
	// a killed server restarts (Restart) with every acknowledged write.
	AppendOnly bool
	// Password, when set, is required of every client (requirepass). It is
	// written to a config file readable by the owner only, never passed on
	// the command line where other local users could read it.
	Password string
	// Args are extra arguments ("--maxmemory", "1gb").
	Args []string
	// TLSCert, TLSKey and TLSCA (PEM files) make the server listen with TLS
	// only (client certificates not required).
	TLSCert, TLSKey, TLSCA string
}

// Server is a running redis-server.
type Server struct {
	// Addr is host:port on 127.0.0.1.
	Addr string
	opts Options
	port int
	cmd  *exec.Cmd
	done chan struct{}
	tmp  bool
}

// Start launches a redis-server on a free port of 127.0.0.1 and waits until
// it answers PING.
func Start(ctx context.Context, opts Options) (*Server, error) {
	if opts.Binary == "" {
		opts.Binary = "redis-server"
	}
	s := &Server{opts: opts}
	if s.opts.Dir == "" {
		d, err := os.MkdirTemp("", "wren-redis-") // mode 0700
		if err != nil {
			return nil, err
		}
		s.opts.Dir, s.tmp = d, true
	}
	// A port found free can be taken before the server binds it (and a
	// cluster node also binds port+10000, its bus): try a few.
	cluster := slices.Contains(opts.Args, "--cluster-enabled")
	var err error
	for range 5 {
		if s.port, err = freePort(cluster); err != nil {
			break
		}
		if err = s.launch(ctx); err == nil {
			return s, nil
		}
		if !strings.Contains(err.Error(), "Address already in use") {
			break
		}
	}
	s.cleanup()
	return nil, err
}

// freePort returns a port of 127.0.0.1 free now; with bus, port+10000 is
// free too (a cluster node's bus port).
func freePort(bus bool) (int, error) {
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, fmt.Errorf("redisserver: find a free port: %w", err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		if !bus {
			l.Close()
			return port, nil
		}
		if port+10000 <= 65535 {
			if b, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port+10000)); err == nil {
				b.Close()
				l.Close()
				return port, nil
			}
		}
		l.Close()
	}
	return 0, fmt.Errorf("redisserver: no free port with a free cluster bus port")
}

func (s *Server) launch(ctx context.Context) error {
	s.Addr = "127.0.0.1:" + strconv.Itoa(s.port)
	portArgs := []string{"--port", strconv.Itoa(s.port)}
	if s.opts.TLSCert != "" {
		portArgs = []string{"--port", "0", "--tls-port", strconv.Itoa(s.port), "--tls-cert-file", s.opts.TLSCert,
			"--tls-key-file", s.opts.TLSKey, "--tls-ca-cert-file", s.opts.TLSCA, "--tls-auth-clients", "no"}
	}
	var args []string
	if s.opts.Password != "" {
		conf := filepath.Join(s.opts.Dir, "redis.conf")
		if err := os.WriteFile(conf, []byte("requirepass \""+s.opts.Password+"\"\n"), 0o600); err != nil {
			return fmt.Errorf("redisserver: %w", err)
		}
		args = append(args, conf) // the config file comes first
	}
	args = append(args, portArgs...)
	args = append(args, "--bind", "127.0.0.1", "--save", "", "--dir", s.opts.Dir,
		"--logfile", filepath.Join(s.opts.Dir, "redis.log"), "--daemonize", "no", "--protected-mode", "no")
	if s.opts.AppendOnly {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	args = append(args, s.opts.Args...)
	cmd := exec.Command(s.opts.Binary, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("redisserver: start %s: %w (install it: apt-get install redis-server)", s.opts.Binary, err)
	}
	s.cmd = cmd
	s.done = make(chan struct{})
	go func() { cmd.Wait(); close(s.done) }()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if err := ping(s.Addr, s.opts.TLSCert != ""); err == nil {
			return nil
		}
		select {
		case <-s.done:
			return fmt.Errorf("redisserver: redis-server on %s exited at start: %s", s.Addr, s.logTail())
		case <-ctx.Done():
			s.Kill()
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	s.Kill()
	return fmt.Errorf("redisserver: redis-server on %s did not answer within 10s: %s", s.Addr, s.logTail())
}

// ping sends an inline PING and expects +PONG (or an auth error, which also
// proves the server is up).
func ping(addr string, useTLS bool) error {
	var c net.Conn
	var err error
	if useTLS {
		// Readiness only: the certificate is the test's own.
		c, err = tls.DialWithDialer(&net.Dialer{Timeout: 200 * time.Millisecond}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	} else {
		c, err = net.DialTimeout("tcp", addr, 200*time.Millisecond)
	}
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.HasPrefix(line, "+PONG") || strings.HasPrefix(line, "-NOAUTH") || strings.HasPrefix(line, "-AUTH") {
		return nil
	}
	if strings.HasPrefix(line, "-LOADING") {
		return errors.New("loading")
	}
	return fmt.Errorf("unexpected reply %q", line)
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.opts.Dir, "redis.log"))
	if len(b) > 600 {
		b = b[len(b)-600:]
	}
	return strings.TrimSpace(string(b))
}

// Kill stops the server with SIGKILL, as a crash would, and waits for it.
func (s *Server) Kill() {
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		<-s.done
	}
}

// Restart starts the server again on the same port and directory (with
// AppendOnly, with the data it had acknowledged).
func (s *Server) Restart(ctx context.Context) error {
	s.Kill()
	return s.launch(ctx)
}

// Stop kills the server and removes a temporary directory.
func (s *Server) Stop() {
	s.Kill()
	s.cleanup()
}

func (s *Server) cleanup() {
	if s.tmp {
		os.RemoveAll(s.opts.Dir)
	}
}
