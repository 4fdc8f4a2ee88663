package featurize

import (
	"image"
	"math/rand/v2"
	"strconv"
	"testing"
)

func randomRGBA(n int, seed uint64) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, n, n))
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range img.Pix {
		img.Pix[i] = uint8(r.IntN(256))
	}
	return img
}

func BenchmarkGIST(b *testing.B) {
	bench(b, NewGister)
}

func BenchmarkGISTReference(b *testing.B) {
	bench(b, NewReferenceGister)
}

func bench(b *testing.B, newGister func(int, GISTOptions) (*Gister, error)) {
	for _, n := range []int{32, 128, 256} {
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			g, err := newGister(n, GISTOptions{})
			if err != nil {
				b.Fatal(err)
			}
			img := randomRGBA(n, 1)
			var dst []float32
			b.ReportAllocs()
			for b.Loop() {
				dst = g.Compute(dst, img)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
		})
	}
}
