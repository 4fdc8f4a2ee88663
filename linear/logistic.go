package linear

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"slices"

	"gonum.org/v1/gonum/optimize"
)

// LogisticOptions configure Logistic. Zero values take the documented defaults.
type LogisticOptions struct {
	// L2 is the penalty (L2/2)|W|^2 added to the mean log loss; 0 means 1e-4.
	// Use a negative value for none.
	L2 float64
	// MaxIter bounds the L-BFGS iterations; 0 means 100.
	MaxIter int
	// GradTol stops when the gradient's infinity norm falls below it; 0 means 1e-6.
	GradTol float64
	// NoScale turns the preconditioning off. By default the optimiser works
	// on features divided by their largest absolute value (sparsity kept),
	// which conditions the problem, with the penalty carried over to the
	// original weights: the fit is the optimum of the problem as stated,
	// scaled or not; only the path to it changes.
	NoScale bool
}

// Convergence reports how an iterative fit ended.
type Convergence struct {
	Iterations  int
	Evaluations int
	Loss        float64 // final objective
	GradNorm    float64 // final gradient infinity norm
	Status      string
}

// LogisticFit is a fitted multinomial logistic regression.
type LogisticFit struct {
	*Model
	Convergence Convergence
}

// maybeScale divides each feature by its largest absolute value (unless
// off) and returns the factors to fold back into the weights.
func maybeScale(x *matrix, off bool) (*matrix, []float64) {
	if off {
		scale := make([]float64, x.d)
		for j := range scale {
			scale[j] = 1
		}
		return x, scale
	}
	scale := maxAbsScale(x)
	return x.scaled(scale), scale
}

// maxAbsScale returns 1/max|x_j| per feature (1 for all-zero features).
func maxAbsScale(x *matrix) []float64 {
	mx := make([]float64, x.d)
	if x.sparse {
		for p, j := range x.idx {
			mx[j] = max(mx[j], math.Abs(x.val[p]))
		}
	} else {
		for i, v := range x.x {
			j := i % x.d
			mx[j] = max(mx[j], math.Abs(v))
		}
	}
	for j, v := range mx {
		if v > 0 {
			mx[j] = 1 / v
		} else {
			mx[j] = 1
		}
	}
	return mx
}

// Logistic fits multinomial logistic regression with an L2 penalty by
// L-BFGS: minimise (1/n) sum -log softmax(x W + b)_y + (L2/2)|W|^2 (the
// intercept is not penalised). The data is held in memory; products use
// every core.
func Logistic(ctx context.Context, ds *Dataset, opts LogisticOptions) (*LogisticFit, error) {
	if ds == nil || ds.N == 0 {
		return nil, ErrEmpty
	}
	if opts.L2 == 0 {
		opts.L2 = 1e-4
	}
	l2 := max(opts.L2, 0)
	if opts.MaxIter <= 0 {
		opts.MaxIter = 100
	}
	if opts.GradTol <= 0 {
		opts.GradTol = 1e-6
	}
	x, err := ds.materialize(ctx)
	if err != nil {
		return nil, err
	}
	x, scale := maybeScale(x, opts.NoScale)
	d, k := x.d, ds.Classes
	obj := newLogisticObjective(x, k, l2)
	if !opts.NoScale {
		// Preconditioning, not a change of problem: with W = S V (S the
		// scale factors), the penalty (L2/2)|W|^2 is (L2/2) sum s_j^2 |V_j|^2.
		obj.pen = make([]float64, d)
		for j, sj := range scale {
			obj.pen[j] = sj * sj
		}
	}
	prob := optimize.Problem{Func: obj.loss, Grad: obj.gradient}
	settings := &optimize.Settings{
		MajorIterations:   opts.MaxIter,
		GradientThreshold: opts.GradTol,
		Converger:         &optimize.FunctionConverge{Absolute: 1e-10, Relative: 1e-10, Iterations: 20},
		Concurrent:        0,
	}
	p0 := make([]float64, d*k+k)
	// Stop between iterations when the context ends.
	settings.Recorder = ctxRecorder{ctx}
	res, err := optimize.Minimize(prob, p0, settings, &optimize.LBFGS{Store: 10, Linesearcher: &optimize.Backtracking{}})
	if err != nil && res == nil {
		return nil, fmt.Errorf("linear: logistic: %w", err)
	}
	if cerr := ctx.Err(); cerr != nil {
		return nil, cerr
	}
	if err != nil && !errors.Is(err, optimize.ErrLinesearcherFailure) {
		return nil, fmt.Errorf("linear: logistic: %w", err)
	}
	m := &Model{Kind: "logistic", L2: l2, Dim: d, Classes: k, ClassNames: ds.ClassNames, W: make([]float64, d*k), B: append([]float64(nil), res.X[d*k:]...)}
	for j := range d {
		for c := range k {
			m.W[j*k+c] = res.X[j*k+c] * scale[j]
		}
	}
	gn := 0.0
	if res.Gradient != nil {
		for _, v := range res.Gradient {
			gn = max(gn, math.Abs(v))
		}
	}
	return &LogisticFit{Model: m, Convergence: Convergence{
		Iterations: res.Stats.MajorIterations, Evaluations: obj.evals, Loss: res.F, GradNorm: gn, Status: res.Status.String(),
	}}, nil
}

type ctxRecorder struct{ ctx context.Context }

func (r ctxRecorder) Init() error { return nil }
func (r ctxRecorder) Record(_ *optimize.Location, _ optimize.Operation, _ *optimize.Stats) error {
	return r.ctx.Err()
}

// logisticObjective is the multinomial log loss with an L2 penalty on W,
// at p = [W (d x k, row-major), b (k)]; pen, when set, weighs feature j's
// penalty (the preconditioned problem's).
type logisticObjective struct {
	x        *matrix
	k        int
	l2       float64
	pen      []float64
	s        []float64   // n x k residuals (probabilities minus one-hot labels)
	gw       []float64   // d x k: X' residuals, summed
	parts    [][]float64 // per core: X' residuals of its rows (compressed rows only)
	lastP    []float64
	haveLast bool
	evals    int
}

func newLogisticObjective(x *matrix, k int, l2 float64) *logisticObjective {
	return &logisticObjective{x: x, k: k, l2: l2, s: make([]float64, x.n*k), gw: make([]float64, x.d*k), lastP: make([]float64, x.d*k+k)}
}

// residuals turns the scores of rows [lo, hi) of o.s into residuals and
// returns their summed log loss.
func (o *logisticObjective) residuals(b []float64, lo, hi int) float64 {
	k := o.k
	var f float64
	for i := lo; i < hi; i++ {
		row := o.s[i*k : (i+1)*k]
		for c := range row {
			row[c] += b[c]
		}
		y := int(o.x.y[i])
		softmax(row) // row now holds probabilities
		f -= math.Log(max(row[y], 1e-300))
		row[y]--
	}
	return f
}

// loss returns the objective at p, and computes X' residuals for gradient
// on the way. For compressed rows it is one pass over the data, split over
// the cores: per block of rows, scores, softmax, residuals, then the
// residuals scattered into the core's accumulator while the rows are in
// cache. L-BFGS asks for the gradient where it just evaluated the loss.
func (o *logisticObjective) loss(p []float64) float64 {
	o.evals++
	n, d, k := o.x.n, o.x.d, o.k
	w, b := p[:d*k], p[d*k:]
	var f float64
	if o.x.sparse {
		if o.parts == nil {
			o.parts = make([][]float64, runtime.GOMAXPROCS(0))
		}
		fs := make([]float64, len(o.parts))
		np := parallel(n, func(part, lo, hi int) {
			acc := o.parts[part]
			if acc == nil {
				acc = make([]float64, d*k)
				o.parts[part] = acc
			}
			clear(acc)
			const block = 256
			for b0 := lo; b0 < hi; b0 += block {
				b1 := min(b0+block, hi)
				o.x.mulWRows(o.s, w, k, b0, b1)
				fs[part] += o.residuals(b, b0, b1)
				o.x.tmulRRows(acc, o.s, k, b0, b1)
			}
		})
		copy(o.gw, o.parts[0])
		for q := 1; q < np; q++ {
			for i, v := range o.parts[q] {
				o.gw[i] += v
			}
		}
		for _, v := range fs[:np] {
			f += v
		}
	} else {
		o.x.mulW(o.s, w, k)
		f = o.residuals(b, 0, n)
		o.x.tmulR(o.gw, o.s, k)
	}
	f /= float64(n)
	var reg float64
	if o.pen == nil {
		for _, v := range w {
			reg += v * v
		}
	} else {
		for i, v := range w {
			reg += o.pen[i/k] * v * v
		}
	}
	copy(o.lastP, p)
	o.haveLast = true
	return f + 0.5*o.l2*reg
}

// gradient writes the gradient at p, from the pass loss made there.
func (o *logisticObjective) gradient(grad, p []float64) {
	if !o.haveLast || !slices.Equal(o.lastP, p) {
		o.loss(p)
	}
	n, d, k := o.x.n, o.x.d, o.k
	w := p[:d*k]
	inv := 1 / float64(n)
	for i, v := range o.gw {
		pen := 1.0
		if o.pen != nil {
			pen = o.pen[i/k]
		}
		grad[i] = v*inv + o.l2*pen*w[i]
	}
	gb := grad[d*k:]
	clear(gb)
	for i := range n {
		for c := range k {
			gb[c] += o.s[i*k+c]
		}
	}
	for c := range gb {
		gb[c] *= inv
	}
}
