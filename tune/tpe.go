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
// running ones).
func (c *TPE) suggest(s Space, rng *rand.Rand, below, above []observation, finished int) Params {
	p := Params{Num: map[string]float64{}, Str: map[string]string{}}
	random := finished < c.Startup || len(below) == 0
	for _, n := range s.names() {
		d := s[n]
		switch d.Kind {
		case "choice", "labels":
			if random {
				p.Str[n] = d.Labels[rng.IntN(len(d.Labels))]
			} else {
				p.Str[n] = c.categorical(d.Labels, rng, strs(below, n), strs(above, n))
			}
		case "grid":
			labels := make([]string, len(d.Values))
			for i, v := range d.Values {
				labels[i] = fmt.Sprint(v)
			}
			var pick string
			if random {
				pick = labels[rng.IntN(len(labels))]
			} else {
				pick = c.categorical(labels, rng, gridStrs(below, n), gridStrs(above, n))
			}
			p.Num[n] = d.Values[slices.Index(labels, pick)]
		default:
			if random {
				p.Num[n] = d.draw(rng)
			} else {
				p.Num[n] = c.numeric(d, rng, nums(below, n), nums(above, n))
			}
		}
	}
	return p
}

func strs(obs []observation, n string) []string {
	var out []string
	for _, o := range obs {
		if v, ok := o.str[n]; ok {
			out = append(out, v)
		}
	}
	return out
}

func gridStrs(obs []observation, n string) []string {
	var out []string
	for _, o := range obs {
		if v, ok := o.num[n]; ok {
			out = append(out, fmt.Sprint(v))
		}
	}
	return out
}

func nums(obs []observation, n string) []float64 {
	var out []float64
	for _, o := range obs {
		if v, ok := o.num[n]; ok {
			out = append(out, v)
		}
	}
	return out
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

// categorical picks among labels by the ratio of the good trials'
// frequencies to the others' (each with a prior of one observation spread
// over the labels).
func (c *TPE) categorical(labels []string, rng *rand.Rand, below, above []string) string {
	k := float64(len(labels))
	weights := func(obs []string) []float64 {
		w := make([]float64, len(labels))
		for i := range w {
			w[i] = 1 / k
		}
		for _, o := range obs {
			if i := slices.Index(labels, o); i >= 0 {
				w[i]++
			}
		}
		sum := 0.0
		for _, v := range w {
			sum += v
		}
		for i := range w {
			w[i] /= sum
		}
		return w
	}
	l, g := weights(below), weights(above)
	best, bestScore := 0, math.Inf(-1)
	for range c.Candidates {
		u, i := rng.Float64(), 0
		for ; i < len(l)-1 && u > l[i]; i++ {
			u -= l[i]
		}
		if s := math.Log(l[i]) - math.Log(g[i]); s > bestScore {
			best, bestScore = i, s
		}
	}
	return labels[best]
}

// parzen is a truncated Gaussian mixture on [lo, hi]: one component per
// observation and a wide prior, equally weighted (Optuna's default).
type parzen struct {
	mu, sigma []float64
	lo, hi    float64
}

func newParzen(obs []float64, lo, hi float64) parzen {
	mus := append(slices.Clone(obs), (lo+hi)/2) // the prior last
	order := make([]int, len(mus))
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool { return mus[order[a]] < mus[order[b]] })
	sigma := make([]float64, len(mus))
	span := hi - lo
	minS := span / math.Min(100, 1+float64(len(mus)))
	for r, i := range order {
		left, right := lo, hi
		if r > 0 {
			left = mus[order[r-1]]
		}
		if r < len(order)-1 {
			right = mus[order[r+1]]
		}
		sigma[i] = math.Min(math.Max(math.Max(mus[i]-left, right-mus[i]), minS), span)
	}
	sigma[len(mus)-1] = span // the prior
	return parzen{mu: mus, sigma: sigma, lo: lo, hi: hi}
}

func phi(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }

// logpdf is the mixture's log density at x.
func (p parzen) logpdf(x float64) float64 {
	s := 0.0
	for i, m := range p.mu {
		sg := p.sigma[i]
		z := (x - m) / sg
		mass := phi((p.hi-m)/sg) - phi((p.lo-m)/sg)
		s += math.Exp(-z*z/2) / (sg * math.Sqrt(2*math.Pi) * math.Max(mass, 1e-12))
	}
	return math.Log(s/float64(len(p.mu)) + 1e-300)
}

// sample draws from the mixture (resampling a component's draw outside
// [lo, hi]).
func (p parzen) sample(rng *rand.Rand) float64 {
	i := rng.IntN(len(p.mu))
	for range 20 {
		if x := p.mu[i] + p.sigma[i]*rng.NormFloat64(); x >= p.lo && x <= p.hi {
			return x
		}
	}
	return math.Min(math.Max(p.mu[i], p.lo), p.hi)
}

// numeric picks a numeric value: in log space for loguniform, rounded for
// int and quniform.
func (c *TPE) numeric(d Dim, rng *rand.Rand, below, above []float64) float64 {
	lo, hi := d.Lo, d.Hi
	to, from := func(v float64) float64 { return v }, func(v float64) float64 { return v }
	switch d.Kind {
	case "loguniform":
		to, from = math.Log, math.Exp
		lo, hi = math.Log(lo), math.Log(hi)
	case "int":
		lo, hi = lo-0.5, hi+0.5
	case "quniform":
		lo, hi = lo-d.Q/2, hi+d.Q/2
	}
	tr := func(v []float64) []float64 {
		out := make([]float64, len(v))
		for i, x := range v {
			out[i] = to(x)
		}
		return out
	}
	l, g := newParzen(tr(below), lo, hi), newParzen(tr(above), lo, hi)
	best, bestScore := l.sample(rng), math.Inf(-1)
	for range c.Candidates {
		x := l.sample(rng)
		if s := l.logpdf(x) - g.logpdf(x); s > bestScore {
			best, bestScore = x, s
		}
	}
	v := from(best)
	switch d.Kind {
	case "int":
		v = math.Min(math.Max(math.Round(v), d.Lo), d.Hi)
	case "quniform":
		v = d.Lo + math.Round((v-d.Lo)/d.Q)*d.Q
		v = math.Min(math.Max(v, d.Lo), d.Lo+math.Floor((d.Hi-d.Lo)/d.Q)*d.Q)
	case "loguniform":
		v = math.Min(math.Max(v, d.Lo), d.Hi)
	}
	return v
}
