//go:build !race

// Training on MNIST is ten times slower under the race detector; make test
// runs this file in its race-free run (the names match MNIST).

package main

import (
	"encoding/json"
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
