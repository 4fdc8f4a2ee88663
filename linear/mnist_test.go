//go:build !race

// The race detector slows these numeric loops tenfold; make test runs this
// file in a second, race-free go test run.

package linear_test

import (
	"context"
	"testing"

	"github.com/wrenml/wren/internal/mnist"
	"github.com/wrenml/wren/linear"
)

// TestMNIST checks that the three fits reach a reference accuracy on real
// data (MNIST from the GoMNIST module), on a subset to keep the suite fast;
// wren bench linear runs the full 60000 x 784 problem.
func TestMNIST(t *testing.T) {
	tr, te, err := mnist.Load()
	if err != nil {
		t.Fatal(err)
	}
	const n, m = 8000, 10000
	ctx := context.Background()
	train, err := linear.FromDense(tr.X[:n*tr.Dim], tr.Dim, tr.Labels[:n], 10)
	if err != nil {
		t.Fatal(err)
	}
	test, err := linear.FromDense(te.X[:m*te.Dim], te.Dim, te.Labels[:m], 10)
	if err != nil {
		t.Fatal(err)
	}
	rf, err := linear.Ridge(ctx, train, linear.RidgeOptions{Lambdas: linear.LogSpace(-3, 10, 14), Validation: test})
	if err != nil {
		t.Fatal(err)
	}
	lg, err := linear.Logistic(ctx, train, linear.LogisticOptions{L2: 1.0 / n, MaxIter: 60})
	if err != nil {
		t.Fatal(err)
	}
	sv, err := linear.SVM(ctx, train, linear.SVMOptions{C: 0.1, MaxEpochs: 30})
	if err != nil {
		t.Fatal(err)
	}
	// Thresholds: what these fits reach on this split, less a margin; the
	// full-data figures against scikit-learn's are in wren bench linear.
	for name, c := range map[string]struct {
		m    *linear.Model
		want float64
	}{"ridge": {rf.Best, 0.83}, "logistic": {lg.Model, 0.88}, "svm": {sv.Model, 0.87}} {
		acc := c.m.Evaluate(test).Accuracy
		t.Logf("%s: test accuracy %.4f", name, acc)
		if acc < c.want {
			t.Errorf("%s: test accuracy %.4f, want >= %.2f", name, acc, c.want)
		}
	}
}
