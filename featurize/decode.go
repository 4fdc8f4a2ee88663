package featurize

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	_ "image/gif"  // GIF
	_ "image/jpeg" // JPEG
	_ "image/png"  // PNG

	"github.com/disintegration/imaging"
	_ "golang.org/x/image/bmp"  // BMP
	"golang.org/x/image/tiff"   // TIFF
	_ "golang.org/x/image/webp" // WebP
)

// DefaultMaxPixels is the decoded-size cap when none is given: 100
// megapixels (about 400 MB as RGBA).
const DefaultMaxPixels = 100_000_000

// MinSide is the smallest width or height accepted (GIST's own minimum).
const MinSide = 8

// Errors recorded for images that cannot be featurized.
var (
	ErrTooManyPixels = errors.New("featurize: image exceeds the pixel cap")
	ErrTooSmall      = errors.New("featurize: image too small")
	ErrNotImage      = errors.New("featurize: not a decodable image")
)

// Decode decodes an image from its bytes: JPEG (honouring the EXIF
// orientation), PNG, GIF, WebP, BMP, TIFF, PPM, PGM. The dimensions are read
// from the header and checked against maxPixels (0: DefaultMaxPixels) and
// MinSide before any pixel is decoded, so a decompression bomb costs
// nothing.
func Decode(data []byte, maxPixels int64) (image.Image, error) {
	if maxPixels <= 0 {
		maxPixels = DefaultMaxPixels
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty file", ErrNotImage)
	}
	isTIFF := bytes.HasPrefix(data, []byte("II*\x00")) || bytes.HasPrefix(data, []byte("MM\x00*"))
	var cfg image.Config
	var format string
	var err error
	if isTIFF {
		// Straight to the TIFF decoder with a ReaderAt: through
		// image.DecodeConfig it gets a plain reader and buffers up to any
		// offset the file names (a 4 GB allocation for a 200-byte file).
		cfg, err = tiff.DecodeConfig(bytes.NewReader(data))
		format = "tiff"
	} else {
		cfg, format, err = image.DecodeConfig(bytes.NewReader(data))
	}
	if err != nil && isTIFF {
		// x/image/tiff refuses CMYK; cmykTIFF reads it.
		img, ccfg, ok, cerr := cmykTIFF(data, maxPixels)
		if ok {
			if cerr != nil {
				return nil, fmt.Errorf("%w: tiff (CMYK): %v", ErrNotImage, cerr)
			}
			if img != nil {
				return img, nil
			}
			cfg, format, err = ccfg, "tiff", nil // too large or small: reported below
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrNotImage, err)
	}
	if int64(cfg.Width)*int64(cfg.Height) > maxPixels {
		return nil, fmt.Errorf("%w: %s of %dx%d pixels, cap %d", ErrTooManyPixels, format, cfg.Width, cfg.Height, maxPixels)
	}
	if cfg.Width < MinSide || cfg.Height < MinSide {
		return nil, fmt.Errorf("%w: %dx%d pixels (minimum %dx%d)", ErrTooSmall, cfg.Width, cfg.Height, MinSide, MinSide)
	}
	var img image.Image
	if isTIFF {
		img, err = tiff.Decode(bytes.NewReader(data))
	} else {
		img, err = imaging.Decode(bytes.NewReader(data), imaging.AutoOrientation(true))
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNotImage, format, err)
	}
	return img, nil
}
