package wren

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/internal/offheap"
	"github.com/wrenml/wren/internal/retry"
	"github.com/wrenml/wren/job"
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
	force       bool
	set         map[string]bool // the options given explicitly (Attach keeps the job's others)
}

// run is the untyped engine of a job: it dispatches invocations, reads
// statuses, retries lost calls and launches speculative attempts. Its
// memory is a few dozen bytes per call (calls.go), so that maps of
// millions of calls fit in a driver.
type run struct {
	ex        *Executor
	store     blob.Store
	counts    *countingStore // the store, counting the driver's requests
	id        string
	task      string
	n         int
	cfg       mapConfig
	code      string // the binary remote workers run (job.Invocation.Code)
	maxOutput int64
	inlineMax int64
	ctx       context.Context
	cancel    context.CancelCauseFunc
	submitted time.Time
	log       *slog.Logger
	bar       *progress
	epoch     int             // this driver's epoch among the job's drivers
	began     time.Time       // when this driver took the job (its record's Started)
	started   bool            // start ran: the job may wrap up (not while Map writes it or Attach restores it)
	parent    context.Context // the caller's: cancelling it cancels the job once started

	mu         sync.Mutex
	calls      []callState
	res        []callResult
	errs       map[int]*CallError
	outKeys    map[int]string // outputs not under job.OutputKey
	arena      arena
	workers    []string
	workerIdx  map[string]uint32
	lastWorker map[int]string // the worker of a call's last failed attempt
	storeErrs  map[int]string
	in         inputs
	queue      chunkQueue
	wake       chan struct{}
	running    map[*flight]struct{}
	remaining  int
	changed    chan struct{}         // closed and cleared when a call completes; made by waiters
	waiters    map[int]chan struct{} // closed when the call is done; made by Future.Wait
	finished   chan struct{}         // closed when every call is done and the job wrapped up
	turnaround []float32             // seconds per call of finished calls (speculation only)
	workerReqs Requests              // requests the workers reported
	invokes    int64                 // invocations sent
	billed     time.Duration         // remote runtimes' durations, each rounded up to 1 ms
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
	ceiling          int32 // attempt numbers at or above it were never dispatched (the driver record says so)
	ceilMu           sync.Mutex
	beat             chan struct{} // closed to stop the heartbeat
	beatDone         chan struct{}
	inputsDone       chan struct{} // closed when the driver's input writer returns (nil: no writer)
}

// chunk is calls [lo, hi) to send in one invocation (done ones skipped).
type chunk struct{ lo, hi int32 }

// chunkQueue is what remains to dispatch: retries and speculative attempts
// first (urgent), then the ranges of calls not yet launched, chunkSize
// calls at a time.
type chunkQueue struct {
	urgent []chunk
	ranges []chunk // in call order; ranges[head:] remain
	head   int
	size   int32
}

func (q *chunkQueue) empty() bool { return len(q.urgent) == 0 && q.head >= len(q.ranges) }

// peek returns the next chunk without taking it.
func (q *chunkQueue) peek() (chunk, bool) {
	if len(q.urgent) > 0 {
		return q.urgent[0], true
	}
	if q.head < len(q.ranges) {
		r := q.ranges[q.head]
		return chunk{r.lo, min(r.hi, r.lo+q.size)}, true
	}
	return chunk{}, false
}

// take removes the chunk peek returned.
func (q *chunkQueue) take() {
	if len(q.urgent) > 0 {
		q.urgent = q.urgent[1:]
		return
	}
	r := &q.ranges[q.head]
	r.lo = min(r.hi, r.lo+q.size)
	if r.lo >= r.hi {
		q.head++
		if q.head == len(q.ranges) {
			q.ranges, q.head = nil, 0
		}
	}
}

// flight is an invocation in progress.
type flight struct {
	calls  []int32
	cancel context.CancelCauseFunc
}

var errSuperseded = errors.New("wren: another attempt finished first")

func newRun(ctx context.Context, ex *Executor, st *countingStore, id, task string, n int, cfg mapConfig) *run {
	rctx, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	r := &run{
		ex: ex, id: id, task: task, n: n, cfg: cfg,
		maxOutput: ex.opts.MaxOutputBytes, inlineMax: ex.opts.MaxInlineOutput,
		ctx: rctx, cancel: cancel, submitted: time.Now(), began: time.Now(),
		log:        ex.opts.Logger.With("job", id, "task", task),
		errs:       map[int]*CallError{},
		outKeys:    map[int]string{},
		workerIdx:  map[string]uint32{},
		lastWorker: map[int]string{},
		storeErrs:  map[int]string{},
		wake:       make(chan struct{}, 1),
		running:    map[*flight]struct{}{},
		waiters:    map[int]chan struct{}{},
		remaining:  n,
		finished:   make(chan struct{}),
		ceiling:    1,
		beat:       make(chan struct{}),
		beatDone:   make(chan struct{}),
		queue:      chunkQueue{size: int32(max(cfg.chunkSize, 1))},
	}
	// The per-call tables, outside the collected heap when large (they
	// hold no pointers): they then cost their size, not twice it.
	r.calls = offheap.Slice[callState](n, r)
	r.res = offheap.Slice[callResult](n, r)
	r.workerID("") // index 0: no worker
	r.counts, r.store = st, st
	r.parent = ctx
	return r
}

// start queues the calls not done yet and starts dispatching.
func (r *run) start() {
	// The caller's context cancels the job (stop launching, kill workers).
	go func() {
		select {
		case <-r.parent.Done():
			r.abort(context.Cause(r.parent))
		case <-r.finished:
		}
	}()
	r.mu.Lock()
	r.started = true
	lo := -1
	for c := range r.n {
		if !r.calls[c].done() {
			if lo < 0 {
				lo = c
			}
			continue
		}
		if lo >= 0 {
			r.queue.ranges = append(r.queue.ranges, chunk{int32(lo), int32(c)})
			lo = -1
		}
	}
	if lo >= 0 {
		r.queue.ranges = append(r.queue.ranges, chunk{int32(lo), int32(r.n)})
	}
	last := r.remaining == 0
	r.mu.Unlock()
	if last {
		go r.wrapUp()
		return
	}
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
func (r *run) pop() (*job.Invocation, *flight) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		ch, ok := r.queue.peek()
		if !ok {
			return nil, nil
		}
		for c := ch.lo; c < ch.hi; c++ {
			if !r.calls[c].done() && !r.inputWritten(int(c)) {
				return nil, nil // wait for the input writer's signal
			}
		}
		r.queue.take()
		inv := &job.Invocation{
			Store: r.store.URL(), Job: r.id, Task: r.task, Code: r.code,
			Timeout: r.cfg.timeout, MaxOutput: r.maxOutput, InlineMax: r.inlineMax,
		}
		now := time.Now()
		since := int64(now.Sub(r.submitted))
		fl := &flight{}
		for c := ch.lo; c < ch.hi; c++ {
			cs := &r.calls[c]
			if cs.done() {
				continue
			}
			record := !r.cfg.retryErrors || int(cs.failures) >= r.cfg.retries
			inv.Calls = append(inv.Calls, job.Call{Index: int(c), Attempt: int(cs.next), RecordErrors: record, In: r.inputRef(int(c))})
			fl.calls = append(fl.calls, c)
			cs.next++
			cs.inFlight++
			cs.since = since
			cs.chunkLen = ch.hi - ch.lo
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
}

func (r *run) hasPending() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return !r.queue.empty()
}

func (r *run) invoke(inv *job.Invocation, fl *flight, lease worker.Lease) {
	defer r.flights.Done()
	defer r.ex.sem.Release(1)
	// An attempt number at or above the ceiling recorded in the store is
	// recorded first: a driver that attaches after this one died starts
	// above every attempt this one may have launched.
	top := 0
	for _, c := range inv.Calls {
		top = max(top, c.Attempt)
	}
	r.raiseCeiling(top)
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
	var reply *job.Reply
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

	var byCall map[int]*job.Status
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
		byCall = make(map[int]*job.Status, len(reply.Statuses))
		for i := range reply.Statuses {
			s := &reply.Statuses[i]
			byCall[s.Call] = s
			r.workerReqs.Puts += int64(s.Puts)
			r.workerReqs.Gets += int64(s.Gets)
			r.workerReqs.BytesPut += s.BytesWritten
			r.workerReqs.BytesGot += s.BytesRead
		}
	}
	r.mu.Unlock()
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
		case s != nil && s.Error != nil && !c.RecordErrors && s.Error.Kind != job.KindStore:
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
		case s != nil && s.Error != nil && s.Error.Kind == job.KindStore:
			r.mu.Lock()
			r.storeErrs[c.Index] = s.Error.Message
			r.lastWorker[c.Index] = s.Worker
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
	return r.calls[c].done()
}

func (r *run) release(c int) {
	r.mu.Lock()
	r.calls[c].inFlight--
	r.mu.Unlock()
}

// retry handles an attempt that produced no stored status: lost (cause set)
// or failed with an unrecorded, retryable error (s set).
func (r *run) retry(c int, s *job.Status, cause error) {
	r.mu.Lock()
	cs := &r.calls[c]
	if s != nil {
		r.lastWorker[c] = s.Worker
	}
	if cs.done() || r.ctx.Err() != nil {
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
		if cs.interrupts < 255 {
			cs.interrupts++
		}
		if cs.interrupts > maxInterrupts {
			cs.failures++
		}
	} else if cs.failures < 255 {
		cs.failures++
	}
	if int(cs.failures) <= r.cfg.retries {
		r.retried++
		r.queue.urgent = append(r.queue.urgent, chunk{int32(c), int32(c) + 1})
		next := cs.next
		r.mu.Unlock()
		r.log.Info("retrying call", "call", c, "attempt", next, "cause", describe(s, cause))
		r.signal()
		return
	}
	r.mu.Unlock()
	// Out of attempts: record the loss so the store tells the whole story,
	// unless a late attempt recorded a result meanwhile.
	kind := job.KindLost
	if errors.Is(cause, ErrStore) {
		kind = job.KindStore
	}
	ls := job.Status{Call: c, Attempt: -1, Worker: "driver",
		Error: &job.Error{Kind: kind, Message: "no attempt recorded a result: " + describe(s, cause)}}
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

func describe(s *job.Status, cause error) string {
	if s != nil && s.Error != nil {
		return string(s.Error.Kind) + ": " + s.Error.Message
	}
	if cause != nil {
		return cause.Error()
	}
	return "unknown"
}

func (r *run) complete(c int, s *job.Status) {
	if s.OK {
		r.finish(c, s, nil)
		return
	}
	e := &CallError{Kind: s.Error.Kind, Message: s.Error.Message, Stack: s.Error.Stack, Worker: s.Worker, Log: s.LogTail, LogKey: s.Log}
	r.finish(c, s, e)
}

// finish marks a call done exactly once, from whichever attempt got there first.
func (r *run) finish(c int, s *job.Status, e *CallError) {
	r.mu.Lock()
	cs := &r.calls[c]
	if cs.done() {
		r.mu.Unlock()
		return
	}
	cs.flags |= flagDone
	now := time.Now()
	if s != nil {
		r.record(c, s, now)
	} else {
		r.res[c].dispatched = cs.since
		r.res[c].observed = float32(now.Sub(r.submitted).Seconds() - float64(cs.since)/1e9)
	}
	if e != nil {
		e.Job, e.Task, e.Call, e.Attempts = r.id, r.task, c, int(cs.next)
		if e.Worker == "" {
			e.Worker = r.lastWorker[c]
		}
		r.errs[c] = e
	}
	delete(r.lastWorker, c)
	delete(r.storeErrs, c)
	if r.cfg.speculation && s != nil && s.OK {
		took := now.Sub(r.submitted).Seconds() - float64(cs.since)/1e9
		r.turnaround = append(r.turnaround, float32(took/float64(max(cs.chunkLen, 1))))
	}
	if ch, ok := r.waiters[c]; ok {
		close(ch)
		delete(r.waiters, c)
	}
	r.remaining--
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
	// Stop attempts that can no longer matter.
	if cs.inFlight > 0 {
		for fl := range r.running {
			if fl.cancel != nil && r.allDoneLocked(fl.calls) {
				fl.cancel(errSuperseded)
			}
		}
	}
	last := r.remaining == 0 && r.started
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
	r.stopHeartbeat()
	// Taken over, the driver still holds the only copy of the inputs it
	// has not written: it writes them before its record says it stopped,
	// which the driver that took over waits for.
	if r.inputsDone != nil && errors.Is(context.Cause(r.ctx), ErrTakenOver) {
		select {
		case <-r.inputsDone:
		case <-time.After(2 * time.Minute):
			r.log.Warn("taken over before its inputs were written; some are lost")
		}
	}
	r.writeSummary()
	r.bar.finish()
	close(r.finished)
}

// writeSummary records the job's stats without the per-call part (the
// statuses hold it) for readers in other processes (wren jobs show), and
// the driver's record as done.
func (r *run) writeSummary() {
	js := r.summary()
	js.Errors = nil // the statuses hold them
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), 30*time.Second)
	defer cancel()
	if errors.Is(context.Cause(r.ctx), ErrTakenOver) {
		// The driver that took over writes the summary.
		if err := r.writeRecord(ctx, job.StateTakenOver, js.Done, js.Failed); err != nil {
			r.log.Warn("write the driver's record", "err", err)
		}
		return
	}
	b, err := json.Marshal(js)
	if err == nil {
		err = putRetry(ctx, r.store, job.SummaryKey(r.id), b, blob.PutOptions{Ephemeral: true})
	}
	if err != nil {
		r.log.Warn("write the job's summary", "err", err)
	}
	// A job that ended before every call ran says so, counting only the
	// calls that finished before its end (the cancelled ones did not run,
	// or were stopped mid-way).
	state := job.StateDone
	if js.Cancelled > 0 {
		state = job.StateCancelled
	}
	if err := r.writeRecord(ctx, state, js.Done-js.Cancelled, js.Failed-js.Cancelled); err != nil {
		r.log.Warn("write the driver's record", "err", err)
	}
}

// sweepOutputs deletes the output objects of attempts that did not win.
func (r *run) sweepOutputs() {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), time.Minute)
	defer cancel()
	var keys []string
	err := retry.Store(ctx, func(ctx context.Context) (err error) {
		keys, err = blob.Keys(ctx, r.store, job.OutputPrefix(r.id))
		return err
	})
	if err != nil {
		r.log.Warn("list outputs to clean", "err", err)
		return
	}
	r.mu.Lock()
	keep := map[string]bool{}
	for i := range r.calls {
		if r.calls[i].flags&flagOutObj != 0 {
			keep[r.outputKey(i)] = true
		}
	}
	r.mu.Unlock()
	var losers []string
	for _, k := range keys {
		if !keep[k] {
			losers = append(losers, k)
		}
	}
	if err := blob.DeleteKeys(ctx, r.store, losers); err != nil {
		r.log.Warn("delete the losing attempts' outputs", "err", err)
	}
}

func (r *run) allDoneLocked(calls []int32) bool {
	for _, c := range calls {
		if !r.calls[c].done() {
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
	msg := "the job was cancelled"
	if cause != nil && !errors.Is(cause, ErrCancelled) && !errors.Is(cause, context.Canceled) {
		msg = "the job stopped: " + cause.Error()
	}
	for c := range r.n {
		if !r.isDone(c) {
			r.finish(c, nil, &CallError{Kind: job.KindCancelled, Message: msg, Err: cause})
		}
	}
}

// speculate relaunches stragglers once half the calls are done. It looks
// at the invocations in flight only, so its cost does not grow with the
// job.
func (r *run) speculate() {
	t := time.NewTicker(25 * time.Millisecond)
	defer t.Stop()
	var scratch []float32
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
		// The median of a sample: recomputing over every call would cost
		// O(calls) per tick.
		scratch = scratch[:0]
		step := max(len(r.turnaround)/4096, 1)
		for i := 0; i < len(r.turnaround); i += step {
			scratch = append(scratch, r.turnaround[i])
		}
		slices.Sort(scratch)
		var med time.Duration
		if len(scratch) > 0 {
			med = time.Duration(float64(scratch[len(scratch)/2]) * 1e9)
		}
		threshold := max(time.Duration(float64(med)*r.cfg.specFactor), 20*time.Millisecond)
		now := int64(time.Since(r.submitted))
		added := false
		for fl := range r.running {
			for _, c := range fl.calls {
				cs := &r.calls[c]
				if cs.done() || cs.flags&flagSpeculated != 0 || cs.inFlight != 1 {
					continue
				}
				if time.Duration(now-cs.since) > threshold*time.Duration(max(cs.chunkLen, 1)) {
					cs.flags |= flagSpeculated
					r.spec++
					r.queue.urgent = append(r.queue.urgent, chunk{c, c + 1})
					added = true
					r.log.Info("speculating on straggler", "call", c, "running", time.Duration(now-cs.since).Round(time.Millisecond), "median", med.Round(time.Millisecond))
				}
			}
		}
		r.mu.Unlock()
		if added {
			r.signal()
		}
	}
}

// readStatus is job.ReadStatus tried again after a transient fault.
func readStatus(ctx context.Context, st blob.Store, jobID string, call int) (s job.Status, ok bool, err error) {
	err = retry.Store(ctx, func(ctx context.Context) (err error) {
		s, ok, err = job.ReadStatus(ctx, st, jobID, call)
		return err
	})
	return s, ok, err
}

// putRetry is blob.PutBytes tried again after a transient fault.
func putRetry(ctx context.Context, st blob.Store, key string, b []byte, opts blob.PutOptions) error {
	return retry.Store(ctx, func(ctx context.Context) error { return blob.PutBytes(ctx, st, key, b, opts) })
}

// writeDriverStatus records a driver-side verdict, unless a worker's status is there.
func writeDriverStatus(ctx context.Context, st blob.Store, jobID string, s *job.Status) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return putRetry(context.WithoutCancel(ctx), st, job.StatusKey(jobID, s.Call), b, blob.PutOptions{IfNotExist: true, Ephemeral: true})
}
