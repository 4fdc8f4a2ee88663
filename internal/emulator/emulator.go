// Package emulator runs AWS Lambda Runtime Interface Emulators and an
// S3-compatible server (gofakes3) on loopback, for the Lambda tests and
// wren bench lambda.
package emulator

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// RIEVersion is the emulator the project uses; make deps installs it.
const RIEVersion = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d"

// Emulator is a Runtime Interface Emulator running a bootstrap binary.
type Emulator struct {
	// URL is the invoke endpoint's base URL (function name "function").
	URL string
	cmd *exec.Cmd
	out *syncBuffer
}

// Output returns what the emulator and the function printed so far.
func (e *Emulator) Output() string { return e.out.String() }

// Stop kills the emulator, the runtime and its worker processes.
func (e *Emulator) Stop() {
	syscall.Kill(-e.cmd.Process.Pid, syscall.SIGKILL)
	e.cmd.Wait()
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// RIEPath finds aws-lambda-rie on PATH or in the Go bin directory.
func RIEPath() (string, error) {
	if p, err := exec.LookPath("aws-lambda-rie"); err == nil {
		return p, nil
	}
	gobin := os.Getenv("GOBIN")
	if gobin == "" {
		out, _ := exec.Command("go", "env", "GOPATH").Output()
		gobin = filepath.Join(strings.TrimSpace(string(out)), "bin")
	}
	p := filepath.Join(gobin, "aws-lambda-rie")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("aws-lambda-rie not found (install it: go install %s, or make deps)", RIEVersion)
	}
	return p, nil
}

// Start starts n emulators running bootstrap, with env added to this
// process's environment, on free loopback ports; Stop each when done.
func Start(n int, bootstrap string, env ...string) ([]*Emulator, error) {
	rie, err := RIEPath()
	if err != nil {
		return nil, err
	}
	var out []*Emulator
	fail := func(err error) ([]*Emulator, error) {
		for _, e := range out {
			e.Stop()
		}
		return nil, err
	}
	for range n {
		p1, err := freePort()
		if err != nil {
			return fail(err)
		}
		p2, err := freePort()
		if err != nil {
			return fail(err)
		}
		e := &Emulator{URL: "http://127.0.0.1:" + strconv.Itoa(p1), out: &syncBuffer{}}
		e.cmd = exec.Command(rie, "--runtime-interface-emulator-address", "127.0.0.1:"+strconv.Itoa(p1),
			"--runtime-api-address", "127.0.0.1:"+strconv.Itoa(p2), bootstrap)
		e.cmd.Env = append(os.Environ(), env...)
		e.cmd.Stdout, e.cmd.Stderr = e.out, e.out
		e.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
		if err := e.cmd.Start(); err != nil {
			return fail(err)
		}
		out = append(out, e)
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(p1), 100*time.Millisecond)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				return fail(fmt.Errorf("emulator on port %d did not start: %s", p1, e.out.String()))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	return out, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// URLs returns the emulators' base URLs.
func URLs(es []*Emulator) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.URL
	}
	return out
}

// S3 is an in-memory S3-compatible server (gofakes3) on loopback.
type S3 struct {
	// Endpoint is its base URL.
	Endpoint string
	srv      *httptest.Server
}

// StartS3 starts the server; Close stops it. It accepts any credentials.
func StartS3() *S3 {
	faker := gofakes3.New(s3mem.New(), gofakes3.WithLogger(gofakes3.DiscardLog()))
	srv := httptest.NewServer(faker.Server())
	return &S3{Endpoint: srv.URL, srv: srv}
}

// Close stops the server.
func (s *S3) Close() { s.srv.Close() }

// Build builds a main package as a static linux executable (CGO_ENABLED=0)
// at out, from dir, with go build's flags before the package.
func Build(dir, pkg, out string, flags ...string) error {
	cmd := exec.Command("go", slices.Concat([]string{"build", "-o", out}, flags, []string{pkg})...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return errors.New(string(msg))
	}
	return nil
}
