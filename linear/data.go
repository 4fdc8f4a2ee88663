package linear

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/internal/npy"
)

// Errors for bad data; check with errors.Is.
var (
	ErrEmpty     = errors.New("linear: empty dataset")
	ErrBadData   = errors.New("linear: bad data")
	ErrSingular  = errors.New("linear: singular system")
	ErrMismatch  = errors.New("linear: shards of different widths")
	ErrBadLabels = errors.New("linear: label out of range")
)

// Dataset is a labelled feature matrix, in memory or as shards in a blob
// store that are read one at a time. It is safe for concurrent reads.
type Dataset struct {
	// Dim is the number of features, Classes the number of classes, N the
	// number of examples.
	Dim, Classes, N int
	// ClassNames are the class names, when the source has them.
	ClassNames []string

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

// shardMeta is what featurize writes in shard-NNNNN.json.
type shardMeta struct {
	Images int `json:"images"`
	Dim    int `json:"dim"`
}

// Load opens the feature shards under prefix (as written by package
// featurize: shard-NNNNN.json marks a complete shard, with .npy features and
// .labels.npy labels beside it). Nothing but the shards' metadata is read
// now; the fits stream the shards.
func Load(ctx context.Context, store blob.Store, prefix string) (*Dataset, error) {
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	keys, err := blob.Keys(ctx, store, prefix)
	if err != nil {
		return nil, fmt.Errorf("linear: list %q: %w", prefix, err)
	}
	ds := &Dataset{store: store}
	for _, k := range keys {
		rest := strings.TrimPrefix(k, prefix)
		if !strings.HasPrefix(rest, "shard-") || !strings.HasSuffix(rest, ".json") || strings.Contains(rest, "/") {
			continue
		}
		b, err := blob.ReadAll(ctx, store, k)
		if err != nil {
			return nil, err
		}
		var m shardMeta
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrBadData, k, err)
		}
		if m.Images == 0 {
			continue
		}
		if ds.Dim != 0 && m.Dim != ds.Dim {
			return nil, fmt.Errorf("%w: %s has %d features, earlier shards %d", ErrMismatch, k, m.Dim, ds.Dim)
		}
		ds.Dim = m.Dim
		ds.shards = append(ds.shards, shardRef{base: strings.TrimSuffix(k, ".json"), n: m.Images})
		ds.N += m.Images
	}
	if ds.N == 0 {
		return nil, fmt.Errorf("%w: no complete shard under %q", ErrEmpty, prefix)
	}
	if b, err := blob.ReadAll(ctx, store, prefix+"classes.txt"); err == nil {
		ds.ClassNames = strings.Fields(string(b))
		ds.Classes = len(ds.ClassNames)
	} else {
		// No class table: one pass over the labels.
		for _, s := range ds.shards {
			y, err := ds.readLabels(ctx, s)
			if err != nil {
				return nil, err
			}
			for _, v := range y {
				ds.Classes = max(ds.Classes, int(v)+1)
			}
		}
	}
	return ds, nil
}

func (ds *Dataset) readLabels(ctx context.Context, s shardRef) ([]int32, error) {
	b, err := blob.ReadAll(ctx, ds.store, s.base+".labels.npy")
	if err != nil {
		return nil, err
	}
	y, _, err := npy.Read[int32](bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: %s.labels.npy: %v", ErrBadData, s.base, err)
	}
	return y, nil
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
	row0 := 0
	for _, s := range ds.shards {
		m, err := ds.readShard(ctx, s, row0)
		if err != nil {
			return err
		}
		if err := fn(m, row0); err != nil {
			return err
		}
		row0 += m.n
	}
	return nil
}

func (ds *Dataset) readShard(ctx context.Context, s shardRef, row0 int) (*matrix, error) {
	b, err := blob.ReadAll(ctx, ds.store, s.base+".npy")
	if err != nil {
		return nil, err
	}
	x32, shape, err := npy.Read[float32](bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: %s.npy: %v", ErrBadData, s.base, err)
	}
	if len(shape) != 2 || shape[0] != s.n || shape[1] != ds.Dim {
		return nil, fmt.Errorf("%w: %s.npy has shape %v, want (%d, %d)", ErrMismatch, s.base, shape, s.n, ds.Dim)
	}
	x := make([]float64, len(x32))
	for i, v := range x32 {
		x[i] = float64(v)
	}
	if err := checkFinite(x, ds.Dim, row0); err != nil {
		return nil, fmt.Errorf("%s: %w", s.base, err)
	}
	y, err := ds.readLabels(ctx, s)
	if err != nil {
		return nil, err
	}
	if len(y) != s.n {
		return nil, fmt.Errorf("%w: %s has %d labels for %d rows", ErrBadData, s.base, len(y), s.n)
	}
	if err := checkLabels(y, ds.Classes, row0); err != nil {
		return nil, fmt.Errorf("%s: %w", s.base, err)
	}
	m := newMatrix(x, s.n, ds.Dim)
	m.y = y
	return m, nil
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
		x := make([]float64, 0, len(idx)*ds.Dim)
		y := make([]int32, len(idx))
		d := m.dense()
		for j, i := range idx {
			x = append(x, d[i*ds.Dim:(i+1)*ds.Dim]...)
			y[j] = m.y[i]
		}
		mm := newMatrix(x, len(idx), ds.Dim)
		mm.y = y
		return &Dataset{Dim: ds.Dim, Classes: ds.Classes, N: len(idx), ClassNames: ds.ClassNames, mem: mm}
	}
	return pick(perm[:k]), pick(perm[k:]), nil
}

// ReadLibSVM reads libsvm/svmlight text ("label idx:val idx:val ...",
// 1-based ascending indices, # comments) into an in-memory dataset. Labels
// are mapped to classes 0..K-1 in sorted order of their values; dim <= 0
// means the largest index seen.
func ReadLibSVM(r io.Reader, dim int) (*Dataset, []float64, error) {
	type row struct {
		label float64
		idx   []int
		val   []float64
	}
	var rows []row
	maxIdx := 0
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<16), 1<<26)
	line := 0
	for sc.Scan() {
		line++
		t := sc.Text()
		if i := strings.IndexByte(t, '#'); i >= 0 {
			t = t[:i]
		}
		f := strings.Fields(t)
		if len(f) == 0 {
			continue
		}
		lab, err := strconv.ParseFloat(f[0], 64)
		if err != nil || math.IsNaN(lab) || math.IsInf(lab, 0) {
			return nil, nil, fmt.Errorf("%w: line %d: label %q", ErrBadData, line, f[0])
		}
		rw := row{label: lab}
		prev := 0
		for _, p := range f[1:] {
			a, b, ok := strings.Cut(p, ":")
			k, err1 := strconv.Atoi(a)
			v, err2 := strconv.ParseFloat(b, 64)
			if !ok || err1 != nil || err2 != nil || k <= prev || math.IsNaN(v) || math.IsInf(v, 0) {
				return nil, nil, fmt.Errorf("%w: line %d: feature %q (want ascending index:value, finite)", ErrBadData, line, p)
			}
			prev = k
			rw.idx = append(rw.idx, k-1)
			rw.val = append(rw.val, v)
			maxIdx = max(maxIdx, k)
		}
		rows = append(rows, rw)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, err
	}
	if len(rows) == 0 {
		return nil, nil, ErrEmpty
	}
	if dim <= 0 {
		dim = maxIdx
	}
	if maxIdx > dim {
		return nil, nil, fmt.Errorf("%w: feature index %d beyond dim %d", ErrBadData, maxIdx, dim)
	}
	labSet := map[float64]int{}
	for _, r := range rows {
		labSet[r.label] = 0
	}
	labels := make([]float64, 0, len(labSet))
	for l := range labSet {
		labels = append(labels, l)
	}
	sort.Float64s(labels)
	for i, l := range labels {
		labSet[l] = i
	}
	x := make([]float64, len(rows)*dim)
	y := make([]int32, len(rows))
	for i, r := range rows {
		for j, k := range r.idx {
			x[i*dim+k] = r.val[j]
		}
		y[i] = int32(labSet[r.label])
	}
	ds, err := FromDense(x, dim, y, len(labels))
	return ds, labels, err
}
