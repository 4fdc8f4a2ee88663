package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// TestBadFlags: -workers 0 failed with "0 shards of 60000 examples" after
// loading MNIST; -epochs 0 trained one epoch. Both are refused, naming
// the flag, before anything starts.
func TestBadFlags(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		flag            string
		workers, epochs int
	}{{"-workers", 0, 1}, {"-workers", -2, 1}, {"-epochs", 2, 0}, {"-epochs", 2, -1}} {
		err := run(context.Background(), c.workers, c.epochs, "", filepath.Join(dir, "store"), filepath.Join(dir, "l.png"), false)
		if err == nil || !strings.Contains(err.Error(), c.flag) {
			t.Errorf("%+v: %v", c, err)
		}
	}
}
