package tune

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
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
	"gonum.org/v1/plot/vg"
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

// WriteTable prints the k best trials and the failures as an aligned table.
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
	fmt.Fprintf(tw, "wall %v for %v of trials (%.1fx)", r.Wall.Round(time.Millisecond), r.TrialTime.Round(time.Millisecond), r.TrialTime.Seconds()/math.Max(r.Wall.Seconds(), 1e-9))
	if r.CostUSD > 0 {
		fmt.Fprintf(tw, ", cost $%.4f", r.CostUSD)
	}
	fmt.Fprintln(tw)
	return tw.Flush()
}

// Plot draws the metric against the numeric parameter with the most
// distinct values, or, when there are two or more, a heat map of the best
// metric over the two with the most values; the format follows the
// extension (.png, .svg, .pdf).
func (r *Results) Plot(path string) error {
	num, _ := r.paramNames()
	distinct := func(k string) []float64 {
		var v []float64
		for _, t := range r.Trials {
			if x, ok := t.Num[k]; ok && t.OK() && !slices.Contains(v, x) {
				v = append(v, x)
			}
		}
		slices.Sort(v)
		return v
	}
	sort.SliceStable(num, func(i, j int) bool { return len(distinct(num[i])) > len(distinct(num[j])) })
	if len(num) == 0 {
		return fmt.Errorf("tune: no numeric parameter to plot")
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s over %d trials", r.Metric, len(r.Trials))
	log := func(vals []float64) bool {
		return len(vals) > 2 && vals[0] > 0 && vals[len(vals)-1]/vals[0] >= 100
	}
	if len(num) >= 2 && len(distinct(num[1])) >= 2 && len(distinct(num[1])) <= 50 && len(distinct(num[0])) <= 50 {
		xs, ys := distinct(num[0]), distinct(num[1])
		g := &grid{xs: xs, ys: ys, z: make([]float64, len(xs)*len(ys)), min: math.Inf(1), max: math.Inf(-1)}
		for i := range g.z {
			g.z[i] = math.NaN()
		}
		for _, t := range r.Trials {
			if !t.OK() {
				continue
			}
			i, j := slices.Index(xs, t.Num[num[0]]), slices.Index(ys, t.Num[num[1]])
			v := t.Metrics[r.Metric]
			if cur := g.z[j*len(xs)+i]; math.IsNaN(cur) || (r.Mode == Max && v > cur) || (r.Mode == Min && v < cur) {
				g.z[j*len(xs)+i] = v
			}
			g.min, g.max = math.Min(g.min, v), math.Max(g.max, v)
		}
		pal := moreland.SmoothBlueRed().Palette(64)
		hm := plotter.NewHeatMap(g, pal)
		hm.NaN = plotter.DefaultGlyphStyle.Color
		p.Add(hm)
		p.X.Label.Text = num[0] + " (index)"
		p.Y.Label.Text = num[1] + " (index)"
		p.X.Tick.Marker = indexTicks(xs)
		p.Y.Tick.Marker = indexTicks(ys)
		p.Title.Text += fmt.Sprintf(" (best per cell: %.4g .. %.4g)", g.min, g.max)
	} else {
		var pts plotter.XYs
		for _, t := range r.Trials {
			if t.OK() {
				pts = append(pts, plotter.XY{X: t.Num[num[0]], Y: t.Metrics[r.Metric]})
			}
		}
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			return err
		}
		p.Add(plotter.NewGrid(), sc)
		p.X.Label.Text = num[0]
		p.Y.Label.Text = r.Metric
		if log(distinct(num[0])) {
			p.X.Scale = plot.LogScale{}
			p.X.Tick.Marker = plot.LogTicks{Prec: 2}
		}
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil && filepath.Dir(path) != "." {
		return err
	}
	return p.Save(8*vg.Inch, 6*vg.Inch, path)
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
