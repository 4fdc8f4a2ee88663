// Package timeline draws a job's calls over time, as the PyWren paper's
// figures do: up to LaneCalls calls as bars, one lane per worker, with each
// call's start, setup, compute and output phases in their own colours; a
// larger job in aggregate (calls in flight per phase over time, and each
// worker's share of time computing), which stays readable at any size.
//
// It is apart from the root package so that a program that never draws a
// plot does not link gonum/plot and its fonts.
package timeline

import (
	"fmt"
	"image/color"
	"io"
	"iter"
	"slices"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/internal/plotfile"
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

// LaneCalls is the most calls a timeline draws one by one; past it, the
// timeline shows the job in aggregate.
const LaneCalls = 3000

// Source is what a timeline draws: a job's summary and its finished calls.
// A *wren.Job and a wren.JobStats (for example one read back from the
// store by wren.ReadJobStats) are sources.
type Source interface {
	Summary() wren.JobStats
	AllCallStats() iter.Seq[wren.CallStats]
}

// Plot draws the source's finished calls and saves the plot to path; the
// format follows the file extension (.png, .svg, .pdf). The time axis
// starts when the calls were submitted.
func Plot(src Source, path string) error {
	sum := src.Summary()
	each := src.AllCallStats()
	n := 0
	var t0 time.Time
	for c := range each {
		n++
		if !c.Submitted.IsZero() && (t0.IsZero() || c.Submitted.Before(t0)) {
			t0 = c.Submitted
		}
	}
	if n == 0 {
		return fmt.Errorf("timeline: job %s: no finished calls to plot", sum.Job)
	}
	if n > LaneCalls {
		return plotAggregate(sum.Job, sum.Task, sum.Calls, t0, each, path)
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("job %s: %s, %d calls", sum.Job, sum.Task, sum.Calls)
	p.X.Label.Text = "seconds since submit"
	p.Y.Label.Text = "worker"
	var workers []string
	lane := map[string]int{}
	cs := slices.Collect(each)
	slices.SortFunc(cs, func(a, b wren.CallStats) int { return a.Started.Compare(b.Started) })
	for _, c := range cs {
		if _, ok := lane[c.Worker]; !ok {
			lane[c.Worker] = len(workers)
			workers = append(workers, c.Worker)
		}
	}
	tl := &timelinePlotter{calls: cs, lane: lane, t0: t0}
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
	c, err := p.WriterTo(10*vg.Inch, h, plotfile.Format(path))
	if err != nil {
		return fmt.Errorf("timeline: %s: %w", path, err)
	}
	return save(path, c)
}

// save writes a drawn plot to path, leaving no file when it fails.
func save(path string, c io.WriterTo) error {
	if err := plotfile.Save(path, c); err != nil {
		return fmt.Errorf("timeline: %w", err)
	}
	return nil
}

type timelinePlotter struct {
	calls []wren.CallStats
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

// Bins of the aggregate timeline: time bins, and worker rows (workers
// beyond it share rows).
const (
	aggBins = 400
	aggRows = 120
)

// plotAggregate draws a large job: above, how many calls were in each
// phase over time (stacked); below, each worker's share of time spent
// computing, per time bin. Two passes over the calls, no per-call memory.
func plotAggregate(job, task string, calls int, t0 time.Time, each iter.Seq[wren.CallStats], path string) error {
	// Pass 1: the time span and the workers.
	var end float64
	workers := map[string]int{}
	for c := range each {
		end = max(end, c.Finished.Sub(t0).Seconds())
		if _, ok := workers[c.Worker]; !ok {
			workers[c.Worker] = len(workers)
		}
	}
	if end <= 0 {
		end = 1
	}
	names := make([]string, len(workers))
	for w, i := range workers {
		names[i] = w
	}
	slices.SortFunc(names, compareWorkers)
	row := make(map[string]int, len(names))
	rows := min(len(names), aggRows)
	perRow := make([]int, rows)
	for i, w := range names {
		row[w] = i * rows / len(names)
		perRow[i*rows/len(names)]++
	}
	width := end / aggBins
	// Pass 2: the time each phase and each worker row spent in each bin.
	inPhase := make([][]float64, 4)
	for k := range inPhase {
		inPhase[k] = make([]float64, aggBins)
	}
	busy := make([][]float64, rows)
	for i := range busy {
		busy[i] = make([]float64, aggBins)
	}
	spread := func(acc []float64, x0, x1 float64) {
		if x1 <= x0 {
			return
		}
		for b := max(int(x0/width), 0); b < aggBins && float64(b)*width < x1; b++ {
			lo, hi := max(x0, float64(b)*width), min(x1, float64(b+1)*width)
			if hi > lo {
				acc[b] += hi - lo
			}
		}
	}
	for c := range each {
		edges := []time.Time{c.Dispatched, c.Started, c.ComputeStart, c.ComputeEnd, c.Finished}
		for k := range 4 {
			spread(inPhase[k], edges[k].Sub(t0).Seconds(), edges[k+1].Sub(t0).Seconds())
		}
		spread(busy[row[c.Worker]], c.ComputeStart.Sub(t0).Seconds(), c.ComputeEnd.Sub(t0).Seconds())
	}

	top := plot.New()
	top.Title.Text = fmt.Sprintf("job %s: %s, %d calls on %d workers", job, task, calls, len(names))
	top.Y.Label.Text = "calls in flight"
	top.X.Label.Text = "seconds since submit"
	// Stacked: each phase's line is the sum of it and the phases below,
	// drawn from the top down so that each fill shows above the next.
	stacks := make([]plotter.XYs, 4)
	sum := make([]float64, aggBins)
	for k := range 4 {
		stacks[k] = make(plotter.XYs, aggBins)
		for b := range aggBins {
			sum[b] += inPhase[k][b] / width
			stacks[k][b] = plotter.XY{X: (float64(b) + 0.5) * width, Y: sum[b]}
		}
	}
	for k := 3; k >= 0; k-- {
		l, err := plotter.NewLine(stacks[k])
		if err != nil {
			return err
		}
		l.Color = phaseColors[k].c
		l.Width = vg.Points(1)
		l.FillColor = phaseColors[k].c
		top.Add(l)
	}
	for _, pc := range phaseColors {
		top.Legend.Add(pc.name+" (stacked)", swatch{pc.c})
	}
	top.Legend.Top = true
	top.Legend.Left = true
	top.X.Min, top.X.Max = 0, end
	peak := 0.0
	for _, v := range sum {
		peak = max(peak, v)
	}
	top.Y.Min, top.Y.Max = 0, max(peak*1.3, 1) // room for the legend

	bottom := plot.New()
	bottom.Y.Label.Text = "worker"
	if len(names) > rows {
		bottom.Y.Label.Text = fmt.Sprintf("workers (%d a row)", (len(names)+rows-1)/rows)
	}
	bottom.X.Label.Text = "seconds since submit; colour: share of the time computing (blue 0, red 1)"
	g := &utilGrid{busy: busy, perRow: perRow, width: width}
	hm := plotter.NewHeatMap(g, moreland.SmoothBlueRed().Palette(64))
	hm.Min, hm.Max = 0, 1
	bottom.Add(hm)
	bottom.X.Min, bottom.X.Max = 0, end
	if rows <= 40 {
		ticks := make([]plot.Tick, rows)
		for i := range rows {
			ticks[i] = plot.Tick{Value: float64(i), Label: names[i*len(names)/rows]}
		}
		bottom.Y.Tick.Marker = plot.ConstantTicks(ticks)
	}

	const w, h = 10 * vg.Inch, 9 * vg.Inch
	c, err := draw.NewFormattedCanvas(w, h, plotfile.Format(path))
	if err != nil {
		return fmt.Errorf("timeline: %s: %w", path, err)
	}
	dc := draw.New(c)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadTop: vg.Points(4), PadBottom: vg.Points(4), PadLeft: vg.Points(4), PadRight: vg.Points(4), PadY: vg.Points(12)}
	plots := [][]*plot.Plot{{top}, {bottom}}
	canvases := plot.Align(plots, tiles, dc)
	top.Draw(canvases[0][0])
	bottom.Draw(canvases[1][0])
	return save(path, c)
}

// compareWorkers orders worker names with their numbers as numbers
// (local-2 before local-10).
func compareWorkers(a, b string) int {
	pa, na := splitNumber(a)
	pb, nb := splitNumber(b)
	if pa != pb {
		return strings.Compare(pa, pb)
	}
	if na != nb {
		return na - nb
	}
	return strings.Compare(a, b)
}

func splitNumber(s string) (string, int) {
	i := len(s)
	for i > 0 && s[i-1] >= '0' && s[i-1] <= '9' {
		i--
	}
	n := 0
	for _, c := range s[i:] {
		n = n*10 + int(c-'0')
		if n > 1<<30 {
			break
		}
	}
	return s[:i], n
}

// utilGrid is the heat map of the workers' utilisation.
type utilGrid struct {
	busy   [][]float64
	perRow []int
	width  float64
}

func (g *utilGrid) Dims() (c, r int) { return aggBins, len(g.busy) }
func (g *utilGrid) X(c int) float64  { return (float64(c) + 0.5) * g.width }
func (g *utilGrid) Y(r int) float64  { return float64(r) }
func (g *utilGrid) Z(c, r int) float64 {
	return min(g.busy[r][c]/(g.width*float64(max(g.perRow[r], 1))), 1)
}
