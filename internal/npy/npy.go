// Package npy reads and writes numpy's .npy format (version 1.0 and 2.0
// headers; little-endian float32, float64, int32 and int64, C order), so that
// numpy and scikit-learn read what wren writes.
package npy

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// ErrFormat reports a malformed or unsupported .npy stream.
var ErrFormat = errors.New("npy: bad format")

const magic = "\x93NUMPY"

// Number is a type the package can store.
type Number interface {
	~float32 | ~float64 | ~int32 | ~int64
}

func descr[T Number]() string {
	var z T
	switch any(z).(type) {
	case float32:
		return "<f4"
	case float64:
		return "<f8"
	case int32:
		return "<i4"
	default:
		return "<i8"
	}
}

// Write writes data with the given shape (the product must equal len(data);
// no shape means a vector).
func Write[T Number](w io.Writer, data []T, shape ...int) error {
	if len(shape) == 0 {
		shape = []int{len(data)}
	}
	n := 1
	for _, d := range shape {
		n *= d
	}
	if n != len(data) {
		return fmt.Errorf("npy: shape %v holds %d values, data has %d", shape, n, len(data))
	}
	dims := make([]string, len(shape))
	for i, d := range shape {
		dims[i] = strconv.Itoa(d)
	}
	st := strings.Join(dims, ", ")
	if len(shape) == 1 {
		st += ","
	}
	h := fmt.Sprintf("{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr[T](), st)
	// Pad so that data starts at a multiple of 64 bytes.
	total := len(magic) + 2 + 2 + len(h) + 1
	h += strings.Repeat(" ", (64-total%64)%64) + "\n"
	bw := bufio.NewWriterSize(w, 1<<16)
	bw.WriteString(magic)
	bw.Write([]byte{1, 0})
	binary.Write(bw, binary.LittleEndian, uint16(len(h)))
	bw.WriteString(h)
	buf := make([]byte, 0, 1<<16)
	for _, v := range data {
		buf = appendLE(buf, v)
		if len(buf) >= 1<<16-8 {
			if _, err := bw.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	bw.Write(buf)
	return bw.Flush()
}

func appendLE[T Number](b []byte, v T) []byte {
	switch x := any(v).(type) {
	case float32:
		return binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	case float64:
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(x))
	case int32:
		return binary.LittleEndian.AppendUint32(b, uint32(x))
	case int64:
		return binary.LittleEndian.AppendUint64(b, uint64(x))
	}
	// Named types with these underlying types.
	switch descr[T]() {
	case "<f4":
		return binary.LittleEndian.AppendUint32(b, math.Float32bits(float32(v)))
	case "<f8":
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(float64(v)))
	case "<i4":
		return binary.LittleEndian.AppendUint32(b, uint32(int32(v)))
	}
	return binary.LittleEndian.AppendUint64(b, uint64(int64(v)))
}

var (
	reDescr = regexp.MustCompile(`'descr':\s*'([<|=]?[fiu][48])'`)
	reOrder = regexp.MustCompile(`'fortran_order':\s*(True|False)`)
	reShape = regexp.MustCompile(`'shape':\s*\(([^)]*)\)`)
)

// Header is the parsed header of a .npy stream.
type Header struct {
	Descr string
	Shape []int
}

// MaxValues is the most values a header may announce (2^40, 4 TiB of
// float32): larger shapes are refused before anything is allocated.
const MaxValues = 1 << 40

// Len is the number of values the header announces (ReadHeader has checked
// that it is at most MaxValues).
func (h Header) Len() int {
	n := 1
	for _, d := range h.Shape {
		n *= d
	}
	return n
}

// ElemSize is the size of one value in bytes.
func (h Header) ElemSize() int {
	if strings.HasSuffix(h.Descr, "8") {
		return 8
	}
	return 4
}

// ReadHeader reads the magic and header, leaving r at the first value.
func ReadHeader(r io.Reader) (Header, error) {
	var pre [8]byte
	if _, err := io.ReadFull(r, pre[:]); err != nil {
		return Header{}, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	if string(pre[:6]) != magic {
		return Header{}, fmt.Errorf("%w: not a .npy file", ErrFormat)
	}
	var hlen int
	switch pre[6] {
	case 1:
		var l uint16
		if err := binary.Read(r, binary.LittleEndian, &l); err != nil {
			return Header{}, fmt.Errorf("%w: %v", ErrFormat, err)
		}
		hlen = int(l)
	case 2, 3:
		var l uint32
		if err := binary.Read(r, binary.LittleEndian, &l); err != nil {
			return Header{}, fmt.Errorf("%w: %v", ErrFormat, err)
		}
		hlen = int(l)
	default:
		return Header{}, fmt.Errorf("%w: version %d", ErrFormat, pre[6])
	}
	if hlen > 1<<20 {
		return Header{}, fmt.Errorf("%w: header of %d bytes", ErrFormat, hlen)
	}
	hb := make([]byte, hlen)
	if _, err := io.ReadFull(r, hb); err != nil {
		return Header{}, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	h := string(hb)
	var out Header
	m := reDescr.FindStringSubmatch(h)
	if m == nil {
		return out, fmt.Errorf("%w: unsupported dtype in %q", ErrFormat, strings.TrimSpace(h))
	}
	out.Descr = strings.TrimLeft(m[1], "<|=")
	if o := reOrder.FindStringSubmatch(h); o == nil || o[1] != "False" {
		return out, fmt.Errorf("%w: only C order is supported", ErrFormat)
	}
	s := reShape.FindStringSubmatch(h)
	if s == nil {
		return out, fmt.Errorf("%w: no shape in header", ErrFormat)
	}
	for _, f := range strings.Split(s[1], ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		d, err := strconv.Atoi(f)
		if err != nil || d < 0 {
			return out, fmt.Errorf("%w: shape %q", ErrFormat, s[1])
		}
		out.Shape = append(out.Shape, d)
	}
	// The product, checked step by step so that it cannot overflow.
	n := 1
	for _, d := range out.Shape {
		if d != 0 && n > MaxValues/d {
			return out, fmt.Errorf("%w: shape %q announces more than %d values", ErrFormat, s[1], MaxValues)
		}
		n *= d
	}
	return out, nil
}

// Read reads a whole .npy stream of element type T (float32 data may be read
// as float32 only, and so on: no conversion).
func Read[T Number](r io.Reader) ([]T, []int, error) {
	h, err := ReadHeader(r)
	if err != nil {
		return nil, nil, err
	}
	want := strings.TrimLeft(descr[T](), "<")
	if h.Descr != want {
		return nil, nil, fmt.Errorf("%w: dtype %s, want %s", ErrFormat, h.Descr, want)
	}
	n, size := h.Len(), h.ElemSize()
	// Never trust the header's size for an allocation: when the stream's
	// length is known, check it first; otherwise grow the result with the
	// data actually read.
	if lr, ok := r.(interface{ Len() int }); ok && int64(lr.Len()) < int64(n)*int64(size) {
		return nil, nil, fmt.Errorf("%w: header announces %d values (%d bytes), the data holds %d bytes", ErrFormat, n, int64(n)*int64(size), lr.Len())
	}
	out := make([]T, 0, min(n, 1<<16))
	br := bufio.NewReaderSize(r, 1<<16)
	buf := make([]byte, 1<<16)
	for len(out) < n {
		k := min(n-len(out), len(buf)/size)
		if _, err := io.ReadFull(br, buf[:k*size]); err != nil {
			return nil, nil, fmt.Errorf("%w: data ends before the %d values the header announces", ErrFormat, n)
		}
		for i := 0; i < k*size; i += size {
			var v T
			switch want {
			case "f4":
				v = T(math.Float32frombits(binary.LittleEndian.Uint32(buf[i:])))
			case "f8":
				v = T(math.Float64frombits(binary.LittleEndian.Uint64(buf[i:])))
			case "i4":
				v = T(int32(binary.LittleEndian.Uint32(buf[i:])))
			default:
				v = T(int64(binary.LittleEndian.Uint64(buf[i:])))
			}
			out = append(out, v)
		}
	}
	return out, h.Shape, nil
}
