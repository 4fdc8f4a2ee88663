package sgd

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/dataset"
	"github.com/wrenml/wren/linear"
)

// libsvmProblem writes a separable binary problem as libsvm text with the
// given two label values (as covtype.binary's 1 and 2), in shards, and
// returns the evaluation set read back as linear reads libsvm.
func libsvmProblem(t *testing.T, st blob.Store, prefix string, neg, pos float64, n, shards int) *linear.Dataset {
	t.Helper()
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(5, 5))
	var all []byte
	texts := make([][]byte, shards)
	for i := range n {
		x1, x2 := rng.NormFloat64(), rng.NormFloat64()
		label := neg
		if x1+0.5*x2 > 0 {
			label = pos
		}
		line := dataset.AppendLibSVM(nil, label, []int32{0, 1}, []float64{x1, x2})
		texts[i%shards] = append(texts[i%shards], line...)
		all = append(all, line...)
	}
	for i, text := range texts {
		if err := dataset.WriteLibSVM(ctx, st, prefix, i, text); err != nil {
			t.Fatal(err)
		}
	}
	ds, _, err := linear.ReadLibSVM(bytes.NewReader(all), linear.LibSVMOptions{Dim: 2})
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

// TestLibSVMLabelValues: workers, evaluation and the model read libsvm
// labels the same way: with labels 1/2 the binary losses separate the
// classes (they took both as positive: accuracy 0.500), as with -1/+1 and
// 0/1; a softmax over the values 3, 7, 9 is three classes.
func TestLibSVMLabelValues(t *testing.T) {
	ctx := context.Background()
	ex := executor(t, 2)
	client := psClient(t, 1)
	for _, c := range []struct {
		neg, pos float64
		loss     Loss
		lr       Schedule
	}{
		{1, 2, Logistic{}, InvScaling(0.5, 0.3)},
		{1, 2, Hinge{}, InvScaling(0.1, 0.3)},
		{-1, 1, Logistic{}, InvScaling(0.5, 0.3)},
		{0, 1, Hinge{}, InvScaling(0.1, 0.3)},
		{3, 7, Softmax{Classes: 2}, InvScaling(0.5, 0.3)},
	} {
		name := fmt.Sprintf("%s-%v-%v", c.loss.Name(), c.neg, c.pos)
		t.Run(name, func(t *testing.T) {
			prefix := "libsvm/" + name
			ds := libsvmProblem(t, ex.Store(), prefix, c.neg, c.pos, 1200, 4)
			cfg := Options{Model: name, Loss: c.loss, Data: prefix, Features: 2, Epochs: 4, BatchSize: 20, LR: c.lr, Seed: 1, Eval: ds, Workers: 2}
			local, err := TrainLocal(ctx, ex.Store(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			hw, err := Train(ctx, ex, client, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if local.Final.Accuracy < 0.95 || hw.Final.Accuracy < 0.95 {
				t.Fatalf("accuracy: sequential %.3f, hogwild %.3f", local.Final.Accuracy, hw.Final.Accuracy)
			}
			lm, err := hw.Model(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if ev := lm.Evaluate(ds); ev.Accuracy < hw.Final.Accuracy-0.02 {
				t.Fatalf("linear.Model accuracy %.3f, run %.3f", ev.Accuracy, hw.Final.Accuracy)
			}
			want := []string{fmt.Sprint(c.neg), fmt.Sprint(c.pos)}
			if len(lm.ClassNames) != 2 || lm.ClassNames[0] != want[0] || lm.ClassNames[1] != want[1] {
				t.Fatalf("class names %q, want %q", lm.ClassNames, want)
			}
		})
	}
	// Labels given: a value the data has beyond them is refused, naming it.
	prefix := "libsvm/three"
	libsvmProblem(t, ex.Store(), prefix, 1, 2, 100, 2)
	blob.PutBytes(ctx, ex.Store(), prefix+"/shard-00009.libsvm", []byte("5 1:1\n"), blob.PutOptions{})
	cfg := Options{Model: "three", Loss: Logistic{}, Data: prefix, Features: 2, Seed: 1, Workers: 2}
	if _, err := TrainLocal(ctx, ex.Store(), cfg); err == nil || !strings.Contains(err.Error(), "3 label values") {
		t.Errorf("three labels for a binary loss: %v", err)
	}
	cfg.Labels = []float64{1, 2}
	if _, err := Train(ctx, ex, client, cfg); err == nil || !strings.Contains(err.Error(), "label 5") || !strings.Contains(err.Error(), "Options.Labels") {
		t.Errorf("a label outside Options.Labels: %v", err)
	}
	cfg.Labels = []float64{2, 1}
	if _, err := TrainLocal(ctx, ex.Store(), cfg); err == nil {
		t.Error("unsorted Options.Labels accepted")
	}
}

// TestWriteShardsCount: n shards of any number of examples are n shards
// (9 examples into 4 shards made 3, and Train with 4 workers failed).
func TestWriteShardsCount(t *testing.T) {
	ctx := context.Background()
	ex := executor(t, 4)
	client := psClient(t, 1)
	for _, c := range []struct{ n, shards int }{{9, 4}, {4, 4}, {5, 4}, {7, 1}, {1, 1}, {10, 3}, {1000, 7}} {
		ds := problem(c.n, 3, 1, 2)
		prefix := fmt.Sprintf("count/%d-%d", c.n, c.shards)
		if err := WriteShards(ctx, ex.Store(), prefix, ds, c.shards); err != nil {
			t.Fatal(err)
		}
		l, err := dataset.List(ctx, ex.Store(), prefix)
		if err != nil {
			t.Fatal(err)
		}
		lo, hi := c.n, 0
		for _, sh := range l.Shards {
			lo, hi = min(lo, sh.N), max(hi, sh.N)
		}
		if len(l.Shards) != c.shards || l.N != c.n || hi-lo > 1 {
			t.Fatalf("%d examples into %d shards: %d shards of %d to %d, %d examples", c.n, c.shards, len(l.Shards), lo, hi, l.N)
		}
	}
	if _, err := Train(ctx, ex, client, Options{Model: "nine", Loss: Logistic{}, Data: "count/9-4", Workers: 4, BatchSize: 2}); err != nil {
		t.Fatalf("9 examples in 4 shards, 4 workers: %v", err)
	}
	for _, bad := range []int{0, -1, 10} {
		if err := WriteShards(ctx, ex.Store(), "count/bad", problem(9, 3, 1, 2), bad); err == nil {
			t.Errorf("%d shards of 9 examples accepted", bad)
		}
	}
}

// TestDeadlinePushesEverything: a worker stopped by Options.Duration pushes
// the minibatches it counted (it dropped up to LocalSteps-1 of them): every
// worker's pushes cover its steps, and the server counted every push.
func TestDeadlinePushesEverything(t *testing.T) {
	ctx := context.Background()
	ex := executor(t, 4)
	client := psClient(t, 1)
	ds := problem(4000, 20, 1, 4)
	if err := WriteShards(ctx, ex.Store(), "deadline", ds, 4); err != nil {
		t.Fatal(err)
	}
	run, err := Train(ctx, ex, client, Options{Model: "deadline", Loss: Logistic{}, Data: "deadline", Workers: 4,
		BatchSize: 10, LocalSteps: 64, Duration: 300 * time.Millisecond, Epochs: 1000, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	var pushes int64
	for _, w := range run.Workers {
		if want := (w.Steps + 63) / 64; w.Pushes != want || w.Steps == 0 {
			t.Errorf("worker %d: %d steps, %d pushes; want %d", w.Worker, w.Steps, w.Pushes, want)
		}
		pushes += w.Pushes
	}
	m, err := client.Model(ctx, "deadline")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := m.Version(ctx); err != nil || v != pushes {
		t.Errorf("the server counted %d pushes, the workers %d (%v)", v, pushes, err)
	}
}

// myLoss is a user's loss: registered, it trains on workers as the
// built-in ones do.
type myLoss struct{ Squared }

func (myLoss) Name() string { return "test-squared-copy" }

func init() {
	RegisterLoss("test-squared-copy", func(outputs int) (Loss, error) { return myLoss{}, nil })
}

type unregistered struct{ Squared }

func (unregistered) Name() string { return "not-registered" }

// TestUserLoss: a registered loss trains on workers; an unregistered one
// is refused before any worker starts (it failed on the worker as
// "unknown loss").
func TestUserLoss(t *testing.T) {
	ctx := context.Background()
	ex := executor(t, 2)
	client := psClient(t, 1)
	ds := problem(400, 5, 1, 4)
	if err := WriteShards(ctx, ex.Store(), "user", ds, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := Train(ctx, ex, client, Options{Model: "user", Loss: myLoss{}, Data: "user", Workers: 2, LR: Constant(0.01)}); err != nil {
		t.Fatalf("a registered loss: %v", err)
	}
	_, err := Train(ctx, ex, client, Options{Model: "unreg", Loss: unregistered{}, Data: "user", Workers: 2, LR: Constant(0.01)})
	if err == nil || !strings.Contains(err.Error(), "RegisterLoss") {
		t.Fatalf("an unregistered loss: %v", err)
	}
	if _, err := client.Model(ctx, "unreg"); err == nil {
		t.Error("an unregistered loss created its model before failing")
	}
}

// TestExecutorOptionsIgnored: the executor's chunking and speculation do
// not reach the workers' calls (with ChunkSize 2 the two workers became one
// invocation that ran them one after the other: worker 1 trained nothing
// before the deadline; speculation pushed a shard's updates twice).
func TestExecutorOptionsIgnored(t *testing.T) {
	ctx := context.Background()
	ex, err := wren.NewExecutor(ctx, wren.Options{Store: t.TempDir(), Parallelism: 2, ChunkSize: 2, Speculation: true, SpeculationFactor: 1.01, Progress: wren.ProgressOff})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	client := psClient(t, 1)
	if err := WriteShards(ctx, ex.Store(), "opts", problem(4000, 10, 1, 1), 2); err != nil {
		t.Fatal(err)
	}
	run, err := Train(ctx, ex, client, Options{Model: "opts", Loss: Logistic{}, Data: "opts", Workers: 2, Epochs: 1 << 20, Duration: time.Second, Slice: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range run.Workers {
		if w.Examples == 0 || w.Calls < 2 {
			t.Errorf("worker %d: %d examples in %d calls", w.Worker, w.Examples, w.Calls)
		}
	}
	if held(run) != run.Examples {
		t.Errorf("the server holds %d examples' updates, the workers trained %d: a duplicate call pushed twice", held(run), run.Examples)
	}
	// Sparse rows in windows that move the whole model (the copy held as
	// scale × values, L2 on), sliced, chunked and speculated alike.
	libsvmProblem(t, ex.Store(), "opts-sparse", 0, 1, 4000, 2)
	run, err = Train(ctx, ex, client, Options{Model: "opts-sparse", Loss: Logistic{}, Data: "opts-sparse", Features: 2, Workers: 2, Epochs: 1 << 20,
		LocalSteps: 4, L2: 1e-3, Duration: time.Second, Slice: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range run.Workers {
		if w.Examples == 0 || w.Calls < 2 || w.Pushes == 0 || w.BytesPushed != w.Pushes*4*3 {
			t.Errorf("sparse, worker %d: %d examples in %d calls, %d pushes of %d bytes (want whole-model pushes of 3 floats)", w.Worker, w.Examples, w.Calls, w.Pushes, w.BytesPushed)
		}
	}
	if held(run) != run.Examples {
		t.Errorf("sparse: the server holds %d examples' updates, the workers trained %d", held(run), run.Examples)
	}
	m, err := run.Model(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// The label is x1 + x2/2 > 0: both weights of the positive class grow
	// (W holds features x classes).
	if w1, w2 := m.W[0*2+1], m.W[1*2+1]; !(w1 > 0) || !(w2 > 0) || math.IsInf(w1, 0) || math.IsInf(w2, 0) {
		t.Errorf("sparse: model %v", m.W)
	}
}
