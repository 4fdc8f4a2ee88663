package featurize

import (
	"encoding/csv"
	"image"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

const dataDir = "testdata"

func readRefs(t *testing.T, name string) map[string][]float64 {
	t.Helper()
	f, err := os.Open(filepath.Join(dataDir, "gist", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]float64{}
	for _, r := range recs[1:] {
		v := make([]float64, len(r)-1)
		for i, s := range r[1:] {
			v[i], err = strconv.ParseFloat(s, 64)
			if err != nil {
				t.Fatal(err)
			}
		}
		out[filepath.Base(r[0])] = v
	}
	return out
}

func TestGISTMatchesLEAR(t *testing.T) {
	variants := []struct {
		ref, dir string
		opts     GISTOptions
		dim      int
	}{
		{"reference-color32.csv", "rgb32", GISTOptions{}, 960},
		{"reference-color128.csv", "rgb128", GISTOptions{}, 960},
		{"reference-color256.csv", "rgb256", GISTOptions{}, 960},
		{"reference-gray128.csv", "gray128", GISTOptions{Gray: true}, 512},
	}
	for _, v := range variants {
		t.Run(v.dir, func(t *testing.T) {
			refs := readRefs(t, v.ref)
			files, _ := filepath.Glob(filepath.Join(dataDir, "gist", "inputs", v.dir, "*"))
			if len(files) == 0 || len(files) != len(refs) {
				t.Fatalf("%d inputs for %d references", len(files), len(refs))
			}
			worstDiff, worstCos := 0.0, 1.0
			defer func() { t.Logf("%s: worst max |diff| %.3g, worst cosine %.10f", v.dir, worstDiff, worstCos) }()
			for _, file := range files {
				f, err := os.Open(file)
				if err != nil {
					t.Fatal(err)
				}
				img, _, err := image.Decode(f)
				f.Close()
				if err != nil {
					t.Fatal(err)
				}
				d, err := GIST(img, v.opts)
				if err != nil {
					t.Fatal(err)
				}
				base := filepath.Base(file)
				stem := base[:len(base)-len(filepath.Ext(base))]
				ref := refs[stem]
				if ref == nil {
					ref = refs[base]
				}
				if len(d) != v.dim || len(ref) != v.dim {
					t.Fatalf("%s: dims %d and %d, want %d", file, len(d), len(ref), v.dim)
				}
				var maxd, dot, na, nb float64
				for i := range d {
					x, y := float64(d[i]), ref[i]
					maxd = math.Max(maxd, math.Abs(x-y))
					dot += x * y
					na += x * x
					nb += y * y
				}
				cos := dot / math.Sqrt(na*nb)
				worstDiff, worstCos = math.Max(worstDiff, maxd), math.Min(worstCos, cos)
				if maxd > 1e-5 || cos < 0.999999 {
					t.Errorf("%s: max |diff| %.3g, cosine %.9f", base, maxd, cos)
				}
			}
		})
	}
}
