package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/config"
	"github.com/wrenml/wren/featurize"
)

// featurizeCmd featurizes a tree or archives, or, with -plan, projects
// what that would take from a featurized sample.
func featurizeCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("featurize", flag.ContinueOnError)
	in := fs.String("in", "", "input: a tree, or the directory (store URL) of archives (required)")
	out := fs.String("out", "", "output directory or store URL (required)")
	archives := fs.String("archives", "", "comma-separated archive keys under -in (default: every *.tar)")
	layout := fs.String("layout", "", "tree (default), auto, ilsvrc-train, ilsvrc-val or webdataset")
	labels := fs.String("labels", "", "ilsvrc-val: the labels' key under -in (LOC_val_solution.csv or the devkit's ground truth)")
	synsets := fs.String("synsets", "", "a synset table's key under -in")
	index := fs.String("index", "", "where the archives' index is kept (default: -out)")
	size := fs.Int("size", 256, "crop and scale images to size x size")
	perCall := fs.Int("per-call", 200, "images per call and shard")
	gray := fs.Bool("gray", false, "grayscale GIST (512-d)")
	store := fs.String("store", "", "wren's job store (default: $WREN_STORE, the config file, else ./.wren)")
	parallel := fs.Int("parallel", 0, "workers (0: the backend's default)")
	plan := fs.Bool("plan", false, "featurize a sample and project the whole job's wall time, images per call and cost")
	sample := fs.Int("sample", 200, "-plan: images in the sample")
	seed := fs.Uint64("seed", 1, "-plan: which sample")
	check := fs.Bool("check", false, "-plan: then run the job with the planned images per call and compare its wall time")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *in == "" || *out == "" {
		return fmt.Errorf("featurize: -in and -out are required")
	}
	// The library reads 0 as its default: refused here, so that what runs
	// is what the flags (and the report) say.
	if *size < 8 || *size%2 != 0 || *perCall < 1 || *sample < 1 || *parallel < 0 {
		return fmt.Errorf("featurize: -size %d, -per-call %d, -sample %d, -parallel %d: want an even size of 8 or more, 1 image a call and in a sample or more, and no negative worker count", *size, *perCall, *sample, *parallel)
	}
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	ex, err := cfg.Executor(ctx, wren.Options{Store: *store, Parallelism: *parallel})
	if err != nil {
		return err
	}
	defer ex.Close()
	o := featurize.Options{Input: *in, Output: *out, Layout: *layout, Labels: *labels, Synsets: *synsets, Index: *index,
		Size: *size, ImagesPerCall: *perCall, GIST: featurize.GISTOptions{Gray: *gray}}
	if o.Layout == "tree" {
		o.Layout = featurize.LayoutTree
	}
	if *archives != "" {
		o.Archives = strings.Split(*archives, ",")
		if o.Layout == "" {
			o.Layout = featurize.LayoutAuto
		}
	}
	var p *featurize.JobPlan
	if *plan {
		if p, err = featurize.Plan(ctx, ex, o, featurize.PlanOptions{Sample: *sample, Seed: *seed}); err != nil {
			return err
		}
		fmt.Println(p)
		if !*check {
			return nil
		}
		o.ImagesPerCall = p.ImagesPerCall
	}
	start := time.Now()
	rep, err := featurize.Run(ctx, ex, o)
	if err != nil {
		return err
	}
	el := time.Since(start)
	fmt.Printf("featurized %d images of %d classes into %d shards (%d resumed, %d archive ranges indexed) of %d-d GIST at %dx%d in %v (%.1f images/s); %d failed\n",
		rep.Images, len(rep.Classes), rep.Shards, rep.Resumed, rep.Indexed, rep.Dim, o.Size, o.Size, el.Round(time.Millisecond), float64(rep.Images)/el.Seconds(), len(rep.Failed))
	if p != nil {
		fmt.Printf("wall time %v, projected %v: actual/projected %.2f\n", el.Round(time.Millisecond), p.Wall.Round(time.Millisecond), el.Seconds()/p.Wall.Seconds())
	}
	return failures(os.Stderr, rep)
}

// failures lists the first images that failed, and is an error when none
// was featurized: a run that made nothing did not succeed.
func failures(w io.Writer, rep *featurize.Report) error {
	const shown = 10
	for i, f := range rep.Failed {
		if i == shown {
			fmt.Fprintf(w, "  ... and %d more\n", len(rep.Failed)-shown)
			break
		}
		fmt.Fprintf(w, "  failed: %s: %s\n", f.File, f.Reason)
	}
	if rep.Images == 0 && len(rep.Failed) > 0 {
		return fmt.Errorf("featurize: none of %d images could be featurized (first: %s: %s)", len(rep.Failed), rep.Failed[0].File, rep.Failed[0].Reason)
	}
	return nil
}
