package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"

	"github.com/wrenml/wren/internal/kernel"
	"github.com/wrenml/wren/internal/mnist"
	"github.com/wrenml/wren/internal/npy"
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
	sklearnSVM := fs.Bool("sklearn-svm", false, "also time scikit-learn's LinearSVC (minutes)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *train < 1 || *iters < 1 || !finitePositive(*svmC) || *svmEpochs < 0 {
		return fmt.Errorf("bench linear: -train %d, -logistic-iters %d, -svm-c %v, -svm-epochs %d: want 1 example and 1 iteration or more, a positive C and no negative epochs", *train, *iters, *svmC, *svmEpochs)
	}
	skipped := map[string]bool{}
	for _, s := range splitComma(*skip) {
		if !slices.Contains([]string{"ridge", "logistic", "svm", "xtx"}, s) {
			return fmt.Errorf("bench linear: -skip %q: %q is not one of ridge, logistic, svm, xtx", *skip, s)
		}
		skipped[s] = true
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
	out := map[string]any{"train": n, "test": te.N, "dim": tr.Dim, "classes": 10, "kernel": kernel.Name()}
	bestLambda := 1.0
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
			"test_accuracy": round(fit.Best.Evaluate(testDS).Accuracy, 4), "test_accuracy_per_lambda": acc}
		bestLambda = fit.BestLambda
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
			"grad_norm": fit.Convergence.GradNorm, "status": fit.Convergence.Status}
	}
	if !skipped["svm"] {
		t := time.Now()
		fit, err := linear.SVM(ctx, trainDS, linear.SVMOptions{C: *svmC, MaxEpochs: *svmEpochs})
		if err != nil {
			return err
		}
		el := time.Since(t)
		out["svm"] = map[string]any{"fit_s": round(el.Seconds(), 4), "test_accuracy": round(fit.Evaluate(testDS).Accuracy, 4),
			"epochs": fit.Epochs, "c": *svmC}
	}
	if !skipped["xtx"] {
		// X'X three ways: wren's SYRK kernel, gonum's own Dgemm (parallel)
		// and, below, numpy's BLAS.
		d := tr.Dim
		g := make([]float64, d*d)
		t := time.Now()
		kernel.Dsyrk(true, true, d, n, 1, tr.X[:n*d], d, 0, g, d)
		wrenS := time.Since(t).Seconds()
		t = time.Now()
		gonum.Implementation{}.Dgemm(blas.Trans, blas.NoTrans, d, d, n, 1, tr.X[:n*d], d, tr.X[:n*d], d, 0, g, d)
		gonumS := time.Since(t).Seconds()
		out["xtx"] = map[string]any{"wren_dsyrk_s": round(wrenS, 4), "gonum_dgemm_s": round(gonumS, 4), "wren_vs_gonum": round(gonumS/wrenS, 4)}
	}
	var fits []string
	for _, f := range []string{"ridge", "logistic", "xtx"} {
		if !skipped[f] {
			fits = append(fits, f)
		}
	}
	if !skipped["svm"] && *sklearnSVM {
		fits = append(fits, "svm")
	}
	if sk := sklearnLinear(ctx, tr, te, n, fits, bestLambda, *svmC, *iters); sk != nil {
		for k, v := range sk {
			if k == "numpy_xtx_s" {
				continue
			}
			if m, ok := out[k].(map[string]any); ok {
				m["sklearn"] = v
				if f, ok := v.(map[string]any); ok {
					if s, ok := f["fit_s"].(float64); ok && s > 0 {
						if w, ok := m["fit_s"].(float64); ok {
							m["wren_vs_sklearn_time"] = round(w/s, 4)
						}
					}
				}
				continue
			}
			out[k] = v
		}
		if x, ok := out["xtx"].(map[string]any); ok {
			if np, ok := sk["numpy_xtx_s"].(float64); ok && np > 0 {
				x["numpy_s"] = np
				x["wren_vs_numpy_time"] = round(x["wren_dsyrk_s"].(float64)/np, 4)
			}
		}
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

// sklearnLinearScript times scikit-learn's counterparts of the fits (and
// numpy's X'X) on MNIST written as .npy files, as JSON.
const sklearnLinearScript = `
import json, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np
d, fits, lam, C, iters = sys.argv[1], sys.argv[2].split(","), float(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
X = np.load(d + "/xtrain.npy").astype(np.float64)
y = np.load(d + "/ytrain.npy")
Xt = np.load(d + "/xtest.npy").astype(np.float64)
yt = np.load(d + "/ytest.npy")
out = {}
if "xtx" in fits:
    t = time.perf_counter(); X.T @ X; out["numpy_xtx_s"] = time.perf_counter() - t
try:
    import sklearn
except ImportError:
    print(json.dumps(out)); sys.exit(0)
out["sklearn_version"] = sklearn.__version__
from sklearn.linear_model import RidgeClassifier, LogisticRegression
from sklearn.svm import LinearSVC
def fit(name, clf, extra):
    t = time.perf_counter(); clf.fit(X, y); s = time.perf_counter() - t
    out[name] = dict(fit_s=s, test_accuracy=clf.score(Xt, yt), model=extra)
if "ridge" in fits:
    fit("ridge", RidgeClassifier(alpha=lam), "RidgeClassifier(alpha=%g), one lambda" % lam)
if "logistic" in fits:
    fit("logistic", LogisticRegression(C=1.0, max_iter=iters), "LogisticRegression(lbfgs, C=1, max_iter=%d)" % iters)
if "svm" in fits:
    fit("svm", LinearSVC(C=C, loss="hinge", dual=True, max_iter=1000), "LinearSVC(hinge, C=%g)" % C)
print(json.dumps(out))
`

// sklearnLinear runs sklearnLinearScript when python3 has numpy: nil
// when it cannot (the comparison is left out), or its results, or an
// error message under "sklearn".
func sklearnLinear(ctx context.Context, tr, te *mnist.Set, n int, fits []string, lambda, c float64, iters int) map[string]any {
	py := ""
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		if exec.CommandContext(ctx, p, "-c", "import numpy").Run() == nil {
			py = p
			break
		}
	}
	if py == "" || len(fits) == 0 {
		return nil
	}
	dir, err := os.MkdirTemp("", "wren-bench-linear")
	if err != nil {
		return map[string]any{"sklearn": "failed: " + err.Error()}
	}
	defer os.RemoveAll(dir)
	write := func(name string, f func(w *bufio.Writer) error) error {
		fh, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		w := bufio.NewWriter(fh)
		if err := f(w); err != nil {
			fh.Close()
			return err
		}
		if err := w.Flush(); err != nil {
			fh.Close()
			return err
		}
		return fh.Close()
	}
	x32 := func(x []float64) []float32 {
		r := make([]float32, len(x))
		for i, v := range x {
			r[i] = float32(v)
		}
		return r
	}
	d := tr.Dim
	err = write("xtrain.npy", func(w *bufio.Writer) error { return npy.Write(w, x32(tr.X[:n*d]), n, d) })
	if err == nil {
		err = write("ytrain.npy", func(w *bufio.Writer) error { return npy.Write(w, tr.Labels[:n], n) })
	}
	if err == nil {
		err = write("xtest.npy", func(w *bufio.Writer) error { return npy.Write(w, x32(te.X), te.N, d) })
	}
	if err == nil {
		err = write("ytest.npy", func(w *bufio.Writer) error { return npy.Write(w, te.Labels, te.N) })
	}
	if err != nil {
		return map[string]any{"sklearn": "failed: " + err.Error()}
	}
	cmd := exec.CommandContext(ctx, py, "-c", sklearnLinearScript, dir, strings.Join(fits, ","), fmt.Sprint(lambda), fmt.Sprint(c), strconv.Itoa(iters))
	b, err := cmd.Output()
	var res map[string]any
	if err == nil {
		err = json.Unmarshal(b, &res)
	}
	if err != nil {
		return map[string]any{"sklearn": "failed: " + err.Error()}
	}
	for _, v := range res {
		if m, ok := v.(map[string]any); ok {
			for k, f := range m {
				if x, ok := f.(float64); ok {
					m[k] = round(x, 4)
				}
			}
		}
	}
	if v, ok := res["numpy_xtx_s"].(float64); ok {
		res["numpy_xtx_s"] = round(v, 4)
	}
	return res
}
