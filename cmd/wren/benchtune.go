package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"time"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/tune"
)

// spinTrial is the bench's objective: a CPU-busy loop of "ms" milliseconds.
var spinTrial = wren.Register("bench.tune-spin", func(ctx context.Context, p tune.Params) (tune.Metrics, error) {
	x := spin(time.Duration(p.Float("ms") * float64(time.Millisecond)))
	return tune.Metrics{"score": float64(x % 1000), "i": p.Float("i")}, nil
})

// benchTune runs a sweep of CPU-busy trials, then the same number
// suggested by TPE (a job per trial), and compares their wall times with
// the ideal (trials x trial time / parallelism); -search and -pbt run the
// other tune benchmarks instead.
func benchTune(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench tune", flag.ContinueOnError)
	trials := fs.Int("trials", 200, "trials")
	trialMS := fs.Float64("trial-ms", 50, "CPU-busy milliseconds per trial")
	par := fs.Int("parallel", runtime.NumCPU(), "worker processes")
	search := fs.Bool("search", false, "compare wren's random search and TPE with Optuna's TPE on Branin, Hartmann-6 and softmax SGD on an MNIST subsample instead")
	seeds := fs.Int("seeds", 20, "-search: seeds per method")
	pbt := fs.Bool("pbt", false, "compare population-based training of softmax SGD on MNIST with a 3 x 3 grid of runs over learning rate x L2 instead")
	population := fs.Int("population", 8, "-pbt: members")
	pbtRuns := fs.Int("pbt-runs", 3, "-pbt: PBT runs (seeds)")
	epochs := fs.Int("epochs", 9, "-pbt: each grid trial's epochs and PBT's one-epoch intervals")
	mnistSeeds := fs.Int("mnist-seeds", 5, "-search: seeds per method for softmax SGD on an MNIST subsample (0: skip it)")
	searchTrials := fs.Int("search-trials", 50, "-search: trials per run")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case *pbt && (*population < 2 || *epochs < 1 || *pbtRuns < 1):
		return fmt.Errorf("bench tune -pbt: -population %d, -epochs %d, -pbt-runs %d: want a population of 2 or more and at least 1 epoch and 1 run", *population, *epochs, *pbtRuns)
	case *search && (*seeds < 1 || *searchTrials < 1 || *mnistSeeds < 0):
		return fmt.Errorf("bench tune -search: -seeds %d, -search-trials %d, -mnist-seeds %d: want at least 1 seed and 1 trial (and no negative MNIST seeds)", *seeds, *searchTrials, *mnistSeeds)
	case !*pbt && !*search && (*trials < 1 || !finiteAtLeast(*trialMS, 0) || *par < 1):
		return fmt.Errorf("bench tune: -trials %d, -trial-ms %v, -parallel %d: want at least 1 trial and 1 worker, and no negative time", *trials, *trialMS, *par)
	}
	// Each part runs on its own executor over a temporary store: worker
	// processes, or, for the search (many tiny trials one after another),
	// one in-process worker.
	opts := wren.Options{Parallelism: *par, Progress: wren.ProgressOff}
	if *search {
		opts = wren.Options{Backend: wren.InProcess(1), Progress: wren.ProgressOff}
	}
	dir, err := os.MkdirTemp("", "wren-bench-tune-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	opts.Store = dir
	ex, err := wren.NewExecutor(ctx, opts)
	if err != nil {
		return err
	}
	defer ex.Close()
	switch {
	case *pbt:
		res, err := benchPBT(ctx, ex, *population, *epochs, *pbtRuns)
		if err != nil {
			return err
		}
		res["bench"] = "tune -pbt"
		return printJSON(res)
	case *search:
		res, err := benchSearch(ctx, ex, *seeds, *mnistSeeds, *searchTrials)
		if err != nil {
			return err
		}
		res["bench"] = "tune -search"
		return printJSON(res)
	}
	// Start the workers first: a one-time cost, not the sweep's.
	if err := warmUp(ctx, ex, *par); err != nil {
		return err
	}
	space := tune.Space{"i": tune.Uniform(0, 1), "ms": tune.Grid(*trialMS)}
	res, err := tune.Sweep(ctx, ex, spinTrial, space, tune.Options{Metric: "score", Samples: *trials, Seed: 1})
	if err != nil {
		return err
	}
	ideal := float64(*trials) * *trialMS / 1000 / float64(*par)
	// The same trials suggested by TPE, each its own wren job launched as
	// a worker frees: what a trial costs beyond the sweep's one map
	// (the job's set-up and the suggestion), per trial.
	tpe, err := tune.Sweep(ctx, ex, spinTrial, space, tune.Options{Metric: "score", Seed: 1, TPE: &tune.TPE{Trials: *trials, Parallelism: *par},
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	perTrial := func(wall time.Duration) float64 {
		return round((wall.Seconds()-ideal)*float64(*par)/float64(*trials)*1000, 3)
	}
	return printJSON(map[string]any{
		"trials": len(res.Trials), "trial_ms": *trialMS, "parallelism": *par,
		"wall_s": round(res.Wall.Seconds(), 4), "ideal_s": round(ideal, 4),
		"efficiency": round(ideal/res.Wall.Seconds(), 4), "trial_time_s": round(res.TrialTime.Seconds(), 4),
		"overhead_ms_per_trial": perTrial(res.Wall), "failed": len(res.Errors()) + len(tpe.Errors()),
		"tpe_wall_s": round(tpe.Wall.Seconds(), 4), "tpe_efficiency": round(ideal/tpe.Wall.Seconds(), 4),
		"tpe_overhead_ms_per_trial": perTrial(tpe.Wall),
	})
}
