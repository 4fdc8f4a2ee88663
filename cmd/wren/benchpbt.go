package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/internal/mnist"
	"github.com/wrenml/wren/linear"
	"github.com/wrenml/wren/sgd"
	"github.com/wrenml/wren/tune"
)

// mnistFull is MNIST (pixels in [0, 1]), loaded once per worker process.
var mnistFull = sync.OnceValues(func() (*[2]*linear.Dataset, error) {
	train, test, err := mnist.Datasets()
	if err != nil {
		return nil, err
	}
	return &[2]*linear.Dataset{train, test}, nil
})

// pbtSoftmax is examples/sweep's softmax SGD objective: the shards under
// "data", batches of 100, InvScaling(lr, 0.3), the trial's L2, for Budget()
// epochs in all (or "epochs" without a budget), continuing from its
// checkpoint (the model and the schedule's step), reporting the test
// accuracy.
var pbtSoftmax = wren.Register("bench.pbt-softmax", func(ctx context.Context, p tune.Params) (tune.Metrics, error) {
	d, err := mnistFull()
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
	epochs := p.Budget()
	if epochs == 0 {
		epochs = p.Int("epochs")
	}
	cfg := sgd.Options{Model: "pbt", Loss: sgd.Softmax{Classes: 10}, Data: p.String("data"), BatchSize: 100,
		Epochs: epochs - held, LR: sgd.InvScaling(p.Float("lr"), 0.3), L2: p.Float("l2"), Seed: 1, Eval: d[1],
		Logger: slog.New(slog.DiscardHandler)}
	if len(state) >= 8 {
		cfg.InitialStep = int64(binary.LittleEndian.Uint64(state))
		cfg.Initial = make([]float64, (len(state)-8)/8)
		for i := range cfg.Initial {
			cfg.Initial[i] = math.Float64frombits(binary.LittleEndian.Uint64(state[8+8*i:]))
		}
	}
	if cfg.Epochs <= 0 {
		pt, err := sgd.EvaluateParams(ctx, cfg.Loss, cfg.Initial, d[1])
		if err != nil {
			return nil, err
		}
		return tune.Metrics{"accuracy": pt.Accuracy}, nil
	}
	run, err := sgd.TrainLocal(ctx, st, cfg)
	if err != nil {
		return nil, err
	}
	v := run.Params()
	b := binary.LittleEndian.AppendUint64(make([]byte, 0, 8+8*len(v)), uint64(run.Steps))
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
	}
	if err := p.SaveCheckpoint(ctx, b); err != nil {
		return nil, err
	}
	return tune.Metrics{"accuracy": run.Final.Accuracy}, nil
})

// benchPBT compares population-based training of softmax SGD on MNIST
// with the grid it replaces: 3 learning rates x 3 L2 strengths over
// examples/sweep's ranges, epochs each (9: 81 epochs), against PBT
// populations trained 1 epoch an interval for epochs intervals, one run
// per seed; the target is PBT reaching the grid's best accuracy in no more
// epochs.
func benchPBT(ctx context.Context, ex *wren.Executor, population, epochs, seeds int) (map[string]any, error) {
	d, err := mnistFull()
	if err != nil {
		return nil, err
	}
	prefix := "bench-pbt/mnist"
	if err := sgd.WriteShards(ctx, ex.Store(), prefix, d[0], 4); err != nil {
		return nil, err
	}
	grid, err := tune.Sweep(ctx, ex, pbtSoftmax, tune.Space{
		"lr": tune.Grid(0.05, 0.5, 5), "l2": tune.Grid(1e-6, 3e-5, 1e-3), "epochs": tune.Grid(float64(epochs)), "data": tune.Choice(prefix),
	}, tune.Options{Metric: "accuracy", Mode: tune.Max, Prefix: "bench-pbt/grid"})
	if err != nil {
		return nil, err
	}
	if bad := grid.Errors(); len(bad) > 0 {
		return nil, fmt.Errorf("grid trial %s: %s", bad[0].Label, bad[0].Err)
	}
	gridBest := grid.Trials[0].Metrics["accuracy"]
	out := map[string]any{
		"grid": map[string]any{"trials": len(grid.Trials), "epochs": epochs * len(grid.Trials), "best_accuracy": round(gridBest, 4),
			"best": grid.Trials[0].Label, "wall_s": round(grid.Wall.Seconds(), 2)},
	}
	var bests []float64
	var runs []map[string]any
	for seed := 1; seed <= seeds; seed++ {
		res, err := tune.Sweep(ctx, ex, pbtSoftmax, tune.Space{
			"lr": tune.LogUniform(0.05, 5), "l2": tune.LogUniform(1e-6, 1e-3), "data": tune.Choice(prefix),
		}, tune.Options{Metric: "accuracy", Mode: tune.Max, Seed: uint64(seed), Prefix: fmt.Sprintf("bench-pbt/pbt-%d", seed),
			PBT: &tune.PBT{Population: population, Intervals: epochs, Interval: 1}})
		if err != nil {
			return nil, err
		}
		if bad := res.Errors(); len(bad) > 0 {
			return nil, fmt.Errorf("PBT run %s: %s", bad[0].Label, bad[0].Err)
		}
		best := res.Trials[0].Metrics["accuracy"]
		bests = append(bests, best)
		runs = append(runs, map[string]any{"seed": seed, "best_accuracy": round(best, 4), "best": res.Trials[0].Label,
			"epochs": res.BudgetUnits, "wall_s": round(res.Wall.Seconds(), 2)})
	}
	slices.Sort(bests)
	med := bests[len(bests)/2]
	out["pbt"] = map[string]any{"population": population, "intervals": epochs, "epochs": population * epochs, "runs": runs,
		"median_best_accuracy": round(med, 4)}
	out["pbt_median_minus_grid"] = round(med-gridBest, 4)
	out["pbt_reaches_grid_with_no_more_epochs"] = med >= gridBest && population*epochs <= epochs*len(grid.Trials)
	return out, nil
}
