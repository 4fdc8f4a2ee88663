package main

import (
	"slices"
	"testing"
)

// TestCheckpointLayout: a trial's checkpoint keeps the learning rate's
// step with the model; an older one (the values alone) reads with step 0
// and says so.
func TestCheckpointLayout(t *testing.T) {
	v := []float64{1.5, -2, 0}
	step, got, ok := decodeCheckpoint(encodeCheckpoint(1234, v))
	if !ok || step != 1234 || !slices.Equal(got, v) {
		t.Fatalf("round trip: %d %v %v", step, got, ok)
	}
	old := encodeCheckpoint(0, v)[16:]
	step, got, ok = decodeCheckpoint(old)
	if ok || step != 0 || !slices.Equal(got, v) {
		t.Fatalf("an older checkpoint: %d %v %v", step, got, ok)
	}
	if _, got, ok := decodeCheckpoint(nil); ok || len(got) != 0 {
		t.Fatal("an empty checkpoint")
	}
}
