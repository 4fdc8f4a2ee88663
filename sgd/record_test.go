package sgd

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/wrenml/wren/blob"
)

// TestRunRecord: a HOGWILD! run records its progress in the store while it
// trains and its outcome at the end: the curve, every worker's stats and
// the examples the result reports; a failed run says why.
func TestRunRecord(t *testing.T) {
	ctx := context.Background()
	ex := executor(t, 2)
	client := psClient(t, 1)
	ds := problem(4000, 10, 1, 5)
	if err := WriteShards(ctx, ex.Store(), "rec", ds, 4); err != nil {
		t.Fatal(err)
	}
	cfg := Options{Model: "rec", Loss: Logistic{}, Data: "rec", Epochs: 20, BatchSize: 10, LR: Constant(0.1), Seed: 1, Eval: ds, EvalEvery: 20 * time.Millisecond, Workers: 2}
	run, err := Train(ctx, ex, client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := blob.ReadAll(ctx, ex.Store(), RunsPrefix+run.Run+".json")
	if err != nil {
		t.Fatal(err)
	}
	var rec RunRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.State != "done" || rec.Model != "rec" || rec.Kind != "linear" || rec.Loss != "logistic" || rec.Workers != 2 || rec.Epochs != 20 {
		t.Fatalf("record %+v", rec)
	}
	if len(rec.Curve) != len(run.Curve) || len(rec.Curve) < 2 || rec.Curve[len(rec.Curve)-1] != run.Final {
		t.Fatalf("curve: %d points recorded, the run has %d", len(rec.Curve), len(run.Curve))
	}
	if len(rec.WorkerStats) != 2 || rec.Examples != run.Examples || rec.WorkerStats[1].Worker != 1 || rec.Updated.Before(rec.Started) {
		t.Fatalf("stats: %+v (run examples %d)", rec, run.Examples)
	}
	// While a run trains its record says so and grows; cancelled, it
	// records that it failed and why.
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cfg.Model, cfg.Epochs = "rec-long", 100000
	done := make(chan error, 1)
	go func() { _, err := Train(cctx, ex, client, cfg); done <- err }()
	var live RunRecord
	for deadline := time.Now().Add(30 * time.Second); ; {
		for a, err := range ex.Store().List(ctx, RunsPrefix) {
			if err != nil || a.Key == RunsPrefix+run.Run+".json" {
				continue
			}
			if b, err := blob.ReadAll(ctx, ex.Store(), a.Key); err == nil {
				json.Unmarshal(b, &live)
			}
		}
		if live.State == "running" && len(live.Curve) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no live record with a curve: %+v", live)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatal("a cancelled run succeeded")
	}
	b, err = blob.ReadAll(ctx, ex.Store(), RunsPrefix+live.Run+".json")
	if err != nil {
		t.Fatal(err)
	}
	var end RunRecord
	json.Unmarshal(b, &end)
	if end.State != "failed" || end.Error == "" || len(end.Curve) < len(live.Curve) {
		t.Fatalf("cancelled run's record: state %q, error %q, %d points", end.State, end.Error, len(end.Curve))
	}
}
