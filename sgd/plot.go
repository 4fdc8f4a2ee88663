package sgd

import (
	"errors"
	"fmt"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/wrenml/wren/internal/plotfile"
)

// PlotLoss draws the evaluation curve, the loss above and the accuracy
// below, against the seconds since training began, and saves it; the format
// follows the extension (.png, .svg, .pdf).
func (r *Result) PlotLoss(path string) error {
	if len(r.Curve) == 0 {
		return errors.New("sgd: no evaluations to plot (set Options.Eval)")
	}
	loss, acc := make(plotter.XYs, len(r.Curve)), make(plotter.XYs, len(r.Curve))
	for i, p := range r.Curve {
		loss[i] = plotter.XY{X: p.Time.Seconds(), Y: p.Loss}
		acc[i] = plotter.XY{X: p.Time.Seconds(), Y: p.Accuracy}
	}
	mk := func(title, ylabel string, pts plotter.XYs) (*plot.Plot, error) {
		p := plot.New()
		p.Title.Text = title
		p.X.Label.Text = "seconds since training began"
		p.Y.Label.Text = ylabel
		p.Add(plotter.NewGrid())
		l, s, err := plotter.NewLinePoints(pts)
		if err != nil {
			return nil, err
		}
		p.Add(l, s)
		return p, nil
	}
	pl, err := mk(fmt.Sprintf("%s: %s on %d features, %d workers", r.Name, r.Loss.Name(), r.Dim, len(r.Workers)), "evaluation loss", loss)
	if err != nil {
		return err
	}
	pa, err := mk("", "evaluation accuracy", acc)
	if err != nil {
		return err
	}
	if err := plotfile.Stack(path, 8*vg.Inch, 8*vg.Inch, pl, pa); err != nil {
		return fmt.Errorf("sgd: %w", err)
	}
	return nil
}
