package featurize

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// seedImages adds small real images of every format path to a fuzz corpus.
func seedImages(f *testing.F) {
	f.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 16, 12))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 13)
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	f.Add(b.Bytes())
	b.Reset()
	jpeg.Encode(&b, img, nil)
	f.Add(b.Bytes())
	for _, p := range []string{"gist/inputs/rgb32/brick.ppm", "gist/inputs/gray128/coins.pgm"} {
		if data, err := os.ReadFile(filepath.Join("testdata", p)); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte("P6\n1048576 1048576\n255\n"))
	f.Add([]byte("P5 9 9 255\n"))
	f.Add([]byte("P3 9 8 255\n# c\n1 2 3 4 5 6"))
	f.Add([]byte("P2 8 8 15\n0 15 16"))
	f.Add(makeCMYKTIFF(binary.LittleEndian, 9, 9, func(x, y int) [4]byte { return [4]byte{byte(x), byte(y), 9, 99} }))
}

// FuzzDecode: no input makes Decode panic or return an image outside the
// pixel cap or under the minimum side; every failure is a classified error.
func FuzzDecode(f *testing.F) {
	seedImages(f)
	const maxPixels = 1 << 16
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := Decode(data, maxPixels)
		if err != nil {
			if !errors.Is(err, ErrNotImage) && !errors.Is(err, ErrTooManyPixels) && !errors.Is(err, ErrTooSmall) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		b := img.Bounds()
		if int64(b.Dx())*int64(b.Dy()) > maxPixels || b.Dx() < MinSide || b.Dy() < MinSide {
			t.Fatalf("decoded %v past the checks", b)
		}
	})
}

// FuzzPNM: the PPM/PGM decoder, reached directly through image.Decode,
// never panics, never allocates past DefaultMaxPixels, and returns images
// whose pixels were all in the input.
func FuzzPNM(f *testing.F) {
	seedImages(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := decodePNM(bytes.NewReader(data))
		if err != nil {
			return
		}
		b := img.Bounds()
		per := 3
		if _, gray := img.(*image.Gray); gray {
			per = 1
		}
		if b.Dx()*b.Dy()*per > len(data) {
			t.Fatalf("a %v image from %d bytes", b, len(data))
		}
	})
}
