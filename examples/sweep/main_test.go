//go:build !race

// Fitting on MNIST is ten times slower under the race detector; make test
// runs this file in its race-free run.

package main

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/wrenml/wren"
)

func TestMain(m *testing.M) {
	wren.Init()
	os.Exit(m.Run())
}

func TestSweepExample(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "sweep.png")
	f, err := os.Create(filepath.Join(dir, "out.txt"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := run(context.Background(), 2000, filepath.Join(dir, "store"), out, f); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{out, filepath.Join(dir, "sweep-sgd.png"), filepath.Join(dir, "sweep-tpe.png"), filepath.Join(dir, "sweep-pbt.png")} {
		if fi, err := os.Stat(p); err != nil || fi.Size() < 5000 {
			t.Fatalf("%s: %v %v", p, fi, err)
		}
	}
	b, _ := os.ReadFile(filepath.Join(dir, "out.txt"))
	if len(b) < 500 {
		t.Fatalf("output:\n%s", b)
	}
	// PBT's epochs stay within the ASHA sweep's, and both say so.
	m := regexp.MustCompile(`epochs run: (\d+), best accuracy [0-9.]+ \(the ASHA sweep: (\d+) epochs`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no PBT summary in:\n%s", b)
	}
	if pbt, asha := atoi(t, m[1]), atoi(t, m[2]); pbt != 20 || pbt > asha {
		t.Errorf("PBT ran %d epochs (want 20), ASHA %d", pbt, asha)
	}
}

func atoi(t *testing.T, b []byte) int {
	t.Helper()
	n, err := strconv.Atoi(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return n
}
