package awslambda

import (
	"bytes"
	"context"
	"crypto/sha256"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/job"
)

// Architectures a function may run on, as Lambda names them.
const (
	ArchX86 = "x86_64"
	ArchARM = "arm64"
)

// goArch maps a Lambda architecture to GOARCH.
func goArch(arch string) (string, error) {
	switch arch {
	case ArchX86:
		return "amd64", nil
	case ArchARM:
		return "arm64", nil
	}
	return "", fmt.Errorf("awslambda: unknown architecture %q (want %s or %s)", arch, ArchX86, ArchARM)
}

// ErrWrongBinary reports a binary that cannot run on the function: another
// machine, or dynamically linked.
var ErrWrongBinary = errors.New("awslambda: the binary cannot run on the function")

// CheckBinary reports whether the file at path is an executable the
// function's architecture runs on Amazon Linux 2023 as it is: a static
// (no interpreter) linux ELF for that machine.
func CheckBinary(path, arch string) error {
	f, err := elf.Open(path)
	if err != nil {
		return fmt.Errorf("%w: %s is not a linux executable: %v", ErrWrongBinary, path, err)
	}
	defer f.Close()
	want := map[string]elf.Machine{ArchX86: elf.EM_X86_64, ArchARM: elf.EM_AARCH64}[arch]
	if f.Machine != want {
		return fmt.Errorf("%w: %s is built for %v, the function runs %s", ErrWrongBinary, path, f.Machine, arch)
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

// binaryFor returns a binary of the driver's program that runs on arch:
// exe itself when it is a static linux/<arch> executable, else one rebuilt
// from the main package the binary's build information names, with
// CGO_ENABLED=0, in the module found from the working directory. It says on
// w when it rebuilds.
func binaryFor(ctx context.Context, exe, arch, workDir string, w io.Writer) (string, error) {
	cerr := CheckBinary(exe, arch)
	if cerr == nil {
		return exe, nil
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok || bi.Path == "" || bi.Path == "command-line-arguments" || strings.HasSuffix(bi.Path, ".test") {
		return "", fmt.Errorf("%v; and it cannot be rebuilt: its build information names no main package", cerr)
	}
	goarch, err := goArch(arch)
	if err != nil {
		return "", err
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
	build := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", out, bi.Path)
	build.Dir = strings.TrimSpace(string(dirOut))
	build.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+goarch, "CGO_ENABLED=0")
	if msg, err := build.CombinedOutput(); err != nil {
		return "", fmt.Errorf("awslambda: rebuild %s for linux/%s failed (does it need cgo?): %v\n%s", bi.Path, goarch, err, bytes.TrimSpace(msg))
	}
	if err := CheckBinary(out, arch); err != nil {
		return "", err
	}
	return out, nil
}

// fileHash returns the hex SHA-256 of a file.
func fileHash(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// upload puts the binary at path in the store under its hash, unless it is
// there already, and returns the hash.
func upload(ctx context.Context, st blob.Store, path string) (string, error) {
	hash, err := fileHash(path)
	if err != nil {
		return "", fmt.Errorf("awslambda: hash %s: %w", path, err)
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
		return "", fmt.Errorf("awslambda: upload the job's binary: %w", err)
	}
	return hash, nil
}
