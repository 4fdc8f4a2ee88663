// Command featurize-imagenet crops, scales and GIST-featurizes ImageNet
// with wren, as it is distributed or as a tree, writing feature shards
// (.npy features and labels, file lists, classes.txt) for a reducer.
//
//	go run ./examples/featurize-imagenet -in DIR|URL -out DIR|URL [-size 256] [-per-call 200]
//	go run ./examples/featurize-imagenet -in /data/ILSVRC2012_img_train.tar -out DIR
//	go run ./examples/featurize-imagenet -in /data/ILSVRC2012_img_val.tar -labels LOC_val_solution.csv -synsets LOC_synset_mapping.txt -out DIR
//	go run ./examples/featurize-imagenet -in /data/shards -layout webdataset -out DIR
//	go run ./examples/featurize-imagenet -synthesize 10x50 [-archive train|val|wds] -in DIR -out DIR
//
// -in is a tree (<class>/<image>), a .tar (an ILSVRC train or val archive
// or a WebDataset shard: read in place, its layout told from its first
// members unless -layout says), or a directory of archives (-layout).
// -labels and -synsets name files beside the archives. -synthesize CxN
// first writes C classes of N synthetic JPEGs into -in, as a tree or, with
// -archive, packed as that archive; -fit then fits linear classifiers on
// the features (the reduce). It prints progress and a summary; a rerun
// resumes from complete shards and reuses the archives' index.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/config"
	"github.com/wrenml/wren/featurize"
	"github.com/wrenml/wren/linear"
	"github.com/wrenml/wren/timeline"
)

// params are the command's settings.
type params struct {
	in, out, synth, archive, layout, labels, synsets, store string
	size, perCall, parallel                                 int
	gray                                                    bool
}

func main() {
	wren.Init()
	var p params
	flag.StringVar(&p.in, "in", "", "input: a tree, a .tar archive, or a directory of archives (a directory or a store URL; required)")
	flag.StringVar(&p.out, "out", "", "output: a directory or a store URL (required)")
	flag.IntVar(&p.size, "size", 256, "crop and scale images to size x size")
	flag.IntVar(&p.perCall, "per-call", 200, "images per call (and per shard)")
	flag.BoolVar(&p.gray, "gray", false, "grayscale GIST (512-d) instead of colour (960-d)")
	flag.StringVar(&p.synth, "synthesize", "", "first write a synthetic data set of CLASSESxIMAGES (e.g. 10x50) into -in")
	flag.StringVar(&p.archive, "archive", "", "with -synthesize: pack it as an ILSVRC train archive (train), val archive with labels (val) or WebDataset shards (wds)")
	flag.StringVar(&p.layout, "layout", "", "tree, auto, ilsvrc-train, ilsvrc-val or webdataset (default: auto for a .tar, else tree)")
	flag.StringVar(&p.labels, "labels", "", "ilsvrc-val: LOC_val_solution.csv or ILSVRC2012_validation_ground_truth.txt, beside the archive")
	flag.StringVar(&p.synsets, "synsets", "", "a synset table beside the archive: LOC_synset_mapping.txt, or \"<ILSVRC2012_ID> <synset>\" lines")
	flag.StringVar(&p.store, "store", "", "wren's job store (default: $WREN_STORE, the config file, else ./.wren)")
	flag.IntVar(&p.parallel, "parallel", 0, "worker processes (0: one per CPU)")
	fit := flag.Bool("fit", false, "then fit linear classifiers on the features (80/20 split) and print their accuracy")
	timeline := flag.String("timeline", "", "plot the featurize job's timeline to this file (.png, .svg, .pdf)")
	flag.Parse()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if p.in == "" || p.out == "" {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	timelinePath = *timeline
	if err := run(ctx, p); err != nil {
		fmt.Fprintln(os.Stderr, "featurize-imagenet:", err)
		os.Exit(1)
	}
	if *fit {
		if err := fitFeatures(ctx, p.out); err != nil {
			fmt.Fprintln(os.Stderr, "featurize-imagenet:", err)
			os.Exit(1)
		}
	}
}

// timelinePath is where to plot the featurize job's timeline ("" for none).
var timelinePath string

// input turns the flags into featurize's input options.
func input(p params) (featurize.Options, error) {
	o := featurize.Options{Input: p.in, Layout: p.layout}
	if p.layout == "tree" {
		o.Layout = featurize.LayoutTree
	}
	if strings.HasSuffix(p.in, ".tar") {
		i := strings.LastIndexByte(p.in, '/')
		if i < 0 {
			o.Input, o.Archives = ".", []string{p.in}
		} else {
			o.Input, o.Archives = p.in[:i], []string{p.in[i+1:]}
		}
		if p.layout == "" {
			o.Layout = featurize.LayoutAuto
		}
	}
	// Label files are keys beside the archives: a path is made relative.
	rel := func(f string) (string, error) {
		if f == "" || !filepath.IsAbs(f) {
			return f, nil
		}
		base, err := filepath.Abs(o.Input)
		if err != nil {
			return "", err
		}
		r, err := filepath.Rel(base, f)
		if err != nil || strings.HasPrefix(r, "..") {
			return "", fmt.Errorf("%s is not beside the archives in %s", f, o.Input)
		}
		return filepath.ToSlash(r), nil
	}
	var err error
	if o.Labels, err = rel(p.labels); err != nil {
		return o, err
	}
	o.Synsets, err = rel(p.synsets)
	return o, err
}

func run(ctx context.Context, p params) error {
	if p.size < 8 || p.size%2 != 0 || p.perCall < 1 || p.parallel < 0 {
		return fmt.Errorf("-size %d, -per-call %d, -parallel %d: want an even size of 8 or more, 1 image a call or more, and no negative worker count", p.size, p.perCall, p.parallel)
	}
	var o featurize.Options
	if p.synth != "" {
		var c, n int
		if _, err := fmt.Sscanf(p.synth, "%dx%d", &c, &n); err != nil || c < 1 || n < 1 {
			return fmt.Errorf("-synthesize %q: want CLASSESxIMAGES, e.g. 10x50", p.synth)
		}
		t := time.Now()
		switch p.archive {
		case "":
			if err := featurize.Synthesize(p.in, c, n, 1); err != nil {
				return err
			}
			fmt.Printf("synthesized %d classes x %d JPEGs in %s (%v)\n", c, n, p.in, time.Since(t).Round(time.Millisecond))
		case "train", "val", "wds":
			layout := map[string]string{"train": featurize.LayoutILSVRCTrain, "val": featurize.LayoutILSVRCVal, "wds": featurize.LayoutWebDataset}[p.archive]
			var err error
			if o, err = featurize.SynthesizeArchive(p.in, layout, c, n, 1); err != nil {
				return err
			}
			fmt.Printf("synthesized %d classes x %d JPEGs as %s archives %v in %s (%v)\n", c, n, layout, o.Archives, p.in, time.Since(t).Round(time.Millisecond))
		default:
			return fmt.Errorf("-archive %q: want train, val or wds", p.archive)
		}
	}
	if o.Layout == "" {
		var err error
		if o, err = input(p); err != nil {
			return err
		}
	}
	// WREN_BACKEND, WREN_STORE, ... or ~/.config/wren/config.yaml choose
	// the backend (local processes, or AWS Lambda) and the store; flags win.
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	ex, err := cfg.Executor(ctx, wren.Options{Store: p.store, Parallelism: p.parallel})
	if err != nil {
		return err
	}
	defer ex.Close()
	t := time.Now()
	var job *wren.Job[featurize.ShardResult]
	o.Output, o.Size, o.ImagesPerCall = p.out, p.size, p.perCall
	o.GIST = featurize.GISTOptions{Gray: p.gray}
	o.OnJob = func(j *wren.Job[featurize.ShardResult]) { job = j }
	rep, err := featurize.Run(ctx, ex, o)
	if err != nil {
		return err
	}
	el := time.Since(t)
	from := "a tree"
	if o.Layout != featurize.LayoutTree {
		from = fmt.Sprintf("%d archives (%d ranges indexed now, the rest from the kept index)", len(o.Archives), rep.Indexed)
		if o.Archives == nil {
			from = fmt.Sprintf("the archives in %s (%d ranges indexed now)", o.Input, rep.Indexed)
		}
	}
	fmt.Printf("featurized %d images of %d classes from %s into %d shards (%d resumed) of %d-d GIST at %dx%d in %v (%.1f images/s)\n",
		rep.Images, len(rep.Classes), from, rep.Shards, rep.Resumed, rep.Dim, p.size, p.size, el.Round(time.Millisecond), float64(rep.Images)/el.Seconds())
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
	fmt.Println("features:", p.out)
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
