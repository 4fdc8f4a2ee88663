package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/internal/mnist"
	"github.com/wrenml/wren/ps"
	"github.com/wrenml/wren/sgd"
)

// benchSGD trains softmax on MNIST sequentially and with HOGWILD! on 1, 2
// and 4 workers, and logistic regression on a generated sparse problem,
// and prints one JSON object.
func benchSGD(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench sgd", flag.ContinueOnError)
	epochs := fs.Int("epochs", 5, "epochs over MNIST")
	workersFlag := fs.String("workers", "1,2,4", "HOGWILD! worker counts")
	localSteps := fs.Int("local-steps", 8, "minibatches between pushes")
	batch := fs.Int("batch", 100, "minibatch size")
	sparseN := fs.Int("sparse-examples", 20000, "examples of the sparse problem (0: skip it)")
	eta0 := fs.Float64("eta0", 1.0, "learning rate: eta0 / (1+t)^power")
	power := fs.Float64("power", 0.3, "learning rate decay power")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "wren-bench-sgd-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	train, test, err := mnist.Datasets()
	if err != nil {
		return err
	}
	var counts []int
	for _, f := range strings.Split(*workersFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("bench sgd: -workers %q", *workersFlag)
		}
		counts = append(counts, n)
	}
	maxW := 1
	for _, n := range counts {
		maxW = max(maxW, n)
	}
	ex, err := wren.NewExecutor(ctx, wren.Options{Store: dir, Parallelism: maxW, Progress: wren.ProgressOff})
	if err != nil {
		return err
	}
	defer ex.Close()
	if err := sgd.WriteShards(ctx, ex.Store(), "mnist", train, 12); err != nil {
		return err
	}
	client, err := ps.Open(ctx, ps.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	defer client.Close()
	base := sgd.Options{Loss: sgd.Softmax{Classes: 10}, Data: "mnist", Epochs: *epochs, BatchSize: *batch, LocalSteps: *localSteps,
		LR: sgd.InvScaling(*eta0, *power), L2: 1e-5, Seed: 1, Eval: test}
	entry := func(r *sgd.Result, workers int) map[string]any {
		return map[string]any{"workers": workers, "examples_per_s": round(r.ExamplesPerSecond, 4), "test_accuracy": round(r.Final.Accuracy, 4),
			"test_loss": round(r.Final.Loss, 4), "epochs": *epochs, "seconds": round(r.Wall.Seconds(), 4)}
	}
	cfg := base
	cfg.Model = "seq"
	seq, err := sgd.TrainLocal(ctx, ex.Store(), cfg)
	if err != nil {
		return err
	}
	out := map[string]any{"problem": "MNIST softmax, 60000 x 784, 10 classes", "local_steps": *localSteps, "batch": *batch, "sequential": entry(seq, 1)}
	var hw []map[string]any
	for _, n := range counts {
		cfg := base
		cfg.Model, cfg.Workers = "hogwild-"+strconv.Itoa(n), n
		r, err := sgd.Train(ctx, ex, client, cfg)
		if err != nil {
			return err
		}
		e := entry(r, n)
		e["vs_sequential"] = round(r.ExamplesPerSecond/seq.ExamplesPerSecond, 4)
		hw = append(hw, e)
	}
	out["hogwild"] = hw
	if *sparseN > 0 {
		spec := sgd.SparseSpec{Examples: *sparseN, Noise: 0.1, Seed: 7}
		hidden, err := sgd.GenerateSparse(ctx, ex.Store(), "sparse", spec)
		if err != nil {
			return err
		}
		scfg := sgd.Options{Model: "sparse", Loss: sgd.Logistic{}, Data: "sparse", Features: 1 << 20, Workers: 2, Epochs: 3, BatchSize: 50, LocalSteps: 2, LR: sgd.Constant(0.5), Seed: 1}
		sr, err := sgd.Train(ctx, ex, client, scfg)
		if err != nil {
			return err
		}
		lm, err := sr.Model(ctx)
		if err != nil {
			return err
		}
		agree := 0
		for j, w := range hidden {
			if (lm.W[j*2+1] > 0) == (w > 0) {
				agree++
			}
		}
		scfg.Model = "sparse-seq"
		ss, err := sgd.TrainLocal(ctx, ex.Store(), scfg)
		if err != nil {
			return err
		}
		out["sparse"] = map[string]any{"problem": "generated logistic, 1M features, 50 non-zeros an example", "workers": 2, "epochs": 3,
			"examples_per_s": round(sr.ExamplesPerSecond, 4), "sequential_examples_per_s": round(ss.ExamplesPerSecond, 4),
			"support_sign_recovered": round(float64(agree)/float64(len(hidden)), 4)}
	}
	return printJSON(out)
}
