package tune

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"strconv"
)

// Dim is a dimension of a search space: Grid, Choice, Uniform, LogUniform,
// IntRange or QUniform.
type Dim struct {
	Kind   string    `json:"kind"`
	Values []float64 `json:"values,omitempty"` // Grid
	Labels []string  `json:"labels,omitempty"` // Choice
	Lo     float64   `json:"lo,omitempty"`
	Hi     float64   `json:"hi,omitempty"`
	Q      float64   `json:"q,omitempty"` // QUniform's step
}

// Grid is a list of values, every one tried (the sweep takes the
// Cartesian product of the grid dimensions).
func Grid(values ...float64) Dim { return Dim{Kind: "grid", Values: values} }

// Labels is a categorical grid: every label tried, in the Cartesian
// product with the other grid dimensions.
func Labels(labels ...string) Dim { return Dim{Kind: "labels", Labels: labels} }

// Choice is a categorical dimension, sampled uniformly.
func Choice(labels ...string) Dim { return Dim{Kind: "choice", Labels: labels} }

// Uniform samples a float uniformly from [lo, hi).
func Uniform(lo, hi float64) Dim { return Dim{Kind: "uniform", Lo: lo, Hi: hi} }

// LogUniform samples a float whose logarithm is uniform in [log lo, log hi).
func LogUniform(lo, hi float64) Dim { return Dim{Kind: "loguniform", Lo: lo, Hi: hi} }

// IntRange samples an integer uniformly from [lo, hi].
func IntRange(lo, hi int) Dim { return Dim{Kind: "int", Lo: float64(lo), Hi: float64(hi)} }

// QUniform samples a multiple of q uniformly from [lo, hi].
func QUniform(lo, hi, q float64) Dim { return Dim{Kind: "quniform", Lo: lo, Hi: hi, Q: q} }

// Space maps parameter names to dimensions.
type Space map[string]Dim

// ErrSpace reports an invalid search space.
var ErrSpace = errors.New("tune: bad search space")

func (s Space) names() []string {
	out := make([]string, 0, len(s))
	for k := range s {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// validate checks every dimension.
func (s Space) validate() error {
	if len(s) == 0 {
		return fmt.Errorf("%w: no dimensions", ErrSpace)
	}
	for _, name := range s.names() {
		d := s[name]
		bad := func(why string) error { return fmt.Errorf("%w: %s (%s): %s", ErrSpace, name, d.Kind, why) }
		switch d.Kind {
		case "grid":
			if len(d.Values) == 0 {
				return bad("an empty grid")
			}
			for _, v := range d.Values {
				if math.IsNaN(v) || math.IsInf(v, 0) {
					return bad(fmt.Sprintf("value %v", v))
				}
			}
		case "choice", "labels":
			if len(d.Labels) == 0 {
				return bad("no choices")
			}
		case "uniform", "int":
			if !(d.Lo < d.Hi) {
				return bad(fmt.Sprintf("low %v >= high %v", d.Lo, d.Hi))
			}
		case "loguniform":
			if !(d.Lo > 0) || !(d.Lo < d.Hi) {
				return bad(fmt.Sprintf("bounds %v, %v: want 0 < low < high", d.Lo, d.Hi))
			}
		case "quniform":
			if !(d.Lo < d.Hi) || !(d.Q > 0) {
				return bad(fmt.Sprintf("bounds %v, %v, step %v", d.Lo, d.Hi, d.Q))
			}
		default:
			return bad("unknown kind")
		}
	}
	return nil
}

// fingerprint identifies the space and the sampling settings, so that a
// resume with another space is refused.
func (s Space) fingerprint(samples int, seed uint64) string {
	b, _ := json.Marshal(struct {
		Space   map[string]Dim
		Samples int
		Seed    uint64
	}{s, samples, seed})
	return string(b)
}

// trials expands the space: the Cartesian product of the grid dimensions,
// times samples random draws of the others (seeded: the same trials on any
// machine). It refuses more than max trials.
func (s Space) trials(samples int, seed uint64, maxTrials int) ([]Params, error) {
	if err := s.validate(); err != nil {
		return nil, err
	}
	names := s.names()
	var grid, random []string
	for _, n := range names {
		if k := s[n].Kind; k == "grid" || k == "labels" {
			grid = append(grid, n)
		} else {
			random = append(random, n)
		}
	}
	size := func(d Dim) int { return max(len(d.Values), len(d.Labels)) }
	total := 1
	for _, n := range grid {
		total *= size(s[n])
		if total > maxTrials {
			return nil, fmt.Errorf("%w: the grid alone has more than %d trials (Options.MaxTrials)", ErrSpace, maxTrials)
		}
	}
	if len(random) == 0 {
		samples = 1
	}
	if samples < 1 {
		samples = 1
	}
	if total*samples > maxTrials {
		return nil, fmt.Errorf("%w: %d grid points x %d samples = %d trials, over %d (Options.MaxTrials)", ErrSpace, total, samples, total*samples, maxTrials)
	}
	rng := rand.New(rand.NewPCG(seed, 0x7e5))
	var out []Params
	idx := make([]int, len(grid))
	for g := 0; g < total; g++ {
		for k := 0; k < samples; k++ {
			p := Params{Num: map[string]float64{}, Str: map[string]string{}}
			for i, n := range grid {
				if d := s[n]; d.Kind == "labels" {
					p.Str[n] = d.Labels[idx[i]]
				} else {
					p.Num[n] = d.Values[idx[i]]
				}
			}
			for _, n := range random {
				d := s[n]
				switch d.Kind {
				case "choice":
					p.Str[n] = d.Labels[rng.IntN(len(d.Labels))]
				case "uniform":
					p.Num[n] = d.Lo + rng.Float64()*(d.Hi-d.Lo)
				case "loguniform":
					p.Num[n] = math.Exp(math.Log(d.Lo) + rng.Float64()*(math.Log(d.Hi)-math.Log(d.Lo)))
				case "int":
					p.Num[n] = float64(int(d.Lo) + rng.IntN(int(d.Hi)-int(d.Lo)+1))
				case "quniform":
					steps := int(math.Floor((d.Hi - d.Lo) / d.Q))
					p.Num[n] = d.Lo + float64(rng.IntN(steps+1))*d.Q
				}
			}
			p.ID = len(out)
			out = append(out, p)
		}
		// Next grid point (odometer).
		for i := len(idx) - 1; i >= 0; i-- {
			idx[i]++
			if idx[i] < size(s[grid[i]]) {
				break
			}
			idx[i] = 0
		}
	}
	return out, nil
}

// Params are one trial's parameter values, as its objective sees them:
// the values (Float, Int, String), the run's budget and checkpoints
// (Budget, Resumed, LoadCheckpoint, SaveCheckpoint). They travel to the
// workers whole, whatever the objective's codec (GobEncode, MarshalJSON).
type Params struct {
	// ID numbers the trial in its sweep.
	ID int
	// Num and Str are the numeric and categorical values, by name.
	Num map[string]float64
	Str map[string]string

	budget int    // the budget of this run (ASHA), 0 without
	prev   int    // the budget a checkpoint of this trial already holds
	ckpt   string // prefix of the trial's checkpoints in store, one per budget
	from   string // PBT: the prefix to resume from (a better member's), "" for ckpt
	store  string // the executor's store URL
	metric string // the sweep's metric
}

// paramsWire is Params as it is encoded.
type paramsWire struct {
	ID     int                `json:"id"`
	Num    map[string]float64 `json:"num,omitempty"`
	Str    map[string]string  `json:"str,omitempty"`
	Budget int                `json:"budget,omitempty"`
	Prev   int                `json:"prev,omitempty"`
	Ckpt   string             `json:"ckpt,omitempty"`
	From   string             `json:"from,omitempty"`
	Store  string             `json:"store,omitempty"`
	Metric string             `json:"metric,omitempty"`
}

func (p Params) wire() paramsWire {
	return paramsWire{ID: p.ID, Num: p.Num, Str: p.Str, Budget: p.budget, Prev: p.prev, Ckpt: p.ckpt, From: p.from, Store: p.store, Metric: p.metric}
}

func (p *Params) set(w paramsWire) {
	*p = Params{ID: w.ID, Num: w.Num, Str: w.Str, budget: w.Budget, prev: w.Prev, ckpt: w.Ckpt, from: w.From, store: w.Store, metric: w.Metric}
}

// GobEncode implements gob.GobEncoder.
func (p Params) GobEncode() ([]byte, error) {
	var b bytes.Buffer
	err := gob.NewEncoder(&b).Encode(p.wire())
	return b.Bytes(), err
}

// GobDecode implements gob.GobDecoder.
func (p *Params) GobDecode(b []byte) error {
	var w paramsWire
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&w); err != nil {
		return err
	}
	p.set(w)
	return nil
}

// MarshalJSON implements json.Marshaler.
func (p Params) MarshalJSON() ([]byte, error) { return json.Marshal(p.wire()) }

// UnmarshalJSON implements json.Unmarshaler.
func (p *Params) UnmarshalJSON(b []byte) error {
	var w paramsWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	p.set(w)
	return nil
}

// Metric is the metric the sweep ranks by.
func (p Params) Metric() string { return p.metric }

// ErrMissingParam is what a Params getter panics with (wrapped) when the
// space has no such parameter: a programming error, reported as the
// trial's failure with the parameter's name.
var ErrMissingParam = errors.New("tune: the space has no parameter")

func (p Params) missing(name string) {
	var have []string
	for k := range p.Num {
		have = append(have, k)
	}
	for k := range p.Str {
		have = append(have, k)
	}
	slices.Sort(have)
	panic(fmt.Errorf("%w %q (it has: %v)", ErrMissingParam, name, have))
}

// Float returns a numeric parameter. It panics with ErrMissingParam when
// the space has none of that name.
func (p Params) Float(name string) float64 {
	v, ok := p.Num[name]
	if !ok {
		p.missing(name)
	}
	return v
}

// Int returns a numeric parameter rounded to an integer (IntRange, or a
// grid of integers). It panics with ErrMissingParam when there is none.
func (p Params) Int(name string) int { return int(math.Round(p.Float(name))) }

// String returns a Choice parameter. It panics with ErrMissingParam when
// there is none.
func (p Params) String(name string) string {
	v, ok := p.Str[name]
	if !ok {
		if f, isNum := p.Num[name]; isNum {
			return strconv.FormatFloat(f, 'g', -1, 64)
		}
		p.missing(name)
	}
	return v
}

// Budget is the budget of this run (epochs, say) with early stopping; 0
// without.
func (p Params) Budget() int { return p.budget }

// Resumed is the budget of the checkpoint this run continues from
// (ResumeKey): an objective that checkpoints trains from it instead of from
// scratch. 0 for a trial's first run.
func (p Params) Resumed() int { return p.prev }

// CheckpointKey is where this run keeps its state in the executor's store
// (StoreURL): one key per trial and budget, written once (SaveCheckpoint),
// so that a lost attempt, a retry, a speculative duplicate or a resumed
// sweep never trains from another budget's state. The trial's next rung
// continues from it (ResumeKey).
func (p Params) CheckpointKey() string { return checkpointKey(p.ckpt, p.budget) }

// ResumeKey is the checkpoint of budget Resumed() that this run continues
// from (under population-based training, possibly a better member's); ""
// for a trial's first run.
func (p Params) ResumeKey() string {
	if p.prev <= 0 {
		return ""
	}
	if p.from != "" {
		return checkpointKey(p.from, p.prev)
	}
	return checkpointKey(p.ckpt, p.prev)
}

func checkpointKey(prefix string, budget int) string {
	if prefix == "" {
		return ""
	}
	return fmt.Sprintf("%s/budget-%06d", prefix, budget)
}

// StoreURL is the executor's store, for CheckpointKey.
func (p Params) StoreURL() string { return p.store }

// Label renders the parameters as name=value pairs, sorted by name.
func (p Params) Label() string {
	var names []string
	for k := range p.Num {
		names = append(names, k)
	}
	for k := range p.Str {
		names = append(names, k)
	}
	slices.Sort(names)
	out := ""
	for i, n := range names {
		if i > 0 {
			out += " "
		}
		if v, ok := p.Str[n]; ok {
			out += n + "=" + v
		} else {
			out += n + "=" + strconv.FormatFloat(p.Num[n], 'g', 4, 64)
		}
	}
	return out
}

// key identifies the parameter values (for resume).
func (p Params) key() string {
	n, s := p.Num, p.Str
	if len(n) == 0 {
		n = nil
	}
	if len(s) == 0 {
		s = nil
	}
	b, _ := json.Marshal(struct {
		N map[string]float64
		S map[string]string
	}{n, s})
	return string(b)
}
