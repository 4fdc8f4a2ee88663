package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/gonum"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/config"
	"github.com/wrenml/wren/internal/kernel"
	"github.com/wrenml/wren/internal/redisserver"
)

// The paper's microbenchmarks (its Figure 3 and Table 1): what one worker
// computes, moves to and from the blob store, and asks of Redis, for 1..N
// concurrent workers, on whatever backend is configured.

type flopsIn struct {
	N       int
	Seconds float64
	// Kernel is "wren" (internal/kernel) or "gonum" (gonum's own Dgemm).
	Kernel string
}

type flopsOut struct {
	Flops, Seconds float64
}

// flopsTask multiplies dense N x N float64 matrices for the given seconds
// with every core of its worker.
var flopsTask = wren.Register("bench.flops", func(ctx context.Context, in flopsIn) (flopsOut, error) {
	rng := mrand.New(mrand.NewPCG(1, 2))
	data := func() []float64 {
		d := make([]float64, in.N*in.N)
		for i := range d {
			d[i] = rng.Float64()
		}
		return d
	}
	dgemm := kernel.Float64{}.Dgemm
	switch in.Kernel {
	case "wren", "":
	case "gonum":
		dgemm = gonum.Implementation{}.Dgemm
	default:
		return flopsOut{}, fmt.Errorf("bench flops: no kernel %q (wren, gonum)", in.Kernel)
	}
	n := in.N
	a, b, c := data(), data(), make([]float64, n*n)
	start := time.Now()
	reps := 0
	for time.Since(start).Seconds() < in.Seconds && ctx.Err() == nil {
		dgemm(blas.NoTrans, blas.NoTrans, n, n, n, 1, a, n, b, n, 0, c, n)
		reps++
	}
	s := time.Since(start).Seconds()
	return flopsOut{Flops: 2 * math.Pow(float64(n), 3) * float64(reps), Seconds: s}, nil
})

type storageIn struct {
	Store, Key string
	Bytes      int64
}

type storageOut struct {
	WriteSeconds, ReadSeconds float64
}

// storageTask writes an object of random bytes to the store, reads it
// back, checks it and deletes it.
var storageTask = wren.Register("bench.storage", func(ctx context.Context, in storageIn) (storageOut, error) {
	st, err := wren.OpenStore(ctx, in.Store)
	if err != nil {
		return storageOut{}, err
	}
	defer st.Close()
	data := make([]byte, in.Bytes)
	rand.Read(data)
	start := time.Now()
	if err := blob.PutBytes(ctx, st, in.Key, data, blob.PutOptions{}); err != nil {
		return storageOut{}, err
	}
	w := time.Since(start).Seconds()
	start = time.Now()
	back, err := blob.ReadAll(ctx, st, in.Key)
	if err != nil {
		return storageOut{}, err
	}
	r := time.Since(start).Seconds()
	if !bytes.Equal(back, data) {
		return storageOut{}, errors.New("bench storage: the object read back differs")
	}
	st.Delete(ctx, in.Key)
	return storageOut{WriteSeconds: w, ReadSeconds: r}, nil
})

type redisIn struct {
	Addr    string
	Key     string
	Size    int
	Seconds float64
}

type redisOut struct {
	Ops      int64
	Seconds  float64
	P50, P99 float64 // microseconds
}

// redisTask runs synchronous SET and GET of Size-byte values, one after
// the other, for the given seconds.
var redisTask = wren.Register("bench.redis", func(ctx context.Context, in redisIn) (redisOut, error) {
	c := redis.NewClient(&redis.Options{Addr: in.Addr, PoolSize: 1})
	defer c.Close()
	val := make([]byte, in.Size)
	rand.Read(val)
	lat := make([]time.Duration, 0, 1<<16)
	var ops int64
	start := time.Now()
	for time.Since(start).Seconds() < in.Seconds && ctx.Err() == nil {
		t := time.Now()
		var err error
		if ops%2 == 0 {
			err = c.Set(ctx, in.Key, val, 0).Err()
		} else {
			var b []byte
			b, err = c.Get(ctx, in.Key).Bytes()
			if err == nil && len(b) != in.Size {
				err = fmt.Errorf("GET gave %d bytes", len(b))
			}
		}
		if err != nil {
			return redisOut{}, err
		}
		if len(lat) < cap(lat) {
			lat = append(lat, time.Since(t))
		}
		ops++
	}
	s := time.Since(start).Seconds()
	slices.Sort(lat)
	q := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return float64(lat[int(p*float64(len(lat)-1))]) / 1e3
	}
	c.Del(ctx, in.Key)
	return redisOut{Ops: ops, Seconds: s, P50: q(0.5), P99: q(0.99)}, nil
})

// microFlags are the flags the three microbenchmarks share.
type microFlags struct {
	name    string
	fs      *flag.FlagSet
	workers *string
	store   *string
	seconds *float64
	counts  []int // -workers, parsed
}

func newMicroFlags(name string) *microFlags {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var def []string
	for w := 1; w < runtime.NumCPU(); w *= 2 {
		def = append(def, strconv.Itoa(w))
	}
	def = append(def, strconv.Itoa(runtime.NumCPU()))
	return &microFlags{
		name:    name,
		fs:      fs,
		workers: fs.String("workers", strings.Join(def, ","), "comma-separated worker counts"),
		store:   fs.String("store", "", "wren's store (default: $WREN_STORE, the config file, else ./.wren)"),
		seconds: fs.Float64("seconds", 3, "seconds each worker measures"),
	}
}

// parse parses args and refuses worker counts and times it cannot measure,
// before anything runs.
func (m *microFlags) parse(args []string) error {
	if err := m.fs.Parse(args); err != nil {
		return err
	}
	counts, err := positiveList("workers", *m.workers)
	if err != nil {
		return fmt.Errorf("%s: %w", m.name, err)
	}
	if !finitePositive(*m.seconds) {
		return fmt.Errorf("%s: -seconds %v: want a positive time", m.name, *m.seconds)
	}
	m.counts = counts
	return nil
}

// each runs fn with an executor of w workers (the configured backend) for
// every -workers count.
func (m *microFlags) each(ctx context.Context, fn func(ex *wren.Executor, w int) (map[string]any, error)) ([]map[string]any, error) {
	cfg, err := config.Load()
	if err != nil {
		return nil, err
	}
	var runs []map[string]any
	for _, w := range m.counts {
		ex, err := cfg.Executor(ctx, wren.Options{Store: *m.store, Parallelism: w, Progress: wren.ProgressOff})
		if err != nil {
			return nil, err
		}
		// Start the workers first: their start is not what is measured.
		if err := warmUp(ctx, ex, w); err != nil {
			ex.Close()
			return nil, err
		}
		r, err := fn(ex, w)
		ex.Close()
		if err != nil {
			return nil, err
		}
		r["workers"] = w
		runs = append(runs, r)
	}
	return runs, nil
}

func benchFlops(ctx context.Context, args []string) error {
	m := newMicroFlags("bench flops")
	n := m.fs.Int("n", 1024, "matrix size")
	numpy := m.fs.Bool("compare-numpy", false, "also measure one thread of wren's kernels against numpy's BLAS with OPENBLAS_NUM_THREADS=1 (when python3 has numpy)")
	if err := m.parse(args); err != nil {
		return err
	}
	if *n < 1 {
		return fmt.Errorf("bench flops: -n %d: want a matrix size of 1 or more", *n)
	}
	runs, err := m.each(ctx, func(ex *wren.Executor, w int) (map[string]any, error) {
		r := map[string]any{}
		var rate [2]float64
		for q, k := range []string{"wren", "gonum"} {
			in := make([]flopsIn, w)
			for i := range in {
				in[i] = flopsIn{N: *n, Seconds: *m.seconds, Kernel: k}
			}
			outs, err := mapAll(ctx, ex, flopsTask, in)
			if err != nil {
				return nil, err
			}
			var per []float64
			total := 0.0
			for _, o := range outs {
				g := o.Flops / o.Seconds / 1e9
				per = append(per, round(g, 4))
				total += g
			}
			r[k] = map[string]any{"gflops_per_worker": per, "gflops_total": round(total, 4)}
			rate[q] = total
		}
		r["wren_vs_gonum"] = round(rate[0]/rate[1], 4)
		return r, nil
	})
	if err != nil {
		return err
	}
	out := map[string]any{"bench": "flops", "n": *n, "kernel": kernel.Name(),
		"gomaxprocs_per_worker": "all CPUs (both kernels are parallel)", "runs": runs}
	if *numpy {
		out["single_thread"] = singleThread(ctx, *n, *m.seconds)
	}
	return printJSON(out)
}

// numpyScript times one thread of numpy's BLAS: DGEMM, SGEMM and X'X
// (numpy runs SYRK for a.T @ a) of n x n matrices, GFLOP/s as JSON.
const numpyScript = `
import json, sys, time
import numpy as np
n, secs = int(sys.argv[1]), float(sys.argv[2])
def rate(f, flops):
    f(); t = time.perf_counter(); r = 0
    while time.perf_counter() - t < secs:
        f(); r += 1
    return flops * r / (time.perf_counter() - t) / 1e9
rng = np.random.default_rng(1)
a, b = rng.random((n, n)), rng.random((n, n))
a32, b32 = a.astype(np.float32), b.astype(np.float32)
print(json.dumps({"dgemm": rate(lambda: a @ b, 2 * n**3), "sgemm": rate(lambda: a32 @ b32, 2 * n**3),
    "dsyrk": rate(lambda: a.T @ a, n**3), "numpy": np.__version__}))
`

// singleThread measures one thread of wren's DGEMM, SGEMM and DSYRK (X'X,
// counted as n³ multiply-adds' worth: n³ flops) at n, beside numpy's when
// python3 has it.
func singleThread(ctx context.Context, n int, secs float64) map[string]any {
	old := kernel.SetMaxThreads(1)
	defer kernel.SetMaxThreads(old)
	rng := mrand.New(mrand.NewPCG(3, 4))
	a, b, c := make([]float64, n*n), make([]float64, n*n), make([]float64, n*n)
	for i := range a {
		a[i], b[i] = rng.Float64(), rng.Float64()
	}
	a32, b32, c32 := make([]float32, n*n), make([]float32, n*n), make([]float32, n*n)
	for i := range a {
		a32[i], b32[i] = float32(a[i]), float32(b[i])
	}
	rate := func(f func(), flops float64) float64 {
		f()
		t := time.Now()
		r := 0
		for time.Since(t).Seconds() < secs {
			f()
			r++
		}
		return round(flops*float64(r)/time.Since(t).Seconds()/1e9, 4)
	}
	n3 := math.Pow(float64(n), 3)
	wrenRates := map[string]float64{
		"dgemm": rate(func() { kernel.Dgemm(false, false, n, n, n, 1, a, n, b, n, 0, c, n) }, 2*n3),
		"sgemm": rate(func() { kernel.Sgemm(false, false, n, n, n, 1, a32, n, b32, n, 0, c32, n) }, 2*n3),
		"dsyrk": rate(func() { kernel.Dsyrk(true, true, n, n, 1, a, n, 0, c, n) }, n3),
	}
	res := map[string]any{"wren_gflops": wrenRates}
	py := ""
	for _, p := range []string{"python3", "/usr/bin/python3"} {
		if exec.CommandContext(ctx, p, "-c", "import numpy").Run() == nil {
			py = p
			break
		}
	}
	if py == "" {
		res["numpy"] = "skipped: no python3 with numpy"
		return res
	}
	cmd := exec.CommandContext(ctx, py, "-c", numpyScript, strconv.Itoa(n), fmt.Sprint(secs))
	cmd.Env = append(os.Environ(), "OPENBLAS_NUM_THREADS=1", "OMP_NUM_THREADS=1", "MKL_NUM_THREADS=1")
	outb, err := cmd.Output()
	var np map[string]any
	if err == nil {
		err = json.Unmarshal(outb, &np)
	}
	if err != nil {
		res["numpy"] = "failed: " + err.Error()
		return res
	}
	ratios := map[string]float64{}
	for k, v := range wrenRates {
		if f, ok := np[k].(float64); ok && f > 0 {
			np[k] = round(f, 4)
			ratios[k] = round(v/f, 4)
		}
	}
	res["numpy_gflops"] = np
	res["wren_vs_numpy"] = ratios
	return res
}

func benchStorage(ctx context.Context, args []string) error {
	m := newMicroFlags("bench storage")
	size := m.fs.String("size", "64MB", "object size per worker")
	if err := m.parse(args); err != nil {
		return err
	}
	n, err := config.ParseSize(*size)
	if err != nil {
		return err
	}
	var storeURL string
	runs, err := m.each(ctx, func(ex *wren.Executor, w int) (map[string]any, error) {
		storeURL = ex.Store().URL()
		in := make([]storageIn, w)
		for i := range in {
			in[i] = storageIn{Store: storeURL, Key: fmt.Sprintf("bench-storage/%d-%d", w, i), Bytes: n}
		}
		outs, err := mapAll(ctx, ex, storageTask, in)
		if err != nil {
			return nil, err
		}
		var wr, rd []float64
		var maxW, maxR float64
		for _, o := range outs {
			wr = append(wr, round(float64(n)/1e6/o.WriteSeconds, 4))
			rd = append(rd, round(float64(n)/1e6/o.ReadSeconds, 4))
			maxW, maxR = max(maxW, o.WriteSeconds), max(maxR, o.ReadSeconds)
		}
		// Aggregate: all the bytes over the slowest worker's time.
		return map[string]any{
			"write_mb_per_s_per_worker": wr, "read_mb_per_s_per_worker": rd,
			"write_mb_per_s_total": round(float64(w)*float64(n)/1e6/maxW, 4),
			"read_mb_per_s_total":  round(float64(w)*float64(n)/1e6/maxR, 4),
		}, nil
	})
	if err != nil {
		return err
	}
	return printJSON(map[string]any{"bench": "storage", "store": storeURL, "object_mb": round(float64(n)/1e6, 4), "runs": runs})
}

func benchRedis(ctx context.Context, args []string) error {
	m := newMicroFlags("bench redis")
	addr := m.fs.String("redis", "", "a Redis server the workers reach (default: start a local redis-server)")
	size := m.fs.Int("size", 128, "value size in bytes")
	if err := m.parse(args); err != nil {
		return err
	}
	if *size < 1 {
		return fmt.Errorf("bench redis: -size %d: want a value of 1 byte or more", *size)
	}
	if *addr == "" {
		srv, err := redisserver.Start(ctx, redisserver.Options{})
		if err != nil {
			return err
		}
		defer srv.Stop()
		*addr = srv.Addr
	}
	runs, err := m.each(ctx, func(ex *wren.Executor, w int) (map[string]any, error) {
		in := make([]redisIn, w)
		for i := range in {
			in[i] = redisIn{Addr: *addr, Key: fmt.Sprintf("bench-redis-%d-%d", os.Getpid(), i), Size: *size, Seconds: *m.seconds}
		}
		outs, err := mapAll(ctx, ex, redisTask, in)
		if err != nil {
			return nil, err
		}
		var per, p50, p99 []float64
		total := 0.0
		for _, o := range outs {
			r := float64(o.Ops) / o.Seconds
			per = append(per, round(r, 4))
			p50 = append(p50, round(o.P50, 4))
			p99 = append(p99, round(o.P99, 4))
			total += r
		}
		return map[string]any{"ops_per_s_per_worker": per, "ops_per_s_total": round(total, 4), "p50_us": p50, "p99_us": p99}, nil
	})
	if err != nil {
		return err
	}
	return printJSON(map[string]any{"bench": "redis", "redis": *addr, "value_bytes": *size, "ops": "synchronous SET and GET, alternating", "runs": runs})
}
