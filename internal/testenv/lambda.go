package testenv

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RIEVersion is the AWS Lambda Runtime Interface Emulator the tests use;
// make deps installs it.
const RIEVersion = "github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie@v0.0.0-20261030222936-bef5c4ba774d"

// Emulator is an AWS Lambda Runtime Interface Emulator running a bootstrap
// binary on loopback.
type Emulator struct {
	// URL is the invoke endpoint's base URL (function name "function").
	URL string
	cmd *exec.Cmd
	out *syncBuffer
}

// Output returns what the emulator and the function printed so far.
func (e *Emulator) Output() string { return e.out.String() }

// Kill stops the emulator.
func (e *Emulator) Kill() {
	e.cmd.Process.Kill()
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

// RIEPath finds aws-lambda-rie on PATH or in the Go bin directory. A
// missing emulator fails the test: CI installs it (make deps), and a skip
// would hide that.
func RIEPath(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("aws-lambda-rie"); err == nil {
		return p
	}
	gobin := os.Getenv("GOBIN")
	if gobin == "" {
		out, _ := exec.Command("go", "env", "GOPATH").Output()
		gobin = filepath.Join(strings.TrimSpace(string(out)), "bin")
	}
	p := filepath.Join(gobin, "aws-lambda-rie")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("aws-lambda-rie not found (install it: go install %s, or make deps)", RIEVersion)
	}
	return p
}

// StartEmulators starts n emulators, each running bootstrap with env added
// to this process's environment, on free loopback ports, and stops them
// when the test ends.
func StartEmulators(t testing.TB, n int, bootstrap string, env ...string) []*Emulator {
	t.Helper()
	rie := RIEPath(t)
	var out []*Emulator
	for range n {
		p1, p2 := freePort(t), freePort(t)
		e := &Emulator{URL: "http://127.0.0.1:" + strconv.Itoa(p1), out: &syncBuffer{}}
		e.cmd = exec.Command(rie, "--runtime-interface-emulator-address", "127.0.0.1:"+strconv.Itoa(p1),
			"--runtime-api-address", "127.0.0.1:"+strconv.Itoa(p2), bootstrap)
		e.cmd.Env = append(os.Environ(), env...)
		e.cmd.Stdout, e.cmd.Stderr = e.out, e.out
		e.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
		if err := e.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			// The emulator, the runtime and its worker: the whole group.
			syscall.Kill(-e.cmd.Process.Pid, syscall.SIGKILL)
			e.cmd.Wait()
		})
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(p1), 100*time.Millisecond)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("emulator on port %d did not start: %s", p1, e.out.String())
			}
			time.Sleep(10 * time.Millisecond)
		}
		out = append(out, e)
	}
	return out
}

func freePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// URLs returns the emulators' base URLs.
func URLs(es []*Emulator) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.URL
	}
	return out
}
