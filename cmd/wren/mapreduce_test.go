package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wrenml/wren/featurize"
)

// TestSortCommand generates, sorts and validates records, and the
// validator refuses a damaged output.
func TestSortCommand(t *testing.T) {
	dir := t.TempDir()
	in, out, store := filepath.Join(dir, "in"), filepath.Join(dir, "out"), filepath.Join(dir, "store")
	if got := capture(t, "sort", "-gen", "-out", in, "-size", "2MB", "-ascii", "-files", "3"); !strings.Contains(got, "generated 20000 records") {
		t.Fatalf("gen: %q", got)
	}
	got := capture(t, "sort", "-in", in, "-out", out, "-partitions", "3", "-store", store, "-timeline", filepath.Join(dir, "tl.png"))
	if !strings.Contains(got, "sorted 20000 records") || !strings.Contains(got, "into 3 partitions") {
		t.Fatalf("sort: %q", got)
	}
	if got := capture(t, "sort", "-validate", "-out", out, "-in", in, "-store", store); !strings.Contains(got, "OK") {
		t.Fatalf("validate: %q", got)
	}
	if fi, err := os.Stat(filepath.Join(dir, "tl.png")); err != nil || fi.Size() < 5000 {
		t.Errorf("timeline: %v", err)
	}
	// Drop the last record of a partition.
	p := filepath.Join(out, "part-00001")
	b, _ := os.ReadFile(p)
	os.WriteFile(p, b[:len(b)-100], 0o644)
	err := run(context.Background(), []string{"sort", "-validate", "-out", out, "-in", in, "-store", store})
	if err == nil || !strings.Contains(err.Error(), "not a whole sort of the input") {
		t.Fatalf("a damaged output: err = %v", err)
	}
	if err := run(context.Background(), []string{"sort", "-in", in, "-out", out, "-store", store}); err == nil || !strings.Contains(err.Error(), "already holds") {
		t.Errorf("sorting into a used output: err = %v", err)
	}
}

func TestBenchMapReduceJSON(t *testing.T) {
	out := capture(t, "bench", "mapreduce", "-text-size", "2MB", "-sort-size", "4MB", "-parallel", "2", "-dir", t.TempDir())
	var m map[string]any
	if err := json.Unmarshal([]byte(out), &m); err != nil {
		t.Fatalf("not JSON: %q", out)
	}
	for _, k := range []string{"wordcount_mb_per_s", "wordcount_baseline_mb_per_s", "sort_mb_per_s", "sort_baseline_mb_per_s", "wordcount_ratio", "sort_ratio"} {
		if v, ok := m[k].(float64); !ok || v <= 0 {
			t.Errorf("%s = %v in %s", k, m[k], out)
		}
	}
	if m["wordcount_counts_match"] != true || m["sort_valid"] != true {
		t.Errorf("the jobs' results are wrong: %s", out)
	}
}

func TestMicroBenchJSON(t *testing.T) {
	store := t.TempDir()
	for _, args := range [][]string{
		{"bench", "flops", "-n", "64", "-seconds", "0.2", "-workers", "1,2", "-store", store, "-compare-numpy"},
		{"bench", "storage", "-size", "1MB", "-workers", "1,2", "-store", store},
		{"bench", "redis", "-seconds", "0.2", "-workers", "1,2", "-store", store},
	} {
		t.Run(args[1], func(t *testing.T) {
			out := capture(t, args...)
			var m struct {
				Runs []map[string]any
			}
			if err := json.Unmarshal([]byte(out), &m); err != nil || len(m.Runs) != 2 {
				t.Fatalf("not JSON with two runs: %q", out)
			}
			if args[1] == "flops" {
				var st struct {
					SingleThread struct {
						Wren map[string]float64 `json:"wren_gflops"`
					} `json:"single_thread"`
				}
				if err := json.Unmarshal([]byte(out), &st); err != nil || st.SingleThread.Wren["dgemm"] <= 0 || st.SingleThread.Wren["sgemm"] <= 0 || st.SingleThread.Wren["dsyrk"] <= 0 {
					t.Errorf("no single-thread rates: %q", out)
				}
			}
			for i, r := range m.Runs {
				if r["workers"] != float64(i+1) {
					t.Errorf("run %d: %v", i, r)
				}
				if args[1] == "flops" {
					// wren's kernels and gonum's, each worker's rate.
					for _, k := range []string{"wren", "gonum"} {
						kr, _ := r[k].(map[string]any)
						per, _ := kr["gflops_per_worker"].([]any)
						if len(per) != i+1 || per[0].(float64) <= 0 {
							t.Errorf("run %d: %s: %v", i, k, r[k])
						}
					}
				}
				for k, v := range r {
					if f, ok := v.(float64); ok && f <= 0 {
						t.Errorf("run %d: %s = %v", i, k, f)
					}
					if l, ok := v.([]any); ok && len(l) != i+1 {
						t.Errorf("run %d: %s has %d values", i, k, len(l))
					}
				}
			}
		})
	}
}

// TestFeaturizeCommand: wren featurize -plan -check on a generated train
// archive prints the plan, runs the job with its images per call and
// compares; a plain run on the same output then resumes every shard.
func TestFeaturizeCommand(t *testing.T) {
	dir := t.TempDir()
	in, out, store := filepath.Join(dir, "in"), filepath.Join(dir, "out"), filepath.Join(dir, "jobs")
	if _, err := featurize.SynthesizeArchive(in, featurize.LayoutILSVRCTrain, 2, 6, 1); err != nil {
		t.Fatal(err)
	}
	got := capture(t, "featurize", "-in", in, "-layout", "auto", "-out", out, "-size", "32", "-plan", "-sample", "5", "-check", "-store", store)
	for _, want := range []string{"input: 12 images", "sample: 5 images", "projected: ", "featurized 12 images of 2 classes", "actual/projected"} {
		if !strings.Contains(got, want) {
			t.Fatalf("no %q in:\n%s", want, got)
		}
	}
	// The same plan again (same sample, same choice): every shard resumes.
	got = capture(t, "featurize", "-in", in, "-layout", "auto", "-out", out, "-size", "32", "-plan", "-sample", "5", "-check", "-store", store)
	m := regexp.MustCompile(`into (\d+) shards \((\d+) resumed, 0 archive ranges indexed\)`).FindStringSubmatch(got)
	if m == nil || m[1] != m[2] {
		t.Fatalf("rerun:\n%s", got)
	}
}

// TestBenchSearch: wren bench tune -search prints, per function (Branin,
// Hartmann-6), the best values of random search and TPE, univariate and
// multivariate, and Optuna's when installed (an Optuna that fails is an
// error, not a skip). TestBenchSearchMNIST adds the MNIST objective.
func TestBenchSearch(t *testing.T) {
	checkBenchSearch(t, []string{"branin", "hartmann6"}, "-seeds", "2", "-mnist-seeds", "0", "-search-trials", "12")
}

// TestBenchTuneBadFlags: settings a tune benchmark cannot run are refused
// before anything runs, naming the flags.
func TestBenchTuneBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-pbt", "-population", "1"}, {"-pbt", "-epochs", "0"}, {"-pbt", "-pbt-runs", "0"},
		{"-search", "-seeds", "0"}, {"-search", "-search-trials", "0"}, {"-search", "-mnist-seeds", "-1"},
		{"-trials", "0"}, {"-parallel", "0"}, {"-trial-ms", "-1"}, {"-trial-ms", "NaN"},
	} {
		err := run(context.Background(), append([]string{"bench", "tune"}, args...))
		if err == nil || !strings.Contains(err.Error(), args[len(args)-2]) {
			t.Errorf("bench tune %v: %v", args, err)
		}
	}
}

func checkBenchSearch(t *testing.T, fns []string, args ...string) {
	t.Helper()
	out := capture(t, append([]string{"bench", "tune", "-search"}, args...)...)
	var loose map[string]any
	if err := json.Unmarshal([]byte(out), &loose); err != nil {
		t.Fatalf("not JSON: %q", out)
	}
	for _, f := range fns {
		r, ok := loose[f].(map[string]any)
		if !ok {
			t.Fatalf("%s: %v", f, loose[f])
		}
		for _, method := range []string{"wren_random", "wren_tpe", "wren_tpe_multivariate", "wren_tpe_normalized", "wren_tpe_multivariate_normalized", "optuna_tpe", "optuna_tpe_multivariate"} {
			if why, ok := r[method].(string); ok && strings.HasPrefix(why, "skipped: no python3 with optuna") {
				continue
			}
			s, _ := r[method].(map[string]any)
			b, _ := s["best_after_10"].(map[string]any)
			v, ok := b["median"].(float64)
			if !ok {
				t.Fatalf("%s %s: %v", f, method, r[method])
			}
			if lo := r["range"].([]any)[0].(float64); v < lo-1e-9 {
				t.Errorf("%s %s: best %v below the range's bottom %v", f, method, v, lo)
			}
		}
	}
}

// TestBenchSGDBadFlags: bench sgd refuses what it cannot run as asked
// before anything runs (sgd reads a zero epoch, batch or window as its
// default, so -epochs 0 trained an epoch and printed "epochs": 0; a
// negative -ratings skipped the factorization; -ratings 5 failed after the
// MNIST runs with "8 shards of 4 ratings").
func TestBenchSGDBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-epochs", "0"}, {"-epochs", "-1"}, {"-batch", "0"}, {"-local-steps", "0"},
		{"-sparse-examples", "-1"}, {"-ratings", "-3"}, {"-ratings", "5"},
		{"-sparse-nonzeros", "0"}, {"-sparse-nonzeros", "4"}, {"-sparse-features", "10", "-sparse-nonzeros", "11"},
		{"-eta0", "0"}, {"-eta0", "NaN"}, {"-power", "Inf"},
	} {
		err := run(context.Background(), append([]string{"bench", "sgd"}, args...))
		if err == nil || !strings.Contains(err.Error(), args[len(args)-2]) {
			t.Errorf("bench sgd %v: %v", args, err)
		}
	}
}

// TestCommandsBadFlags: every command refuses a flag value it cannot run as
// asked, before it starts anything, naming the flag. Before, bench map
// -tasks 0, bench store -reps 0, bench ps -block 0 (or -sparse-span 0,
// -latency-pushes 0) and bench linear -train -1 panicked; bench map
// -parallel 0 never returned; -seconds 0 (bench ps, gist, flops) failed
// after the run on a NaN rate; bench redis -seconds -1 printed zero rates;
// bench linear -skip took any name; featurize -size 0 featurized at 256
// and reported 0x0; bench mapreduce -parallel -1 panicked, -parallel 0 ran
// the jobs and then failed in GNU sort, -skip took any name.
func TestCommandsBadFlags(t *testing.T) {
	dir := t.TempDir()
	for _, args := range [][]string{
		{"bench", "map", "-tasks", "0"}, {"bench", "map", "-tasks", "-1"}, {"bench", "map", "-parallel", "0"},
		{"bench", "map", "-chunk", "0"}, {"bench", "map", "-task-ms", "-5"}, {"bench", "map", "-task-ms", "NaN"},
		{"bench", "store", "-reps", "0"},
		{"bench", "ps", "-seconds", "0"}, {"bench", "ps", "-seconds", "Inf"}, {"bench", "ps", "-clients", "0"},
		{"bench", "ps", "-model", "0"}, {"bench", "ps", "-model", "100"}, {"bench", "ps", "-block", "0"},
		{"bench", "ps", "-model", "20000", "-block", "20001"}, {"bench", "ps", "-sparse-pairs", "0"},
		{"bench", "ps", "-sparse-span", "0"}, {"bench", "ps", "-latency-pushes", "0"}, {"bench", "ps", "-shards", ""},
		{"bench", "gist", "-seconds", "0"}, {"bench", "gist", "-reps", "0"}, {"bench", "gist", "-images", "-1"},
		{"bench", "gist", "-size", "0"}, {"bench", "gist", "-size", "9"},
		{"bench", "linear", "-train", "0"}, {"bench", "linear", "-train", "-1"}, {"bench", "linear", "-logistic-iters", "0"},
		{"bench", "linear", "-svm-c", "0"}, {"bench", "linear", "-svm-epochs", "-1"}, {"bench", "linear", "-skip", "ridge,bogus"},
		{"bench", "lambda", "-calls", "0"}, {"bench", "lambda", "-task-ms", "-1"}, {"bench", "lambda", "-emulators", "0"},
		{"bench", "flops", "-seconds", "0"}, {"bench", "flops", "-workers", "0"}, {"bench", "flops", "-n", "0"},
		{"bench", "storage", "-seconds", "-1"}, {"bench", "redis", "-seconds", "-1"}, {"bench", "redis", "-size", "0"},
		{"sort", "-out", dir, "-partitions", "-1"}, {"sort", "-gen", "-out", dir, "-files", "-2"}, {"sort", "-gen", "-out", dir, "-size", "50"},
		{"featurize", "-in", dir, "-out", dir, "-size", "0"}, {"featurize", "-in", dir, "-out", dir, "-size", "7"},
		{"featurize", "-in", dir, "-out", dir, "-per-call", "0"}, {"featurize", "-in", dir, "-out", dir, "-plan", "-sample", "0"},
		{"featurize", "-in", dir, "-out", dir, "-parallel", "-1"},
		{"gist", "-size", "0", "x.jpg"}, {"gist", "-size", "9", "x.jpg"}, {"gist", "-blocks", "0", "x.jpg"}, {"gist", "-blocks", "300", "x.jpg"},
		{"gist", "-orientations", "1000", "x.jpg"},
		{"bench", "mapreduce", "-parallel", "0"}, {"bench", "mapreduce", "-parallel", "-1"}, {"bench", "mapreduce", "-skip", "sort,bogus"},
	} {
		flagName := "" // the last argument that is a flag's name
		for _, a := range args {
			if len(a) > 1 && a[0] == '-' && (a[1] >= 'a' && a[1] <= 'z') {
				flagName = a
			}
		}
		done := make(chan error, 1)
		go func() { done <- run(context.Background(), args) }()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), flagName) {
				t.Errorf("wren %s: %v", strings.Join(args, " "), err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("wren %s: still running after 30 s", strings.Join(args, " "))
		}
	}
}

// TestFeaturizeNothingMade: a featurize run in which every image failed
// is an error naming the first failure (it exited 0, printing "featurized
// 0 images ...; 12 failed"); failures are listed, ten at most.
func TestFeaturizeNothingMade(t *testing.T) {
	in := t.TempDir()
	if err := os.MkdirAll(filepath.Join(in, "cls"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 12 {
		if err := os.WriteFile(filepath.Join(in, "cls", fmt.Sprintf("x%02d.jpg", i)), []byte("not an image"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	err := run(context.Background(), []string{"featurize", "-in", in, "-out", t.TempDir(), "-store", t.TempDir(), "-size", "32"})
	if err == nil || !strings.Contains(err.Error(), "none of 12 images") || !strings.Contains(err.Error(), "cls/x") {
		t.Fatalf("featurize of 12 broken images: %v", err)
	}
	var b strings.Builder
	rep := &featurize.Report{Images: 1}
	for i := range 12 {
		rep.Failed = append(rep.Failed, featurize.Failure{File: fmt.Sprint("f", i), Reason: "bad"})
	}
	if err := failures(&b, rep); err != nil {
		t.Fatal(err)
	}
	if got := strings.Count(b.String(), "failed: "); got != 10 || !strings.Contains(b.String(), "and 2 more") {
		t.Fatalf("listed %d failures:\n%s", got, b.String())
	}
}

// TestLogLevel: WREN_LOG's values, and a typo said (it fell back to warn
// silently).
func TestLogLevel(t *testing.T) {
	for v, want := range map[string]slog.Level{"": slog.LevelWarn, "debug": slog.LevelDebug, "INFO": slog.LevelInfo, "warn": slog.LevelWarn, "error": slog.LevelError} {
		if l, err := logLevel(v); err != nil || l != want {
			t.Errorf("WREN_LOG=%q: %v, %v", v, l, err)
		}
	}
	if l, err := logLevel("debgu"); err == nil || !strings.Contains(err.Error(), "debgu") || l != slog.LevelWarn {
		t.Errorf("WREN_LOG=debgu: %v, %v", l, err)
	}
}
