package tune

import (
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"
)

// TPE configures the tree-structured Parzen estimator (Bergstra et al.
// 2011, as Optuna implements it): after Startup random trials, each new
// trial's values are drawn from a density of the good trials so far (the
// best gamma(n) = min(ceil(Gamma n), 25)) and the candidate with the best
// ratio of good to bad density is taken, one parameter at a time. Trials
// run asynchronously: a new one starts as soon as one finishes, the
// running ones counted as bad ("constant liar"), Parallelism at once.
type TPE struct {
	// Trials is how many trials to run (required).
	Trials int
	// Parallelism is how many run at once; 0 means the executor's.
	Parallelism int
	// Startup is how many random trials come first; 0 means 10.
	Startup int
	// Gamma is the share of the trials counted good; 0 means 0.1.
	Gamma float64
	// Candidates is how many values are drawn from the good density to
	// pick from; 0 means 24.
	Candidates int
	// Multivariate models the parameters jointly (Optuna's
	// multivariate=True, after Falkner et al.'s BOHB): each candidate
	// takes every value from one good trial's kernel, and candidates are
	// ranked by the joint densities, so parameters that only help together
	// are found together. Bandwidths follow Scott's rule. False models
	// each parameter on its own (Optuna's default).
	Multivariate bool
	// Normalized scores candidates by the true mixture densities, as
	// Optuna 3.5 and later do. False (the default) weighs each continuous
	// kernel by its bandwidth, as Optuna up to 3.4 did (its densities
	// lacked their 1/bandwidth, optuna/optuna#5109): wide kernels, the
	// prior's above all, count for more than narrow ones, and the search
	// keeps nearer the good trials; measured, it finds better values
	// within 50 trials (the README gives both variants' figures).
	Normalized bool
}

func (c *TPE) defaults(parallel int) error {
	if c.Trials < 1 {
		return fmt.Errorf("%w: TPE.Trials %d (want at least 1)", ErrSpace, c.Trials)
	}
	if c.Parallelism <= 0 {
		c.Parallelism = max(parallel, 1)
	}
	if c.Startup <= 0 {
		c.Startup = 10
	}
	if c.Gamma <= 0 || c.Gamma >= 1 {
		c.Gamma = 0.1
	}
	if c.Candidates <= 0 {
		c.Candidates = 24
	}
	return nil
}

// observation is a finished (or, as a liar, running) trial's values.
type observation struct {
	num map[string]float64
	str map[string]string
}

// suggest draws the next trial's values: at random during the startup,
// else by TPE from below (the good trials) and above (the rest and the
// running ones), each in the order the trials were started (older ones
// weigh less once there are more than 25, as in Optuna).
func (c *TPE) suggest(s Space, rng *rand.Rand, below, above []observation, finished int) Params {
	p := Params{Num: map[string]float64{}, Str: map[string]string{}}
	names := s.names()
	if finished < c.Startup || len(below) == 0 {
		for _, n := range names {
			d := s[n]
			switch d.Kind {
			case "choice", "labels":
				p.Str[n] = d.Labels[rng.IntN(len(d.Labels))]
			case "grid":
				p.Num[n] = d.Values[rng.IntN(len(d.Values))]
			default:
				p.Num[n] = d.draw(rng)
			}
		}
		return p
	}
	l := newEstimator(s, names, below, c.Multivariate)
	g := newEstimator(s, names, above, c.Multivariate)
	l.unscaled, g.unscaled = !c.Normalized, !c.Normalized
	// pick draws c.Candidates points from the good density (all
	// dimensions for j < 0, else dimension j) and keeps the one with the
	// best good-to-bad ratio.
	pick := func(j int) []float64 {
		var best []float64
		bestScore := math.Inf(-1)
		for range c.Candidates {
			x := l.sample(rng, j)
			if sc := l.logpdf(x, j) - g.logpdf(x, j); best == nil || sc > bestScore {
				best, bestScore = x, sc
			}
		}
		return best
	}
	if c.Multivariate {
		l.set(p, pick(-1), -1)
		return p
	}
	for j := range names {
		l.set(p, pick(j), j)
	}
	return p
}

// draw samples d uniformly (in log space for loguniform).
func (d Dim) draw(rng *rand.Rand) float64 {
	switch d.Kind {
	case "loguniform":
		return math.Exp(math.Log(d.Lo) + rng.Float64()*(math.Log(d.Hi)-math.Log(d.Lo)))
	case "int":
		return float64(int(d.Lo) + rng.IntN(int(d.Hi)-int(d.Lo)+1))
	case "quniform":
		steps := int(math.Floor((d.Hi - d.Lo) / d.Q))
		return d.Lo + float64(rng.IntN(steps+1))*d.Q
	}
	return d.Lo + rng.Float64()*(d.Hi-d.Lo)
}

// tpeWeights are the mixture weights of n observations, oldest first:
// equal up to 25, then a ramp from 1/n up to 1 for all but the newest 25
// (Optuna's default_weights).
func tpeWeights(n int) []float64 {
	w := make([]float64, n)
	for i := range w {
		w[i] = 1
	}
	if n >= 25 {
		ramp := n - 25
		for i := range ramp {
			if ramp == 1 {
				w[i] = 1 / float64(n)
			} else {
				w[i] = 1/float64(n) + float64(i)*(1-1/float64(n))/float64(ramp-1)
			}
		}
	}
	return w
}

// estimator is a Parzen estimator over a space: one component per
// observation and a prior component (wide Gaussians centred on each
// numeric range, uniform categories), mixed by tpeWeights and a prior
// weight of one. Numeric values live in a transformed space (log for
// loguniform, widened by half a step for int and quniform), each kernel a
// Gaussian truncated to the range.
type estimator struct {
	w        []float64 // mixture weights, summing to 1; the prior last
	logW     []float64 // their logarithms
	dims     []dimEst
	unscaled bool // continuous kernels without their 1/sigma (TPE.Normalized false)
}

type dimEst struct {
	name      string
	d         Dim
	labels    []string    // categorical: choice/labels, or a grid's values as text
	probs     [][]float64 // categorical: per component, per label
	lo, hi    float64     // numeric: the transformed range
	mu, sigma []float64   // numeric: per component
	step      float64     // int and quniform: the step (their kernels give each step its mass)
	// Per component, precomputed: log of the kernel's mass inside the
	// range, of its bandwidth; categorical: log probabilities.
	logMass, logSigma []float64
	logProbs          [][]float64
}

// precompute fills the logarithms logpdf uses.
func (de *dimEst) precompute() {
	if de.categorical() {
		for _, row := range de.probs {
			lr := make([]float64, len(row))
			for c, q := range row {
				lr[c] = math.Log(q)
			}
			de.logProbs = append(de.logProbs, lr)
		}
		return
	}
	for i, m := range de.mu {
		sg := de.sigma[i]
		de.logMass = append(de.logMass, math.Log(math.Max(phi((de.hi-m)/sg)-phi((de.lo-m)/sg), 1e-12)))
		de.logSigma = append(de.logSigma, math.Log(sg))
	}
}

func (e dimEst) categorical() bool { return e.labels != nil }

// transform maps a numeric Dim's range and values into the estimator's
// space.
func (d Dim) transform() (lo, hi float64, to func(float64) float64) {
	to = func(v float64) float64 { return v }
	lo, hi = d.Lo, d.Hi
	switch d.Kind {
	case "loguniform":
		return math.Log(lo), math.Log(hi), math.Log
	case "int":
		return lo - 0.5, hi + 0.5, to
	case "quniform":
		return lo - d.Q/2, d.Lo + math.Floor((d.Hi-d.Lo)/d.Q)*d.Q + d.Q/2, to
	}
	return lo, hi, to
}

func newEstimator(s Space, names []string, obs []observation, multivariate bool) *estimator {
	n := len(obs)
	w := append(tpeWeights(n), 1) // the prior's weight
	sum := 0.0
	for _, v := range w {
		sum += v
	}
	for i := range w {
		w[i] /= sum
	}
	e := &estimator{w: w}
	for _, v := range w {
		e.logW = append(e.logW, math.Log(v))
	}
	varying := 0 // the dimensions Scott's rule counts: those with a choice
	for _, name := range names {
		if d := s[name]; len(d.Labels) > 1 || len(d.Values) > 1 || d.Hi > d.Lo {
			varying++
		}
	}
	for _, name := range names {
		d := s[name]
		de := dimEst{name: name, d: d}
		switch d.Kind {
		case "choice", "labels", "grid":
			de.labels = d.Labels
			if d.Kind == "grid" {
				de.labels = make([]string, len(d.Values))
				for i, v := range d.Values {
					de.labels[i] = fmt.Sprint(v)
				}
			}
			k := len(de.labels)
			smooth := 1 / float64(n+1) // Optuna: prior weight / (n + 1) on every label
			for _, o := range obs {
				row := make([]float64, k)
				for i := range row {
					row[i] = smooth
				}
				v, ok := o.str[name]
				if d.Kind == "grid" {
					var x float64
					x, ok = o.num[name]
					v = fmt.Sprint(x)
				}
				if i := slices.Index(de.labels, v); ok && i >= 0 {
					row[i]++
				}
				de.probs = append(de.probs, normalise(row))
			}
			prior := make([]float64, k)
			for i := range prior {
				prior[i] = 1 / float64(k)
			}
			de.probs = append(de.probs, prior)
		default:
			lo, hi, to := d.transform()
			de.lo, de.hi = lo, hi
			switch d.Kind {
			case "int":
				de.step = 1
			case "quniform":
				de.step = d.Q
			}
			for _, o := range obs {
				v, ok := o.num[name]
				if !ok {
					v = (lo + hi) / 2 // a trial without this value: centred, as the prior
				} else {
					v = math.Min(math.Max(to(v), lo), hi)
				}
				de.mu = append(de.mu, v)
			}
			de.mu = append(de.mu, (lo+hi)/2)
			de.sigma = bandwidths(de.mu, lo, hi, multivariate, max(varying, 1))
		}
		de.precompute()
		e.dims = append(e.dims, de)
	}
	return e
}

func normalise(v []float64) []float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	for i := range v {
		v[i] /= s
	}
	return v
}

// bandwidths are the kernels' widths for mus (the prior last, always the
// range's width): univariate, the larger gap to a neighbour (the outermost
// ones their inner gap: Optuna's consider_endpoints=False); multivariate,
// Scott's rule 0.2 n^(-1/(d+4)) of the range. Both clipped to [range /
// min(100, 1 + len(mus)), range] (Optuna's magic clip).
func bandwidths(mus []float64, lo, hi float64, multivariate bool, dims int) []float64 {
	span := hi - lo
	sigma := make([]float64, len(mus))
	if multivariate {
		n := max(len(mus)-1, 1)
		for i := range sigma {
			sigma[i] = 0.2 * math.Pow(float64(n), -1/float64(dims+4)) * span
		}
	} else {
		order := make([]int, len(mus))
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(a, b int) bool { return mus[order[a]] < mus[order[b]] })
		ends := make([]float64, 0, len(mus)+2)
		ends = append(ends, lo)
		for _, i := range order {
			ends = append(ends, mus[i])
		}
		ends = append(ends, hi)
		sorted := make([]float64, len(mus))
		for r := range sorted {
			sorted[r] = math.Max(ends[r+1]-ends[r], ends[r+2]-ends[r+1])
		}
		if len(ends) >= 4 {
			sorted[0] = ends[2] - ends[1]
			sorted[len(sorted)-1] = ends[len(ends)-2] - ends[len(ends)-3]
		}
		for r, i := range order {
			sigma[i] = sorted[r]
		}
	}
	minS := span / math.Min(100, 1+float64(len(mus)))
	for i := range sigma {
		sigma[i] = math.Min(math.Max(sigma[i], minS), span)
	}
	sigma[len(mus)-1] = span // the prior
	return sigma
}

func phi(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }

// sample draws a point from the mixture: component by weight, then each
// dimension (all of them for j < 0, else only j) from that component's
// kernel. Numeric values stay in the transformed space, categories are
// label indices.
func (e *estimator) sample(rng *rand.Rand, j int) []float64 {
	u, i := rng.Float64(), 0
	for ; i < len(e.w)-1 && u >= e.w[i]; i++ {
		u -= e.w[i]
	}
	x := make([]float64, len(e.dims))
	for k, de := range e.dims {
		if j >= 0 && k != j {
			continue
		}
		if de.categorical() {
			u, c := rng.Float64(), 0
			for ; c < len(de.labels)-1 && u >= de.probs[i][c]; c++ {
				u -= de.probs[i][c]
			}
			x[k] = float64(c)
			continue
		}
		x[k] = math.Min(math.Max(de.mu[i], de.lo), de.hi)
		for range 20 { // the truncated Gaussian, by rejection
			if v := de.mu[i] + de.sigma[i]*rng.NormFloat64(); v >= de.lo && v <= de.hi {
				x[k] = v
				break
			}
		}
		if de.step > 0 { // onto the steps: lo is half a step below the first
			first := de.lo + de.step/2
			x[k] = first + math.Min(math.Max(math.Round((x[k]-first)/de.step), 0), math.Round((de.hi-de.lo)/de.step)-1)*de.step
		}
	}
	return x
}

// logpdf is the mixture's log density at x (jointly over every dimension
// for j < 0, else dimension j's marginal).
func (e *estimator) logpdf(x []float64, j int) float64 {
	terms := make([]float64, len(e.w))
	top := math.Inf(-1)
	logSqrt2Pi := 0.5 * math.Log(2*math.Pi)
	for i := range e.w {
		t := e.logW[i]
		for k, de := range e.dims {
			if j >= 0 && k != j {
				continue
			}
			if de.categorical() {
				t += de.logProbs[i][int(x[k])]
				continue
			}
			sg := de.sigma[i]
			if de.step > 0 { // the step's probability
				a, b := (x[k]-de.step/2-de.mu[i])/sg, (x[k]+de.step/2-de.mu[i])/sg
				t += math.Log(math.Max(phi(b)-phi(a), 1e-300)) - de.logMass[i]
				continue
			}
			z := (x[k] - de.mu[i]) / sg
			t += -z*z/2 - logSqrt2Pi - de.logMass[i]
			if !e.unscaled {
				t -= de.logSigma[i]
			}
		}
		terms[i] = t
		top = math.Max(top, t)
	}
	if math.IsInf(top, -1) {
		return top
	}
	s := 0.0
	for _, t := range terms {
		s += math.Exp(t - top)
	}
	return top + math.Log(s)
}

// set writes x's values (all, or only dimension j) into p, back in the
// space's own terms: exponentiated, rounded to an integer or a step,
// labels by name.
func (e *estimator) set(p Params, x []float64, j int) {
	for k, de := range e.dims {
		if j >= 0 && k != j {
			continue
		}
		d := de.d
		if de.categorical() {
			if d.Kind == "grid" {
				p.Num[de.name] = d.Values[int(x[k])]
			} else {
				p.Str[de.name] = d.Labels[int(x[k])]
			}
			continue
		}
		v := x[k]
		switch d.Kind {
		case "loguniform":
			v = math.Min(math.Max(math.Exp(v), d.Lo), d.Hi)
		case "int":
			v = math.Min(math.Max(math.Round(v), d.Lo), d.Hi)
		case "quniform":
			v = d.Lo + math.Round((v-d.Lo)/d.Q)*d.Q
			v = math.Min(math.Max(v, d.Lo), d.Lo+math.Floor((d.Hi-d.Lo)/d.Q)*d.Q)
		default:
			v = math.Min(math.Max(v, d.Lo), d.Hi)
		}
		p.Num[de.name] = v
	}
}
