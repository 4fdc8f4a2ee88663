package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/dataset"
	"github.com/wrenml/wren/linear"

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
	sparseFeatures := fs.Int("sparse-features", 200000, "features of the sparse problem")
	sparseNNZ := fs.Int("sparse-nonzeros", 30, "non-zeros an example of the sparse problem")
	ratings := fs.Int("ratings", 500000, "ratings of the matrix factorization problem (0: skip it)")
	eta0 := fs.Float64("eta0", 1.0, "learning rate: eta0 / (1+t)^power")
	power := fs.Float64("power", 0.3, "learning rate decay power")
	if err := fs.Parse(args); err != nil {
		return err
	}
	// Refused before anything runs: sgd's options read 0 as "the default",
	// so these would have run something other than what the JSON says.
	switch {
	case *epochs < 1 || *batch < 1 || *localSteps < 1:
		return fmt.Errorf("bench sgd: -epochs %d, -batch %d, -local-steps %d: want 1 or more of each", *epochs, *batch, *localSteps)
	case *sparseN < 0 || *ratings < 0:
		return fmt.Errorf("bench sgd: -sparse-examples %d, -ratings %d: want 0 (skip it) or more", *sparseN, *ratings)
	case *sparseN > 0 && (*sparseNNZ < 5 || *sparseNNZ > *sparseFeatures):
		return fmt.Errorf("bench sgd: -sparse-nonzeros %d, -sparse-features %d: want 5 to the features' number of non-zeros an example", *sparseNNZ, *sparseFeatures)
	case *ratings > 0 && *ratings < minBenchRatings:
		return fmt.Errorf("bench sgd: -ratings %d: want 0 (skip it) or at least %d (10 %% held out, 8 shards)", *ratings, minBenchRatings)
	case !finitePositive(*eta0) || math.IsNaN(*power) || math.IsInf(*power, 0):
		return fmt.Errorf("bench sgd: -eta0 %v, -power %v: want a positive learning rate and a finite power", *eta0, *power)
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
	counts, err := positiveList("workers", *workersFlag)
	if err != nil {
		return fmt.Errorf("bench sgd: %w", err)
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
		sp, err := benchSparse(ctx, ex, client, dir, *sparseN, *sparseFeatures, *sparseNNZ)
		if err != nil {
			return err
		}
		out["sparse"] = sp
	}
	if *ratings > 0 {
		mf, err := benchFactors(ctx, ex, client, *ratings)
		if err != nil {
			return err
		}
		out["factorization"] = mf
	}
	return printJSON(out)
}

// sklearnScript fits scikit-learn's SGDClassifier (log loss, plain SGD) on a
// libsvm file and prints its rate and training accuracy as JSON.
const sklearnScript = `
import json, sys, time, warnings
warnings.filterwarnings("ignore")
from sklearn.datasets import load_svmlight_file
from sklearn.linear_model import SGDClassifier
X, y = load_svmlight_file(sys.argv[1], n_features=int(sys.argv[2]))
epochs, alpha = int(sys.argv[3]), float(sys.argv[4])
clf = SGDClassifier(loss="log_loss", alpha=alpha, max_iter=epochs, tol=None, random_state=1)
t = time.perf_counter()
clf.fit(X, y)
dt = time.perf_counter() - t
print(json.dumps({"examples_per_s": X.shape[0] * epochs / dt, "train_accuracy": clf.score(X, y), "seconds": dt}))
`

// python finds a python3 with scikit-learn: the PATH's, or Debian's.
func pythonWithSklearn(ctx context.Context) string {
	for _, py := range []string{"python3", "/usr/bin/python3"} {
		if exec.CommandContext(ctx, py, "-c", "import sklearn").Run() == nil {
			return py
		}
	}
	return ""
}

// benchSparse trains logistic regression on a generated sparse problem
// (libsvm shards) sequentially, with 2 HOGWILD! workers, and with
// scikit-learn's SGDClassifier when it is installed: the same data, epochs
// and penalty; accuracy on the training examples.
func benchSparse(ctx context.Context, ex *wren.Executor, client *ps.Client, dir string, n, features, nnz int) (map[string]any, error) {
	const epochs = 5
	spec := sgd.SparseSpec{Features: features, Examples: n, NonZeros: nnz, Support: min(500, features/4), Noise: 0.1, Seed: 7}
	if _, err := sgd.GenerateSparse(ctx, ex.Store(), "sparse", spec); err != nil {
		return nil, err
	}
	// The shards as one libsvm file: the evaluation set, and scikit-learn's input.
	var all bytes.Buffer
	for i := 0; ; i++ {
		b, err := blob.ReadAll(ctx, ex.Store(), "sparse/"+dataset.ShardName(i)+".libsvm")
		if errors.Is(err, blob.ErrNotFound) {
			break
		}
		if err != nil {
			return nil, err
		}
		all.Write(b)
	}
	file := filepath.Join(dir, "sparse.libsvm")
	if err := os.WriteFile(file, all.Bytes(), 0o644); err != nil {
		return nil, err
	}
	ds, _, err := linear.ReadLibSVM(bytes.NewReader(all.Bytes()), linear.LibSVMOptions{Dim: features})
	if err != nil {
		return nil, err
	}
	const l2 = 1e-5
	cfg := sgd.Options{Model: "sparse", Loss: sgd.Logistic{}, Data: "sparse", Features: features, Workers: 2, Epochs: epochs, BatchSize: 10, LocalSteps: 8,
		LR: sgd.InvScaling(0.5, 0.1), L2: l2, Seed: 1, Eval: ds, EvalEvery: time.Hour}
	hw, err := sgd.Train(ctx, ex, client, cfg)
	if err != nil {
		return nil, err
	}
	// Windows of 128 minibatches touch more than 1/16 of the model: the
	// workers pull and push all of it, once a window.
	wcfg := cfg
	wcfg.Model, wcfg.LocalSteps = "sparse-whole", 128
	hwWhole, err := sgd.Train(ctx, ex, client, wcfg)
	if err != nil {
		return nil, err
	}
	// Windows of 1,024 minibatches: each worker pushes about once an
	// epoch of its half.
	ecfg := cfg
	ecfg.Model, ecfg.LocalSteps = "sparse-epoch", 1024
	hwEpoch, err := sgd.Train(ctx, ex, client, ecfg)
	if err != nil {
		return nil, err
	}
	cfg.Model = "sparse-seq"
	seq, err := sgd.TrainLocal(ctx, ex.Store(), cfg)
	if err != nil {
		return nil, err
	}
	out := map[string]any{"problem": fmt.Sprintf("generated logistic, %d examples, %d features, %d non-zeros an example", n, features, nnz),
		"epochs": epochs, "batch": cfg.BatchSize, "local_steps": cfg.LocalSteps, "l2": l2,
		"sequential": map[string]any{"examples_per_s": round(seq.ExamplesPerSecond, 4), "training_examples_per_s": round(trainingRate(seq), 4),
			"read_s": round(seq.Workers[0].Read.Seconds(), 4), "train_accuracy": round(seq.Final.Accuracy, 4)},
		"hogwild": hogwildRow(hw, seq, cfg.LocalSteps), "hogwild_whole_model": hogwildRow(hwWhole, seq, wcfg.LocalSteps),
		"hogwild_epoch_windows": hogwildRow(hwEpoch, seq, ecfg.LocalSteps)}
	py := pythonWithSklearn(ctx)
	if py == "" {
		out["sklearn"] = "skipped: no python3 with scikit-learn (apt-get install python3-sklearn)"
		return out, nil
	}
	res, err := exec.CommandContext(ctx, py, "-c", sklearnScript, file, strconv.Itoa(features), strconv.Itoa(epochs), fmt.Sprint(l2)).Output()
	if err != nil {
		out["sklearn"] = "failed: " + err.Error()
		return out, nil
	}
	var sk map[string]float64
	if err := json.Unmarshal(res, &sk); err != nil {
		return nil, fmt.Errorf("bench sgd: scikit-learn printed %q: %w", res, err)
	}
	out["sklearn"] = map[string]any{"examples_per_s": round(sk["examples_per_s"], 4), "train_accuracy": round(sk["train_accuracy"], 4), "model": "SGDClassifier(log_loss), batch 1"}
	// scikit-learn's rate is its fit's (the file read before the clock
	// starts): compared with TrainLocal's without reading its shards.
	out["sequential_vs_sklearn"] = round(trainingRate(seq)/sk["examples_per_s"], 4)
	out["hogwild_vs_sklearn"] = round(hw.ExamplesPerSecond/sk["examples_per_s"], 4)
	out["hogwild_whole_model_vs_sklearn"] = round(hwWhole.ExamplesPerSecond/sk["examples_per_s"], 4)
	out["hogwild_epoch_windows_vs_sklearn"] = round(hwEpoch.ExamplesPerSecond/sk["examples_per_s"], 4)
	return out, nil
}

// trainingRate is a sequential run's examples a second without the time
// it took reading its shards.
func trainingRate(r *sgd.Result) float64 {
	d := r.Wall
	if len(r.Workers) == 1 && r.Workers[0].Read < d {
		d -= r.Workers[0].Read
	}
	return float64(r.Examples) / d.Seconds()
}

func pushes(r *sgd.Result) int64 {
	var n int64
	for _, w := range r.Workers {
		n += w.Pushes
	}
	return n
}

// workerSeconds sums one of the workers' times.
func workerSeconds(r *sgd.Result, d func(sgd.WorkerStats) time.Duration) float64 {
	var t time.Duration
	for _, w := range r.Workers {
		t += d(w)
	}
	return t.Seconds()
}

func pullSeconds(r *sgd.Result) float64 {
	return workerSeconds(r, func(w sgd.WorkerStats) time.Duration { return w.Pull })
}

func pushSeconds(r *sgd.Result) float64 {
	return workerSeconds(r, func(w sgd.WorkerStats) time.Duration { return w.Push })
}

func computeSeconds(r *sgd.Result) float64 {
	return workerSeconds(r, func(w sgd.WorkerStats) time.Duration { return w.Compute })
}

// hogwildRow is a sparse HOGWILD! run's row: its rate against the
// sequential run's (with and without reading), pushes and where the
// workers' time went.
func hogwildRow(r, seq *sgd.Result, localSteps int) map[string]any {
	return map[string]any{"workers": len(r.Workers), "local_steps": localSteps, "examples_per_s": round(r.ExamplesPerSecond, 4), "train_accuracy": round(r.Final.Accuracy, 4),
		"vs_sequential": round(r.ExamplesPerSecond/seq.ExamplesPerSecond, 4), "vs_sequential_training": round(r.ExamplesPerSecond/trainingRate(seq), 4),
		"pushes": pushes(r), "pull_s": round(pullSeconds(r), 4), "push_wait_s": round(pushSeconds(r), 4), "compute_s": round(computeSeconds(r), 4)}
}

// minBenchRatings is the fewest ratings bench sgd factorizes: a held-out
// tenth and 8 shards of what is left.
const minBenchRatings = 100

// benchFactors factorizes generated ratings sequentially and with 2
// HOGWILD! workers: held-out RMSE after the same epochs, and rates.
func benchFactors(ctx context.Context, ex *wren.Executor, client *ps.Client, count int) (map[string]any, error) {
	spec := sgd.RatingsSpec{Users: max(count/50, 10), Items: max(count/100, 10), Rank: 10, Count: count, Mean: 3.5, Noise: 0.5, Seed: 3}
	all, err := sgd.GenerateRatings(spec)
	if err != nil {
		return nil, err
	}
	train, test := all.Split(0.1, 1)
	if err := sgd.WriteRatings(ctx, ex.Store(), "ratings", train, 8); err != nil {
		return nil, err
	}
	cfg := sgd.FactorOptions{Model: "mf", Data: "ratings", Rank: 10, Epochs: 10, BatchSize: 50, LocalSteps: 8, LR: sgd.Constant(1), L2: 1e-5, Seed: 2, Eval: test, EvalEvery: time.Hour}
	seq, err := sgd.TrainFactorsLocal(ctx, ex.Store(), cfg)
	if err != nil {
		return nil, err
	}
	cfg.Workers = 2
	hw, err := sgd.TrainFactors(ctx, ex, client, cfg)
	if err != nil {
		return nil, err
	}
	// Windows of 1,024 minibatches touch most of the model: the workers
	// pull and push all of it, a few times an epoch.
	wcfg := cfg
	wcfg.Model, wcfg.LocalSteps = "mf-whole", 1024
	hwWhole, err := sgd.TrainFactors(ctx, ex, client, wcfg)
	if err != nil {
		return nil, err
	}
	return map[string]any{"problem": fmt.Sprintf("generated ratings: %d users, %d items, rank %d, noise %.1f, %d ratings (10 %% held out)", spec.Users, spec.Items, spec.Rank, spec.Noise, count),
		"epochs": cfg.Epochs, "batch": cfg.BatchSize, "local_steps": cfg.LocalSteps,
		"sequential": map[string]any{"examples_per_s": round(seq.ExamplesPerSecond, 4), "test_rmse": round(seq.Final.RMSE, 4)},
		"hogwild": map[string]any{"workers": 2, "examples_per_s": round(hw.ExamplesPerSecond, 4), "test_rmse": round(hw.Final.RMSE, 4),
			"vs_sequential": round(hw.ExamplesPerSecond/seq.ExamplesPerSecond, 4), "pushes": pushes(hw)},
		"rmse_vs_sequential": round(hw.Final.RMSE/seq.Final.RMSE, 4),
		"hogwild_whole_model": map[string]any{"workers": 2, "local_steps": wcfg.LocalSteps, "examples_per_s": round(hwWhole.ExamplesPerSecond, 4), "test_rmse": round(hwWhole.Final.RMSE, 4),
			"vs_sequential": round(hwWhole.ExamplesPerSecond/seq.ExamplesPerSecond, 4), "pushes": pushes(hwWhole),
			"push_wait_s": round(pushSeconds(hwWhole), 4), "compute_s": round(computeSeconds(hwWhole), 4)},
		"whole_model_rmse_vs_sequential": round(hwWhole.Final.RMSE/seq.Final.RMSE, 4)}, nil
}
