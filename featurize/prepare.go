package featurize

import (
	"image"

	"github.com/disintegration/imaging"
)

// Prepare centre-crops img to a square of side min(width, height), at
// offset ((w-s)/2, (h-s)/2), and scales it to size x size with an
// antialiased bilinear (triangle) filter: the paper's "short side to 256,
// centre crop" for size 256. The result is an *image.NRGBA.
func Prepare(img image.Image, size int) *image.NRGBA {
	b := img.Bounds()
	s := min(b.Dx(), b.Dy())
	x0, y0 := b.Min.X+(b.Dx()-s)/2, b.Min.Y+(b.Dy()-s)/2
	sq := imaging.Crop(img, image.Rect(x0, y0, x0+s, y0+s))
	if s == size {
		return sq
	}
	return imaging.Resize(sq, size, size, imaging.Linear)
}
