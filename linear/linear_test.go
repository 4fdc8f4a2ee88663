package linear

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/blob/memblob"
	"github.com/wrenml/wren/internal/npy"
)

// randomProblem makes n x d features (sparse when density < 1) and labels
// that depend on them.
func randomProblem(n, d, k int, density float64, seed uint64) ([]float64, []int32) {
	r := rand.New(rand.NewPCG(seed, 11))
	x := make([]float64, n*d)
	y := make([]int32, n)
	proto := make([]float64, k*d)
	for i := range proto {
		proto[i] = r.NormFloat64()
	}
	for i := range n {
		c := r.IntN(k)
		y[i] = int32(c)
		for j := range d {
			if r.Float64() < density {
				x[i*d+j] = proto[c*d+j] + r.NormFloat64()
			}
		}
	}
	return x, y
}

// closedForm solves ridge directly: centre, (Xc'Xc + lambda I) W = Xc'Yc.
func closedForm(x []float64, y []int32, n, d, k int, lambda float64) ([]float64, []float64) {
	X := mat.NewDense(n, d, append([]float64(nil), x...))
	Y := mat.NewDense(n, k, nil)
	for i, c := range y {
		Y.Set(i, int(c), 1)
	}
	mx := make([]float64, d)
	my := make([]float64, k)
	for j := range d {
		mx[j] = mat.Sum(X.ColView(j)) / float64(n)
	}
	for c := range k {
		my[c] = mat.Sum(Y.ColView(c)) / float64(n)
	}
	for i := range n {
		for j := range d {
			X.Set(i, j, X.At(i, j)-mx[j])
		}
		for c := range k {
			Y.Set(i, c, Y.At(i, c)-my[c])
		}
	}
	var a mat.Dense
	a.Mul(X.T(), X)
	for j := range d {
		a.Set(j, j, a.At(j, j)+lambda)
	}
	var b, w mat.Dense
	b.Mul(X.T(), Y)
	if err := w.Solve(&a, &b); err != nil {
		panic(err)
	}
	bias := make([]float64, k)
	for c := range k {
		bias[c] = my[c]
		for j := range d {
			bias[c] -= mx[j] * w.At(j, c)
		}
	}
	return w.RawMatrix().Data, bias
}

func TestRidgeClosedForm(t *testing.T) {
	for _, density := range []float64{1, 0.1} { // dense and compressed-row paths
		t.Run(fmt.Sprint("density=", density), func(t *testing.T) {
			const n, d, k = 300, 12, 3
			x, y := randomProblem(n, d, k, density, 1)
			ds, err := FromDense(x, d, y, k)
			if err != nil {
				t.Fatal(err)
			}
			lambdas := []float64{0.01, 1, 100}
			fit, err := Ridge(context.Background(), ds, RidgeOptions{Lambdas: lambdas})
			if err != nil {
				t.Fatal(err)
			}
			for i, l := range lambdas {
				w, b := closedForm(x, y, n, d, k, l)
				m := fit.Models[i]
				for j := range w {
					if math.Abs(m.W[j]-w[j]) > 1e-8 {
						t.Fatalf("lambda %g: W[%d] = %.12g, closed form %.12g", l, j, m.W[j], w[j])
					}
				}
				for c := range b {
					if math.Abs(m.B[c]-b[c]) > 1e-8 {
						t.Fatalf("lambda %g: b[%d] = %.12g, closed form %.12g", l, c, m.B[c], b[c])
					}
				}
			}
			if fit.Best == nil || fit.Accuracy[0] < 0.5 {
				t.Fatalf("best %v, accuracies %v", fit.BestLambda, fit.Accuracy)
			}
		})
	}
}

func TestRidgeStandardizeAndStream(t *testing.T) {
	ctx := context.Background()
	const n, d, k = 200, 6, 4
	x, y := randomProblem(n, d, k, 1, 2)
	for i := range n {
		x[i*d] *= 1000 // a feature on another scale
	}
	mem, _ := FromDense(x, d, y, k)
	// The same data as featurize shards in a store.
	st := memblob.New()
	for s, lo := 0, 0; lo < n; s, lo = s+1, lo+70 {
		hi := min(lo+70, n)
		writeShard(t, st, "feat/", s, x[lo*d:hi*d], y[lo:hi], d)
	}
	blob.PutBytes(ctx, st, "feat/classes.txt", []byte("a\nb\nc\nd\n"), blob.PutOptions{})
	ds, err := Load(ctx, st, "feat")
	if err != nil {
		t.Fatal(err)
	}
	if ds.N != n || ds.Dim != d || ds.Classes != k || strings.Join(ds.ClassNames, "") != "abcd" {
		t.Fatalf("loaded %d x %d, %d classes %v", ds.N, ds.Dim, ds.Classes, ds.ClassNames)
	}
	opts := RidgeOptions{Lambdas: []float64{0.5, 5}, Standardize: true}
	a, err := Ridge(ctx, mem, opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Ridge(ctx, ds, opts)
	if err != nil {
		t.Fatal(err)
	}
	for i := range a.Models {
		for j := range a.Models[i].W {
			if math.Abs(a.Models[i].W[j]-b.Models[i].W[j]) > 1e-6*math.Max(1, math.Abs(a.Models[i].W[j])) {
				t.Fatalf("streamed fit differs: %g vs %g", a.Models[i].W[j], b.Models[i].W[j])
			}
		}
	}
	// Standardisation changes the solution (the penalty sees unit-variance
	// features), and predictions still work on raw features.
	plain, _ := Ridge(ctx, mem, RidgeOptions{Lambdas: []float64{0.5}})
	if plain.Models[0].W[0] == a.Models[0].W[0] {
		t.Fatal("Standardize had no effect")
	}
	if acc := a.Best.Evaluate(mem).Accuracy; acc < 0.6 {
		t.Fatalf("accuracy %v", acc)
	}
}

func writeShard(t *testing.T, st blob.Store, prefix string, i int, x []float64, y []int32, d int) {
	t.Helper()
	ctx := context.Background()
	x32 := make([]float32, len(x))
	for j, v := range x {
		x32[j] = float32(v)
	}
	base := fmt.Sprintf("%sshard-%05d", prefix, i)
	var b bytes.Buffer
	npy.Write(&b, x32, len(y), d)
	blob.PutBytes(ctx, st, base+".npy", b.Bytes(), blob.PutOptions{})
	b.Reset()
	npy.Write(&b, y)
	blob.PutBytes(ctx, st, base+".labels.npy", b.Bytes(), blob.PutOptions{})
	blob.PutBytes(ctx, st, base+".json", fmt.Appendf(nil, `{"images": %d, "dim": %d}`, len(y), d), blob.PutOptions{})
}

func TestLogisticGradient(t *testing.T) {
	const n, d, k = 50, 5, 3
	x, y := randomProblem(n, d, k, 0.6, 3)
	m := newMatrix(x, n, d)
	m.y = y
	o := newLogisticObjective(m, k, 0.3)
	r := rand.New(rand.NewPCG(4, 4))
	p := make([]float64, d*k+k)
	for i := range p {
		p[i] = r.NormFloat64() * 0.5
	}
	grad := make([]float64, len(p))
	o.gradient(grad, p)
	for i := range p {
		const h = 1e-6
		q := append([]float64(nil), p...)
		q[i] += h
		fp := o.loss(q)
		q[i] -= 2 * h
		fm := o.loss(q)
		num := (fp - fm) / (2 * h)
		if math.Abs(num-grad[i]) > 1e-6*math.Max(1, math.Abs(num)) {
			t.Fatalf("d/dp[%d]: analytic %.9g, finite difference %.9g", i, grad[i], num)
		}
	}
}

func TestLogisticAndSVMLearn(t *testing.T) {
	ctx := context.Background()
	const n, d, k = 600, 20, 4
	x, y := randomProblem(n, d, k, 0.5, 5)
	ds, _ := FromDense(x, d, y, k)
	train, test, err := ds.Split(ctx, 0.75, 1)
	if err != nil {
		t.Fatal(err)
	}
	lg, err := Logistic(ctx, train, LogisticOptions{L2: 1e-3, MaxIter: 200})
	if err != nil {
		t.Fatal(err)
	}
	if lg.Convergence.Iterations == 0 || lg.Convergence.Loss <= 0 {
		t.Fatalf("convergence report: %+v", lg.Convergence)
	}
	sv, err := SVM(ctx, train, SVMOptions{C: 1, MaxEpochs: 200})
	if err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]*Model{"logistic": lg.Model, "svm": sv.Model} {
		e := m.Evaluate(test)
		if e.Err != nil || e.Accuracy < 0.85 {
			t.Fatalf("%s: test accuracy %v, %v", name, e.Accuracy, e.Err)
		}
		if e.TopK(k) != 1 || e.TopK(1) != e.Accuracy {
			t.Fatalf("%s: top-%d %v, top-1 %v vs accuracy %v", name, k, e.TopK(k), e.TopK(1), e.Accuracy)
		}
		total := 0
		for _, row := range e.Confusion {
			for _, v := range row {
				total += v
			}
		}
		if total != test.N {
			t.Fatalf("%s: confusion matrix counts %d of %d", name, total, test.N)
		}
		probs, err := m.PredictProba(ctx, test)
		if err != nil {
			t.Fatal(err)
		}
		var s float64
		for _, v := range probs[:k] {
			s += v
		}
		if math.Abs(s-1) > 1e-12 {
			t.Fatalf("%s: probabilities sum to %v", name, s)
		}
	}
	if lg.Evaluate(test).LogLoss >= math.Log(k) {
		t.Fatalf("logistic log loss %v is no better than chance", lg.Evaluate(test).LogLoss)
	}
}

func TestSaveLoad(t *testing.T) {
	ctx := context.Background()
	x, y := randomProblem(100, 4, 3, 1, 6)
	ds, _ := FromDense(x, 4, y, 3)
	fit, _ := Ridge(ctx, ds, RidgeOptions{Lambdas: []float64{1}})
	st := memblob.New()
	if err := fit.Best.Save(ctx, st, "models/r"); err != nil {
		t.Fatal(err)
	}
	m, err := LoadModel(ctx, st, "models/r")
	if err != nil {
		t.Fatal(err)
	}
	a, _ := fit.Best.Predict(ctx, ds)
	b, _ := m.Predict(ctx, ds)
	if fmt.Sprint(a) != fmt.Sprint(b) || m.Kind != "ridge" || m.Lambda != 1 {
		t.Fatal("loaded model predicts differently")
	}
	st.Put(ctx, "models/r/weights.npy", strings.NewReader("junk"), blob.PutOptions{})
	if _, err := LoadModel(ctx, st, "models/r"); err == nil {
		t.Fatal("corrupt weights accepted")
	}
}

func TestBadInput(t *testing.T) {
	ctx := context.Background()
	x, y := randomProblem(20, 3, 2, 1, 7)
	if _, err := FromDense(nil, 3, nil, 2); !errors.Is(err, ErrEmpty) {
		t.Errorf("empty: %v", err)
	}
	bad := append([]float64(nil), x...)
	bad[7] = math.NaN()
	if _, err := FromDense(bad, 3, y, 2); !errors.Is(err, ErrBadData) || !strings.Contains(err.Error(), "row 2") {
		t.Errorf("NaN: %v", err)
	}
	bad[7] = math.Inf(1)
	if _, err := FromDense(bad, 3, y, 2); !errors.Is(err, ErrBadData) {
		t.Errorf("Inf: %v", err)
	}
	badY := append([]int32(nil), y...)
	badY[3] = 5
	if _, err := FromDense(x, 3, badY, 2); !errors.Is(err, ErrBadLabels) {
		t.Errorf("label out of range: %v", err)
	}
	// Singular at lambda 0: a duplicated column.
	dup := make([]float64, 20*2)
	for i := range 20 {
		dup[i*2], dup[i*2+1] = x[i*3], x[i*3]
	}
	ds, _ := FromDense(dup, 2, y, 2)
	if _, err := Ridge(ctx, ds, RidgeOptions{Lambdas: []float64{0}}); !errors.Is(err, ErrSingular) {
		t.Errorf("singular: %v", err)
	}
	// Shards of different widths.
	st := memblob.New()
	writeShard(t, st, "f/", 0, x[:30], y[:10], 3)
	writeShard(t, st, "f/", 1, x[:20], y[:10], 2)
	if _, err := Load(ctx, st, "f/"); !errors.Is(err, ErrMismatch) {
		t.Errorf("mixed widths: %v", err)
	}
	if _, err := Load(ctx, memblob.New(), "none/"); !errors.Is(err, ErrEmpty) {
		t.Errorf("no shards: %v", err)
	}
	// A NaN inside a shard is found when the fit reads it.
	st2 := memblob.New()
	writeShard(t, st2, "g/", 0, bad[:30], y[:10], 3)
	ds2, err := Load(ctx, st2, "g/")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Ridge(ctx, ds2, RidgeOptions{}); !errors.Is(err, ErrBadData) {
		t.Errorf("NaN in a shard: %v", err)
	}
	// libsvm
	if _, _, err := ReadLibSVM(strings.NewReader("1 3:1 2:5\n"), LibSVMOptions{}); !errors.Is(err, ErrBadData) {
		t.Errorf("descending libsvm indices: %v", err)
	}
	if _, _, err := ReadLibSVM(strings.NewReader("x 1:1\n"), LibSVMOptions{}); !errors.Is(err, ErrBadData) {
		t.Errorf("bad libsvm label: %v", err)
	}
	if _, _, err := ReadLibSVM(strings.NewReader("1 1:nan\n"), LibSVMOptions{}); !errors.Is(err, ErrBadData) {
		t.Errorf("NaN in libsvm: %v", err)
	}
}

func TestLibSVM(t *testing.T) {
	src := "# two classes\n+1 1:0.5 3:2\n-1 2:1 # comment\n+1 3:1\n"
	ds, info, err := ReadLibSVM(strings.NewReader(src), LibSVMOptions{})
	if err != nil {
		t.Fatal(err)
	}
	labels := info.Labels
	if ds.N != 3 || ds.Dim != 3 || ds.Classes != 2 || labels[0] != -1 || labels[1] != 1 || info.ZeroBased {
		t.Fatalf("%d x %d, %d classes, labels %v, zero-based %v", ds.N, ds.Dim, ds.Classes, labels, info.ZeroBased)
	}
	if ds.mem.x[2] != 2 || ds.mem.y[0] != 1 || ds.mem.y[1] != 0 {
		t.Fatalf("parsed %v %v", ds.mem.x, ds.mem.y)
	}
}

func TestSVMSquaredHinge(t *testing.T) {
	ctx := context.Background()
	const n, d, k = 400, 10, 3
	x, y := randomProblem(n, d, k, 0.7, 9)
	ds, _ := FromDense(x, d, y, k)
	train, test, _ := ds.Split(ctx, 0.75, 2)
	sq, err := SVM(ctx, train, SVMOptions{C: 1, SquaredHinge: true, MaxEpochs: 300})
	if err != nil {
		t.Fatal(err)
	}
	hi, _ := SVM(ctx, train, SVMOptions{C: 1, MaxEpochs: 300})
	if acc := sq.Evaluate(test).Accuracy; acc < 0.85 {
		t.Fatalf("squared hinge accuracy %v", acc)
	}
	same := true
	for i := range sq.W {
		if sq.W[i] != hi.W[i] {
			same = false
		}
	}
	if same {
		t.Fatal("squared hinge gave the hinge solution")
	}
}
