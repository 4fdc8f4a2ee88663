package awslambda_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/featurize"
	"github.com/wrenml/wren/internal/redisserver"
	"github.com/wrenml/wren/internal/testenv"
	"github.com/wrenml/wren/linear"
	"github.com/wrenml/wren/mapreduce"
	"github.com/wrenml/wren/ps"
	"github.com/wrenml/wren/sgd"
	"github.com/wrenml/wren/tune"
	"github.com/wrenml/wren/worker/awslambda"
	"github.com/wrenml/wren/worker/awslambda/internal/e2e"
)

// lambdaTimeout is the function timeout of the workloads' emulators, short
// so that HOGWILD! training outlives it several times over.
const lambdaTimeout = 4 * time.Second

// TestWorkloadsOnLambda runs the design card's uses end to end on the
// Lambda backend: three Runtime Interface Emulators running the generic
// runtime, which fetches the job's binary by hash from the S3 store
// (gofakes3 in make test, SeaweedFS in make test-s3) and runs its worker
// process: featurizing an image tree, a sweep with ASHA and checkpoints,
// HOGWILD! training against a redis-server in slices of a short function
// timeout, and a word count with its shuffle in the store.
func TestWorkloadsOnLambda(t *testing.T) {
	e := setup(t, 3, "AWS_LAMBDA_FUNCTION_TIMEOUT="+strconv.Itoa(int(lambdaTimeout/time.Second)))
	ex := e.executor(t, awslambda.Options{FunctionTimeout: lambdaTimeout}, wren.Options{})
	ctx := ctxFor(t)
	bucket := strings.TrimPrefix(e.store[:strings.Index(e.store, "?")], "s3://")
	bucket = bucket[:strings.Index(bucket, "/")]
	storeAt := func(prefix string) string {
		return "s3://" + bucket + "/" + prefix + e.store[strings.Index(e.store, "?"):]
	}

	t.Run("featurize", func(t *testing.T) {
		dir := t.TempDir()
		if err := featurize.Synthesize(dir, 3, 10, 1); err != nil {
			t.Fatal(err)
		}
		in, err := wren.OpenStore(ctx, storeAt("inputs/tree"))
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
			if err != nil || fi.IsDir() {
				return err
			}
			b, _ := os.ReadFile(p)
			rel, _ := filepath.Rel(dir, p)
			return blob.PutBytes(ctx, in, filepath.ToSlash(rel), b, blob.PutOptions{})
		})
		rep, err := featurize.Run(ctx, ex, featurize.Options{Input: storeAt("inputs/tree"), Output: storeAt("features"), Size: 64, ImagesPerCall: 8})
		if err != nil {
			t.Fatal(err)
		}
		if rep.Images != 30 || rep.Shards != 4 || len(rep.Failed) != 0 || len(rep.CallFails) != 0 || len(rep.Classes) != 3 {
			t.Fatalf("report %+v", rep)
		}
		out, err := wren.OpenStore(ctx, storeAt("features"))
		if err != nil {
			t.Fatal(err)
		}
		defer out.Close()
		ds, err := linear.Load(ctx, out, "")
		if err != nil || ds.N != 30 || ds.Dim != rep.Dim || ds.Classes != 3 {
			t.Fatalf("features: %+v, %v", ds, err)
		}
	})

	t.Run("sweep", func(t *testing.T) {
		space := tune.Space{"lr": tune.Grid(0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.45), "target": tune.Grid(3)}
		res, err := tune.Sweep(ctx, ex, e2e.Trial, space, tune.Options{Metric: "loss", Mode: tune.Min, Prefix: "sweeps/e2e",
			ASHA: &tune.ASHA{MinBudget: 1, MaxBudget: 9, Reduction: 3}})
		if err != nil {
			t.Fatal(err)
		}
		best := res.Best()
		if best == nil || best.Budget != 9 || len(res.Errors()) != 0 {
			t.Fatalf("best %+v, errors %v", best, res.Errors())
		}
		// Promoted trials continued from their rung's checkpoint in the
		// store: budget 9 took 6 steps of its own, budget 3 two.
		for _, tr := range res.Trials {
			want := map[int]float64{1: 1, 3: 2, 9: 6}[tr.Budget]
			if tr.Metrics["steps"] != want {
				t.Fatalf("trial %s at budget %d took %v steps, want %v", tr.Label, tr.Budget, tr.Metrics["steps"], want)
			}
		}
		// Asynchronous promotion may promote more than a third of a rung
		// (a trial promoted early need not stay in the top third), never
		// fewer: at least 9 runs of 1, 3 of 2 more and 1 of 6 more.
		if res.BudgetUnits < 9+3*2+6 || res.CostUSD <= 0 {
			t.Fatalf("budget units %d, cost $%v", res.BudgetUnits, res.CostUSD)
		}
	})

	t.Run("hogwild", func(t *testing.T) {
		const password = "the-servers-own"
		servers := testenv.StartRedis(t, 1, redisserver.Options{Password: password})
		client, err := ps.Open(ctx, ps.Options{Addrs: testenv.Addrs(servers), Password: password})
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		ds := separable(6000, 20)
		if err := sgd.WriteShards(ctx, ex.Store(), "hogwild/data", ds, 6); err != nil {
			t.Fatal(err)
		}
		rc := redis.NewClient(&redis.Options{Addr: testenv.Addrs(servers)[0], Password: password})
		defer rc.Close()
		before := connectionsReceived(t, rc)
		run, err := sgd.Train(ctx, ex, client, sgd.Options{Model: "lambda", Loss: sgd.Logistic{}, Data: "hogwild/data", Workers: 3,
			Epochs: 1 << 20, Duration: 3 * lambdaTimeout, BatchSize: 20, Eval: ds, Checkpoint: "hogwild/ckpt"})
		if err != nil {
			t.Fatal(err)
		}
		conns := connectionsReceived(t, rc) - before
		t.Logf("%v; %d Redis connections received", run, conns)
		calls := 0
		for _, w := range run.Workers {
			calls += w.Calls
			if w.Calls < 3 {
				t.Errorf("worker %d trained in %d calls: a run of 3 function timeouts takes at least 3", w.Worker, w.Calls)
			}
		}
		if run.Final.Accuracy < 0.95 {
			t.Errorf("accuracy %.3f", run.Final.Accuracy)
		}
		if run.Billing == nil || run.Billing.Invocations < int64(calls) || run.Billing.USD <= 0 {
			t.Errorf("billing %+v for %d calls", run.Billing, calls)
		}
		// Warm containers keep their connections: far fewer than one
		// client's pool per call.
		if conns > int64(4*len(e.emus)+8) {
			t.Errorf("%d Redis connections for %d calls on %d containers", conns, calls, len(e.emus))
		}
		if _, err := ex.Store().Stat(ctx, "hogwild/ckpt/sgd.json"); err != nil {
			t.Errorf("no checkpoint state: %v", err)
		}
	})

	t.Run("wordcount", func(t *testing.T) {
		in, err := wren.OpenStore(ctx, storeAt("inputs/text"))
		if err != nil {
			t.Fatal(err)
		}
		defer in.Close()
		want := map[string]int{}
		rng := rand.New(rand.NewPCG(3, 3))
		for f := range 5 {
			var b strings.Builder
			for range 20000 {
				w := fmt.Sprintf("w%d", int(math.Floor(1/(rng.Float64()+0.002))))
				want[w]++
				b.WriteString(w)
				b.WriteByte(' ')
			}
			if err := blob.PutBytes(ctx, in, fmt.Sprintf("part-%d.txt", f), []byte(b.String()), blob.PutOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		res, err := mapreduce.WordCount(ctx, ex, storeAt("inputs/text"), 3, "")
		if err != nil {
			t.Fatal(err)
		}
		got, err := res.Collect(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("%d words, want %d", len(got), len(want))
		}
		for w, n := range want {
			if got[w] != n {
				t.Fatalf("%q counted %d, want %d", w, got[w], n)
			}
		}
		if s := res.Stats(); s.Billing == nil || s.Billing.Invocations == 0 {
			t.Fatalf("stats %+v", s)
		}
	})
	var fetched int
	for _, em := range e.emus {
		fetched += strings.Count(em.Output(), "wren-runtime: fetched code")
	}
	if fetched > len(e.emus) {
		t.Errorf("the containers fetched the job's binary %d times (3 containers, one binary)", fetched)
	}
}

// separable is a binary problem of n examples and d features.
func separable(n, d int) *linear.Dataset {
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float64, n*d)
	y := make([]int32, n)
	for i := range n {
		s := 0.0
		for j := range d {
			x[i*d+j] = rng.NormFloat64()
			s += x[i*d+j] * float64(j%3-1)
		}
		if s > 0 {
			y[i] = 1
		}
	}
	ds, err := linear.FromDense(x, d, y, 2)
	if err != nil {
		panic(err)
	}
	return ds
}

func connectionsReceived(t *testing.T, c *redis.Client) int64 {
	t.Helper()
	info, err := c.Info(context.Background(), "stats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "total_connections_received:"); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	t.Fatal("no total_connections_received in INFO")
	return 0
}
