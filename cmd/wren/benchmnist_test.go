//go:build !race

// Training on MNIST is ten times slower under the race detector; make test
// runs this file in its race-free run (the names match MNIST).

package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestBenchSearchMNIST: wren bench tune -search with its real objective,
// softmax SGD on an MNIST subsample, beside Branin and Hartmann-6.
func TestBenchSearchMNIST(t *testing.T) {
	checkBenchSearch(t, []string{"branin", "hartmann6", "mnist_softmax"}, "-seeds", "1", "-mnist-seeds", "1", "-search-trials", "12")
}

// TestBenchPBTMNIST: wren bench tune -pbt prints the grid's best accuracy and
// epochs beside each PBT run's, and whether PBT reached the grid's best
// with no more epochs (small: one epoch, a population of 2, one run).
func TestBenchPBTMNIST(t *testing.T) {
	out := capture(t, "bench", "tune", "-pbt", "-epochs", "1", "-population", "2", "-pbt-runs", "1", "-parallel", "2")
	var r struct {
		Grid struct {
			Trials, Epochs int
			Best           float64 `json:"best_accuracy"`
		}
		PBT struct {
			Epochs int
			Runs   []struct {
				Best   float64 `json:"best_accuracy"`
				Epochs int
			}
		}
		Reaches *bool `json:"pbt_reaches_grid_with_no_more_epochs"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %q", err, out)
	}
	if r.Grid.Trials != 9 || r.Grid.Epochs != 9 || r.Grid.Best < 0.5 || r.Grid.Best > 1 {
		t.Fatalf("grid: %+v", r.Grid)
	}
	if r.PBT.Epochs != 2 || len(r.PBT.Runs) != 1 || r.PBT.Runs[0].Epochs != 2 || r.PBT.Runs[0].Best < 0.5 || r.PBT.Runs[0].Best > 1 || r.Reaches == nil {
		t.Fatalf("pbt: %+v, reaches %v", r.PBT, r.Reaches)
	}
}

// TestBenchSGDMNIST: wren bench sgd prints, in one run, MNIST softmax
// sequentially and with HOGWILD!, the sparse problem's three HOGWILD! rows
// beside TrainLocal (and scikit-learn, where installed), and matrix
// factorization beside its sequential baseline (small: one epoch, 2
// workers, small sparse and ratings problems).
func TestBenchSGDMNIST(t *testing.T) {
	out := capture(t, "bench", "sgd", "-epochs", "1", "-workers", "2", "-sparse-examples", "2000", "-sparse-features", "5000", "-ratings", "5000")
	type row struct {
		Workers  int
		Rate     float64 `json:"examples_per_s"`
		Accuracy float64 `json:"test_accuracy"`
		TrainAcc float64 `json:"train_accuracy"`
		Epochs   int
		Steps    int     `json:"local_steps"`
		Pushes   int64   `json:"pushes"`
		RMSE     float64 `json:"test_rmse"`
	}
	var r struct {
		Sequential row
		Hogwild    []row
		Sparse     struct {
			Epochs     int
			Sequential row
			Hogwild    row
			Whole      row `json:"hogwild_whole_model"`
			EpochWin   row `json:"hogwild_epoch_windows"`
			Sklearn    any
		}
		Factorization struct {
			Sequential, Hogwild row
			Whole               row     `json:"hogwild_whole_model"`
			Ratio               float64 `json:"rmse_vs_sequential"`
			WholeRatio          float64 `json:"whole_model_rmse_vs_sequential"`
		}
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("%v: %q", err, out)
	}
	if r.Sequential.Epochs != 1 || r.Sequential.Accuracy < 0.85 || len(r.Hogwild) != 1 || r.Hogwild[0].Workers != 2 || r.Hogwild[0].Accuracy < 0.85 || r.Hogwild[0].Rate <= 0 {
		t.Fatalf("MNIST: sequential %+v, HOGWILD! %+v", r.Sequential, r.Hogwild)
	}
	sp := r.Sparse
	for name, h := range map[string]row{"sequential": sp.Sequential, "windows of 8": sp.Hogwild, "whole-model windows": sp.Whole, "epoch windows": sp.EpochWin} {
		if h.Rate <= 0 || h.TrainAcc < 0.9 || h.TrainAcc > 1 {
			t.Errorf("sparse, %s: %+v", name, h)
		}
	}
	// 2,000 examples in minibatches of 10, 5 epochs, 2 workers: 500
	// minibatches each; windows of 128 push 4 times a worker, of 1,024 once.
	if sp.Epochs != 5 || sp.Whole.Steps != 128 || sp.EpochWin.Steps != 1024 || sp.Whole.Pushes < 8 || sp.EpochWin.Pushes < 2 || sp.EpochWin.Pushes >= sp.Whole.Pushes {
		t.Errorf("sparse windows: %+v, %+v", sp.Whole, sp.EpochWin)
	}
	if s, ok := sp.Sklearn.(string); ok && !strings.HasPrefix(s, "skipped: no python3 with scikit-learn") {
		t.Errorf("scikit-learn: %s", s)
	}
	f := r.Factorization
	if f.Sequential.RMSE <= 0 || f.Hogwild.RMSE <= 0 || f.Ratio < 0.9 || f.Ratio > 1.2 || f.Whole.RMSE <= 0 || f.WholeRatio < 0.9 || f.WholeRatio > 1.2 || f.Whole.Steps != 1024 || f.Whole.Pushes >= f.Hogwild.Pushes {
		t.Errorf("factorization: %+v", f)
	}
}
