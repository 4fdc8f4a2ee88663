package sgd

import (
	"context"
	"encoding/json"
	"time"

	"github.com/wrenml/wren/blob"
)

// RunsPrefix is where a HOGWILD! run records its progress in the
// executor's store while it trains: RunsPrefix + <run ID> + ".json", a
// RunRecord rewritten at every evaluation and at the end (wren ui shows
// it).
const RunsPrefix = "sgd/runs/"

// RunRecord is a training run's progress.
type RunRecord struct {
	Run               string        `json:"run"`
	Model             string        `json:"model"`
	Kind              string        `json:"kind"` // "linear" or "factorization"
	Loss              string        `json:"loss,omitempty"`
	Workers           int           `json:"workers"`
	Epochs            int           `json:"epochs"`
	State             string        `json:"state"` // "running", "done" or "failed"
	Error             string        `json:"error,omitempty"`
	Started           time.Time     `json:"started"`
	Updated           time.Time     `json:"updated"`
	Curve             []Point       `json:"curve"`
	WorkerStats       []WorkerStats `json:"worker_stats"`
	Examples          int64         `json:"examples"`
	ExamplesPerSecond float64       `json:"examples_per_s"`
}

// writeRecord writes rec; a failure is only logged by the caller.
func writeRecord(ctx context.Context, st blob.Store, rec RunRecord) error {
	rec.Updated = time.Now()
	if rec.Curve == nil {
		rec.Curve = []Point{}
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return blob.PutBytes(ctx, st, RunsPrefix+rec.Run+".json", b, blob.PutOptions{})
}
