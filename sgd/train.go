package sgd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
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
	"golang.org/x/sync/errgroup"
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
	// Labels are the label values of libsvm data in class order (class c
	// is Labels[c], sorted; a binary loss's positive class is the second);
	// nil means the distinct values the shards hold, found by reading their
	// labels once before training. Dense shards hold class indices and take
	// none; nor does the squared loss, which trains on the values.
	Labels []float64
	// Slice is the longest a worker's call trains before it returns its
	// position and the driver continues it in another call at once: 0 means
	// the executor's call limit (the map's timeout, or the backend's own:
	// AWS Lambda's function timeout) less a tenth (at least 2 s), and no
	// slices when nothing limits calls; negative: no slices.
	Slice time.Duration
	// InitialStep is the learning rate's step each worker starts at: a run
	// that continues another (TrainLocal with Initial) gives its Steps.
	// Resume takes it from the checkpoint.
	InitialStep int64
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

	ready bool // defaults applied
	mf    bool // a factorization (TrainFactors): no loss to check
}

// DefaultL2 is the penalty when Options.L2 is 0.
const DefaultL2 = 1e-5

// Point is one evaluation during training.
type Point struct {
	Time     time.Duration `json:"t"`
	Version  int64         `json:"version"` // pushes applied so far
	Loss     float64       `json:"loss"`    // mean loss on Eval
	Accuracy float64       `json:"accuracy"`
	RMSE     float64       `json:"rmse,omitempty"` // a factorization's root mean squared error on Eval
}

// Result is a finished training run (Train, TrainLocal, Resume).
type Result struct {
	Name              string // the model's name on the parameter server
	Loss              Loss
	Dim               int
	Curve             []Point // evaluations while training, and the final one
	Final             Point
	Examples          int64 // examples trained (on the server: whose updates it holds)
	Wall              time.Duration
	ExamplesPerSecond float64
	Workers           []WorkerStats
	// Billing is what the backend charged for the workers' calls (AWS
	// Lambda), nil for local backends.
	Billing *worker.Billing
	// Steps is the learning rate's step the workers reached (the largest):
	// the InitialStep of a run that continues this one.
	Steps int64
	// Run is the run's ID; Positions are where its workers stopped (each
	// Position.Examples counts the examples whose updates the server holds).
	Run       string
	Positions []Position
	client    *ps.Client
	params    []float64 // TrainLocal's model
	labels    []float64 // the label values of libsvm classes
	mf        *mfSpec   // a factorization's shape
	classes   []string
}

// ErrModelSize reports a model already on the server with another size.
var ErrModelSize = errors.New("sgd: a model of another size is on the server")

func (c *Options) defaults(ex *wren.Executor) error {
	switch {
	case c.ready:
		return nil
	case c.Model == "":
		return errors.New("sgd: Options.Model is required")
	case c.Loss == nil && !c.mf:
		return errors.New("sgd: Options.Loss is required")
	case c.InitialStep < 0:
		return fmt.Errorf("sgd: InitialStep %d", c.InitialStep)
	}
	if !c.mf {
		if err := checkLoss(c.Loss); err != nil {
			return err
		}
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
	if err := c.LR.validate(); err != nil {
		return err
	}
	if c.LR.Eta0*c.L2 >= 1 {
		return fmt.Errorf("%w: the learning rate %v times L2 %v is at least 1: a step would take every weight to zero or past it", ErrDiverged, c.LR.Eta0, c.L2)
	}
	c.ready = true
	return nil
}

// Train runs HOGWILD! SGD: Workers wren calls, each streaming its shards
// from the executor's store and pulling, computing and pushing against the
// model on the parameter server without locks, while the driver evaluates
// and checkpoints the model. A worker's call trains for at most a slice
// (Options.Slice) and returns its position, and the driver continues it in
// another call at once, so a run outlives the backend's call limit; each
// push notes the worker's position on the server, so a retried call
// continues after what the server holds (at most one push window is
// trained twice when a worker dies after pushing and before noting).
func Train(ctx context.Context, ex *wren.Executor, client *ps.Client, cfg Options) (*Result, error) {
	return train1(ctx, ex, client, cfg, nil)
}

// train1 is Train, from the positions of a checkpoint when start is set.
func train1(ctx context.Context, ex *wren.Executor, client *ps.Client, cfg Options, start *checkpointState) (*Result, error) {
	if err := cfg.defaults(ex); err != nil {
		return nil, err
	}
	o := client.Options()
	if !worker.WorkersOnThisMachine(ex.Backend()) {
		for _, a := range o.Addrs {
			if host, _, err := net.SplitHostPort(a); err == nil && (host == "localhost" || net.ParseIP(host).IsLoopback()) {
				return nil, fmt.Errorf("sgd: the parameter server %s is on this machine's loopback; the %s backend's workers run elsewhere and cannot reach it: give ps.Open the address of a server they can reach", a, ex.Backend().Name())
			}
		}
	}
	st := ex.Store()
	data, err := findData(ctx, st, cfg.Data, cfg.Features)
	if err != nil {
		return nil, err
	}
	if err := data.decideLabels(ctx, st, &cfg); err != nil {
		return nil, err
	}
	if len(data.shards) < cfg.Workers {
		return nil, fmt.Errorf("%w: %d shards for %d workers: write more shards (WriteShards) or use fewer workers", ErrBadData, len(data.shards), cfg.Workers)
	}
	k := cfg.Loss.Outputs()
	n := (data.dim + 1) * k
	kind := modelKind{Loss: cfg.Loss.Name(), Dim: data.dim, Outputs: k, Labels: data.labels}
	m, err := client.Model(ctx, cfg.Model)
	switch {
	case errors.Is(err, ps.ErrNoModel):
		if m, err = client.Create(ctx, cfg.Model, n, ps.Zeros); err != nil {
			return nil, err
		}
		kb, _ := json.Marshal(kind)
		if err := m.SetNote(ctx, kindNote, kb); err != nil { // over any note of a model deleted before
			return nil, err
		}
	case err != nil:
		return nil, err
	case m.Len() != n:
		return nil, fmt.Errorf("%w: %q holds %d values; %d features x %d outputs need %d", ErrModelSize, cfg.Model, m.Len(), data.dim, k, n)
	default:
		cfg.Logger.Info("sgd: training the model further", "model", cfg.Model)
	}
	if err := checkKind(ctx, m, kind); err != nil {
		return nil, err
	}
	slice, err := cfg.slice(ctx, ex)
	if err != nil {
		return nil, err
	}
	// Where each worker starts: a checkpoint's positions, or its shards' start.
	positions := make([]Position, cfg.Workers)
	runID := newRunID()
	if start != nil {
		runID = start.Run
	}
	for w := range positions {
		positions[w] = Position{Run: runID, Data: data.id, Worker: w, Step: cfg.InitialStep}
		if start != nil {
			positions[w] = start.Positions[w]
		}
	}
	var deadline time.Time
	if cfg.Duration > 0 {
		deadline = time.Now().Add(cfg.Duration)
	}
	in := make([]workerIn, cfg.Workers)
	for w := range in {
		in[w] = workerIn{
			PS:    conn{BlockSize: m.BlockSize()},
			Model: cfg.Model, Dim: data.dim, K: k, Loss: cfg.Loss.Name(), Labels: data.labels,
			Store: st.URL(), Format: data.format, Epochs: cfg.Epochs, Deadline: deadline, Slice: slice,
			Batch: cfg.BatchSize, LR: cfg.LR, L2: cfg.L2, Seed: cfg.Seed, Worker: w, LocalSteps: cfg.LocalSteps,
			From: positions[w],
		}
	}
	for i, s := range data.shards {
		in[i%cfg.Workers].Shards = append(in[i%cfg.Workers].Shards, s)
		in[i%cfg.Workers].Sizes = append(in[i%cfg.Workers].Sizes, data.sizes[i])
	}
	run := &Result{Name: cfg.Model, Loss: cfg.Loss, Dim: data.dim, client: client, Run: runID, labels: data.labels, classes: data.classes}
	state := &checkpointState{Run: runID, Data: data.id, DataPrefix: cfg.Data, Loss: cfg.Loss.Name(), Dim: data.dim, K: k, Labels: data.labels,
		Batch: cfg.BatchSize, Seed: cfg.Seed, Workers: cfg.Workers, Positions: positions}
	var eval func(w []float64) (Point, error)
	if cfg.Eval != nil {
		eval = func(w []float64) (Point, error) { return evaluate(ctx, w, cfg.Loss, data.dim, cfg.Eval, data.labels) }
	}
	return runHogwild(ctx, ex, client, &cfg, m, in, state, run, eval, slice)
}

// runHogwild runs the workers' calls (each worker's slices one after the
// other, its continuation launched at once), evaluating and checkpointing
// the model on the driver meanwhile: the part of a run every model shares.
func runHogwild(ctx context.Context, ex *wren.Executor, client *ps.Client, cfgp *Options, m *ps.Model, in []workerIn, state *checkpointState,
	run *Result, eval func(w []float64) (Point, error), slice time.Duration) (_ *Result, rerr error) {
	cfg := *cfgp
	st := ex.Store()
	runID := state.Run
	// The run's progress in the store (RunRecord), for wren ui.
	rec := RunRecord{Run: runID, Model: cfg.Model, Kind: "linear", Workers: cfg.Workers, Epochs: cfg.Epochs, State: "running", Started: time.Now()}
	if run.mf != nil {
		rec.Kind = "factorization"
	} else if cfg.Loss != nil {
		rec.Loss = cfg.Loss.Name()
	}
	var recMu sync.Mutex // rec's writes, in order
	putRecord := func(ctx context.Context, r RunRecord) {
		recMu.Lock()
		defer recMu.Unlock()
		if err := writeRecord(ctx, st, r); err != nil {
			cfg.Logger.Warn("sgd: record the run's progress", "err", err)
		}
	}
	putRecord(ctx, rec)
	defer func() {
		r := rec
		r.State, r.Curve, r.WorkerStats = "done", run.Curve, slices.Clone(run.Workers)
		r.Examples, r.ExamplesPerSecond = run.Examples, run.ExamplesPerSecond
		if rerr != nil {
			r.State, r.Error = "failed", rerr.Error()
		}
		putRecord(context.WithoutCancel(ctx), r)
	}()
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
	for w := range in {
		in[w].PS.URL = grant.Options.URL()
	}
	defer func() {
		names := make([]string, cfg.Workers)
		for w := range names {
			names[w] = noteName(runID, w)
		}
		if err := m.DeleteNotes(context.WithoutCancel(ctx), names...); err != nil {
			cfg.Logger.Warn("sgd: delete the workers' position notes", "err", err)
		}
	}()
	// The workers' calls: one an invocation, never speculative, whatever
	// the executor's options (a straggling worker is HOGWILD!'s normal
	// case, and a second copy would push its updates twice); no progress
	// bar per slice unless asked.
	mopts := slices.Concat([]wren.MapOption{wren.WithProgress(wren.ProgressOff)}, cfg.MapOptions,
		[]wren.MapOption{wren.WithChunkSize(1), wren.WithSpeculation(-1)})
	var posMu sync.Mutex
	startT := time.Now()
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
				if eval == nil {
					continue
				}
				p, err := evaluateServer(ctx, m, eval, time.Since(startT))
				if err != nil {
					cfg.Logger.Warn("sgd: evaluation", "err", err)
					continue
				}
				mu.Lock()
				run.Curve = append(run.Curve, p)
				r := rec
				r.Curve = slices.Clone(run.Curve)
				mu.Unlock()
				posMu.Lock()
				r.WorkerStats = slices.Clone(run.Workers)
				posMu.Unlock()
				for _, ws := range r.WorkerStats {
					r.Examples += ws.Examples
				}
				r.ExamplesPerSecond = float64(r.Examples) / time.Since(startT).Seconds()
				putRecord(ctx, r)
				if run.mf != nil {
					cfg.Logger.Info("sgd: evaluation", "t", p.Time.Round(time.Millisecond), "version", p.Version, "rmse", p.RMSE)
				} else {
					cfg.Logger.Info("sgd: evaluation", "t", p.Time.Round(time.Millisecond), "version", p.Version, "loss", p.Loss, "accuracy", p.Accuracy)
				}
			case <-ckC:
				posMu.Lock()
				snap := state.clone()
				posMu.Unlock()
				if err := checkpoint(ctx, st, m, cfg.Checkpoint, snap, true); err != nil {
					cfg.Logger.Warn("sgd: checkpoint", "err", err)
				}
			}
		}
	})
	posMu.Lock() // the evaluation ticker reads run.Workers
	run.Workers = make([]WorkerStats, cfg.Workers)
	for w := range run.Workers {
		run.Workers[w].Worker = w
	}
	posMu.Unlock()
	g, gctx := errgroup.WithContext(ctx)
	for w := range in {
		g.Go(func() error {
			call := in[w]
			ws := &run.Workers[w]
			lastNoted, lostInARow := int64(-1), 0
			for {
				f, err := workerTask.Call(gctx, ex, call, mopts...)
				if err != nil {
					return err
				}
				out, err := f.Result(gctx)
				bill := f.Job().Summary().Billing
				f.Job().Clean(context.WithoutCancel(gctx))
				if bill != nil {
					posMu.Lock()
					run.Billing = worker.AddBilling(run.Billing, bill)
					posMu.Unlock()
				}
				if err != nil {
					// A call lost with every attempt (its worker processes
					// killed over and over, invocations lost) is continued
					// from the position noted with its last push, as long as
					// the lost calls make progress.
					if errors.Is(err, wren.ErrLost) && gctx.Err() == nil {
						step := notedStep(gctx, m, runID, w)
						if step > lastNoted {
							lastNoted, lostInARow = step, 0
						}
						if lostInARow++; lostInARow <= maxLostInARow {
							cfg.Logger.Warn("sgd: a worker's call was lost; continuing from its noted position", "worker", w, "step", step, "err", err)
							posMu.Lock()
							ws.Lost++
							posMu.Unlock()
							continue
						}
					}
					return fmt.Errorf("worker %d: %w", w, err)
				}
				posMu.Lock()
				ws.add(out.Stats)
				state.Positions[w] = out.End
				posMu.Unlock()
				if out.Done {
					return nil
				}
				if out.End.Step <= call.From.Step {
					return fmt.Errorf("sgd: worker %d made no progress in a slice of %v", w, slice)
				}
				call.From = out.End
			}
		})
	}
	err = g.Wait()
	close(stop)
	bg.Wait()
	run.Wall = time.Since(startT)
	// The examples whose updates the server holds: the calls' own counts
	// miss those of calls that were lost after pushing.
	for w, ws := range run.Workers {
		run.Examples += max(ws.Examples, state.Positions[w].Examples-in[w].From.Examples)
	}
	run.Positions = slices.Clone(state.Positions)
	for _, p := range state.Positions {
		run.Steps = max(run.Steps, p.Step)
	}
	if err != nil {
		return run, fmt.Errorf("sgd: training %s: %w", cfg.Model, err)
	}
	run.ExamplesPerSecond = float64(run.Examples) / run.Wall.Seconds()
	if cfg.Checkpoint != "" {
		if err := checkpoint(ctx, st, m, cfg.Checkpoint, state, false); err != nil {
			return run, err
		}
	}
	if eval != nil {
		p, err := evaluateServer(ctx, m, eval, run.Wall)
		if err != nil {
			return run, err
		}
		run.Curve = append(run.Curve, p)
		run.Final = p
	}
	return run, nil
}

// modelKind is what a model on the server holds, noted by the run that
// created it (or first trained it), so that a model of the same size but
// another kind is not trained as if it were this one.
type modelKind struct {
	Loss    string    `json:"loss"`
	Dim     int       `json:"dim"`
	Outputs int       `json:"outputs"`
	Labels  []float64 `json:"labels,omitempty"`
}

// ErrModelKind reports a model on the server of another loss, width or
// label values than the run's.
var ErrModelKind = errors.New("sgd: the model on the server is of another kind")

const kindNote = "sgd-kind"

func checkKind(ctx context.Context, m *ps.Model, want modelKind) error {
	b, err := m.Note(ctx, kindNote)
	if errors.Is(err, ps.ErrNoNote) {
		wb, _ := json.Marshal(want)
		return m.SetNote(ctx, kindNote, wb)
	}
	if err != nil {
		return err
	}
	var got modelKind
	if err := json.Unmarshal(b, &got); err != nil {
		return fmt.Errorf("%w: %q: its note: %v", ErrModelKind, m.Name(), err)
	}
	if got.Loss != want.Loss || got.Dim != want.Dim || got.Outputs != want.Outputs || !slices.Equal(got.Labels, want.Labels) {
		return fmt.Errorf("%w: %q holds a %s model of %d features x %d outputs (labels %v); this run trains %s on %d features x %d outputs (labels %v)",
			ErrModelKind, m.Name(), got.Loss, got.Dim, got.Outputs, got.Labels, want.Loss, want.Dim, want.Outputs, want.Labels)
	}
	return nil
}

// slice is the longest a worker call trains (0: no limit).
func (c *Options) slice(ctx context.Context, ex *wren.Executor) (time.Duration, error) {
	switch {
	case c.Slice < 0:
		return 0, nil
	case c.Slice > 0:
		return c.Slice, nil
	}
	limit, err := ex.CallLimit(ctx, c.MapOptions...)
	if err != nil || limit <= 0 {
		return 0, err
	}
	return limit - max(limit/10, min(2*time.Second, limit/2)), nil
}

// newRunID names a training run: its workers' position notes and its
// checkpoints' positions carry it.
func newRunID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// checkpointState is what a checkpoint of Train keeps beside the model
// (sgd.json): the run, its data and where each worker was, so that Resume
// continues the run (and its learning rate schedule) where it stopped.
type checkpointState struct {
	Run        string     `json:"run"`
	Data       string     `json:"data"` // the data's fingerprint
	DataPrefix string     `json:"data_prefix"`
	Loss       string     `json:"loss"`
	Dim        int        `json:"dim"`
	K          int        `json:"outputs"`
	Labels     []float64  `json:"labels,omitempty"`
	Batch      int        `json:"batch"`
	Seed       uint64     `json:"seed"`
	Workers    int        `json:"workers"`
	Positions  []Position `json:"positions"`
}

func (s *checkpointState) clone() *checkpointState {
	c := *s
	c.Positions = slices.Clone(s.Positions)
	return &c
}

// stateName is the object of a checkpoint's state, beside ps's.
const stateName = "/sgd.json"

// checkpoint writes the model and the run's state under prefix; while the
// run trains, each worker's position is the one noted with its last push
// (fresher than the driver's, which moves a slice at a time).
func checkpoint(ctx context.Context, st blob.Store, m *ps.Model, prefix string, state *checkpointState, live bool) error {
	if live {
		for w := range state.Positions {
			b, err := m.Note(ctx, noteName(state.Run, w))
			var p Position
			if err == nil && json.Unmarshal(b, &p) == nil && p.Run == state.Run && p.Step > state.Positions[w].Step {
				state.Positions[w] = p
			}
		}
	}
	if err := m.Checkpoint(ctx, st, prefix); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(state, "", "  ")
	if err := blob.PutBytes(ctx, st, prefix+stateName, b, blob.PutOptions{}); err != nil {
		return fmt.Errorf("sgd: checkpoint %s: %w", prefix, err)
	}
	return nil
}

// Resume restores the model from a checkpoint (replacing the one on the
// server) and continues its run: the workers start where the checkpoint
// says they were, with their learning-rate steps, and train to cfg.Epochs
// epochs in all (a run of the same data, workers, batch size and seed;
// with others, the workers start their shards again and only the schedule
// continues). A checkpoint of other data is refused, naming both; one
// written before checkpoints kept positions starts the schedule at 0, and
// says so.
func Resume(ctx context.Context, ex *wren.Executor, client *ps.Client, checkpoint string, cfg Options) (*Result, error) {
	if cfg.Model == "" {
		return nil, errors.New("sgd: Options.Model is required")
	}
	if err := cfg.defaults(ex); err != nil {
		return nil, err
	}
	st := ex.Store()
	var state *checkpointState
	b, err := blob.ReadAll(ctx, st, checkpoint+stateName)
	switch {
	case errors.Is(err, blob.ErrNotFound):
		cfg.Logger.Warn("sgd: the checkpoint keeps no positions or step counter (an older checkpoint): the learning rate schedule starts at 0", "checkpoint", checkpoint)
	case err != nil:
		return nil, fmt.Errorf("sgd: resume from %s: %w", checkpoint, err)
	default:
		state = new(checkpointState)
		if err := json.Unmarshal(b, state); err != nil {
			return nil, fmt.Errorf("%w: resume from %s: %s: %v", ErrPosition, checkpoint, stateName[1:], err)
		}
		data, err := findData(ctx, st, cfg.Data, cfg.Features)
		if err != nil {
			return nil, err
		}
		switch {
		case state.Data != data.id:
			return nil, fmt.Errorf("%w: checkpoint %s was trained on %q (data %s); this run's data is %q (data %s)",
				ErrPosition, checkpoint, state.DataPrefix, state.Data, cfg.Data, data.id)
		case state.Loss != cfg.Loss.Name():
			return nil, fmt.Errorf("%w: checkpoint %s was trained with the %s loss, this run's is %s", ErrPosition, checkpoint, state.Loss, cfg.Loss.Name())
		case len(state.Positions) != state.Workers:
			return nil, fmt.Errorf("%w: checkpoint %s: %d positions for %d workers", ErrPosition, checkpoint, len(state.Positions), state.Workers)
		}
		for w, p := range state.Positions {
			if p.Run != state.Run || p.Data != state.Data || p.Worker != w {
				return nil, fmt.Errorf("%w: checkpoint %s: position %d is of run %q, data %s, worker %d; the checkpoint's run is %q, data %s",
					ErrPosition, checkpoint, w, p.Run, p.Data, p.Worker, state.Run, state.Data)
			}
			cfg.InitialStep = max(cfg.InitialStep, p.Step)
		}
		if cfg.Labels == nil {
			cfg.Labels = state.Labels
		}
		if state.Workers != cfg.Workers || state.Batch != cfg.BatchSize || state.Seed != cfg.Seed {
			cfg.Logger.Info("sgd: resuming with other workers, batch size or seed: the shards start again; the learning rate continues",
				"checkpoint", checkpoint, "step", cfg.InitialStep)
			state = nil
		}
	}
	if err := client.Delete(ctx, cfg.Model); err != nil {
		return nil, err
	}
	m, err := client.Restore(ctx, st, checkpoint, cfg.Model)
	if err != nil {
		return nil, fmt.Errorf("sgd: resume from %s: %w", checkpoint, err)
	}
	// The model is the checkpoint's: positions noted by the run after it
	// (a driver that died) name updates the restore took back.
	if state != nil {
		names := make([]string, state.Workers)
		for w := range names {
			names[w] = noteName(state.Run, w)
		}
		if err := m.DeleteNotes(ctx, names...); err != nil {
			return nil, err
		}
	}
	return train1(ctx, ex, client, cfg, state)
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
	if err := data.decideLabels(ctx, st, &cfg); err != nil {
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
	in := workerIn{Dim: data.dim, K: k, Loss: cfg.Loss.Name(), Labels: data.labels, Format: data.format, Shards: data.shards, Sizes: data.sizes}
	run, err := runLocal(ctx, st, &cfg, in, data.id, p.w)
	if err != nil {
		return nil, err
	}
	run.Dim, run.labels, run.classes = data.dim, data.labels, data.classes
	if cfg.Eval != nil {
		pt, err := evaluate(ctx, p.w, cfg.Loss, data.dim, cfg.Eval, data.labels)
		if err != nil {
			return nil, err
		}
		pt.Time = run.Wall
		run.Final = pt
		run.Curve = []Point{pt}
	}
	return run, nil
}

// runLocal trains in's shards sequentially on the model w in memory, with
// cfg's schedule: the baselines' common part.
func runLocal(ctx context.Context, st blob.Store, cfg *Options, in workerIn, dataID string, w []float64) (*Result, error) {
	runID := newRunID()
	in.Model, in.Epochs, in.Batch, in.LR, in.L2, in.Seed, in.LocalSteps = cfg.Model, cfg.Epochs, cfg.BatchSize, cfg.LR, cfg.L2, cfg.Seed, cfg.LocalSteps
	in.From = Position{Run: runID, Data: dataID, Step: cfg.InitialStep}
	if cfg.Duration > 0 {
		in.Deadline = time.Now().Add(cfg.Duration)
	}
	start := time.Now()
	out, err := train(ctx, st, &memParams{w: w}, in, false)
	if err != nil {
		return nil, err
	}
	run := &Result{Name: cfg.Model, Loss: cfg.Loss, params: w, Examples: out.Stats.Examples, Workers: []WorkerStats{out.Stats},
		Steps: out.End.Step, Run: runID, Positions: []Position{out.End}, Wall: time.Since(start)}
	run.ExamplesPerSecond = float64(run.Examples) / run.Wall.Seconds()
	return run, nil
}

// maxLostInARow is how many lost calls of a worker in a row, none of them
// having pushed, end a run.
const maxLostInARow = 3

// notedStep is the step of the position a worker noted with its last
// push, -1 when there is none.
func notedStep(ctx context.Context, m *ps.Model, run string, worker int) int64 {
	b, err := m.Note(ctx, noteName(run, worker))
	var p Position
	if err != nil || json.Unmarshal(b, &p) != nil {
		return -1
	}
	return p.Step
}

// evaluateServer evaluates the model on the server at time t of the run.
func evaluateServer(ctx context.Context, m *ps.Model, eval func(w []float64) (Point, error), t time.Duration) (Point, error) {
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
	p, err := eval(w)
	p.Time, p.Version = t, v
	return p, err
}

// EvaluateParams returns the mean loss and the accuracy on ds of model
// values laid out as Run.Params returns them ((features+1) x outputs), for
// example a checkpoint that needs no more training. labels are the label
// values of the model's classes, as Options.Labels (nil: ds's labels are
// the model's classes).
func EvaluateParams(ctx context.Context, loss Loss, params []float64, ds *linear.Dataset, labels ...float64) (Point, error) {
	k := loss.Outputs()
	if k <= 0 || len(params)%k != 0 || len(params)/k < 1 {
		return Point{}, fmt.Errorf("%w: %d model values for %d outputs", ErrModelSize, len(params), k)
	}
	if len(labels) == 0 {
		labels = nil
	}
	return evaluate(ctx, params, loss, len(params)/k-1, ds, labels)
}

// target is the label the loss takes for a row of ds: for classification
// the model's class (a libsvm value mapped by labels, the model's label
// values; a class index as it is), for regression the value.
func target(loss Loss, labels []float64, ds *linear.Dataset, r linear.Row) (float64, error) {
	v := float64(r.Label)
	if ds.LabelValues != nil {
		v = ds.LabelValues[r.Label]
	}
	if loss.ClassCount() == 0 || ds.LabelValues == nil {
		return v, nil
	}
	if labels == nil {
		if v != math.Trunc(v) || v < 0 || v >= float64(loss.ClassCount()) {
			return 0, fmt.Errorf("%w: the evaluation set has label %v; the model's classes are 0 to %d", ErrBadData, v, loss.ClassCount()-1)
		}
		return v, nil
	}
	c, ok := slices.BinarySearch(labels, v)
	if !ok {
		return 0, fmt.Errorf("%w: the evaluation set has label %v, not among the model's label values %v", ErrBadData, v, labels)
	}
	return float64(c), nil
}

// evaluate computes the mean loss and the accuracy of the model w on ds.
func evaluate(ctx context.Context, w []float64, loss Loss, dim int, ds *linear.Dataset, labels []float64) (Point, error) {
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
		y, err := target(loss, labels, ds, r)
		if err != nil {
			return err
		}
		total += loss.Grad(g, s, y)
		pred := loss.Predict(s)
		if _, sq := loss.(Squared); sq {
			pred = math.Round(pred)
		}
		if pred == y {
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
	if r.mf != nil {
		return nil, fmt.Errorf("sgd: %s is a matrix factorization, not a linear model", r.Name)
	}
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
	lm := &linear.Model{Kind: "sgd-" + r.Loss.Name(), Dim: r.Dim, Classes: classes, ClassNames: r.classes, W: make([]float64, r.Dim*classes), B: make([]float64, classes)}
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
	what := fmt.Sprintf("%s, %d features", r.Loss.Name(), r.Dim)
	if r.mf != nil {
		what = fmt.Sprintf("rank %d factors of %d users and %d items", r.mf.Rank, r.mf.Users, r.mf.Items)
	}
	fmt.Fprintf(&b, "%s (%s): %d examples in %v (%.0f examples/s) on %d workers", r.Name, what, r.Examples, r.Wall.Round(time.Millisecond), r.ExamplesPerSecond, len(r.Workers))
	switch {
	case r.mf != nil && r.Final != (Point{}):
		fmt.Fprintf(&b, "; RMSE %.4f", r.Final.RMSE)
	case r.Final != (Point{}):
		fmt.Fprintf(&b, "; loss %.4f, accuracy %.4f", r.Final.Loss, r.Final.Accuracy)
	}
	if r.Billing != nil {
		fmt.Fprintf(&b, "; billed %d invocations, %.1f GB-s, $%.6f", r.Billing.Invocations, r.Billing.GBSeconds, r.Billing.USD)
	}
	return b.String()
}
