package sgd

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/dataset"
)

// TestLazyL2MatchesDense: the same examples as dense shards (every step
// decays every weight) and as libsvm shards (the decay applied lazily, in
// TrainLocal, and by a HOGWILD! worker that gathers and scatters its
// windows and settles the decay at the end) train the same model.
func TestLazyL2MatchesDense(t *testing.T) {
	ctx := context.Background()
	ex := executor(t, 1)
	st := ex.Store()
	const n, dim, shards = 400, 2000, 4
	rng := rand.New(rand.NewPCG(11, 11))
	end := func(i int) int { return (i + 1) * n / shards }
	shard := 0
	var x []float32
	var y []int32
	var text []byte
	for i := range n {
		row := make([]float32, dim)
		var idx []int32
		var val []float64
		s := 0.0
		for range 5 {
			j := rng.IntN(dim)
			if row[j] != 0 {
				continue
			}
			v := float64(1+rng.IntN(8)) / 8 // exact in float32 and in text
			row[j] = float32(v)
			s += v * float64(j%3-1)
		}
		for j, v := range row {
			if v != 0 {
				idx, val = append(idx, int32(j)), append(val, float64(v))
			}
		}
		label := int32(0)
		if s > 0 {
			label = 1
		}
		x, y = append(x, row...), append(y, label)
		text = dataset.AppendLibSVM(text, float64(label), idx, val)
		if i+1 == end(shard) {
			if err := dataset.WriteShard(ctx, st, "dense", shard, x, dim, y, nil, nil); err != nil {
				t.Fatal(err)
			}
			if err := dataset.WriteLibSVM(ctx, st, "sparse", shard, text); err != nil {
				t.Fatal(err)
			}
			x, y, text = x[:0], y[:0], text[:0]
			shard++
		}
	}
	cfg := Options{Model: "m", Loss: Logistic{}, Features: dim, Epochs: 3, BatchSize: 5, LocalSteps: 2, LR: Constant(0.5), L2: 0.02, Seed: 3}
	cfg.Data = "dense"
	dense, err := TrainLocal(ctx, st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Data = "sparse"
	// The sequential run on sparse data holds its model as scale × values:
	// also with the scale multiplied in at almost every step.
	for _, floor := range []float64{scaleFloor, 0.999} {
		old := scaleFloor
		scaleFloor = floor
		lazy, err := TrainLocal(ctx, st, cfg)
		scaleFloor = old
		if err != nil {
			t.Fatal(err)
		}
		for j, v := range dense.Params() {
			if d := math.Abs(v - lazy.Params()[j]); d > 1e-9 {
				t.Fatalf("scale floor %v: value %d: dense %v, scaled %v", floor, j, v, lazy.Params()[j])
			}
		}
	}
	// And with several outputs (softmax over the two classes).
	cfg2 := cfg
	cfg2.Loss, cfg2.Data = Softmax{Classes: 2}, "dense"
	dense2, err := TrainLocal(ctx, st, cfg2)
	if err != nil {
		t.Fatal(err)
	}
	cfg2.Data = "sparse"
	scaled2, err := TrainLocal(ctx, st, cfg2)
	if err != nil {
		t.Fatal(err)
	}
	for j, v := range dense2.Params() {
		if d := math.Abs(v - scaled2.Params()[j]); d > 1e-9 {
			t.Fatalf("softmax: value %d: dense %v, scaled %v", j, v, scaled2.Params()[j])
		}
	}
	// One HOGWILD! worker follows the sequential run (pushes settle
	// before each gather), up to the server's float32 values. Windows of 2
	// minibatches (50 coordinates) gather and scatter, the lazy decay
	// settled and started again every 7 steps; windows of 8 (200, over
	// 1/16 of the model) pull and push all of it, their steps sparse on a
	// copy held as scale × values (also with the scale multiplied in at
	// almost every step).
	cfg.Workers = 1
	// (In-process, so the workers see lazySteps.)
	iex, err := wren.NewExecutor(ctx, wren.Options{BlobStore: st, Backend: wren.InProcess(1), Progress: wren.ProgressOff})
	if err != nil {
		t.Fatal(err)
	}
	defer iex.Close()
	client := psClient(t, 2)
	for _, c := range []struct {
		steps int
		floor float64
	}{{2, scaleFloor}, {8, scaleFloor}, {8, 0.999}} {
		steps := c.steps
		cfg.LocalSteps, cfg.Model = steps, fmt.Sprintf("m%d-%v", steps, c.floor)
		oldSteps, oldFloor := lazySteps, scaleFloor
		lazySteps, scaleFloor = 7, c.floor
		hw, err := Train(ctx, iex, client, cfg)
		lazySteps, scaleFloor = oldSteps, oldFloor
		if err != nil {
			t.Fatal(err)
		}
		ws := hw.Workers[0]
		if ws.Pushes < int64(3*n/5/steps) {
			t.Fatalf("windows of %d: %d pushes: the worker did not push a window at a time", steps, ws.Pushes)
		}
		whole := ws.BytesPushed >= ws.Pushes*4*(dim+1)
		if whole != (steps == 8) {
			t.Fatalf("windows of %d: %d bytes in %d pushes: whole-model pushes %v", steps, ws.BytesPushed, ws.Pushes, whole)
		}
		m, err := hw.Model(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var decayed int
		for j := range dim {
			got, want := m.W[j*2+1], dense.Params()[j]
			if math.Abs(got-want) > 1e-4*(1+math.Abs(want)) {
				t.Fatalf("windows of %d: weight %d: HOGWILD! %v, sequential %v", steps, j, got, want)
			}
			if want != 0 {
				decayed++
			}
		}
		if decayed < dim/2 {
			t.Fatalf("only %d weights are non-zero: the test does not reach the decay", decayed)
		}
	}
}

// TestWorkerInputChecked: a worker's input comes from the store, so a
// call refuses what no driver writes instead of looping on a zero batch
// (which never advanced: the call ran until its slice or for ever) or
// allocating for a model it does not train.
func TestWorkerInputChecked(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ex := executor(t, 1)
	r, err := GenerateRatings(RatingsSpec{Users: 5, Items: 4, Rank: 2, Count: 40, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteRatings(ctx, ex.Store(), "r", r, 2); err != nil {
		t.Fatal(err)
	}
	meta, err := readRatingsMeta(ctx, ex.Store(), "r")
	if err != nil {
		t.Fatal(err)
	}
	spec := mfSpec{Users: 5, Items: 4, Rank: 2, Mean: 0}
	good := workerIn{MF: &spec, Format: "ratings", Shards: meta.Shards, Sizes: meta.Sizes, Epochs: 1, Batch: 5, LocalSteps: 2,
		LR: Constant(0.1), L2: 1e-4, From: Position{Run: "r1", Data: "d"}}
	if _, err := train(ctx, ex.Store(), &memParams{w: make([]float64, spec.size())}, good, false); err != nil {
		t.Fatalf("a good assignment: %v", err)
	}
	for name, c := range map[string]struct {
		edit func(in *workerIn)
		n    int
		want error
	}{
		"zero batch":           {func(in *workerIn) { in.Batch = 0 }, 0, ErrBadData},
		"zero window":          {func(in *workerIn) { in.LocalSteps = 0 }, 0, ErrBadData},
		"zero epochs":          {func(in *workerIn) { in.Epochs = 0 }, 0, ErrBadData},
		"NaN L2":               {func(in *workerIn) { in.L2 = math.NaN() }, 0, ErrBadData},
		"negative L2":          {func(in *workerIn) { in.L2 = -1 }, 0, ErrBadData},
		"no schedule":          {func(in *workerIn) { in.LR = Schedule{} }, 0, ErrBadData},
		"rank 0":               {func(in *workerIn) { in.MF = &mfSpec{Users: 5, Items: 4} }, 0, ErrBadData},
		"too many users":       {func(in *workerIn) { in.MF = &mfSpec{Users: 1 << 40, Items: 4, Rank: 2} }, 0, ErrBadData},
		"NaN mean":             {func(in *workerIn) { in.MF = &mfSpec{Users: 5, Items: 4, Rank: 2, Mean: math.NaN()} }, 0, ErrBadData},
		"fewer users":          {func(in *workerIn) { in.MF = &mfSpec{Users: 3, Items: 4, Rank: 2} }, 0, ErrBadData},
		"another model size":   {func(in *workerIn) {}, 7, ErrModelSize},
		"a position elsewhere": {func(in *workerIn) { in.From.Block = 9 }, 0, ErrPosition},
	} {
		in := good
		c.edit(&in)
		n := c.n
		if n == 0 {
			n = spec.size()
		}
		if _, err := train(ctx, ex.Store(), &memParams{w: make([]float64, n)}, in, false); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
}

// TestFactorsEdges: the smallest and largest settings, and the executor's
// own options (chunks, retries, speculation, a timeout), which never reach
// the workers' calls: every rating is trained once an epoch.
func TestFactorsEdges(t *testing.T) {
	ctx := context.Background()
	ex := executor(t, 2)
	client := psClient(t, 1)
	r, err := GenerateRatings(RatingsSpec{Users: 30, Items: 20, Rank: 2, Count: 601, Mean: 3, Noise: 0.1, Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteRatings(ctx, ex.Store(), "r", r, 2); err != nil {
		t.Fatal(err)
	}
	if err := WriteRatings(ctx, ex.Store(), "r1", r, 1); err != nil {
		t.Fatal(err)
	}
	if err := WriteRatings(ctx, ex.Store(), "rall", r, r.Len()); err != nil {
		t.Fatal(err)
	}
	for i, c := range []FactorOptions{
		{Data: "r", Rank: 1, BatchSize: 1, LocalSteps: 1, Workers: 2},
		{Data: "r1", Workers: 1, Epochs: 0},       // defaults: rank 10, one epoch
		{Data: "rall", Rank: maxRank, Workers: 2}, // a shard a rating; the largest rank
		{Data: "r", Rank: 3, Workers: 2, Epochs: 2, Init: 1e-3, L2: -1, MapOptions: []wren.MapOption{
			wren.WithChunkSize(2), wren.WithRetries(3), wren.WithSpeculation(0.5), wren.WithTimeout(time.Minute)}},
	} {
		c.Model = "edge" + string(rune('a'+i))
		res, err := TrainFactors(ctx, ex, client, c)
		if err != nil {
			t.Fatalf("%d %+v: %v", i, c, err)
		}
		epochs := max(c.Epochs, 1)
		if res.Examples != int64(epochs*r.Len()) {
			t.Fatalf("%d: %d examples, want %d", i, res.Examples, epochs*r.Len())
		}
	}
	if _, err := TrainFactors(ctx, ex, client, FactorOptions{Model: "big", Data: "r", Rank: maxRank + 1}); err == nil {
		t.Fatal("rank above the largest: no error")
	}
	if _, err := TrainFactors(ctx, ex, client, FactorOptions{Model: "lr", Data: "r", LR: Constant(100), L2: 0.5, Workers: 1}); !errors.Is(err, ErrDiverged) {
		t.Fatalf("learning rate x L2 >= 1: %v", err)
	}
}

// TestGeneratorsRefuseBadSpecs: a generated problem's spec that cannot be
// drawn is a clear error, not a hang (a support smaller than the fifth of
// an example's features drawn from it looped for ever) or NaN labels and
// ratings; the smallest specs that can be drawn are drawn.
func TestGeneratorsRefuseBadSpecs(t *testing.T) {
	ctx := context.Background()
	st := executor(t, 1).Store()
	for i, spec := range []SparseSpec{
		{Features: 100, NonZeros: 50, Support: 3},      // 10 support features an example from 3
		{Features: 100, NonZeros: 50, Support: 9},      // one short
		{Features: 10, NonZeros: 11},                   // more non-zeros than features
		{Features: 10, NonZeros: 4},                    // under 5
		{Features: 10, NonZeros: 5, Support: 11},       // support over the features
		{Features: -1, NonZeros: 5},                    // negative sizes
		{Features: 10, NonZeros: 5, Examples: -1},      // (drew nothing, and said nothing)
		{Features: 10, NonZeros: 5, Shards: -2},        //
		{Features: 10, NonZeros: 5, Noise: math.NaN()}, // every label 0
		{Features: 10, NonZeros: 5, Noise: math.Inf(1)},
		{Features: 10, NonZeros: 5, Noise: -1},
	} {
		done := make(chan error, 1)
		go func() {
			_, err := GenerateSparse(ctx, st, fmt.Sprint("bad", i), spec)
			done <- err
		}()
		select {
		case err := <-done:
			if !errors.Is(err, ErrBadData) {
				t.Errorf("spec %d %+v: %v, want ErrBadData", i, spec, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("spec %d %+v: GenerateSparse still drawing after 10 s", i, spec)
		}
	}
	// The smallest that can be drawn: 5 features, 5 non-zeros an example
	// (one from a support of 1), one example, one shard; and a support
	// defaulting to the features when they are under 500.
	for i, spec := range []SparseSpec{
		{Features: 5, NonZeros: 5, Support: 1, Examples: 1, Shards: 1},
		{Features: 40, NonZeros: 5, Examples: 3, Shards: 5},
	} {
		hidden, err := GenerateSparse(ctx, st, fmt.Sprint("ok", i), spec)
		if err != nil {
			t.Fatalf("spec %+v: %v", spec, err)
		}
		want := spec.Support
		if want == 0 {
			want = min(500, spec.Features)
		}
		if len(hidden) != want {
			t.Fatalf("spec %+v: a support of %d, want %d", spec, len(hidden), want)
		}
	}
	for _, spec := range []RatingsSpec{
		{Users: 2, Items: 2, Rank: 1, Count: 5, Mean: math.NaN()},
		{Users: 2, Items: 2, Rank: 1, Count: 5, Mean: 3, Noise: math.NaN()},
		{Users: 2, Items: 2, Rank: 1, Count: 5, Mean: math.Inf(-1)},
		{Users: 2, Items: 2, Rank: 1, Count: 5, Mean: 3, Noise: -0.5},
	} {
		if _, err := GenerateRatings(spec); !errors.Is(err, ErrBadData) {
			t.Errorf("ratings spec %+v: %v, want ErrBadData", spec, err)
		}
	}
}
