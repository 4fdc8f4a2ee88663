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
	p := params{in: in, out: out, synth: "2x3", store: filepath.Join(dir, "jobs"), size: 32, perCall: 2, parallel: 2}
	if err := run(context.Background(), p); err != nil {
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
	p.synth = "1x0"
	if err := run(context.Background(), p); err == nil {
		t.Fatal("bad -synthesize accepted")
	}
}

// TestArchives: -in at a generated train tar, a val tar with its label
// files given as paths, and a directory of WebDataset shards; each makes
// the same number of shards, and a rerun resumes.
func TestArchives(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	for _, c := range []struct {
		archive string
		p       func(in string) params
	}{
		{"train", func(in string) params { return params{in: filepath.Join(in, "ILSVRC2012_img_train.tar")} }},
		{"val", func(in string) params {
			return params{in: filepath.Join(in, "ILSVRC2012_img_val.tar"), labels: filepath.Join(in, "LOC_val_solution.csv"), synsets: "LOC_synset_mapping.txt"}
		}},
		{"wds", func(in string) params { return params{in: in, layout: "webdataset"} }},
	} {
		in := filepath.Join(dir, c.archive)
		gen := params{in: in, out: filepath.Join(dir, c.archive+"-gen"), synth: "2x3", archive: c.archive, store: filepath.Join(dir, "jobs"), size: 32, perCall: 2, parallel: 2}
		if err := run(ctx, gen); err != nil {
			t.Fatal(err)
		}
		p := c.p(in)
		p.out, p.store, p.size, p.perCall, p.parallel = filepath.Join(dir, c.archive+"-out"), filepath.Join(dir, "jobs"), 32, 2, 2
		for range 2 { // the second run resumes
			if err := run(ctx, p); err != nil {
				t.Fatalf("%s: %v", c.archive, err)
			}
			shards, _ := filepath.Glob(filepath.Join(p.out, "shard-*.json"))
			if len(shards) != 3 {
				t.Fatalf("%s: %d shards, want 3", c.archive, len(shards))
			}
		}
		if idx, _ := filepath.Glob(filepath.Join(p.out, "index", "*.json")); len(idx) == 0 {
			t.Fatalf("%s: no index kept", c.archive)
		}
	}
	if _, err := input(params{in: "/data/x.tar", labels: "/elsewhere/labels.csv"}); err == nil {
		t.Fatal("a label file away from the archive accepted")
	}
}
