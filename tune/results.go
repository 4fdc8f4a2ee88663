package tune

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"image/color"
	"io"
	"maps"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/palette/moreland"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/wrenml/wren/internal/plotfile"
)

// paramNames lists the parameters of the trials, sorted.
func (r *Results) paramNames() (num, str []string) {
	seenN, seenS := map[string]bool{}, map[string]bool{}
	for _, t := range r.Trials {
		for k := range t.Num {
			seenN[k] = true
		}
		for k := range t.Str {
			seenS[k] = true
		}
	}
	for k := range seenN {
		num = append(num, k)
	}
	for k := range seenS {
		str = append(str, k)
	}
	sort.Strings(num)
	sort.Strings(str)
	return num, str
}

func (r *Results) metricNames() []string {
	seen := map[string]bool{}
	for _, t := range r.Trials {
		for k := range t.Metrics {
			seen[k] = true
		}
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// WriteCSV writes one row per trial, best first: id, each parameter, the
// budget, each metric, the error, the duration in seconds and the attempts.
func (r *Results) WriteCSV(w io.Writer) error {
	num, str := r.paramNames()
	mets := r.metricNames()
	cw := csv.NewWriter(w)
	head := []string{"id"}
	head = append(head, num...)
	head = append(head, str...)
	head = append(head, "budget")
	head = append(head, mets...)
	head = append(head, "error", "seconds", "attempts", "reused")
	cw.Write(head)
	for _, t := range r.Trials {
		row := []string{strconv.Itoa(t.ID)}
		for _, k := range num {
			row = append(row, strconv.FormatFloat(t.Num[k], 'g', -1, 64))
		}
		for _, k := range str {
			row = append(row, t.Str[k])
		}
		row = append(row, strconv.Itoa(t.Budget))
		for _, k := range mets {
			if v, ok := t.Metrics[k]; ok {
				row = append(row, strconv.FormatFloat(v, 'g', -1, 64))
			} else {
				row = append(row, "")
			}
		}
		row = append(row, t.Err, strconv.FormatFloat(t.Duration.Seconds(), 'f', 4, 64), strconv.Itoa(t.Attempts), strconv.FormatBool(t.Reused))
		cw.Write(row)
	}
	cw.Flush()
	return cw.Error()
}

// WriteJSON writes the results (every trial, best first) as one JSON object.
func (r *Results) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// WriteTable prints the k best trials and the failures as an aligned table,
// then the summary and, when there are enough trials, the importance of
// each parameter that took more than one value (Importance).
func (r *Results) WriteTable(w io.Writer, k int) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "rank\tparams\tbudget\t%s\tseconds\t\n", r.Metric)
	for i, t := range r.Top(k) {
		fmt.Fprintf(tw, "%d\t%s\t%d\t%.6g\t%.2f\t\n", i+1, t.Label, t.Budget, t.Metrics[r.Metric], t.Duration.Seconds())
	}
	for _, t := range r.Errors() {
		msg := t.Err
		if len(msg) > 80 {
			msg = msg[:80] + "..."
		}
		fmt.Fprintf(tw, "failed\t%s\t%d\t%s\t%.2f\t\n", t.Label, t.Budget, msg, t.Duration.Seconds())
	}
	fmt.Fprintf(tw, "\n%s\n", r)
	if imp := r.Importance(); imp != nil {
		names := slices.Sorted(maps.Keys(imp))
		sort.SliceStable(names, func(i, j int) bool { return imp[names[i]] > imp[names[j]] })
		var parts []string
		for _, n := range names {
			if !r.constant(n) {
				parts = append(parts, fmt.Sprintf("%s %.2f", n, imp[n]))
			}
		}
		if len(parts) > 0 {
			fmt.Fprintf(tw, "importance (share of %s's variance): %s\n", r.Metric, strings.Join(parts, ", "))
		}
	}
	fmt.Fprintf(tw, "wall %v for %v of trials (%.1fx)", r.Wall.Round(time.Millisecond), r.TrialTime.Round(time.Millisecond), r.TrialTime.Seconds()/math.Max(r.Wall.Seconds(), 1e-9))
	if r.CostUSD > 0 {
		fmt.Fprintf(tw, ", cost $%.4f", r.CostUSD)
	}
	fmt.Fprintln(tw)
	return tw.Flush()
}

// Plot draws the sweep to path (.png, .svg, .pdf): with two numeric
// parameters that form a full grid, a heat map of the best metric per cell
// with a colour scale; with two or more numeric parameters sampled, the
// two that vary most against each other on their own axes (log where the
// values span two decades), each trial a point coloured by its metric
// (colour bar beside) and sized by its ASHA budget; with one, the metric
// against it, each categorical value its colour (legend). The best trial
// is ringed in black.
func (r *Results) Plot(path string) error {
	num, str := r.paramNames()
	var ok []Trial
	for _, t := range r.Trials {
		if _, has := t.Metrics[r.Metric]; t.OK() && has {
			ok = append(ok, t)
		}
	}
	distinct := func(k string) []float64 {
		var v []float64
		for _, t := range ok {
			if x, has := t.Num[k]; has && !slices.Contains(v, x) {
				v = append(v, x)
			}
		}
		slices.Sort(v)
		return v
	}
	num = slices.DeleteFunc(num, func(k string) bool { return len(distinct(k)) < 2 })
	sort.SliceStable(num, func(i, j int) bool { return len(distinct(num[i])) > len(distinct(num[j])) })
	if len(num) == 0 {
		return fmt.Errorf("tune: no numeric parameter with two values to plot")
	}
	if len(ok) == 0 {
		return fmt.Errorf("tune: no trial with a metric to plot")
	}
	best := r.Best()
	// Log axes for values drawn on a log scale: positive, spanning two
	// decades, and skewed as log-uniform draws are (the median far below
	// the mean; uniform draws have them together).
	logSpaced := func(vals []float64) bool {
		if len(vals) <= 2 || vals[0] <= 0 || vals[len(vals)-1]/vals[0] < 100 {
			return false
		}
		mean := 0.0
		for _, v := range vals {
			mean += v
		}
		mean /= float64(len(vals))
		return vals[len(vals)/2] < mean/3
	}
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, t := range ok {
		lo, hi = math.Min(lo, t.Metrics[r.Metric]), math.Max(hi, t.Metrics[r.Metric])
	}
	if hi == lo {
		hi = lo + 1
	}
	pal := moreland.SmoothBlueRed()
	pal.SetMin(lo)
	pal.SetMax(hi)
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s (%s) over %d trials", r.Metric, map[Mode]string{Max: "higher is better", Min: "lower is better"}[r.Mode], len(r.Trials))
	p.Legend.Top = true
	withBar := false
	switch {
	case len(num) >= 2 && fullGrid(ok, num[0], num[1], distinct(num[0]), distinct(num[1])):
		xs, ys := distinct(num[0]), distinct(num[1])
		g := &grid{xs: xs, ys: ys, z: make([]float64, len(xs)*len(ys)), min: lo, max: hi}
		for i := range g.z {
			g.z[i] = math.NaN()
		}
		for _, t := range ok {
			i, j := slices.Index(xs, t.Num[num[0]]), slices.Index(ys, t.Num[num[1]])
			v := t.Metrics[r.Metric]
			if cur := g.z[j*len(xs)+i]; math.IsNaN(cur) || (r.Mode == Max && v > cur) || (r.Mode == Min && v < cur) {
				g.z[j*len(xs)+i] = v
			}
		}
		hm := plotter.NewHeatMap(g, pal.Palette(64))
		hm.Min, hm.Max = lo, hi
		p.Add(hm)
		p.X.Label.Text, p.Y.Label.Text = num[0], num[1]
		p.X.Tick.Marker, p.Y.Tick.Marker = indexTicks(xs), indexTicks(ys)
		if best != nil {
			ring(p, float64(slices.Index(xs, best.Num[num[0]])), float64(slices.Index(ys, best.Num[num[1]])))
		}
		withBar = true
	case len(num) >= 2:
		x, y := num[0], num[1]
		var pts plotter.XYs
		var trials []Trial
		for _, t := range ok {
			if _, hx := t.Num[x]; hx {
				if _, hy := t.Num[y]; hy {
					pts = append(pts, plotter.XY{X: t.Num[x], Y: t.Num[y]})
					trials = append(trials, t)
				}
			}
		}
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			return err
		}
		maxB := 1
		for _, t := range trials {
			maxB = max(maxB, t.Budget)
		}
		sc.GlyphStyleFunc = func(i int) draw.GlyphStyle {
			c, _ := pal.At(trials[i].Metrics[r.Metric])
			rad := vg.Points(3 + 4*float64(trials[i].Budget)/float64(maxB))
			return draw.GlyphStyle{Color: c, Radius: rad, Shape: draw.CircleGlyph{}}
		}
		p.Add(plotter.NewGrid(), sc)
		p.X.Label.Text, p.Y.Label.Text = x, y
		for _, ax := range []struct {
			a    *plot.Axis
			vals []float64
		}{{&p.X, distinct(x)}, {&p.Y, distinct(y)}} {
			if logSpaced(ax.vals) {
				ax.a.Scale = plot.LogScale{}
				ax.a.Tick.Marker = plot.LogTicks{Prec: 2}
			}
		}
		if best != nil {
			ring(p, best.Num[x], best.Num[y])
		}
		if maxB > 1 {
			p.Title.Text += "; larger points: higher budget"
		}
		withBar = true
	default:
		x := num[0]
		groups := map[string]plotter.XYs{"": nil}
		cat := ""
		if len(str) > 0 {
			cat = str[0]
			groups = map[string]plotter.XYs{}
		}
		for _, t := range ok {
			groups[t.Str[cat]] = append(groups[t.Str[cat]], plotter.XY{X: t.Num[x], Y: t.Metrics[r.Metric]})
		}
		p.Add(plotter.NewGrid())
		names := slices.Sorted(maps.Keys(groups))
		for i, g := range names {
			sc, err := plotter.NewScatter(groups[g])
			if err != nil {
				return err
			}
			sc.GlyphStyle = draw.GlyphStyle{Color: plotutil.Color(i), Radius: vg.Points(3.5), Shape: plotutil.Shape(i)}
			p.Add(sc)
			if cat != "" {
				p.Legend.Add(cat+" = "+g, sc)
			}
		}
		p.Legend.Top = true
		p.X.Label.Text, p.Y.Label.Text = x, r.Metric
		if logSpaced(distinct(x)) {
			p.X.Scale = plot.LogScale{}
			p.X.Tick.Marker = plot.LogTicks{Prec: 2}
		}
		if best != nil {
			ring(p, best.Num[x], best.Metrics[r.Metric])
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil && filepath.Dir(path) != "." {
		return err
	}
	w, h := 8*vg.Inch, 6*vg.Inch
	c, err := plotfile.Canvas(path, w, h)
	if err != nil {
		return fmt.Errorf("tune: %w", err)
	}
	dc := draw.New(c)
	if withBar {
		main := draw.Crop(dc, 0, -1.1*vg.Inch, 0, 0)
		p.Draw(main)
		cb := plot.New()
		cb.Add(&plotter.ColorBar{ColorMap: pal, Vertical: true})
		cb.HideX()
		cb.Y.Label.Text = r.Metric
		cb.Y.Padding = 0
		cb.Draw(draw.Crop(dc, w-1.0*vg.Inch, 0, 0.55*vg.Inch, -0.3*vg.Inch))
	} else {
		p.Draw(dc)
	}
	if err := plotfile.Save(path, c); err != nil {
		return fmt.Errorf("tune: %w", err)
	}
	return nil
}

// fullGrid reports whether every pair of xs and ys values has a trial,
// and the grid is small enough to read as cells.
func fullGrid(ok []Trial, x, y string, xs, ys []float64) bool {
	if len(xs) > 50 || len(ys) > 50 || len(xs)*len(ys) > len(ok) {
		return false
	}
	seen := map[[2]float64]bool{}
	for _, t := range ok {
		seen[[2]float64{t.Num[x], t.Num[y]}] = true
	}
	return len(seen) == len(xs)*len(ys)
}

// ring marks the best trial.
func ring(p *plot.Plot, x, y float64) {
	sc, err := plotter.NewScatter(plotter.XYs{{X: x, Y: y}})
	if err != nil {
		return
	}
	sc.GlyphStyle = draw.GlyphStyle{Color: color.Black, Radius: vg.Points(8), Shape: draw.RingGlyph{}}
	p.Add(sc)
	p.Legend.Add("best", sc)
}

// PlotHistory draws each trial's metric and the best so far against the
// trial's number and, when the trials record when they finished, against
// the seconds since the sweep's first run started (a second panel), to
// path (.png, .svg or .pdf).
func (r *Results) PlotHistory(path string) error {
	trials := slices.Clone(r.Trials)
	sort.SliceStable(trials, func(i, j int) bool {
		if trials[i].ID != trials[j].ID {
			return trials[i].ID < trials[j].ID
		}
		return trials[i].Budget < trials[j].Budget
	})
	var usable []Trial
	timed := true
	var start time.Time
	for _, t := range trials {
		if _, ok := t.Metrics[r.Metric]; !t.OK() || !ok {
			continue
		}
		usable = append(usable, t)
		if t.Finished.IsZero() {
			timed = false
		} else if b := t.Finished.Add(-t.Duration); start.IsZero() || b.Before(start) {
			start = b
		}
	}
	if len(usable) == 0 {
		return fmt.Errorf("tune: no trial with a metric to plot")
	}
	panel := func(x func(Trial) float64, xLabel, title string) (*plot.Plot, error) {
		ts := slices.Clone(usable)
		sort.SliceStable(ts, func(i, j int) bool { return x(ts[i]) < x(ts[j]) })
		var pts, bestPts plotter.XYs
		cur, have := 0.0, false
		for _, t := range ts {
			v := t.Metrics[r.Metric]
			pts = append(pts, plotter.XY{X: x(t), Y: v})
			if !have || (r.Mode == Max && v > cur) || (r.Mode == Min && v < cur) {
				cur, have = v, true
			}
			bestPts = append(bestPts, plotter.XY{X: x(t), Y: cur})
		}
		p := plot.New()
		p.Title.Text = title
		p.X.Label.Text, p.Y.Label.Text = xLabel, r.Metric
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			return nil, err
		}
		sc.GlyphStyle.Color = color.RGBA{R: 120, G: 130, B: 150, A: 255}
		ln, err := plotter.NewLine(bestPts)
		if err != nil {
			return nil, err
		}
		ln.StepStyle = plotter.PostStep
		ln.Color, ln.Width = color.RGBA{G: 140, B: 70, A: 255}, vg.Points(2)
		p.Add(plotter.NewGrid(), sc, ln)
		p.Legend.Add("trial", sc)
		p.Legend.Add("best so far", ln)
		// The legend where the best-so-far line is not: it runs along the
		// top when the metric is maximised.
		p.Legend.Top = r.Mode != Max
		return p, nil
	}
	byTrial, err := panel(func(t Trial) float64 { return float64(t.ID) }, "trial", fmt.Sprintf("%s: each trial and the best so far", r.Metric))
	if err != nil {
		return err
	}
	if !timed {
		return byTrial.Save(8*vg.Inch, 5*vg.Inch, path)
	}
	byTime, err := panel(func(t Trial) float64 { return t.Finished.Sub(start).Seconds() }, "seconds since the sweep started", "")
	if err != nil {
		return err
	}
	byTime.X.Min = 0
	if err := plotfile.Stack(path, 8*vg.Inch, 9*vg.Inch, byTrial, byTime); err != nil {
		return fmt.Errorf("tune: %w", err)
	}
	return nil
}

// constant reports whether parameter n took one value in every trial.
func (r *Results) constant(n string) bool {
	var num float64
	var str string
	for i, t := range r.Trials {
		v, isNum := t.Num[n]
		if i == 0 {
			num, str = v, t.Str[n]
			continue
		}
		if (isNum && v != num) || (!isNum && t.Str[n] != str) {
			return false
		}
	}
	return true
}

// PlotImportance draws Importance as bars to path.
func (r *Results) PlotImportance(path string) error {
	imp := r.Importance()
	if imp == nil {
		return fmt.Errorf("tune: too few trials, or a constant metric, for importances")
	}
	names := slices.Sorted(maps.Keys(imp))
	sort.SliceStable(names, func(i, j int) bool { return imp[names[i]] > imp[names[j]] })
	vals := make(plotter.Values, len(names))
	for i, n := range names {
		vals[i] = imp[n]
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("share of %s's variance each parameter explains (first order)", r.Metric)
	bars, err := plotter.NewBarChart(vals, vg.Points(28))
	if err != nil {
		return err
	}
	bars.Color = color.RGBA{R: 47, G: 111, B: 208, A: 255}
	p.Add(bars)
	p.NominalX(names...)
	p.Y.Label.Text = "importance"
	return p.Save(8*vg.Inch, 5*vg.Inch, path)
}

// grid is a heat map's cells: metric by parameter indices.
type grid struct {
	xs, ys   []float64
	z        []float64
	min, max float64
}

func (g *grid) Dims() (c, r int)   { return len(g.xs), len(g.ys) }
func (g *grid) Z(c, r int) float64 { return g.z[r*len(g.xs)+c] }
func (g *grid) X(c int) float64    { return float64(c) }
func (g *grid) Y(r int) float64    { return float64(r) }

// indexTicks labels cell indices with the parameter values.
type indexTicks []float64

func (t indexTicks) Ticks(min, max float64) []plot.Tick {
	var out []plot.Tick
	for i, v := range t {
		out = append(out, plot.Tick{Value: float64(i), Label: strings.TrimSuffix(strconv.FormatFloat(v, 'g', 3, 64), ".0")})
	}
	return out
}
