package wren

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/internal/retry"
	"github.com/wrenml/wren/worker"
)

// mapConfig is an executor's defaults as adjusted by MapOptions.
type mapConfig struct {
	chunkSize   int
	timeout     time.Duration
	retries     int
	retryErrors bool
	speculation bool
	specFactor  float64
	progress    ProgressMode
	jobID       string
}

// run is the untyped engine of a job: it dispatches invocations, reads
// statuses, retries lost calls and launches speculative attempts.
type run struct {
	ex        *Executor
	store     blob.Store
	id        string
	task      string
	n         int
	cfg       mapConfig
	code      string // the binary remote workers run (worker.Invocation.Code)
	ctx       context.Context
	cancel    context.CancelCauseFunc
	submitted time.Time
	log       *slog.Logger
	bar       *progress

	mu         sync.Mutex
	calls      []callState
	pending    []chunk
	wake       chan struct{}
	running    map[*flight]struct{}
	remaining  int
	changed    chan struct{} // closed and replaced whenever a call completes
	finished   chan struct{} // closed when every call is done
	turnaround []time.Duration
	written    []bool             // per call: input in the store
	inputs     []*worker.InputRef // per call: where in a pack its input is (nil: own object)
	counts     *countingStore     // the store, counting the driver's requests
	workerReqs Requests           // requests the workers reported
	invokes    int64              // invocations sent
	billed     time.Duration      // remote runtimes' durations, each rounded up to 1 ms
	// billedEstimated is the part of billed that no runtime reported
	// (failed, timed-out, lost and asynchronous invocations), over
	// estimatedInvokes invocations.
	billedEstimated  time.Duration
	estimatedInvokes int64
	flights          sync.WaitGroup
	attempts         int
	retried          int
	spec             int
	aborted          bool
}

type callState struct {
	done       bool
	status     *worker.Status
	err        *CallError
	doneCh     chan struct{}
	observed   time.Time
	next       int // next attempt number
	failures   int // attempts that failed in a retryable way
	interrupts int // attempts stopped for another invocation's sake
	storeErr   string
	inFlight   int
	since      time.Time // dispatch of the latest attempt
	chunkLen   int
	speculated bool
	lastWorker string
}

// chunk is a group of calls to send in one invocation.
type chunk struct {
	calls []int
}

// flight is an invocation in progress.
type flight struct {
	calls  []int
	cancel context.CancelCauseFunc
}

var errSuperseded = errors.New("wren: another attempt finished first")

func newRun(ctx context.Context, ex *Executor, st *countingStore, id, task string, n int, cfg mapConfig, bar *progress) *run {
	rctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	r := &run{
		ex: ex, id: id, task: task, n: n, cfg: cfg,
		ctx: rctx, cancel: cancel, submitted: time.Now(), bar: bar,
		log:       ex.opts.Logger.With("job", id, "task", task),
		calls:     make([]callState, n),
		written:   make([]bool, n),
		inputs:    make([]*worker.InputRef, n),
		wake:      make(chan struct{}, 1),
		running:   map[*flight]struct{}{},
		remaining: n,
		changed:   make(chan struct{}),
		finished:  make(chan struct{}),
	}
	for i := range r.calls {
		r.calls[i].doneCh = make(chan struct{})
	}
	r.counts, r.store = st, st
	// The caller's context cancels the job (stop launching, kill workers).
	go func() {
		select {
		case <-ctx.Done():
			r.abort(context.Cause(ctx))
		case <-r.finished:
		}
	}()
	return r
}

func (r *run) start() {
	r.mu.Lock()
	for lo := 0; lo < r.n; lo += r.cfg.chunkSize {
		hi := min(lo+r.cfg.chunkSize, r.n)
		calls := make([]int, 0, hi-lo)
		for i := lo; i < hi; i++ {
			calls = append(calls, i)
		}
		r.pending = append(r.pending, chunk{calls: calls})
	}
	if r.n == 0 {
		close(r.finished)
	}
	r.mu.Unlock()
	r.signal()
	go r.dispatch()
	if r.cfg.speculation {
		go r.speculate()
	}
}

func (r *run) signal() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

func (r *run) dispatch() {
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-r.finished:
			return
		case <-r.wake:
		}
		for {
			if err := r.ex.sem.Acquire(r.ctx, 1); err != nil {
				return
			}
			// With a leasing backend, reserve the worker first, here in
			// queue order; the invocation is taken from the queue only then,
			// so a retry or a speculative attempt queued meanwhile goes first.
			var lease worker.Lease
			if lb, ok := r.ex.backend.(worker.Leaser); ok && r.hasPending() {
				var err error
				if lease, err = lb.Lease(r.ctx); err != nil {
					r.ex.sem.Release(1)
					if r.ctx.Err() == nil {
						r.log.Error("no worker available", "err", err)
						r.abort(err)
					}
					return
				}
			}
			inv, fl := r.pop()
			if inv == nil {
				if lease != nil {
					lease.Release()
				}
				r.ex.sem.Release(1)
				break
			}
			go r.invoke(inv, fl, lease)
		}
	}
}

// pop takes the next chunk with calls still to do and prepares its invocation.
func (r *run) pop() (*worker.Invocation, *flight) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for len(r.pending) > 0 {
		ch := r.pending[0]
		for _, c := range ch.calls {
			if !r.written[c] && !r.calls[c].done {
				return nil, nil // wait for the input writer's signal
			}
		}
		r.pending = r.pending[1:]
		inv := &worker.Invocation{
			Store: r.store.URL(), Job: r.id, Task: r.task, Code: r.code,
			Timeout: r.cfg.timeout, MaxOutput: r.ex.opts.MaxOutputBytes, InlineMax: r.ex.opts.MaxInlineOutput,
		}
		now := time.Now()
		fl := &flight{}
		for _, c := range ch.calls {
			cs := &r.calls[c]
			if cs.done {
				continue
			}
			record := !r.cfg.retryErrors || cs.failures >= r.cfg.retries
			inv.Calls = append(inv.Calls, worker.Call{Index: c, Attempt: cs.next, RecordErrors: record, In: r.inputs[c]})
			fl.calls = append(fl.calls, c)
			cs.next++
			cs.inFlight++
			cs.since = now
			cs.chunkLen = len(ch.calls)
			r.attempts++
		}
		if len(inv.Calls) == 0 {
			continue
		}
		inv.Dispatched = now.UnixNano()
		r.running[fl] = struct{}{}
		r.flights.Add(1)
		return inv, fl
	}
	return nil, nil
}

func (r *run) hasPending() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending) > 0
}

func (r *run) invoke(inv *worker.Invocation, fl *flight, lease worker.Lease) {
	defer r.flights.Done()
	defer r.ex.sem.Release(1)
	ctx, cancel := context.WithCancelCause(r.ctx)
	r.mu.Lock()
	fl.cancel = cancel
	r.mu.Unlock()
	if r.cfg.timeout > 0 {
		// The worker enforces each call's timeout; this is the backstop for
		// a worker that cannot (hung hard, or its sandbox stalled).
		var c2 context.CancelFunc
		ctx, c2 = context.WithTimeoutCause(ctx, time.Duration(len(inv.Calls))*r.cfg.timeout+10*time.Second,
			fmt.Errorf("invocation ran past %d x timeout %v", len(inv.Calls), r.cfg.timeout))
		defer c2()
	}
	var reply *worker.Reply
	var err error
	if lease != nil {
		reply, err = lease.Invoke(ctx, inv)
	} else {
		reply, err = r.ex.backend.Invoke(ctx, inv)
	}
	cancel(nil)
	r.mu.Lock()
	delete(r.running, fl)
	r.mu.Unlock()

	byCall := map[int]*worker.Status{}
	r.mu.Lock()
	_, bills := r.ex.backend.(worker.Biller)
	if reply != nil || !bills {
		// A billing backend answers nil only for an invocation that never
		// ran (refused, throttled to the end): not billed.
		r.invokes++
	}
	if reply != nil {
		d := time.Duration(reply.RuntimeNanos)
		if reply.BilledNanos > 0 {
			d = time.Duration(reply.BilledNanos)
		}
		d = billedMillis(d)
		r.billed += d
		if reply.Estimated {
			r.billedEstimated += d
			r.estimatedInvokes++
		}
	}
	r.mu.Unlock()
	if reply != nil {
		r.mu.Lock()
		for i := range reply.Statuses {
			s := &reply.Statuses[i]
			byCall[s.Call] = s
			r.workerReqs.Puts += int64(s.Puts)
			r.workerReqs.Gets += int64(s.Gets)
			r.workerReqs.BytesPut += s.BytesWritten
			r.workerReqs.BytesGot += s.BytesRead
		}
		r.mu.Unlock()
	}
	if err != nil && r.ctx.Err() == nil && !errors.Is(context.Cause(ctx), errSuperseded) {
		r.log.Warn("invocation failed", "calls", len(inv.Calls), "err", err)
		if errors.Is(err, worker.ErrPermanent) {
			r.log.Error("the backend cannot run the job", "err", err)
			r.abort(err)
		}
	}
	// Reads of the store outlive a cancelled job: results already written count.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(r.ctx), time.Minute)
	defer rcancel()
	for _, c := range inv.Calls {
		r.release(c.Index) // this attempt is over, whatever it did
		s := byCall[c.Index]
		switch {
		case s != nil && s.Won:
			r.complete(c.Index, s)
			continue
		case s != nil && s.Error != nil && !c.RecordErrors && s.Error.Kind != worker.KindStore:
			// A retryable error the worker did not record.
			r.retry(c.Index, s, nil)
			continue
		}
		if r.isDone(c.Index) {
			continue
		}
		// The store is the truth: a status may be there although the
		// reply was lost or reported a failed write (a put that was stored
		// but whose answer never came back).
		stored, ok, rerr := readStatus(rctx, r.store, r.id, c.Index)
		switch {
		case ok:
			r.complete(c.Index, &stored)
		case rerr != nil:
			r.retry(c.Index, nil, fmt.Errorf("read status: %w", rerr))
		case s != nil && s.Error != nil && s.Error.Kind == worker.KindStore:
			r.mu.Lock()
			r.calls[c.Index].storeErr = s.Error.Message
			r.calls[c.Index].lastWorker = s.Worker
			r.mu.Unlock()
			r.retry(c.Index, nil, fmt.Errorf("%w: %s", ErrStore, s.Error.Message))
		case err != nil:
			r.retry(c.Index, nil, err)
		default:
			r.retry(c.Index, nil, errors.New("worker answered without recording a status"))
		}
	}
}

// billedMillis rounds a duration up to the millisecond, as Lambda bills;
// a zero duration (an invocation that ran but reported nothing) bills 1 ms.
func billedMillis(d time.Duration) time.Duration {
	return max((d+time.Millisecond-1)/time.Millisecond, 1) * time.Millisecond
}

func (r *run) isDone(c int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.calls[c].done
}

func (r *run) release(c int) {
	r.mu.Lock()
	r.calls[c].inFlight--
	r.mu.Unlock()
}

// retry handles an attempt that produced no stored status: lost (cause set)
// or failed with an unrecorded, retryable error (s set).
func (r *run) retry(c int, s *worker.Status, cause error) {
	r.mu.Lock()
	cs := &r.calls[c]
	if s != nil {
		cs.lastWorker = s.Worker
	}
	if cs.done || r.ctx.Err() != nil {
		r.mu.Unlock()
		return
	}
	if cs.inFlight > 0 && s == nil {
		// Another attempt (speculative) is still running; it decides.
		r.mu.Unlock()
		return
	}
	if errors.Is(cause, worker.ErrInterrupted) {
		// Stopped for another invocation's sake (its process was killed
		// because a call it also held was cancelled or timed out): not this
		// call's fault, up to a bound, so that no call is retried forever.
		cs.interrupts++
		if cs.interrupts > maxInterrupts {
			cs.failures++
		}
	} else {
		cs.failures++
	}
	if cs.failures <= r.cfg.retries {
		r.retried++
		r.pending = slices.Insert(r.pending, 0, chunk{calls: []int{c}})
		next := cs.next
		r.mu.Unlock()
		r.log.Info("retrying call", "call", c, "attempt", next, "cause", describe(s, cause))
		r.signal()
		return
	}
	r.mu.Unlock()
	// Out of attempts: record the loss so the store tells the whole story,
	// unless a late attempt recorded a result meanwhile.
	kind := worker.KindLost
	if errors.Is(cause, ErrStore) {
		kind = worker.KindStore
	}
	ls := worker.Status{Call: c, Attempt: -1, Worker: "driver",
		Error: &worker.Error{Kind: kind, Message: "no attempt recorded a result: " + describe(s, cause)}}
	if s != nil {
		ls = *s
	}
	if err := writeDriverStatus(r.ctx, r.store, r.id, &ls); errors.Is(err, blob.ErrExists) {
		if stored, ok, _ := readStatus(context.WithoutCancel(r.ctx), r.store, r.id, c); ok {
			r.complete(c, &stored)
			return
		}
	}
	r.finish(c, nil, &CallError{Kind: ls.Error.Kind, Message: ls.Error.Message, Stack: ls.Error.Stack, Err: cause})
}

// maxInterrupts is how many interrupted attempts a call gets for free.
const maxInterrupts = 5

func describe(s *worker.Status, cause error) string {
	if s != nil && s.Error != nil {
		return string(s.Error.Kind) + ": " + s.Error.Message
	}
	if cause != nil {
		return cause.Error()
	}
	return "unknown"
}

func (r *run) complete(c int, s *worker.Status) {
	if s.OK {
		r.finish(c, s, nil)
		return
	}
	e := &CallError{Kind: s.Error.Kind, Message: s.Error.Message, Stack: s.Error.Stack, Worker: s.Worker, Log: s.LogTail, LogKey: s.Log}
	r.finish(c, s, e)
}

// finish marks a call done exactly once, from whichever attempt got there first.
func (r *run) finish(c int, s *worker.Status, e *CallError) {
	r.mu.Lock()
	cs := &r.calls[c]
	if cs.done {
		r.mu.Unlock()
		return
	}
	cs.done = true
	cs.status = s
	cs.observed = time.Now()
	if e != nil {
		e.Job, e.Task, e.Call, e.Attempts = r.id, r.task, c, cs.next
		if e.Worker == "" {
			e.Worker = cs.lastWorker
		}
		cs.err = e
	}
	if s != nil && s.OK {
		r.turnaround = append(r.turnaround, cs.observed.Sub(cs.since)/time.Duration(max(cs.chunkLen, 1)))
	}
	close(cs.doneCh)
	r.remaining--
	close(r.changed)
	r.changed = make(chan struct{})
	// Stop attempts that can no longer matter.
	for fl := range r.running {
		if fl.cancel != nil && r.allDoneLocked(fl.calls) {
			fl.cancel(errSuperseded)
		}
	}
	last := r.remaining == 0
	r.mu.Unlock()
	r.bar.add(1)
	if e != nil {
		r.log.Debug("call failed", "call", c, "err", e)
	}
	if last {
		go r.wrapUp()
	}
}

// wrapUp ends a job whose calls are all done: it waits (briefly) for the
// attempts that were superseded or cancelled to stop, deletes the outputs
// that no status names (attempts that died after writing their output,
// speculative losers), then marks the job finished.
func (r *run) wrapUp() {
	r.cancel(nil) // stop every attempt still running
	flights := make(chan struct{})
	go func() { r.flights.Wait(); close(flights) }()
	select {
	case <-flights:
	case <-time.After(10 * time.Second):
		r.log.Warn("attempts still running after the job ended")
	}
	r.mu.Lock()
	sweep := r.retried > 0 || r.spec > 0 || r.aborted
	r.mu.Unlock()
	if sweep {
		r.sweepOutputs()
	}
	r.writeSummary()
	r.bar.finish()
	close(r.finished)
}

// writeSummary records the job's stats without the per-call part (the
// statuses hold it) for readers in other processes (wren jobs show).
func (r *run) writeSummary() {
	js := r.stats()
	js.PerCall = nil
	b, err := json.Marshal(js)
	if err == nil {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), 30*time.Second)
		defer cancel()
		err = putRetry(ctx, r.store, worker.SummaryKey(r.id), b, blob.PutOptions{Ephemeral: true})
	}
	if err != nil {
		r.log.Warn("write the job's summary", "err", err)
	}
}

// sweepOutputs deletes the output objects of attempts that did not win.
func (r *run) sweepOutputs() {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), time.Minute)
	defer cancel()
	var keys []string
	err := retry.Store(ctx, func(ctx context.Context) (err error) {
		keys, err = blob.Keys(ctx, r.store, worker.OutputPrefix(r.id))
		return err
	})
	if err != nil {
		r.log.Warn("list outputs to clean", "err", err)
		return
	}
	r.mu.Lock()
	keep := make(map[string]bool, len(r.calls))
	for i := range r.calls {
		if s := r.calls[i].status; s != nil && s.Output != "" {
			keep[s.Output] = true
		}
	}
	r.mu.Unlock()
	for _, k := range keys {
		if !keep[k] {
			if err := r.store.Delete(ctx, k); err != nil {
				r.log.Warn("delete a losing attempt's output", "key", k, "err", err)
			}
		}
	}
}

func (r *run) allDoneLocked(calls []int) bool {
	for _, c := range calls {
		if !r.calls[c].done {
			return false
		}
	}
	return true
}

// abort ends the job: no more launches, running workers killed, unfinished
// calls failed with KindCancelled.
func (r *run) abort(cause error) {
	r.mu.Lock()
	r.aborted = true
	r.mu.Unlock()
	r.cancel(cause)
	for c := range r.calls {
		if !r.isDone(c) {
			msg := "the job was cancelled"
			if cause != nil && !errors.Is(cause, ErrCancelled) && !errors.Is(cause, context.Canceled) {
				msg = "the job stopped: " + cause.Error()
			}
			r.finish(c, nil, &CallError{Kind: worker.KindCancelled, Message: msg, Err: cause})
		}
	}
}

// speculate relaunches stragglers once half the calls are done.
func (r *run) speculate() {
	t := time.NewTicker(25 * time.Millisecond)
	defer t.Stop()
	var scratch []time.Duration
	for {
		select {
		case <-r.ctx.Done():
			return
		case <-r.finished:
			return
		case <-t.C:
		}
		r.mu.Lock()
		done := r.n - r.remaining
		if done == 0 || done*2 < r.n {
			r.mu.Unlock()
			continue
		}
		scratch = append(scratch[:0], r.turnaround...)
		slices.Sort(scratch)
		var med time.Duration
		if len(scratch) > 0 {
			med = scratch[len(scratch)/2]
		}
		threshold := max(time.Duration(float64(med)*r.cfg.specFactor), 20*time.Millisecond)
		now := time.Now()
		added := false
		for c := range r.calls {
			cs := &r.calls[c]
			if cs.done || cs.speculated || cs.inFlight != 1 {
				continue
			}
			if now.Sub(cs.since) > threshold*time.Duration(max(cs.chunkLen, 1)) {
				cs.speculated = true
				r.spec++
				r.pending = slices.Insert(r.pending, 0, chunk{calls: []int{c}})
				added = true
				r.log.Info("speculating on straggler", "call", c, "running", now.Sub(cs.since).Round(time.Millisecond), "median", med.Round(time.Millisecond))
			}
		}
		r.mu.Unlock()
		if added {
			r.signal()
		}
	}
}

// inputGroup is what the driver writes as one object: a pack of small
// inputs of consecutive calls, or one large input (pack == false).
type inputGroup struct {
	calls []int
	pack  bool
}

// planInputs groups the calls' inputs into objects: an input over
// maxPacked bytes (or every input when maxPacked < 0) gets its own object;
// runs of smaller ones go into packs. Packs grow from 16 calls to 4096 (and
// at most 16 MiB), so that the first calls can start while later packs are
// written, and hold whole invocation chunks, so that a chunk's inputs are
// one ranged read.
func planInputs(enc [][]byte, maxPacked int64, chunk int) []inputGroup {
	var groups []inputGroup
	var cur []int
	var bytes int64
	limit := 16
	roundUp := func(n int) int { return (n + chunk - 1) / chunk * chunk }
	flush := func() {
		if len(cur) > 0 {
			groups = append(groups, inputGroup{calls: cur, pack: true})
			cur, bytes = nil, 0
			limit = min(limit*2, 4096)
		}
	}
	for i, b := range enc {
		if maxPacked < 0 || int64(len(b)) > maxPacked {
			flush()
			groups = append(groups, inputGroup{calls: []int{i}})
			continue
		}
		cur = append(cur, i)
		bytes += int64(len(b))
		if len(cur) >= roundUp(limit) || bytes >= maxPackBytes {
			flush()
		}
	}
	flush()
	return groups
}

// maxPackBytes closes a pack once it holds this many bytes.
const maxPackBytes = 16 << 20

// writeInputs writes the encoded inputs, packed (planInputs), in order,
// several objects at a time, and wakes the dispatcher as they land. A call
// whose input cannot be written fails with KindStore.
func (r *run) writeInputs(enc [][]byte, groups []inputGroup) {
	g, ctx := errgroup.WithContext(r.ctx)
	g.SetLimit(4 * runtime.GOMAXPROCS(0))
	for _, grp := range groups {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error {
			var key string
			var data []byte
			if grp.pack {
				key = worker.PackKey(r.id, grp.calls[0])
				ins := make([][]byte, len(grp.calls))
				for k, c := range grp.calls {
					ins[k] = enc[c]
				}
				var refs []worker.InputRef
				data, refs = worker.EncodePack(key, grp.calls, ins)
				r.mu.Lock()
				for k, c := range grp.calls {
					r.inputs[c] = &refs[k]
				}
				r.mu.Unlock()
			} else {
				key, data = worker.InputKey(r.id, grp.calls[0]), enc[grp.calls[0]]
			}
			// The driver holds the only copy of an input: it tries harder
			// than a worker does (about 7 s of tries).
			err := retry.StoreN(ctx, inputTries, func(ctx context.Context) error {
				return blob.PutBytes(ctx, r.store, key, data, blob.PutOptions{Ephemeral: true})
			})
			if err != nil {
				if r.ctx.Err() == nil {
					for _, c := range grp.calls {
						r.finish(c, nil, &CallError{Kind: worker.KindStore, Message: fmt.Sprintf("write input %d: %v", c, err), Err: err})
					}
					r.signal() // the dispatcher may be waiting for these inputs
				}
				return nil
			}
			r.mu.Lock()
			for _, c := range grp.calls {
				r.written[c] = true
			}
			r.mu.Unlock()
			r.signal()
			return nil
		})
	}
	g.Wait()
}

// inputTries is how many times the driver tries to write an input.
const inputTries = 10

// readStatus is worker.ReadStatus tried again after a transient fault.
func readStatus(ctx context.Context, st blob.Store, job string, call int) (s worker.Status, ok bool, err error) {
	err = retry.Store(ctx, func(ctx context.Context) (err error) {
		s, ok, err = worker.ReadStatus(ctx, st, job, call)
		return err
	})
	return s, ok, err
}

// putRetry is blob.PutBytes tried again after a transient fault.
func putRetry(ctx context.Context, st blob.Store, key string, b []byte, opts blob.PutOptions) error {
	return retry.Store(ctx, func(ctx context.Context) error { return blob.PutBytes(ctx, st, key, b, opts) })
}

// writeDriverStatus records a driver-side verdict, unless a worker's status is there.
func writeDriverStatus(ctx context.Context, st blob.Store, job string, s *worker.Status) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return putRetry(context.WithoutCancel(ctx), st, worker.StatusKey(job, s.Call), b, blob.PutOptions{IfNotExist: true, Ephemeral: true})
}
