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

func TestRun(t *testing.T) {
	dir := t.TempDir()
	in, out := filepath.Join(dir, "in"), filepath.Join(dir, "out")
	if err := run(context.Background(), in, out, "2x3", filepath.Join(dir, "jobs"), 32, 2, 2, false); err != nil {
		t.Fatal(err)
	}
	shards, _ := filepath.Glob(filepath.Join(out, "shard-*.json"))
	if len(shards) != 3 {
		t.Fatalf("%d shards, want 3", len(shards))
	}
	if err := fitFeatures(context.Background(), out); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(out, "model-ridge", "weights.npy")); err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), in, out, "1x0", filepath.Join(dir, "jobs"), 32, 2, 2, false); err == nil {
		t.Fatal("bad -synthesize accepted")
	}
}
