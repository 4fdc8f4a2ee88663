package tune_test

import (
	"context"
	"errors"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/tune"
)

// Bowl is a minimum at x = 0.7, lr = 1e-3, opt = "adam", n = 12; depth
// does not matter.
var Bowl = wren.Register("tune-test.bowl", func(ctx context.Context, p tune.Params) (tune.Metrics, error) {
	x, lr := p.Float("x"), p.Float("lr")
	loss := (x-0.7)*(x-0.7) + math.Pow(math.Log10(lr)+3, 2)/4 + math.Pow(float64(p.Int("n")-12), 2)/400
	if p.String("opt") != "adam" {
		loss += 0.3
	}
	_ = p.Float("depth")
	return tune.Metrics{"loss": loss}, nil
})

var bowl = tune.Space{"x": tune.Uniform(0, 1), "lr": tune.LogUniform(1e-6, 1), "opt": tune.Choice("sgd", "adam", "rmsprop"),
	"n": tune.IntRange(1, 40), "depth": tune.QUniform(0, 10, 0.5)}

func best(r *tune.Results) float64 { return r.Trials[0].Metrics["loss"] }

// TestTPE: with the same number of trials (60), TPE, univariate and
// multivariate, finds a better minimum than random sampling on at least
// four of five seeds and at least halves the mean best; its values stay in
// the space (integers, steps of 0.5, log range); the same seed suggests
// the same trials; every trial is recorded.
func TestTPE(t *testing.T) {
	ctx := context.Background()
	ex := executor(t, wren.Options{Backend: wren.InProcess(2)})
	for _, mv := range []bool{false, true} {
		wins := 0
		var tpeSum, rndSum float64
		for seed := uint64(1); seed <= 5; seed++ {
			tp, err := tune.Sweep(ctx, ex, Bowl, bowl, tune.Options{Metric: "loss", Mode: tune.Min, Seed: seed, TPE: &tune.TPE{Trials: 60, Parallelism: 1, Multivariate: mv}})
			if err != nil {
				t.Fatal(err)
			}
			rnd, err := tune.Sweep(ctx, ex, Bowl, bowl, tune.Options{Metric: "loss", Mode: tune.Min, Seed: seed, Samples: 60})
			if err != nil {
				t.Fatal(err)
			}
			if len(tp.Trials) != 60 || len(rnd.Trials) != 60 {
				t.Fatalf("%d and %d trials", len(tp.Trials), len(rnd.Trials))
			}
			for _, tr := range tp.Trials {
				n, d, lr := tr.Num["n"], tr.Num["depth"], tr.Num["lr"]
				if n != math.Round(n) || n < 1 || n > 40 || d != math.Round(d*2)/2 || d < 0 || d > 10 || lr < 1e-6 || lr > 1 || tr.Str["opt"] == "" {
					t.Fatalf("trial %d out of the space: %v %v", tr.ID, tr.Num, tr.Str)
				}
			}
			t.Logf("multivariate %v, seed %d: TPE best %.4f, random best %.4f", mv, seed, best(tp), best(rnd))
			tpeSum += best(tp)
			rndSum += best(rnd)
			if best(tp) < best(rnd) {
				wins++
			}
		}
		if wins < 4 || tpeSum >= rndSum/2 {
			t.Fatalf("multivariate %v: TPE won %d of 5 seeds, mean best %.4f against random's %.4f", mv, wins, tpeSum/5, rndSum/5)
		}
	}
	// The same seed, the same trials (30: past 25 observations, where
	// older ones weigh less).
	for _, mv := range []bool{false, true} {
		c := tune.TPE{Trials: 30, Parallelism: 1, Startup: 5, Multivariate: mv}
		a, err := tune.Sweep(ctx, ex, Bowl, bowl, tune.Options{Metric: "loss", Mode: tune.Min, Seed: 9, TPE: &c})
		if err != nil {
			t.Fatal(err)
		}
		b, err := tune.Sweep(ctx, ex, Bowl, bowl, tune.Options{Metric: "loss", Mode: tune.Min, Seed: 9, TPE: &c})
		if err != nil {
			t.Fatal(err)
		}
		labels := map[int]string{}
		for _, tr := range a.Trials {
			labels[tr.ID] = tr.Label
		}
		for _, tr := range b.Trials {
			if labels[tr.ID] != tr.Label {
				t.Fatalf("multivariate %v, seed 9, trial %d: %s then %s", mv, tr.ID, labels[tr.ID], tr.Label)
			}
		}
	}
	// Several in flight: every trial runs once, each recorded.
	par, err := tune.Sweep(ctx, ex, Bowl, bowl, tune.Options{Metric: "loss", Mode: tune.Min, Seed: 3, TPE: &tune.TPE{Trials: 24, Parallelism: 4}})
	if err != nil {
		t.Fatal(err)
	}
	ids := map[int]bool{}
	for _, tr := range par.Trials {
		ids[tr.ID] = true
	}
	if len(ids) != 24 {
		t.Fatalf("%d distinct trials of 24", len(ids))
	}
	loaded, err := tune.Load(ctx, ex.Store(), par.Prefix)
	if err != nil || len(loaded.Trials) != 24 {
		t.Fatalf("recorded: %v, %v", loaded, err)
	}
	// More in flight than trials, one trial, one candidate, multivariate,
	// normalised, each beside the executor's own options (chunks,
	// retries, speculation, a timeout).
	mopts := []wren.MapOption{wren.WithChunkSize(3), wren.WithRetries(2), wren.WithSpeculation(1.5), wren.WithTimeout(time.Minute)}
	for _, c := range []tune.TPE{{Trials: 3, Parallelism: 10}, {Trials: 1}, {Trials: 14, Parallelism: 3, Startup: 1, Candidates: 1, Multivariate: true},
		{Trials: 12, Parallelism: 2, Startup: 2, Normalized: true}} {
		r, err := tune.Sweep(ctx, ex, Bowl, bowl, tune.Options{Metric: "loss", Mode: tune.Min, TPE: &c, MapOptions: mopts})
		if err != nil || len(r.Trials) != c.Trials {
			t.Fatalf("TPE %+v: %v, %v", c, r, err)
		}
	}
	// A degenerate space (every dimension one value: a grid of one, a
	// choice of one, a step wider than its range)
	// runs its trials, each the one point, univariate or not.
	one := tune.Space{"x": tune.Grid(0.7), "lr": tune.Grid(1e-3), "opt": tune.Choice("adam"), "n": tune.Grid(12), "depth": tune.QUniform(0, 0.3, 0.5)}
	for _, mv := range []bool{false, true} {
		r, err := tune.Sweep(ctx, ex, Bowl, one, tune.Options{Metric: "loss", Mode: tune.Min, TPE: &tune.TPE{Trials: 8, Parallelism: 1, Startup: 2, Multivariate: mv}})
		if err != nil || len(r.Trials) != 8 {
			t.Fatalf("degenerate space, multivariate %v: %v, %v", mv, r, err)
		}
		for _, tr := range r.Trials {
			if tr.Label != r.Trials[0].Label || tr.Metrics["loss"] > 1e-12 || tr.Num["depth"] != 0 {
				t.Fatalf("degenerate space, multivariate %v: trial %d %s loss %v", mv, tr.ID, tr.Label, tr.Metrics["loss"])
			}
		}
	}
	// Bad settings.
	for name, o := range map[string]tune.Options{
		"no trials":     {Metric: "loss", TPE: &tune.TPE{}},
		"TPE with ASHA": {Metric: "loss", TPE: &tune.TPE{Trials: 5}, ASHA: &tune.ASHA{MinBudget: 1, MaxBudget: 9, Reduction: 3}},
	} {
		if _, err := tune.Sweep(ctx, ex, Bowl, bowl, o); !errors.Is(err, tune.ErrSpace) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestImportance: a metric that depends on one parameter credits it with
// most of the importance; a categorical parameter that matters is found;
// too few trials give none.
func TestImportance(t *testing.T) {
	ctx := context.Background()
	ex := executor(t, wren.Options{Backend: wren.InProcess(2)})
	space := tune.Space{"x": tune.Uniform(0, 1), "lr": tune.LogUniform(1e-6, 1), "opt": tune.Choice("sgd", "adam", "rmsprop"),
		"n": tune.Grid(12), "depth": tune.QUniform(0, 10, 0.5)}
	r, err := tune.Sweep(ctx, ex, Bowl, space, tune.Options{Metric: "loss", Mode: tune.Min, Seed: 4, Samples: 200})
	if err != nil {
		t.Fatal(err)
	}
	imp := r.Importance()
	t.Logf("importance %v", imp)
	// lr's term spans up to (6-3)²/4 = 2.25, opt's 0.3, x's 0.49; depth
	// and n nothing.
	if imp["lr"] < 0.6 || imp["depth"] > 0.05 || imp["n"] != 0 || imp["opt"] < imp["depth"] {
		t.Fatalf("importance %v", imp)
	}
	sum := 0.0
	for _, v := range imp {
		sum += v
	}
	if math.Abs(sum-1) > 1e-9 {
		t.Fatalf("importances sum to %v", sum)
	}
	small := &tune.Results{Metric: "loss", Trials: r.Trials[:2]}
	if small.Importance() != nil {
		t.Fatal("importance from 2 trials")
	}
}

// TestImportanceFewTrials: with four trials, a parameter the metric
// follows gets the importance and one it ignores none (each trial alone in
// its group would have credited both equally).
func TestImportanceFewTrials(t *testing.T) {
	r := &tune.Results{Metric: "loss"}
	for i, y := range []float64{2, 0, 3, 1} {
		x := float64(i)
		r.Trials = append(r.Trials, tune.Trial{ID: i, Num: map[string]float64{"x": x, "y": y}, Metrics: tune.Metrics{"loss": x}})
	}
	imp := r.Importance()
	if imp["x"] < 0.99 || imp["y"] > 0.01 {
		t.Fatalf("importance %v: want x 1, y 0", imp)
	}
}

// TestPlots: a sampled sweep's scatter with its colour bar, a one-parameter
// sweep with a categorical legend, the optimisation history and the
// importances are drawn (WREN_PLOTS_DIR keeps them to look at).
func TestPlots(t *testing.T) {
	ctx := context.Background()
	ex := executor(t, wren.Options{Backend: wren.InProcess(2)})
	dir := os.Getenv("WREN_PLOTS_DIR")
	if dir == "" {
		dir = t.TempDir()
	}
	begin := time.Now()
	sampled, err := tune.Sweep(ctx, ex, Bowl, bowl, tune.Options{Metric: "loss", Mode: tune.Min, Seed: 2, TPE: &tune.TPE{Trials: 40, Parallelism: 2}})
	if err != nil {
		t.Fatal(err)
	}
	end := time.Now()
	one, err := tune.Sweep(ctx, ex, Bowl, tune.Space{"x": tune.Uniform(0, 1), "lr": tune.Grid(1e-3), "opt": tune.Choice("sgd", "adam"), "n": tune.Grid(12), "depth": tune.Grid(1)},
		tune.Options{Metric: "loss", Mode: tune.Min, Seed: 2, Samples: 30})
	if err != nil {
		t.Fatal(err)
	}
	for name, draw := range map[string]func(string) error{
		"sampled.png": sampled.Plot, "one.png": one.Plot, "history.png": sampled.PlotHistory, "importance.png": sampled.PlotImportance, "sampled.svg": sampled.Plot,
	} {
		path := filepath.Join(dir, name)
		if err := draw(path); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if fi, err := os.Stat(path); err != nil || fi.Size() < 5000 {
			t.Fatalf("%s: %v %v", name, fi, err)
		}
	}
	// Every trial says when it finished, inside the sweep: the history has
	// its wall-time panel (a taller picture than without the times).
	for _, tr := range sampled.Trials {
		if tr.Finished.Before(begin) || tr.Finished.After(end) {
			t.Fatalf("trial %d finished at %v, outside the sweep (%v..%v)", tr.ID, tr.Finished, begin, end)
		}
	}
	untimed := &tune.Results{Metric: sampled.Metric, Mode: sampled.Mode, Trials: slices.Clone(sampled.Trials)}
	for i := range untimed.Trials {
		untimed.Trials[i].Finished = time.Time{}
	}
	height := func(r *tune.Results, name string) int {
		path := filepath.Join(dir, name)
		if err := r.PlotHistory(path); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cfg, err := png.DecodeConfig(f)
		if err != nil {
			t.Fatal(err)
		}
		return cfg.Height
	}
	if a, b := height(sampled, "history.png"), height(untimed, "history-untimed.png"); a <= b {
		t.Errorf("history with finish times %d px tall, without %d: no wall-time panel", a, b)
	}
	empty := &tune.Results{Metric: "loss"}
	if empty.Plot(filepath.Join(dir, "x.png")) == nil || empty.PlotHistory(filepath.Join(dir, "x.png")) == nil || empty.PlotImportance(filepath.Join(dir, "x.png")) == nil {
		t.Fatal("plots of no trials")
	}
}

// TestHyperband: brackets of successive halving over budgets 1..9 (η 3):
// 9 trials from budget 1, 5 from 3, 3 at 9 — 17 trials, each bracket
// taking some to budget 9; BOHB runs the same brackets with TPE
// suggesting the later ones; bad settings are refused.
func TestHyperband(t *testing.T) {
	ctx := context.Background()
	ex := executor(t, wren.Options{Backend: wren.InProcess(4)})
	space := tune.Space{"lr": tune.LogUniform(1e-4, 1)}
	for _, name := range []string{"hyperband", "bohb", "bohb-multivariate"} {
		hb := &tune.Hyperband{MinBudget: 1, MaxBudget: 9}
		switch name {
		case "bohb":
			hb.TPE = &tune.TPE{Startup: 3}
		case "bohb-multivariate":
			hb.TPE = &tune.TPE{Startup: 3, Multivariate: true, Normalized: true}
		}
		r, err := tune.Sweep(ctx, ex, Epochs, space, tune.Options{Metric: "accuracy", Seed: 5, Hyperband: hb})
		if err != nil {
			t.Fatal(err)
		}
		// Trials 0-8 start at budget 1, 9-13 at 3, 14-16 at 9; each
		// bracket takes at least one trial to 9 (how many more depends on
		// the order results arrive: ASHA promotes asynchronously).
		top := map[int]int{} // the highest budget each bracket reached, by bracket
		if len(r.Trials) != 17 {
			t.Fatalf("%s: %d trials", name, len(r.Trials))
		}
		for _, tr := range r.Trials {
			bracket, first := 0, 1
			switch {
			case tr.ID >= 14:
				bracket, first = 2, 9
			case tr.ID >= 9:
				bracket, first = 1, 3
			}
			if tr.Budget < first || (tr.Budget != 1 && tr.Budget != 3 && tr.Budget != 9) {
				t.Fatalf("%s: trial %d (bracket %d) at budget %d", name, tr.ID, bracket, tr.Budget)
			}
			top[bracket] = max(top[bracket], tr.Budget)
		}
		if top[0] != 9 || top[1] != 9 || top[2] != 9 || r.Trials[0].Budget != 9 {
			t.Fatalf("%s: brackets reached %v, best at %d", name, top, r.Trials[0].Budget)
		}
		t.Logf("%s: best accuracy %.4f at lr %.4g", name, r.Trials[0].Metrics["accuracy"], r.Trials[0].Num["lr"])
	}
	// One budget (MinBudget == MaxBudget): a single bracket of full runs.
	one, err := tune.Sweep(ctx, ex, Epochs, space, tune.Options{Metric: "accuracy", Seed: 5, Hyperband: &tune.Hyperband{MinBudget: 3, MaxBudget: 3},
		MapOptions: []wren.MapOption{wren.WithChunkSize(2), wren.WithRetries(1)}})
	if err != nil || len(one.Trials) != 1 || one.Trials[0].Budget != 3 {
		t.Fatalf("one budget: %v, %v", one, err)
	}
	for what, o := range map[string]tune.Options{
		"reduction 1":     {Metric: "accuracy", Hyperband: &tune.Hyperband{MinBudget: 1, MaxBudget: 9, Reduction: 1}},
		"reversed":        {Metric: "accuracy", Hyperband: &tune.Hyperband{MinBudget: 9, MaxBudget: 3}},
		"zero budget":     {Metric: "accuracy", Hyperband: &tune.Hyperband{MaxBudget: 3}},
		"with ASHA":       {Metric: "accuracy", Hyperband: &tune.Hyperband{MinBudget: 1, MaxBudget: 9}, ASHA: &tune.ASHA{MinBudget: 1, MaxBudget: 9}},
		"with TPE beside": {Metric: "accuracy", Hyperband: &tune.Hyperband{MinBudget: 1, MaxBudget: 9}, TPE: &tune.TPE{Trials: 3}},
	} {
		if _, err := tune.Sweep(ctx, ex, Epochs, space, o); !errors.Is(err, tune.ErrSpace) {
			t.Errorf("%s: %v", what, err)
		}
	}
}

// stopAfter cancels the TPE resume test's sweep once that many trials ran.
var (
	stopMu    sync.Mutex
	stopAfter int
	stopCalls int
	stopSweep context.CancelFunc
)

// Counted is Bowl, cancelling the sweep (stopSweep) after stopAfter calls.
var Counted = wren.Register("tune-test.counted", func(ctx context.Context, p tune.Params) (tune.Metrics, error) {
	stopMu.Lock()
	stopCalls++
	if stopSweep != nil && stopCalls == stopAfter {
		stopSweep()
	}
	stopMu.Unlock()
	x, lr := p.Float("x"), p.Float("lr")
	return tune.Metrics{"loss": (x-0.7)*(x-0.7) + math.Pow(math.Log10(lr)+3, 2)/4}, nil
})

// TestTPEResume: a TPE sweep interrupted after 6 of 14 trials and resumed
// with the same seed reuses the finished trials and ends with the trials
// an uninterrupted sweep of that seed runs.
func TestTPEResume(t *testing.T) {
	ctx := context.Background()
	ex := executor(t, wren.Options{Backend: wren.InProcess(1)})
	space := tune.Space{"x": tune.Uniform(0, 1), "lr": tune.LogUniform(1e-6, 1)}
	opts := tune.Options{Metric: "loss", Mode: tune.Min, Seed: 11, TPE: &tune.TPE{Trials: 14, Parallelism: 1, Startup: 4}}
	straight, err := tune.Sweep(ctx, ex, Counted, space, opts)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	stopMu.Lock()
	stopCalls, stopAfter, stopSweep = 0, 6, cancel
	stopMu.Unlock()
	_, err = tune.Sweep(cctx, ex, Counted, space, opts)
	stopMu.Lock()
	stopSweep = nil
	stopMu.Unlock()
	if err == nil {
		t.Fatal("the interrupted sweep succeeded")
	}
	cancel()
	// The interrupted sweep is the newest under tune/.
	var prefixes []string
	for a, err := range ex.Store().List(ctx, "tune/") {
		if err != nil {
			t.Fatal(err)
		}
		if p, ok := strings.CutSuffix(a.Key, "/sweep.json"); ok && p != straight.Prefix {
			prefixes = append(prefixes, p)
		}
	}
	if len(prefixes) != 1 {
		t.Fatalf("sweeps %v", prefixes)
	}
	prev, err := tune.Load(ctx, ex.Store(), prefixes[0])
	if err != nil {
		t.Fatal(err)
	}
	opts.Resume = prev
	resumed, err := tune.Sweep(ctx, ex, Counted, space, opts)
	if err != nil {
		t.Fatal(err)
	}
	if resumed.Reused < 5 || len(resumed.Trials) != 14 {
		t.Fatalf("resumed: %d reused, %d trials", resumed.Reused, len(resumed.Trials))
	}
	want := map[int]string{}
	for _, tr := range straight.Trials {
		want[tr.ID] = tr.Label
	}
	for _, tr := range resumed.Trials {
		if want[tr.ID] != tr.Label {
			t.Fatalf("trial %d: resumed %s, uninterrupted %s", tr.ID, tr.Label, want[tr.ID])
		}
	}
}

// TestPBT: a population of 8 trains 4 intervals of 2 epochs from its
// checkpoints; after each interval but the last the bottom 2 copy a top
// member's checkpoint and values, perturbed within the space; the lineage
// says who copied whom, is kept in the store and drawn; the population's
// best learning rate gets no worse.
func TestPBT(t *testing.T) {
	ctx := context.Background()
	ex := executor(t, wren.Options{Backend: wren.InProcess(4)})
	space := tune.Space{"lr": tune.LogUniform(1e-4, 1), "opt": tune.Choice("sgd", "adam")}
	r, err := tune.Sweep(ctx, ex, Epochs, space, tune.Options{Metric: "accuracy", Seed: 6, PBT: &tune.PBT{Population: 8, Intervals: 4, Interval: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Trials) != 8 || len(r.Lineage) != 32 {
		t.Fatalf("%d trials, %d lineage steps", len(r.Trials), len(r.Lineage))
	}
	q := func(st tune.LineageStep, budget int) float64 { return st.Metric / (1 - math.Pow(0.5, float64(budget))) }
	best := map[int]float64{}
	exploits := map[int]int{}
	byKey := map[[2]int]tune.LineageStep{}
	for _, st := range r.Lineage {
		byKey[[2]int{st.Interval, st.Member}] = st
		if st.Failed {
			t.Fatalf("a member failed: %+v", st)
		}
		best[st.Interval] = max(best[st.Interval], q(st, 2*(st.Interval+1)))
		if st.Donor >= 0 {
			exploits[st.Interval]++
		}
	}
	for iv := 1; iv < 4; iv++ {
		if exploits[iv] != 2 {
			t.Fatalf("interval %d: %d members copied another, want 2", iv, exploits[iv])
		}
	}
	if exploits[0] != 0 || best[3] < best[0] {
		t.Fatalf("exploits %v, best quality by interval %v", exploits, best)
	}
	// A copied member's learning rate is its donor's x0.8 or x1.2, or new.
	for _, st := range r.Lineage {
		if st.Donor < 0 {
			continue
		}
		d := byKey[[2]int{st.Interval - 1, st.Donor}]
		if d.Label == "" {
			t.Fatalf("interval %d: member %d copied %d, who has no step before", st.Interval, st.Member, st.Donor)
		}
	}
	for _, tr := range r.Trials {
		if tr.Budget != 8 || tr.Num["lr"] < 1e-4 || tr.Num["lr"] > 1 {
			t.Fatalf("final member %+v", tr)
		}
	}
	loaded, err := tune.Load(ctx, ex.Store(), r.Prefix)
	if err != nil || len(loaded.Lineage) != 32 {
		t.Fatalf("loaded lineage: %v", err)
	}
	path := filepath.Join(t.TempDir(), "lineage.png")
	if err := r.PlotLineage(path); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Size() < 5000 {
		t.Fatalf("lineage plot: %v", err)
	}
	for what, o := range map[string]tune.Options{
		"population 1": {Metric: "accuracy", PBT: &tune.PBT{Population: 1, Intervals: 2, Interval: 1}},
		"no intervals": {Metric: "accuracy", PBT: &tune.PBT{Population: 4, Interval: 1}},
		"with ASHA":    {Metric: "accuracy", PBT: &tune.PBT{Population: 4, Intervals: 2, Interval: 1}, ASHA: &tune.ASHA{MinBudget: 1, MaxBudget: 3}},
	} {
		if _, err := tune.Sweep(ctx, ex, Epochs, space, o); !errors.Is(err, tune.ErrSpace) {
			t.Errorf("%s: %v", what, err)
		}
	}
}

// CountedEpochs is Epochs, cancelling the sweep (stopSweep) after
// stopAfter calls.
var CountedEpochs = wren.Register("tune-test.counted-epochs", func(ctx context.Context, p tune.Params) (tune.Metrics, error) {
	stopMu.Lock()
	stopCalls++
	if stopSweep != nil && stopCalls == stopAfter {
		stopSweep()
	}
	stopMu.Unlock()
	return epochs(ctx, p)
})

// TestPBTResume: a PBT sweep interrupted in its third interval and resumed
// with its seed reuses the members' finished runs and ends with the
// lineage of the uninterrupted sweep.
func TestPBTResume(t *testing.T) {
	ctx := context.Background()
	ex := executor(t, wren.Options{Backend: wren.InProcess(1)})
	space := tune.Space{"lr": tune.LogUniform(1e-4, 1)}
	opts := tune.Options{Metric: "accuracy", Seed: 8, PBT: &tune.PBT{Population: 4, Intervals: 4, Interval: 1}}
	straight, err := tune.Sweep(ctx, ex, CountedEpochs, space, opts)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	stopMu.Lock()
	stopCalls, stopAfter, stopSweep = 0, 10, cancel
	stopMu.Unlock()
	_, err = tune.Sweep(cctx, ex, CountedEpochs, space, opts)
	stopMu.Lock()
	stopSweep = nil
	stopMu.Unlock()
	cancel()
	if err == nil {
		t.Fatal("the interrupted sweep succeeded")
	}
	var prefix string
	for a, err := range ex.Store().List(ctx, "tune/") {
		if err != nil {
			t.Fatal(err)
		}
		if p, ok := strings.CutSuffix(a.Key, "/sweep.json"); ok && p != straight.Prefix {
			prefix = p
		}
	}
	prev, err := tune.Load(ctx, ex.Store(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	opts.Resume = prev
	resumed, err := tune.Sweep(ctx, ex, CountedEpochs, space, opts)
	if err != nil {
		t.Fatal(err)
	}
	if resumed.Reused < 8 || len(resumed.Lineage) != len(straight.Lineage) {
		t.Fatalf("resumed: %d reused, %d lineage steps (want %d)", resumed.Reused, len(resumed.Lineage), len(straight.Lineage))
	}
	for i, st := range straight.Lineage {
		if r := resumed.Lineage[i]; r.Label != st.Label || r.Donor != st.Donor || r.Member != st.Member {
			t.Fatalf("step %d: resumed %+v, uninterrupted %+v", i, r, st)
		}
	}
}

// TestPBTBadInput: an objective that never checkpoints and a resumed PBT
// whose checkpoints were deleted are clear errors after the first
// interval; a perturbation past a value's range is clipped and says so in
// the lineage.
func TestPBTBadInput(t *testing.T) {
	ctx := context.Background()
	ex := executor(t, wren.Options{Backend: wren.InProcess(2)})
	_, err := tune.Sweep(ctx, ex, Bowl, bowl, tune.Options{Metric: "loss", Mode: tune.Min, PBT: &tune.PBT{Population: 4, Intervals: 3, Interval: 1}})
	if !errors.Is(err, tune.ErrNoCheckpoint) || !strings.Contains(err.Error(), "SaveCheckpoint") {
		t.Fatalf("an objective without checkpoints: %v", err)
	}
	space := tune.Space{"lr": tune.LogUniform(0.5, 0.6)}
	opts := tune.Options{Metric: "accuracy", Seed: 2, PBT: &tune.PBT{Population: 8, Intervals: 4, Interval: 1}}
	r, err := tune.Sweep(ctx, ex, Epochs, space, opts)
	if err != nil {
		t.Fatal(err)
	}
	clipped := 0
	for _, st := range r.Lineage {
		if slices.Contains(st.Clipped, "lr") {
			clipped++
		}
	}
	for _, tr := range r.Trials {
		if lr := tr.Num["lr"]; lr < 0.5 || lr > 0.6 {
			t.Fatalf("lr %v left the space", lr)
		}
	}
	if clipped == 0 {
		t.Fatalf("no clipped perturbation recorded in %+v", r.Lineage)
	}
	// The same sweep resumed after its checkpoints were deleted.
	if _, err := blob.DeletePrefix(ctx, ex.Store(), r.Prefix+"/checkpoints/"); err != nil {
		t.Fatal(err)
	}
	prev, err := tune.Load(ctx, ex.Store(), r.Prefix)
	if err != nil {
		t.Fatal(err)
	}
	opts.Resume = prev
	if _, err := tune.Sweep(ctx, ex, Epochs, space, opts); !errors.Is(err, tune.ErrNoCheckpoint) {
		t.Fatalf("resumed without checkpoints: %v", err)
	}
}
