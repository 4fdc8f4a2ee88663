package featurize

import (
	"bytes"
	"encoding/binary"
	"image"
	"slices"

	"golang.org/x/image/tiff"
)

// cmykTIFF decodes a CMYK TIFF (PhotometricInterpretation 5, separated,
// four samples), which x/image/tiff refuses: the file's directory is
// rewritten (a new one appended, the header pointed at it) to call the
// samples RGB plus an unassociated extra sample, decoded as NRGBA, and
// the pixels taken back as CMYK. ok is false for any other file.
func cmykTIFF(data []byte, maxPixels int64) (img image.Image, cfg image.Config, ok bool, err error) {
	patched, ok := cmykAsNRGBA(data)
	if !ok {
		return nil, cfg, false, nil
	}
	if cfg, err = tiff.DecodeConfig(bytes.NewReader(patched)); err != nil {
		return nil, cfg, true, err
	}
	if int64(cfg.Width)*int64(cfg.Height) > maxPixels || cfg.Width < MinSide || cfg.Height < MinSide {
		return nil, cfg, true, nil // the caller reports the size
	}
	m, err := tiff.Decode(bytes.NewReader(patched))
	if err != nil {
		return nil, cfg, true, err
	}
	n, isN := m.(*image.NRGBA)
	if !isN {
		return nil, cfg, false, nil
	}
	return &image.CMYK{Pix: n.Pix, Stride: n.Stride, Rect: n.Rect}, cfg, true, nil
}

// cmykAsNRGBA returns a copy of a CMYK TIFF whose first directory says
// RGB with an unassociated extra sample, or false.
func cmykAsNRGBA(data []byte) ([]byte, bool) {
	if len(data) < 8 {
		return nil, false
	}
	var bo interface {
		binary.ByteOrder
		binary.AppendByteOrder
	}
	switch string(data[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return nil, false
	}
	if bo.Uint16(data[2:4]) != 42 {
		return nil, false
	}
	off := int64(bo.Uint32(data[4:8]))
	if off < 8 || off+2 > int64(len(data)) {
		return nil, false
	}
	n := int64(bo.Uint16(data[off : off+2]))
	if off+2+12*n+4 > int64(len(data)) {
		return nil, false
	}
	type entry [12]byte
	var es []entry
	photometric, samples := -1, -1
	for i := range n {
		var e entry
		copy(e[:], data[off+2+12*i:])
		switch tag, typ := bo.Uint16(e[0:2]), bo.Uint16(e[2:4]); {
		case tag == 262 && typ == 3:
			photometric = int(bo.Uint16(e[8:10]))
			bo.PutUint16(e[8:10], 2) // RGB
		case tag == 277 && typ == 3:
			samples = int(bo.Uint16(e[8:10]))
		case tag == 338:
			continue // replaced below
		}
		es = append(es, e)
	}
	if photometric != 5 || samples != 4 {
		return nil, false
	}
	var extra entry
	bo.PutUint16(extra[0:2], 338) // ExtraSamples
	bo.PutUint16(extra[2:4], 3)   // SHORT
	bo.PutUint32(extra[4:8], 1)
	bo.PutUint16(extra[8:10], 2) // unassociated alpha
	es = append(es, extra)
	slices.SortFunc(es, func(a, b entry) int { return int(bo.Uint16(a[0:2])) - int(bo.Uint16(b[0:2])) })
	out := slices.Clone(data)
	if len(out)%2 == 1 {
		out = append(out, 0)
	}
	newOff := len(out)
	out = bo.AppendUint16(out, uint16(len(es)))
	for _, e := range es {
		out = append(out, e[:]...)
	}
	out = bo.AppendUint32(out, 0) // one directory
	bo.PutUint32(out[4:8], uint32(newOff))
	return out, true
}
