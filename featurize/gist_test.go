package featurize

import (
	"encoding/csv"
	"fmt"
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
		for _, reference := range []bool{false, true} {
			name := v.dir + "/fast"
			if reference {
				name = v.dir + "/reference"
			}
			t.Run(name, func(t *testing.T) {
				refs := readRefs(t, v.ref)
				files, _ := filepath.Glob(filepath.Join(dataDir, "gist", "inputs", v.dir, "*"))
				if len(files) == 0 || len(files) != len(refs) {
					t.Fatalf("%d inputs for %d references", len(files), len(refs))
				}
				worstDiff, worstCos := 0.0, 1.0
				defer func() { t.Logf("%s: worst max |diff| %.3g, worst cosine %.10f", name, worstDiff, worstCos) }()
				for _, file := range files {
					img := readImage(t, file)
					d := describe(t, img, v.opts, reference)
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
}

func readImage(t *testing.T, file string) image.Image {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// describe computes img's descriptor with the fast kernel or the
// reference.
func describe(t *testing.T, img image.Image, opts GISTOptions, reference bool) []float32 {
	t.Helper()
	if !reference {
		d, err := GIST(img, opts)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	g, err := NewReferenceGister(img.Bounds().Dx(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return g.Compute(nil, img)
}

// TestGISTFastMatchesReference: the fast kernel against the reference on
// the dev photos at every size they come in and on random images of
// power-of-two sides and others (whose FFT is gonum's), colour and gray:
// they differ by rounding only.
func TestGISTFastMatchesReference(t *testing.T) {
	type input struct {
		name string
		img  image.Image
		opts GISTOptions
	}
	var inputs []input
	for _, dir := range []string{"rgb32", "rgb128", "rgb256", "gray128"} {
		files, _ := filepath.Glob(filepath.Join(dataDir, "gist", "inputs", dir, "*"))
		if len(files) == 0 {
			t.Fatalf("no inputs in %s", dir)
		}
		for _, f := range files {
			inputs = append(inputs, input{dir + "/" + filepath.Base(f), readImage(t, f), GISTOptions{Gray: dir == "gray128"}})
		}
	}
	for i, n := range []int{8, 16, 32, 48, 64, 100, 128, 256} {
		inputs = append(inputs, input{fmt.Sprintf("random%d", n), randomRGBA(n, uint64(i)), GISTOptions{}},
			input{fmt.Sprintf("random%d-gray", n), randomRGBA(n, uint64(i+100)), GISTOptions{Gray: true, Blocks: 2}})
	}
	for _, in := range inputs {
		fast := describe(t, in.img, in.opts, false)
		ref := describe(t, in.img, in.opts, true)
		if len(fast) != len(ref) {
			t.Fatalf("%s: %d and %d values", in.name, len(fast), len(ref))
		}
		for i := range fast {
			if d := math.Abs(float64(fast[i]) - float64(ref[i])); d > 1e-6*(1e-3+math.Abs(float64(ref[i]))) {
				t.Fatalf("%s: value %d: fast %v, reference %v", in.name, i, fast[i], ref[i])
			}
		}
	}
}
