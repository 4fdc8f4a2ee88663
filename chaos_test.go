package wren_test

import (
	"context"
	"hash/fnv"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/blob/fileblob"
	"github.com/wrenml/wren/internal/testenv"
)

// Chaotic takes 5-25 ms, a few calls 250 ms (stragglers for speculation),
// and returns its input squared.
var Chaotic = wren.Register("test.chaotic", func(ctx context.Context, x int) (int, error) {
	h := fnv.New32a()
	h.Write([]byte{byte(x), byte(x >> 8)})
	d := time.Duration(5+h.Sum32()%20) * time.Millisecond
	if x%97 == 13 {
		d = 250 * time.Millisecond
	}
	select {
	case <-time.After(d):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return x * x, nil
})

// TestChaos runs the whole map path through faults at once: 500 calls with
// speculation, worker processes SIGKILLed at random (sometimes all of
// them), and a store that fails a few percent of puts (before or after
// storing) and gets and stalls others. Every call's output must be there
// exactly once, in input order, without a hang, and no worker process may
// outlive Close.
func TestChaos(t *testing.T) {
	dir := t.TempDir()
	url := testenv.FaultURL("file://"+filepath.Join(dir, "store"), testenv.Faults{
		Put: 0.02, PutAfter: 0.02, PutExists: 0.02, Get: 0.03,
		Delay: 0.05, MaxDelay: 40 * time.Millisecond,
	})
	ex, err := wren.NewExecutor(context.Background(), wren.Options{
		Store: url, Parallelism: 2, Retries: 12, Speculation: true, Progress: wren.ProgressOff,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	job, err := Chaotic.Map(ctx, ex, squares(500))
	if err != nil {
		t.Fatal(err)
	}

	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	kills, rounds := 0, 0
killing:
	for {
		select {
		case <-job.Done():
			break killing
		case <-time.After(time.Duration(150+rng.IntN(250)) * time.Millisecond):
		}
		pids := testenv.Children(t)
		if len(pids) == 0 {
			continue
		}
		if rng.IntN(3) == 0 {
			for _, pid := range pids { // all of them
				if syscall.Kill(pid, syscall.SIGKILL) == nil {
					kills++
				}
			}
		} else if syscall.Kill(pids[rng.IntN(len(pids))], syscall.SIGKILL) == nil {
			kills++
		}
		rounds++
	}
	got, err := job.Results(ctx)
	if ctx.Err() != nil {
		t.Fatal("the job hung")
	}
	if err != nil {
		t.Fatalf("after %d kills: %v", kills, err)
	}
	checkSquares(t, got, 500)
	// Checked through the plain directory, without injected faults.
	clean, err := fileblob.Open(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	assertExactlyOnce(t, clean, job.ID(), 500)
	st := job.Stats()
	workers := map[string]bool{}
	for _, c := range st.PerCall {
		workers[c.Worker] = true
	}
	t.Logf("%d processes killed in %d rounds; %d retried, %d speculative; %d workers served", kills, rounds, st.Retried, st.Speculative, len(workers))

	if err := ex.Close(); err != nil {
		t.Fatal(err)
	}
	if left := testenv.Children(t); len(left) != 0 {
		slices.Sort(left)
		t.Fatalf("worker processes left after Close: %v", left)
	}
}
