package main

import (
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/wrenml/wren"
)

func TestMain(m *testing.M) {
	wren.Init()
	os.Exit(m.Run())
}

// TestZipf counts generated Zipf text; run checks every count against a
// single-process count and fails on any difference.
func TestZipf(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	o := options{zipf: "3MB", store: filepath.Join(dir, "store"), csv: filepath.Join(dir, "counts.csv"),
		timeline: filepath.Join(dir, "tl.png"), partitions: 3, top: 3, maxLine: 1 << 20, check: true}
	if err := run(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(o.csv)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) < 1000 || rows[0][0] != "word" {
		t.Fatalf("%d rows, header %q", len(rows), rows[0])
	}
	// Most frequent first: a Zipf text's top word dwarfs its 100th.
	a, _ := strconv.Atoi(rows[1][1])
	b, _ := strconv.Atoi(rows[100][1])
	if a < 10*b {
		t.Errorf("top counts %d and %d (100th): not Zipf-like, or not sorted", a, b)
	}
	if fi, err := os.Stat(o.timeline); err != nil || fi.Size() < 5000 {
		t.Errorf("timeline: %v", err)
	}
}
