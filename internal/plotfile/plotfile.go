// Package plotfile writes gonum plots to files whose extension names the
// format (.png, .svg, .pdf, and the others gonum draws: .eps, .jpg, .tif).
package plotfile

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
)

// Format is the format path's extension asks for ("png" for "a/b.PNG").
func Format(path string) string {
	return strings.TrimPrefix(strings.ToLower(filepath.Ext(path)), ".")
}

// Canvas is a w x h canvas in path's format.
func Canvas(path string, w, h vg.Length) (vg.CanvasWriterTo, error) {
	c, err := draw.NewFormattedCanvas(w, h, Format(path))
	if err != nil {
		return nil, fmt.Errorf("plot %s: %w", path, err)
	}
	return c, nil
}

// Save writes a drawn canvas to path, leaving no file when it fails.
func Save(path string, c io.WriterTo) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	_, err = c.WriteTo(f)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("plot %s: %w", path, err)
	}
	return nil
}

// Stack draws plots one above the other, their axes aligned, on a w x h
// canvas and saves it to path.
func Stack(path string, w, h vg.Length, plots ...*plot.Plot) error {
	c, err := Canvas(path, w, h)
	if err != nil {
		return err
	}
	rows := make([][]*plot.Plot, len(plots))
	for i, p := range plots {
		rows[i] = []*plot.Plot{p}
	}
	canvases := plot.Align(rows, draw.Tiles{Rows: len(plots), Cols: 1, PadY: vg.Centimeter}, draw.New(c))
	for i, p := range plots {
		p.Draw(canvases[i][0])
	}
	return Save(path, c)
}
