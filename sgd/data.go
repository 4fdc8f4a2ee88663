package sgd

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/dataset"
	"github.com/wrenml/wren/linear"
	"golang.org/x/sync/errgroup"
)

// Shard formats (package dataset's).
const (
	formatNPY    = dataset.Dense
	formatLibSVM = dataset.LibSVM
)

// data is the training data as the driver found it.
type data struct {
	format  string
	shards  []string // dense: bases; libsvm: object keys
	sizes   []int    // examples per shard (dense; 0 for libsvm)
	dim     int
	id      string    // fingerprint: format, width, shards and sizes
	labels  []float64 // libsvm label values of the classes (decideLabels)
	classes []string  // class names, for Model
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
	d := &data{format: l.Format, dim: l.Dim, classes: l.Classes}
	for _, sh := range l.Shards {
		d.shards = append(d.shards, sh.Base)
		d.sizes = append(d.sizes, sh.N)
	}
	switch {
	case l.Format == dataset.Dense && features > 0 && features != l.Dim:
		return nil, fmt.Errorf("%w: the shards under %q have %d features, the model %d", ErrBadData, prefix, l.Dim, features)
	case l.Format == dataset.LibSVM && features <= 0:
		return nil, fmt.Errorf("%w: libsvm shards under %q: Options.Features must give the model's number of features", ErrBadData, prefix)
	case l.Format == dataset.LibSVM:
		d.dim = features
	}
	h := sha256.New()
	fmt.Fprintln(h, d.format, d.dim)
	for i, sh := range d.shards {
		// Keys relative to the prefix: the same data under another name
		// (copied, or another store) is the same data.
		fmt.Fprintln(h, strings.TrimPrefix(sh, prefix), d.sizes[i])
	}
	d.id = hex.EncodeToString(h.Sum(nil))[:16]
	return d, nil
}

// decideLabels decides, once, how the labels become the loss's classes,
// for the workers, the evaluation and Model alike: libsvm label values map
// to classes in sorted order (Options.Labels, else the values the shards
// hold); dense shards hold class indices; regression takes values.
func (d *data) decideLabels(ctx context.Context, st blob.Store, cfg *Options) error {
	classes := cfg.Loss.ClassCount()
	if cfg.Labels != nil {
		switch {
		case classes == 0:
			return fmt.Errorf("%w: Options.Labels with the %s loss, which trains on label values", ErrBadData, cfg.Loss.Name())
		case d.format != formatLibSVM:
			return fmt.Errorf("%w: Options.Labels with dense shards, whose labels are class indices", ErrBadData)
		}
		for i, v := range cfg.Labels {
			if math.IsNaN(v) || math.IsInf(v, 0) || i > 0 && v <= cfg.Labels[i-1] {
				return fmt.Errorf("%w: Options.Labels %v: want finite values in increasing order", ErrBadData, cfg.Labels)
			}
		}
	}
	if classes == 0 || d.format != formatLibSVM {
		return nil
	}
	labels := cfg.Labels
	if labels == nil {
		// Every shard's label values (their first fields), 8 at a time.
		found := make([][]float64, len(d.shards))
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(8)
		for i, key := range d.shards {
			g.Go(func() (err error) {
				found[i], err = dataset.LibSVMLabels(gctx, st, key)
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return fmt.Errorf("sgd: the label values of the data (give Options.Labels to skip reading them): %w", err)
		}
		labels = slices.Concat(found...)
		slices.Sort(labels)
		labels = slices.Compact(labels)
	}
	switch {
	case classes == 2 && len(labels) != 2:
		return fmt.Errorf("%w: %d label values %v for the binary %s loss: want 2 (the second is the positive class)", ErrBadData, len(labels), labels, cfg.Loss.Name())
	case len(labels) > classes || len(labels) < 2:
		return fmt.Errorf("%w: %d label values %v for the %s loss over %d classes", ErrBadData, len(labels), labels, cfg.Loss.Name(), classes)
	}
	d.labels = labels
	d.classes = make([]string, len(labels))
	for i, v := range labels {
		d.classes[i] = strconv.FormatFloat(v, 'g', -1, 64)
	}
	return nil
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

// readShard loads a shard with its labels as the loss takes them: classes
// (libsvm label values mapped by labels; dense shards hold them already)
// or, for regression, values.
func readShard(ctx context.Context, st blob.Store, format, key string, dim int, loss Loss, labels []float64) (*block, error) {
	var b *block
	var err error
	if format == formatNPY {
		b, err = readNPY(ctx, st, key, dim)
	} else {
		b, err = readLibSVM(ctx, st, key, dim, labels)
	}
	if err != nil {
		return nil, err
	}
	if k := loss.ClassCount(); k >= 2 {
		for i, y := range b.y {
			if y != math.Trunc(y) || y < 0 || y >= float64(k) {
				what := "class index"
				if format == formatLibSVM {
					what = "label"
				}
				return nil, fmt.Errorf("%w: %s: example %d has %s %v, outside the %d classes of the %s loss", ErrBadData, key, i, what, y, k, loss.Name())
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
// zero-based files are detected as scikit-learn does) into compressed rows,
// each label mapped to its class by labels (nil: kept as a value).
func readLibSVM(ctx context.Context, st blob.Store, key string, dim int, labels []float64) (*block, error) {
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
		y := info.Labels[r.Label]
		if labels != nil {
			c, ok := slices.BinarySearch(labels, y)
			if !ok {
				return fmt.Errorf("%w: %s: example %d has label %v, not among the label values %v (Options.Labels)", ErrBadData, key, i, y, labels)
			}
			y = float64(c)
		}
		b.y = append(b.y, y)
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
	// Shard i holds examples [i*N/n, (i+1)*N/n): n shards whose sizes
	// differ by at most one.
	end := func(i int) int { return int(int64(i+1) * int64(ds.N) / int64(n)) }
	most := end(0)
	var x []float32
	var y []int32
	var text []byte
	// Dense unless the rows are too wide to hold densely.
	sparse := ds.Dim > 1<<16 || int64(most+1)*int64(ds.Dim)*4 > 256<<20
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
	var idx []int32
	var val []float64
	err := ds.Each(ctx, func(i int, r linear.Row) error {
		label := float64(r.Label)
		if ds.LabelValues != nil {
			label = ds.LabelValues[r.Label]
		}
		if sparse {
			idx, val = idx[:0], val[:0]
			for j, v := range r.Dense {
				idx, val = append(idx, int32(j)), append(val, v)
			}
			idx, val = append(idx, r.Idx...), append(val, r.Val...)
			text = dataset.AppendLibSVM(text, label, idx, val)
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
		if i+1 == end(shard) {
			return flush()
		}
		return nil
	})
	return err
}
