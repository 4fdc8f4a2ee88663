package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/featurize"
)

// gistCmd prints one CSV row per image: file,dim0,...
func gistCmd(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("gist", flag.ContinueOnError)
	gray := fs.Bool("gray", false, "grayscale descriptor (default orientations 8,8,8,8)")
	raw := fs.Bool("raw", false, "use the decoded pixels as they are (no crop, no scale)")
	size := fs.Int("size", 256, "crop and scale to this side (ignored with -raw)")
	orient := fs.String("orientations", "", "orientations per scale, finest first (default 8,8,4; gray 8,8,8,8)")
	blocks := fs.Int("blocks", 4, "pooling grid side")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return errors.New("usage: wren gist [-gray] [-raw] [-size N] [-orientations 8,8,4] [-blocks 4] FILE [FILE]")
	}
	opts := featurize.GISTOptions{Gray: *gray, Blocks: *blocks}
	if *orient != "" {
		o, err := featurize.ParseOrientations(*orient)
		if err != nil {
			return err
		}
		opts.Orientations = o
	}
	// Checked once, before any file (each file failed alike, or -blocks 0
	// and -size 0 ran with defaults).
	if *blocks < 1 {
		return fmt.Errorf("gist: -blocks %d: want 1 or more", *blocks)
	}
	if !*raw {
		if *size < 8 || *size%2 != 0 {
			return fmt.Errorf("gist: -size %d: want an even side of 8 or more (or -raw)", *size)
		}
		if _, err := featurize.NewGister(*size, opts); err != nil {
			return fmt.Errorf("gist: -size %d, -blocks %d, -orientations %q: %w", *size, *blocks, *orient, err)
		}
		opts.Size = *size
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	failed := 0
	for _, file := range fs.Args() {
		if err := ctx.Err(); err != nil {
			return err
		}
		d, err := gistFile(file, opts)
		if err != nil {
			fmt.Fprintf(os.Stderr, "wren gist: %s: %v\n", file, err)
			failed++
			continue
		}
		w.WriteString(csvField(file))
		buf := make([]byte, 0, 16)
		for _, v := range d {
			buf = strconv.AppendFloat(append(buf[:0], ','), float64(v), 'g', 9, 32)
			w.Write(buf)
		}
		w.WriteByte('\n')
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d files failed", failed, fs.NArg())
	}
	return nil
}

func csvField(s string) string {
	for _, c := range s {
		if c == ',' || c == '"' || c == '\n' {
			return strconv.Quote(s)
		}
	}
	return s
}

func gistFile(file string, opts featurize.GISTOptions) ([]float32, error) {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	img, err := featurize.Decode(data, 0)
	if err != nil {
		return nil, err
	}
	return featurize.GIST(img, opts)
}

// benchGist measures single-core GIST rates and the parallel featurize
// throughput of the local process backend.
func benchGist(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench gist", flag.ContinueOnError)
	secs := fs.Float64("seconds", 3, "seconds per single-core measurement")
	images := fs.Int("images", 0, "images in the parallel run (0: 40 per core)")
	psize := fs.Int("size", 128, "image side of the parallel featurize run")
	reps := fs.Int("reps", 3, "alternating repetitions of the pipeline measurements (medians reported)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	switch {
	case !finitePositive(*secs) || *reps < 1 || *images < 0:
		return fmt.Errorf("bench gist: -seconds %v, -reps %d, -images %d: want a positive time, 1 repetition or more and no negative image count", *secs, *reps, *images)
	case *psize < 8 || *psize%2 != 0:
		return fmt.Errorf("bench gist: -size %d: want an even side of 8 or more", *psize)
	}
	cores := runtime.NumCPU()
	dur := time.Duration(*secs * float64(time.Second))
	// Single core: one goroutine, GOMAXPROCS 1, bank built once; the fast
	// kernel and the reference alternate (the host is noisy), medians kept.
	old := runtime.GOMAXPROCS(1)
	rates := map[string]float64{}
	cpuRates := map[string]float64{} // per second of this process's CPU time: robust to a noisy host
	refRates := map[string]float64{}
	ratios := map[string]float64{}
	for _, n := range []int{32, 128, 256} {
		fast, err := featurize.NewGister(n, featurize.GISTOptions{})
		if err != nil {
			runtime.GOMAXPROCS(old)
			return err
		}
		ref, err := featurize.NewReferenceGister(n, featurize.GISTOptions{})
		if err != nil {
			runtime.GOMAXPROCS(old)
			return err
		}
		img := noiseImage(n)
		var dst []float32
		dst = ref.Compute(fast.Compute(dst, img), img) // warm
		measure := func(g *featurize.Gister, d time.Duration) (wall, cpu float64) {
			count := 0
			start, cpu0 := time.Now(), cpuTime()
			for time.Since(start) < d {
				dst = g.Compute(dst, img)
				count++
			}
			return float64(count) / time.Since(start).Seconds(), float64(count) / (cpuTime() - cpu0).Seconds()
		}
		var fw, fc, rw, rc, rat []float64
		for range max(*reps, 1) {
			w, c := measure(fast, dur/time.Duration(max(*reps, 1)))
			fw, fc = append(fw, w), append(fc, c)
			w2, c2 := measure(ref, dur/time.Duration(max(*reps, 1)))
			rw, rc = append(rw, w2), append(rc, c2)
			rat = append(rat, c/c2)
		}
		med := func(v []float64) float64 { slices.Sort(v); return v[len(v)/2] }
		key := strconv.Itoa(n)
		rates[key], cpuRates[key] = round(med(fw), 4), round(med(fc), 4)
		refRates[key], ratios[key] = round(med(rw), 4), round(med(rat), 4)
		_ = rc
	}
	runtime.GOMAXPROCS(old)

	// The pipeline on one core (decode, crop, scale, GIST) for the same
	// files, then the same files through featurize.Run on every core.
	dir, err := os.MkdirTemp("", "wren-bench-gist-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	n := *images
	if n <= 0 {
		n = 100 * cores
	}
	const classes = 4
	in := filepath.Join(dir, "in")
	if err := featurize.Synthesize(in, classes, (n+classes-1)/classes, 1); err != nil {
		return err
	}
	files, _ := filepath.Glob(filepath.Join(in, "*", "*.jpg"))
	ex, err := wren.NewExecutor(ctx, wren.Options{Store: filepath.Join(dir, "jobs"), Progress: wren.ProgressOff})
	if err != nil {
		return err
	}
	defer ex.Close()
	// Start the workers first; their start-up is not featurizing.
	warm := filepath.Join(dir, "warm")
	if err := featurize.Synthesize(warm, 1, cores, 2); err != nil {
		return err
	}
	if _, err := featurize.Run(ctx, ex, featurize.Options{Input: warm, Output: filepath.Join(dir, "warmout"), Size: *psize, ImagesPerCall: 1}); err != nil {
		return err
	}
	// The machine is shared and noisy: alternate the two measurements and
	// keep the medians.
	per := max(1, len(files)/(4*cores))
	var singles, pars []float64
	var rep *featurize.Report
	for r := range *reps {
		old = runtime.GOMAXPROCS(1)
		start := time.Now()
		for _, f := range files {
			if _, err := gistFile(f, featurize.GISTOptions{Size: *psize}); err != nil {
				runtime.GOMAXPROCS(old)
				return err
			}
		}
		singles = append(singles, float64(len(files))/time.Since(start).Seconds())
		runtime.GOMAXPROCS(old)

		start = time.Now()
		rep, err = featurize.Run(ctx, ex, featurize.Options{Input: in, Output: filepath.Join(dir, "out", strconv.Itoa(r)), Size: *psize, ImagesPerCall: per})
		if err != nil {
			return err
		}
		pars = append(pars, float64(rep.Images)/time.Since(start).Seconds())
	}
	slices.Sort(singles)
	slices.Sort(pars)
	single, par := singles[len(singles)/2], pars[len(pars)/2]
	return printJSON(map[string]any{
		"images_per_s":                  rates,
		"images_per_cpu_s":              cpuRates,
		"reference_images_per_s":        refRates,
		"fast_vs_reference":             ratios,
		"cores":                         cores,
		"pipeline_size":                 *psize,
		"pipeline_single_images_per_s":  round(single, 4),
		"parallel_images_per_s":         round(par, 4),
		"parallel_efficiency":           round(par/(float64(cores)*single), 4),
		"parallel_images":               rep.Images,
		"parallel_images_per_call":      per,
		"lear_c_images_per_s_reference": map[string]string{"32": "800-1100", "128": "36-43", "256": "3.8-5.4"},
	})
}

var noiseOnce sync.Map

func noiseImage(n int) image.Image {
	if v, ok := noiseOnce.Load(n); ok {
		return v.(image.Image)
	}
	img := image.NewRGBA(image.Rect(0, 0, n, n))
	x := uint32(12345)
	for i := range img.Pix {
		x = x*1664525 + 1013904223
		img.Pix[i] = uint8(x >> 24)
	}
	noiseOnce.Store(n, img)
	return img
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
