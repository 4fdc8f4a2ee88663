package featurize

import (
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
)

// Synthesize writes an ImageNet-style tree of real JPEG files under dir:
// dir/class-NN/img-NNNN.jpg, perClass images for each of classes classes.
// Each class has its own texture (oriented gratings at a class-specific
// angle and frequency, and a colour tint); images vary in size, aspect,
// phase, contrast and noise, so that GIST features separate the classes
// but not trivially. The same seed writes the same files.
func Synthesize(dir string, classes, perClass int, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	for c := range classes {
		cdir := filepath.Join(dir, fmt.Sprintf("class-%02d", c))
		if err := os.MkdirAll(cdir, 0o755); err != nil {
			return err
		}
		theta := math.Pi * float64(c) / float64(classes)
		freq := 0.05 + 0.25*float64(c%4)/4
		tint := [3]float64{0.6 + 0.4*rng.Float64(), 0.6 + 0.4*rng.Float64(), 0.6 + 0.4*rng.Float64()}
		for i := range perClass {
			w, h := 160+rng.IntN(200), 120+rng.IntN(200)
			img := image.NewRGBA(image.Rect(0, 0, w, h))
			th := theta + 0.15*rng.NormFloat64()
			f := freq * (0.8 + 0.4*rng.Float64())
			phase := 2 * math.Pi * rng.Float64()
			contrast := 60 + 50*rng.Float64()
			cs, sn := math.Cos(th), math.Sin(th)
			for y := range h {
				for x := range w {
					v := math.Sin(2*math.Pi*f*(float64(x)*cs+float64(y)*sn)+phase)*contrast + 128 + 25*rng.NormFloat64()
					var px [3]uint8
					for k := range 3 {
						px[k] = uint8(max(0, min(255, v*tint[k])))
					}
					img.SetRGBA(x, y, color.RGBA{px[0], px[1], px[2], 255})
				}
			}
			p := filepath.Join(cdir, fmt.Sprintf("img-%04d.jpg", i))
			fh, err := os.Create(p)
			if err != nil {
				return err
			}
			if err := jpeg.Encode(fh, img, &jpeg.Options{Quality: 90}); err != nil {
				fh.Close()
				return err
			}
			if err := fh.Close(); err != nil {
				return err
			}
		}
	}
	return nil
}
