package linear

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"unicode/utf8"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/dataset"
)

// Errors for bad data; check with errors.Is.
var (
	ErrEmpty     = errors.New("linear: empty dataset")
	ErrBadData   = errors.New("linear: bad data")
	ErrSingular  = errors.New("linear: singular system")
	ErrMismatch  = errors.New("linear: shards of different widths")
	ErrBadLabels = errors.New("linear: label out of range")
	ErrTooLarge  = errors.New("linear: too large")
)

// MaxDenseBytes bounds the dense matrices the package allocates (a dense
// copy of sparse data, ridge's d x d system): past it a function fails with
// ErrTooLarge instead of exhausting memory. 8 GiB unless changed.
var MaxDenseBytes int64 = 8 << 30

// Dataset is a labelled feature matrix, in memory or as shards in a blob
// store that are read one at a time. It is safe for concurrent reads.
type Dataset struct {
	// Dim is the number of features, Classes the number of classes, N the
	// number of examples.
	Dim, Classes, N int
	// ClassNames are the class names, when the source has them.
	ClassNames []string
	// LabelValues are the label values of a libsvm source (class c is
	// LabelValues[c], sorted); nil when the labels are class indices.
	LabelValues []float64

	mem    *matrix // in memory
	store  blob.Store
	shards []shardRef
}

type shardRef struct {
	base string
	n    int
}

// FromDense makes an in-memory dataset from a row-major n x dim matrix and
// labels in [0, classes). classes <= 0 means max(label) + 1.
func FromDense(x []float64, dim int, labels []int32, classes int) (*Dataset, error) {
	if dim <= 0 || len(labels) == 0 || len(x) == 0 {
		return nil, ErrEmpty
	}
	if len(x) != len(labels)*dim {
		return nil, fmt.Errorf("%w: %d values for %d rows of %d", ErrBadData, len(x), len(labels), dim)
	}
	if err := checkFinite(x, dim, 0); err != nil {
		return nil, err
	}
	if classes <= 0 {
		for _, y := range labels {
			classes = max(classes, int(y)+1)
		}
	}
	if err := checkLabels(labels, classes, 0); err != nil {
		return nil, err
	}
	m := newMatrix(x, len(labels), dim)
	m.y = labels
	return &Dataset{Dim: dim, Classes: classes, N: len(labels), mem: m}, nil
}

func checkFinite(x []float64, dim, row0 int) error {
	for i, v := range x {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%w: %v at row %d, feature %d", ErrBadData, v, row0+i/dim, i%dim)
		}
	}
	return nil
}

func checkLabels(y []int32, classes, row0 int) error {
	for i, v := range y {
		if v < 0 || int(v) >= classes {
			return fmt.Errorf("%w: label %d at row %d (classes: %d)", ErrBadLabels, v, row0+i, classes)
		}
	}
	return nil
}

// Load opens the feature shards under prefix (package dataset's dense
// shards, as featurize writes them). Nothing but the shards' metadata is
// read now; the fits stream the shards.
func Load(ctx context.Context, store blob.Store, prefix string) (*Dataset, error) {
	l, err := dataset.List(ctx, store, prefix)
	if err != nil {
		return nil, fmt.Errorf("linear: %w", dataErr(err))
	}
	if l.Format != dataset.Dense {
		return nil, fmt.Errorf("linear: %w: the shards under %q are libsvm text (read them with ReadLibSVM)", ErrEmpty, prefix)
	}
	ds := &Dataset{store: store, Dim: l.Dim, N: l.N}
	for _, sh := range l.Shards {
		ds.shards = append(ds.shards, shardRef{base: sh.Base, n: sh.N})
	}
	if l.Classes != nil {
		ds.ClassNames = l.Classes
		ds.Classes = len(l.Classes)
	} else {
		// No class table: one pass over the labels.
		for _, s := range ds.shards {
			y, err := dataset.ReadLabels(ctx, store, s.base)
			if err != nil {
				return nil, fmt.Errorf("linear: %w", dataErr(err))
			}
			for _, v := range y {
				ds.Classes = max(ds.Classes, int(v)+1)
			}
		}
	}
	return ds, nil
}

// dataErr marks a dataset error with this package's sentinel of the same
// meaning, keeping both.
func dataErr(err error) error {
	switch {
	case errors.Is(err, dataset.ErrEmpty):
		return fmt.Errorf("%w: %w", ErrEmpty, err)
	case errors.Is(err, dataset.ErrMismatch):
		return fmt.Errorf("%w: %w", ErrMismatch, err)
	case errors.Is(err, dataset.ErrBadData):
		return fmt.Errorf("%w: %w", ErrBadData, err)
	}
	return err
}

// chunks calls fn with consecutive blocks of rows: the in-memory matrix in
// blocks of 8192 rows, or one shard at a time, checked as it is read.
func (ds *Dataset) chunks(ctx context.Context, fn func(m *matrix, row0 int) error) error {
	if ds.mem != nil {
		const block = 8192
		for lo := 0; lo < ds.N; lo += block {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := fn(ds.mem.rows(lo, min(lo+block, ds.N)), lo); err != nil {
				return err
			}
		}
		return nil
	}
	// The next shards are read while this one is used.
	l := &dataset.Listing{Format: dataset.Dense, Dim: ds.Dim}
	for _, s := range ds.shards {
		l.Shards = append(l.Shards, dataset.Shard{Base: s.base, N: s.n})
	}
	row0 := 0
	for r, err := range l.Stream(ctx, ds.store, 2) {
		if err != nil {
			return fmt.Errorf("linear: %w", dataErr(err))
		}
		x := make([]float64, len(r.X))
		for i, v := range r.X {
			x[i] = float64(v)
		}
		if err := checkLabels(r.Y, ds.Classes, row0); err != nil {
			return fmt.Errorf("%s: %w", r.Shard.Base, err)
		}
		m := newMatrix(x, len(r.Y), ds.Dim)
		m.y = r.Y
		if err := fn(m, row0); err != nil {
			return err
		}
		row0 += m.n
	}
	return nil
}

// materialize returns the whole dataset in memory.
func (ds *Dataset) materialize(ctx context.Context) (*matrix, error) {
	if ds.mem != nil {
		return ds.mem, nil
	}
	x := make([]float64, 0, ds.N*ds.Dim)
	y := make([]int32, 0, ds.N)
	err := ds.chunks(ctx, func(m *matrix, _ int) error {
		x = append(x, m.dense()...)
		y = append(y, m.y...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	m := newMatrix(x, len(y), ds.Dim)
	m.y = y
	return m, nil
}

// Split returns a random split: a fraction frac of the rows (in memory) in
// the first dataset and the rest in the second.
func (ds *Dataset) Split(ctx context.Context, frac float64, seed uint64) (*Dataset, *Dataset, error) {
	m, err := ds.materialize(ctx)
	if err != nil {
		return nil, nil, err
	}
	perm := rand.New(rand.NewPCG(seed, 7)).Perm(ds.N)
	k := int(frac * float64(ds.N))
	if k <= 0 || k >= ds.N {
		return nil, nil, fmt.Errorf("%w: split of %d rows at %v", ErrEmpty, ds.N, frac)
	}
	pick := func(idx []int) *Dataset {
		return &Dataset{Dim: ds.Dim, Classes: ds.Classes, N: len(idx), ClassNames: ds.ClassNames, LabelValues: ds.LabelValues, mem: m.pick(idx)}
	}
	return pick(perm[:k]), pick(perm[k:]), nil
}

// IndexBase says how feature indices of libsvm text are numbered.
type IndexBase int

const (
	// BaseAuto decides from the file, as scikit-learn's load_svmlight_file
	// does with zero_based="auto": zero-based if any index is 0, else
	// one-based.
	BaseAuto IndexBase = iota
	// OneBased is libsvm's own numbering (the first feature is 1).
	OneBased
	// ZeroBased is scikit-learn's dump_svmlight_file default.
	ZeroBased
)

// LibSVMOptions configure ReadLibSVM. The zero value detects everything.
type LibSVMOptions struct {
	// Dim is the number of features; 0 means the largest index seen + 1
	// (after numbering from 0).
	Dim int
	// Base is how indices are numbered (default BaseAuto).
	Base IndexBase
}

// LibSVMInfo describes what ReadLibSVM read.
type LibSVMInfo struct {
	// Labels are the distinct label values, sorted; class c is Labels[c].
	Labels []float64
	// ZeroBased reports the numbering used: true when indices started at 0.
	ZeroBased bool
	// NonZeros is the number of stored entries.
	NonZeros int
}

// appendFields appends the whitespace-separated fields of s to dst, as
// bytes.Fields splits them, without allocating a slice per line; a line
// with a byte outside ASCII goes to bytes.Fields itself (Unicode spaces).
func appendFields(dst [][]byte, s []byte) [][]byte {
	n := len(dst)
	start := -1
	for i, c := range s {
		switch byteClass[c] {
		case classSpace:
			if start >= 0 {
				dst = append(dst, s[start:i:i])
				start = -1
			}
		case classOther:
			if start < 0 {
				start = i
			}
		default: // not ASCII
			return append(dst[:n], bytes.Fields(s)...)
		}
	}
	if start >= 0 {
		dst = append(dst, s[start:len(s):len(s)])
	}
	return dst
}

const (
	classOther = iota
	classSpace
	classWide
)

// byteClass tells ASCII white space (as unicode.IsSpace has it) and bytes
// of wider characters from the rest.
var byteClass = func() (t [256]uint8) {
	for _, c := range []byte(" \t\n\r\v\f") {
		t[c] = classSpace
	}
	for c := utf8.RuneSelf; c < 256; c++ {
		t[c] = classWide
	}
	return t
}()

// atoi is strconv.Atoi of b, with a fast path for the plain digits a
// feature index is.
func atoi(b []byte) (int, error) {
	if len(b) == 0 || len(b) > 18 {
		return strconv.Atoi(string(b))
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return strconv.Atoi(string(b))
		}
		n = n*10 + int(c-'0')
	}
	return n, nil
}

// ReadLibSVM reads libsvm/svmlight text ("label idx:val idx:val ...",
// ascending indices, "#" comments, an optional "qid:N" after the label,
// which is ignored) into an in-memory dataset. The rows are read straight
// into compressed form: memory grows with the non-zeros, never with rows x
// features, so a 20,000 x 200,000 file of 30 entries a row takes about
// 7 MB. Data dense enough to profit (30 % non-zeros or more) is expanded to
// a dense matrix when that fits in MaxDenseBytes. Labels are mapped to
// classes 0..K-1 in sorted order of their values (LibSVMInfo.Labels).
func ReadLibSVM(r io.Reader, opts LibSVMOptions) (*Dataset, *LibSVMInfo, error) {
	var (
		labels []float64
		ptr    = []int{0}
		idx    []int32
		val    []float64
		minIdx = math.MaxInt
		maxIdx = -1
	)
	br := bufio.NewReaderSize(r, 1<<16)
	line := 0
	var fields [][]byte // reused line to line
	for {
		text, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A long line: gather it whole.
			long := append([]byte(nil), text...)
			for errors.Is(err, bufio.ErrBufferFull) {
				text, err = br.ReadSlice('\n')
				long = append(long, text...)
			}
			text = long
		}
		if len(text) == 0 && err != nil {
			if err != io.EOF {
				return nil, nil, fmt.Errorf("linear: read libsvm: %w", err)
			}
			break
		}
		line++
		if i := bytes.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		fields = appendFields(fields[:0], text)
		f := fields
		if len(f) > 0 {
			lab, perr := strconv.ParseFloat(string(f[0]), 64)
			if perr != nil || math.IsNaN(lab) || math.IsInf(lab, 0) {
				return nil, nil, fmt.Errorf("%w: line %d: label %q (one finite number; multi-label rows are not supported)", ErrBadData, line, f[0])
			}
			labels = append(labels, lab)
			prev := -1
			for q, p := range f[1:] {
				var a, b []byte
				c := bytes.IndexByte(p, ':')
				ok := c >= 0
				if ok {
					a, b = p[:c], p[c+1:]
				} else {
					a = p
				}
				if q == 0 && ok && string(a) == "qid" {
					continue
				}
				k, err1 := atoi(a)
				v, err2 := strconv.ParseFloat(string(b), 64)
				if !ok || err1 != nil || err2 != nil || k < 0 || k > math.MaxInt32 {
					return nil, nil, fmt.Errorf("%w: line %d: feature %q (want index:value)", ErrBadData, line, p)
				}
				if k <= prev {
					return nil, nil, fmt.Errorf("%w: line %d: feature index %d after %d (indices must ascend)", ErrBadData, line, k, prev)
				}
				if math.IsNaN(v) || math.IsInf(v, 0) {
					return nil, nil, fmt.Errorf("%w: line %d: feature %d is %v", ErrBadData, line, k, v)
				}
				prev = k
				minIdx, maxIdx = min(minIdx, k), max(maxIdx, k)
				if v != 0 {
					idx = append(idx, int32(k))
					val = append(val, v)
				}
			}
			ptr = append(ptr, len(idx))
		}
		if err != nil {
			if err != io.EOF {
				return nil, nil, fmt.Errorf("linear: read libsvm: %w", err)
			}
			break
		}
	}
	if len(labels) == 0 {
		return nil, nil, ErrEmpty
	}
	info := &LibSVMInfo{NonZeros: len(idx)}
	switch opts.Base {
	case ZeroBased:
		info.ZeroBased = true
	case OneBased:
		if minIdx == 0 {
			return nil, nil, fmt.Errorf("%w: feature index 0 in a one-based file", ErrBadData)
		}
	default:
		info.ZeroBased = minIdx == 0 || maxIdx < 0
	}
	if !info.ZeroBased {
		for p := range idx {
			idx[p]--
		}
		maxIdx--
	}
	dim := opts.Dim
	if dim <= 0 {
		dim = max(maxIdx+1, 1)
	}
	if maxIdx >= dim {
		return nil, nil, fmt.Errorf("%w: feature index %d beyond dim %d", ErrBadData, maxIdx, dim)
	}
	// Classes: distinct labels in sorted order.
	info.Labels = slices.Clone(labels)
	slices.Sort(info.Labels)
	info.Labels = slices.Compact(info.Labels)
	y := make([]int32, len(labels))
	for i, l := range labels {
		c, _ := slices.BinarySearch(info.Labels, l)
		y[i] = int32(c)
	}
	n := len(labels)
	var m *matrix
	dense := int64(n) * int64(dim)
	if float64(len(idx)) >= sparseBelow*float64(dense) && dense*8 <= MaxDenseBytes {
		x := make([]float64, dense)
		for i := range n {
			for p := ptr[i]; p < ptr[i+1]; p++ {
				x[i*dim+int(idx[p])] = val[p]
			}
		}
		m = newMatrix(x, n, dim)
	} else {
		m = newCSR(n, dim, ptr, idx, val)
	}
	m.y = y
	return &Dataset{Dim: dim, Classes: len(info.Labels), N: n, LabelValues: info.Labels, mem: m}, info, nil
}

// Row is one example of a dataset: its class and its features, sparse (Idx
// and Val, ascending indices) for data held in compressed rows, dense
// (Dense, Dim values) otherwise. The slices are only valid during the call
// that receives them.
type Row struct {
	Label int32
	Idx   []int32
	Val   []float64
	Dense []float64
}

// Each calls fn with every row, in order, streaming shards one at a time;
// it stops at fn's first error.
func (ds *Dataset) Each(ctx context.Context, fn func(i int, r Row) error) error {
	return ds.chunks(ctx, func(m *matrix, row0 int) error {
		for i := range m.n {
			r := Row{Label: m.y[i]}
			if m.sparse {
				r.Idx, r.Val = m.idx[m.ptr[i]:m.ptr[i+1]], m.val[m.ptr[i]:m.ptr[i+1]]
			} else {
				r.Dense = m.x[i*m.d : (i+1)*m.d]
			}
			if err := fn(row0+i, r); err != nil {
				return err
			}
		}
		return nil
	})
}
