package remote

import (
	"bytes"
	"context"
	"debug/elf"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/job"
)

// machines maps GOARCH to the ELF machine a binary for it is built for.
var machines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

// ErrWrongBinary reports a binary that cannot run on the remote workers:
// another machine, or dynamically linked.
var ErrWrongBinary = errors.New("remote: the binary cannot run on the workers")

// CheckBinary reports whether the file at path is an executable that
// remote linux workers of GOARCH goarch run as it is: a static (no
// interpreter) linux ELF for that machine.
func CheckBinary(path, goarch string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%w: %s is not a linux executable: %v", ErrWrongBinary, path, err)
	}
	defer f.Close()
	want, ok := machines[goarch]
	if !ok {
		return fmt.Errorf("remote: unknown GOARCH %q (want amd64 or arm64)", goarch)
	}
	if f.Machine != want {
		return fmt.Errorf("%w: %s is built for %v, the workers run linux/%s", ErrWrongBinary, path, f.Machine, goarch)
	}
	if f.Type != elf.ET_EXEC && f.Type != elf.ET_DYN {
		return fmt.Errorf("%w: %s is not an executable (%v)", ErrWrongBinary, path, f.Type)
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return fmt.Errorf("%w: %s is dynamically linked (built with cgo?); build it with CGO_ENABLED=0", ErrWrongBinary, path)
		}
	}
	return nil
}

// BinaryFor returns a binary of the driver's program that remote linux
// workers of GOARCH goarch run: exe itself when it is a static
// linux/<goarch> executable, else one rebuilt from the main package the
// binary's build information names, with CGO_ENABLED=0 and without symbol
// table and debug information, in the module found from the working
// directory. It says on w when it rebuilds.
func BinaryFor(ctx context.Context, exe, goarch, workDir string, w io.Writer) (string, error) {
	cerr := CheckBinary(exe, goarch)
	if cerr == nil {
		return exe, nil
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok || bi.Path == "" || bi.Path == "command-line-arguments" || strings.HasSuffix(bi.Path, ".test") {
		return "", fmt.Errorf("%v; and it cannot be rebuilt: its build information names no main package", cerr)
	}
	if _, ok := machines[goarch]; !ok {
		return "", fmt.Errorf("remote: unknown GOARCH %q (want amd64 or arm64)", goarch)
	}
	// The main module's source tree: the driver must run inside it.
	list := exec.CommandContext(ctx, "go", "list", "-f", "{{.Dir}}", bi.Path)
	list.Dir = workDir
	dirOut, err := list.Output()
	if err != nil {
		return "", fmt.Errorf("%v; and it cannot be rebuilt: the source of %s is not found from %s (run the driver in its module, or build it with GOOS=linux GOARCH=%s CGO_ENABLED=0): %v", cerr, bi.Path, workDir, goarch, err)
	}
	out := filepath.Join(os.TempDir(), fmt.Sprintf("wren-lambda-%s-%s-%d", filepath.Base(bi.Path), goarch, os.Getpid()))
	fmt.Fprintf(w, "wren: %v\nwren: rebuilding %s for linux/%s with CGO_ENABLED=0\n", cerr, bi.Path, goarch)
	// Without the symbol table and DWARF (-s -w): a quarter less to upload
	// and fetch per container; panics keep their stack traces.
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w", "-o", out, bi.Path)
	build.Dir = strings.TrimSpace(string(dirOut))
	build.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+goarch, "CGO_ENABLED=0")
	if msg, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("remote: rebuild %s for linux/%s failed (does it need cgo?): %v\n%s", bi.Path, goarch, err, bytes.TrimSpace(msg))
	}
	if err := CheckBinary(out, goarch); err != nil {
		return "", err
	}
	return out, nil
}

// Upload puts the binary at path in the store under its hash
// (job.BinaryKey), unless it is there already, and returns the hash.
func Upload(ctx context.Context, st blob.Store, path string) (string, error) {
	hash, err := job.HashFile(path)
	if err != nil {
		return "", fmt.Errorf("remote: hash %s: %w", path, err)
	}
	key := job.BinaryKey(hash)
	if _, err := st.Stat(ctx, key); err == nil {
		return hash, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	fi, _ := f.Stat()
	err = st.Put(ctx, key, f, blob.PutOptions{IfNotExist: true, Size: fi.Size()})
	if err != nil && !errors.Is(err, blob.ErrExists) {
		return "", fmt.Errorf("remote: upload the job's binary: %w", err)
	}
	return hash, nil
}

// Code is the binary a remote backend's workers run for the driver's jobs:
// chosen once (Options' executable, or the driver's own, rebuilt for
// linux/GOARCH when it is not a static linux executable for it), uploaded
// by its hash to each job's store. It is safe for concurrent use.
type Code struct {
	// Executable is the binary to run; "" means the driver's own
	// (os.Executable).
	Executable string
	// GOARCH is the workers' architecture (amd64 or arm64).
	GOARCH string
	// Stderr receives the notice of a rebuild; nil means os.Stderr.
	Stderr io.Writer

	mu   sync.Mutex
	path string
}

// Prepare makes the binary available in st (Upload) and returns its hash.
func (c *Code) Prepare(ctx context.Context, st blob.Store) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.path == "" {
		exe := c.Executable
		if exe == "" {
			var err error
			if exe, err = os.Executable(); err != nil {
				return "", fmt.Errorf("remote: find own executable: %w", err)
			}
			w := c.Stderr
			if w == nil {
				w = os.Stderr
			}
			wd, _ := os.Getwd()
			if exe, err = BinaryFor(ctx, exe, c.GOARCH, wd, w); err != nil {
				return "", err
			}
		} else if err := CheckBinary(exe, c.GOARCH); err != nil {
			return "", err
		}
		c.path = exe
	}
	return Upload(ctx, st, c.path)
}
