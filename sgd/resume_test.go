package sgd

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/ps"
)

// TestResumeContinuesTheRun: a run checkpointed after 2 epochs and resumed
// to 4 ends where a straight run of 4 epochs ends: the same steps (the
// learning rate's schedule went on), every example trained 4 times.
func TestResumeContinuesTheRun(t *testing.T) {
	ctx := context.Background()
	ex := executor(t, 2)
	client := psClient(t, 1)
	ds := problem(2000, 8, 3, 6)
	if err := WriteShards(ctx, ex.Store(), "resume", ds, 4); err != nil {
		t.Fatal(err)
	}
	cfg := Options{Model: "straight", Loss: Softmax{Classes: 3}, Data: "resume", Workers: 2, Epochs: 4, BatchSize: 25, Seed: 3, Eval: ds}
	straight, err := Train(ctx, ex, client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Model, cfg.Epochs, cfg.Checkpoint = "halves", 2, "ckpt/halves"
	first, err := Train(ctx, ex, client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Epochs, cfg.Checkpoint = 4, ""
	second, err := Resume(ctx, ex, client, "ckpt/halves", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if second.Run != first.Run || second.Steps != straight.Steps || held(second) != 4*int64(ds.N) || second.Examples != 2*int64(ds.N) {
		t.Fatalf("resumed: run %s (first %s), %d steps (straight %d), %d examples held, %d trained; want %d held, %d trained",
			second.Run, first.Run, second.Steps, straight.Steps, held(second), second.Examples, 4*ds.N, 2*ds.N)
	}
	if second.Final.Accuracy < straight.Final.Accuracy-0.03 {
		t.Fatalf("accuracy: resumed %.3f, straight %.3f", second.Final.Accuracy, straight.Final.Accuracy)
	}
	// A checkpoint whose driver died after it: the notes of the positions
	// after it are dropped with the updates the restore takes back.
	m, _ := client.Model(ctx, "halves")
	m.SetNote(ctx, noteName(first.Run, 0), []byte(`{"run":"`+first.Run+`","step":99999}`))
	cfg.Model = "halves"
	third, err := Resume(ctx, ex, client, "ckpt/halves", cfg)
	if err != nil || third.Steps != straight.Steps {
		t.Fatalf("resumed past a stale note: %d steps (want %d), %v", third.Steps, straight.Steps, err)
	}
}

// TestResumeBadCheckpoints: a checkpoint of other data or another loss is
// refused naming both; one without positions (written before they were
// kept) trains with the schedule from 0 and says so.
func TestResumeBadCheckpoints(t *testing.T) {
	ctx := context.Background()
	ex := executor(t, 2)
	client := psClient(t, 1)
	for _, p := range []string{"a", "b"} {
		if err := WriteShards(ctx, ex.Store(), "data-"+p, problem(400, 5, 1, 1), 2); err != nil {
			t.Fatal(err)
		}
	}
	cfg := Options{Model: "m", Loss: Logistic{}, Data: "data-a", Workers: 2, Checkpoint: "ckpt/a", Seed: 1}
	if _, err := Train(ctx, ex, client, cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Checkpoint = ""
	other := cfg
	other.Data = "data-x"
	if err := WriteShards(ctx, ex.Store(), "data-x", problem(300, 5, 1, 1), 2); err != nil {
		t.Fatal(err)
	}
	_, err := Resume(ctx, ex, client, "ckpt/a", other)
	if !errors.Is(err, ErrPosition) || !strings.Contains(err.Error(), `"data-a"`) || !strings.Contains(err.Error(), `"data-x"`) {
		t.Fatalf("other data: %v", err)
	}
	// The same data under another prefix is the same data.
	same := cfg
	same.Data = "data-b"
	if _, err := Resume(ctx, ex, client, "ckpt/a", same); err != nil {
		t.Fatalf("the same shards under another prefix: %v", err)
	}
	hinge := cfg
	hinge.Loss = Hinge{}
	if _, err := Resume(ctx, ex, client, "ckpt/a", hinge); !errors.Is(err, ErrPosition) || !strings.Contains(err.Error(), "logistic") {
		t.Fatalf("another loss: %v", err)
	}
	for name, body := range map[string]string{"corrupt": `{"run": 3`, "foreign position": `{"run":"r1","data":"x","workers":1,"loss":"logistic","positions":[{"run":"r2","data":"x"}]}`} {
		blob.PutBytes(ctx, ex.Store(), "ckpt/"+name+"/sgd.json", []byte(body), blob.PutOptions{})
		m, _ := client.Model(ctx, "m")
		m.Checkpoint(ctx, ex.Store(), "ckpt/"+name)
		if _, err := Resume(ctx, ex, client, "ckpt/"+name, cfg); !errors.Is(err, ErrPosition) {
			t.Errorf("%s: %v", name, err)
		}
	}
	// An older checkpoint: the model only.
	m, _ := client.Model(ctx, "m")
	if err := m.Checkpoint(ctx, ex.Store(), "ckpt/old"); err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	cfg.Logger = slog.New(slog.NewTextHandler(&log, nil))
	r, err := Resume(ctx, ex, client, "ckpt/old", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "starts at 0") || r.Steps == 0 {
		t.Fatalf("an older checkpoint: %d steps, log %q", r.Steps, log.String())
	}
}

// TestModelKind: a model of the same size but another loss or label set is
// refused (a logistic model of 29 features and a 3-class softmax of 9 both
// hold 30 values).
func TestModelKind(t *testing.T) {
	ctx := context.Background()
	ex := executor(t, 1)
	client := psClient(t, 1)
	WriteShards(ctx, ex.Store(), "wide", problem(100, 29, 1, 1), 1)
	WriteShards(ctx, ex.Store(), "narrow", problem(100, 9, 3, 1), 1)
	if _, err := Train(ctx, ex, client, Options{Model: "k", Loss: Logistic{}, Data: "wide"}); err != nil {
		t.Fatal(err)
	}
	_, err := Train(ctx, ex, client, Options{Model: "k", Loss: Softmax{Classes: 3}, Data: "narrow"})
	if !errors.Is(err, ErrModelKind) || !strings.Contains(err.Error(), "logistic") || !strings.Contains(err.Error(), "softmax") {
		t.Fatalf("another kind of the same size: %v", err)
	}
	// Deleted and trained as another kind: a new model, no stale note.
	if err := client.Delete(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if _, err := Train(ctx, ex, client, Options{Model: "k", Loss: Softmax{Classes: 3}, Data: "narrow"}); err != nil {
		t.Fatalf("after Delete: %v", err)
	}
	// A model made with ps directly is taken as it is, and noted.
	if _, err := client.Create(ctx, "raw", 30, ps.Zeros); err != nil {
		t.Fatal(err)
	}
	if _, err := Train(ctx, ex, client, Options{Model: "raw", Loss: Logistic{}, Data: "wide"}); err != nil {
		t.Fatal(err)
	}
}

// TestSliceBounds: a slice too short for one push window is a clear error
// rather than calls that never make progress; a negative one means none.
func TestSliceBounds(t *testing.T) {
	ctx := context.Background()
	ex := executor(t, 1)
	client := psClient(t, 1)
	WriteShards(ctx, ex.Store(), "s", problem(2000, 50, 1, 1), 1)
	_, err := Train(ctx, ex, client, Options{Model: "s1", Loss: Logistic{}, Data: "s", Slice: time.Nanosecond})
	if err == nil || !strings.Contains(err.Error(), "slice") {
		t.Fatalf("a 1 ns slice: %v", err)
	}
	r, err := Train(ctx, ex, client, Options{Model: "s2", Loss: Logistic{}, Data: "s", Slice: -1})
	if err != nil || r.Workers[0].Calls != 1 {
		t.Fatalf("no slices: %v, %+v", err, r)
	}
}

// held is the examples whose updates the server holds, as the workers'
// final positions count them.
func held(r *Result) int64 {
	var n int64
	for _, p := range r.Positions {
		n += p.Examples
	}
	return n
}
