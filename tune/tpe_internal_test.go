package tune

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestEstimatorMatchesOptuna: the Parzen estimator's weights, bandwidths
// and categorical smoothing equal those of Optuna 3.1's _ParzenEstimator
// (consider_prior, prior_weight 1, magic clip, no endpoints,
// default_weights) on the same observations, as Optuna printed them; the
// log density is, by default, Optuna 3.1's own log_pdf (which leaves out
// each kernel's 1/sigma, optuna/optuna#5109, changed in 3.5), and with
// TPE.Normalized the mixture of those truncated Gaussians as scipy's
// truncnorm.logpdf gives it.
func TestEstimatorMatchesOptuna(t *testing.T) {
	space := Space{"x": Uniform(0, 1), "y": Uniform(1, 10), "c": Choice("a", "b", "c")}
	obs := []observation{
		{num: map[string]float64{"x": 0.9, "y": 2}, str: map[string]string{"c": "a"}},
		{num: map[string]float64{"x": 0.1, "y": 3}, str: map[string]string{"c": "c"}},
		{num: map[string]float64{"x": 0.35, "y": 2.5}, str: map[string]string{"c": "c"}},
		{num: map[string]float64{"x": 0.4, "y": 9}, str: map[string]string{"c": "b"}},
	}
	names := space.names() // c, x, y
	near := func(what string, got, want []float64) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%s: %v, want %v", what, got, want)
		}
		for i := range got {
			if math.Abs(got[i]-want[i]) > 1e-9 {
				t.Fatalf("%s: %v, want %v", what, got, want)
			}
		}
	}
	for _, c := range []struct {
		multivariate     bool
		sigX, sigY       []float64
		logpdf, unscaled [2]float64
	}{
		{false, []float64{0.4, 0.25, 0.25, 1.0 / 6, 1}, []float64{1.5, 2.5, 1.5, 3.5, 9}, [2]float64{-1.9354036236487067, -4.882908990400357}, [2]float64{-2.0258214789291924, -2.7374692477914935}},
		{true, []float64{1.0 / 6, 1.0 / 6, 1.0 / 6, 1.0 / 6, 1}, []float64{1.5, 1.5, 1.5, 1.5, 9}, [2]float64{-1.7324943720280757, -4.84665194528192}, [2]float64{-2.2193010840862293, -2.7385661528309004}},
	} {
		e := newEstimator(space, names, obs, c.multivariate)
		near("weights", e.w, []float64{0.2, 0.2, 0.2, 0.2, 0.2})
		near("x bandwidths", e.dims[1].sigma, c.sigX)
		near("y bandwidths", e.dims[2].sigma, c.sigY)
		for i, want := range [][]float64{{0.75, 0.125, 0.125}, {0.125, 0.125, 0.75}, {0.125, 0.125, 0.75}, {0.125, 0.75, 0.125}, {1.0 / 3, 1.0 / 3, 1.0 / 3}} {
			near("categories", e.dims[0].probs[i], want)
		}
		// The points (c, x, y) = (c, 0.3, 2.2) and (a, 0.95, 7).
		near("normalised log density", []float64{e.logpdf([]float64{2, 0.3, 2.2}, -1), e.logpdf([]float64{0, 0.95, 7}, -1)}, c.logpdf[:])
		e.unscaled = true
		near("Optuna 3.1's log density", []float64{e.logpdf([]float64{2, 0.3, 2.2}, -1), e.logpdf([]float64{0, 0.95, 7}, -1)}, c.unscaled[:])
	}
}

// TestEstimatorSteps: integer and stepped dimensions give each step its
// probability under each kernel, with Optuna 3.1's bandwidths (its
// densities of steps are masses, so they match its log_pdf exactly).
func TestEstimatorSteps(t *testing.T) {
	space := Space{"n": IntRange(1, 5), "q": QUniform(0, 2, 0.5)}
	obs := []observation{
		{num: map[string]float64{"n": 2, "q": 0.5}}, {num: map[string]float64{"n": 4, "q": 2}},
		{num: map[string]float64{"n": 4, "q": 1.5}}, {num: map[string]float64{"n": 1, "q": 0}},
	}
	for _, c := range []struct {
		multivariate bool
		sigN, sigQ   []float64
		logpdf       [2]float64
	}{
		{false, []float64{1, 1, 5.0 / 6, 1, 5}, []float64{0.5, 0.5, 0.5, 0.5, 2.5}, [2]float64{-3.1949453349229597, -4.818197251570616}},
		{true, []float64{5.0 / 6, 5.0 / 6, 5.0 / 6, 5.0 / 6, 5}, []float64{2.5 / 6, 2.5 / 6, 2.5 / 6, 2.5 / 6, 2.5}, [2]float64{-3.326766127788921, -4.8903237247648565}},
	} {
		for _, unscaled := range []bool{false, true} { // steps have masses: the same either way
			e := newEstimator(space, space.names(), obs, c.multivariate)
			e.unscaled = unscaled
			for k, want := range [][]float64{c.sigN, c.sigQ} {
				for i := range want {
					if math.Abs(e.dims[k].sigma[i]-want[i]) > 1e-9 {
						t.Fatalf("multivariate %v: %s bandwidths %v, want %v", c.multivariate, e.dims[k].name, e.dims[k].sigma, want)
					}
				}
			}
			for i, x := range [][]float64{{3, 1}, {5, 0}} {
				if got := e.logpdf(x, -1); math.Abs(got-c.logpdf[i]) > 1e-9 {
					t.Fatalf("multivariate %v: log density at %v = %v, want %v", c.multivariate, x, got, c.logpdf[i])
				}
			}
			// Samples land on the steps, inside the range.
			rng := rand.New(rand.NewPCG(1, 2))
			for range 200 {
				x := e.sample(rng, -1)
				if x[0] != math.Round(x[0]) || x[0] < 1 || x[0] > 5 || x[1] != math.Round(x[1]*2)/2 || x[1] < 0 || x[1] > 2 {
					t.Fatalf("sample %v off the steps", x)
				}
			}
		}
	}
}

// TestTPEWeights: equal weights up to 25 observations; past that the
// oldest ramp up from 1/n to 1 and the newest 25 weigh 1 (Optuna's
// default_weights: for 30, 1/30, 0.275, 0.5167, 0.7583, 1, then 25 ones).
func TestTPEWeights(t *testing.T) {
	for _, n := range []int{0, 1, 24, 25} {
		for i, w := range tpeWeights(n) {
			if w != 1 {
				t.Fatalf("n %d: weight %d is %v", n, i, w)
			}
		}
	}
	if w := tpeWeights(26); w[0] != 1.0/26 || w[1] != 1 || len(w) != 26 {
		t.Fatalf("n 26: %v", w[:3])
	}
	w := tpeWeights(30)
	for i, want := range []float64{1.0 / 30, 0.275, 0.5166666666666667, 0.7583333333333333, 1, 1} {
		if math.Abs(w[i]-want) > 1e-12 {
			t.Fatalf("n 30: %v", w[:6])
		}
	}
}
