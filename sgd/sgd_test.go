package sgd

import (
	"bytes"
	"context"
	"encoding/gob"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/internal/redisserver"
	"github.com/wrenml/wren/internal/testenv"
	"github.com/wrenml/wren/job"
	"github.com/wrenml/wren/linear"
	"github.com/wrenml/wren/ps"
)

func TestMain(m *testing.M) {
	wren.Init()
	os.Exit(m.Run())
}

// problem makes a separable dense problem: n examples of d features,
// labels from a hidden linear model over k classes (k = 1: binary 0/1).
func problem(n, d, k int, seed uint64) *linear.Dataset {
	rng := rand.New(rand.NewPCG(seed, 9))
	cls := max(k, 2)
	w := make([]float64, d*cls)
	for i := range w {
		w[i] = rng.NormFloat64()
	}
	x := make([]float64, n*d)
	y := make([]int32, n)
	for i := range n {
		best, bestS := 0, -1e300
		for c := range cls {
			s := 0.0
			for j := range d {
				if c == 0 {
					x[i*d+j] = rng.NormFloat64()
				}
				s += x[i*d+j] * w[j*cls+c]
			}
			if s > bestS {
				best, bestS = c, s
			}
		}
		y[i] = int32(best)
	}
	ds, err := linear.FromDense(x, d, y, cls)
	if err != nil {
		panic(err)
	}
	return ds
}

func executor(t *testing.T, workers int) *wren.Executor {
	ex, err := wren.NewExecutor(context.Background(), wren.Options{Store: t.TempDir(), Parallelism: workers, Progress: wren.ProgressOff})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close() })
	return ex
}

func psClient(t *testing.T, shards int) *ps.Client {
	servers := testenv.StartRedis(t, shards, redisserver.Options{})
	c, err := ps.Open(context.Background(), ps.Options{Addrs: testenv.Addrs(servers)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// TestLossesConverge: each loss separates a small separable problem, in
// the sequential baseline and with two HOGWILD! workers.
func TestLossesConverge(t *testing.T) {
	ctx := context.Background()
	ex := executor(t, 2)
	client := psClient(t, 1)
	for _, c := range []struct {
		loss Loss
		k    int
		lr   Schedule
	}{
		{Logistic{}, 1, InvScaling(0.5, 0.3)},
		{Softmax{Classes: 3}, 3, InvScaling(0.5, 0.3)},
		{Hinge{}, 1, InvScaling(0.1, 0.3)},
		{Squared{}, 1, Constant(0.01)},
	} {
		t.Run(c.loss.Name(), func(t *testing.T) {
			ds := problem(2000, 10, c.k, 3)
			prefix := "data/" + c.loss.Name()
			if err := WriteShards(ctx, ex.Store(), prefix, ds, 4); err != nil {
				t.Fatal(err)
			}
			cfg := Options{Model: c.loss.Name(), Loss: c.loss, Data: prefix, Epochs: 5, BatchSize: 20, LR: c.lr, Seed: 1, Eval: ds, Workers: 2}
			local, err := TrainLocal(ctx, ex.Store(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			hw, err := Train(ctx, ex, client, cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("sequential %v\nhogwild %v", local, hw)
			if local.Final.Accuracy < 0.9 || hw.Final.Accuracy < 0.9 {
				t.Fatalf("accuracy: sequential %.3f, hogwild %.3f; want 0.9", local.Final.Accuracy, hw.Final.Accuracy)
			}
			// The model converts to a linear.Model that agrees.
			lm, err := hw.Model(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if ev := lm.Evaluate(ds); ev.Accuracy < hw.Final.Accuracy-0.02 {
				t.Fatalf("linear.Model accuracy %.3f, run %.3f", ev.Accuracy, hw.Final.Accuracy)
			}
		})
	}
}

// TestBadInput: bad data and bad settings are clear errors.
func TestBadInput(t *testing.T) {
	ctx := context.Background()
	ex := executor(t, 1)
	client := psClient(t, 1)
	st := ex.Store()
	put := func(key, text string) {
		if err := blob.PutBytes(ctx, st, key, []byte(text), blob.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	put("bad/line/a.libsvm", "1 1:0.5\n0 2:x\n")
	put("bad/index/a.libsvm", "1 1:0.5 99:1\n0 2:1\n")
	put("bad/labels/a.libsvm", "1 1:0.5\n7 2:1\n3 1:1\n9 1:2\n")
	ds := problem(200, 5, 1, 1)
	if err := WriteShards(ctx, st, "good", ds, 1); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		cfg  Options
		want string
	}{
		"malformed line":  {Options{Model: "a", Loss: Logistic{}, Data: "bad/line", Features: 10}, "line 2"},
		"index too large": {Options{Model: "b", Loss: Logistic{}, Data: "bad/index", Features: 10}, "beyond dim 10"},
		"labels":          {Options{Model: "c", Loss: Softmax{Classes: 3}, Data: "bad/labels", Features: 10}, "4 label values"},
		"no features":     {Options{Model: "d", Loss: Logistic{}, Data: "bad/line"}, "Options.Features"},
		"diverges":        {Options{Model: "e", Loss: Squared{}, Data: "good", Epochs: 50, LR: Constant(1e6)}, "diverged"},
		"no data":         {Options{Model: "f", Loss: Logistic{}, Data: "nothing"}, "no shards"},
		"bad rate":        {Options{Model: "g", Loss: Logistic{}, Data: "good", LR: Constant(-1)}, "learning rate"},
		"more workers":    {Options{Model: "h", Loss: Logistic{}, Data: "good", Workers: 3}, "1 shards for 3 workers"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Train(ctx, ex, client, c.cfg)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, c.want)
			}
		})
	}
	t.Run("NaN features", func(t *testing.T) {
		x := []float64{1, 2, 3, 4}
		nds, _ := linear.FromDense(x, 2, []int32{0, 1}, 2)
		if err := WriteShards(ctx, st, "nan", nds, 1); err != nil {
			t.Fatal(err)
		}
		// Spoil the shard after writing: a NaN in the npy.
		b, _ := blob.ReadAll(ctx, st, "nan/shard-00000.npy")
		b[len(b)-1], b[len(b)-2], b[len(b)-3], b[len(b)-4] = 0x7f, 0xc0, 0, 0
		copy(b[len(b)-4:], []byte{0, 0, 0xc0, 0x7f})
		blob.PutBytes(ctx, st, "nan/shard-00000.npy", b, blob.PutOptions{})
		if _, err := TrainLocal(ctx, st, Options{Model: "n", Loss: Logistic{}, Data: "nan"}); err == nil || !strings.Contains(err.Error(), "NaN") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("model of another size", func(t *testing.T) {
		if _, err := client.Create(ctx, "taken", 3, ps.Zeros); err != nil {
			t.Fatal(err)
		}
		_, err := Train(ctx, ex, client, Options{Model: "taken", Loss: Logistic{}, Data: "good"})
		if !errors.Is(err, ErrModelSize) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("loopback server, remote workers", func(t *testing.T) {
		rex, err := wren.NewExecutor(ctx, wren.Options{Store: t.TempDir(), Backend: remoteBackend{}, Progress: wren.ProgressOff})
		if err != nil {
			t.Fatal(err)
		}
		defer rex.Close()
		_, err = Train(ctx, rex, client, Options{Model: "r", Loss: Logistic{}, Data: "good"})
		if err == nil || !strings.Contains(err.Error(), "loopback") {
			t.Fatalf("err = %v", err)
		}
	})
}

// remoteBackend is a worker.Remote that runs nothing.
type remoteBackend struct{}

func (remoteBackend) Invoke(ctx context.Context, inv *job.Invocation) (*job.Reply, error) {
	return nil, errors.New("no remote workers here")
}
func (remoteBackend) Parallelism() int { return 1 }
func (remoteBackend) Slots() int       { return 1 }
func (remoteBackend) Name() string     { return "remote-test" }
func (remoteBackend) Close() error     { return nil }
func (remoteBackend) Prepare(ctx context.Context, st blob.Store) (string, error) {
	return "", errors.New("no remote workers here")
}

// TestResumeAndKilledWorker: a worker killed mid-run is retried and the run
// completes; a run resumed from its checkpoint goes on from there.
func TestResumeAndKilledWorker(t *testing.T) {
	ctx := context.Background()
	ex := executor(t, 2)
	client := psClient(t, 1)
	ds := problem(4000, 10, 3, 5)
	if err := WriteShards(ctx, ex.Store(), "data", ds, 4); err != nil {
		t.Fatal(err)
	}
	cfg := Options{Model: "m", Loss: Softmax{Classes: 3}, Data: "data", Epochs: 30, BatchSize: 10, LR: InvScaling(0.2, 0.3), Eval: ds, EvalEvery: 100 * time.Millisecond, Checkpoint: "ckpt/m", CheckpointEvery: 200 * time.Millisecond, Workers: 2}
	done := make(chan struct{})
	var run *Result
	var err error
	go func() {
		defer close(done)
		run, err = Train(ctx, ex, client, cfg)
	}()
	killed := 0
	for killed == 0 {
		select {
		case <-done:
			t.Fatal("training ended before a worker could be killed")
		case <-time.After(100 * time.Millisecond):
			killed = testenv.KillWorkers(t)
		}
	}
	<-done
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("after killing %d worker processes: %v", killed, run)
	if run.Final.Accuracy < 0.9 {
		t.Fatalf("accuracy %.3f after a killed worker", run.Final.Accuracy)
	}
	if _, err := ex.Store().Stat(ctx, filepath.Join("ckpt/m", "weights.npy")); err != nil {
		t.Fatalf("no checkpoint: %v", err)
	}
	if len(run.Curve) < 2 {
		t.Fatalf("%d evaluations during training", len(run.Curve))
	}
	png := filepath.Join(t.TempDir(), "loss.png")
	if err := run.PlotLoss(png); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(png); err != nil || fi.Size() < 5000 {
		t.Fatalf("loss plot: %v, %v", fi, err)
	}
	// Resume into a model wiped meanwhile: it starts from the checkpoint.
	client.Delete(ctx, "m")
	cfg.Epochs = 1
	cfg.LR = Constant(1e-9) // too small to change anything: the accuracy is the checkpoint's
	r2, err := Resume(ctx, ex, client, "ckpt/m", cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r2.Final.Accuracy < run.Final.Accuracy-0.01 {
		t.Fatalf("resumed accuracy %.3f, checkpointed %.3f", r2.Final.Accuracy, run.Final.Accuracy)
	}
}

// TestJobCredentials: the workers of a training run against a parameter
// server protected by a password get a Redis user of their own; after the
// run, the credential in their stored inputs no longer authenticates, and
// nothing in the store holds the server's password (it used to travel in
// every worker's input).
func TestJobCredentials(t *testing.T) {
	ctx := context.Background()
	const password = "the-parameter-servers-own-password"
	servers := testenv.StartRedis(t, 2, redisserver.Options{Password: password})
	client, err := ps.Open(ctx, ps.Options{Addrs: testenv.Addrs(servers), Password: password})
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	// Every object the driver writes is recorded (the workers' inputs are
	// deleted with each slice's job); every object left is read too.
	dir := t.TempDir()
	inner, err := wren.OpenStore(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordingStore{Store: inner}
	ex, err := wren.NewExecutor(ctx, wren.Options{BlobStore: rec, Parallelism: 2, Progress: wren.ProgressOff})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	ds := problem(400, 5, 1, 4)
	if err := WriteShards(ctx, ex.Store(), "data/creds", ds, 2); err != nil {
		t.Fatal(err)
	}
	cfg := Options{Model: "creds", Loss: Logistic{}, Data: "data/creds", Epochs: 2, BatchSize: 20, Workers: 2, Seed: 1}
	if _, err := Train(ctx, ex, client, cfg); err != nil {
		t.Fatal(err)
	}
	var inputs []workerIn
	check := func(name string, b []byte) {
		if bytes.Contains(b, []byte(password)) {
			t.Errorf("%s holds the server's password", name)
		}
		if strings.Contains(name, "/in/pack-") {
			idx, err := job.ReadPackIndex(b)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range idx.Refs {
				var in workerIn
				if err := gob.NewDecoder(bytes.NewReader(b[r.Off : r.Off+r.Len])).Decode(&in); err != nil {
					t.Fatal(err)
				}
				inputs = append(inputs, in)
			}
		}
	}
	rec.mu.Lock()
	for k, b := range rec.puts {
		check(k, b)
	}
	rec.mu.Unlock()
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return nil
		}
		b, _ := os.ReadFile(p)
		if bytes.Contains(b, []byte(password)) {
			t.Errorf("%s holds the server's password", p)
		}
		return nil
	})
	if len(inputs) != 2 {
		t.Fatalf("%d worker inputs written to the store, want 2", len(inputs))
	}
	for _, in := range inputs {
		o, err := ps.ParseURL(in.PS.URL)
		if err != nil || o.Username == "" || o.Password == "" || o.Password == password {
			t.Fatalf("worker credentials %q/%q, %v", o.Username, o.Password, err)
		}
		for _, a := range o.Addrs {
			c := redis.NewClient(&redis.Options{Addr: a, Username: o.Username, Password: o.Password, MaxRetries: -1})
			err := c.Ping(ctx).Err()
			c.Close()
			if err == nil {
				t.Fatalf("the job's credential still authenticates on %s after the run", a)
			}
		}
	}
}

// recordingStore keeps a copy of every object put through it.
type recordingStore struct {
	blob.Store
	mu   sync.Mutex
	puts map[string][]byte
}

func (r *recordingStore) Put(ctx context.Context, key string, body io.Reader, o blob.PutOptions) error {
	b, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	r.mu.Lock()
	if r.puts == nil {
		r.puts = map[string][]byte{}
	}
	r.puts[key] = b
	r.mu.Unlock()
	return r.Store.Put(ctx, key, bytes.NewReader(b), o)
}
