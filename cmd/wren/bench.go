package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/config"
	"github.com/wrenml/wren/timeline"
)

// Spin is the bench task: a CPU-busy loop of the given length (not a sleep).
var Spin = wren.Register("bench.spin", func(ctx context.Context, d time.Duration) (uint64, error) {
	return spin(d), nil
})

// spin burns CPU for d and returns a value that depends on the work done.
func spin(d time.Duration) uint64 {
	end := time.Now().Add(d)
	x := uint64(88172645463325252)
	for {
		for range 4096 {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
		}
		if !time.Now().Before(end) {
			return x
		}
	}
}

func printJSON(v any) error {
	enc := json.NewEncoder(os.Stdout)
	return enc.Encode(v)
}

func round(x float64, digits int) float64 {
	v, _ := strconv.ParseFloat(strconv.FormatFloat(x, 'g', digits, 64), 64)
	return v
}

// positiveList parses flag -name's comma-separated counts, each 1 or more.
func positiveList(name, s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-%s %q: want comma-separated counts of 1 or more", name, s)
		}
		out = append(out, n)
	}
	return out, nil
}

// finiteAtLeast reports whether x is a finite number of lo or more (a
// flag's NaN fails it).
func finiteAtLeast(x, lo float64) bool { return x >= lo && !math.IsInf(x, 1) }

// finitePositive reports whether x is a finite number above 0.
func finitePositive(x float64) bool { return x > 0 && !math.IsInf(x, 1) }

func benchMap(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench map", flag.ContinueOnError)
	tasks := fs.Int("tasks", 1000, "number of tasks")
	taskMS := fs.Float64("task-ms", 20, "CPU-busy milliseconds per task")
	par := fs.Int("parallel", runtime.NumCPU(), "worker processes (and pool goroutines)")
	chunk := fs.Int("chunk", 1, "calls per invocation")
	store := fs.String("store", "", "store URL or directory (default: a temporary directory)")
	statsPath := fs.String("stats", "", "write the job's per-call stats as JSON to this file")
	timelinePath := fs.String("timeline", "", "plot the job's timeline to this file (.png, .svg, .pdf)")
	cpuProfile := fs.String("cpuprofile", "", "write the driver's CPU profile of the wren map to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *tasks < 1 || *par < 1 || *chunk < 1 || !finiteAtLeast(*taskMS, 0) {
		return fmt.Errorf("bench map: -tasks %d, -parallel %d, -chunk %d, -task-ms %v: want at least 1 task, worker and call per invocation, and a time of 0 or more", *tasks, *par, *chunk, *taskMS)
	}
	if *store == "" {
		dir, err := os.MkdirTemp("", "wren-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		*store = dir
	}
	d := time.Duration(*taskMS * float64(time.Millisecond))
	in := make([]time.Duration, *tasks)
	for i := range in {
		in[i] = d
	}
	ex, err := wren.NewExecutor(ctx, wren.Options{Store: *store, Parallelism: *par, ChunkSize: *chunk, Progress: wren.ProgressOff})
	if err != nil {
		return err
	}
	defer ex.Close()

	// Start the worker processes first: a one-time cost, reported apart.
	t0 := time.Now()
	if err := warmUp(ctx, ex, *par); err != nil {
		return err
	}
	startup := time.Since(t0)
	out := map[string]any{}

	// A large map is also run at a tenth of its size, first: the rate
	// must not fall as the job grows.
	if *tasks >= 10000 {
		small := in[:*tasks/10]
		t := time.Now()
		j, err := Spin.Map(ctx, ex, small)
		if err != nil {
			return err
		}
		if _, err := j.Results(ctx); err != nil {
			return err
		}
		rate := float64(len(small)) / time.Since(t).Seconds()
		if err := j.Clean(ctx); err != nil {
			return err
		}
		out["tenth_tasks"] = len(small)
		out["tenth_calls_per_s"] = round(rate, 4)
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	// The driver's memory: its peak RSS during the map (the kernel's
	// high-water mark, reset first) above what it held before.
	runtime.GC()
	debug.FreeOSMemory()
	before := rss()
	resetPeakRSS()
	t2 := time.Now()
	job, err := Spin.Map(ctx, ex, in)
	if err != nil {
		return err
	}
	if _, err := job.Results(ctx); err != nil {
		return err
	}
	wall := time.Since(t2)
	peak := peakRSS()
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	st := job.Summary()
	tc := time.Now()
	if err := job.Clean(ctx); err != nil {
		return err
	}
	clean := time.Since(tc)
	inputBytes := 0
	for _, x := range in {
		b, _ := wren.Gob.Marshal(x)
		inputBytes += len(b)
	}
	out["tasks"] = *tasks
	out["task_ms"] = *taskMS
	out["parallelism"] = *par
	out["chunk"] = *chunk
	out["wren_s"] = round(wall.Seconds(), 4)
	out["worker_startup_s"] = round(startup.Seconds(), 4)
	out["calls_per_s"] = round(float64(*tasks)/wall.Seconds(), 4)
	if r, ok := out["tenth_calls_per_s"].(float64); ok {
		out["rate_vs_tenth"] = round(float64(*tasks)/wall.Seconds()/r, 4)
	}
	if before > 0 && peak > 0 {
		out["driver_rss_before_mb"] = round(float64(before)/(1<<20), 2)
		out["driver_peak_rss_mb"] = round(float64(peak)/(1<<20), 2)
		out["driver_bytes_per_call"] = round(float64(peak-before)/float64(*tasks), 2)
		out["driver_bytes_per_call_beyond_inputs"] = round(float64(peak-before-int64(inputBytes))/float64(*tasks), 2)
	}
	out["clean_s"] = round(clean.Seconds(), 4)
	out["puts_per_call"] = round(float64(st.Requests.Puts)/float64(*tasks), 4)
	out["gets_per_call"] = round(float64(st.Requests.Gets)/float64(*tasks), 4)
	out["lists_per_call"] = round(float64(st.Requests.Lists)/float64(*tasks), 4)
	out["driver_gets_per_call"] = round(float64(st.DriverRequests.Gets)/float64(*tasks), 4)
	out["store"] = ex.Store().URL()

	// The limits, measured after the map (their memory is not the
	// driver's): a plain errgroup pool with the same parallelism, and the
	// same map on goroutines of this process with a memory store (no
	// processes, no files), on at most 100,000 calls.
	base := in[:min(len(in), 100000)]
	t1 := time.Now()
	g, _ := errgroup.WithContext(ctx)
	g.SetLimit(*par)
	results := make([]uint64, len(base)) // kept, as wren keeps its outputs
	for i := range base {
		g.Go(func() error { results[i] = spin(base[i]); return nil })
	}
	g.Wait()
	pool := time.Since(t1) * time.Duration(len(in)) / time.Duration(len(base))
	out["pool_s"] = round(pool.Seconds(), 4)
	out["efficiency"] = round(pool.Seconds()/wall.Seconds(), 4)
	out["overhead_ms_per_task"] = round((wall-pool).Seconds()*float64(*par)/float64(*tasks)*1000, 4)
	limit, err := inProcessRate(ctx, base, *par, *chunk)
	if err != nil {
		return err
	}
	out["limit_calls_per_s"] = round(limit, 4)
	out["limit_ratio"] = round(float64(*tasks)/wall.Seconds()/limit, 4)
	if *statsPath != "" || *timelinePath != "" || *tasks <= 100000 {
		full := job.Stats()
		out["median_start_ms"] = ms(full.Median(func(c wren.CallStats) time.Duration { return c.Start }))
		out["median_setup_ms"] = ms(full.Median(func(c wren.CallStats) time.Duration { return c.Setup }))
		out["median_compute_ms"] = ms(full.Median(func(c wren.CallStats) time.Duration { return c.Compute }))
		out["median_output_ms"] = ms(full.Median(func(c wren.CallStats) time.Duration { return c.Output }))
		if *statsPath != "" {
			b, err := json.MarshalIndent(full, "", " ")
			if err != nil {
				return err
			}
			if err := os.WriteFile(*statsPath, b, 0o644); err != nil {
				return err
			}
		}
		if *timelinePath != "" {
			if err := timeline.Plot(job, *timelinePath); err != nil {
				return err
			}
		}
	}
	return printJSON(out)
}

// rss returns this process's resident memory in bytes (Linux; 0 elsewhere).
func rss() int64 { return procStatusKB("VmRSS:") << 10 }

// peakRSS returns this process's peak resident memory since the last
// resetPeakRSS (Linux; 0 elsewhere).
func peakRSS() int64 { return procStatusKB("VmHWM:") << 10 }

// resetPeakRSS resets the kernel's high-water mark of this process's
// resident memory (Linux: clear_refs 5).
func resetPeakRSS() { os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

func procStatusKB(field string) int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return n
		}
	}
	return 0
}

// inProcessRate runs the map on InProcess(par) with a memory store and
// returns its calls per second (after a warm-up map).
func inProcessRate(ctx context.Context, in []time.Duration, par, chunk int) (float64, error) {
	var b [6]byte
	rand.Read(b[:])
	ex, err := wren.NewExecutor(ctx, wren.Options{Store: fmt.Sprintf("mem://bench-%x", b), Backend: wren.InProcess(par), ChunkSize: chunk, Progress: wren.ProgressOff})
	if err != nil {
		return 0, err
	}
	defer ex.Close()
	if _, err := mapAll(ctx, ex, Spin, in[:min(len(in), 100)]); err != nil {
		return 0, err
	}
	t := time.Now()
	j, err := Spin.Map(ctx, ex, in)
	if err != nil {
		return 0, err
	}
	if _, err := j.Results(ctx); err != nil {
		return 0, err
	}
	return float64(len(in)) / time.Since(t).Seconds(), nil
}

// warmUp runs n empty calls so that the workers have started: a one-time
// cost, not what a benchmark measures.
func warmUp(ctx context.Context, ex *wren.Executor, n int) error {
	_, err := mapAll(ctx, ex, Spin, make([]time.Duration, n))
	return err
}

// mapAll runs one call per input and returns the outputs.
func mapAll[In, Out any](ctx context.Context, ex *wren.Executor, t *wren.Task[In, Out], in []In) ([]Out, error) {
	j, err := t.Map(ctx, ex, in)
	if err != nil {
		return nil, err
	}
	defer j.Clean(context.WithoutCancel(ctx))
	return j.Results(ctx)
}

func ms(d time.Duration) float64 { return round(float64(d)/1e6, 4) }

func benchStore(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench store", flag.ContinueOnError)
	store := fs.String("store", "", "store URL or directory (default $WREN_STORE, else ./.wren)")
	sizeS := fs.String("size", "64MiB", "object size")
	reps := fs.Int("reps", 5, "repetitions (the median is reported)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *reps < 1 {
		return fmt.Errorf("bench store: -reps %d: want 1 or more", *reps)
	}
	if *store == "" {
		*store = defaultStore()
	}
	size, err := config.ParseSize(*sizeS)
	if err != nil || size <= 0 {
		return fmt.Errorf("bad -size %q", *sizeS)
	}
	st, err := wren.OpenStore(ctx, *store)
	if err != nil {
		return err
	}
	defer st.Close()
	data := make([]byte, size)
	rand.Read(data)
	key := fmt.Sprintf("bench/store-%d", time.Now().UnixNano())
	defer st.Delete(context.WithoutCancel(ctx), key)

	// Raw file I/O of the same bytes, in the store's directory when it is
	// one (same filesystem), else the system's temporary directory.
	rawDir := os.TempDir()
	if strings.HasPrefix(st.URL(), "file://") {
		rawDir = strings.TrimPrefix(st.URL(), "file://")
	}
	rawPath := filepath.Join(rawDir, fmt.Sprintf(".bench-raw-%d", time.Now().UnixNano()))
	defer os.Remove(rawPath)

	var put, get, rawW, rawWS, rawR []float64
	mbs := func(d time.Duration) float64 { return float64(size) / 1e6 / d.Seconds() }
	for range *reps {
		t := time.Now()
		if err := st.Put(ctx, key, bytes.NewReader(data), blob.PutOptions{Size: size}); err != nil {
			return err
		}
		put = append(put, mbs(time.Since(t)))
		// Read into memory, as os.ReadFile does below.
		t = time.Now()
		got, err := blob.ReadAll(ctx, st, key)
		if err != nil || int64(len(got)) != size {
			return fmt.Errorf("get: %d bytes, %v", len(got), err)
		}
		get = append(get, mbs(time.Since(t)))

		t = time.Now()
		if err := os.WriteFile(rawPath, data, 0o644); err != nil {
			return err
		}
		rawW = append(rawW, mbs(time.Since(t)))
		t = time.Now()
		if err := writeSync(rawPath, data); err != nil {
			return err
		}
		rawWS = append(rawWS, mbs(time.Since(t)))
		t = time.Now()
		b, err := os.ReadFile(rawPath)
		if err != nil || int64(len(b)) != size {
			return fmt.Errorf("raw read: %v", err)
		}
		rawR = append(rawR, mbs(time.Since(t)))
	}
	med := func(v []float64) float64 { slices.Sort(v); return round(v[len(v)/2], 4) }
	out := map[string]any{
		"store":               st.URL(),
		"size_bytes":          size,
		"reps":                *reps,
		"put_mb_s":            med(put),
		"get_mb_s":            med(get),
		"raw_write_mb_s":      med(rawW),
		"raw_write_sync_mb_s": med(rawWS),
		"raw_read_mb_s":       med(rawR),
	}
	out["put_vs_raw"] = round(out["put_mb_s"].(float64)/out["raw_write_mb_s"].(float64), 3)
	out["put_vs_raw_sync"] = round(out["put_mb_s"].(float64)/out["raw_write_sync_mb_s"].(float64), 3)
	out["get_vs_raw"] = round(out["get_mb_s"].(float64)/out["raw_read_mb_s"].(float64), 3)
	return printJSON(out)
}

// writeSync is os.WriteFile plus fsync: the durability fileblob gives.
func writeSync(path string, data []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
