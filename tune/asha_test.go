package tune_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/tune"
)

// TestBadASHA: every ASHA setting that cannot work is refused before
// anything runs (a reduction of 1 used to loop forever, growing memory).
func TestBadASHA(t *testing.T) {
	ex := executor(t, wren.Options{Backend: wren.InProcess(2)})
	space := tune.Space{"lr": tune.LogUniform(1e-4, 1)}
	for name, c := range map[string]struct {
		asha    tune.ASHA
		samples int
		want    string
	}{
		"reduction 1":            {tune.ASHA{MinBudget: 1, MaxBudget: 9, Reduction: 1}, 9, "reduction 1"},
		"negative reduction":     {tune.ASHA{MinBudget: 1, MaxBudget: 9, Reduction: -2}, 9, "reduction -2"},
		"zero budget":            {tune.ASHA{MinBudget: 0, MaxBudget: 9}, 9, "minimum budget 0"},
		"negative budget":        {tune.ASHA{MinBudget: -3, MaxBudget: 9}, 9, "minimum budget -3"},
		"budgets reversed":       {tune.ASHA{MinBudget: 9, MaxBudget: 3}, 9, "budgets 9 to 3"},
		"too few trials":         {tune.ASHA{MinBudget: 1, MaxBudget: 9, Reduction: 4}, 3, "3 trials"},
		"last rung out of reach": {tune.ASHA{MinBudget: 1, MaxBudget: 9, Reduction: 3}, 8, "at least 9 trials"},
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			a := c.asha
			_, err := tune.Sweep(ctx, ex, Epochs, space, tune.Options{Metric: "accuracy", Samples: c.samples, Prefix: "bad/" + name, ASHA: &a})
			if !errors.Is(err, tune.ErrSpace) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want ErrSpace mentioning %q", err, c.want)
			}
			if keys, _ := blob.Keys(ctx, ex.Store(), "bad/"+name); len(keys) != 0 {
				t.Fatalf("a refused sweep wrote %v", keys)
			}
		})
	}
	// Legal edges: one rung (no promotion, any number of trials), a
	// reduction of 2, budgets near the integer limit.
	for name, c := range map[string]struct {
		asha    tune.ASHA
		samples int
		best    int
	}{
		"one rung":      {tune.ASHA{MinBudget: 5, MaxBudget: 5, Reduction: 100}, 2, 5},
		"reduction 2":   {tune.ASHA{MinBudget: 1, MaxBudget: 4, Reduction: 2}, 4, 4},
		"huge budgets":  {tune.ASHA{MinBudget: 1 << 61, MaxBudget: 1<<62 + 1, Reduction: 2}, 4, 1<<62 + 1},
		"not a power":   {tune.ASHA{MinBudget: 2, MaxBudget: 7, Reduction: 3}, 9, 7},
		"one trial two": {tune.ASHA{MinBudget: 1, MaxBudget: 2, Reduction: 2}, 2, 2},
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			a := c.asha
			res, err := tune.Sweep(ctx, ex, Budgets, space, tune.Options{Metric: "budget", Samples: c.samples, ASHA: &a})
			if err != nil {
				t.Fatal(err)
			}
			if b := res.Best(); b == nil || b.Budget != c.best {
				t.Fatalf("best %+v, want a trial at budget %d", b, c.best)
			}
		})
	}
}

// Budgets reports its budget (no checkpoint): for the ASHA edge cases.
var Budgets = wren.Register("tune-test.budgets", func(ctx context.Context, p tune.Params) (tune.Metrics, error) {
	return tune.Metrics{"budget": float64(p.Budget())}, nil
})

// lineage is a checkpointing objective whose state counts the epochs its
// model was trained for. It trains Budget() - held epochs on top of what
// LoadCheckpoint gave it, and reports the count ("held"): a model of
// budget b must hold exactly b epochs. When $TUNE_TEST_DIE names a
// directory, the first attempt of every promoted run saves its checkpoint
// and then dies (the worker process exits): a lost attempt after its write.
type lineageState struct{ Epochs int }

var Lineage = wren.Register("tune-test.lineage", func(ctx context.Context, p tune.Params) (tune.Metrics, error) {
	b, held, err := p.LoadCheckpoint(ctx)
	if err != nil {
		return nil, err
	}
	var st lineageState
	if b != nil {
		if err := json.Unmarshal(b, &st); err != nil {
			return nil, err
		}
	}
	st.Epochs += p.Budget() - held
	out, _ := json.Marshal(st)
	if err := p.SaveCheckpoint(ctx, out); err != nil {
		return nil, err
	}
	if dir := os.Getenv("TUNE_TEST_DIE"); dir != "" && p.Resumed() > 0 {
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("%d-%d", p.ID, p.Budget())), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil {
			f.Close()
			os.Exit(3)
		}
	}
	time.Sleep(time.Duration(p.ID%5) * time.Millisecond)
	return tune.Metrics{"held": float64(st.Epochs), "score": p.Float("lr")}, nil
})

// TestASHACheckpointsPerBudget: each (trial, budget) has its own
// checkpoint, written once, so that a promoted run whose first attempt
// died after saving, and the runs of a sweep resumed in the middle of a
// rung, train their models for exactly their budget (one key per trial
// used to give a retried run the state it had itself saved: a trial
// reported at budget 3 held 5 epochs).
func TestASHACheckpointsPerBudget(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("TUNE_TEST_DIE", dir) // the worker processes inherit it
	ex := executor(t, wren.Options{Parallelism: 2, Retries: 3})
	ctx := context.Background()
	space := tune.Space{"lr": tune.Uniform(0, 1)}
	opts := tune.Options{Metric: "score", Samples: 18, Seed: 7, ASHA: &tune.ASHA{MinBudget: 1, MaxBudget: 9, Reduction: 3}, Prefix: "lineage"}
	res, err := tune.Sweep(ctx, ex, Lineage, space, opts)
	if err != nil {
		t.Fatal(err)
	}
	if b := res.Best(); b == nil || b.Budget != 9 {
		t.Fatalf("best %+v: want a trial of the last rung", b)
	}
	deaths, _ := os.ReadDir(dir)
	if len(deaths) < 6+2 {
		t.Fatalf("%d promoted runs died after saving, want every one (8)", len(deaths))
	}
	checkHeld(t, ctx, ex, "lineage", 18)

	// A sweep interrupted in the middle of its rungs, then resumed.
	t.Setenv("TUNE_TEST_DIE", "")
	ex2 := executor(t, wren.Options{Parallelism: 2})
	cctx, cancel := context.WithCancel(ctx)
	opts.Prefix, opts.Samples = "resumed", 27
	go func() {
		for {
			keys, _ := blob.Keys(ctx, ex2.Store(), "resumed/trials/")
			if len(keys) >= 30 { // rung 0 done, rung 1 under way
				cancel()
				return
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	if _, err := tune.Sweep(cctx, ex2, Lineage, space, opts); err == nil {
		t.Log("the sweep finished before it could be interrupted")
	}
	prev, err := tune.Load(ctx, ex2.Store(), "resumed")
	if err != nil {
		t.Fatal(err)
	}
	opts.Resume = prev
	res, err = tune.Sweep(ctx, ex2, Lineage, space, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("resumed: %v", res)
	checkHeld(t, ctx, ex2, "resumed", 27)
}

// checkHeld reads every recorded run of a sweep: each model held exactly
// its budget's epochs.
func checkHeld(t *testing.T, ctx context.Context, ex *wren.Executor, prefix string, trials int) {
	t.Helper()
	res, err := tune.Load(ctx, ex.Store(), prefix)
	if err != nil {
		t.Fatal(err)
	}
	perBudget := map[int]int{}
	for _, tr := range res.Trials {
		if !tr.OK() {
			t.Fatalf("trial %d at budget %d failed: %s", tr.ID, tr.Budget, tr.Err)
		}
		if int(tr.Metrics["held"]) != tr.Budget {
			t.Errorf("trial %d at budget %d: its model holds %v epochs", tr.ID, tr.Budget, tr.Metrics["held"])
		}
		perBudget[tr.Budget]++
	}
	// Promotions are asynchronous: a rung may promote more than 1/3 of its
	// trials (a better trial arrives after an earlier promotion).
	if perBudget[1] != trials || perBudget[3] < trials/3 || perBudget[9] < trials/9 {
		t.Fatalf("runs per budget %v, want %d, at least %d, at least %d", perBudget, trials, trials/3, trials/9)
	}
}

// TestSweepLeavesNoGoroutine: a sweep that ends with an error or a cancel
// leaves no goroutine behind (its runs used to block forever delivering
// results nobody read).
func TestSweepLeavesNoGoroutine(t *testing.T) {
	ex := executor(t, wren.Options{Backend: wren.InProcess(4)})
	space := tune.Space{"x": tune.Grid(0, 1, 2, 3, 4, 5, 6, 7, 8)}
	before := runtime.NumGoroutine()
	for _, a := range []*tune.ASHA{nil, {MinBudget: 1, MaxBudget: 9, Reduction: 3}} {
		for range 3 {
			ctx, cancel := context.WithCancel(context.Background())
			go func() {
				time.Sleep(20 * time.Millisecond)
				cancel()
			}()
			_, err := tune.Sweep(ctx, ex, Hang, space, tune.Options{Metric: "y", ASHA: a})
			if !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want cancelled", err)
			}
		}
	}
	// A store that fails every job manifest after the first: the sweep's
	// second map cannot start, and the first one's calls (some waiting for
	// their context) must not run on after Sweep returned.
	st, err := wren.OpenStore(context.Background(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fex := executor(t, wren.Options{Backend: wren.InProcess(9), BlobStore: &failManifests{Store: st}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = tune.Sweep(ctx, fex, Hang, space, tune.Options{Metric: "y", ASHA: &tune.ASHA{MinBudget: 1, MaxBudget: 9, Reduction: 3}})
	if !errors.Is(err, errNoManifest) {
		t.Fatalf("err = %v, want the second manifest's failure", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		buf := make([]byte, 1<<20)
		t.Fatalf("%d goroutines after the sweeps, %d before:\n%s", n, before, buf[:runtime.Stack(buf, true)])
	}
}

var errNoManifest = errors.New("test: no more manifests")

// failManifests fails the put of every job manifest after the first.
type failManifests struct {
	blob.Store
	mu sync.Mutex
	n  int
}

func (f *failManifests) Put(ctx context.Context, key string, r io.Reader, opts blob.PutOptions) error {
	if strings.HasSuffix(key, "/manifest.json") {
		f.mu.Lock()
		f.n++
		n := f.n
		f.mu.Unlock()
		if n > 1 {
			return errNoManifest
		}
	}
	return f.Store.Put(ctx, key, r, opts)
}

// Hang reports at once for x < 4 and waits for its context otherwise.
var Hang = wren.Register("tune-test.hang", func(ctx context.Context, p tune.Params) (tune.Metrics, error) {
	if p.Float("x") >= 4 && p.Budget() <= 1 {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	return tune.Metrics{"y": p.Float("x")}, nil
})
