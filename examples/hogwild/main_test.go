//go:build !race

// Training on MNIST is ten times slower under the race detector; make test
// runs this file in its race-free run.

package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/wrenml/wren"
)

func TestMain(m *testing.M) {
	wren.Init()
	os.Exit(m.Run())
}

func TestHogwildExample(t *testing.T) {
	dir := t.TempDir()
	png := filepath.Join(dir, "loss.png")
	if err := run(context.Background(), 2, 1, "", filepath.Join(dir, "store"), png, false); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(png); err != nil || fi.Size() < 5000 {
		t.Fatalf("plot: %v, %v", fi, err)
	}
	// The example removes its shards: nothing but job objects is left.
	left, _ := os.ReadDir(filepath.Join(dir, "store", "mnist-shards"))
	for _, e := range left {
		if sub, _ := os.ReadDir(filepath.Join(dir, "store", "mnist-shards", e.Name())); len(sub) > 0 {
			t.Fatalf("shards left: %v", sub)
		}
	}
}
