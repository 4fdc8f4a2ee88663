//go:build !race

// Counting the Go sources (over 100 MB) is slow under the race detector;
// make test runs this file in its race-free run.

package main

import (
	"context"
	"path/filepath"
	"testing"
)

// TestGoSources counts $(go env GOROOT)/src, real text on every Go
// machine, and checks every count against a single-process count.
func TestGoSources(t *testing.T) {
	dir := t.TempDir()
	o := options{store: filepath.Join(dir, "store"), shuffle: "file://" + filepath.Join(dir, "shuffle"), maxLine: 4 << 20, check: true}
	if err := run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
}
