package tune

import (
	"math"
	"slices"
	"sort"
)

// Importance estimates how much of the metric's variance each parameter
// explains, over the usable trials at their highest budget: the variance
// of the metric's mean within the parameter's groups (its categories;
// numeric values in up to 8 groups of equal counts, two trials or more
// each) over the metric's variance, normalised to sum to 1. It is the
// first-order (main-effect) part of a functional ANOVA, estimated without
// fANOVA's random forest:
// what two parameters do only together is credited to neither. Parameters
// that take one value get 0; nil when fewer than 3 trials have a metric or
// the metric does not vary.
func (r *Results) Importance() map[string]float64 {
	top := map[int]Trial{}
	for _, t := range r.Trials {
		if _, ok := t.Metrics[r.Metric]; !t.OK() || !ok {
			continue
		}
		if o, seen := top[t.ID]; !seen || t.Budget > o.Budget {
			top[t.ID] = t
		}
	}
	if len(top) < 3 {
		return nil
	}
	trials := make([]Trial, 0, len(top))
	for _, t := range top {
		trials = append(trials, t)
	}
	sort.Slice(trials, func(a, b int) bool { return trials[a].ID < trials[b].ID })
	y := make([]float64, len(trials))
	mean := 0.0
	for i, t := range trials {
		y[i] = t.Metrics[r.Metric]
		mean += y[i]
	}
	mean /= float64(len(y))
	total := 0.0
	for _, v := range y {
		total += (v - mean) * (v - mean)
	}
	if total == 0 {
		return nil
	}
	names := map[string]bool{}
	for _, t := range trials {
		for k := range t.Num {
			names[k] = true
		}
		for k := range t.Str {
			names[k] = true
		}
	}
	out := map[string]float64{}
	sum := 0.0
	for n := range names {
		group := make([]string, len(trials))
		var vals []float64
		for _, t := range trials {
			if v, ok := t.Num[n]; ok {
				vals = append(vals, v)
			}
		}
		if len(vals) == len(trials) {
			// Numeric: up to 8 groups of equal counts (equal values
			// together), at least two trials a group: a trial alone in its
			// group would "explain" its own noise.
			s := slices.Clone(vals)
			slices.Sort(s)
			ng := min(8, len(s)/2)
			cuts := []float64{}
			for q := 1; q < ng; q++ {
				c := s[q*len(s)/ng]
				if len(cuts) == 0 || c > cuts[len(cuts)-1] {
					cuts = append(cuts, c)
				}
			}
			for i, v := range vals {
				g := sort.SearchFloat64s(cuts, v)
				if g < len(cuts) && cuts[g] == v {
					g++
				}
				group[i] = string(rune('a' + g))
			}
		} else {
			for i, t := range trials {
				group[i] = t.Str[n]
			}
		}
		sums, counts := map[string]float64{}, map[string]float64{}
		for i, g := range group {
			sums[g] += y[i]
			counts[g]++
		}
		between := 0.0
		for g, c := range counts {
			m := sums[g] / c
			between += c * (m - mean) * (m - mean)
		}
		// Groups of one trial explain their own noise: discount by the
		// groups' degrees of freedom (an adjusted R²-like share).
		k := float64(len(counts))
		v := between / total
		if k > 1 {
			v = math.Max(0, v-(k-1)/float64(len(y)-1)*(1-v))
		} else {
			v = 0
		}
		out[n] = v
		sum += v
	}
	if sum > 0 {
		for n := range out {
			out[n] /= sum
		}
	}
	return out
}
