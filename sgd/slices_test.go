//go:build !race

// Runs of several seconds with worker processes killed; make test runs
// this file in its second, race-free go test run (the names match Hogwild).

package sgd

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/internal/testenv"
)

// slicedProblem writes a 4-class problem of n examples in 8 shards.
func slicedProblem(t *testing.T, ex *wren.Executor, prefix string, n int) int {
	t.Helper()
	ds := problem(n, 40, 4, 11)
	if err := WriteShards(context.Background(), ex.Store(), prefix, ds, 8); err != nil {
		t.Fatal(err)
	}
	return ds.N
}

// TestHogwildSlices: a run many times longer than its slice completes,
// each worker continuing in new calls from where the last stopped; every
// example is trained exactly Epochs times (the workers' counts and the
// examples their notes say the server holds), and the accuracy is a
// straight run's.
func TestHogwildSlices(t *testing.T) {
	ctx := context.Background()
	ex := executor(t, 4)
	client := psClient(t, 1)
	n := slicedProblem(t, ex, "sliced", 40000)
	eval := problem(4000, 40, 4, 11)
	cfg := Options{Model: "straight", Loss: Softmax{Classes: 4}, Data: "sliced", Workers: 4, Epochs: 60, BatchSize: 20,
		LR: InvScaling(0.2, 0.3), Seed: 7, Eval: eval, Slice: -1}
	straight, err := Train(ctx, ex, client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Model, cfg.Slice = "sliced", straight.Wall/8
	sliced, err := Train(ctx, ex, client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("straight: %v\nsliced (%v slices): %v", straight, cfg.Slice, sliced)
	for _, r := range []*Result{straight, sliced} {
		if r.Examples != int64(cfg.Epochs*n) || held(r) != int64(cfg.Epochs*n) {
			t.Errorf("%s: %d examples trained, %d held by the server, want %d x %d", r.Name, r.Examples, held(r), cfg.Epochs, n)
		}
	}
	calls := 0
	for _, w := range sliced.Workers {
		calls += w.Calls
		if w.Resumed != 0 {
			t.Errorf("worker %d resumed %d times with no fault", w.Worker, w.Resumed)
		}
	}
	if calls < 3*cfg.Workers {
		t.Errorf("%d calls for %d workers: the slices did not cut the run", calls, cfg.Workers)
	}
	if sliced.Final.Accuracy < straight.Final.Accuracy-0.02 || sliced.Final.Accuracy < 0.85 {
		t.Errorf("accuracy: sliced %.4f, straight %.4f", sliced.Final.Accuracy, straight.Final.Accuracy)
	}
	// The learning rate's schedule ran on: each worker's step is its
	// minibatches, as in the straight run.
	if sliced.Steps != straight.Steps || sliced.Steps == 0 {
		t.Errorf("steps: sliced %d, straight %d", sliced.Steps, straight.Steps)
	}
}

// TestHogwildKilledWorkers: every worker process is SIGKILLed twice while
// a sliced run trains; each lost call is retried from the position noted
// with its last push, so the updates the server applied (its version)
// exceed those of an undisturbed run by at most one window per worker and
// kill, and every example is trained Epochs times by the calls that
// finished.
func TestHogwildKilledWorkers(t *testing.T) {
	ctx := context.Background()
	ex := executor(t, 4)
	client := psClient(t, 1)
	n := slicedProblem(t, ex, "killed", 40000)
	cfg := Options{Model: "calm", Loss: Softmax{Classes: 4}, Data: "killed", Workers: 4, Epochs: 60, BatchSize: 20,
		LR: InvScaling(0.2, 0.3), Seed: 7, Slice: 500 * time.Millisecond, MapOptions: []wren.MapOption{wren.WithRetries(6)}}
	calm, err := Train(ctx, ex, client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cm, _ := client.Model(ctx, "calm")
	want, _ := cm.Version(ctx)
	cfg.Model = "killed"
	done := make(chan struct{})
	var run *Result
	go func() {
		defer close(done)
		run, err = Train(ctx, ex, client, cfg)
	}()
	var kills atomic.Int32
	for round := range 2 {
		select {
		case <-done:
			t.Fatalf("the run ended after %d kills", round)
		case <-time.After(calm.Wall / 3):
		}
		if k := testenv.KillWorkers(t); k > 0 {
			kills.Add(1)
			t.Logf("round %d: killed %d worker processes", round, k)
		}
	}
	<-done
	if err != nil {
		t.Fatal(err)
	}
	km, _ := client.Model(ctx, "killed")
	got, _ := km.Version(ctx)
	resumed := 0
	for _, w := range run.Workers {
		resumed += w.Resumed
	}
	t.Logf("%d kill rounds, %d calls resumed from a note: %d pushes applied, %d without kills\n%v", kills.Load(), resumed, got, want, run)
	if kills.Load() != 2 || resumed == 0 {
		t.Fatalf("%d kill rounds, %d resumed calls", kills.Load(), resumed)
	}
	if got < want || got > want+int64(kills.Load())*int64(cfg.Workers) {
		t.Errorf("%d pushes applied; an undisturbed run applies %d, and each kill may repeat one window per worker", got, want)
	}
	if held(run) != int64(cfg.Epochs*n) {
		t.Errorf("the server holds the updates of %d examples, want %d x %d", held(run), cfg.Epochs, n)
	}
}

// TestHogwildKilledOverAndOver: every worker process killed four times in
// quick succession, more often than the executor retries a call (the run
// failed: "call lost ... 3 attempts"), with no slices: the driver
// continues each lost call from its noted position, and the server holds
// every example's update exactly Epochs times.
func TestHogwildKilledOverAndOver(t *testing.T) {
	ctx := context.Background()
	ex := executor(t, 2)
	client := psClient(t, 1)
	n := slicedProblem(t, ex, "overandover", 40000)
	cfg := Options{Model: "m", Loss: Softmax{Classes: 4}, Data: "overandover", Workers: 2, Epochs: 200, BatchSize: 20,
		LR: InvScaling(0.2, 0.3), Seed: 7, Slice: -1}
	done := make(chan struct{})
	var run *Result
	var err error
	go func() {
		defer close(done)
		run, err = Train(ctx, ex, client, cfg)
	}()
	kills := 0
	time.Sleep(time.Second)
	for range 4 {
		select {
		case <-done:
		case <-time.After(300 * time.Millisecond):
			if testenv.KillWorkers(t) > 0 {
				kills++
			}
		}
	}
	<-done
	if err != nil {
		t.Fatalf("after %d kill rounds: %v", kills, err)
	}
	lost := 0
	for _, w := range run.Workers {
		lost += w.Lost
	}
	t.Logf("%d kill rounds, %d calls lost and continued: %v", kills, lost, run)
	if kills < 4 || lost == 0 {
		t.Fatalf("%d kill rounds, %d lost calls: the test did not reach the retries' end", kills, lost)
	}
	if held(run) != int64(cfg.Epochs*n) || run.Examples != held(run) {
		t.Errorf("the server holds the updates of %d examples, the result says %d, want %d x %d", held(run), run.Examples, cfg.Epochs, n)
	}
}
