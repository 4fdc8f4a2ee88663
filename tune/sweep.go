package tune

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/job"
)

// Metrics are what an objective reports; the sweep ranks trials by
// Options.Metric.
type Metrics map[string]float64

// Mode says whether the metric is maximised or minimised.
type Mode int

const (
	// Max ranks the largest metric first.
	Max Mode = iota
	// Min ranks the smallest metric first.
	Min
)

// ASHA configures asynchronous successive halving (Li et al., 2020): every
// trial runs with MinBudget; as soon as a rung has Reduction finished trials,
// its best 1/Reduction are promoted to the next rung (budget x Reduction, up
// to MaxBudget), continuing from their checkpoints.
//
// Sweep checks the fields before anything runs: budgets of at least 1 with
// MinBudget <= MaxBudget, a Reduction of at least 2, and enough trials for
// the last rung to be reached: a rung promotes its best 1/Reduction, so k
// rungs above the first take Reduction^k trials.
type ASHA struct {
	MinBudget, MaxBudget int
	// Reduction is the factor between rungs; 0 means 3.
	Reduction int
}

// plan checks the settings against the number of trials and returns the
// reduction factor and the rungs' budgets.
func (a ASHA) plan(trials int) (reduction int, rungs []int, err error) {
	reduction = a.Reduction
	if reduction == 0 {
		reduction = 3
	}
	switch {
	case reduction < 2:
		return 0, nil, fmt.Errorf("%w: ASHA reduction %d: want at least 2 (0 means 3)", ErrSpace, a.Reduction)
	case a.MinBudget < 1:
		return 0, nil, fmt.Errorf("%w: ASHA minimum budget %d: want at least 1", ErrSpace, a.MinBudget)
	case a.MaxBudget < a.MinBudget:
		return 0, nil, fmt.Errorf("%w: ASHA budgets %d to %d: want MinBudget <= MaxBudget", ErrSpace, a.MinBudget, a.MaxBudget)
	}
	for r := a.MinBudget; ; r *= reduction {
		rungs = append(rungs, min(r, a.MaxBudget))
		if r >= a.MaxBudget || r > a.MaxBudget/reduction {
			if r < a.MaxBudget {
				rungs = append(rungs, a.MaxBudget) // r x reduction would overflow past it
			}
			break
		}
	}
	// Each rung promotes its best 1/reduction: reaching the last rung
	// takes reduction^(rungs-1) trials.
	need := 1
	for range len(rungs) - 1 {
		need = min(need*reduction, math.MaxInt32)
	}
	if trials < need {
		return 0, nil, fmt.Errorf("%w: %d trials for ASHA over budgets %v (reduction %d): a rung promotes its best 1/%d, so reaching budget %d takes at least %d trials (sample more, or narrow the budgets)",
			ErrSpace, trials, rungs, reduction, reduction, a.MaxBudget, need)
	}
	return reduction, rungs, nil
}

// Options configure a Sweep. Zero values take the documented defaults.
type Options struct {
	// Metric names the metric to rank by (required); Mode says which way.
	Metric string
	Mode   Mode
	// Samples is the number of random draws of the non-grid dimensions per
	// grid point; 0 means 1.
	Samples int
	// Seed makes the draws reproducible.
	Seed uint64
	// MaxTrials refuses a space that expands to more trials; 0 means 10000.
	MaxTrials int
	// ASHA, when set, stops unpromising trials early.
	ASHA *ASHA
	// TPE, when set, searches by the tree-structured Parzen estimator
	// instead of the space's grid and samples: TPE.Trials trials, each
	// suggested from the ones finished, run as soon as a slot frees (a wren
	// job per trial). Reproducible for a seed when trials finish in the
	// same order (TPE.Parallelism 1 always does).
	TPE *TPE
	// Hyperband, when set, runs brackets of successive halving, their
	// trials drawn at random or, with Hyperband.TPE, suggested (BOHB); it
	// replaces the space's grid and samples, and ASHA.
	Hyperband *Hyperband
	// PBT, when set, trains a population by population-based training
	// (exploit and explore between intervals), its lineage recorded; it
	// replaces the space's grid and samples, ASHA, TPE and Hyperband.
	PBT *PBT
	// Resume is an earlier (interrupted) sweep's results (Load): trials it
	// finished are reused, the rest run. Its space must be this one.
	Resume *Results
	// Prefix keeps the sweep's records and checkpoints in the executor's
	// store; "" means tune/<random id>. A resumed sweep keeps its own.
	Prefix string
	// MapOptions adjust the maps (timeouts, retries, progress).
	MapOptions []wren.MapOption
	// Logger receives progress; nil means slog.Default().
	Logger *slog.Logger
}

// Trial is one trial's outcome (at the highest budget it reached).
type Trial struct {
	ID       int                `json:"id"`
	Label    string             `json:"params"`
	Num      map[string]float64 `json:"num,omitempty"`
	Str      map[string]string  `json:"str,omitempty"`
	Budget   int                `json:"budget,omitempty"`
	Metrics  Metrics            `json:"metrics,omitempty"`
	Err      string             `json:"error,omitempty"`
	Duration time.Duration      `json:"duration"`
	// Finished is when the run ended (its call's end, else when the sweep
	// learned of it); zero in records of older versions.
	Finished time.Time `json:"finished,omitzero"`
	Attempts int       `json:"attempts"`
	Reused   bool      `json:"reused,omitempty"`
	key      string
}

// OK reports whether the trial produced a usable metric.
func (t *Trial) OK() bool { return t.Err == "" }

// Results are a finished sweep's trials, best first (failed trials last).
type Results struct {
	Prefix      string        `json:"prefix"`
	Metric      string        `json:"metric"`
	Mode        Mode          `json:"mode"`
	Space       string        `json:"space"` // the space's fingerprint
	Trials      []Trial       `json:"trials"`
	Reused      int           `json:"reused"`       // trials taken from Options.Resume
	Wall        time.Duration `json:"wall"`         // the sweep's duration
	TrialTime   time.Duration `json:"trial_time"`   // the sum of the runs' durations
	BudgetUnits int           `json:"budget_units"` // budget run, a promoted run counting only its increase
	CostUSD     float64       `json:"cost_usd"`     // the backend's bill (Lambda), 0 for local workers
	// Jobs is the prefix of the IDs of the wren jobs the sweep ran
	// ("<Jobs>-b<budget>-<n>").
	Jobs string `json:"jobs,omitempty"`
	// Lineage is a PBT sweep's members interval by interval.
	Lineage []LineageStep `json:"lineage,omitempty"`
}

// Sweep runs the objective once per trial of the space, as wren maps on
// the executor (with its retries, speculation and progress bar). A trial
// whose objective fails, panics or reports a NaN or missing metric is
// recorded with its error and never ranked best; the sweep completes, and
// Errors lists them. Each finished trial is recorded in the store at once,
// so an interrupted sweep resumes (Options.Resume, Load) from where it was.
func Sweep(ctx context.Context, ex *wren.Executor, objective *wren.Task[Params, Metrics], space Space, opts Options) (*Results, error) {
	if opts.Metric == "" {
		return nil, errors.New("tune: Options.Metric is required")
	}
	if opts.MaxTrials <= 0 {
		opts.MaxTrials = 10000
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	var trials []Params
	var err error
	var tpe TPE
	var pbt PBT
	if opts.PBT != nil {
		if opts.ASHA != nil || opts.TPE != nil || opts.Hyperband != nil {
			return nil, fmt.Errorf("%w: PBT replaces ASHA, TPE and Hyperband", ErrSpace)
		}
		if err := space.validate(); err != nil {
			return nil, err
		}
		pbt = *opts.PBT
		if err := pbt.check(); err != nil {
			return nil, err
		}
	} else if opts.Hyperband != nil {
		if opts.ASHA != nil || opts.TPE != nil {
			return nil, fmt.Errorf("%w: Hyperband replaces ASHA and TPE (give Hyperband.TPE for BOHB)", ErrSpace)
		}
		if err := space.validate(); err != nil {
			return nil, err
		}
		if _, _, _, err := opts.Hyperband.brackets(); err != nil {
			return nil, err
		}
	} else if opts.TPE != nil {
		if opts.ASHA != nil {
			return nil, fmt.Errorf("%w: TPE with ASHA is not supported (run TPE's trials at one budget)", ErrSpace)
		}
		if err := space.validate(); err != nil {
			return nil, err
		}
		tpe = *opts.TPE
		if err := tpe.defaults(ex.Parallelism()); err != nil {
			return nil, err
		}
	} else if trials, err = space.trials(opts.Samples, opts.Seed, opts.MaxTrials); err != nil {
		return nil, err
	}
	if opts.ASHA != nil {
		if _, _, err := opts.ASHA.plan(len(trials)); err != nil {
			return nil, err
		}
	}
	fp := space.fingerprint(opts.Samples, opts.Seed)
	prev := map[string]Trial{}
	if r := opts.Resume; r != nil {
		if r.Space != fp {
			return nil, fmt.Errorf("%w: the resumed sweep's space (or samples, or seed) differs from this one", ErrSpace)
		}
		for _, t := range r.records() {
			prev[fmt.Sprint(t.key, "@", t.Budget)] = t
		}
		if opts.Prefix == "" {
			opts.Prefix = r.Prefix
		}
	}
	if opts.Prefix == "" {
		var b [4]byte
		crand.Read(b[:])
		opts.Prefix = "tune/" + time.Now().UTC().Format("20060102-150405") + "-" + hex.EncodeToString(b[:])
	}
	opts.Prefix = strings.TrimSuffix(opts.Prefix, "/")
	st := ex.Store()
	s := &sweep{ctx: ctx, ex: ex, obj: objective, opts: opts, st: st, prev: prev, start: time.Now(),
		done: make(chan Trial, len(trials)), quit: make(chan struct{}), runID: "tune-" + job.NewID(),
		res: &Results{Prefix: opts.Prefix, Metric: opts.Metric, Mode: opts.Mode, Space: fp}}
	s.res.Jobs = s.runID
	head, _ := json.Marshal(s.res)
	if err := blob.PutBytes(ctx, st, opts.Prefix+"/sweep.json", head, blob.PutOptions{}); err != nil {
		return nil, fmt.Errorf("tune: %w", err)
	}
	for i := range trials {
		trials[i].store, trials[i].metric = st.URL(), opts.Metric
		trials[i].ckpt = fmt.Sprintf("%s/checkpoints/%06d", opts.Prefix, trials[i].ID)
	}
	// Runs still finishing when the sweep returns (an error, a cancel)
	// deliver to nobody: quit releases them.
	defer close(s.quit)
	if opts.PBT != nil {
		err = s.pbt(space, pbt)
	} else if opts.Hyperband != nil {
		err = s.hyperband(space, *opts.Hyperband)
	} else if opts.TPE != nil {
		err = s.tpe(space, tpe)
	} else if opts.ASHA != nil {
		err = s.asha(trials)
	} else {
		err = s.run(trials, 0, 0)
		if err == nil {
			err = s.wait()
		}
	}
	if err != nil {
		// Nothing keeps running after the sweep gave up: its maps stop.
		s.mu.Lock()
		cancels := slices.Clone(s.cancels)
		s.mu.Unlock()
		for _, cancel := range cancels {
			cancel()
		}
	}
	s.res.Wall = time.Since(s.start)
	s.finish()
	if s.res.Reused > 0 {
		opts.Logger.Info("tune: trials reused from the resumed sweep", "reused", s.res.Reused, "run", len(s.res.Trials)-s.res.Reused)
	}
	return s.res, err
}

type sweep struct {
	ctx   context.Context
	ex    *wren.Executor
	obj   *wren.Task[Params, Metrics]
	opts  Options
	st    blob.Store
	prev  map[string]Trial
	start time.Time

	mu      sync.Mutex
	res     *Results
	best    map[int]Trial // per trial, its highest-budget outcome
	done    chan Trial
	quit    chan struct{} // closed when Sweep returns
	runID   string        // names the sweep's maps
	maps    int
	cancels []func() // of every map launched
	pending int
	jobs    []func() float64 // cost of each map launched
	lineage []LineageStep    // PBT's
}

// run launches trials (a map) at budget b, from checkpoints of budget prevB.
func (s *sweep) run(trials []Params, b, prevB int) error {
	var todo []Params
	for _, p := range trials {
		p.budget, p.prev = b, prevB
		if t, ok := s.prev[fmt.Sprint(p.key(), "@", b)]; ok && t.OK() {
			t.Reused, t.ID, t.key = true, p.ID, p.key()
			s.mu.Lock()
			s.res.Reused++
			s.pending++
			s.mu.Unlock()
			go s.emit(t) // the caller may be the one who receives
			continue
		}
		todo = append(todo, p)
	}
	if len(todo) == 0 {
		return nil
	}
	s.mu.Lock()
	s.maps++
	id := fmt.Sprintf("%s-b%d-%d", s.runID, b, s.maps)
	s.mu.Unlock()
	// Each map is named by the sweep (a WithJobID among the MapOptions
	// would name every map the same).
	job, err := s.obj.Map(s.ctx, s.ex, todo, append(slices.Clone(s.opts.MapOptions), wren.WithJobID(id))...)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.cancels = append(s.cancels, job.Cancel)
	s.pending += len(todo)
	s.jobs = append(s.jobs, func() float64 {
		if bl := job.Stats().Billing; bl != nil {
			return bl.USD
		}
		return 0
	})
	s.mu.Unlock()
	for i, f := range job.Futures() {
		p := todo[i]
		go func() {
			m, err := f.Result(context.WithoutCancel(s.ctx))
			t := Trial{ID: p.ID, Label: p.Label(), Num: p.Num, Str: p.Str, Budget: b, Metrics: m, key: p.key()}
			var ce *wren.CallError
			if errors.As(err, &ce) {
				t.Attempts = ce.Attempts
			}
			t.Finished = time.Now()
			if c, ok := job.CallStats(i); ok {
				t.Duration, t.Attempts = c.Finished.Sub(c.Started), c.Attempts
				if !c.Finished.IsZero() {
					t.Finished = c.Finished
				}
			}
			switch v, ok := m[s.opts.Metric]; {
			case err != nil:
				t.Err = err.Error()
			case !ok:
				t.Err = fmt.Sprintf("tune: the objective's metrics %v lack %q", keys(m), s.opts.Metric)
			case math.IsNaN(v) || math.IsInf(v, 0):
				t.Err = fmt.Sprintf("tune: metric %s is %v", s.opts.Metric, v)
			}
			// JSON has no NaN or infinities: such values are left out (the
			// error says so for the sweep's metric).
			for k, v := range t.Metrics {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					t.Metrics = maps.Clone(t.Metrics)
					delete(t.Metrics, k)
				}
			}
			s.record(t, b-prevB)
			s.emit(t)
		}()
	}
	return nil
}

func keys(m Metrics) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// emit delivers a finished run to whoever waits (wait or asha).
func (s *sweep) emit(t Trial) {
	s.mu.Lock()
	if s.best == nil {
		s.best = map[int]Trial{}
	}
	if old, ok := s.best[t.ID]; !ok || t.Budget >= old.Budget {
		s.best[t.ID] = t
	}
	s.mu.Unlock()
	select {
	case s.done <- t:
	case <-s.quit:
	}
}

// record writes a finished run to the store at once and counts it.
func (s *sweep) record(t Trial, units int) {
	s.mu.Lock()
	s.res.TrialTime += t.Duration
	s.res.BudgetUnits += units
	s.mu.Unlock()
	b, err := json.Marshal(t)
	key := fmt.Sprintf("%s/trials/%06d-%d.json", s.opts.Prefix, t.ID, t.Budget)
	if err == nil {
		err = blob.PutBytes(context.WithoutCancel(s.ctx), s.st, key, b, blob.PutOptions{})
	}
	if err != nil {
		s.opts.Logger.Warn("tune: record a trial", "trial", t.ID, "err", err)
	}
}

// wait collects every run launched.
func (s *sweep) wait() error {
	for {
		s.mu.Lock()
		n := s.pending
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-s.done:
			s.mu.Lock()
			s.pending--
			s.mu.Unlock()
		case <-s.ctx.Done():
			return s.ctx.Err()
		}
	}
}

// tpe runs the sweep's trials one by one as TPE suggests them, keeping
// c.Parallelism in flight.
func (s *sweep) tpe(space Space, c TPE) error {
	rng := rand.New(rand.NewPCG(s.opts.Seed, 0x7e5b))
	s.opts.MapOptions = append([]wren.MapOption{wren.WithProgress(wren.ProgressOff)}, s.opts.MapOptions...)
	var finished []Trial
	pending := map[int]Params{}
	launched := 0
	for launched < c.Trials || len(pending) > 0 {
		for launched < c.Trials && len(pending) < c.Parallelism {
			below, above := s.split(finished, c.Gamma)
			ids := slices.Sorted(maps.Keys(pending))
			for _, id := range ids { // running trials count as bad
				above = append(above, observation{pending[id].Num, pending[id].Str})
			}
			p := c.suggest(space, rng, below, above, len(finished))
			p.ID = launched
			p.store, p.metric = s.st.URL(), s.opts.Metric
			p.ckpt = fmt.Sprintf("%s/checkpoints/%06d", s.opts.Prefix, p.ID)
			if err := s.run([]Params{p}, 0, 0); err != nil {
				return err
			}
			pending[p.ID] = p
			launched++
		}
		select {
		case t := <-s.done:
			s.mu.Lock()
			s.pending--
			s.mu.Unlock()
			delete(pending, t.ID)
			finished = append(finished, t)
			s.opts.Logger.Info("tune: TPE trial", "trial", t.ID, "of", c.Trials, "params", t.Label, s.opts.Metric, t.Metrics[s.opts.Metric], "error", t.Err)
		case <-s.ctx.Done():
			return s.ctx.Err()
		}
	}
	return nil
}

// split divides the finished trials into TPE's good ones (the best
// min(ceil(gamma n), 25) of the n with a metric) and the rest (failed ones
// included), each in the order the trials were numbered (TPE weighs older
// trials less).
func (s *sweep) split(finished []Trial, gamma float64) (below, above []observation) {
	var ok []Trial
	for _, t := range finished {
		if t.OK() {
			ok = append(ok, t)
		}
	}
	sort.SliceStable(ok, func(i, j int) bool { return s.better(ok[i].Metrics[s.opts.Metric], ok[j].Metrics[s.opts.Metric]) })
	good := map[int]bool{}
	for _, t := range ok[:min(int(math.Ceil(gamma*float64(len(ok)))), 25)] {
		good[t.ID] = true
	}
	byID := slices.Clone(finished)
	sort.SliceStable(byID, func(i, j int) bool { return byID[i].ID < byID[j].ID })
	for _, t := range byID {
		if good[t.ID] {
			below = append(below, observation{t.Num, t.Str})
		} else {
			above = append(above, observation{t.Num, t.Str})
		}
	}
	return below, above
}

// better reports whether metric a ranks before b.
func (s *sweep) better(a, b float64) bool {
	if s.opts.Mode == Min {
		return a < b
	}
	return a > b
}

// asha runs asynchronous successive halving.
func (s *sweep) asha(trials []Params) error {
	reduction, rungs, err := s.opts.ASHA.plan(len(trials))
	if err != nil {
		return err
	}
	byID := map[int]Params{}
	for _, p := range trials {
		byID[p.ID] = p
	}
	type result struct {
		id     int
		metric float64
	}
	done := make([][]result, len(rungs)) // finished runs per rung
	promoted := make([]map[int]bool, len(rungs))
	for i := range promoted {
		promoted[i] = map[int]bool{}
	}
	rungOf := map[int]int{}
	for i, r := range rungs {
		rungOf[r] = i
	}
	if err := s.run(trials, rungs[0], 0); err != nil {
		return err
	}
	for {
		s.mu.Lock()
		n := s.pending
		s.mu.Unlock()
		if n == 0 {
			return nil
		}
		var t Trial
		select {
		case t = <-s.done:
		case <-s.ctx.Done():
			return s.ctx.Err()
		}
		s.mu.Lock()
		s.pending--
		s.mu.Unlock()
		k := rungOf[t.Budget]
		if t.OK() {
			done[k] = append(done[k], result{t.ID, t.Metrics[s.opts.Metric]})
		}
		// Promote the best 1/Reduction of every rung not promoted yet.
		for k := 0; k < len(rungs)-1; k++ {
			rs := slices.Clone(done[k])
			sort.SliceStable(rs, func(i, j int) bool { return s.better(rs[i].metric, rs[j].metric) })
			var up []Params
			for _, r := range rs[:len(rs)/reduction] {
				if !promoted[k][r.id] {
					promoted[k][r.id] = true
					up = append(up, byID[r.id])
				}
			}
			if len(up) > 0 {
				if err := s.run(up, rungs[k+1], rungs[k]); err != nil {
					return err
				}
			}
		}
	}
}

// finish ranks the trials and sums the cost.
func (s *sweep) finish() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.res.Trials = s.res.Trials[:0]
	for _, t := range s.best {
		s.res.Trials = append(s.res.Trials, t)
	}
	s.res.sort()
	for _, cost := range s.jobs {
		s.res.CostUSD += cost()
	}
}

// sort puts usable trials first, the highest budget first, then by metric.
func (r *Results) sort() {
	sort.SliceStable(r.Trials, func(i, j int) bool {
		a, b := r.Trials[i], r.Trials[j]
		if a.OK() != b.OK() {
			return a.OK()
		}
		if !a.OK() {
			return a.ID < b.ID
		}
		if a.Budget != b.Budget {
			return a.Budget > b.Budget
		}
		ma, mb := a.Metrics[r.Metric], b.Metrics[r.Metric]
		if ma != mb {
			if r.Mode == Min {
				return ma < mb
			}
			return ma > mb
		}
		return a.ID < b.ID
	})
}

// Best returns the best trial, or nil when none succeeded.
func (r *Results) Best() *Trial {
	if len(r.Trials) == 0 || !r.Trials[0].OK() {
		return nil
	}
	return &r.Trials[0]
}

// Top returns the k best usable trials.
func (r *Results) Top(k int) []Trial {
	var out []Trial
	for _, t := range r.Trials {
		if t.OK() && len(out) < k {
			out = append(out, t)
		}
	}
	return out
}

// Errors returns the failed trials.
func (r *Results) Errors() []Trial {
	var out []Trial
	for _, t := range r.Trials {
		if !t.OK() {
			out = append(out, t)
		}
	}
	return out
}

// records are the trials as resume keys them.
func (r *Results) records() []Trial {
	out := make([]Trial, 0, len(r.Trials))
	for _, t := range r.Trials {
		t.key = Params{Num: t.Num, Str: t.Str}.key()
		out = append(out, t)
	}
	return out
}

// Load reads an earlier sweep's results from the store (its records, as
// finished trials wrote them; every budget a trial reached), for
// Options.Resume or for reports.
func Load(ctx context.Context, st blob.Store, prefix string) (*Results, error) {
	prefix = strings.TrimSuffix(prefix, "/")
	b, err := blob.ReadAll(ctx, st, prefix+"/sweep.json")
	if err != nil {
		return nil, fmt.Errorf("tune: load %s: %w", prefix, err)
	}
	var r Results
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("tune: load %s: %w", prefix, err)
	}
	keys, err := blob.Keys(ctx, st, prefix+"/trials/")
	if err != nil {
		return nil, err
	}
	r.Trials = nil
	for _, k := range keys {
		b, err := blob.ReadAll(ctx, st, k)
		if err != nil {
			return nil, err
		}
		var t Trial
		if err := json.Unmarshal(b, &t); err != nil {
			return nil, fmt.Errorf("tune: load %s: %w", k, err)
		}
		r.Trials = append(r.Trials, t)
	}
	r.sort()
	// A PBT sweep's lineage.
	if b, err := blob.ReadAll(ctx, st, prefix+"/"+LineageKey); err == nil {
		if err := json.Unmarshal(b, &r.Lineage); err != nil {
			return nil, fmt.Errorf("tune: load %s: %w", prefix+"/"+LineageKey, err)
		}
	} else if !errors.Is(err, blob.ErrNotFound) {
		return nil, err
	}
	return &r, nil
}

// String summarises the results.
func (r *Results) String() string {
	ok := len(r.Trials) - len(r.Errors())
	s := fmt.Sprintf("%d trials (%d failed, %d reused) in %v; trial time %v", len(r.Trials), len(r.Trials)-ok, r.Reused,
		r.Wall.Round(time.Millisecond), r.TrialTime.Round(time.Millisecond))
	if r.BudgetUnits > 0 {
		s += "; budget units " + strconv.Itoa(r.BudgetUnits)
	}
	if b := r.Best(); b != nil {
		s += fmt.Sprintf("; best %s = %.6g at %s", r.Metric, b.Metrics[r.Metric], b.Label)
	}
	return s
}
