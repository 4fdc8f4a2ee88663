// Command featurize-imagenet crops, scales and GIST-featurizes an
// ImageNet-style tree (<class>/<image>) with wren, writing feature shards
// (.npy features and labels, file lists, classes.txt) for a reducer.
//
//	go run ./examples/featurize-imagenet -in DIR|URL -out DIR|URL [-size 256] [-per-call 200]
//	go run ./examples/featurize-imagenet -synthesize 10x50 -in DIR -out DIR
//
// -synthesize CxN first writes C classes of N synthetic JPEGs into -in;
// -fit then fits linear classifiers on the features (the reduce).
// It prints progress and a summary; a rerun resumes from complete shards.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"time"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/config"
	"github.com/wrenml/wren/featurize"
	"github.com/wrenml/wren/linear"
	"github.com/wrenml/wren/timeline"
)

func main() {
	wren.Init()
	in := flag.String("in", "", "input tree: a directory or a store URL (required)")
	out := flag.String("out", "", "output: a directory or a store URL (required)")
	size := flag.Int("size", 256, "crop and scale images to size x size")
	perCall := flag.Int("per-call", 200, "images per call (and per shard)")
	gray := flag.Bool("gray", false, "grayscale GIST (512-d) instead of colour (960-d)")
	synth := flag.String("synthesize", "", "first write a synthetic tree of CLASSESxIMAGES (e.g. 10x50) into -in")
	store := flag.String("store", "", "wren's job store (default: $WREN_STORE, the config file, else ./.wren)")
	parallel := flag.Int("parallel", 0, "worker processes (0: one per CPU)")
	fit := flag.Bool("fit", false, "then fit linear classifiers on the features (80/20 split) and print their accuracy")
	timeline := flag.String("timeline", "", "plot the featurize job's timeline to this file (.png, .svg, .pdf)")
	flag.Parse()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if *in == "" || *out == "" {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	timelinePath = *timeline
	if err := run(ctx, *in, *out, *synth, *store, *size, *perCall, *parallel, *gray); err != nil {
		fmt.Fprintln(os.Stderr, "featurize-imagenet:", err)
		os.Exit(1)
	}
	if *fit {
		if err := fitFeatures(ctx, *out); err != nil {
			fmt.Fprintln(os.Stderr, "featurize-imagenet:", err)
			os.Exit(1)
		}
	}
}

// timelinePath is where to plot the featurize job's timeline ("" for none).
var timelinePath string

func run(ctx context.Context, in, out, synth, store string, size, perCall, parallel int, gray bool) error {
	if synth != "" {
		var c, n int
		if _, err := fmt.Sscanf(synth, "%dx%d", &c, &n); err != nil || c < 1 || n < 1 {
			return fmt.Errorf("-synthesize %q: want CLASSESxIMAGES, e.g. 10x50", synth)
		}
		t := time.Now()
		if err := featurize.Synthesize(in, c, n, 1); err != nil {
			return err
		}
		fmt.Printf("synthesized %d classes x %d JPEGs in %s (%v)\n", c, n, in, time.Since(t).Round(time.Millisecond))
	}
	// WREN_BACKEND, WREN_STORE, ... or ~/.config/wren/config.yaml choose
	// the backend (local processes, or AWS Lambda) and the store; flags win.
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	ex, err := cfg.Executor(ctx, wren.Options{Store: store, Parallelism: parallel})
	if err != nil {
		return err
	}
	defer ex.Close()
	t := time.Now()
	var job *wren.Job[featurize.ShardResult]
	rep, err := featurize.Run(ctx, ex, featurize.Options{
		Input: in, Output: out, Size: size, ImagesPerCall: perCall,
		GIST:  featurize.GISTOptions{Gray: gray},
		OnJob: func(j *wren.Job[featurize.ShardResult]) { job = j },
	})
	if err != nil {
		return err
	}
	el := time.Since(t)
	fmt.Printf("featurized %d images of %d classes into %d shards (%d resumed) of %d-d GIST at %dx%d in %v (%.1f images/s)\n",
		rep.Images, len(rep.Classes), rep.Shards, rep.Resumed, rep.Dim, size, size, el.Round(time.Millisecond), float64(rep.Images)/el.Seconds())
	for i, f := range rep.Failed {
		if i == 10 {
			fmt.Printf("  ... and %d more\n", len(rep.Failed)-10)
			break
		}
		fmt.Printf("  failed: %s: %s\n", f.File, f.Reason)
	}
	if len(rep.Failed) > 0 {
		fmt.Printf("%d images failed (listed in the shards' .json files)\n", len(rep.Failed))
	}
	fmt.Println("features:", out)
	if timelinePath != "" && job != nil {
		if err := timeline.Plot(job, timelinePath); err != nil {
			return err
		}
		fmt.Println("timeline:", timelinePath)
	}
	return nil
}

// fitFeatures is the paper's monolithic reduce: gather the feature shards
// and fit linear classifiers on one machine.
func fitFeatures(ctx context.Context, out string) error {
	st, err := wren.OpenStore(ctx, out)
	if err != nil {
		return err
	}
	defer st.Close()
	ds, err := linear.Load(ctx, st, "")
	if err != nil {
		return err
	}
	train, test, err := ds.Split(ctx, 0.8, 1)
	if err != nil {
		return err
	}
	fmt.Printf("fitting on %d examples, testing on %d (%d features, %d classes)\n", train.N, test.N, ds.Dim, ds.Classes)
	t := time.Now()
	rf, err := linear.Ridge(ctx, train, linear.RidgeOptions{Lambdas: linear.LogSpace(-3, 10, 14), Standardize: true, Validation: test})
	if err != nil {
		return err
	}
	fmt.Printf("  ridge (14-lambda path, best %g): test accuracy %.3f, top-3 %.3f (%v)\n", rf.BestLambda, rf.Best.Evaluate(test).Accuracy, rf.Best.Evaluate(test).TopK(3), time.Since(t).Round(time.Millisecond))
	t = time.Now()
	lg, err := linear.Logistic(ctx, train, linear.LogisticOptions{})
	if err != nil {
		return err
	}
	fmt.Printf("  logistic (L-BFGS, %d iterations): test accuracy %.3f, log loss %.3f (%v)\n", lg.Convergence.Iterations, lg.Evaluate(test).Accuracy, lg.Evaluate(test).LogLoss, time.Since(t).Round(time.Millisecond))
	t = time.Now()
	sv, err := linear.SVM(ctx, train, linear.SVMOptions{})
	if err != nil {
		return err
	}
	fmt.Printf("  linear SVM (one-vs-rest): test accuracy %.3f (%v)\n", sv.Evaluate(test).Accuracy, time.Since(t).Round(time.Millisecond))
	return rf.Best.Save(ctx, st, "model-ridge")
}
