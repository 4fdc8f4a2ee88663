package main

import (
	"context"
	"flag"
	"time"

	"gonum.org/v1/gonum/mat"

	"github.com/wrenml/wren/internal/mnist"
	"github.com/wrenml/wren/linear"
)

// benchLinear fits the three classifiers on MNIST and times X'X with a plain
// gonum product in the same run.
func benchLinear(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench linear", flag.ContinueOnError)
	train := fs.Int("train", 60000, "training examples (the first N)")
	skip := fs.String("skip", "", "comma-separated fits to skip (ridge, logistic, svm, xtx)")
	iters := fs.Int("logistic-iters", 100, "L-BFGS iterations")
	svmC := fs.Float64("svm-c", 0.1, "SVM C (on max-abs scaled features)")
	svmEpochs := fs.Int("svm-epochs", 0, "SVM epochs per class (0: the default)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	tr, te, err := mnist.Load()
	if err != nil {
		return err
	}
	n := min(*train, tr.N)
	trainDS, err := linear.FromDense(tr.X[:n*tr.Dim], tr.Dim, tr.Labels[:n], 10)
	if err != nil {
		return err
	}
	testDS, err := linear.FromDense(te.X, te.Dim, te.Labels, 10)
	if err != nil {
		return err
	}
	skipped := map[string]bool{}
	for _, s := range splitComma(*skip) {
		skipped[s] = true
	}
	out := map[string]any{"train": n, "test": te.N, "dim": tr.Dim, "classes": 10}
	if !skipped["ridge"] {
		t := time.Now()
		fit, err := linear.Ridge(ctx, trainDS, linear.RidgeOptions{Lambdas: linear.LogSpace(-3, 10, 14)})
		if err != nil {
			return err
		}
		el := time.Since(t)
		acc := make([]float64, len(fit.Models))
		for i, m := range fit.Models {
			acc[i] = round(m.Evaluate(testDS).Accuracy, 4)
		}
		out["ridge"] = map[string]any{"fit_s": round(el.Seconds(), 4), "lambdas": len(fit.Models), "best_lambda": fit.BestLambda,
			"test_accuracy": round(fit.Best.Evaluate(testDS).Accuracy, 4), "test_accuracy_per_lambda": acc,
			"sklearn_ridgeclassifier_1_lambda_s": "3.1-5.7 (accuracy 0.860)"}
	}
	if !skipped["logistic"] {
		t := time.Now()
		fit, err := linear.Logistic(ctx, trainDS, linear.LogisticOptions{L2: 1.0 / float64(n), MaxIter: *iters})
		if err != nil {
			return err
		}
		el := time.Since(t)
		out["logistic"] = map[string]any{"fit_s": round(el.Seconds(), 4), "test_accuracy": round(fit.Evaluate(testDS).Accuracy, 4),
			"iterations": fit.Convergence.Iterations, "evaluations": fit.Convergence.Evaluations, "loss": fit.Convergence.Loss,
			"grad_norm": fit.Convergence.GradNorm, "status": fit.Convergence.Status,
			"sklearn_lbfgs_100_iter_s": "38.8 (accuracy 0.926)"}
	}
	if !skipped["svm"] {
		t := time.Now()
		fit, err := linear.SVM(ctx, trainDS, linear.SVMOptions{C: *svmC, MaxEpochs: *svmEpochs})
		if err != nil {
			return err
		}
		el := time.Since(t)
		out["svm"] = map[string]any{"fit_s": round(el.Seconds(), 4), "test_accuracy": round(fit.Evaluate(testDS).Accuracy, 4),
			"epochs": fit.Epochs, "c": *svmC, "sklearn_linearsvc_s": "156 (accuracy 0.918)"}
	}
	if !skipped["xtx"] {
		x := mat.NewDense(n, tr.Dim, tr.X[:n*tr.Dim])
		var g mat.Dense
		t := time.Now()
		g.Mul(x.T(), x)
		out["xtx_mul_s"] = round(time.Since(t).Seconds(), 4)
	}
	return printJSON(out)
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			if i > start {
				out = append(out, s[start:i])
			}
			start = i + 1
		}
	}
	return out
}
