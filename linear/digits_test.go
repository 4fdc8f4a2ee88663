//go:build !race

package linear

import (
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"
)

// TestDigitsLikeScikitLearn reads files written by scikit-learn's
// dump_svmlight_file (zero-based, comment header) and fits the same model
// as scikit-learn's LogisticRegression(C=1) on them: the test accuracy
// matches scikit-learn's 459 of 497 (testdata/README.md).
func TestDigitsLikeScikitLearn(t *testing.T) {
	read := func(name string, opts LibSVMOptions) (*Dataset, *LibSVMInfo) {
		f, err := os.Open(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		ds, info, err := ReadLibSVM(f, opts)
		if err != nil {
			t.Fatal(err)
		}
		return ds, info
	}
	// Auto-detection: digits never use feature 0 (a blank border pixel),
	// so, as in scikit-learn, the file looks one-based; Dim and Base say
	// otherwise.
	_, auto := read("digits-train.svmlight", LibSVMOptions{})
	if auto.ZeroBased {
		t.Fatal("no index 0 in the file, yet detected as zero-based")
	}
	opts := LibSVMOptions{Dim: 64, Base: ZeroBased}
	train, info := read("digits-train.svmlight", opts)
	test, _ := read("digits-test.svmlight", opts)
	if train.N != 1300 || test.N != 497 || train.Classes != 10 || !info.ZeroBased || info.Labels[9] != 9 {
		t.Fatalf("train %d x %d (%d classes), test %d", train.N, train.Dim, train.Classes, test.N)
	}
	// scikit-learn minimises C sum loss + |W|^2/2; ours (1/n) sum loss +
	// (L2/2)|W|^2: L2 = 1/(C n). With the default preconditioning (feature
	// scaling that keeps the problem) and without it: the same fit.
	for _, noScale := range []bool{false, true} {
		fit, err := Logistic(context.Background(), train, LogisticOptions{L2: 1.0 / 1300, NoScale: noScale, MaxIter: 10000, GradTol: 1e-9})
		if err != nil {
			t.Fatal(err)
		}
		ev := fit.Evaluate(test)
		right := int(math.Round(ev.Accuracy * 497))
		t.Logf("NoScale %v: test accuracy %.7f (%d of 497), scikit-learn 0.9235412 (459); %+v", noScale, ev.Accuracy, right, fit.Convergence)
		if right < 458 || right > 460 {
			t.Fatalf("NoScale %v: %d of 497 right, scikit-learn 459", noScale, right)
		}
	}
}
