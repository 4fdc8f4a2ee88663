package sgd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/linear"
	"github.com/wrenml/wren/ps"
	"github.com/wrenml/wren/worker"
)

// Options describes a training run. Zero values take the documented
// defaults.
type Options struct {
	// Model names the model on the parameter server (required). A model of
	// that name and size is trained further; one of another size is an
	// error.
	Model string
	// Loss is Logistic{}, Softmax{Classes: classes}, Hinge{} or Squared{} (required).
	Loss Loss
	// Data is the prefix of the training shards in the executor's store:
	// featurize's format (shard-N.npy, .labels.npy, .json) or libsvm text
	// objects (.libsvm, .svmlight, .svm; one-based or zero-based).
	Data string
	// Features is the number of features; required for libsvm data, checked
	// against npy shards.
	Features int
	// Workers is the number of HOGWILD! workers (wren calls); 0 means the
	// executor's parallelism. Shards are dealt to workers by call index.
	Workers int
	// Epochs over each worker's shards; 0 means 1. Duration, when set,
	// stops the workers after that long instead (whichever comes first).
	Epochs   int
	Duration time.Duration
	// BatchSize is the minibatch size; 0 means 100.
	BatchSize int
	// LocalSteps is how many minibatches a worker takes on its local copy
	// before it pushes their summed update (and pulls the model); 0 means
	// 8. Pushes overlap the next minibatches' computing; with 1, the
	// parameter server's CPU can dominate (see the README's figures).
	LocalSteps int
	// LR is the learning rate schedule; zero means InvScaling(0.5, 0.5).
	LR Schedule
	// L2 is the penalty (L2/2)|W|^2 (not on the intercepts); 0 means
	// DefaultL2, a negative value none (as linear's L2 options).
	L2 float64
	// Seed makes the shuffles reproducible.
	Seed uint64
	// Eval, when set, is evaluated on the driver from the parameter server
	// every EvalEvery (0 means 1 s) while training runs, and at the end.
	Eval      *linear.Dataset
	EvalEvery time.Duration
	// Checkpoint, when set, is a prefix in the executor's store the model
	// is saved to every CheckpointEvery (0: only at the end) and at the end.
	Checkpoint      string
	CheckpointEvery time.Duration
	// Initial, when set, is TrainLocal's starting model ((Features+1) x
	// outputs values, as Run.Params returns them), to continue a run.
	Initial []float64
	// MapOptions adjust the workers' map (a timeout, retries, progress).
	// The workers' calls are one an invocation and never speculative
	// whatever the executor's options: a straggling HOGWILD! worker is the
	// normal case, and a second copy would push its updates twice.
	MapOptions []wren.MapOption
	// Logger receives progress; nil means slog.Default().
	Logger *slog.Logger
}

// DefaultL2 is the penalty when Options.L2 is 0.
const DefaultL2 = 1e-5

// Point is one evaluation during training.
type Point struct {
	Time     time.Duration `json:"t"`
	Version  int64         `json:"version"` // pushes applied so far
	Loss     float64       `json:"loss"`    // mean loss on Eval
	Accuracy float64       `json:"accuracy"`
}

// Result is a finished training run (Train, TrainLocal, Resume).
type Result struct {
	Name              string // the model's name on the parameter server
	Loss              Loss
	Dim               int
	Curve             []Point // evaluations while training, and the final one
	Final             Point
	Examples          int64
	Wall              time.Duration
	ExamplesPerSecond float64
	Workers           []WorkerStats
	client            *ps.Client
	params            []float64 // TrainLocal's model
}

// ErrModelSize reports a model already on the server with another size.
var ErrModelSize = errors.New("sgd: a model of another size is on the server")

func (c *Options) defaults(ex *wren.Executor) error {
	switch {
	case c.Model == "":
		return errors.New("sgd: Options.Model is required")
	case c.Loss == nil:
		return errors.New("sgd: Options.Loss is required")
	}
	if c.Workers <= 0 {
		c.Workers = 1
		if ex != nil {
			c.Workers = ex.Parallelism()
		}
	}
	if c.Epochs <= 0 {
		c.Epochs = 1
	}
	if c.Duration > 0 && c.Epochs == 1 {
		c.Epochs = math.MaxInt32 // the time budget decides
	}
	if c.BatchSize <= 0 {
		c.BatchSize = 100
	}
	if c.LocalSteps <= 0 {
		c.LocalSteps = 8
	}
	if c.LR == (Schedule{}) {
		c.LR = InvScaling(0.5, 0.5)
	}
	if c.EvalEvery <= 0 {
		c.EvalEvery = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	switch {
	case math.IsNaN(c.L2) || math.IsInf(c.L2, 0):
		return fmt.Errorf("sgd: L2 %v", c.L2)
	case c.L2 == 0:
		c.L2 = DefaultL2
	case c.L2 < 0:
		c.L2 = 0
	}
	return c.LR.validate()
}

// Train runs HOGWILD! SGD: Workers wren calls, each streaming its shards
// from the executor's store and pulling, computing and pushing against the
// model on the parameter server without locks, while the driver evaluates
// and checkpoints the model.
func Train(ctx context.Context, ex *wren.Executor, client *ps.Client, cfg Options) (*Result, error) {
	if err := cfg.defaults(ex); err != nil {
		return nil, err
	}
	o := client.Options()
	if _, remote := ex.Backend().(worker.Remote); remote {
		for _, a := range o.Addrs {
			if host, _, err := net.SplitHostPort(a); err == nil && (host == "localhost" || net.ParseIP(host).IsLoopback()) {
				return nil, fmt.Errorf("sgd: the parameter server %s is on this machine's loopback; remote workers (%s) cannot reach it: give ps.Open the address of a server they can reach", a, ex.Backend().Name())
			}
		}
	}
	st := ex.Store()
	data, err := findData(ctx, st, cfg.Data, cfg.Features)
	if err != nil {
		return nil, err
	}
	if len(data.shards) < cfg.Workers {
		return nil, fmt.Errorf("%w: %d shards for %d workers: write more shards (WriteShards) or use fewer workers", ErrBadData, len(data.shards), cfg.Workers)
	}
	k := cfg.Loss.Outputs()
	n := (data.dim + 1) * k
	m, err := client.Model(ctx, cfg.Model)
	switch {
	case errors.Is(err, ps.ErrNoModel):
		if m, err = client.Create(ctx, cfg.Model, n, ps.Zeros); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	case m.Len() != n:
		return nil, fmt.Errorf("%w: %q holds %d values; %d features x %d outputs need %d", ErrModelSize, cfg.Model, m.Len(), data.dim, k, n)
	default:
		cfg.Logger.Info("sgd: training the model further", "model", cfg.Model)
	}
	// The workers get a Redis user of their own for this model, deleted
	// when training ends: the server's password never goes into their
	// inputs (which stay in the store).
	grant, err := client.Grant(ctx, cfg.Model)
	if err != nil {
		return nil, fmt.Errorf("sgd: %w", err)
	}
	defer func() {
		if err := grant.Revoke(context.WithoutCancel(ctx)); err != nil {
			cfg.Logger.Warn("sgd: delete the job's Redis user", "err", err)
		}
	}()
	o = grant.Options
	in := make([]workerIn, cfg.Workers)
	var deadline time.Time
	if cfg.Duration > 0 {
		deadline = time.Now().Add(cfg.Duration)
	}
	for w := range in {
		in[w] = workerIn{
			PS:    conn{URL: o.URL(), BlockSize: m.BlockSize()},
			Model: cfg.Model, Dim: data.dim, K: k, Loss: cfg.Loss.Name(),
			Store: st.URL(), Format: data.format, Epochs: cfg.Epochs, Deadline: deadline,
			Batch: cfg.BatchSize, LR: cfg.LR, L2: cfg.L2, Seed: cfg.Seed, Worker: w, LocalSteps: cfg.LocalSteps,
		}
	}
	for i, s := range data.shards {
		in[i%cfg.Workers].Shards = append(in[i%cfg.Workers].Shards, s)
	}
	run := &Result{Name: cfg.Model, Loss: cfg.Loss, Dim: data.dim, client: client}
	start := time.Now()
	mopts := append(slices.Clone(cfg.MapOptions), wren.WithChunkSize(1), wren.WithSpeculation(-1))
	job, err := workerTask.Map(ctx, ex, in, mopts...)
	if err != nil {
		return nil, err
	}
	// Evaluate and checkpoint while the workers train.
	var mu sync.Mutex
	stop := make(chan struct{})
	var bg sync.WaitGroup
	bg.Go(func() {
		evalT := time.NewTicker(cfg.EvalEvery)
		defer evalT.Stop()
		var ckC <-chan time.Time
		if cfg.Checkpoint != "" && cfg.CheckpointEvery > 0 {
			t := time.NewTicker(cfg.CheckpointEvery)
			defer t.Stop()
			ckC = t.C
		}
		for {
			select {
			case <-stop:
				return
			case <-evalT.C:
				if cfg.Eval == nil {
					continue
				}
				p, err := run.evaluate(ctx, m, cfg.Eval, time.Since(start))
				if err != nil {
					cfg.Logger.Warn("sgd: evaluation", "err", err)
					continue
				}
				mu.Lock()
				run.Curve = append(run.Curve, p)
				mu.Unlock()
				cfg.Logger.Info("sgd: evaluation", "t", p.Time.Round(time.Millisecond), "version", p.Version, "loss", p.Loss, "accuracy", p.Accuracy)
			case <-ckC:
				if err := m.Checkpoint(ctx, st, cfg.Checkpoint); err != nil {
					cfg.Logger.Warn("sgd: checkpoint", "err", err)
				}
			}
		}
	})
	results, err := job.Results(ctx)
	close(stop)
	bg.Wait()
	run.Wall = time.Since(start)
	if err != nil {
		return run, fmt.Errorf("sgd: training %s: %w", cfg.Model, err)
	}
	for _, r := range results {
		run.Examples += r.Examples
	}
	run.Workers = results
	run.ExamplesPerSecond = float64(run.Examples) / run.Wall.Seconds()
	if cfg.Checkpoint != "" {
		if err := m.Checkpoint(ctx, st, cfg.Checkpoint); err != nil {
			return run, err
		}
	}
	if cfg.Eval != nil {
		p, err := run.evaluate(ctx, m, cfg.Eval, run.Wall)
		if err != nil {
			return run, err
		}
		run.Curve = append(run.Curve, p)
		run.Final = p
	}
	return run, nil
}

// Resume restores the model from a checkpoint (replacing the one on the
// server) and trains it further with cfg.
func Resume(ctx context.Context, ex *wren.Executor, client *ps.Client, checkpoint string, cfg Options) (*Result, error) {
	if cfg.Model == "" {
		return nil, errors.New("sgd: Options.Model is required")
	}
	if err := client.Delete(ctx, cfg.Model); err != nil {
		return nil, err
	}
	if _, err := client.Restore(ctx, ex.Store(), checkpoint, cfg.Model); err != nil {
		return nil, fmt.Errorf("sgd: resume from %s: %w", checkpoint, err)
	}
	return Train(ctx, ex, client, cfg)
}

// TrainLocal is the sequential baseline: the same losses, data and
// schedule, one plain Go loop over every shard, the model in memory.
func TrainLocal(ctx context.Context, st blob.Store, cfg Options) (*Result, error) {
	if err := cfg.defaults(nil); err != nil {
		return nil, err
	}
	data, err := findData(ctx, st, cfg.Data, cfg.Features)
	if err != nil {
		return nil, err
	}
	k := cfg.Loss.Outputs()
	p := &memParams{w: make([]float64, (data.dim+1)*k)}
	if cfg.Initial != nil {
		if len(cfg.Initial) != len(p.w) {
			return nil, fmt.Errorf("%w: an initial model of %d values, want %d", ErrModelSize, len(cfg.Initial), len(p.w))
		}
		copy(p.w, cfg.Initial)
	}
	in := workerIn{Model: cfg.Model, Dim: data.dim, K: k, Loss: cfg.Loss.Name(), Format: data.format, Shards: data.shards,
		Epochs: cfg.Epochs, Batch: cfg.BatchSize, LR: cfg.LR, L2: cfg.L2, Seed: cfg.Seed, LocalSteps: cfg.LocalSteps}
	if cfg.Duration > 0 {
		in.Deadline = time.Now().Add(cfg.Duration)
	}
	start := time.Now()
	ws, err := train(ctx, st, p, in, cfg.Loss, false)
	if err != nil {
		return nil, err
	}
	run := &Result{Name: cfg.Model, Loss: cfg.Loss, Dim: data.dim, params: p.w, Examples: ws.Examples, Workers: []WorkerStats{ws}}
	run.Wall = time.Since(start)
	run.ExamplesPerSecond = float64(run.Examples) / run.Wall.Seconds()
	if cfg.Eval != nil {
		pt, err := evaluate(ctx, p.w, cfg.Loss, data.dim, cfg.Eval)
		if err != nil {
			return nil, err
		}
		pt.Time = run.Wall
		run.Final = pt
		run.Curve = []Point{pt}
	}
	return run, nil
}

func (r *Result) evaluate(ctx context.Context, m *ps.Model, ds *linear.Dataset, t time.Duration) (Point, error) {
	v, err := m.Version(ctx)
	if err != nil {
		return Point{}, err
	}
	w32, err := m.Pull(ctx, 0, m.Len())
	if err != nil {
		return Point{}, err
	}
	w := make([]float64, len(w32))
	for i, x := range w32 {
		w[i] = float64(x)
	}
	p, err := evaluate(ctx, w, r.Loss, r.Dim, ds)
	p.Time, p.Version = t, v
	return p, err
}

// EvaluateParams returns the mean loss and the accuracy on ds of model
// values laid out as Run.Params returns them ((features+1) x outputs), for
// example a checkpoint that needs no more training.
func EvaluateParams(ctx context.Context, loss Loss, params []float64, ds *linear.Dataset) (Point, error) {
	k := loss.Outputs()
	if k <= 0 || len(params)%k != 0 || len(params)/k < 1 {
		return Point{}, fmt.Errorf("%w: %d model values for %d outputs", ErrModelSize, len(params), k)
	}
	return evaluate(ctx, params, loss, len(params)/k-1, ds)
}

// evaluate computes the mean loss and the accuracy of the model w on ds.
func evaluate(ctx context.Context, w []float64, loss Loss, dim int, ds *linear.Dataset) (Point, error) {
	if ds.Dim != dim {
		return Point{}, fmt.Errorf("%w: the evaluation set has %d features, the model %d", ErrBadData, ds.Dim, dim)
	}
	k := loss.Outputs()
	s, g := make([]float64, k), make([]float64, k)
	bias := dim * k
	var total float64
	var right, n int
	err := ds.Each(ctx, func(i int, r linear.Row) error {
		copy(s, w[bias:bias+k])
		if r.Dense != nil {
			for j, x := range r.Dense {
				if x != 0 {
					for c := range s {
						s[c] += x * w[j*k+c]
					}
				}
			}
		} else {
			for q, j := range r.Idx {
				for c := range s {
					s[c] += r.Val[q] * w[int(j)*k+c]
				}
			}
		}
		y := float64(r.Label)
		total += loss.Grad(g, s, y)
		pred := loss.Predict(s)
		if _, sq := loss.(Squared); sq {
			pred = math.Round(pred)
		}
		if pred == y || (loss.ClassCount() == 2 && (pred > 0) == (y > 0)) {
			right++
		}
		n++
		return nil
	})
	if err != nil {
		return Point{}, err
	}
	return Point{Loss: total / float64(max(n, 1)), Accuracy: float64(right) / float64(max(n, 1))}, nil
}

// Model returns the trained model as a linear.Model (Predict, Evaluate,
// Save): binary losses become two classes whose score difference is the
// model's score.
func (r *Result) Model(ctx context.Context) (*linear.Model, error) {
	w := r.params
	if w == nil {
		m, err := r.client.Model(ctx, r.Name)
		if err != nil {
			return nil, err
		}
		w32, err := m.Pull(ctx, 0, m.Len())
		if err != nil {
			return nil, err
		}
		w = make([]float64, len(w32))
		for i, x := range w32 {
			w[i] = float64(x)
		}
	}
	k := r.Loss.Outputs()
	classes := max(k, 2)
	lm := &linear.Model{Kind: "sgd-" + r.Loss.Name(), Dim: r.Dim, Classes: classes, W: make([]float64, r.Dim*classes), B: make([]float64, classes)}
	for j := range r.Dim {
		if k == 1 {
			lm.W[j*2+1] = w[j]
		} else {
			copy(lm.W[j*classes:(j+1)*classes], w[j*k:(j+1)*k])
		}
	}
	if k == 1 {
		lm.B[1] = w[r.Dim]
		if _, sq := r.Loss.(Squared); sq {
			lm.B[1] -= 0.5 // a 0/1 regression's threshold
		}
	} else {
		copy(lm.B, w[r.Dim*k:])
	}
	return lm, nil
}

// Params returns TrainLocal's model values ((Features+1) x outputs: W by
// feature, then the intercepts); nil for a run on the parameter server.
func (r *Result) Params() []float64 { return r.params }

// String summarises the run.
func (r *Result) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s, %d features): %d examples in %v (%.0f examples/s) on %d workers", r.Name, r.Loss.Name(), r.Dim, r.Examples, r.Wall.Round(time.Millisecond), r.ExamplesPerSecond, len(r.Workers))
	if r.Final != (Point{}) {
		fmt.Fprintf(&b, "; loss %.4f, accuracy %.4f", r.Final.Loss, r.Final.Accuracy)
	}
	return b.String()
}
