package wren

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/internal/offheap"
	"github.com/wrenml/wren/internal/retry"
	"github.com/wrenml/wren/job"
	"github.com/wrenml/wren/worker"
)

// MapOption adjusts one map; it overrides the executor's Options.
type MapOption func(*mapConfig)

func (c *mapConfig) mark(name string) {
	if c.set == nil {
		c.set = map[string]bool{}
	}
	c.set[name] = true
}

// WithChunkSize sends n calls in each invocation (as Options.ChunkSize:
// 0 or -1 means 1).
func WithChunkSize(n int) MapOption {
	return func(c *mapConfig) { c.chunkSize = max(n, 1); c.mark("chunk") }
}

// WithTimeout bounds each call (as Options.Timeout: 0 or -1 means no limit).
func WithTimeout(d time.Duration) MapOption {
	return func(c *mapConfig) { c.timeout = max(d, 0); c.mark("timeout") }
}

// WithRetries sets the extra attempts for lost calls (as Options.Retries:
// 0 means DefaultRetries, -1 none).
func WithRetries(n int) MapOption {
	return func(c *mapConfig) { c.retries = retriesOf(n); c.mark("retries") }
}

// WithRetryErrors also retries calls whose function failed or panicked.
func WithRetryErrors(on bool) MapOption {
	return func(c *mapConfig) { c.retryErrors = on; c.mark("retry-errors") }
}

// WithSpeculation turns straggler relaunch on with the given factor (as
// Options.SpeculationFactor: 0 means DefaultSpeculationFactor), or off with
// -1.
func WithSpeculation(factor float64) MapOption {
	return func(c *mapConfig) {
		c.speculation = factor >= 0
		c.specFactor = speculationFactorOf(factor)
		c.mark("speculation")
	}
}

// WithProgress sets when the map draws a progress bar.
func WithProgress(m ProgressMode) MapOption {
	return func(c *mapConfig) { c.progress = m; c.mark("progress") }
}

// WithJobID names the job instead of a generated ID. It must be a valid key
// segment and must not name an existing job.
func WithJobID(id string) MapOption { return func(c *mapConfig) { c.jobID = id } }

// WithForce makes Attach take over a job whose driver looks alive (a
// heartbeat within StaleAfter; that driver's calls then fail with
// ErrTakenOver), or whose binary differs from the attaching program's.
// Map ignores it.
func WithForce() MapOption { return func(c *mapConfig) { c.force = true } }

// WaitMode says when Job.Wait returns.
type WaitMode int

const (
	// AllCompleted waits for every call.
	AllCompleted WaitMode = iota
	// AnyCompleted waits until at least one call is done.
	AnyCompleted
	// Always returns at once with what is done so far.
	Always
)

// Job is a running or finished map: one future per input, in input order.
// It is safe for concurrent use.
type Job[Out any] struct {
	r       *run
	task    *taskInfo
	once    sync.Once
	futures []*Future[Out]
}

type taskInfo struct {
	name  string
	codec Codec
}

// Future is the eventual result of one call.
type Future[Out any] struct {
	job *Job[Out]
	i   int
}

func (t *Task[In, Out]) config(ex *Executor, opts []MapOption) mapConfig { return ex.config(opts) }

// config is the executor's options as a map's opts adjust them.
func (ex *Executor) config(opts []MapOption) mapConfig {
	cfg := mapConfig{
		chunkSize: ex.opts.ChunkSize, timeout: ex.opts.Timeout, retries: ex.opts.Retries,
		retryErrors: ex.opts.RetryErrors, speculation: ex.opts.Speculation,
		specFactor: ex.opts.SpeculationFactor, progress: ex.opts.Progress,
	}
	for _, o := range opts {
		o(&cfg)
	}
	return cfg
}

// Map runs the task once per input and returns at once; the calls run in the
// background. Inputs are encoded and written to the store before Map
// returns, so an input that cannot be encoded or is too large is reported
// here, naming its index, and nothing runs. Cancelling ctx cancels the job:
// no more launches, running workers killed, unfinished calls failed.
//
// The driver keeps a few dozen bytes per call besides the encoded inputs,
// which it lets go once they are in the store.
func (t *Task[In, Out]) Map(ctx context.Context, ex *Executor, inputs []In, opts ...MapOption) (*Job[Out], error) {
	cfg := t.config(ex, opts)
	id := cfg.jobID
	if id == "" {
		id = job.NewID()
	}
	if err := job.ValidateID(id); err != nil {
		return nil, err
	}
	// Encode everything first: a bad input stops the job before it starts.
	enc := &encoded{}
	enc.start = offheap.Slice[int64](len(inputs)+1, enc)
	for i, in := range inputs {
		b, err := t.codec.Marshal(in)
		if err != nil {
			return nil, fmt.Errorf("wren: task %q: encode input %d: %w", t.name, i, err)
		}
		if int64(len(b)) > ex.opts.MaxInputBytes {
			return nil, fmt.Errorf("wren: task %q: input %d is %d bytes encoded, over the cap of %d: %w", t.name, i, len(b), ex.opts.MaxInputBytes, ErrTooLarge)
		}
		enc.buf = append(enc.buf, b...)
		enc.start[i+1] = int64(len(enc.buf))
	}
	st := &countingStore{Store: ex.store} // the job's requests, counted
	code := ex.codeHash()
	if rb, ok := ex.backend.(worker.Remote); ok {
		// Remote workers fetch the binary from the store, by this hash.
		h, err := rb.Prepare(ctx, ex.store)
		if err != nil {
			return nil, fmt.Errorf("wren: task %q: %w", t.name, err)
		}
		code = h
	}
	m := job.Manifest{Job: id, Task: t.name, Calls: len(inputs), Codec: t.codec.Name(), Code: code, Backend: ex.backend.Name(), Created: time.Now().UTC(),
		Settings: &job.Settings{ChunkSize: cfg.chunkSize, Timeout: cfg.timeout, Retries: cfg.retries, RetryErrors: cfg.retryErrors,
			Speculation: cfg.speculation, SpeculationFactor: cfg.specFactor, MaxOutputBytes: ex.opts.MaxOutputBytes, MaxInlineOutput: ex.opts.MaxInlineOutput}}
	mb, _ := json.MarshalIndent(m, "", "  ")
	if err := writeManifest(ctx, st, id, mb); err != nil {
		return nil, err
	}
	if err := putRetry(ctx, st, job.CodeKey(id), []byte(m.Code), blob.PutOptions{Ephemeral: true}); err != nil {
		return nil, fmt.Errorf("wren: job %s: %w", id, err)
	}
	r := newRun(ctx, ex, st, id, t.name, len(inputs), cfg)
	if _, ok := ex.backend.(worker.Remote); ok {
		r.code = code
	}
	if err := r.claim(ctx); err != nil {
		return nil, fmt.Errorf("wren: job %s: record the driver: %w", id, err)
	}
	go r.heartbeat()
	r.bar = newProgress(cfg.progress, ex.opts.ProgressOutput, len(inputs), t.name)
	if err := ex.track(r); err != nil {
		r.abort(err)
		r.stopHeartbeat()
		return nil, err
	}
	groups := planInputs(enc, len(inputs), ex.opts.MaxPackedInput, cfg.chunkSize)
	r.prepareInputs(enc, groups)
	j := &Job[Out]{r: r, task: &taskInfo{name: t.name, codec: t.codec}}
	r.log.Debug("job submitted", "calls", len(inputs), "chunk", cfg.chunkSize)
	r.inputsDone = make(chan struct{}) // before the engine starts: it reads it
	r.start()
	// Inputs are written in the background, in order; a chunk is dispatched
	// as soon as its inputs are in the store.
	go r.writeInputs(enc, groups)
	return j, nil
}

// writeManifest creates a job's manifest; it fails if the job exists.
func writeManifest(ctx context.Context, st blob.Store, id string, mb []byte) error {
	err := putRetry(ctx, st, job.ManifestKey(id), mb, blob.PutOptions{IfNotExist: true, Ephemeral: true})
	if errors.Is(err, blob.ErrExists) {
		// Ours, if a first try was stored but its answer was lost.
		var b []byte
		rerr := retry.Store(ctx, func(ctx context.Context) (err error) {
			b, err = blob.ReadAll(ctx, st, job.ManifestKey(id))
			return err
		})
		if rerr == nil && bytes.Equal(b, mb) {
			return nil
		}
		if rerr != nil && !errors.Is(rerr, blob.ErrNotFound) {
			return fmt.Errorf("wren: job %s: read back the manifest: %w", id, rerr)
		}
		return fmt.Errorf("wren: job %s already exists in %s", id, st.URL())
	}
	if err != nil {
		return fmt.Errorf("wren: job %s: write manifest: %w", id, err)
	}
	return nil
}

// Call runs the task once, as a job of one call.
func (t *Task[In, Out]) Call(ctx context.Context, ex *Executor, in In, opts ...MapOption) (*Future[Out], error) {
	j, err := t.Map(ctx, ex, []In{in}, opts...)
	if err != nil {
		return nil, err
	}
	return &Future[Out]{job: j, i: 0}, nil
}

// ID returns the job's ID; its objects are under jobs/<ID>/ in the store.
func (j *Job[Out]) ID() string { return j.r.id }

// Len returns the number of calls.
func (j *Job[Out]) Len() int { return j.r.n }

// Futures returns the futures, in input order (made on the first call:
// 24 bytes a call).
func (j *Job[Out]) Futures() []*Future[Out] {
	j.once.Do(func() {
		fs := make([]Future[Out], j.r.n)
		j.futures = make([]*Future[Out], j.r.n)
		for i := range fs {
			fs[i] = Future[Out]{job: j, i: i}
			j.futures[i] = &fs[i]
		}
	})
	return j.futures
}

// Cancel stops the job: no more launches, running workers killed,
// unfinished calls failed with ErrCancelled.
func (j *Job[Out]) Cancel() { j.r.abort(ErrCancelled) }

// Done returns a channel closed when every call is done.
func (j *Job[Out]) Done() <-chan struct{} { return j.r.finished }

// Wait waits according to mode and splits the futures into done and not
// done, each in input order. It returns ctx's error if ctx ends first; it
// never blocks on a dead worker, whose calls are retried or reported lost.
func (j *Job[Out]) Wait(ctx context.Context, mode WaitMode) (done, pending []*Future[Out], err error) {
	r := j.r
	switch mode {
	case AllCompleted:
		// Every call done and the job wrapped up (the outputs of losing
		// attempts deleted): r.finished.
		select {
		case <-r.finished:
		case <-ctx.Done():
			err = ctx.Err()
		}
	case AnyCompleted:
		for err == nil {
			r.mu.Lock()
			ndone := r.n - r.remaining
			if r.changed == nil {
				r.changed = make(chan struct{})
			}
			changed := r.changed
			r.mu.Unlock()
			if ndone > 0 || r.n == 0 {
				break
			}
			select {
			case <-changed:
			case <-ctx.Done():
				err = ctx.Err()
			}
		}
	}
	fs := j.Futures()
	r.mu.Lock()
	for i, f := range fs {
		if r.calls[i].done() {
			done = append(done, f)
		} else {
			pending = append(pending, f)
		}
	}
	r.mu.Unlock()
	return done, pending, err
}

// Results waits for every call and returns the outputs in input order. If
// some calls failed it returns the others' outputs (zero values in the
// failed places) and a *JobError listing the failures.
func (j *Job[Out]) Results(ctx context.Context) ([]Out, error) {
	select {
	case <-j.r.finished:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	out := make([]Out, j.r.n)
	var mu sync.Mutex
	var other error
	g, gctx := errgroup.WithContext(ctx)
	parts := 4 * runtime.GOMAXPROCS(0)
	step := max((j.r.n+parts-1)/parts, 1)
	for lo := 0; lo < j.r.n; lo += step {
		hi := min(lo+step, j.r.n)
		g.Go(func() error {
			for i := lo; i < hi; i++ {
				err := j.decode(gctx, i, &out[i])
				var ce *CallError
				if err != nil && !errors.As(err, &ce) {
					mu.Lock()
					if other == nil {
						other = err
					}
					mu.Unlock()
				}
			}
			return nil
		})
	}
	g.Wait()
	if other != nil {
		return out, other
	}
	if failed := j.Errors(); len(failed) > 0 {
		return out, &JobError{Job: j.r.id, Calls: j.r.n, Failed: failed}
	}
	return out, nil
}

// decode writes call i's output into v; a failed call returns its
// *CallError. A small output comes from the driver's memory (it travelled
// in the status); a large one is read from the store.
func (j *Job[Out]) decode(ctx context.Context, i int, v *Out) error {
	r := j.r
	r.mu.Lock()
	if e := r.errs[i]; e != nil {
		r.mu.Unlock()
		return e
	}
	var b []byte
	var key string
	if r.calls[i].flags&flagOutObj != 0 {
		key = r.outputKey(i)
	} else {
		b = r.arena.get(r.res[i].out)
	}
	r.mu.Unlock()
	if key != "" {
		err := retry.Store(ctx, func(ctx context.Context) (err error) {
			b, err = blob.ReadAll(ctx, r.store, key)
			return err
		})
		if err != nil {
			return fmt.Errorf("wren: job %s: read output of call %d: %w", r.id, i, err)
		}
	}
	if err := j.task.codec.Unmarshal(b, v); err != nil {
		return fmt.Errorf("wren: job %s: decode output of call %d: %w", r.id, i, err)
	}
	return nil
}

// Errors returns the errors of the calls that failed so far, by call index.
func (j *Job[Out]) Errors() []*CallError {
	j.r.mu.Lock()
	defer j.r.mu.Unlock()
	out := make([]*CallError, 0, len(j.r.errs))
	for _, e := range j.r.errs {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b *CallError) int { return a.Call - b.Call })
	return out
}

// CallStats returns the timings of call i's winning attempt once it is
// done; ok is false while it runs, for a call that failed before a worker
// recorded it, and for an index out of range.
func (j *Job[Out]) CallStats(i int) (c CallStats, ok bool) {
	r := j.r
	if i < 0 || i >= r.n {
		return c, false
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	cs := &r.calls[i]
	if !cs.done() || cs.flags&flagTimed == 0 {
		return c, false
	}
	return r.callStats(i), true
}

// Clean deletes the job's objects from the store. Call it after reading the
// results you need. A job still running is cancelled first, and Clean waits
// (for ctx, at most cleanWait) until it has wrapped up, so that nothing it
// writes as it ends (its summary, the driver's record) is left behind.
func (j *Job[Out]) Clean(ctx context.Context) error {
	select {
	case <-j.r.finished:
	default:
		j.Cancel()
		t := time.NewTimer(cleanWait)
		select {
		case <-j.r.finished:
		case <-t.C:
		case <-ctx.Done():
		}
		t.Stop()
	}
	// The store itself, not the job's counting view: a store that deletes
	// a prefix at once (fileblob) or in batches (S3) does so.
	_, err := blob.DeletePrefix(ctx, j.r.ex.store, job.JobPrefix(j.r.id))
	return err
}

// cleanWait bounds how long Clean waits for a cancelled job to wrap up.
const cleanWait = time.Minute

// Job returns the job the call belongs to.
func (f *Future[Out]) Job() *Job[Out] { return f.job }

// Index returns the call's position in the inputs.
func (f *Future[Out]) Index() int { return f.i }

// Done reports whether the call is done (succeeded or failed for good).
func (f *Future[Out]) Done() bool {
	r := f.job.r
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[f.i].done()
}

// Wait blocks until the call is done or ctx ends.
func (f *Future[Out]) Wait(ctx context.Context) error {
	r := f.job.r
	r.mu.Lock()
	if r.calls[f.i].done() {
		r.mu.Unlock()
		return nil
	}
	ch, ok := r.waiters[f.i]
	if !ok {
		ch = make(chan struct{})
		r.waiters[f.i] = ch
	}
	r.mu.Unlock()
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Result waits for the call and returns its output, decoded (each time it
// is called; a large output is read from the store); a failed call returns
// a *CallError.
func (f *Future[Out]) Result(ctx context.Context) (Out, error) {
	var v Out
	if err := f.Wait(ctx); err != nil {
		return v, err
	}
	if err := f.job.decode(ctx, f.i, &v); err != nil {
		var zero Out
		return zero, err
	}
	return v, nil
}
