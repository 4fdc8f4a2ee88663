package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"time"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/config"
	"github.com/wrenml/wren/mapreduce"
)

// benchMapReduce runs a word count and a sort on local worker processes and
// the single-process baselines of the same data in the same run: a
// one-goroutine Go count, and GNU sort with two threads.
func benchMapReduce(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench mapreduce", flag.ContinueOnError)
	textSize := fs.String("text-size", "256MB", "generated Zipf text to count")
	sortSize := fs.String("sort-size", "1GB", "ASCII records to sort")
	par := fs.Int("parallel", runtime.NumCPU(), "worker processes")
	shuffle := fs.String("shuffle", "", "shuffle store (default: the bench's file store)")
	skip := fs.String("skip", "", "comma-separated parts to skip: wordcount, sort")
	base := fs.String("dir", "", "where the data goes (default: a new directory in $TMPDIR, removed after)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *par < 1 {
		return fmt.Errorf("bench mapreduce: -parallel %d: want 1 worker or more", *par)
	}
	skipped := splitComma(*skip)
	for _, s := range skipped {
		if s != "wordcount" && s != "sort" {
			return fmt.Errorf("bench mapreduce: -skip %q: %q is not wordcount or sort", *skip, s)
		}
	}
	dir, err := os.MkdirTemp(*base, "wren-bench-mapreduce-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ex, err := wren.NewExecutor(ctx, wren.Options{Store: filepath.Join(dir, "store"), Parallelism: *par, Progress: wren.ProgressOff})
	if err != nil {
		return err
	}
	defer ex.Close()
	// Start the workers first: a one-time cost, not the jobs'.
	if err := warmUp(ctx, ex, *par); err != nil {
		return err
	}
	out := map[string]any{"parallelism": *par}
	if !slices.Contains(skipped, "wordcount") {
		if err := benchWordCount(ctx, ex, dir, *textSize, *shuffle, out); err != nil {
			return err
		}
	}
	if !slices.Contains(skipped, "sort") {
		if err := benchSort(ctx, ex, dir, *sortSize, *shuffle, *par, out); err != nil {
			return err
		}
	}
	return printJSON(out)
}

func benchWordCount(ctx context.Context, ex *wren.Executor, dir, size, shuffle string, out map[string]any) error {
	n, err := config.ParseSize(size)
	if err != nil {
		return err
	}
	textDir := filepath.Join(dir, "text")
	st, err := wren.OpenStore(ctx, textDir)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := mapreduce.GenerateText(ctx, st, "", mapreduce.TextOptions{Bytes: n, Seed: 1}); err != nil {
		return err
	}
	res, err := mapreduce.WordCount(ctx, ex, textDir, 0, shuffle)
	if err != nil {
		return err
	}
	got, err := res.Collect(ctx)
	if err != nil {
		return err
	}
	// The baseline: one goroutine counting the same files, from the page
	// cache as the job read them.
	start := time.Now()
	want, bytes, err := mapreduce.CountWords(ctx, st)
	if err != nil {
		return err
	}
	base := time.Since(start)
	match := len(got) == len(want)
	for w, k := range want {
		match = match && got[w] == k
	}
	mb := float64(res.InBytes) / 1e6
	out["wordcount_mb"] = round(mb, 4)
	out["wordcount_s"] = round(res.Wall.Seconds(), 4)
	out["wordcount_map_s"] = round(res.MapWall.Seconds(), 4)
	out["wordcount_reduce_s"] = round(res.ReduceWall.Seconds(), 4)
	out["wordcount_map_calls"] = res.MapStats.Calls
	out["wordcount_mb_per_s"] = round(mb/res.Wall.Seconds(), 4)
	out["wordcount_baseline_mb_per_s"] = round(float64(bytes)/1e6/base.Seconds(), 4)
	out["wordcount_ratio"] = round(base.Seconds()/res.Wall.Seconds(), 4)
	out["wordcount_counts_match"] = match
	if !match {
		return fmt.Errorf("bench mapreduce: the word count differs from the single-process count")
	}
	return nil
}

func benchSort(ctx context.Context, ex *wren.Executor, dir, size, shuffle string, par int, out map[string]any) error {
	n, err := config.ParseSize(size)
	if err != nil {
		return err
	}
	inDir := filepath.Join(dir, "records")
	st, err := wren.OpenStore(ctx, inDir)
	if err != nil {
		return err
	}
	sum, err := mapreduce.GenerateRecords(ctx, st, "", mapreduce.GenOptions{Records: n / mapreduce.RecordSize, ASCII: true, Seed: 1})
	st.Close()
	if err != nil {
		return err
	}
	// GNU sort does not fsync its output; neither does the sort here.
	outURL := "file://" + filepath.Join(dir, "sorted") + "?sync=never"
	res, err := mapreduce.Sort(ctx, ex, mapreduce.SortJob{Input: inDir, Output: outURL, Shuffle: shuffle})
	if err != nil {
		return err
	}
	rep, err := mapreduce.Validate(ctx, ex, outURL, "")
	if err != nil {
		return err
	}
	valid := rep.OK() && rep.Sum == sum
	// The baseline: GNU sort on the same files, two threads, half the
	// memory (so it sorts in memory, as the job does).
	files, err := filepath.Glob(filepath.Join(inDir, "part-*"))
	if err != nil {
		return err
	}
	gnuOut := filepath.Join(dir, "gnu-sorted")
	cmd := exec.CommandContext(ctx, "sort", append([]string{fmt.Sprintf("--parallel=%d", par), "-S", "50%", "-T", dir, "-o", gnuOut}, files...)...)
	cmd.Env = append(os.Environ(), "LC_ALL=C")
	cmd.Stderr = os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("bench mapreduce: GNU sort: %w", err)
	}
	base := time.Since(start)
	if fi, err := os.Stat(gnuOut); err != nil || fi.Size() != sum.Records*mapreduce.RecordSize {
		return fmt.Errorf("bench mapreduce: GNU sort wrote %v (%v)", fi, err)
	}
	mb := float64(res.InBytes) / 1e6
	out["sort_mb"] = round(mb, 4)
	out["sort_partitions"] = len(res.Partitions)
	out["sort_s"] = round(res.Wall.Seconds(), 4)
	out["sort_map_s"] = round(res.MapWall.Seconds(), 4)
	out["sort_reduce_s"] = round(res.ReduceWall.Seconds(), 4)
	out["sort_mb_per_s"] = round(mb/res.Wall.Seconds(), 4)
	out["sort_baseline_s"] = round(base.Seconds(), 4)
	out["sort_baseline_mb_per_s"] = round(mb/base.Seconds(), 4)
	out["sort_ratio"] = round(base.Seconds()/res.Wall.Seconds(), 4)
	out["sort_valid"] = valid
	out["sort_baseline"] = fmt.Sprintf("LC_ALL=C sort --parallel=%d -S 50%%", par)
	if !valid {
		return fmt.Errorf("bench mapreduce: the sort's output is not valid: %q", rep.Problems)
	}
	return nil
}
