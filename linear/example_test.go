package linear_test

import (
	"context"
	"fmt"

	"github.com/wrenml/wren/linear"
)

// Fit a ridge path on a tiny in-memory problem: two classes told apart by
// the first feature.
func ExampleRidge() {
	x := []float64{
		0, 1,
		1, 0,
		0.1, 0.9,
		0.9, 0.2,
	}
	y := []int32{0, 1, 0, 1}
	ds, _ := linear.FromDense(x, 2, y, 2)
	fit, err := linear.Ridge(context.Background(), ds, linear.RidgeOptions{Lambdas: []float64{0.01, 1}})
	if err != nil {
		fmt.Println(err)
		return
	}
	pred, _ := fit.Best.Predict(context.Background(), ds)
	fmt.Println(len(fit.Models), pred, fit.Best.Evaluate(ds).Accuracy)
	// Output: 2 [0 1 0 1] 1
}
