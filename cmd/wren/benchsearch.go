package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/internal/mnist"
	"github.com/wrenml/wren/linear"
	"github.com/wrenml/wren/sgd"
	"github.com/wrenml/wren/tune"
)

// The standard test functions of model-based search, to minimise.
var branin = wren.Register("bench.branin", func(ctx context.Context, p tune.Params) (tune.Metrics, error) {
	x1, x2 := p.Float("x1"), p.Float("x2")
	b, c := 5.1/(4*math.Pi*math.Pi), 5/math.Pi
	v := math.Pow(x2-b*x1*x1+c*x1-6, 2) + 10*(1-1/(8*math.Pi))*math.Cos(x1) + 10
	return tune.Metrics{"value": v}, nil
})

var hartmannA = [4][6]float64{{10, 3, 17, 3.5, 1.7, 8}, {0.05, 10, 17, 0.1, 8, 14}, {3, 3.5, 1.7, 10, 17, 8}, {17, 8, 0.05, 10, 0.1, 14}}
var hartmannP = [4][6]float64{{1312, 1696, 5569, 124, 8283, 5886}, {2329, 4135, 8307, 3736, 1004, 9991},
	{2348, 1451, 3522, 2883, 3047, 6650}, {4047, 8828, 8732, 5743, 1091, 381}}

var hartmann6 = wren.Register("bench.hartmann6", func(ctx context.Context, p tune.Params) (tune.Metrics, error) {
	alpha := [4]float64{1, 1.2, 3, 3.2}
	v := 0.0
	for i := range 4 {
		s := 0.0
		for j := range 6 {
			x := p.Float(fmt.Sprintf("x%d", j+1))
			s += hartmannA[i][j] * math.Pow(x-hartmannP[i][j]*1e-4, 2)
		}
		v -= alpha[i] * math.Exp(-s)
	}
	return tune.Metrics{"value": v}, nil
})

// mnistSubsample is the search's real objective's data: the first 6,000
// training and 2,000 test images of MNIST, pixels in [0, 1].
var mnistSubsample = sync.OnceValues(func() (*[2]*linear.Dataset, error) {
	tr, te, err := mnist.Load()
	if err != nil {
		return nil, err
	}
	out := [2]*linear.Dataset{}
	for i, c := range []struct {
		s *mnist.Set
		n int
	}{{tr, 6000}, {te, 2000}} {
		x := make([]float64, c.n*c.s.Dim)
		for j := range x {
			x[j] = c.s.X[j] / 255
		}
		if out[i], err = linear.FromDense(x, c.s.Dim, c.s.Labels[:c.n], 10); err != nil {
			return nil, err
		}
	}
	return &out, nil
})

// mnistSoftmax trains softmax by SGD (sgd.TrainLocal, 2 epochs) on the
// subsample's shards under "data" in the store "store", with the trial's
// learning rate (InvScaling, power 0.3), L2 and batch size, and reports the
// test error (1 - accuracy; 1 when training diverged).
var mnistSoftmax = wren.Register("bench.mnist-softmax", func(ctx context.Context, p tune.Params) (tune.Metrics, error) {
	d, err := mnistSubsample()
	if err != nil {
		return nil, err
	}
	st, err := wren.OpenStore(ctx, p.String("store"))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	run, err := sgd.TrainLocal(ctx, st, sgd.Options{Model: "search", Loss: sgd.Softmax{Classes: 10}, Data: p.String("data"),
		Epochs: 2, BatchSize: p.Int("batch"), LR: sgd.InvScaling(p.Float("lr"), 0.3), L2: p.Float("l2"), Seed: 1, Eval: d[1],
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	v := 1 - run.Final.Accuracy
	if math.IsNaN(v) {
		v = 1
	}
	return tune.Metrics{"value": v}, nil
})

// optunaScript runs Optuna's TPE by ask and tell: for each seed and trial
// it prints the suggested values as a JSON line and reads the objective's
// value back, so Optuna's trials run the very objective wren's do.
const optunaScript = `
import json, sys, warnings
warnings.simplefilter("ignore")
import optuna
from optuna.distributions import FloatDistribution, IntDistribution, CategoricalDistribution
optuna.logging.set_verbosity(optuna.logging.WARNING)
spec, seeds, trials, mv = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
dists = {}
for name, d in spec.items():
    k, lo, hi = d["kind"], d.get("lo", 0.0), d.get("hi", 0.0)
    if k == "uniform":
        dists[name] = FloatDistribution(lo, hi)
    elif k == "loguniform":
        dists[name] = FloatDistribution(lo, hi, log=True)
    elif k == "int":
        dists[name] = IntDistribution(int(lo), int(hi))
    elif k == "quniform":
        dists[name] = FloatDistribution(lo, hi, step=d["q"])
    elif k == "grid":
        dists[name] = CategoricalDistribution(d["values"])
    else:
        dists[name] = CategoricalDistribution(d["labels"])
for s in range(seeds):
    st = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=s+1, multivariate=mv))
    for i in range(trials):
        t = st.ask(dists)
        print(json.dumps(t.params), flush=True)
        st.tell(t, float(sys.stdin.readline()))
`

// searchFn is one function of the search benchmark, to minimise.
type searchFn struct {
	name     string
	task     *wren.Task[tune.Params, tune.Metrics]
	space    tune.Space // the searched dimensions
	fixed    map[string]string
	min, max float64 // the range the 5 % target is measured against
	known    bool    // min is the function's known minimum
	seeds    int
}

// searchMethods are the methods compared, in the JSON's order.
// wren's TPE runs as by default (kernels weighted by their bandwidths, as
// Optuna 3.1's) and, "normalized", with the true densities
// (TPE.Normalized).
var searchMethods = []string{"wren_random", "wren_tpe", "wren_tpe_multivariate", "wren_tpe_normalized", "wren_tpe_multivariate_normalized",
	"optuna_tpe", "optuna_tpe_multivariate"}

// benchSearch compares wren's random search and TPE (univariate and
// multivariate, each also with normalised densities) with Optuna's TPE on
// Branin, Hartmann-6 and softmax SGD on an MNIST subsample: per method the
// median and quartiles of the best value after 10, 25 and 50 trials over
// the seeds.
func benchSearch(ctx context.Context, ex *wren.Executor, seeds, mnistSeeds, trials int) (map[string]any, error) {
	out := map[string]any{"seeds": seeds, "mnist_seeds": mnistSeeds, "trials": trials}
	unit := func(names ...string) tune.Space {
		s := tune.Space{}
		for _, n := range names {
			s[n] = tune.Uniform(0, 1)
		}
		return s
	}
	fns := []searchFn{
		{name: "branin", task: branin, space: tune.Space{"x1": tune.Uniform(-5, 10), "x2": tune.Uniform(0, 15)}, min: 0.397887, max: 308, known: true, seeds: seeds},
		{name: "hartmann6", task: hartmann6, space: unit("x1", "x2", "x3", "x4", "x5", "x6"), min: -3.32237, max: 0, known: true, seeds: seeds},
	}
	if mnistSeeds > 0 {
		if d, err := mnistSubsample(); err != nil {
			out["mnist_softmax"] = "skipped: " + err.Error()
		} else {
			prefix := "bench-search/mnist"
			if err := sgd.WriteShards(ctx, ex.Store(), prefix, d[0], 1); err != nil {
				return nil, err
			}
			fns = append(fns, searchFn{name: "mnist_softmax", task: mnistSoftmax, space: tune.Space{
				"lr": tune.LogUniform(1e-3, 10), "l2": tune.LogUniform(1e-7, 1e-1), "batch": tune.Grid(16, 32, 64, 128, 256),
			}, fixed: map[string]string{"store": ex.Store().URL(), "data": prefix}, min: 0, max: 1, seeds: mnistSeeds})
		}
	}
	checkpoints := []int{10, 25, 50}
	summary := func(curves [][]float64) map[string]any {
		m := map[string]any{}
		for _, k := range checkpoints {
			if k > trials {
				continue
			}
			var v []float64
			for _, c := range curves {
				v = append(v, c[min(k, len(c))-1])
			}
			slices.Sort(v)
			q := func(f float64) float64 { return round(v[min(int(f*float64(len(v))), len(v)-1)], 5) }
			m[fmt.Sprintf("best_after_%d", k)] = map[string]float64{"q25": q(0.25), "median": q(0.5), "q75": q(0.75)}
		}
		return m
	}
	med := func(c [][]float64) float64 {
		var v []float64
		for _, x := range c {
			v = append(v, x[len(x)-1])
		}
		slices.Sort(v)
		return v[len(v)/2]
	}
	py := ""
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		if exec.CommandContext(ctx, p, "-c", "import optuna").Run() == nil {
			py = p
			break
		}
	}
	for _, f := range fns {
		start := time.Now()
		space := maps.Clone(f.space)
		for k, v := range f.fixed {
			space[k] = tune.Choice(v)
		}
		curves := map[string][][]float64{}
		res := map[string]any{"range": []float64{f.min, f.max}}
		if f.known {
			res["minimum"] = f.min
		}
		for seed := 1; seed <= f.seeds; seed++ {
			for _, method := range searchMethods[:5] {
				o := tune.Options{Metric: "value", Mode: tune.Min, Seed: uint64(seed), Samples: trials}
				if method != "wren_random" {
					o = tune.Options{Metric: "value", Mode: tune.Min, Seed: uint64(seed), TPE: &tune.TPE{Trials: trials, Parallelism: 1,
						Multivariate: strings.Contains(method, "multivariate"), Normalized: strings.HasSuffix(method, "normalized")}}
				}
				r, err := tune.Sweep(ctx, ex, f.task, space, o)
				if err != nil {
					return nil, err
				}
				byID := slices.Clone(r.Trials)
				slices.SortFunc(byID, func(a, b tune.Trial) int { return a.ID - b.ID })
				var vals []float64
				for _, t := range byID {
					vals = append(vals, t.Metrics["value"])
				}
				curves[method] = append(curves[method], bestSoFar(vals))
			}
		}
		for _, method := range searchMethods[5:] {
			if py == "" {
				res[method] = "skipped: no python3 with optuna (apt-get install python3-optuna)"
				continue
			}
			oc, err := optunaSearch(ctx, ex, py, f, trials, method == "optuna_tpe_multivariate")
			if err != nil {
				res[method] = "failed: " + err.Error()
				continue
			}
			curves[method] = oc
		}
		for m, c := range curves {
			res[m] = summary(c)
		}
		span := f.max - f.min
		res["tpe_beats_random_median"] = med(curves["wren_tpe"]) < med(curves["wren_random"])
		res["tpe_normalized_beats_random_median"] = med(curves["wren_tpe_normalized"]) < med(curves["wren_random"])
		// wren's best of 50 behind Optuna's (positive: behind), over the range.
		for _, mv := range []string{"", "_multivariate"} {
			if oc, ok := curves["optuna_tpe"+mv]; ok {
				for _, bw := range []string{"", "_normalized"} {
					res["tpe"+mv+bw+"_minus_optuna"+mv+"_median_over_range"] = round((med(curves["wren_tpe"+mv+bw])-med(oc))/span, 4)
				}
			}
		}
		res["wall_s"] = round(time.Since(start).Seconds(), 2)
		out[f.name] = res
	}
	return out, nil
}

// bestSoFar is the running minimum of vals.
func bestSoFar(vals []float64) []float64 {
	best, curve := math.Inf(1), make([]float64, len(vals))
	for i, v := range vals {
		best = math.Min(best, v)
		curve[i] = best
	}
	return curve
}

// optunaSearch runs optunaScript on f: it reads each suggested trial,
// runs f's task on it through the executor and writes the value back; one
// curve of best values per seed.
func optunaSearch(ctx context.Context, ex *wren.Executor, py string, f searchFn, trials int, multivariate bool) ([][]float64, error) {
	spec, err := json.Marshal(f.space)
	if err != nil {
		return nil, err
	}
	mv := "0"
	if multivariate {
		mv = "1"
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "-c", optunaScript, string(spec), strconv.Itoa(f.seeds), strconv.Itoa(trials), mv)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	outPipe, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer cmd.Wait() //nolint:errcheck // the error that matters is reported below
	lines := bufio.NewScanner(outPipe)
	var curves [][]float64
	for range f.seeds {
		var vals []float64
		for range trials {
			if !lines.Scan() {
				return nil, fmt.Errorf("optuna stopped after %d values: %v %s", len(vals), lines.Err(), bytes.TrimSpace(stderr.Bytes()))
			}
			var asked map[string]any
			if err := json.Unmarshal(lines.Bytes(), &asked); err != nil {
				return nil, fmt.Errorf("optuna's trial %q: %w", lines.Text(), err)
			}
			p := tune.Params{Num: map[string]float64{}, Str: map[string]string{}}
			maps.Copy(p.Str, f.fixed)
			for k, v := range asked {
				switch v := v.(type) {
				case float64:
					p.Num[k] = v
				case string:
					p.Str[k] = v
				default:
					return nil, fmt.Errorf("optuna's value of %s: %v", k, v)
				}
			}
			fut, err := f.task.Call(ctx, ex, p)
			if err != nil {
				return nil, err
			}
			m, err := fut.Result(ctx)
			if err != nil {
				return nil, err
			}
			vals = append(vals, m["value"])
			if _, err := fmt.Fprintf(in, "%.17g\n", m["value"]); err != nil {
				return nil, err
			}
		}
		curves = append(curves, bestSoFar(vals))
	}
	in.Close()
	return curves, nil
}
