package featurize

import (
	"bufio"
	"errors"
	"fmt"
	"image"
	"image/color"
	"io"
)

// ErrPNM reports a malformed PPM or PGM stream.
var ErrPNM = errors.New("featurize: bad PPM/PGM")

func init() {
	image.RegisterFormat("ppm", "P6", decodePNM, decodePNMConfig)
	image.RegisterFormat("pgm", "P5", decodePNM, decodePNMConfig)
}

type pnmHeader struct {
	kind         byte // '5' gray, '6' RGB
	w, h, maxval int
}

func readPNMHeader(br *bufio.Reader) (pnmHeader, error) {
	var h pnmHeader
	magic := make([]byte, 2)
	if _, err := io.ReadFull(br, magic); err != nil || magic[0] != 'P' || (magic[1] != '5' && magic[1] != '6') {
		return h, fmt.Errorf("%w: not binary PPM (P6) or PGM (P5)", ErrPNM)
	}
	h.kind = magic[1]
	vals := make([]int, 0, 3)
	for len(vals) < 3 {
		c, err := br.ReadByte()
		if err != nil {
			return h, fmt.Errorf("%w: truncated header", ErrPNM)
		}
		switch {
		case c == '#':
			if _, err := br.ReadString('\n'); err != nil {
				return h, fmt.Errorf("%w: truncated comment", ErrPNM)
			}
		case c >= '0' && c <= '9':
			v := int(c - '0')
			for {
				c, err = br.ReadByte()
				if err != nil || c < '0' || c > '9' {
					break
				}
				v = v*10 + int(c-'0')
				if v > 1<<20 {
					return h, fmt.Errorf("%w: dimension too large", ErrPNM)
				}
			}
			vals = append(vals, v)
			if err != nil {
				return h, fmt.Errorf("%w: truncated header", ErrPNM)
			}
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
		default:
			return h, fmt.Errorf("%w: unexpected byte %q in header", ErrPNM, c)
		}
	}
	h.w, h.h, h.maxval = vals[0], vals[1], vals[2]
	if h.w <= 0 || h.h <= 0 || h.maxval != 255 {
		return h, fmt.Errorf("%w: %dx%d maxval %d (only 8-bit is supported)", ErrPNM, h.w, h.h, h.maxval)
	}
	return h, nil
}

func decodePNMConfig(r io.Reader) (image.Config, error) {
	h, err := readPNMHeader(bufio.NewReader(r))
	if err != nil {
		return image.Config{}, err
	}
	cm := color.Model(color.RGBAModel)
	if h.kind == '5' {
		cm = color.GrayModel
	}
	return image.Config{ColorModel: cm, Width: h.w, Height: h.h}, nil
}

func decodePNM(r io.Reader) (image.Image, error) {
	br := bufio.NewReader(r)
	h, err := readPNMHeader(br)
	if err != nil {
		return nil, err
	}
	// Called through image.Decode, no caller checked the size first: the
	// pixel buffer is sized by the header, so cap it here too.
	if int64(h.w)*int64(h.h) > DefaultMaxPixels {
		return nil, fmt.Errorf("%w: %dx%d pixels, cap %d", ErrTooManyPixels, h.w, h.h, int64(DefaultMaxPixels))
	}
	if h.kind == '5' {
		img := image.NewGray(image.Rect(0, 0, h.w, h.h))
		if _, err := io.ReadFull(br, img.Pix); err != nil {
			return nil, fmt.Errorf("%w: truncated pixel data", ErrPNM)
		}
		return img, nil
	}
	img := image.NewRGBA(image.Rect(0, 0, h.w, h.h))
	row := make([]byte, 3*h.w)
	for y := range h.h {
		if _, err := io.ReadFull(br, row); err != nil {
			return nil, fmt.Errorf("%w: truncated pixel data", ErrPNM)
		}
		p := img.Pix[y*img.Stride:]
		for x := range h.w {
			p[4*x], p[4*x+1], p[4*x+2], p[4*x+3] = row[3*x], row[3*x+1], row[3*x+2], 255
		}
	}
	return img, nil
}
