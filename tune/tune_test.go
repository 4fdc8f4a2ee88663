package tune_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/tune"
)

func TestMain(m *testing.M) {
	wren.Init()
	os.Exit(m.Run())
}

// Quadratic peaks at x = 0.3, alpha = 0.01; it fails, panics or returns NaN
// for some choices of "mode".
var Quadratic = wren.Register("tune-test.quadratic", func(ctx context.Context, p tune.Params) (tune.Metrics, error) {
	switch p.String("mode") {
	case "error":
		return nil, errors.New("the objective failed")
	case "panic":
		panic("the objective panics")
	case "nan":
		return tune.Metrics{"score": math.NaN()}, nil
	case "nometric":
		return tune.Metrics{"other": 1}, nil
	case "missing":
		p.Float("beta") // not in the space
	}
	x, a := p.Float("x"), p.Float("alpha")
	return tune.Metrics{"score": -(x-0.3)*(x-0.3) - math.Pow(math.Log10(a)+2, 2)}, nil
})

func executor(t *testing.T, opts wren.Options) *wren.Executor {
	if opts.Store == "" {
		opts.Store = t.TempDir()
	}
	opts.Progress = wren.ProgressOff
	ex, err := wren.NewExecutor(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close() })
	return ex
}

func TestBadSpaces(t *testing.T) {
	ex := executor(t, wren.Options{Backend: wren.InProcess(2)})
	ctx := context.Background()
	for name, c := range map[string]struct {
		space tune.Space
		opts  tune.Options
		want  string
	}{
		"empty grid":  {tune.Space{"x": tune.Grid()}, tune.Options{Metric: "s"}, "an empty grid"},
		"low >= high": {tune.Space{"x": tune.Uniform(1, 1)}, tune.Options{Metric: "s"}, "low 1 >= high 1"},
		"log <= 0":    {tune.Space{"x": tune.LogUniform(0, 1)}, tune.Options{Metric: "s"}, "0 < low < high"},
		"too many":    {tune.Space{"x": tune.Grid(1, 2, 3), "y": tune.Grid(1, 2, 3)}, tune.Options{Metric: "s", MaxTrials: 8}, "more than 8"},
		"no metric":   {tune.Space{"x": tune.Grid(1)}, tune.Options{}, "Metric is required"},
		"quniform":    {tune.Space{"x": tune.QUniform(0, 1, 0)}, tune.Options{Metric: "s"}, "step 0"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := tune.Sweep(ctx, ex, Quadratic, c.space, c.opts)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, c.want)
			}
		})
	}
}

// TestSweep: a grid and random dimensions, failures of every kind
// recorded and never best, the best found, and the results in CSV, JSON
// and a plot.
func TestSweep(t *testing.T) {
	ex := executor(t, wren.Options{Parallelism: 2})
	ctx := context.Background()
	space := tune.Space{
		"x":     tune.Grid(0, 0.1, 0.2, 0.3, 0.4),
		"alpha": tune.LogUniform(1e-4, 10),
		"mode":  tune.Choice("ok", "ok", "ok", "ok", "ok", "ok", "error", "panic", "nan", "nometric", "missing"),
	}
	res, err := tune.Sweep(ctx, ex, Quadratic, space, tune.Options{Metric: "score", Mode: tune.Max, Samples: 12, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Trials) != 60 {
		t.Fatalf("%d trials, want 5 x 12", len(res.Trials))
	}
	errs := map[string]bool{}
	for _, e := range res.Errors() {
		for _, w := range []string{"the objective failed", "panic", "score is NaN", `lack "score"`, `no parameter "beta"`} {
			if strings.Contains(e.Err, w) {
				errs[w] = true
			}
		}
	}
	if len(errs) != 5 {
		t.Fatalf("failures seen %v (of %d errors)", errs, len(res.Errors()))
	}
	best := res.Best()
	want := math.Inf(-1)
	for _, tr := range res.Trials {
		if tr.OK() {
			want = math.Max(want, tr.Metrics["score"])
		}
	}
	if best == nil || best.Metrics["score"] != want || best.Str["mode"] != "ok" {
		t.Fatalf("best %+v, want the score %v", best, want)
	}
	for _, tr := range res.Top(5) {
		if !tr.OK() || tr.Metrics["score"] > best.Metrics["score"] {
			t.Fatalf("top trial %+v beats or is worse than the best", tr)
		}
	}
	// The same seed gives the same trials.
	again, err := tune.Sweep(ctx, ex, Quadratic, space, tune.Options{Metric: "score", Samples: 12, Seed: 1})
	if err != nil || again.Best().Label != best.Label {
		t.Fatalf("a second sweep with the same seed: %v, %v", again.Best(), err)
	}
	var b bytes.Buffer
	if err := res.WriteCSV(&b); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(&b).ReadAll()
	if err != nil || len(rows) != 61 || !strings.Contains(strings.Join(rows[0], ","), "alpha") || rows[1][0] != strconv.Itoa(best.ID) {
		t.Fatalf("CSV: %d rows, header %v, %v", len(rows), rows[0], err)
	}
	b.Reset()
	res.WriteJSON(&b)
	var back tune.Results
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || len(back.Trials) != 60 {
		t.Fatalf("JSON: %v", err)
	}
	b.Reset()
	res.WriteTable(&b, 5)
	if !strings.Contains(b.String(), best.Label) || !strings.Contains(b.String(), "failed") || !strings.Contains(b.String(), "importance (share of") {
		t.Fatalf("table:\n%s", b.String())
	}
	dir := t.TempDir()
	for _, name := range []string{"heat.png", "sweep.svg"} {
		if err := res.Plot(filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.Size() < 2000 {
			t.Fatalf("%s: %v %v", name, fi, err)
		}
	}
}

// Epochs is an objective with a budget: its quality at budget b is
// q(lr) * (1 - 0.5^b); it continues from its checkpoint (the epochs done)
// and reports the epochs it actually ran, so that the test can count.
var Epochs = wren.Register("tune-test.epochs", epochs)

func epochs(ctx context.Context, p tune.Params) (tune.Metrics, error) {
	state, held, err := p.LoadCheckpoint(ctx)
	if err != nil {
		return nil, err
	}
	done := 0
	if state != nil {
		done, _ = strconv.Atoi(string(state))
	}
	if done != held {
		return nil, fmt.Errorf("the checkpoint of budget %d holds %d epochs", held, done)
	}
	ran := p.Budget() - done
	if err := p.SaveCheckpoint(ctx, []byte(strconv.Itoa(p.Budget()))); err != nil {
		return nil, err
	}
	q := 1 - math.Abs(math.Log10(p.Float("lr"))+1.5) // best at lr = 10^-1.5
	return tune.Metrics{"accuracy": q * (1 - math.Pow(0.5, float64(p.Budget()))), "ran": float64(ran)}, nil
}

// TestASHA: successive halving spends at most a third of the epochs of the
// full sweep and still finds its best trial.
func TestASHA(t *testing.T) {
	ex := executor(t, wren.Options{Backend: wren.InProcess(4)})
	ctx := context.Background()
	space := tune.Space{"lr": tune.LogUniform(1e-4, 1)}
	full, err := tune.Sweep(ctx, ex, Epochs, space, tune.Options{Metric: "accuracy", Samples: 81, Seed: 3,
		ASHA: &tune.ASHA{MinBudget: 27, MaxBudget: 27}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := tune.Sweep(ctx, ex, Epochs, space, tune.Options{Metric: "accuracy", Samples: 81, Seed: 3,
		ASHA: &tune.ASHA{MinBudget: 1, MaxBudget: 27, Reduction: 3}})
	if err != nil {
		t.Fatal(err)
	}
	ran := func(r *tune.Results) int {
		n := 0
		keys, _ := blob.Keys(ctx, ex.Store(), r.Prefix+"/trials/")
		for _, k := range keys {
			b, _ := blob.ReadAll(ctx, ex.Store(), k)
			var tr tune.Trial
			json.Unmarshal(b, &tr)
			n += int(tr.Metrics["ran"])
		}
		return n
	}
	fullRan, ashaRan := ran(full), ran(res)
	t.Logf("full: %v\nasha: %v\nepochs run: full %d, ASHA %d", full, res, fullRan, ashaRan)
	if fullRan != 81*27 || ashaRan*3 > fullRan || res.BudgetUnits != ashaRan {
		t.Fatalf("epochs run: full %d (want %d), ASHA %d (units counted %d): want at most a third", fullRan, 81*27, ashaRan, res.BudgetUnits)
	}
	if res.Best().ID != full.Best().ID || res.Best().Budget != 27 {
		t.Fatalf("ASHA's best %s (budget %d), the full sweep's %s", res.Best().Label, res.Best().Budget, full.Best().Label)
	}
}

// Slow sleeps, so that a sweep can be interrupted.
var Slow = wren.Register("tune-test.slow", func(ctx context.Context, p tune.Params) (tune.Metrics, error) {
	if p.Float("x") >= 4 {
		select {
		case <-time.After(time.Hour):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return tune.Metrics{"y": p.Float("x")}, nil
})

// TestResume: an interrupted sweep's finished trials are in the store; a
// resume reruns only the others and says how many it reused; a resume with
// another space is refused.
func TestResume(t *testing.T) {
	ex := executor(t, wren.Options{Backend: wren.InProcess(8)})
	ctx := context.Background()
	space := tune.Space{"x": tune.Grid(0, 1, 2, 3, 4, 5)}
	cctx, cancel := context.WithCancel(ctx)
	go func() {
		time.Sleep(300 * time.Millisecond) // x < 4 are done by then; 4 and 5 hang
		cancel()
	}()
	_, err := tune.Sweep(cctx, ex, Slow, space, tune.Options{Metric: "y", Prefix: "sweeps/resume"})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted sweep: %v", err)
	}
	prev, err := tune.Load(ctx, ex.Store(), "sweeps/resume")
	if err != nil {
		t.Fatal(err)
	}
	if ok := len(prev.Trials) - len(prev.Errors()); ok != 4 {
		t.Fatalf("%d finished trials recorded, want 4: %+v", ok, prev.Trials)
	}
	if _, err := tune.Sweep(ctx, ex, Slow, tune.Space{"x": tune.Grid(0, 1)}, tune.Options{Metric: "y", Resume: prev}); !errors.Is(err, tune.ErrSpace) {
		t.Fatalf("resume with another space: %v", err)
	}
	// Now the slow trials finish at once: a fresh objective for x >= 4.
	res, err := tune.Sweep(ctx, ex, Fast, space, tune.Options{Metric: "y", Resume: prev})
	if err != nil {
		t.Fatal(err)
	}
	if res.Reused != 4 || len(res.Trials) != 6 || len(res.Errors()) != 0 || res.Best().Num["x"] != 5 {
		t.Fatalf("resumed: %v (reused %d)", res, res.Reused)
	}
}

// Fast is Slow without the wait.
var Fast = wren.Register("tune-test.fast", func(ctx context.Context, p tune.Params) (tune.Metrics, error) {
	return tune.Metrics{"y": p.Float("x")}, nil
})

// TestParamsTravel: a trial's parameters reach the objective whole
// through either codec, the run's budget and checkpoints included.
func TestParamsTravel(t *testing.T) {
	ex := executor(t, wren.Options{Backend: wren.InProcess(2)})
	for _, codec := range []wren.Codec{wren.Gob, wren.JSON} {
		name := "tune-test.echo-" + codec.Name()
		obj := echoes[name]
		res, err := tune.Sweep(context.Background(), ex, obj, tune.Space{"x": tune.Grid(1, 2), "s": tune.Labels("a")},
			tune.Options{Metric: "budget", ASHA: &tune.ASHA{MinBudget: 2, MaxBudget: 2}})
		if err != nil {
			t.Fatal(err)
		}
		for _, tr := range res.Trials {
			if !tr.OK() || tr.Metrics["budget"] != 2 || tr.Metrics["x"] != tr.Num["x"] || tr.Metrics["store"] != 1 || tr.Metrics["metric"] != 1 {
				t.Fatalf("%s: trial %+v", codec.Name(), tr)
			}
		}
	}
}

var echoes = map[string]*wren.Task[tune.Params, tune.Metrics]{}

func init() {
	for _, codec := range []wren.Codec{wren.Gob, wren.JSON} {
		name := "tune-test.echo-" + codec.Name()
		echoes[name] = wren.Register(name, func(ctx context.Context, p tune.Params) (tune.Metrics, error) {
			m := tune.Metrics{"budget": float64(p.Budget()), "x": p.Float("x")}
			if p.StoreURL() != "" && strings.HasSuffix(p.CheckpointKey(), "budget-000002") {
				m["store"] = 1
			}
			if p.Metric() == "budget" && p.String("s") == "a" {
				m["metric"] = 1
			}
			return m, nil
		}, wren.WithCodec(codec))
	}
}
