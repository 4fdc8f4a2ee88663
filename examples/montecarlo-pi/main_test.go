package main

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/wrenml/wren"
)

func TestMain(m *testing.M) {
	wren.Init()
	os.Exit(m.Run())
}

func TestThrowDeterministic(t *testing.T) {
	dir := t.TempDir()
	ex, err := wren.NewExecutor(context.Background(), wren.Options{Store: dir, Parallelism: 2, Progress: wren.ProgressOff})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	in := []Darts{{Seed: 1, N: 100000}, {Seed: 2, N: 100000}, {Seed: 1, N: 100000}}
	job, err := Throw.Map(context.Background(), ex, in)
	if err != nil {
		t.Fatal(err)
	}
	hits, err := job.Results(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if hits[0] != hits[2] || hits[0] == hits[1] {
		t.Fatalf("hits = %v: same seed must give the same count, another seed another", hits)
	}
	for _, h := range hits {
		// 100000 darts: p = pi/4, sd = sqrt(n p (1-p)) ~ 130; 6 sd is far.
		if math.Abs(float64(h)-1e5*math.Pi/4) > 6*130 {
			t.Fatalf("hits = %d, expected about %.0f", h, 1e5*math.Pi/4)
		}
	}
}

func TestRun(t *testing.T) {
	dir := t.TempDir()
	png := filepath.Join(dir, "tl.png")
	if err := run(context.Background(), 20, 10000, filepath.Join(dir, "store"), png, 2); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(png); err != nil || fi.Size() < 1000 {
		t.Fatalf("timeline: %v, %v", fi, err)
	}
	// run cleans its job: nothing is left under jobs/.
	if left, _ := os.ReadDir(filepath.Join(dir, "store", "jobs")); len(left) != 0 {
		t.Fatalf("job objects left: %v", left)
	}
}
