package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadFlags: -train 0 ran every trial on no images and failed with "no
// numeric parameter with two values to plot"; it is refused, naming the
// flag, before anything starts.
func TestBadFlags(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []int{0, -5} {
		err := run(context.Background(), n, filepath.Join(dir, "store"), filepath.Join(dir, "s.png"), os.Stdout)
		if err == nil || !strings.Contains(err.Error(), "-train") {
			t.Errorf("-train %d: %v", n, err)
		}
	}
}
