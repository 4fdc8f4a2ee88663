// Command sweep runs four hyperparameter searches on MNIST with wren:
// linear's logistic regression over the L2 strength x feature scaling (a
// grid), then softmax SGD over the learning rate x L2 (random samples) with
// asynchronous successive halving over epochs, each promoted trial
// continuing from its checkpoint, then the logistic regression searched by
// TPE, then softmax SGD by population-based training. It prints each
// search's table and best trial and writes sweep.png, sweep-sgd.png, the
// TPE search's history sweep-tpe.png and the PBT lineage sweep-pbt.png.
//
//	go run ./examples/sweep [-train 10000] [-store DIR] [-out sweep.png]
package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/signal"
	"strings"
	"sync"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/config"
	"github.com/wrenml/wren/internal/mnist"
	"github.com/wrenml/wren/linear"
	"github.com/wrenml/wren/sgd"
	"github.com/wrenml/wren/tune"
)

// data is MNIST (pixels in [0, 1]), loaded once per worker process.
var data = sync.OnceValues(func() (*[2]*linear.Dataset, error) {
	train, test, err := mnist.Datasets()
	if err != nil {
		return nil, err
	}
	return &[2]*linear.Dataset{train, test}, nil
})

// Logistic fits multinomial logistic regression on the first "n" training
// images with the trial's L2 strength and scaling, and reports the test
// accuracy.
var Logistic = wren.Register("sweep.logistic", func(ctx context.Context, p tune.Params) (tune.Metrics, error) {
	d, err := data()
	if err != nil {
		return nil, err
	}
	train, _, err := d[0].Split(ctx, float64(p.Int("n"))/float64(d[0].N), 1)
	if err != nil {
		return nil, err
	}
	fit, err := linear.Logistic(ctx, train, linear.LogisticOptions{L2: p.Float("l2"), NoScale: p.String("scaling") == "none", MaxIter: 60})
	if err != nil {
		return nil, err
	}
	ev := fit.Evaluate(d[1])
	return tune.Metrics{"accuracy": ev.Accuracy, "log_loss": ev.LogLoss}, nil
})

// SGD trains softmax on the shards under "data" for Budget() epochs,
// continuing from the checkpoint of the rung the trial was promoted from
// (or from its own budget's, when an earlier attempt of this run saved it),
// and reports the test accuracy.
var SGD = wren.Register("sweep.sgd", func(ctx context.Context, p tune.Params) (tune.Metrics, error) {
	d, err := data()
	if err != nil {
		return nil, err
	}
	st, err := wren.OpenStore(ctx, p.StoreURL())
	if err != nil {
		return nil, err
	}
	defer st.Close()
	state, held, err := p.LoadCheckpoint(ctx)
	if err != nil {
		return nil, err
	}
	cfg := sgd.Options{Model: "sweep", Loss: sgd.Softmax{Classes: 10}, Data: p.String("data"), BatchSize: 100,
		Epochs: p.Budget() - held, LR: sgd.InvScaling(p.Float("lr"), 0.3), L2: p.Float("l2"), Seed: 1, Eval: d[1]}
	if state != nil {
		// The model and the learning rate's step it reached: the promoted
		// run follows the schedule of one straight run.
		step, params, ok := decodeCheckpoint(state)
		if !ok {
			slog.Warn("sweep: a checkpoint without the learning rate's step (an older one): its schedule starts at 0", "trial", p.ResumeKey())
		}
		cfg.Initial, cfg.InitialStep = params, step
	}
	if cfg.Epochs <= 0 {
		// This budget's checkpoint is complete: evaluate it as it is.
		pt, err := sgd.EvaluateParams(ctx, cfg.Loss, cfg.Initial, d[1])
		if err != nil {
			return nil, err
		}
		return tune.Metrics{"accuracy": pt.Accuracy, "loss": pt.Loss}, nil
	}
	run, err := sgd.TrainLocal(ctx, st, cfg)
	if err != nil {
		return nil, err
	}
	if err := p.SaveCheckpoint(ctx, encodeCheckpoint(run.Steps, run.Params())); err != nil {
		return nil, err
	}
	return tune.Metrics{"accuracy": run.Final.Accuracy, "loss": run.Final.Loss}, nil
})

// checkpointMagic starts a checkpoint that keeps the learning rate's step;
// an older one is the model's values alone.
const checkpointMagic = "WRSGDCK1"

// encodeCheckpoint lays out a trial's state: the magic, the step, the
// model's float64 values (little-endian).
func encodeCheckpoint(step int64, v []float64) []byte {
	b := make([]byte, 16+8*len(v))
	copy(b, checkpointMagic)
	binary.LittleEndian.PutUint64(b[8:], uint64(step))
	for i, x := range v {
		binary.LittleEndian.PutUint64(b[16+8*i:], math.Float64bits(x))
	}
	return b
}

// decodeCheckpoint reads encodeCheckpoint's layout; ok is false for an
// older checkpoint (values only), whose step is 0.
func decodeCheckpoint(b []byte) (step int64, v []float64, ok bool) {
	if len(b) >= 16 && string(b[:8]) == checkpointMagic {
		step, b, ok = int64(binary.LittleEndian.Uint64(b[8:])), b[16:], true
	}
	v = make([]float64, len(b)/8)
	for i := range v {
		v[i] = math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:]))
	}
	return step, v, ok
}

func main() {
	wren.Init()
	n := flag.Int("train", 10000, "training images for the logistic sweep")
	store := flag.String("store", "", "wren's store (default: $WREN_STORE, the config file, else ./.wren)")
	out := flag.String("out", "sweep.png", "the logistic sweep's plot (the SGD sweep's goes beside it, -sgd)")
	flag.Parse()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *n, *store, *out, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "sweep:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, n int, store, out string, w *os.File) error {
	if n < 1 {
		return fmt.Errorf("-train %d: want 1 training image or more", n)
	}
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	ex, err := cfg.Executor(ctx, wren.Options{Store: store})
	if err != nil {
		return err
	}
	defer ex.Close()

	fmt.Fprintf(w, "logistic regression on %d MNIST images: L2 x feature scaling\n", n)
	res, err := tune.Sweep(ctx, ex, Logistic, tune.Space{
		"l2":      tune.Grid(1e-6, 1e-5, 1e-4, 1e-3, 1e-2),
		"scaling": tune.Labels("max-abs", "none"),
		"n":       tune.Grid(float64(n)),
	}, tune.Options{Metric: "accuracy", Mode: tune.Max, Seed: 1})
	if err != nil {
		return err
	}
	res.WriteTable(w, 10)
	if err := res.Plot(out); err != nil {
		return err
	}
	fmt.Fprintf(w, "plot: %s\n\n", out)

	// Softmax SGD with ASHA over epochs: the shards go to the store once.
	d, err := data()
	if err != nil {
		return err
	}
	prefix := "sweep-data/mnist"
	if err := sgd.WriteShards(ctx, ex.Store(), prefix, d[0], 4); err != nil {
		return err
	}
	fmt.Fprintln(w, "softmax SGD on MNIST: learning rate x L2, successive halving over 1, 3, 9 epochs")
	res2, err := tune.Sweep(ctx, ex, SGD, tune.Space{
		"lr":   tune.LogUniform(0.05, 5),
		"l2":   tune.LogUniform(1e-6, 1e-3),
		"data": tune.Choice(prefix),
	}, tune.Options{Metric: "accuracy", Mode: tune.Max, Samples: 9, Seed: 2, ASHA: &tune.ASHA{MinBudget: 1, MaxBudget: 9, Reduction: 3}})
	if err != nil {
		return err
	}
	res2.WriteTable(w, 5)
	sgdOut := strings.TrimSuffix(out, ".png") + "-sgd.png"
	if err := res2.Plot(sgdOut); err != nil {
		return err
	}
	fmt.Fprintf(w, "epochs run: %d (all 9 trials for 9 epochs: 81)\nplot: %s\n", res2.BudgetUnits, sgdOut)

	// The same logistic regression searched by TPE: each trial suggested
	// from the ones finished.
	fmt.Fprintln(w, "\nlogistic regression: L2 x feature scaling by TPE, 12 trials")
	res3, err := tune.Sweep(ctx, ex, Logistic, tune.Space{
		"l2":      tune.LogUniform(1e-6, 1e-2),
		"scaling": tune.Choice("max-abs", "none"),
		"n":       tune.Grid(float64(n)),
	}, tune.Options{Metric: "accuracy", Mode: tune.Max, Seed: 3, TPE: &tune.TPE{Trials: 12, Startup: 6}})
	if err != nil {
		return err
	}
	res3.WriteTable(w, 3) // with the parameters' importances
	tpeOut := strings.TrimSuffix(out, ".png") + "-tpe.png"
	if err := res3.PlotHistory(tpeOut); err != nil {
		return err
	}
	fmt.Fprintf(w, "history: %s\n", tpeOut)

	// Softmax SGD by population-based training: the worst member copies a
	// better one's checkpoint and learning rate, perturbed, every epoch; 20
	// epochs in all, no more than the ASHA sweep ran.
	fmt.Fprintln(w, "\nsoftmax SGD by population-based training: 4 members, 5 intervals of 1 epoch")
	res4, err := tune.Sweep(ctx, ex, SGD, tune.Space{
		"lr":   tune.LogUniform(0.05, 5),
		"l2":   tune.LogUniform(1e-6, 1e-3),
		"data": tune.Choice(prefix),
	}, tune.Options{Metric: "accuracy", Mode: tune.Max, Seed: 4, PBT: &tune.PBT{Population: 4, Intervals: 5, Interval: 1}})
	if err != nil {
		return err
	}
	res4.WriteTable(w, 4)
	pbtOut := strings.TrimSuffix(out, ".png") + "-pbt.png"
	if err := res4.PlotLineage(pbtOut); err != nil {
		return err
	}
	fmt.Fprintf(w, "epochs run: %d, best accuracy %.4f (the ASHA sweep: %d epochs, best %.4f); lineage: %s\n",
		res4.BudgetUnits, res4.Trials[0].Metrics["accuracy"], res2.BudgetUnits, res2.Trials[0].Metrics["accuracy"], pbtOut)
	var b bytes.Buffer
	if err := res.WriteCSV(&b); err != nil {
		return err
	}
	_, err = blob.DeletePrefix(ctx, ex.Store(), "sweep-data/")
	return err
}
