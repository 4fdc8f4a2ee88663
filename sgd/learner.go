package sgd

import (
	"context"

	"github.com/wrenml/wren/blob"
)

// learner is a model the HOGWILD! runner trains: its values are one vector
// on the parameter server (or in memory), its examples are rows of shards.
// The runner owns everything else: shard and row orders, positions and
// slices, gathers and scatters, the learning rate and the L2 penalty.
// Linear models (linearLearner) and matrix factorization (mfLearner) are
// the two implementations.
type learner interface {
	// size is the number of model values.
	size() int
	// shardLens are the examples of each of the worker's shards.
	shardLens() []int
	// denseRows reports that every example reads every value (dense
	// features): the runner then pulls and pushes the whole model.
	denseRows() bool
	// coords appends the coordinates example r of shard s reads and
	// writes (possibly repeated).
	coords(s, r int, dst []int) []int
	// grad adds the gradient of the examples' summed loss to g at the
	// coordinates they touch, reading the model from w (both of size()
	// values; only the examples' coordinates need be current), and returns
	// the summed loss.
	grad(s int, rows []int, w, g []float64) float64
	// penalized reports whether the L2 penalty applies to coordinate j.
	penalized(j int) bool
}

// newLearner builds the learner of a worker call, reading its shards
// (a warm worker keeps the last ones in memory).
func newLearner(ctx context.Context, st blob.Store, in workerIn) (learner, error) {
	if in.MF != nil {
		return newMFLearner(ctx, st, in)
	}
	loss, err := lossByName(in.Loss, in.K)
	if err != nil {
		return nil, err
	}
	blocks, err := loadBlocks(ctx, st, in, loss)
	if err != nil {
		return nil, err
	}
	return &linearLearner{blocks: blocks, loss: loss, k: in.K, dim: in.Dim, s: make([]float64, in.K), g: make([]float64, in.K)}, nil
}

// linearLearner is a linear model of dim features and k outputs: W by
// feature (k values each), then the k intercepts (not penalized).
type linearLearner struct {
	blocks []*block
	loss   Loss
	k, dim int
	s, g   []float64 // scratch: scores and their gradient
	dl     []float64 // scratch: a minibatch's loss gradients
}

func (l *linearLearner) size() int { return (l.dim + 1) * l.k }

func (l *linearLearner) shardLens() []int {
	n := make([]int, len(l.blocks))
	for i, b := range l.blocks {
		n[i] = b.n
	}
	return n
}

func (l *linearLearner) denseRows() bool {
	for _, b := range l.blocks {
		if b.dense != nil {
			return true
		}
	}
	return false
}

func (l *linearLearner) penalized(j int) bool { return j < l.dim*l.k }

func (l *linearLearner) coords(s, r int, dst []int) []int {
	b, k := l.blocks[s], l.k
	if b.dense != nil {
		for j := range l.size() {
			dst = append(dst, j)
		}
		return dst
	}
	for q := b.ptr[r]; q < b.ptr[r+1]; q++ {
		j := int(b.idx[q]) * k
		for c := range k {
			dst = append(dst, j+c)
		}
	}
	for c := range k {
		dst = append(dst, l.dim*k+c)
	}
	return dst
}

func (l *linearLearner) grad(si int, rows []int, w, grad []float64) float64 {
	b, k, dim, s, g := l.blocks[si], l.k, l.dim, l.s, l.g
	bias := dim * k
	var total float64
	for _, i := range rows {
		copy(s, w[bias:bias+k])
		if b.dense != nil {
			row := b.dense[i*dim : (i+1)*dim]
			for j, x := range row {
				if x != 0 {
					wj := w[j*k : j*k+k]
					for c := range s {
						s[c] += float64(x) * wj[c]
					}
				}
			}
		} else if k == 1 {
			for q := b.ptr[i]; q < b.ptr[i+1]; q++ {
				s[0] += float64(b.val[q]) * w[b.idx[q]]
			}
		} else {
			for q := b.ptr[i]; q < b.ptr[i+1]; q++ {
				j, x := int(b.idx[q]), float64(b.val[q])
				for c := range s {
					s[c] += x * w[j*k+c]
				}
			}
		}
		total += l.loss.Grad(g, s, b.y[i])
		if b.dense != nil {
			row := b.dense[i*dim : (i+1)*dim]
			for j, x := range row {
				if x != 0 {
					gj := grad[j*k : j*k+k]
					for c := range g {
						gj[c] += float64(x) * g[c]
					}
				}
			}
		} else if k == 1 {
			for q := b.ptr[i]; q < b.ptr[i+1]; q++ {
				grad[b.idx[q]] += float64(b.val[q]) * g[0]
			}
		} else {
			for q := b.ptr[i]; q < b.ptr[i+1]; q++ {
				j, x := int(b.idx[q]), float64(b.val[q])
				for c := range g {
					grad[j*k+c] += x * g[c]
				}
			}
		}
		for c := range g {
			grad[bias+c] += g[c]
		}
	}
	return total
}

// scaledStepper is a learner with a fast sequential step on sparse
// examples: the penalized values are held as scale × v, so the L2 decay of
// a step is one multiplication of the scale (scikit-learn's trick) and a
// step costs only what its examples touch, with no bookkeeping per value.
// The sequential baseline uses it; workers, whose copies meet other
// workers' updates, decay lazily instead (l2State).
type scaledStepper interface {
	// scaledStep trains a minibatch of shard s on the model read as
	// scale × v (unpenalized values as v): the scores and loss gradients
	// at that model, then v moved by -rate times the mean gradient with
	// the step's decay already in next, the scale after the step. It
	// returns the summed loss.
	scaledStep(s int, rows []int, v []float64, scale, next, rate float64) float64
}

func (l *linearLearner) scaledStep(si int, rows []int, v []float64, scale, next, rate float64) float64 {
	b, k, s := l.blocks[si], l.k, l.s
	bias := l.dim * k
	if cap(l.dl) < len(rows)*k {
		l.dl = make([]float64, len(rows)*k)
	}
	dl := l.dl[:len(rows)*k]
	var total float64
	for q, i := range rows {
		idx, val := b.idx[b.ptr[i]:b.ptr[i+1]], b.val[b.ptr[i]:b.ptr[i+1]]
		if k == 1 {
			var acc float64
			for p, j := range idx {
				acc += float64(val[p]) * v[j]
			}
			s[0] = acc*scale + v[bias]
		} else {
			clear(s)
			for p, j := range idx {
				wj, x := v[int(j)*k:int(j)*k+k], float64(val[p])
				for c := range s {
					s[c] += x * wj[c]
				}
			}
			for c := range s {
				s[c] = s[c]*scale + v[bias+c]
			}
		}
		total += l.loss.Grad(dl[q*k:q*k+k], s, b.y[i])
	}
	step := rate / float64(len(rows))
	f := step / next
	for q, i := range rows {
		idx, val := b.idx[b.ptr[i]:b.ptr[i+1]], b.val[b.ptr[i]:b.ptr[i+1]]
		g := dl[q*k : q*k+k]
		if k == 1 {
			u := -f * g[0]
			for p, j := range idx {
				v[j] += u * float64(val[p])
			}
			v[bias] -= step * g[0]
			continue
		}
		for p, j := range idx {
			wj, x := v[int(j)*k:int(j)*k+k], -f*float64(val[p])
			for c := range g {
				wj[c] += x * g[c]
			}
		}
		for c := range g {
			v[bias+c] -= step * g[c]
		}
	}
	return total
}
