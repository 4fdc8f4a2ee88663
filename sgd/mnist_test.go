//go:build !race

// The race detector slows these numeric loops tenfold; make test runs this
// file in a second, race-free go test run.

package sgd

import (
	"context"
	"testing"

	"github.com/wrenml/wren/internal/mnist"
)

// TestHogwildMNIST: softmax on MNIST with 4 HOGWILD! workers ends within
// half a point of the sequential baseline after the same epochs.
func TestHogwildMNIST(t *testing.T) {
	ctx := context.Background()
	train, test, err := mnist.Datasets()
	if err != nil {
		t.Fatal(err)
	}
	ex := executor(t, 4)
	client := psClient(t, 1)
	if err := WriteShards(ctx, ex.Store(), "mnist", train, 12); err != nil {
		t.Fatal(err)
	}
	cfg := Options{Model: "mnist", Loss: Softmax{Classes: 10}, Data: "mnist", Workers: 4, Epochs: 3, BatchSize: 100, LocalSteps: 4,
		LR: InvScaling(1.0, 0.3), L2: 1e-5, Seed: 1, Eval: test}
	seq, err := TrainLocal(ctx, ex.Store(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	hw, err := Train(ctx, ex, client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("sequential: %v\nhogwild:    %v", seq, hw)
	if hw.Final.Accuracy < 0.9 || hw.Final.Accuracy < seq.Final.Accuracy-0.005 {
		t.Fatalf("HOGWILD! accuracy %.4f, sequential %.4f: want within 0.005", hw.Final.Accuracy, seq.Final.Accuracy)
	}
}
