package sgd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/ps"
)

// FactorOptions describe a matrix factorization run (TrainFactors,
// TrainFactorsLocal): rating(u, i) ≈ mean + b_u + b_i + p_u·q_i, trained by
// SGD on half the squared error plus (L2/2)|θ|² per example. Zero values take
// the documented defaults.
type FactorOptions struct {
	// Model names the model on the parameter server (required): a row of
	// Rank factors and a bias per user, then per item.
	Model string
	// Data is the prefix WriteRatings wrote the training ratings under.
	Data string
	// Rank is the number of factors; 0 means 10.
	Rank int
	// Init is the standard deviation of the initial factors (biases start
	// at 0); 0 means 0.1.
	Init float64
	// Workers, Epochs, BatchSize, LocalSteps, Slice, Seed, EvalEvery,
	// Checkpoint, CheckpointEvery, MapOptions and Logger are as in Options
	// (BatchSize defaults to 100, LocalSteps to 8).
	Workers, Epochs, BatchSize, LocalSteps int
	Slice                                  time.Duration
	Seed                                   uint64
	EvalEvery                              time.Duration
	Checkpoint                             string
	CheckpointEvery                        time.Duration
	MapOptions                             []wren.MapOption
	Logger                                 *slog.Logger
	// LR is the learning rate schedule; zero means Constant(0.05) (a
	// minibatch's gradient is its mean).
	LR Schedule
	// L2 is the penalty; 0 means 1e-4, negative none.
	L2 float64
	// Eval, when set, are held-out ratings whose RMSE is reported while
	// training and at the end. Their users and items must be the training
	// data's (Ratings.Split keeps them); one the model does not know is
	// refused with ErrUnknownID, naming it.
	Eval *Ratings
}

func (f FactorOptions) options() Options {
	o := Options{Model: f.Model, Data: f.Data, Workers: f.Workers, Epochs: f.Epochs, BatchSize: f.BatchSize, LocalSteps: f.LocalSteps,
		LR: f.LR, L2: f.L2, Slice: f.Slice, Seed: f.Seed, EvalEvery: f.EvalEvery, Checkpoint: f.Checkpoint, CheckpointEvery: f.CheckpointEvery,
		MapOptions: f.MapOptions, Logger: f.Logger, Loss: Squared{}, mf: true}
	if o.LR == (Schedule{}) {
		o.LR = Constant(0.05)
	}
	if o.L2 == 0 {
		o.L2 = 1e-4
	}
	return o
}

// factorSetup is what both factorization entry points read first.
type factorSetup struct {
	cfg        Options
	spec       mfSpec
	meta       *ratingsMeta
	id         string
	evalU      []int32
	evalI      []int32
	init       float64
	evalRating *Ratings
}

func setupFactors(ctx context.Context, st blob.Store, f FactorOptions, ex *wren.Executor) (*factorSetup, error) {
	cfg := f.options()
	if err := cfg.defaults(ex); err != nil {
		return nil, err
	}
	switch {
	case f.Rank < 0 || f.Rank > maxRank:
		return nil, fmt.Errorf("sgd: Rank %d (1..%d; 0 means 10)", f.Rank, maxRank)
	case f.Init < 0 || math.IsNaN(f.Init) || math.IsInf(f.Init, 0):
		return nil, fmt.Errorf("sgd: Init %v", f.Init)
	}
	meta, err := readRatingsMeta(ctx, st, f.Data)
	if err != nil {
		return nil, err
	}
	s := &factorSetup{cfg: cfg, meta: meta, init: f.Init, evalRating: f.Eval}
	if s.init == 0 {
		s.init = 0.1
	}
	rank := f.Rank
	if rank == 0 {
		rank = 10
	}
	s.spec = mfSpec{Users: meta.Users, Items: meta.Items, Rank: rank, Mean: meta.Mean}
	if s.spec.size() > 1<<31 {
		return nil, fmt.Errorf("%w: %d users and %d items of rank %d: %d values", ErrModelSize, meta.Users, meta.Items, rank, s.spec.size())
	}
	h := sha256.New()
	fmt.Fprintln(h, "ratings", meta.Users, meta.Items)
	for i, sh := range meta.Shards {
		fmt.Fprintln(h, strings.TrimPrefix(sh, f.Data), meta.Sizes[i])
	}
	s.id = hex.EncodeToString(h.Sum(nil))[:16]
	if f.Eval != nil {
		if s.evalU, s.evalI, err = alignRatings(f.Eval, meta); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// initial draws the starting model: factors from N(0, init²), biases 0.
func (s *factorSetup) initial(dst []float32) {
	r := rand.New(rand.NewPCG(s.cfg.Seed, 0x1a17))
	k := s.spec.rowLen()
	for i := range dst {
		if i%k == s.spec.Rank {
			dst[i] = 0
			continue
		}
		dst[i] = float32(s.init * r.NormFloat64())
	}
}

func (s *factorSetup) eval(w []float64) (Point, error) {
	e := rmse(w, s.spec, s.evalRating, s.evalU, s.evalI)
	return Point{Loss: e * e / 2, RMSE: e}, nil
}

// TrainFactors trains a matrix factorization with HOGWILD! SGD: as Train,
// the workers stream their shards of ratings and pull and push the rows of
// the users and items they rate (one gather and one scatter a window of
// LocalSteps minibatches), in slices of the backend's call limit.
func TrainFactors(ctx context.Context, ex *wren.Executor, client *ps.Client, f FactorOptions) (*Result, error) {
	st := ex.Store()
	s, err := setupFactors(ctx, st, f, ex)
	if err != nil {
		return nil, err
	}
	cfg := s.cfg
	if len(s.meta.Shards) < cfg.Workers {
		return nil, fmt.Errorf("%w: %d shards of ratings for %d workers: write more (WriteRatings) or use fewer workers", ErrBadData, len(s.meta.Shards), cfg.Workers)
	}
	n := s.spec.size()
	kind := modelKind{Loss: fmt.Sprintf("mf-rank-%d", s.spec.Rank), Dim: s.spec.Users, Outputs: s.spec.Items}
	m, err := client.Model(ctx, cfg.Model)
	switch {
	case errors.Is(err, ps.ErrNoModel):
		if m, err = client.Create(ctx, cfg.Model, n, func(dst []float32) error { s.initial(dst); return nil }); err != nil {
			return nil, err
		}
		kb, _ := json.Marshal(kind)
		if err := m.SetNote(ctx, kindNote, kb); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	case m.Len() != n:
		return nil, fmt.Errorf("%w: %q holds %d values; %d users and %d items of rank %d need %d", ErrModelSize, cfg.Model, m.Len(), s.spec.Users, s.spec.Items, s.spec.Rank, n)
	}
	if err := checkKind(ctx, m, kind); err != nil {
		return nil, err
	}
	slice, err := cfg.slice(ctx, ex)
	if err != nil {
		return nil, err
	}
	runID := newRunID()
	positions := make([]Position, cfg.Workers)
	var deadline time.Time
	if cfg.Duration > 0 {
		deadline = time.Now().Add(cfg.Duration)
	}
	spec := s.spec
	in := make([]workerIn, cfg.Workers)
	for w := range in {
		positions[w] = Position{Run: runID, Data: s.id, Worker: w, Step: cfg.InitialStep}
		in[w] = workerIn{PS: conn{BlockSize: m.BlockSize()}, Model: cfg.Model, MF: &spec, Format: "ratings", Store: st.URL(),
			Epochs: cfg.Epochs, Deadline: deadline, Slice: slice, Batch: cfg.BatchSize, LR: cfg.LR, L2: cfg.L2, Seed: cfg.Seed,
			Worker: w, LocalSteps: cfg.LocalSteps, From: positions[w]}
	}
	for i, sh := range s.meta.Shards {
		in[i%cfg.Workers].Shards = append(in[i%cfg.Workers].Shards, sh)
		in[i%cfg.Workers].Sizes = append(in[i%cfg.Workers].Sizes, s.meta.Sizes[i])
	}
	run := &Result{Name: cfg.Model, Loss: Squared{}, client: client, Run: runID, mf: &spec}
	state := &checkpointState{Run: runID, Data: s.id, DataPrefix: cfg.Data, Loss: kind.Loss, Dim: spec.Users, K: spec.Items,
		Batch: cfg.BatchSize, Seed: cfg.Seed, Workers: cfg.Workers, Positions: positions}
	var eval func([]float64) (Point, error)
	if f.Eval != nil {
		eval = s.eval
	}
	return runHogwild(ctx, ex, client, &cfg, m, in, state, run, eval, slice)
}

// TrainFactorsLocal is the sequential baseline of TrainFactors: the same
// model, data, schedule and penalty, one plain Go loop, the model in memory.
func TrainFactorsLocal(ctx context.Context, st blob.Store, f FactorOptions) (*Result, error) {
	s, err := setupFactors(ctx, st, f, nil)
	if err != nil {
		return nil, err
	}
	cfg := s.cfg
	w32 := make([]float32, s.spec.size())
	s.initial(w32)
	w := make([]float64, len(w32))
	for i, x := range w32 {
		w[i] = float64(x)
	}
	spec := s.spec
	in := workerIn{MF: &spec, Format: "ratings", Shards: s.meta.Shards, Sizes: s.meta.Sizes}
	run, err := runLocal(ctx, st, &cfg, in, s.id, w)
	if err != nil {
		return nil, err
	}
	run.mf = &spec
	if f.Eval != nil {
		pt, _ := s.eval(w)
		pt.Time = run.Wall
		run.Final, run.Curve = pt, []Point{pt}
	}
	return run, nil
}
