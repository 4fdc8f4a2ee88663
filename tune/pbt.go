package tune

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sort"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"

	"github.com/wrenml/wren/blob"
)

// PBT configures population-based training (Jaderberg et al. 2017): a
// population trains in intervals of Interval budget each, from its
// checkpoints (Params.LoadCheckpoint, SaveCheckpoint); after every
// interval but the last, each member of the bottom Fraction copies the
// checkpoint and values of a random member of the top Fraction (exploit)
// and perturbs them (explore): each numeric value ×0.8 or ×1.2 within its
// range (a grid value to a neighbour), or, with probability Resample,
// drawn anew, as categorical values are. The objective must checkpoint;
// the budget it is given is the total trained so far.
type PBT struct {
	// Population is how many members train at once (at least 2).
	Population int
	// Intervals is how many intervals, Interval the budget of each (at
	// least 1).
	Intervals, Interval int
	// Fraction is the share of the population replaced each interval and
	// copied from; 0 means 0.25.
	Fraction float64
	// Resample is the probability a value is drawn anew instead of
	// perturbed; 0 means 0.25.
	Resample float64
}

func (c *PBT) check() error {
	if c.Population < 2 || c.Intervals < 1 || c.Interval < 1 {
		return fmt.Errorf("%w: PBT population %d, intervals %d of %d: want a population of 2 or more and intervals of at least 1", ErrSpace, c.Population, c.Intervals, c.Interval)
	}
	if c.Fraction <= 0 || c.Fraction > 0.5 {
		c.Fraction = 0.25
	}
	if c.Resample <= 0 || c.Resample > 1 {
		c.Resample = 0.25
	}
	return nil
}

// LineageStep is what a PBT member was during one interval: its values,
// the member whose checkpoint and values it started the interval from
// (Donor; -1 when it continued its own), and its metric at the end.
type LineageStep struct {
	Interval int     `json:"interval"`
	Member   int     `json:"member"`
	Donor    int     `json:"donor"`
	Label    string  `json:"params"`
	Metric   float64 `json:"metric"`
	Failed   bool    `json:"failed,omitempty"`
	// Clipped names the values the perturbation pushed past their range
	// and that were clipped to its edge.
	Clipped []string `json:"clipped,omitempty"`
}

// LineageKey is where a PBT sweep keeps its lineage, under its prefix.
const LineageKey = "lineage.json"

// ErrNoCheckpoint reports a PBT member that left no checkpoint after an
// interval: an objective that does not checkpoint, or a resumed sweep
// whose checkpoints were deleted.
var ErrNoCheckpoint = errors.New("tune: PBT needs each member's checkpoint")

// pbt trains the population interval by interval.
func (s *sweep) pbt(space Space, c PBT) error {
	rng := rand.New(rand.NewPCG(s.opts.Seed, 0x9b7))
	random := TPE{Startup: math.MaxInt}
	members := make([]Params, c.Population)
	donors := make([]int, c.Population)
	clipped := make([][]string, c.Population)
	for i := range members {
		p := random.suggest(space, rng, nil, nil, 0)
		p.ID, p.store, p.metric = i, s.st.URL(), s.opts.Metric
		p.ckpt = fmt.Sprintf("%s/checkpoints/%06d", s.opts.Prefix, i)
		members[i], donors[i] = p, -1
	}
	nq := max(1, int(c.Fraction*float64(c.Population)))
	for iv := range c.Intervals {
		if err := s.run(members, (iv+1)*c.Interval, iv*c.Interval); err != nil {
			return err
		}
		results := map[int]Trial{}
		for len(results) < len(members) {
			select {
			case t := <-s.done:
				s.mu.Lock()
				s.pending--
				s.mu.Unlock()
				results[t.ID] = t
			case <-s.ctx.Done():
				return s.ctx.Err()
			}
		}
		order := make([]int, len(members))
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(a, b int) bool {
			ta, tb := results[order[a]], results[order[b]]
			if ta.OK() != tb.OK() {
				return ta.OK()
			}
			return ta.OK() && s.better(ta.Metrics[s.opts.Metric], tb.Metrics[s.opts.Metric])
		})
		for _, i := range order {
			t := results[i]
			s.lineage = append(s.lineage, LineageStep{Interval: iv, Member: i, Donor: donors[i], Label: members[i].Label(), Metric: t.Metrics[s.opts.Metric], Failed: !t.OK(), Clipped: clipped[i]})
		}
		s.writeLineage()
		if iv == c.Intervals-1 {
			break
		}
		// The next interval continues from every member's checkpoint: say
		// so now if one is missing, not as failures of every later run.
		for _, i := range order {
			if t := results[i]; !t.OK() {
				continue
			}
			p := members[i]
			p.budget = (iv + 1) * c.Interval
			if _, err := s.st.Stat(s.ctx, p.CheckpointKey()); err != nil {
				return fmt.Errorf("%w: member %d has no checkpoint at budget %d (%s): its objective must save one (Params.SaveCheckpoint), and a resumed sweep needs its checkpoints: %v",
					ErrNoCheckpoint, i, p.budget, p.CheckpointKey(), err)
			}
		}
		for i := range donors {
			donors[i], clipped[i] = -1, nil
			members[i].from = ""
		}
		for _, b := range order[len(order)-nq:] {
			d := order[rng.IntN(nq)]
			n, cl := perturb(space, members[d], rng, c.Resample)
			clipped[b] = cl
			n.ID, n.store, n.metric, n.ckpt = b, s.st.URL(), s.opts.Metric, members[b].ckpt
			n.from = members[d].ckpt
			members[b], donors[b] = n, d
		}
		s.opts.Logger.Info("tune: PBT interval", "interval", iv, "best", results[order[0]].Metrics[s.opts.Metric], "replaced", nq)
	}
	return nil
}

// perturb returns a copy of p's values explored: numeric ones ×0.8 or
// ×1.2 within range (grids to a neighbour), or with probability resample
// drawn anew, as categorical ones are; and the names of the values
// clipped to their range.
func perturb(space Space, p Params, rng *rand.Rand, resample float64) (Params, []string) {
	n := Params{Num: map[string]float64{}, Str: map[string]string{}}
	var clipped []string
	for _, k := range space.names() {
		d := space[k]
		switch d.Kind {
		case "choice", "labels":
			v := p.Str[k]
			if rng.Float64() < resample {
				v = d.Labels[rng.IntN(len(d.Labels))]
			}
			n.Str[k] = v
		case "grid":
			i := slices.Index(d.Values, p.Num[k])
			if rng.Float64() < resample || i < 0 {
				i = rng.IntN(len(d.Values))
			} else if rng.IntN(2) == 0 {
				i = max(0, i-1)
			} else {
				i = min(len(d.Values)-1, i+1)
			}
			n.Num[k] = d.Values[i]
		default:
			v := p.Num[k]
			if rng.Float64() < resample {
				v = d.draw(rng)
			} else {
				f := 0.8
				if rng.IntN(2) == 1 {
					f = 1.2
				}
				if v*f < d.Lo || v*f > d.Hi {
					clipped = append(clipped, k)
				}
				v = math.Min(math.Max(v*f, d.Lo), d.Hi)
				switch d.Kind {
				case "int":
					v = math.Min(math.Max(math.Round(v), d.Lo), d.Hi)
				case "quniform":
					v = d.Lo + math.Round((v-d.Lo)/d.Q)*d.Q
					v = math.Min(math.Max(v, d.Lo), d.Lo+math.Floor((d.Hi-d.Lo)/d.Q)*d.Q)
				}
			}
			n.Num[k] = v
		}
	}
	return n, clipped
}

// writeLineage keeps the lineage so far in the store.
func (s *sweep) writeLineage() {
	s.mu.Lock()
	s.res.Lineage = slices.Clone(s.lineage)
	b, err := json.Marshal(s.lineage)
	s.mu.Unlock()
	if err == nil {
		err = blob.PutBytes(context.WithoutCancel(s.ctx), s.st, s.opts.Prefix+"/"+LineageKey, b, blob.PutOptions{})
	}
	if err != nil {
		s.opts.Logger.Warn("tune: record the lineage", "err", err)
	}
}

// PlotLineage draws a PBT sweep's members' metric interval by interval to
// path, a line per member; a member that copied another starts its
// interval from the donor's point (a dashed step).
func (r *Results) PlotLineage(path string) error {
	if len(r.Lineage) == 0 {
		return fmt.Errorf("tune: no lineage (not a PBT sweep)")
	}
	at := map[[2]int]LineageStep{} // (interval, member)
	members := 0
	for _, st := range r.Lineage {
		at[[2]int{st.Interval, st.Member}] = st
		members = max(members, st.Member+1)
	}
	p := plot.New()
	p.Title.Text = fmt.Sprintf("%s of each PBT member by interval (dashed: copied a better member)", r.Metric)
	p.X.Label.Text, p.Y.Label.Text = "interval", r.Metric
	p.Add(plotter.NewGrid())
	for m := range members {
		var pts plotter.XYs
		for iv := 0; ; iv++ {
			st, ok := at[[2]int{iv, m}]
			if !ok {
				break
			}
			if st.Donor >= 0 {
				if d, ok := at[[2]int{iv - 1, st.Donor}]; ok && !d.Failed {
					jump := plotter.XYs{{X: float64(iv - 1), Y: d.Metric}, {X: float64(iv), Y: st.Metric}}
					if l, err := plotter.NewLine(jump); err == nil {
						l.Color, l.Dashes = plotutil.Color(m), []vg.Length{vg.Points(3), vg.Points(3)}
						p.Add(l)
					}
				}
				if len(pts) > 1 {
					if l, err := plotter.NewLine(pts); err == nil {
						l.Color = plotutil.Color(m)
						p.Add(l)
					}
				}
				pts = nil
			}
			if !st.Failed {
				pts = append(pts, plotter.XY{X: float64(iv), Y: st.Metric})
			}
		}
		if len(pts) > 0 {
			l, sc, err := plotter.NewLinePoints(pts)
			if err != nil {
				return err
			}
			l.Color, sc.Color = plotutil.Color(m), plotutil.Color(m)
			sc.Shape = draw.CircleGlyph{}
			p.Add(l, sc)
		}
	}
	return p.Save(8*vg.Inch, 5*vg.Inch, path)
}
