package featurize

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"image"
	"image/color"
	"runtime"
	"strings"
	"testing"
)

// bmp8 writes an 8-bit paletted BMP with an info header of infoLen bytes.
func bmp8(w, h, infoLen int) []byte {
	var b bytes.Buffer
	rowLen := (w + 3) &^ 3
	off := 14 + infoLen + 256*4
	le := binary.LittleEndian
	b.WriteString("BM")
	binary.Write(&b, le, uint32(off+rowLen*h))
	binary.Write(&b, le, uint32(0))
	binary.Write(&b, le, uint32(off))
	info := make([]byte, infoLen)
	le.PutUint32(info[0:], uint32(infoLen))
	le.PutUint32(info[4:], uint32(w))
	le.PutUint32(info[8:], uint32(h))
	le.PutUint16(info[12:], 1)
	le.PutUint16(info[14:], 8)
	le.PutUint32(info[32:], 256) // colours used
	if infoLen >= 108 {
		copy(info[56:], []byte("BGRs")) // LCS_sRGB, little-endian "sRGB"
	}
	b.Write(info)
	for i := range 256 {
		b.Write([]byte{byte(i), byte(255 - i), byte(i / 2), 0})
	}
	for y := range h {
		row := make([]byte, rowLen)
		for x := range w {
			row[x] = byte(x + y)
		}
		b.Write(row)
	}
	return b.Bytes()
}

// makeCMYKTIFF writes an uncompressed 8-bit CMYK TIFF (PhotometricInterpretation
// 5, InkSet 1) of w x h pixels.
func makeCMYKTIFF(le binary.ByteOrder, w, h int, px func(x, y int) [4]byte) []byte {
	type tag struct {
		id, typ uint16
		n, val  uint32
	}
	const nTags = 11
	ifdOff := 8
	bpsOff := ifdOff + 2 + nTags*12 + 4
	dataOff := bpsOff + 8
	tags := []tag{
		{256, 3, 1, uint32(w)}, {257, 3, 1, uint32(h)}, {258, 3, 4, uint32(bpsOff)}, {259, 3, 1, 1},
		{262, 3, 1, 5}, {273, 4, 1, uint32(dataOff)}, {277, 3, 1, 4}, {278, 3, 1, uint32(h)},
		{279, 4, 1, uint32(w * h * 4)}, {284, 3, 1, 1}, {332, 3, 1, 1},
	}
	var b bytes.Buffer
	if le == binary.BigEndian {
		b.WriteString("MM")
	} else {
		b.WriteString("II")
	}
	binary.Write(&b, le, uint16(42))
	binary.Write(&b, le, uint32(ifdOff))
	binary.Write(&b, le, uint16(nTags))
	for _, t := range tags {
		binary.Write(&b, le, t.id)
		binary.Write(&b, le, t.typ)
		binary.Write(&b, le, t.n)
		if t.typ == 3 && t.n == 1 { // a SHORT is left-justified in the value field
			binary.Write(&b, le, uint16(t.val))
			binary.Write(&b, le, uint16(0))
		} else {
			binary.Write(&b, le, t.val)
		}
	}
	binary.Write(&b, le, uint32(0))
	for range 4 {
		binary.Write(&b, le, uint16(8))
	}
	for y := range h {
		for x := range w {
			p := px(x, y)
			b.Write(p[:])
		}
	}
	return b.Bytes()
}

// TestDecodeMoreFormats: what other tools write and Decode once refused —
// plain (ASCII) PPM/PGM of any maxval, CMYK TIFF in both byte orders —
// and 8-bit paletted BMPs with v4/v5 headers, each to the right pixels;
// their bad forms are clear errors.
func TestDecodeMoreFormats(t *testing.T) {
	// Plain PPM against the binary PPM of the same pixels.
	var p3, p6 bytes.Buffer
	fmt.Fprintf(&p3, "P3\n# a comment\n9 8\n255\n")
	fmt.Fprintf(&p6, "P6 9 8 255\n")
	for y := range 8 {
		for x := range 9 {
			r, g, b := byte(x*28), byte(y*30), byte(x*y)
			fmt.Fprintf(&p3, "%d %d %d\n", r, g, b)
			p6.Write([]byte{r, g, b})
		}
	}
	a, err := Decode(p3.Bytes(), 0)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Decode(p6.Bytes(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.(*image.RGBA).Pix, b.(*image.RGBA).Pix) {
		t.Fatal("P3 and P6 of the same pixels differ")
	}
	// Plain PGM, maxval 15: scaled to 0..255.
	var p2 strings.Builder
	p2.WriteString("P2 8 8 15\n")
	for i := range 64 {
		fmt.Fprintf(&p2, "%d ", i%16)
	}
	g, err := Decode([]byte(p2.String()), 0)
	if err != nil {
		t.Fatal(err)
	}
	if gp := g.(*image.Gray).Pix; gp[0] != 0 || gp[15] != 255 || gp[8] != 136 {
		t.Fatalf("P2 maxval 15: %v", gp[:16])
	}
	for name, bad := range map[string]string{
		"sample over maxval": "P2 8 8 15\n" + strings.Repeat("16 ", 64),
		"truncated":          "P2 8 8 255\n1 2 3",
		"letters":            "P2 8 8 255\n" + strings.Repeat("x ", 64),
		"maxval 0":           "P2 8 8 0\n" + strings.Repeat("0 ", 64),
		"binary 16-bit":      "P5 8 8 65535\n" + strings.Repeat("\x00\x00", 64),
	} {
		if _, err := Decode([]byte(bad), 0); !errors.Is(err, ErrNotImage) {
			t.Errorf("%s: %v", name, err)
		}
	}

	// CMYK TIFF, little- and big-endian: the pixels of color.CMYK.
	px := func(x, y int) [4]byte { return [4]byte{byte(x * 20), byte(y * 20), byte(x * y), byte(40)} }
	for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		img, err := Decode(makeCMYKTIFF(bo, 12, 10, px), 0)
		if err != nil {
			t.Fatalf("%v: %v", bo, err)
		}
		if img.Bounds().Dx() != 12 || img.Bounds().Dy() != 10 {
			t.Fatalf("%v: bounds %v", bo, img.Bounds())
		}
		for y := range 10 {
			for x := range 12 {
				p := px(x, y)
				want := color.RGBAModel.Convert(color.CMYK{p[0], p[1], p[2], p[3]})
				if got := color.RGBAModel.Convert(img.At(x, y)); got != want {
					t.Fatalf("%v: pixel %d,%d: %v, want %v", bo, x, y, got, want)
				}
			}
		}
	}
	if _, err := Decode(makeCMYKTIFF(binary.LittleEndian, 12, 10, px), 100); !errors.Is(err, ErrTooManyPixels) {
		t.Fatalf("a CMYK TIFF over the pixel cap: %v", err)
	}
	cut := makeCMYKTIFF(binary.LittleEndian, 12, 10, px)
	if _, err := Decode(cut[:len(cut)-200], 0); !errors.Is(err, ErrNotImage) {
		t.Fatalf("a truncated CMYK TIFF: %v", err)
	}

	// 8-bit paletted BMP with BITMAPINFOHEADER, V4 and V5 headers.
	for _, n := range []int{40, 108, 124} {
		img, err := Decode(bmp8(16, 16, n), 0)
		if err != nil {
			t.Fatalf("BMP header %d: %v", n, err)
		}
		// bmp8: stored row r (bottom-up: image row 15-r) holds index x+r.
		i := 3 + 0 // x 3, image row 15 is stored row 0
		want := color.RGBA{byte(i / 2), byte(255 - i), byte(i), 255}
		if got := color.RGBAModel.Convert(img.At(3, 15)); got != want {
			t.Fatalf("BMP header %d: pixel %v, want %v", n, got, want)
		}
	}
}

// TestTIFFFarOffset: a 12-byte TIFF naming a directory 2 GB away is
// refused without allocating up to it (image.DecodeConfig handed the TIFF
// decoder a plain reader, which buffered up to the offset: 2 GB, found by
// FuzzDecode).
func TestTIFFFarOffset(t *testing.T) {
	data := []byte("II*\x00\x00\x00\x00\x7f\x00\x00\x00\x00")
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	_, err := Decode(data, 0)
	runtime.ReadMemStats(&m1)
	if !errors.Is(err, ErrNotImage) {
		t.Fatalf("err %v", err)
	}
	if a := m1.TotalAlloc - m0.TotalAlloc; a > 64<<20 {
		t.Fatalf("decoding 12 bytes allocated %d MB", a>>20)
	}
}
