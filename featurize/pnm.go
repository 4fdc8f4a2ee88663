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
	image.RegisterFormat("ppm", "P3", decodePNM, decodePNMConfig) // plain (ASCII)
	image.RegisterFormat("pgm", "P2", decodePNM, decodePNMConfig)
}

type pnmHeader struct {
	kind         byte // '5' gray, '6' RGB; '2' and '3' their plain (ASCII) forms
	w, h, maxval int
}

func readPNMHeader(br *bufio.Reader) (pnmHeader, error) {
	var h pnmHeader
	magic := make([]byte, 2)
	if _, err := io.ReadFull(br, magic); err != nil || magic[0] != 'P' || (magic[1] < '2' || magic[1] > '6' || magic[1] == '4') {
		return h, fmt.Errorf("%w: not PPM (P6, P3) or PGM (P5, P2)", ErrPNM)
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
	if h.w <= 0 || h.h <= 0 {
		return h, fmt.Errorf("%w: %dx%d", ErrPNM, h.w, h.h)
	}
	if h.plain() {
		if h.maxval < 1 || h.maxval > 65535 {
			return h, fmt.Errorf("%w: maxval %d (1..65535)", ErrPNM, h.maxval)
		}
	} else if h.maxval != 255 {
		return h, fmt.Errorf("%w: %dx%d maxval %d (binary files: only 8-bit is supported)", ErrPNM, h.w, h.h, h.maxval)
	}
	return h, nil
}

// plain reports the ASCII forms (P2, P3).
func (h pnmHeader) plain() bool { return h.kind == '2' || h.kind == '3' }

// gray reports the PGM forms.
func (h pnmHeader) gray() bool { return h.kind == '2' || h.kind == '5' }

// plainSample reads the next decimal sample of a plain PNM raster (comments
// skipped), scaled from 0..maxval to 0..255.
func plainSample(br *bufio.Reader, maxval int) (uint8, error) {
	v, digits := 0, 0
	for {
		c, err := br.ReadByte()
		if err != nil {
			if digits > 0 && err == io.EOF {
				break
			}
			return 0, fmt.Errorf("%w: truncated pixel data", ErrPNM)
		}
		switch {
		case c >= '0' && c <= '9':
			v, digits = v*10+int(c-'0'), digits+1
			if v > maxval {
				return 0, fmt.Errorf("%w: sample over maxval %d", ErrPNM, maxval)
			}
			continue
		case c == '#' && digits == 0:
			if _, err := br.ReadString('\n'); err != nil {
				return 0, fmt.Errorf("%w: truncated pixel data", ErrPNM)
			}
			continue
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if digits == 0 {
				continue
			}
		default:
			return 0, fmt.Errorf("%w: unexpected byte %q in pixel data", ErrPNM, c)
		}
		break
	}
	return uint8((v*255 + maxval/2) / maxval), nil
}

func decodePNMConfig(r io.Reader) (image.Config, error) {
	h, err := readPNMHeader(bufio.NewReader(r))
	if err != nil {
		return image.Config{}, err
	}
	cm := color.Model(color.RGBAModel)
	if h.gray() {
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
	if h.plain() {
		if h.gray() {
			img := image.NewGray(image.Rect(0, 0, h.w, h.h))
			for i := range img.Pix {
				if img.Pix[i], err = plainSample(br, h.maxval); err != nil {
					return nil, err
				}
			}
			return img, nil
		}
		img := image.NewRGBA(image.Rect(0, 0, h.w, h.h))
		for i := range img.Pix {
			if i%4 == 3 {
				img.Pix[i] = 255
				continue
			}
			if img.Pix[i], err = plainSample(br, h.maxval); err != nil {
				return nil, err
			}
		}
		return img, nil
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
