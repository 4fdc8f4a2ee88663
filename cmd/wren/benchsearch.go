package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"slices"
	"strconv"

	"github.com/wrenml/wren"
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

// optunaScript runs Optuna's TPE on the same functions: per seed, the best
// value after each trial, as JSON.
const optunaScript = `
import json, math, sys
import optuna
optuna.logging.set_verbosity(optuna.logging.WARNING)
fn, seeds, trials = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
A = [[10,3,17,3.5,1.7,8],[0.05,10,17,0.1,8,14],[3,3.5,1.7,10,17,8],[17,8,0.05,10,0.1,14]]
P = [[1312,1696,5569,124,8283,5886],[2329,4135,8307,3736,1004,9991],[2348,1451,3522,2883,3047,6650],[4047,8828,8732,5743,1091,381]]
def branin(t):
    x1, x2 = t.suggest_float("x1", -5, 10), t.suggest_float("x2", 0, 15)
    b, c = 5.1/(4*math.pi**2), 5/math.pi
    return (x2 - b*x1*x1 + c*x1 - 6)**2 + 10*(1-1/(8*math.pi))*math.cos(x1) + 10
def hartmann6(t):
    x = [t.suggest_float("x%d" % (j+1), 0, 1) for j in range(6)]
    al = [1, 1.2, 3, 3.2]
    return -sum(al[i]*math.exp(-sum(A[i][j]*(x[j]-P[i][j]*1e-4)**2 for j in range(6))) for i in range(4))
f = {"branin": branin, "hartmann6": hartmann6}[fn]
out = []
for s in range(seeds):
    st = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=s+1))
    st.optimize(f, n_trials=trials)
    best, curve = float("inf"), []
    for t in st.trials:
        best = min(best, t.value)
        curve.append(best)
    out.append(curve)
print(json.dumps(out))
`

// benchSearch compares wren's random search and TPE with Optuna's TPE on
// Branin and Hartmann-6: per method the median and quartiles of the best
// value after 10, 25 and 50 trials over the seeds.
func benchSearch(ctx context.Context, ex *wren.Executor, seeds, trials int) (map[string]any, error) {
	out := map[string]any{"seeds": seeds, "trials": trials}
	fns := []struct {
		name     string
		task     *wren.Task[tune.Params, tune.Metrics]
		space    tune.Space
		min, max float64 // the function's minimum and a typical range top, for the 5 % target
	}{
		{"branin", branin, tune.Space{"x1": tune.Uniform(-5, 10), "x2": tune.Uniform(0, 15)}, 0.397887, 308},
		{"hartmann6", hartmann6, tune.Space{"x1": tune.Uniform(0, 1), "x2": tune.Uniform(0, 1), "x3": tune.Uniform(0, 1),
			"x4": tune.Uniform(0, 1), "x5": tune.Uniform(0, 1), "x6": tune.Uniform(0, 1)}, -3.32237, 0},
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
	py := ""
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		if exec.CommandContext(ctx, p, "-c", "import optuna").Run() == nil {
			py = p
			break
		}
	}
	for _, f := range fns {
		curves := map[string][][]float64{}
		for seed := 1; seed <= seeds; seed++ {
			for _, method := range []string{"wren_random", "wren_tpe"} {
				o := tune.Options{Metric: "value", Mode: tune.Min, Seed: uint64(seed), Samples: trials}
				if method == "wren_tpe" {
					o = tune.Options{Metric: "value", Mode: tune.Min, Seed: uint64(seed), TPE: &tune.TPE{Trials: trials, Parallelism: 1}}
				}
				r, err := tune.Sweep(ctx, ex, f.task, f.space, o)
				if err != nil {
					return nil, err
				}
				byID := slices.Clone(r.Trials)
				slices.SortFunc(byID, func(a, b tune.Trial) int { return a.ID - b.ID })
				best, curve := math.Inf(1), []float64{}
				for _, t := range byID {
					best = math.Min(best, t.Metrics["value"])
					curve = append(curve, best)
				}
				curves[method] = append(curves[method], curve)
			}
		}
		res := map[string]any{"minimum": f.min}
		for m, c := range curves {
			res[m] = summary(c)
		}
		med := func(c [][]float64) float64 {
			var v []float64
			for _, x := range c {
				v = append(v, x[len(x)-1])
			}
			slices.Sort(v)
			return v[len(v)/2]
		}
		res["tpe_beats_random_median"] = med(curves["wren_tpe"]) < med(curves["wren_random"])
		if py == "" {
			res["optuna_tpe"] = "skipped: no python3 with optuna (apt-get install python3-optuna)"
		} else {
			cmd := exec.CommandContext(ctx, py, "-c", optunaScript, f.name, strconv.Itoa(seeds), strconv.Itoa(trials))
			cmd.Env = os.Environ()
			b, err := cmd.Output()
			var oc [][]float64
			if err == nil {
				err = json.Unmarshal(b, &oc)
			}
			if err != nil {
				res["optuna_tpe"] = "failed: " + err.Error()
			} else {
				res["optuna_tpe"] = summary(oc)
				span := f.max - f.min
				res["tpe_minus_optuna_median_over_range"] = round((med(curves["wren_tpe"])-med(oc))/span, 4)
			}
		}
		out[f.name] = res
	}
	return out, nil
}
