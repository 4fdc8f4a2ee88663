package sgd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
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

// Position is where a worker is in its run: the next minibatch it takes.
// Shard and row orders are drawn from the run's seed, the worker, the
// epoch and the shard, so a position is all a worker needs to continue:
// in the next slice, after a crash (from the last one noted with a push),
// or from a checkpoint.
type Position struct {
	Run    string `json:"run"`  // the run's ID
	Data   string `json:"data"` // the data's fingerprint: its shards and their sizes
	Worker int    `json:"worker"`
	Epoch  int    `json:"epoch"`
	Block  int    `json:"block"` // index into the epoch's shard order
	Row    int    `json:"row"`   // offset into the shard's row order
	// Step is the worker's minibatches so far, counted from the start of
	// training (across Resume): the learning rate's step.
	Step int64 `json:"step"`
	// Examples are the examples whose updates the server holds, in this run.
	Examples int64 `json:"examples"`
}

// workerIn is a worker call's assignment.
type workerIn struct {
	PS         conn
	Model      string
	Dim, K     int
	Loss       string
	Labels     []float64 // libsvm label values, class c is Labels[c]; nil: labels are classes (or values, for regression)
	Store      string
	Format     string
	Shards     []string
	Sizes      []int // examples per shard, as listed (dense; 0 for libsvm)
	Epochs     int
	Deadline   time.Time     // zero: no time budget
	Slice      time.Duration // the longest this call trains; 0: no limit
	Batch      int
	LR         Schedule
	L2         float64
	Seed       uint64
	Worker     int
	LocalSteps int
	From       Position
}

// workerOut is what a worker call did and where it stopped.
type workerOut struct {
	Stats WorkerStats
	End   Position
	Done  bool // the worker's epochs or the time budget are used up
}

// WorkerStats is what one worker did.
type WorkerStats struct {
	Worker      int           `json:"worker"`
	Calls       int           `json:"calls"` // slices (wren calls) it took
	Examples    int64         `json:"examples"`
	Steps       int64         `json:"steps"`  // minibatches
	Pushes      int64         `json:"pushes"` // updates sent to the parameter server
	BytesPushed int64         `json:"bytes_pushed"`
	Pull        time.Duration `json:"pull"`
	Compute     time.Duration `json:"compute"`
	Push        time.Duration `json:"push"`    // waiting for pushes (they overlap computing)
	Loss        float64       `json:"loss"`    // mean training loss of the last epoch trained
	Resumed     int           `json:"resumed"` // calls that continued from a noted position (after a lost attempt)
}

// add sums another call's stats into s.
func (s *WorkerStats) add(o WorkerStats) {
	s.Calls += o.Calls
	s.Examples += o.Examples
	s.Steps += o.Steps
	s.Pushes += o.Pushes
	s.BytesPushed += o.BytesPushed
	s.Pull += o.Pull
	s.Compute += o.Compute
	s.Push += o.Push
	s.Resumed += o.Resumed
	if o.Steps > 0 {
		s.Loss = o.Loss
	}
}

// ErrDiverged reports a training loss that became NaN or infinite.
var ErrDiverged = errors.New("sgd: training diverged")

// ErrSlice reports a slice too short for one push window: a call could
// never make progress.
var ErrSlice = errors.New("sgd: the slice is shorter than one push window")

// ErrPosition reports a position that belongs to another run or other data.
var ErrPosition = errors.New("sgd: a position of another run")

// workerTask is the HOGWILD! worker: one call trains one slice of a
// worker's run and returns where it stopped.
var workerTask = wren.Register("sgd.worker", func(ctx context.Context, in workerIn) (workerOut, error) {
	loss, err := lossByName(in.Loss, in.K)
	if err != nil {
		return workerOut{}, err
	}
	st, err := blob.Shared(ctx, in.Store)
	if err != nil {
		return workerOut{}, err
	}
	c, err := psConn(ctx, in.PS)
	if err != nil {
		return workerOut{}, err
	}
	m, err := c.Model(ctx, in.Model)
	if err != nil {
		return workerOut{}, err
	}
	return train(ctx, st, &psParams{m: m, note: noteName(in.From.Run, in.Worker)}, in, loss, true)
})

// noteName is the parameter-server note of a run's worker: its position,
// written with each of its pushes.
func noteName(run string, worker int) string { return run + "/w" + strconv.Itoa(worker) }

// A worker process keeps its connections to parameter servers across
// calls (a warm Lambda container's next slice reuses them).
var (
	connMu sync.Mutex
	conns  = map[conn]*ps.Client{}
)

func psConn(ctx context.Context, c conn) (*ps.Client, error) {
	connMu.Lock()
	defer connMu.Unlock()
	if cl, ok := conns[c]; ok {
		return cl, nil
	}
	po, err := ps.ParseURL(c.URL)
	if err != nil {
		return nil, err
	}
	po.BlockSize = c.BlockSize
	cl, err := ps.Open(ctx, po)
	if err != nil {
		return nil, err
	}
	conns[c] = cl
	return cl, nil
}

// A worker process keeps the shards of its last assignment in memory: the
// next slice of the same worker (a warm container) does not read them again.
var (
	cacheMu  sync.Mutex
	cacheKey string
	cached   []*block
)

func loadBlocks(ctx context.Context, st blob.Store, in workerIn, loss Loss) ([]*block, error) {
	key := fmt.Sprint(in.Store, in.Format, in.Dim, in.Loss, in.K, in.Labels, in.Shards)
	cacheMu.Lock()
	defer cacheMu.Unlock()
	if key == cacheKey {
		return cached, nil
	}
	cacheKey, cached = "", nil // let the old ones go before reading the new
	blocks := make([]*block, len(in.Shards))
	for i, k := range in.Shards {
		b, err := readShard(ctx, st, in.Format, k, in.Dim, loss, in.Labels)
		if err != nil {
			return nil, err
		}
		if i < len(in.Sizes) && in.Sizes[i] > 0 && b.n != in.Sizes[i] {
			return nil, fmt.Errorf("%w: %s has %d examples, %d when training started", ErrBadData, k, b.n, in.Sizes[i])
		}
		blocks[i] = b
	}
	cacheKey, cached = key, blocks
	return blocks, nil
}

// params is where the model lives: the parameter server, or memory for
// the sequential baseline. A push carries the worker's position after it
// (nil: none to note).
type params interface {
	pull(ctx context.Context, dst []float64) error
	pullIdx(ctx context.Context, idx []int, dst []float64) error
	push(ctx context.Context, delta []float64, pos []byte) error
	pushIdx(ctx context.Context, idx []int, delta []float64, pos []byte) error
	// noted returns the position noted with the worker's last push, if any.
	noted(ctx context.Context) ([]byte, bool, error)
}

type psParams struct {
	m    *ps.Model
	note string // the note of this worker's position
	buf  []float32
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

func (p *psParams) opts(pos []byte) []ps.PushOption {
	if pos == nil || p.note == "" {
		return nil
	}
	return []ps.PushOption{ps.WithNote(p.note, pos)}
}

func (p *psParams) push(ctx context.Context, delta []float64, pos []byte) error {
	d := make([]float32, len(delta))
	for i, v := range delta {
		d[i] = float32(v)
	}
	return p.m.Push(ctx, 0, d, 1, p.opts(pos)...)
}

func (p *psParams) pushIdx(ctx context.Context, idx []int, delta []float64, pos []byte) error {
	d := make([]float32, len(delta))
	for i, v := range delta {
		d[i] = float32(v)
	}
	if len(idx) == 0 && pos != nil {
		// Nothing to add, but the position moves: note it with a push of
		// nothing (one zero), so that a crash does not replay the steps.
		idx, d = []int{0}, []float32{0}
	}
	return p.m.PushSparse(ctx, idx, d, 1, p.opts(pos)...)
}

func (p *psParams) noted(ctx context.Context) ([]byte, bool, error) {
	if p.note == "" {
		return nil, false, nil
	}
	b, err := p.m.Note(ctx, p.note)
	if errors.Is(err, ps.ErrNoNote) {
		return nil, false, nil
	}
	return b, err == nil, err
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
func (p *memParams) push(ctx context.Context, delta []float64, _ []byte) error {
	for i, v := range delta {
		p.w[i] += v
	}
	return nil
}
func (p *memParams) pushIdx(ctx context.Context, idx []int, delta []float64, _ []byte) error {
	for i, j := range idx {
		p.w[j] += delta[i]
	}
	return nil
}
func (p *memParams) noted(context.Context) ([]byte, bool, error) { return nil, false, nil }

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
		if err != nil && !errors.Is(err, ps.ErrUnknownOutcome) {
			return err
		}
		return nil
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

// order returns a permutation of n drawn from the run's seed and the
// given coordinates (worker, epoch, shard): the same wherever and whenever
// a worker continues.
func order(seed uint64, n int, coords ...int) []int {
	h := uint64(0x9e3779b97f4a7c15)
	for _, c := range coords {
		h = (h ^ uint64(c)) * 0x100000001b3
		h ^= h >> 29
	}
	return rand.New(rand.NewPCG(seed, h)).Perm(n)
}

// check validates a position against the call's assignment.
func (pos Position) check(in workerIn, blocks []*block) error {
	most := 0
	for _, b := range blocks {
		most = max(most, b.n)
	}
	switch {
	case pos.Run != in.From.Run || pos.Data != in.From.Data || pos.Worker != in.Worker:
		return fmt.Errorf("%w: position of run %q, data %q, worker %d; this is run %q, data %q, worker %d",
			ErrPosition, pos.Run, pos.Data, pos.Worker, in.From.Run, in.From.Data, in.Worker)
	case pos.Epoch < 0 || pos.Block < 0 || pos.Block >= len(blocks) || pos.Row < 0 || pos.Row >= most || pos.Step < 0 || pos.Examples < 0:
		return fmt.Errorf("%w: position %+v outside the %d shards of worker %d", ErrPosition, pos, len(blocks), in.Worker)
	}
	return nil
}

// train runs a worker's slice: from in.From (or the position noted with
// its last push, when an earlier attempt got further) for at most
// in.Slice, its epochs or until in.Deadline; it returns where it stopped.
// Positions move on push boundaries: the one returned, and the one noted
// with each push, is the next minibatch after everything the server holds.
func train(ctx context.Context, st blob.Store, p params, in workerIn, loss Loss, async bool) (workerOut, error) {
	out := workerOut{Stats: WorkerStats{Worker: in.Worker, Calls: 1}}
	stats := &out.Stats
	k, dim := in.K, in.Dim
	n := (dim + 1) * k
	blocks, err := loadBlocks(ctx, st, in, loss)
	if err != nil {
		return out, err
	}
	if len(blocks) == 0 {
		return out, fmt.Errorf("%w: worker %d has no shard", ErrBadData, in.Worker)
	}
	pos := in.From
	if err := pos.check(in, blocks); err != nil {
		return out, err
	}
	// An earlier attempt of this call may have pushed further before it was
	// lost: continue after what the server holds.
	if b, ok, err := p.noted(ctx); err != nil {
		return out, fmt.Errorf("sgd: worker %d: read its position: %w", in.Worker, err)
	} else if ok {
		var np Position
		if err := json.Unmarshal(b, &np); err != nil {
			return out, fmt.Errorf("%w: the noted position of worker %d: %v", ErrPosition, in.Worker, err)
		}
		if err := np.check(in, blocks); err != nil {
			return out, err
		}
		if np.Step > pos.Step {
			pos = np
			stats.Resumed = 1
		}
	}
	dense := n <= 1<<20 // the whole model is pulled; else the touched coordinates
	var w, delta, grad []float64
	if dense {
		w, delta, grad = make([]float64, n), make([]float64, n), make([]float64, n)
		t := time.Now()
		if err := p.pull(ctx, w); err != nil {
			return out, err
		}
		stats.Pull += time.Since(t)
	}
	pu := &pusher{async: async}
	s, g := make([]float64, k), make([]float64, k)
	gradW := map[int]float64{} // sparse: coordinate -> gradient sum
	pending := map[int]float64{}
	local, windowExamples := 0, int64(0)
	var epochLoss float64
	var epochN int64
	begin := time.Now()
	first := true
	// push sends the window's update with the position after it.
	push := func() error {
		pos.Examples += windowExamples
		windowExamples = 0
		note, _ := json.Marshal(pos)
		return flush(ctx, p, pu, dense, w, delta, pending, stats, note)
	}
	finish := func(done bool) (workerOut, error) {
		if local > 0 {
			if err := push(); err != nil {
				return out, err
			}
		}
		if err := pu.settle(); err != nil {
			return out, err
		}
		stats.Push = pu.wait
		if epochN > 0 {
			stats.Loss = epochLoss / float64(epochN)
		}
		out.End, out.Done = pos, done
		return out, nil
	}
	// One minibatch a turn; the shard and row orders are drawn again when
	// the position enters another epoch or shard.
	ordEpoch, rowsAt := -1, [2]int{-1, -1}
	var ord, rows []int
	for pos.Epoch < in.Epochs {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		if local == 0 && !in.Deadline.IsZero() && time.Now().After(in.Deadline) {
			return finish(true)
		}
		if ordEpoch != pos.Epoch {
			ord, ordEpoch = order(in.Seed, len(blocks), in.Worker, pos.Epoch), pos.Epoch
		}
		bi := ord[pos.Block]
		b := blocks[bi]
		if rowsAt != [2]int{pos.Epoch, bi} {
			rows, rowsAt = order(in.Seed, b.n, in.Worker, pos.Epoch, bi, 1), [2]int{pos.Epoch, bi}
		}
		batch := rows[pos.Row:min(pos.Row+in.Batch, b.n)]
		lr := in.LR.At(int(pos.Step))
		var bl float64
		var err error
		if dense {
			t := time.Now()
			bl, err = denseStep(b, batch, w, delta, grad, s, g, loss, k, dim, lr, in.L2)
			stats.Compute += time.Since(t)
		} else {
			bl, err = sparseStep(ctx, p, b, batch, pending, gradW, s, g, loss, k, dim, lr, in.L2, stats)
		}
		if err != nil {
			return out, err
		}
		if math.IsNaN(bl) || math.IsInf(bl, 0) {
			return out, fmt.Errorf("%w: worker %d, epoch %d, step %d: the minibatch loss is %v; lower the learning rate", ErrDiverged, in.Worker, pos.Epoch, pos.Step, bl)
		}
		epochLoss += bl
		epochN += int64(len(batch))
		stats.Examples += int64(len(batch))
		windowExamples += int64(len(batch))
		stats.Steps++
		pos.Step++
		// The next minibatch.
		if pos.Row += len(batch); pos.Row >= b.n {
			pos.Row = 0
			if pos.Block++; pos.Block >= len(blocks) {
				pos.Block = 0
				pos.Epoch++
				if pos.Epoch < in.Epochs {
					stats.Loss = epochLoss / float64(epochN)
					epochLoss, epochN = 0, 0
				}
			}
		}
		if local++; local < in.LocalSteps {
			continue
		}
		local = 0
		if err := push(); err != nil {
			return out, err
		}
		if in.Slice > 0 && pos.Epoch < in.Epochs {
			took := time.Since(begin)
			if first && took > in.Slice {
				return out, fmt.Errorf("%w: worker %d took %v for its first %d minibatches of %d, the slice is %v: lengthen the slice or shorten the window (LocalSteps, BatchSize)",
					ErrSlice, in.Worker, took.Round(time.Millisecond), in.LocalSteps, in.Batch, in.Slice)
			}
			first = false
			if took >= in.Slice {
				return finish(false)
			}
		}
	}
	return finish(true)
}

// flush pushes the accumulated update, with the position note, and
// refreshes the local model.
func flush(ctx context.Context, p params, pu *pusher, dense bool, w, delta []float64, pending map[int]float64, stats *WorkerStats, note []byte) error {
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
		return pu.send(ctx, func(ctx context.Context) error { return p.push(ctx, d, note) })
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
	return pu.send(ctx, func(ctx context.Context) error { return p.pushIdx(ctx, idx, d, note) })
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
