package sgd

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/dataset"
)

// SparseSpec describes a generated sparse binary problem.
type SparseSpec struct {
	// Features is the model's size (default 1<<20); Examples the number of
	// examples (default 20000); NonZeros the features per example (default
	// 50, at least 5); Support the hidden model's non-zero weights (default
	// 500 or Features if fewer, each ±1, at least NonZeros/5); Shards the
	// libsvm shards written (default 8).
	Features, Examples, NonZeros, Support, Shards int
	// Noise is the standard deviation of the Gaussian noise added to the
	// hidden score before its sign becomes the label.
	Noise float64
	// Seed makes the problem reproducible.
	Seed uint64
}

// GenerateSparse writes a sparse, high-dimensional binary problem as
// libsvm shards under prefix (shard-N.libsvm): each example has NonZeros
// features of values in (0, 1], a fifth of them from the hidden model's
// support; its label (0/1) is the sign of the hidden model's score plus
// noise. It returns the hidden model's support: feature -> weight. A spec
// it cannot draw from is an error wrapping ErrBadData.
func GenerateSparse(ctx context.Context, st blob.Store, prefix string, spec SparseSpec) (map[int]float64, error) {
	if spec.Features == 0 {
		spec.Features = 1 << 20
	}
	if spec.Examples == 0 {
		spec.Examples = 20000
	}
	if spec.NonZeros == 0 {
		spec.NonZeros = 50
	}
	if spec.Support == 0 {
		spec.Support = min(500, spec.Features)
	}
	if spec.Shards == 0 {
		spec.Shards = 8
	}
	// An example draws NonZeros/5 distinct features of the support and the
	// rest from all features: each draw must be able to finish.
	switch {
	case spec.Features < 1 || spec.Examples < 1 || spec.Shards < 1:
		return nil, fmt.Errorf("%w: sparse problem of %d features, %d examples, %d shards: want at least 1 of each", ErrBadData, spec.Features, spec.Examples, spec.Shards)
	case spec.NonZeros < 5 || spec.NonZeros > spec.Features:
		return nil, fmt.Errorf("%w: sparse problem of %d features with %d non-zeros an example: want 5 to %d", ErrBadData, spec.Features, spec.NonZeros, spec.Features)
	case spec.Support < spec.NonZeros/5 || spec.Support > spec.Features:
		return nil, fmt.Errorf("%w: sparse problem of %d features, %d non-zeros an example, a support of %d: want %d to %d (a fifth of an example's features are drawn from the support)",
			ErrBadData, spec.Features, spec.NonZeros, spec.Support, spec.NonZeros/5, spec.Features)
	case math.IsNaN(spec.Noise) || math.IsInf(spec.Noise, 0) || spec.Noise < 0:
		return nil, fmt.Errorf("%w: sparse problem with noise %v: want a finite number, 0 or more", ErrBadData, spec.Noise)
	}
	if prefix != "" && !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	rng := rand.New(rand.NewPCG(spec.Seed, 0x5eed))
	hidden := map[int]float64{}
	support := make([]int, 0, spec.Support)
	for len(hidden) < spec.Support {
		j := rng.IntN(spec.Features)
		if _, ok := hidden[j]; ok {
			continue
		}
		w := 1.0
		if rng.IntN(2) == 0 {
			w = -1
		}
		hidden[j] = w
		support = append(support, j)
	}
	per := (spec.Examples + spec.Shards - 1) / spec.Shards
	var text []byte
	var idx32 []int32
	var vals []float64
	feats := map[int]float64{}
	shard := 0
	for i := range spec.Examples {
		clear(feats)
		for len(feats) < spec.NonZeros/5 {
			feats[support[rng.IntN(len(support))]] = rng.Float64()*0.9 + 0.1
		}
		for len(feats) < spec.NonZeros {
			feats[rng.IntN(spec.Features)] = rng.Float64()*0.9 + 0.1
		}
		score := rng.NormFloat64() * spec.Noise
		idx := make([]int, 0, len(feats))
		for j, v := range feats {
			idx = append(idx, j)
			score += hidden[j] * v
		}
		slices.Sort(idx)
		label := 0.0
		if score > 0 {
			label = 1
		}
		idx32, vals = idx32[:0], vals[:0]
		for _, j := range idx {
			idx32, vals = append(idx32, int32(j)), append(vals, feats[j])
		}
		text = dataset.AppendLibSVM(text, label, idx32, vals)
		if (i+1)%per == 0 || i == spec.Examples-1 {
			if err := dataset.WriteLibSVM(ctx, st, prefix, shard, text); err != nil {
				return nil, err
			}
			text = text[:0]
			shard++
		}
	}
	return hidden, nil
}
