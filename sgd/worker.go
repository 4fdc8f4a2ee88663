package sgd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/ps"
	"golang.org/x/sync/errgroup"
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
	// MF, when set, makes the model a matrix factorization of the ratings
	// shards (Format "ratings"); Dim, K, Loss and Labels are then unused.
	MF *mfSpec
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
	Read        time.Duration `json:"read"` // reading and parsing its shards
	Pull        time.Duration `json:"pull"`
	Compute     time.Duration `json:"compute"`
	Push        time.Duration `json:"push"`    // waiting for pushes (they overlap computing)
	Loss        float64       `json:"loss"`    // mean training loss of the last epoch trained
	Resumed     int           `json:"resumed"` // calls that continued from a noted position (after a lost attempt)
	Lost        int           `json:"lost"`    // calls lost with every attempt, continued by the driver
}

// add sums another call's stats into s.
func (s *WorkerStats) add(o WorkerStats) {
	s.Calls += o.Calls
	s.Examples += o.Examples
	s.Steps += o.Steps
	s.Pushes += o.Pushes
	s.BytesPushed += o.BytesPushed
	s.Read += o.Read
	s.Pull += o.Pull
	s.Compute += o.Compute
	s.Push += o.Push
	s.Resumed += o.Resumed
	s.Lost += o.Lost
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
	return train(ctx, st, &psParams{m: m, note: noteName(in.From.Run, in.Worker)}, in, true)
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
	// The shards are read and parsed on every core (parsing text is most
	// of a sparse run's reading).
	blocks := make([]*block, len(in.Shards))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0))
	for i, k := range in.Shards {
		g.Go(func() error {
			b, err := readShard(gctx, st, in.Format, k, in.Dim, loss, in.Labels)
			if err != nil {
				return err
			}
			if i < len(in.Sizes) && in.Sizes[i] > 0 && b.n != in.Sizes[i] {
				return fmt.Errorf("%w: %s has %d examples, %d when training started", ErrBadData, k, b.n, in.Sizes[i])
			}
			blocks[i] = b
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	cacheKey, cached = key, blocks
	return blocks, nil
}

// check refuses an assignment no driver of this package writes: a call's
// input comes from the store, and a zero batch or window would never end.
func (in *workerIn) check() error {
	switch {
	case in.Batch < 1 || in.LocalSteps < 1 || in.Epochs < 1 || in.Worker < 0 || in.Slice < 0:
		return fmt.Errorf("%w: worker %d: batch %d, local steps %d, epochs %d, slice %v", ErrBadData, in.Worker, in.Batch, in.LocalSteps, in.Epochs, in.Slice)
	case math.IsNaN(in.L2) || math.IsInf(in.L2, 0) || in.L2 < 0:
		return fmt.Errorf("%w: worker %d: L2 %v", ErrBadData, in.Worker, in.L2)
	}
	if err := in.LR.validate(); err != nil {
		return fmt.Errorf("%w: worker %d: %w", ErrBadData, in.Worker, err)
	}
	return nil
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
	// size is the model's number of values.
	size() int
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

func (p *psParams) size() int { return p.m.Len() }

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

// memParams keeps the model in memory (TrainLocal): the runner trains w
// itself, nothing is pulled or pushed.
type memParams struct{ w []float64 }

func (p *memParams) pull(context.Context, []float64) error                   { return nil }
func (p *memParams) pullIdx(context.Context, []int, []float64) error         { return nil }
func (p *memParams) push(context.Context, []float64, []byte) error           { return nil }
func (p *memParams) pushIdx(context.Context, []int, []float64, []byte) error { return nil }
func (p *memParams) noted(context.Context) ([]byte, bool, error)             { return nil, false, nil }
func (p *memParams) size() int                                               { return len(p.w) }

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
func (pos Position) check(in workerIn, lens []int) error {
	most := 0
	for _, n := range lens {
		most = max(most, n)
	}
	switch {
	case pos.Run != in.From.Run || pos.Data != in.From.Data || pos.Worker != in.Worker:
		return fmt.Errorf("%w: position of run %q, data %q, worker %d; this is run %q, data %q, worker %d",
			ErrPosition, pos.Run, pos.Data, pos.Worker, in.From.Run, in.From.Data, in.Worker)
	case pos.Epoch < 0 || pos.Block < 0 || pos.Block >= len(lens) || pos.Row < 0 || pos.Row >= most || pos.Step < 0 || pos.Examples < 0:
		return fmt.Errorf("%w: position %+v outside the %d shards of worker %d", ErrPosition, pos, len(lens), in.Worker)
	}
	return nil
}

// cursor draws the shard and row orders of a worker's positions: the
// same wherever and whenever a worker continues.
type cursor struct {
	seed     uint64
	worker   int
	lens     []int
	ordEpoch int
	ord      []int
	rowsAt   [2]int
	rows     []int
}

func newCursor(seed uint64, worker int, lens []int) *cursor {
	return &cursor{seed: seed, worker: worker, lens: lens, ordEpoch: -1, rowsAt: [2]int{-1, -1}}
}

// batch returns the shard and rows of the minibatch at pos, and the
// position after it.
func (c *cursor) batch(pos Position, size int) (int, []int, Position) {
	if c.ordEpoch != pos.Epoch {
		c.ord, c.ordEpoch = order(c.seed, len(c.lens), c.worker, pos.Epoch), pos.Epoch
	}
	s := c.ord[pos.Block]
	n := c.lens[s]
	if c.rowsAt != [2]int{pos.Epoch, s} {
		c.rows, c.rowsAt = order(c.seed, n, c.worker, pos.Epoch, s, 1), [2]int{pos.Epoch, s}
	}
	rows := c.rows[pos.Row:min(pos.Row+size, n)]
	pos.Step++
	if pos.Row += len(rows); pos.Row >= n {
		pos.Row = 0
		if pos.Block++; pos.Block >= len(c.lens) {
			pos.Block = 0
			pos.Epoch++
		}
	}
	return s, rows, pos
}

// l2State applies the L2 penalty lazily: a coordinate's decay for the
// steps it was not touched is applied when it is next touched (or at the
// end), so a step costs what its examples touch, and the result is the
// dense path's: w <- w(1 - lr*L2) every step for every penalized value.
// The decay since step l is prod[t]/prod[l] within a segment of steps whose
// product stays far from underflow (a division), else exp of the summed
// logs.
type l2State struct {
	l2   float64
	logD []float64 // logD[t]: the summed log decay of this call's steps before t
	prod []float64 // prod[t]: the decay product of steps before t since its segment began
	seg  []int32   // seg[t]: the segment of step t
	last []int32   // the step through which each coordinate is decayed
}

func newL2State(l2 float64, n int) *l2State {
	return &l2State{l2: l2, logD: []float64{0}, prod: []float64{1}, seg: []int32{0}, last: make([]int32, n)}
}

// step records the decay of local step t = len(logD)-1 at rate lr.
func (z *l2State) step(lr float64) error {
	f := 1 - lr*z.l2
	if f <= 0 {
		return fmt.Errorf("%w: the learning rate %v times L2 %v is at least 1", ErrDiverged, lr, z.l2)
	}
	t := len(z.logD) - 1
	z.logD = append(z.logD, z.logD[t]+math.Log(f))
	p, s := z.prod[t]*f, z.seg[t]
	if p < 1e-100 {
		p, s = 1, s+1
	}
	z.prod = append(z.prod, p)
	z.seg = append(z.seg, s)
	return nil
}

// reset starts the decay again at step 0, every coordinate settled.
func (z *l2State) reset() {
	z.logD, z.prod, z.seg = z.logD[:1], z.prod[:1], z.seg[:1]
	clear(z.last)
}

// lazySteps is the most steps an l2State records before the runner
// settles every coordinate and starts it again.
var lazySteps = 1 << 20

// wholeShare: a window (or the final settling of the lazy decay) that
// touches at least 1/wholeShare of the model pulls and pushes all of it.
// A value gathered and scattered costs the server about 40 times what a
// value of a whole-model pull and push does (wren bench ps), so moving the
// whole model pays from about 1/40 of it; 1/16 leaves a margin.
const wholeShare = 16

// scaleFloor is the smallest scale of a scaledStepper's model: below it
// the scale is multiplied into the values and starts again at 1.
var scaleFloor = 1e-9

// catchUp returns the factor that brings coordinate j's decay to step t.
func (z *l2State) catchUp(j, t int) float64 {
	l := int(z.last[j])
	if l >= t {
		return 1
	}
	z.last[j] = int32(t)
	if z.seg[l] == z.seg[t] {
		return z.prod[t] / z.prod[l]
	}
	return math.Exp(z.logD[t] - z.logD[l])
}

// train runs a worker's slice: from in.From (or the position noted with
// its last push, when an earlier attempt got further) for at most
// in.Slice, its epochs or until in.Deadline; it returns where it stopped.
// Positions move on push boundaries: the one returned, and the one noted
// with each push, is the next minibatch after everything the server holds.
//
// A window of LocalSteps minibatches is known in advance: the worker
// gathers the union of their coordinates in one pull (or the whole model,
// when they touch 1/wholeShare of it or every example reads every value),
// trains them on its copy, and pushes their summed update in one scatter
// (or one dense push). With p a *memParams (TrainLocal) the model is the
// copy: nothing is pulled or pushed.
func train(ctx context.Context, st blob.Store, p params, in workerIn, async bool) (workerOut, error) {
	out := workerOut{Stats: WorkerStats{Worker: in.Worker, Calls: 1}}
	stats := &out.Stats
	if err := in.check(); err != nil {
		return out, err
	}
	t0 := time.Now()
	ln, err := newLearner(ctx, st, in)
	if err != nil {
		return out, err
	}
	stats.Read = time.Since(t0)
	if want := p.size(); ln.size() != want {
		return out, fmt.Errorf("%w: worker %d's model has %d values, the model it trains %d", ErrModelSize, in.Worker, ln.size(), want)
	}
	lens := ln.shardLens()
	if len(lens) == 0 {
		return out, fmt.Errorf("%w: worker %d has no shard", ErrBadData, in.Worker)
	}
	pos := in.From
	if err := pos.check(in, lens); err != nil {
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
		if err := np.check(in, lens); err != nil {
			return out, err
		}
		if np.Step > pos.Step {
			pos = np
			stats.Resumed = 1
		}
	}
	n := ln.size()
	mem, local := p.(*memParams)
	var w []float64
	if local {
		w = mem.w
	} else {
		w = make([]float64, n)
	}
	g := make([]float64, n)
	var delta []float64
	if !local {
		delta = make([]float64, n)
	}
	cur := newCursor(in.Seed, in.Worker, lens)
	// Dense rows: every step updates every value (eager L2); sparse rows:
	// a step touches its examples' coordinates (lazy L2). Whether a window
	// pulls and pushes the whole model or gathers and scatters its
	// coordinates is decided from the first window: what it touches
	// against the model's size.
	dense := ln.denseRows()
	whole := dense
	var z *l2State
	seen := make([]int32, n) // stamps: the batch (or window) a coordinate was last listed in
	stamp := int32(0)
	nextStamp := func() int32 {
		if stamp == math.MaxInt32 {
			clear(seen)
			stamp = 0
		}
		stamp++
		return stamp
	}
	// window lists the coordinates of the next LocalSteps minibatches from
	// pos (at most the epochs' end), each once.
	var coordBuf []int
	// listCoords appends the coordinates rows of shard sh touch that are
	// not stamped s yet, stamping them.
	listCoords := func(sh int, rows []int, s int32, dst []int) []int {
		for _, r := range rows {
			coordBuf = ln.coords(sh, r, coordBuf[:0])
			for _, j := range coordBuf {
				if seen[j] != s {
					seen[j] = s
					dst = append(dst, j)
				}
			}
		}
		return dst
	}
	window := func(pos Position, steps int, dst []int) []int {
		s := nextStamp()
		for i := 0; i < steps && pos.Epoch < in.Epochs; i++ {
			var sh int
			var rows []int
			sh, rows, pos = cur.batch(pos, in.Batch)
			dst = listCoords(sh, rows, s, dst)
		}
		return dst
	}
	var union []int
	if !dense && !local {
		union = window(pos, in.LocalSteps, union[:0])
		whole = wholeShare*len(union) >= n
	}
	// On sparse examples, the sequential baseline and a worker whose
	// windows pull and push the whole model hold their copy as scale × v
	// (scaledStepper): a step's decay is one multiplication, and a
	// window's update is the copy's change since its pull (orig). A worker
	// gathering a window's coordinates decays lazily instead: the values
	// it did not gather decay too, and it does not hold them.
	ss, scaled := ln.(scaledStepper)
	scaled = scaled && !dense && (local || whole)
	var orig []float64
	if scaled && !local {
		orig, delta = make([]float64, n), nil
	}
	scale := 1.0
	materialize := func() {
		if scale == 1 {
			return
		}
		for j := range n {
			if ln.penalized(j) {
				w[j] *= scale
			}
		}
		scale = 1
	}
	if !dense && !scaled && in.L2 > 0 {
		z = newL2State(in.L2, n)
	}
	startStep := pos.Step
	pu := &pusher{async: async}
	var vals []float64
	local0, windowExamples := 0, int64(0)
	var epochLoss float64
	var epochN int64
	begin := time.Now()
	first, fresh := true, true
	var batchCoords []int
	// load refreshes the copy for the window at pos: the whole model, or
	// the window's coordinates.
	load := func() error {
		if local {
			return nil
		}
		if err := pu.settle(); err != nil { // the server holds our last push
			return err
		}
		t := time.Now()
		defer func() { stats.Pull += time.Since(t) }()
		if whole {
			if err := p.pull(ctx, w); err != nil {
				return err
			}
			if scaled {
				copy(orig, w)
				scale = 1
			}
			return nil
		}
		if !fresh {
			union = window(pos, in.LocalSteps, union[:0])
		}
		fresh = false
		if cap(vals) < len(union) {
			vals = make([]float64, len(union))
		}
		vals = vals[:len(union)]
		if err := p.pullIdx(ctx, union, vals); err != nil {
			return err
		}
		for q, j := range union {
			w[j] = vals[q]
		}
		return nil
	}
	// push sends the window's update with the position after it.
	push := func() error {
		pos.Examples += windowExamples
		windowExamples = 0
		if local {
			return nil
		}
		note, _ := json.Marshal(pos)
		stats.Pushes++
		if whole {
			var d []float64
			if scaled {
				d = make([]float64, n)
				for j, v := range w {
					if scale != 1 && ln.penalized(j) {
						v *= scale
					}
					d[j] = v - orig[j]
				}
			} else {
				d = slices.Clone(delta)
				clear(delta)
			}
			for i, v := range d {
				if !finite32(v) {
					return fmt.Errorf("%w: worker %d, step %d: the update of value %d is %v; lower the learning rate", ErrDiverged, in.Worker, pos.Step, i, v)
				}
			}
			stats.BytesPushed += int64(4 * len(d))
			return pu.send(ctx, func(ctx context.Context) error { return p.push(ctx, d, note) })
		}
		idx := make([]int, 0, len(union))
		d := make([]float64, 0, len(union))
		for _, j := range union {
			if v := delta[j]; v != 0 {
				if !finite32(v) {
					return fmt.Errorf("%w: worker %d, step %d: the update of value %d is %v; lower the learning rate", ErrDiverged, in.Worker, pos.Step, j, v)
				}
				idx = append(idx, j)
				d = append(d, v)
				delta[j] = 0
			}
		}
		stats.BytesPushed += int64(8 * len(idx))
		return pu.send(ctx, func(ctx context.Context) error { return p.pushIdx(ctx, idx, d, note) })
	}
	// settleL2 brings every coordinate's lazy decay to the call's last step.
	settleL2 := func() error {
		if z == nil {
			return nil
		}
		t := int(pos.Step - startStep)
		if local {
			for j := range n {
				if ln.penalized(j) {
					w[j] *= z.catchUp(j, t)
				}
			}
			return nil
		}
		if err := pu.settle(); err != nil {
			return err
		}
		var idx []int
		for j := range n {
			if ln.penalized(j) && int(z.last[j]) < t {
				idx = append(idx, j)
			}
		}
		if len(idx) == 0 {
			return nil
		}
		note, _ := json.Marshal(pos)
		stats.Pushes++
		tt := time.Now()
		if wholeShare*len(idx) >= n {
			// Most of the model: one dense pull and push (a gather runs
			// far fewer values a second).
			if err := p.pull(ctx, w); err != nil {
				return err
			}
			stats.Pull += time.Since(tt)
			d := make([]float64, n)
			for _, j := range idx {
				d[j] = w[j] * (z.catchUp(j, t) - 1)
			}
			stats.BytesPushed += int64(4 * len(d))
			return pu.send(ctx, func(ctx context.Context) error { return p.push(ctx, d, note) })
		}
		vals := make([]float64, len(idx))
		if err := p.pullIdx(ctx, idx, vals); err != nil {
			return err
		}
		stats.Pull += time.Since(tt)
		d := make([]float64, len(idx))
		for q, j := range idx {
			d[q] = vals[q] * (z.catchUp(j, t) - 1)
		}
		stats.BytesPushed += int64(8 * len(idx))
		return pu.send(ctx, func(ctx context.Context) error { return p.pushIdx(ctx, idx, d, note) })
	}
	finish := func(done bool) (workerOut, error) {
		materialize()
		if local0 > 0 {
			if err := push(); err != nil {
				return out, err
			}
		}
		if err := settleL2(); err != nil {
			return out, err
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
	for pos.Epoch < in.Epochs {
		if err := ctx.Err(); err != nil {
			return out, err
		}
		if local0 == 0 {
			if !in.Deadline.IsZero() && time.Now().After(in.Deadline) {
				return finish(true)
			}
			// The lazy decay keeps a few values a step: settle it and
			// start again before they grow large.
			if z != nil && len(z.logD) > lazySteps {
				if err := settleL2(); err != nil {
					return out, err
				}
				z.reset()
				startStep = pos.Step
			}
			if err := load(); err != nil {
				return out, err
			}
		}
		sh, rows, next := cur.batch(pos, in.Batch)
		lr := in.LR.At(int(pos.Step))
		t := time.Now()
		var bl float64
		inv := 1 / float64(len(rows))
		if dense {
			clear(g)
			bl = ln.grad(sh, rows, w, g)
			for j := range g {
				gj := g[j] * inv
				if in.L2 > 0 && ln.penalized(j) {
					gj += in.L2 * w[j]
				}
				u := -lr * gj
				w[j] += u
				if !local {
					delta[j] += u
				}
			}
		} else if scaled {
			next := scale
			if in.L2 > 0 {
				f := 1 - lr*in.L2
				if f <= 0 {
					return out, fmt.Errorf("%w: the learning rate %v times L2 %v is at least 1", ErrDiverged, lr, in.L2)
				}
				if next = scale * f; next < scaleFloor {
					materialize()
					next = f
				}
			}
			bl = ss.scaledStep(sh, rows, w, scale, next, lr)
			scale = next
		} else {
			lt := int(pos.Step - startStep)
			if z != nil {
				if err := z.step(lr); err != nil {
					return out, err
				}
			}
			batchCoords = listCoords(sh, rows, nextStamp(), batchCoords[:0])
			if z != nil {
				for _, j := range batchCoords {
					if ln.penalized(j) {
						if f := z.catchUp(j, lt); f != 1 {
							u := w[j] * (f - 1)
							w[j] += u
							if !local {
								delta[j] += u
							}
						}
					}
				}
			}
			bl = ln.grad(sh, rows, w, g)
			for _, j := range batchCoords {
				gj := g[j] * inv
				g[j] = 0
				if z != nil && ln.penalized(j) {
					gj += in.L2 * w[j]
					z.last[j] = int32(lt + 1)
				}
				u := -lr * gj
				w[j] += u
				if !local {
					delta[j] += u
				}
			}
		}
		stats.Compute += time.Since(t)
		if math.IsNaN(bl) || math.IsInf(bl, 0) {
			return out, fmt.Errorf("%w: worker %d, epoch %d, step %d: the minibatch loss is %v; lower the learning rate", ErrDiverged, in.Worker, pos.Epoch, pos.Step, bl)
		}
		epochLoss += bl
		epochN += int64(len(rows))
		stats.Examples += int64(len(rows))
		windowExamples += int64(len(rows))
		stats.Steps++
		if next.Epoch != pos.Epoch && next.Epoch < in.Epochs {
			stats.Loss = epochLoss / float64(epochN)
			epochLoss, epochN = 0, 0
		}
		pos = next
		if local0++; local0 < in.LocalSteps {
			continue
		}
		local0 = 0
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

// finite32 reports whether v is a finite float32 (what the parameter
// server stores).
func finite32(v float64) bool { return !math.IsNaN(v) && math.Abs(v) <= math.MaxFloat32 }
