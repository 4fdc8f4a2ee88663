// Package dataset is the one writer, lister and reader of feature shards in
// a blob store: what featurize writes, linear fits on and sgd trains on.
//
// A prefix holds shards of one of two formats:
//
//   - dense: shard-NNNNN.npy (float32, examples x features, numpy's
//     format), shard-NNNNN.labels.npy (int32 class indices),
//     optionally shard-NNNNN.files.txt (the examples' source files), then
//     shard-NNNNN.json (at least {"images": n, "dim": d}) written last: a
//     shard is complete once its .json exists; classes.txt names the
//     classes, one a line, in label order;
//   - libsvm text: objects ending in .libsvm, .svmlight or .svm, one
//     example a line ("label index:value ..."), for rows too wide to store
//     densely.
//
// WriteShard and WriteLibSVM write; List finds the shards under a prefix;
// ReadShard reads a dense shard, checked (shapes, finite values, label
// count); Listing.Stream reads them all in order, a few ahead of the
// consumer, in memory that does not grow with the dataset.
package dataset

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/internal/npy"
	"github.com/wrenml/wren/internal/retry"
)

// Errors (wrapped); check with errors.Is.
var (
	// ErrEmpty reports a prefix with no shard.
	ErrEmpty = errors.New("dataset: no shards")
	// ErrBadData reports a shard that is malformed: a bad .npy, labels
	// that do not match the rows, NaN or infinite features.
	ErrBadData = errors.New("dataset: bad shard")
	// ErrMismatch reports shards of different widths under one prefix.
	ErrMismatch = errors.New("dataset: shards of different widths")
)

// Formats of a prefix's shards.
const (
	Dense  = "npy"
	LibSVM = "libsvm"
)

// ClassesKey is the object (under the prefix) that names the classes.
const ClassesKey = "classes.txt"

// LibSVMSuffixes name libsvm text shards.
var LibSVMSuffixes = []string{".libsvm", ".svmlight", ".svm"}

// ShardName returns the base name of shard i's objects ("shard-00007").
func ShardName(i int) string { return fmt.Sprintf("shard-%05d", i) }

// Meta is the least a shard's .json holds; writers add their own fields.
type Meta struct {
	Images int `json:"images"`
	Dim    int `json:"dim"`
}

// Shard is one complete shard found under a prefix.
type Shard struct {
	// Base is its objects' key without suffix ("features/shard-00007"),
	// or, for libsvm text, the object's key.
	Base string
	// N is its examples (dense shards; 0 for libsvm, unknown until read).
	N int
}

// Listing is what a prefix holds.
type Listing struct {
	Format  string // Dense or LibSVM
	Shards  []Shard
	Dim     int      // features (dense shards)
	N       int      // examples (dense shards)
	Classes []string // from ClassesKey, when there
}

// List finds the shards under prefix: the complete dense shards (their
// .json read), else the libsvm objects. A prefix with neither is ErrEmpty;
// dense shards of different widths are ErrMismatch.
func List(ctx context.Context, st blob.Store, prefix string) (*Listing, error) {
	prefix = dir(prefix)
	var keys []string
	err := retry.Store(ctx, func(ctx context.Context) (err error) {
		keys, err = blob.Keys(ctx, st, prefix)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dataset: list %q: %w", prefix, err)
	}
	l := &Listing{Format: Dense}
	var text []Shard
	for _, k := range keys {
		rest := strings.TrimPrefix(k, prefix)
		if strings.Contains(rest, "/") {
			continue
		}
		for _, s := range LibSVMSuffixes {
			if strings.HasSuffix(rest, s) {
				text = append(text, Shard{Base: k})
			}
		}
		if !strings.HasPrefix(rest, "shard-") || !strings.HasSuffix(rest, ".json") {
			continue
		}
		var b []byte
		err := retry.Store(ctx, func(ctx context.Context) (err error) {
			b, err = blob.ReadAll(ctx, st, k)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("dataset: %s: %w", k, err)
		}
		var m Meta
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrBadData, k, err)
		}
		if m.Images == 0 {
			continue // a shard whose every example failed
		}
		if l.Dim != 0 && m.Dim != l.Dim {
			return nil, fmt.Errorf("%w: %s has %d features, earlier shards %d", ErrMismatch, k, m.Dim, l.Dim)
		}
		l.Dim = m.Dim
		l.Shards = append(l.Shards, Shard{Base: strings.TrimSuffix(k, ".json"), N: m.Images})
		l.N += m.Images
	}
	if len(l.Shards) == 0 {
		if len(text) == 0 {
			return nil, fmt.Errorf("%w under %q (shard-N.npy with its .json, or libsvm objects ending in .libsvm, .svmlight or .svm)", ErrEmpty, prefix)
		}
		l.Format, l.Shards = LibSVM, text
	}
	if b, err := blob.ReadAll(ctx, st, prefix+ClassesKey); err == nil {
		l.Classes = strings.Fields(string(b))
	} else if !errors.Is(err, blob.ErrNotFound) {
		return nil, fmt.Errorf("dataset: %s: %w", prefix+ClassesKey, err)
	}
	return l, nil
}

func dir(prefix string) string {
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	return prefix
}

// ReadShard reads a dense shard: its features (n x dim, row-major) and
// labels, checked: dim features (when dim > 0), n labels, finite values.
func ReadShard(ctx context.Context, st blob.Store, base string, dim int) (x []float32, y []int32, err error) {
	var xb, yb []byte
	err = retry.Store(ctx, func(ctx context.Context) (err error) {
		xb, err = blob.ReadAll(ctx, st, base+".npy")
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("dataset: shard %s: %w", base, err)
	}
	x, shape, err := npy.Read[float32](bytes.NewReader(xb))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %s.npy: %v", ErrBadData, base, err)
	}
	if len(shape) != 2 || (dim > 0 && shape[1] != dim) {
		return nil, nil, fmt.Errorf("%w: %s.npy has shape %v, want %d features", ErrMismatch, base, shape, dim)
	}
	dim = shape[1]
	err = retry.Store(ctx, func(ctx context.Context) (err error) {
		yb, err = blob.ReadAll(ctx, st, base+".labels.npy")
		return err
	})
	if err != nil {
		return nil, nil, fmt.Errorf("dataset: shard %s: %w", base, err)
	}
	y, _, err = npy.Read[int32](bytes.NewReader(yb))
	if err != nil || len(y) != shape[0] {
		return nil, nil, fmt.Errorf("%w: %s.labels.npy: %d labels for %d rows (%v)", ErrBadData, base, len(y), shape[0], err)
	}
	for i, v := range x {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, nil, fmt.Errorf("%w: %s: example %d, feature %d is %v", ErrBadData, base, i/dim, i%dim, v)
		}
	}
	return x, y, nil
}

// ReadLabels reads a dense shard's labels alone.
func ReadLabels(ctx context.Context, st blob.Store, base string) ([]int32, error) {
	var b []byte
	err := retry.Store(ctx, func(ctx context.Context) (err error) {
		b, err = blob.ReadAll(ctx, st, base+".labels.npy")
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dataset: shard %s: %w", base, err)
	}
	y, _, err := npy.Read[int32](bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%w: %s.labels.npy: %v", ErrBadData, base, err)
	}
	return y, nil
}

// WriteShard writes dense shard i under prefix: features x (n x dim),
// labels y, the examples' source files when given, then meta as its .json,
// last (meta must marshal to at least Meta's fields: n and dim; nil means
// Meta{n, dim}). A reader sees the shard whole or not at all.
func WriteShard(ctx context.Context, st blob.Store, prefix string, i int, x []float32, dim int, y []int32, files []string, meta any) error {
	n := len(y)
	if dim <= 0 || len(x) != n*dim {
		return fmt.Errorf("dataset: shard %d: %d values for %d rows of %d", i, len(x), n, dim)
	}
	base := dir(prefix) + ShardName(i)
	put := func(key string, b []byte) error {
		return retry.Store(ctx, func(ctx context.Context) error {
			return blob.PutBytes(ctx, st, key, b, blob.PutOptions{})
		})
	}
	var b bytes.Buffer
	if err := npy.Write(&b, x, n, dim); err != nil {
		return err
	}
	if err := put(base+".npy", b.Bytes()); err != nil {
		return err
	}
	b.Reset()
	if err := npy.Write(&b, y); err != nil {
		return err
	}
	if err := put(base+".labels.npy", b.Bytes()); err != nil {
		return err
	}
	if files != nil {
		list := strings.Join(files, "\n")
		if len(files) > 0 {
			list += "\n"
		}
		if err := put(base+".files.txt", []byte(list)); err != nil {
			return err
		}
	}
	if meta == nil {
		meta = Meta{Images: n, Dim: dim}
	}
	mb, err := json.MarshalIndent(meta, "", "  ")
	if err != nil {
		return err
	}
	// Last: the marker that makes the shard complete.
	return put(base+".json", mb)
}

// WriteClasses writes the class names (ClassesKey) under prefix.
func WriteClasses(ctx context.Context, st blob.Store, prefix string, classes []string) error {
	return blob.PutBytes(ctx, st, dir(prefix)+ClassesKey, []byte(strings.Join(classes, "\n")+"\n"), blob.PutOptions{})
}

// AppendLibSVM appends one example as a libsvm line: the label, then
// one-based index:value pairs (idx sorted; zeros are left out).
func AppendLibSVM(dst []byte, label float64, idx []int32, val []float64) []byte {
	dst = strconv.AppendFloat(dst, label, 'g', -1, 64)
	for k, j := range idx {
		if val[k] == 0 {
			continue
		}
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, int64(j)+1, 10)
		dst = append(dst, ':')
		dst = strconv.AppendFloat(dst, val[k], 'g', 6, 64)
	}
	return append(dst, '\n')
}

// WriteLibSVM writes libsvm shard i under prefix (shard-NNNNN.libsvm)
// from its lines (AppendLibSVM).
func WriteLibSVM(ctx context.Context, st blob.Store, prefix string, i int, text []byte) error {
	return retry.Store(ctx, func(ctx context.Context) error {
		return blob.PutBytes(ctx, st, dir(prefix)+ShardName(i)+".libsvm", text, blob.PutOptions{})
	})
}

// Rows is one dense shard as Stream yields it.
type Rows struct {
	Shard Shard
	X     []float32 // Shard.N x Listing.Dim, row-major
	Y     []int32
}

// Stream reads the listing's dense shards in order, each checked as
// ReadShard checks it and against its listed size, with up to ahead
// shards read in parallel ahead of the one yielded (0 means 2): a pass
// over a dataset of any size holds ahead+1 shards, and the store's latency
// is hidden behind the consumer's work. It stops at the first error, which
// it yields; a consumer that stops early cancels the reads ahead.
func (l *Listing) Stream(ctx context.Context, st blob.Store, ahead int) iter.Seq2[Rows, error] {
	return func(yield func(Rows, error) bool) {
		if l.Format != Dense {
			yield(Rows{}, fmt.Errorf("%w: Stream reads dense shards; these are libsvm text", ErrMismatch))
			return
		}
		if ahead <= 0 {
			ahead = 2
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel()
		type result struct {
			rows Rows
			err  error
		}
		// The reads in flight, in shard order; each answers once on its
		// own buffered channel, so none blocks when the consumer leaves.
		queue := make(chan chan result, ahead)
		go func() {
			defer close(queue)
			for _, sh := range l.Shards {
				ch := make(chan result, 1)
				select {
				case queue <- ch:
				case <-ctx.Done():
					return
				}
				go func() {
					x, y, err := ReadShard(ctx, st, sh.Base, l.Dim)
					if err == nil && len(y) != sh.N {
						err = fmt.Errorf("%w: %s has %d examples, its metadata says %d", ErrBadData, sh.Base, len(y), sh.N)
					}
					ch <- result{Rows{Shard: sh, X: x, Y: y}, err}
				}()
			}
		}()
		for ch := range queue {
			r := <-ch
			if err := ctx.Err(); err != nil && r.err == nil {
				r.err = err
			}
			if r.err != nil {
				yield(Rows{}, r.err)
				return
			}
			if !yield(r.rows, nil) {
				return
			}
		}
		if err := ctx.Err(); err != nil {
			yield(Rows{}, err)
		}
	}
}

// LibSVMLabels returns the distinct label values of a libsvm text object,
// sorted: the first field of each line, without parsing the features.
func LibSVMLabels(ctx context.Context, st blob.Store, key string) ([]float64, error) {
	var b []byte
	err := retry.Store(ctx, func(ctx context.Context) (err error) {
		b, err = blob.ReadAll(ctx, st, key)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dataset: %s: %w", key, err)
	}
	seen := map[float64]bool{}
	for n := 1; len(b) > 0; n++ {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if i := bytes.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := bytes.Fields(line)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(string(f[0]), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%w: %s, line %d: label %q", ErrBadData, key, n, f[0])
		}
		seen[v] = true
	}
	out := make([]float64, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	slices.Sort(out)
	return out, nil
}
