package plotfile

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/vg"
)

// TestStack: two plots stacked into each format the extension names; an
// unknown extension is an error and leaves no file; a failed write leaves
// none either.
func TestStack(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"a.png", "a.SVG", "a.pdf"} {
		path := filepath.Join(dir, name)
		if err := Stack(path, 4*vg.Inch, 4*vg.Inch, plot.New(), plot.New()); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if fi, err := os.Stat(path); err != nil || fi.Size() < 100 {
			t.Fatalf("%s: %v %v", name, fi, err)
		}
	}
	bad := filepath.Join(dir, "a.txt")
	if err := Stack(bad, vg.Inch, vg.Inch, plot.New()); err == nil {
		t.Fatal("a .txt plot drawn")
	}
	if _, err := os.Stat(bad); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a failed plot left %v", err)
	}
	if err := Save(filepath.Join(dir, "a.png"), failing{}); err == nil {
		t.Fatal("a failed write reported no error")
	}
	if _, err := os.Stat(filepath.Join(dir, "a.png")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a failed write left the file: %v", err)
	}
}

type failing struct{}

func (failing) WriteTo(io.Writer) (int64, error) {
	return 0, errors.New("disk full")
}
