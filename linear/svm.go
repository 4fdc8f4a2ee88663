package linear

import (
	"context"
	"math"
	"math/rand/v2"
	"sync"

	"golang.org/x/sync/errgroup"
)

// SVMOptions configure SVM. Zero values take the documented defaults.
type SVMOptions struct {
	// C is the hinge-loss weight; 0 means 1.
	C float64
	// MaxEpochs bounds the passes over the data per class; 0 means 50.
	MaxEpochs int
	// Tol stops a class when its projected gradient spread falls below it;
	// 0 means 0.1 (liblinear's default).
	Tol float64
	// NoScale fits on raw features, the problem liblinear and
	// scikit-learn solve. By default each feature is divided by its
	// largest absolute value (sparsity is kept) and the fit is the SVM of
	// the scaled features (its margin measured there), mapped back to the
	// original ones: unlike Logistic's preconditioning, this changes the
	// problem (the dual method has no way to keep it).
	NoScale bool
	// Seed drives the order of coordinates.
	Seed uint64
	// SquaredHinge uses the squared hinge loss (liblinear's L2-loss SVM,
	// scikit-learn LinearSVC's default) instead of the hinge loss.
	SquaredHinge bool
}

// SVMFit is a fitted one-vs-rest linear SVM.
type SVMFit struct {
	*Model
	// Epochs is the number of passes each class's solver took.
	Epochs []int
}

// SVM fits a linear SVM (hinge or squared hinge loss, L2 penalty) per class against the
// rest by dual coordinate descent with shrinking (Hsieh et al. 2008, as in
// liblinear), the classes on all cores. A bias feature of value 1 is
// appended, as liblinear's -B 1 does.
func SVM(ctx context.Context, ds *Dataset, opts SVMOptions) (*SVMFit, error) {
	if ds == nil || ds.N == 0 {
		return nil, ErrEmpty
	}
	if opts.C <= 0 {
		opts.C = 1
	}
	if opts.MaxEpochs <= 0 {
		opts.MaxEpochs = 50
	}
	if opts.Tol <= 0 {
		opts.Tol = 0.1
	}
	x, err := ds.materialize(ctx)
	if err != nil {
		return nil, err
	}
	x, scale := maybeScale(x, opts.NoScale)
	n, d, k := x.n, x.d, ds.Classes
	// Hinge: alpha in [0, C]. Squared hinge: alpha in [0, inf) and a
	// diagonal 1/(2C) added to Q.
	diag, upper := 0.0, opts.C
	if opts.SquaredHinge {
		diag, upper = 0.5/opts.C, math.Inf(1)
	}
	qd := make([]float64, n) // x_i . x_i + 1 (bias) + diag
	for i := range n {
		qd[i] = x.sqNorm(i) + 1 + diag
	}
	m := &Model{Kind: "svm", C: opts.C, Dim: d, Classes: k, ClassNames: ds.ClassNames, W: make([]float64, d*k), B: make([]float64, k)}
	fit := &SVMFit{Model: m, Epochs: make([]int, k)}
	var mu sync.Mutex
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(maxProcs())
	for c := range k {
		g.Go(func() error {
			w, b, ep, err := dcd(gctx, x, qd, int32(c), diag, upper, opts, opts.Seed+uint64(c))
			if err != nil {
				return err
			}
			mu.Lock()
			defer mu.Unlock()
			for j := range d {
				m.W[j*k+c] = w[j] * scale[j]
			}
			m.B[c] = b
			fit.Epochs[c] = ep
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return fit, nil
}

// dcd solves the dual of min 1/2 |w|^2 + C sum max(0, 1 - y_i (w x_i + b))
// (squared inside the sum with SquaredHinge) for labels y_i = +1 (class c)
// or -1.
func dcd(ctx context.Context, x *matrix, qd []float64, c int32, diag, upper float64, o SVMOptions, seed uint64) ([]float64, float64, int, error) {
	n := x.n
	w := make([]float64, x.d)
	var b float64
	alpha := make([]float64, n)
	active := make([]int, n)
	for i := range active {
		active[i] = i
	}
	rng := rand.New(rand.NewPCG(seed, 3))
	pgMaxOld, pgMinOld := math.Inf(1), math.Inf(-1)
	epoch := 0
	for ; epoch < o.MaxEpochs; epoch++ {
		if err := ctx.Err(); err != nil {
			return nil, 0, 0, err
		}
		rng.Shuffle(len(active), func(a, b int) { active[a], active[b] = active[b], active[a] })
		pgMax, pgMin := math.Inf(-1), math.Inf(1)
		for s := 0; s < len(active); s++ {
			i := active[s]
			y := -1.0
			if x.y[i] == c {
				y = 1
			}
			gr := y*(x.dot(i, w)+b) - 1 + diag*alpha[i]
			pg := 0.0
			switch {
			case alpha[i] == 0:
				if gr > pgMaxOld {
					// Shrink: stays at the bound.
					active[s] = active[len(active)-1]
					active = active[:len(active)-1]
					s--
					continue
				}
				pg = math.Min(gr, 0)
			case alpha[i] == upper:
				if gr < pgMinOld {
					active[s] = active[len(active)-1]
					active = active[:len(active)-1]
					s--
					continue
				}
				pg = math.Max(gr, 0)
			default:
				pg = gr
			}
			pgMax, pgMin = math.Max(pgMax, pg), math.Min(pgMin, pg)
			if math.Abs(pg) > 1e-12 {
				old := alpha[i]
				alpha[i] = math.Min(math.Max(old-gr/qd[i], 0), upper)
				if dl := (alpha[i] - old) * y; dl != 0 {
					x.axpy(i, dl, w)
					b += dl
				}
			}
		}
		if pgMax-pgMin <= o.Tol {
			if len(active) == n {
				break
			}
			// Converged on the active set: check every variable once more.
			active = active[:n]
			for i := range active {
				active[i] = i
			}
			pgMaxOld, pgMinOld = math.Inf(1), math.Inf(-1)
			continue
		}
		pgMaxOld, pgMinOld = pgMax, pgMin
		if pgMaxOld <= 0 {
			pgMaxOld = math.Inf(1)
		}
		if pgMinOld >= 0 {
			pgMinOld = math.Inf(-1)
		}
	}
	return w, b, epoch, nil
}
