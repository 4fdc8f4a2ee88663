//go:build !race

package sgd

import (
	"context"
	"testing"

	"github.com/wrenml/wren/internal/redisserver"
	"github.com/wrenml/wren/internal/testenv"
	"github.com/wrenml/wren/ps"
)

// TestSparseRecovery trains logistic regression with HOGWILD!'s sparse
// updates on a generated problem of 1M features (50 non-zeros an example)
// over 2 Redis shards, and checks that the learned model recovers the
// hidden model's sign on its support.
func TestSparseRecovery(t *testing.T) {
	ctx := context.Background()
	ex := executor(t, 2)
	blockSize := 64
	servers := testenv.StartRedis(t, 2, redisserver.Options{})
	client, err := ps.Open(ctx, ps.Options{Addrs: testenv.Addrs(servers), BlockSize: blockSize})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	spec := SparseSpec{Features: 1 << 20, Examples: 20000, NonZeros: 50, Support: 500, Noise: 0.1, Seed: 7}
	hidden, err := GenerateSparse(ctx, ex.Store(), "sparse", spec)
	if err != nil {
		t.Fatal(err)
	}
	cfg := Options{Model: "sparse", Loss: Logistic{}, Data: "sparse", Features: spec.Features, Workers: 2, Epochs: 5, BatchSize: 50, LocalSteps: 2, LR: Constant(0.5), Seed: 1}
	run, err := Train(ctx, ex, client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	lm, err := run.Model(ctx)
	if err != nil {
		t.Fatal(err)
	}
	agree := 0
	for j, w := range hidden {
		if (lm.W[j*2+1] > 0) == (w > 0) {
			agree++
		}
	}
	frac := float64(agree) / float64(len(hidden))
	t.Logf("%v; sign recovered on %d of %d support features (%.3f); workers %+v", run, agree, len(hidden), frac, run.Workers)
	if frac < 0.95 {
		t.Fatalf("sign recovered on %.3f of the support, want 0.95", frac)
	}
}
