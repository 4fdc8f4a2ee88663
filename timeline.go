package wren

import (
	"fmt"
	"image/color"
	"slices"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Colours of the timeline's phases.
var phaseColors = []struct {
	name string
	c    color.Color
}{
	{"start (invoke)", color.RGBA{190, 190, 190, 255}},
	{"setup (read input)", color.RGBA{240, 170, 40, 255}},
	{"compute", color.RGBA{50, 110, 200, 255}},
	{"output (write)", color.RGBA{60, 170, 80, 255}},
}

// PlotTimeline draws the job's calls as horizontal bars, one lane per
// worker, with each call's start, setup, compute and output phases in
// their own colours, and saves it; the format follows the file extension
// (.png, .svg, .pdf).
func (j *Job[Out]) PlotTimeline(path string) error {
	return plotTimeline(j.Stats(), path)
}

func plotTimeline(s JobStats, path string) error {
	if len(s.PerCall) == 0 {
		return fmt.Errorf("wren: job %s: no finished calls to plot", s.Job)
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("job %s: %s, %d calls", s.Job, s.Task, s.Calls)
	p.X.Label.Text = "seconds since submit"
	p.Y.Label.Text = "worker"
	var workers []string
	lane := map[string]int{}
	calls := slices.Clone(s.PerCall)
	slices.SortFunc(calls, func(a, b CallStats) int { return a.Started.Compare(b.Started) })
	for _, c := range calls {
		if _, ok := lane[c.Worker]; !ok {
			lane[c.Worker] = len(workers)
			workers = append(workers, c.Worker)
		}
	}
	tl := &timelinePlotter{calls: calls, lane: lane, t0: s.PerCall[0].Submitted}
	p.Add(tl)
	xmin, xmax, ymin, ymax := tl.DataRange()
	p.X.Min, p.X.Max, p.Y.Min, p.Y.Max = xmin, xmax, ymin, ymax
	if len(workers) <= 40 {
		ticks := make([]plot.Tick, len(workers))
		for i, w := range workers {
			ticks[i] = plot.Tick{Value: float64(i) + 0.6, Label: w}
		}
		p.Y.Tick.Marker = plot.ConstantTicks(ticks)
	}
	for _, pc := range phaseColors {
		p.Legend.Add(pc.name, swatch{pc.c})
	}
	p.Legend.Top = true
	h := vg.Length(max(4, min(12, 1+0.25*float64(len(workers))))) * vg.Inch
	return p.Save(10*vg.Inch, h, path)
}

type timelinePlotter struct {
	calls []CallStats
	lane  map[string]int
	t0    time.Time
}

func (t *timelinePlotter) DataRange() (xmin, xmax, ymin, ymax float64) {
	for _, c := range t.calls {
		xmax = max(xmax, c.Finished.Sub(t.t0).Seconds())
	}
	// Headroom above the lanes for the legend.
	return 0, xmax * 1.02, 0, float64(len(t.lane)) + 0.25 + 0.15*float64(len(phaseColors))
}

func (t *timelinePlotter) Plot(c draw.Canvas, p *plot.Plot) {
	tx, ty := p.Transforms(&c)
	for _, cs := range t.calls {
		y := float64(t.lane[cs.Worker])
		edges := []time.Time{cs.Dispatched, cs.Started, cs.ComputeStart, cs.ComputeEnd, cs.Finished}
		for k := 0; k < 4; k++ {
			x0, x1 := edges[k].Sub(t.t0).Seconds(), edges[k+1].Sub(t.t0).Seconds()
			if x1 <= x0 {
				continue
			}
			// Writes overlap the next call's compute (the worker writes in
			// the background), so they get their own strip below.
			lo, hi := ty(y+0.35), ty(y+0.9)
			if k == 3 {
				lo, hi = ty(y+0.1), ty(y+0.3)
			}
			l, r := tx(x0), tx(x1)
			if r-l < 0.3 {
				r = l + 0.3 // keep very short phases visible
			}
			c.FillPolygon(phaseColors[k].c, []vg.Point{{X: l, Y: lo}, {X: r, Y: lo}, {X: r, Y: hi}, {X: l, Y: hi}})
		}
	}
}

type swatch struct{ c color.Color }

func (s swatch) Thumbnail(c *draw.Canvas) {
	c.FillPolygon(s.c, []vg.Point{{X: c.Min.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Min.Y}, {X: c.Max.X, Y: c.Max.Y}, {X: c.Min.X, Y: c.Max.Y}})
}
