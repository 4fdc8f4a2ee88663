package sgd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/dataset"
	"github.com/wrenml/wren/linear"
)

// Shard formats (package dataset's).
const (
	formatNPY    = dataset.Dense
	formatLibSVM = dataset.LibSVM
)

// data is the training data as the driver found it.
type data struct {
	format string
	shards []string // dense: bases; libsvm: object keys
	dim    int
}

// findData lists the shards under prefix (dataset.List): dense shards, or
// libsvm objects, whose width features must give.
func findData(ctx context.Context, st blob.Store, prefix string, features int) (*data, error) {
	l, err := dataset.List(ctx, st, prefix)
	if errors.Is(err, dataset.ErrEmpty) || errors.Is(err, dataset.ErrMismatch) || errors.Is(err, dataset.ErrBadData) {
		return nil, fmt.Errorf("%w: %w", ErrBadData, err)
	}
	if err != nil {
		return nil, fmt.Errorf("sgd: data %q: %w", prefix, err)
	}
	d := &data{format: l.Format, dim: l.Dim}
	for _, sh := range l.Shards {
		d.shards = append(d.shards, sh.Base)
	}
	switch {
	case l.Format == dataset.Dense && features > 0 && features != l.Dim:
		return nil, fmt.Errorf("%w: the shards under %q have %d features, the model %d", ErrBadData, prefix, l.Dim, features)
	case l.Format == dataset.LibSVM && features <= 0:
		return nil, fmt.Errorf("%w: libsvm shards under %q: Options.Features must give the model's number of features", ErrBadData, prefix)
	case l.Format == dataset.LibSVM:
		d.dim = features
	}
	return d, nil
}

// block is one shard in memory: labels and features, dense or compressed.
type block struct {
	n, dim int
	y      []float64
	dense  []float32 // n x dim, or nil
	ptr    []int     // compressed rows: idx/val[ptr[i]:ptr[i+1]]
	idx    []int32
	val    []float32
}

// ErrBadData reports training data that cannot be used.
var ErrBadData = errors.New("sgd: bad data")

// readShard loads a shard and checks its labels against the loss.
func readShard(ctx context.Context, st blob.Store, format, key string, dim int, loss Loss) (*block, error) {
	var b *block
	var err error
	if format == formatNPY {
		b, err = readNPY(ctx, st, key, dim)
	} else {
		b, err = readLibSVM(ctx, st, key, dim)
	}
	if err != nil {
		return nil, err
	}
	if k := loss.ClassCount(); k > 2 {
		for i, y := range b.y {
			if y != math.Trunc(y) || y < 0 || y >= float64(k) {
				return nil, fmt.Errorf("%w: %s: example %d has label %v, outside the %d classes", ErrBadData, key, i, y, k)
			}
		}
	}
	return b, nil
}

func readNPY(ctx context.Context, st blob.Store, base string, dim int) (*block, error) {
	x, labels, err := dataset.ReadShard(ctx, st, base, dim)
	if errors.Is(err, dataset.ErrBadData) || errors.Is(err, dataset.ErrMismatch) {
		return nil, fmt.Errorf("%w: %w", ErrBadData, err)
	}
	if err != nil {
		return nil, fmt.Errorf("sgd: %w", err)
	}
	b := &block{n: len(labels), dim: dim, dense: x, y: make([]float64, len(labels))}
	for i, l := range labels {
		b.y[i] = float64(l)
	}
	return b, nil
}

// readLibSVM parses a libsvm shard (one-based indices, as libsvm writes;
// zero-based files are detected as scikit-learn does) into compressed rows.
func readLibSVM(ctx context.Context, st blob.Store, key string, dim int) (*block, error) {
	data, err := blob.ReadAll(ctx, st, key)
	if err != nil {
		return nil, fmt.Errorf("sgd: shard %s: %w", key, err)
	}
	ds, info, err := linear.ReadLibSVM(bytes.NewReader(data), linear.LibSVMOptions{Dim: dim})
	if err != nil {
		return nil, fmt.Errorf("sgd: shard %s: %w", key, err)
	}
	b := &block{n: ds.N, dim: dim, ptr: []int{0}, y: make([]float64, 0, ds.N)}
	err = ds.Each(ctx, func(i int, r linear.Row) error {
		b.y = append(b.y, info.Labels[r.Label])
		if r.Dense != nil {
			for j, v := range r.Dense {
				if v != 0 {
					b.idx = append(b.idx, int32(j))
					b.val = append(b.val, float32(v))
				}
			}
		} else {
			b.idx = append(b.idx, r.Idx...)
			for _, v := range r.Val {
				b.val = append(b.val, float32(v))
			}
		}
		b.ptr = append(b.ptr, len(b.idx))
		return nil
	})
	return b, err
}

// WriteShards writes a dataset as n shards under prefix in the store
// (package dataset's formats): dense (shard-N.npy, .labels.npy, .json
// last), or libsvm text (shard-N.libsvm, one-based) when rows are too wide
// to store densely (over 65536 features, or a shard over 256 MiB): the
// formats Train reads.
func WriteShards(ctx context.Context, st blob.Store, prefix string, ds *linear.Dataset, n int) error {
	if n < 1 || n > ds.N {
		return fmt.Errorf("sgd: %d shards of %d examples", n, ds.N)
	}
	per := (ds.N + n - 1) / n
	var x []float32
	var y []int32
	var text []byte
	// Dense unless the rows are too wide to hold densely.
	sparse := ds.Dim > 1<<16 || int64(per)*int64(ds.Dim)*4 > 256<<20
	shard := 0
	flush := func() error {
		i := shard
		shard++
		if sparse {
			defer func() { text = text[:0] }()
			return dataset.WriteLibSVM(ctx, st, prefix, i, text)
		}
		defer func() { x, y = x[:0], y[:0] }()
		return dataset.WriteShard(ctx, st, prefix, i, x, ds.Dim, y, nil, nil)
	}
	count := 0
	var idx []int32
	var val []float64
	err := ds.Each(ctx, func(i int, r linear.Row) error {
		if sparse {
			idx, val = idx[:0], val[:0]
			for j, v := range r.Dense {
				idx, val = append(idx, int32(j)), append(val, v)
			}
			idx, val = append(idx, r.Idx...), append(val, r.Val...)
			text = dataset.AppendLibSVM(text, float64(r.Label), idx, val)
		} else {
			if r.Dense != nil {
				for _, v := range r.Dense {
					x = append(x, float32(v))
				}
			} else {
				row := make([]float32, ds.Dim)
				for k, j := range r.Idx {
					row[j] = float32(r.Val[k])
				}
				x = append(x, row...)
			}
			y = append(y, r.Label)
		}
		count++
		if count%per == 0 {
			return flush()
		}
		return nil
	})
	if err != nil {
		return err
	}
	if count%per != 0 {
		return flush()
	}
	return nil
}
