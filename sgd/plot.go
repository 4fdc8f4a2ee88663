package sgd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
	"gonum.org/v1/plot/vg/vgpdf"
	"gonum.org/v1/plot/vg/vgsvg"
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
	w, h := 8*vg.Inch, 8*vg.Inch
	var c vg.CanvasWriterTo
	switch strings.ToLower(filepath.Ext(path)) {
	case ".png":
		c = vgimg.PngCanvas{Canvas: vgimg.New(w, h)}
	case ".svg":
		c = vgsvg.New(w, h)
	case ".pdf":
		c = vgpdf.New(w, h)
	default:
		return fmt.Errorf("sgd: plot %s: want .png, .svg or .pdf", path)
	}
	dc := draw.New(c)
	tiles := draw.Tiles{Rows: 2, Cols: 1, PadY: vg.Centimeter}
	canvases := plot.Align([][]*plot.Plot{{pl}, {pa}}, tiles, dc)
	pl.Draw(canvases[0][0])
	pa.Draw(canvases[1][0])
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := c.WriteTo(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
