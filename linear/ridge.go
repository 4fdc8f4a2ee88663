package linear

import (
	"context"
	"fmt"
	"math"

	"gonum.org/v1/gonum/mat"
)

// RidgeOptions configure Ridge. Zero values take the documented defaults.
type RidgeOptions struct {
	// Lambdas is the regularisation path; nil means LogSpace(-3, 10, 14).
	Lambdas []float64
	// NoIntercept fits without an intercept (features and targets are then
	// not centred).
	NoIntercept bool
	// Standardize scales every feature to unit variance before the fit (the
	// penalty then treats features alike); the model still takes raw features.
	Standardize bool
	// Validation, when set, picks the best lambda by its accuracy there;
	// otherwise by training accuracy.
	Validation *Dataset
}

// RidgeFit is a fitted path.
type RidgeFit struct {
	Models     []*Model  // one per lambda, in path order
	Accuracy   []float64 // selection accuracy of each model
	Best       *Model
	BestLambda float64
}

// Ridge fits one-hot least squares for every lambda of the path in one pass
// over the data: X'X and X'Y are accumulated shard by shard (symmetric
// rank-k updates on every core, skipping zeros in sparse data), then each
// lambda costs one Cholesky solve. A lambda whose system is singular (only
// possible at lambda = 0) fails with ErrSingular.
func Ridge(ctx context.Context, ds *Dataset, opts RidgeOptions) (*RidgeFit, error) {
	if ds == nil || ds.N == 0 {
		return nil, ErrEmpty
	}
	if opts.Lambdas == nil {
		opts.Lambdas = LogSpace(-3, 10, 14)
	}
	d, k := ds.Dim, ds.Classes
	if int64(d)*int64(d)*8 > MaxDenseBytes {
		return nil, fmt.Errorf("%w: ridge needs a %d x %d matrix (%d GiB), over MaxDenseBytes; fit wide sparse data with Logistic or SVM", ErrTooLarge, d, d, int64(d)*int64(d)*8>>30)
	}
	g := make([]float64, d*d) // upper triangle of X'X
	xty := make([]float64, d*k)
	sum := make([]float64, d)
	ysum := make([]float64, k)
	n := 0
	err := ds.chunks(ctx, func(x *matrix, _ int) error {
		x.syrkUpper(g)
		for i := range x.n {
			c := int(x.y[i])
			ysum[c]++
			if x.sparse {
				for p := x.ptr[i]; p < x.ptr[i+1]; p++ {
					j, v := x.idx[p], x.val[p]
					xty[int(j)*k+c] += v
					sum[j] += v
				}
				continue
			}
			row := x.x[i*d : (i+1)*d]
			for j, v := range row {
				if v != 0 {
					xty[j*k+c] += v
					sum[j] += v
				}
			}
		}
		n += x.n
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range d {
		for j := range i {
			g[i*d+j] = g[j*d+i]
		}
	}
	mu := make([]float64, d)
	ybar := make([]float64, k)
	if !opts.NoIntercept {
		for j := range d {
			mu[j] = sum[j] / float64(n)
		}
		for c := range k {
			ybar[c] = ysum[c] / float64(n)
		}
		// Centre: X'X - n mu mu', X'Y - n mu ybar'.
		for i := range d {
			for j := range d {
				g[i*d+j] -= float64(n) * mu[i] * mu[j]
			}
			for c := range k {
				xty[i*k+c] -= float64(n) * mu[i] * ybar[c]
			}
		}
	}
	scale := make([]float64, d)
	for j := range d {
		scale[j] = 1
		if opts.Standardize {
			if sd := math.Sqrt(g[j*d+j] / float64(n)); sd > 0 {
				scale[j] = 1 / sd
			}
		}
	}
	if opts.Standardize {
		for i := range d {
			for j := range d {
				g[i*d+j] *= scale[i] * scale[j]
			}
			for c := range k {
				xty[i*k+c] *= scale[i]
			}
		}
	}
	fit := &RidgeFit{}
	a := mat.NewSymDense(d, nil)
	rhs := mat.NewDense(d, k, xty)
	var chol mat.Cholesky
	bestAcc := -1.0
	for _, lambda := range opts.Lambdas {
		if lambda < 0 || math.IsNaN(lambda) {
			return nil, fmt.Errorf("%w: lambda %v", ErrBadData, lambda)
		}
		for i := range d {
			for j := i; j < d; j++ {
				v := g[i*d+j]
				if i == j {
					v += lambda
				}
				a.SetSym(i, j, v)
			}
		}
		if ok := chol.Factorize(a); !ok {
			return nil, fmt.Errorf("%w: X'X + %g I is not positive definite (use lambda > 0)", ErrSingular, lambda)
		}
		var ws mat.Dense
		if err := chol.SolveTo(&ws, rhs); err != nil {
			return nil, fmt.Errorf("%w: lambda %g: %v", ErrSingular, lambda, err)
		}
		m := &Model{Kind: "ridge", Lambda: lambda, Dim: d, Classes: k, ClassNames: ds.ClassNames, W: make([]float64, d*k), B: make([]float64, k)}
		for j := range d {
			for c := range k {
				w := ws.At(j, c) * scale[j]
				if math.IsNaN(w) || math.IsInf(w, 0) {
					return nil, fmt.Errorf("%w: lambda %g gives non-finite weights", ErrSingular, lambda)
				}
				m.W[j*k+c] = w
			}
		}
		for c := range k {
			b := ybar[c]
			for j := range d {
				b -= mu[j] * m.W[j*k+c]
			}
			m.B[c] = b
		}
		fit.Models = append(fit.Models, m)
	}
	// Every lambda's accuracy in one pass: one product of the data with
	// all the models' weights side by side.
	sel := opts.Validation
	if sel == nil {
		sel = ds
	}
	acc, err := accuracies(ctx, fit.Models, sel)
	if err != nil {
		return nil, err
	}
	fit.Accuracy = acc
	for i, a := range acc {
		if a > bestAcc {
			bestAcc, fit.Best, fit.BestLambda = a, fit.Models[i], fit.Models[i].Lambda
		}
	}
	return fit, nil
}

// accuracies is the accuracy of each model (all of ds's dimension and
// classes) on ds, from one pass over ds.
func accuracies(ctx context.Context, models []*Model, ds *Dataset) ([]float64, error) {
	if len(models) == 0 {
		return nil, nil
	}
	for _, m := range models {
		if err := m.check(ds); err != nil {
			return nil, err
		}
	}
	d, k, l := models[0].Dim, models[0].Classes, len(models)
	w := make([]float64, d*l*k) // row j: model 0's k weights, model 1's, ...
	for q, m := range models {
		for j := range d {
			copy(w[j*l*k+q*k:j*l*k+q*k+k], m.W[j*k:j*k+k])
		}
	}
	correct := make([]int, l)
	n := 0
	err := ds.chunks(ctx, func(x *matrix, _ int) error {
		s := make([]float64, x.n*l*k)
		x.mulW(s, w, l*k)
		for i := range x.n {
			for q, m := range models {
				row := s[i*l*k+q*k : i*l*k+q*k+k]
				for c := range row {
					row[c] += m.B[c]
				}
				if argmax(row) == int(x.y[i]) {
					correct[q]++
				}
			}
		}
		n += x.n
		return nil
	})
	if err != nil {
		return nil, err
	}
	acc := make([]float64, l)
	for q := range acc {
		acc[q] = float64(correct[q]) / float64(max(n, 1))
	}
	return acc, nil
}
