package sgd

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/ps"
)

// conn is what a worker needs to reach the parameter server (it travels in
// each call's input): its URL, with the job's own credentials (ps.Grant).
type conn struct {
	URL       string
	BlockSize int
}

// workerIn is a worker's assignment.
type workerIn struct {
	PS         conn
	Model      string
	Dim, K     int
	Loss       string
	Store      string
	Format     string
	Shards     []string
	Epochs     int
	Deadline   time.Time // zero: no time budget
	Batch      int
	LR         Schedule
	L2         float64
	Seed       uint64
	Worker     int
	LocalSteps int
}

// WorkerStats is what one worker did.
type WorkerStats struct {
	Worker      int           `json:"worker"`
	Examples    int64         `json:"examples"`
	Steps       int64         `json:"steps"`  // minibatches
	Pushes      int64         `json:"pushes"` // updates sent to the parameter server
	BytesPushed int64         `json:"bytes_pushed"`
	Pull        time.Duration `json:"pull"`
	Compute     time.Duration `json:"compute"`
	Push        time.Duration `json:"push"` // waiting for pushes (they overlap computing)
	Loss        float64       `json:"loss"` // mean training loss of the last epoch
}

// ErrDiverged reports a training loss that became NaN or infinite.
var ErrDiverged = errors.New("sgd: training diverged")

// workerTask is the HOGWILD! worker: wren runs one call per worker.
var workerTask = wren.Register("sgd.worker", func(ctx context.Context, in workerIn) (WorkerStats, error) {
	loss, err := lossByName(in.Loss, in.K)
	if err != nil {
		return WorkerStats{}, err
	}
	st, err := blob.Shared(ctx, in.Store)
	if err != nil {
		return WorkerStats{}, err
	}
	po, err := ps.ParseURL(in.PS.URL)
	if err != nil {
		return WorkerStats{}, err
	}
	po.BlockSize = in.PS.BlockSize
	c, err := ps.Open(ctx, po)
	if err != nil {
		return WorkerStats{}, err
	}
	defer c.Close()
	m, err := c.Model(ctx, in.Model)
	if err != nil {
		return WorkerStats{}, err
	}
	return train(ctx, st, &psParams{m: m}, in, loss, true)
})

// params is where the model lives: the parameter server, or memory for
// the sequential baseline.
type params interface {
	pull(ctx context.Context, dst []float64) error
	pullIdx(ctx context.Context, idx []int, dst []float64) error
	push(ctx context.Context, delta []float64) error
	pushIdx(ctx context.Context, idx []int, delta []float64) error
}

type psParams struct {
	m   *ps.Model
	buf []float32
}

func (p *psParams) pull(ctx context.Context, dst []float64) error {
	if len(p.buf) != len(dst) {
		p.buf = make([]float32, len(dst))
	}
	if err := p.m.PullInto(ctx, p.buf, 0); err != nil {
		return err
	}
	for i, v := range p.buf {
		dst[i] = float64(v)
	}
	return nil
}

func (p *psParams) pullIdx(ctx context.Context, idx []int, dst []float64) error {
	v, err := p.m.PullIndices(ctx, idx)
	if err != nil {
		return err
	}
	for i, x := range v {
		dst[i] = float64(x)
	}
	return nil
}

func (p *psParams) push(ctx context.Context, delta []float64) error {
	d := make([]float32, len(delta))
	for i, v := range delta {
		d[i] = float32(v)
	}
	return p.m.Push(ctx, 0, d, 1)
}

func (p *psParams) pushIdx(ctx context.Context, idx []int, delta []float64) error {
	d := make([]float32, len(delta))
	for i, v := range delta {
		d[i] = float32(v)
	}
	return p.m.PushSparse(ctx, idx, d, 1)
}

// memParams keeps the model in memory (sequential baseline).
type memParams struct{ w []float64 }

func (p *memParams) pull(ctx context.Context, dst []float64) error { copy(dst, p.w); return nil }
func (p *memParams) pullIdx(ctx context.Context, idx []int, dst []float64) error {
	for i, j := range idx {
		dst[i] = p.w[j]
	}
	return nil
}
func (p *memParams) push(ctx context.Context, delta []float64) error {
	for i, v := range delta {
		p.w[i] += v
	}
	return nil
}
func (p *memParams) pushIdx(ctx context.Context, idx []int, delta []float64) error {
	for i, j := range idx {
		p.w[j] += delta[i]
	}
	return nil
}

// pusher sends updates one at a time in the background, so that a push
// overlaps the next minibatches' computing.
type pusher struct {
	async bool
	done  chan error
	busy  bool
	wait  time.Duration
}

func (p *pusher) send(ctx context.Context, f func(context.Context) error) error {
	if err := p.settle(); err != nil {
		return err
	}
	if !p.async {
		t := time.Now()
		err := f(ctx)
		p.wait += time.Since(t)
		return err
	}
	if p.done == nil {
		p.done = make(chan error, 1)
	}
	p.busy = true
	go func() { p.done <- f(ctx) }()
	return nil
}

// settle waits for the push in flight.
func (p *pusher) settle() error {
	if !p.busy {
		return nil
	}
	t := time.Now()
	err := <-p.done
	p.wait += time.Since(t)
	p.busy = false
	if err != nil && !errors.Is(err, ps.ErrUnknownOutcome) {
		return err
	}
	return nil // an update of unknown outcome is dropped: HOGWILD! tolerates it
}

// train runs a worker's epochs over its shards against params.
func train(ctx context.Context, st blob.Store, p params, in workerIn, loss Loss, async bool) (WorkerStats, error) {
	stats := WorkerStats{Worker: in.Worker}
	k, dim := in.K, in.Dim
	n := (dim + 1) * k
	blocks := make([]*block, len(in.Shards))
	for i, key := range in.Shards {
		b, err := readShard(ctx, st, in.Format, key, dim, loss)
		if err != nil {
			return stats, err
		}
		blocks[i] = b
	}
	rng := rand.New(rand.NewPCG(in.Seed, uint64(in.Worker)+1))
	dense := n <= 1<<20 // the whole model is pulled; else the touched coordinates
	var w, delta, grad []float64
	if dense {
		w, delta, grad = make([]float64, n), make([]float64, n), make([]float64, n)
		t := time.Now()
		if err := p.pull(ctx, w); err != nil {
			return stats, err
		}
		stats.Pull += time.Since(t)
	}
	pu := &pusher{async: async}
	s, g := make([]float64, k), make([]float64, k)
	gradW := map[int]float64{} // sparse: coordinate -> gradient sum
	pending := map[int]float64{}
	step := 0
	local := 0
	for epoch := 0; epoch < in.Epochs; epoch++ {
		var epochLoss float64
		var epochN int64
		order := rng.Perm(len(blocks))
		for _, bi := range order {
			b := blocks[bi]
			rows := rng.Perm(b.n)
			for lo := 0; lo < b.n; lo += in.Batch {
				if err := ctx.Err(); err != nil {
					return stats, err
				}
				if !in.Deadline.IsZero() && time.Now().After(in.Deadline) {
					pu.settle()
					stats.Push = pu.wait
					return stats, nil
				}
				batch := rows[lo:min(lo+in.Batch, b.n)]
				lr := in.LR.At(step)
				var bl float64
				var err error
				if dense {
					t := time.Now()
					bl, err = denseStep(b, batch, w, delta, grad, s, g, loss, k, dim, lr, in.L2)
					stats.Compute += time.Since(t)
				} else {
					bl, err = sparseStep(ctx, p, b, batch, pending, gradW, s, g, loss, k, dim, lr, in.L2, &stats)
				}
				if err != nil {
					return stats, err
				}
				if math.IsNaN(bl) || math.IsInf(bl, 0) {
					return stats, fmt.Errorf("%w: worker %d, epoch %d, step %d: the minibatch loss is %v; lower the learning rate", ErrDiverged, in.Worker, epoch, step, bl)
				}
				epochLoss += bl
				epochN += int64(len(batch))
				stats.Examples += int64(len(batch))
				stats.Steps++
				step++
				local++
				if local >= in.LocalSteps {
					local = 0
					if err := flush(ctx, p, pu, dense, w, delta, pending, &stats); err != nil {
						return stats, err
					}
				}
			}
		}
		stats.Loss = epochLoss / float64(max(epochN, 1))
	}
	if err := flush(ctx, p, pu, dense, w, delta, pending, &stats); err != nil {
		return stats, err
	}
	if err := pu.settle(); err != nil {
		return stats, err
	}
	stats.Push = pu.wait
	return stats, nil
}

// flush pushes the accumulated update and refreshes the local model.
func flush(ctx context.Context, p params, pu *pusher, dense bool, w, delta []float64, pending map[int]float64, stats *WorkerStats) error {
	if dense {
		if err := pu.settle(); err != nil {
			return err
		}
		// The server's model holds every earlier push; ours is not sent yet.
		t := time.Now()
		if err := p.pull(ctx, w); err != nil {
			return err
		}
		stats.Pull += time.Since(t)
		d := slices.Clone(delta)
		for i, v := range d {
			if !finite32(v) {
				return fmt.Errorf("%w: worker %d, step %d: the update of value %d is %v; lower the learning rate", ErrDiverged, stats.Worker, stats.Steps, i, v)
			}
			w[i] += v
		}
		clear(delta)
		stats.Pushes++
		stats.BytesPushed += int64(4 * len(d))
		return pu.send(ctx, func(ctx context.Context) error { return p.push(ctx, d) })
	}
	if len(pending) == 0 {
		return nil
	}
	idx := make([]int, 0, len(pending))
	for j := range pending {
		idx = append(idx, j)
	}
	slices.Sort(idx)
	d := make([]float64, len(idx))
	for i, j := range idx {
		d[i] = pending[j]
		if !finite32(d[i]) {
			return fmt.Errorf("%w: worker %d, step %d: the update of value %d is %v; lower the learning rate", ErrDiverged, stats.Worker, stats.Steps, j, d[i])
		}
	}
	clear(pending)
	stats.Pushes++
	stats.BytesPushed += int64(8 * len(d))
	return pu.send(ctx, func(ctx context.Context) error { return p.pushIdx(ctx, idx, d) })
}

// denseStep takes one minibatch step on the whole model w, adding the
// update to w and to delta; it returns the minibatch's summed loss.
func denseStep(b *block, batch []int, w, delta, grad, s, g []float64, loss Loss, k, dim int, lr, l2 float64) (float64, error) {
	clear(grad)
	var total float64
	bias := dim * k
	for _, i := range batch {
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
		} else {
			for q := b.ptr[i]; q < b.ptr[i+1]; q++ {
				j, x := int(b.idx[q]), float64(b.val[q])
				for c := range s {
					s[c] += x * w[j*k+c]
				}
			}
		}
		total += loss.Grad(g, s, b.y[i])
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
	inv := 1 / float64(len(batch))
	for i := range grad {
		gi := grad[i] * inv
		if i < bias {
			gi += l2 * w[i]
		}
		u := -lr * gi
		w[i] += u
		delta[i] += u
	}
	return total, nil
}

// finite32 reports whether v is a finite float32 (what the parameter
// server stores).
func finite32(v float64) bool { return !math.IsNaN(v) && math.Abs(v) <= math.MaxFloat32 }

// sparseStep takes one minibatch step on the coordinates the minibatch
// touches: it pulls them, computes the gradient, and adds the update to
// pending.
func sparseStep(ctx context.Context, p params, b *block, batch []int, pending, grad map[int]float64, s, g []float64, loss Loss, k, dim int, lr, l2 float64, stats *WorkerStats) (float64, error) {
	clear(grad)
	bias := dim * k
	for c := range k {
		grad[bias+c] = 0
	}
	for _, i := range batch {
		if b.dense != nil {
			return 0, fmt.Errorf("%w: dense shard with a model over 1M values", ErrBadData)
		}
		for q := b.ptr[i]; q < b.ptr[i+1]; q++ {
			j := int(b.idx[q])
			for c := range k {
				grad[j*k+c] = 0
			}
		}
	}
	idx := make([]int, 0, len(grad))
	for j := range grad {
		idx = append(idx, j)
	}
	slices.Sort(idx)
	vals := make([]float64, len(idx))
	t := time.Now()
	if err := p.pullIdx(ctx, idx, vals); err != nil {
		return 0, err
	}
	stats.Pull += time.Since(t)
	t = time.Now()
	w := make(map[int]float64, len(idx))
	for q, j := range idx {
		w[j] = vals[q] + pending[j] // ours, not pushed yet
	}
	var total float64
	for _, i := range batch {
		for c := range s {
			s[c] = w[bias+c]
		}
		for q := b.ptr[i]; q < b.ptr[i+1]; q++ {
			j, x := int(b.idx[q]), float64(b.val[q])
			for c := range s {
				s[c] += x * w[j*k+c]
			}
		}
		total += loss.Grad(g, s, b.y[i])
		for q := b.ptr[i]; q < b.ptr[i+1]; q++ {
			j, x := int(b.idx[q]), float64(b.val[q])
			for c := range g {
				grad[j*k+c] += x * g[c]
			}
		}
		for c := range g {
			grad[bias+c] += g[c]
		}
	}
	inv := 1 / float64(len(batch))
	for j, gj := range grad {
		gj *= inv
		if j < bias {
			gj += l2 * w[j]
		}
		pending[j] += -lr * gj
	}
	stats.Compute += time.Since(t)
	return total, nil
}
