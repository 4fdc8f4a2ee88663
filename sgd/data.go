package sgd

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/internal/npy"
	"github.com/wrenml/wren/linear"
)

// Shard formats.
const (
	formatNPY    = "npy"    // featurize's: shard-N.npy (float32 n x dim), shard-N.labels.npy, shard-N.json
	formatLibSVM = "libsvm" // text, one example a line
)

// libsvmSuffixes name libsvm/svmlight shard objects.
var libsvmSuffixes = []string{".libsvm", ".svmlight", ".svm"}

// dataset is the training data as the driver found it.
type dataset struct {
	format string
	shards []string // npy: bases; libsvm: object keys
	dim    int
}

// findData lists the shards under prefix: featurize's format if any
// complete shard is there, else libsvm objects.
func findData(ctx context.Context, st blob.Store, prefix string, features int) (*dataset, error) {
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	if bases, err := linear.Shards(ctx, st, prefix); err == nil {
		ds, _ := linear.Load(ctx, st, prefix)
		if features > 0 && features != ds.Dim {
			return nil, fmt.Errorf("%w: the shards under %q have %d features, the model %d", ErrBadData, prefix, ds.Dim, features)
		}
		return &dataset{format: formatNPY, shards: bases, dim: ds.Dim}, nil
	} else if !errors.Is(err, linear.ErrEmpty) {
		return nil, fmt.Errorf("sgd: data %q: %w", prefix, err)
	}
	keys, err := blob.Keys(ctx, st, prefix)
	if err != nil {
		return nil, fmt.Errorf("sgd: list %q: %w", prefix, err)
	}
	var shards []string
	for _, k := range keys {
		for _, s := range libsvmSuffixes {
			if strings.HasSuffix(k, s) {
				shards = append(shards, k)
				break
			}
		}
	}
	if len(shards) == 0 {
		return nil, fmt.Errorf("%w: no shards under %q (featurize's shard-N.npy, or libsvm objects ending in .libsvm, .svmlight or .svm)", ErrBadData, prefix)
	}
	if features <= 0 {
		return nil, fmt.Errorf("%w: libsvm shards under %q: Config.Features must give the model's number of features", ErrBadData, prefix)
	}
	return &dataset{format: formatLibSVM, shards: shards, dim: features}, nil
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
	xb, err := blob.ReadAll(ctx, st, base+".npy")
	if err != nil {
		return nil, fmt.Errorf("sgd: shard %s: %w", base, err)
	}
	x, shape, err := npy.Read[float32](bytes.NewReader(xb))
	if err != nil {
		return nil, fmt.Errorf("%w: %s.npy: %v", ErrBadData, base, err)
	}
	if len(shape) != 2 || shape[1] != dim {
		return nil, fmt.Errorf("%w: %s.npy has shape %v, the model %d features", ErrBadData, base, shape, dim)
	}
	yb, err := blob.ReadAll(ctx, st, base+".labels.npy")
	if err != nil {
		return nil, fmt.Errorf("sgd: shard %s: %w", base, err)
	}
	labels, _, err := npy.Read[int32](bytes.NewReader(yb))
	if err != nil || len(labels) != shape[0] {
		return nil, fmt.Errorf("%w: %s.labels.npy: %d labels for %d rows (%v)", ErrBadData, base, len(labels), shape[0], err)
	}
	for i, v := range x {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("%w: %s: example %d, feature %d is %v", ErrBadData, base, i/dim, i%dim, v)
		}
	}
	b := &block{n: shape[0], dim: dim, dense: x, y: make([]float64, len(labels))}
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

// WriteShards writes a dataset as n shards under prefix in the store, in
// featurize's format (shard-N.npy float32 features, shard-N.labels.npy,
// shard-N.json last), or in libsvm text (shard-N.libsvm, one-based) when
// rows are too wide to store densely (over 65536 features, or a shard over
// 256 MiB): the formats Train reads.
func WriteShards(ctx context.Context, st blob.Store, prefix string, ds *linear.Dataset, n int) error {
	if n < 1 || n > ds.N {
		return fmt.Errorf("sgd: %d shards of %d examples", n, ds.N)
	}
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	per := (ds.N + n - 1) / n
	var x []float32
	var y []int32
	var text bytes.Buffer
	// Dense npy unless the rows are too wide to hold densely.
	sparse := ds.Dim > 1<<16 || int64(per)*int64(ds.Dim)*4 > 256<<20
	shard := 0
	flush := func() error {
		base := fmt.Sprintf("%sshard-%05d", prefix, shard)
		shard++
		if sparse {
			defer text.Reset()
			return blob.PutBytes(ctx, st, base+".libsvm", text.Bytes(), blob.PutOptions{})
		}
		defer func() { x, y = x[:0], y[:0] }()
		var b bytes.Buffer
		if err := npy.Write(&b, x, len(y), ds.Dim); err != nil {
			return err
		}
		if err := blob.PutBytes(ctx, st, base+".npy", b.Bytes(), blob.PutOptions{}); err != nil {
			return err
		}
		b.Reset()
		npy.Write(&b, y)
		if err := blob.PutBytes(ctx, st, base+".labels.npy", b.Bytes(), blob.PutOptions{}); err != nil {
			return err
		}
		meta, _ := json.Marshal(map[string]any{"shard": shard - 1, "images": len(y), "dim": ds.Dim, "failed": []any{}})
		return blob.PutBytes(ctx, st, base+".json", meta, blob.PutOptions{})
	}
	count := 0
	err := ds.Each(ctx, func(i int, r linear.Row) error {
		if sparse {
			w := bufio.NewWriter(&text)
			w.WriteString(strconv.Itoa(int(r.Label)))
			if r.Dense != nil {
				for j, v := range r.Dense {
					if v != 0 {
						fmt.Fprintf(w, " %d:%g", j+1, v)
					}
				}
			}
			for k, j := range r.Idx {
				fmt.Fprintf(w, " %d:%g", j+1, r.Val[k])
			}
			w.WriteByte('\n')
			w.Flush()
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
