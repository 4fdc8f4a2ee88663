// Command montecarlo-pi estimates pi with a wren map: each call throws
// darts at the unit square with its own seeded generator and counts the hits
// inside the quarter circle; the driver adds the counts.
//
//	go run ./examples/montecarlo-pi [-tasks 1000] [-darts 1000000] [-store DIR|URL] [-timeline FILE]
//
// It prints the estimate, the path of the timeline plot and the job's stats.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"os/signal"
	"time"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/config"
	"github.com/wrenml/wren/timeline"
)

// Darts is the input of one call.
type Darts struct {
	Seed uint64
	N    int
}

// Throw counts the darts of one call that land inside the quarter circle.
var Throw = wren.Register("montecarlo.throw", func(ctx context.Context, d Darts) (int, error) {
	rng := rand.New(rand.NewPCG(d.Seed, d.Seed^0x9e3779b97f4a7c15))
	hits := 0
	for i := 0; i < d.N; i++ {
		if i%(1<<16) == 0 && ctx.Err() != nil {
			return 0, ctx.Err()
		}
		x, y := rng.Float64(), rng.Float64()
		if x*x+y*y <= 1 {
			hits++
		}
	}
	return hits, nil
})

func main() {
	wren.Init()
	tasks := flag.Int("tasks", 1000, "number of calls")
	darts := flag.Int("darts", 1_000_000, "darts per call")
	store := flag.String("store", "", "blob store: a directory or a URL (file://, s3://) (default: $WREN_STORE, the config file, else ./.wren)")
	timelinePath := flag.String("timeline", "timeline-pi.png", "where to plot the job's timeline")
	parallel := flag.Int("parallel", 0, "worker processes (0: one per CPU)")
	flag.Parse()
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *tasks, *darts, *store, *timelinePath, *parallel); err != nil {
		fmt.Fprintln(os.Stderr, "montecarlo-pi:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, tasks, darts int, store, timelinePath string, parallel int) error {
	if tasks < 1 || darts < 1 || parallel < 0 {
		return fmt.Errorf("-tasks %d, -darts %d, -parallel %d: want at least 1 call and 1 dart a call, and no negative worker count", tasks, darts, parallel)
	}
	// WREN_BACKEND, WREN_STORE, ... or ~/.config/wren/config.yaml choose
	// the backend (local processes, or AWS Lambda) and the store; flags win.
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	ex, err := cfg.Executor(ctx, wren.Options{Store: store, Parallelism: parallel})
	if err != nil {
		return err
	}
	defer ex.Close()
	in := make([]Darts, tasks)
	for i := range in {
		in[i] = Darts{Seed: uint64(i) + 1, N: darts}
	}
	start := time.Now()
	job, err := Throw.Map(ctx, ex, in)
	if err != nil {
		return err
	}
	hits, err := job.Results(ctx)
	if err != nil && ctx.Err() != nil {
		// Interrupted: the job's record and the calls done stay in the store.
		return fmt.Errorf("interrupted; job %s is kept in the store (`wren jobs show %s` shows it, `wren jobs clean %s` deletes it): %w", job.ID(), job.ID(), job.ID(), err)
	}
	if err != nil {
		return err
	}
	total := 0
	for _, h := range hits {
		total += h
	}
	n := float64(tasks) * float64(darts)
	pi := 4 * float64(total) / n
	// The standard error of the estimate: 4 sqrt(p(1-p)/n), p = pi/4.
	se := 4 * math.Sqrt(pi/4*(1-pi/4)/n)
	fmt.Printf("pi ~ %.6f (+/- %.6f; error %.2g) from %d darts in %d calls, %v\n", pi, se, math.Abs(pi-math.Pi), int64(n), tasks, time.Since(start).Round(time.Millisecond))
	if err := timeline.Plot(job, timelinePath); err != nil {
		return err
	}
	fmt.Println("timeline:", timelinePath)
	fmt.Println(job.Stats())
	return job.Clean(ctx)
}
