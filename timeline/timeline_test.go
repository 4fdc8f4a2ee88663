package timeline_test

import (
	"context"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/timeline"
)

// synth returns stats of n calls on w workers, each call 10 ms of setup,
// compute and output, back to back on its worker.
func synth(n, w int) wren.JobStats {
	t0 := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	s := wren.JobStats{Job: "j1", Task: "synth", Calls: n, Done: n}
	for i := range n {
		at := t0.Add(time.Duration(i/w) * 40 * time.Millisecond)
		c := wren.CallStats{Call: i, Worker: fmt.Sprintf("local-%d", i%w), OK: true, Submitted: t0, Dispatched: at}
		c.Started = at.Add(time.Millisecond)
		c.ComputeStart = c.Started.Add(10 * time.Millisecond)
		c.ComputeEnd = c.ComputeStart.Add(10 * time.Millisecond)
		c.Finished = c.ComputeEnd.Add(10 * time.Millisecond)
		s.PerCall = append(s.PerCall, c)
	}
	return s
}

func TestPlot(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name       string
		n, workers int
		minW, minH int
	}{
		{"one.png", 1, 1, 700, 280},
		{"lanes.png", 200, 12, 700, 280},
		{"many-workers.png", 2000, 300, 700, 280},
		{"aggregate.png", timeline.LaneCalls + 1, 64, 700, 600},
		{"aggregate-many-workers.png", 20000, 1000, 700, 600},
	} {
		path := filepath.Join(dir, tc.name)
		if err := timeline.Plot(synth(tc.n, tc.workers), path); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		img, err := png.Decode(f)
		f.Close()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if b := img.Bounds(); b.Dx() < tc.minW || b.Dy() < tc.minH {
			t.Errorf("%s is %v", tc.name, b)
		}
	}
	for _, name := range []string{"x.svg", "x.pdf", "agg.svg", "agg.pdf"} {
		n := 10
		if strings.HasPrefix(name, "agg") {
			n = timeline.LaneCalls + 10
		}
		path := filepath.Join(dir, name)
		if err := timeline.Plot(synth(n, 4), path); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if fi, err := os.Stat(path); err != nil || fi.Size() < 2000 {
			t.Fatalf("%s: %v %v", name, fi, err)
		}
	}
}

func TestPlotErrors(t *testing.T) {
	dir := t.TempDir()
	if err := timeline.Plot(wren.JobStats{Job: "empty", Calls: 3}, filepath.Join(dir, "e.png")); err == nil || !strings.Contains(err.Error(), "no finished calls") {
		t.Errorf("a job without finished calls: %v", err)
	}
	for _, n := range []int{5, timeline.LaneCalls + 5} {
		for _, name := range []string{"x.bmp", "noext", filepath.Join("missing", "x.png")} {
			if err := timeline.Plot(synth(n, 2), filepath.Join(dir, name)); err == nil {
				t.Errorf("%d calls to %s: no error", n, name)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "x.bmp")); err == nil {
		t.Error("an unknown format left a file")
	}
}

func ExamplePlot() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "wren-timeline")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	ex, err := wren.NewExecutor(ctx, wren.Options{Store: dir, Backend: wren.InProcess(4)})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer ex.Close()
	job, err := square.Map(ctx, ex, []int{1, 2, 3, 4, 5, 6, 7, 8})
	if err != nil {
		fmt.Println(err)
		return
	}
	if _, err := job.Results(ctx); err != nil {
		fmt.Println(err)
		return
	}
	path := filepath.Join(dir, "timeline.png")
	if err := timeline.Plot(job, path); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("drawn")
	// Output: drawn
}

var square = wren.Register("timeline-example.square", func(ctx context.Context, x int) (int, error) { return x * x, nil })
