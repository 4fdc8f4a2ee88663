package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/internal/retry"
	"github.com/wrenml/wren/job"
)

// Env is what a worker keeps between invocations: its name, the input
// bytes it read last, its calls' captured output.
// The zero value is ready to use; it is safe for concurrent use.
type Env struct {
	// Name identifies the worker in statuses ("local-3", a Lambda request ID).
	Name  string
	mu    sync.Mutex
	stuck atomic.Bool
	span  span           // the pack bytes read last
	logs  map[int][]byte // a call's captured output, until written
	// capture, when set, collects what each call prints (ServeLocal).
	capture *capturer
}

// Stuck reports whether a function ignored its timeout and is still running
// in this worker. Run stops taking calls then; a process worker should answer
// and exit, since the runaway goroutine cannot be stopped any other way.
func (e *Env) Stuck() bool { return e.stuck.Load() }

// StuckGrace is how long a timed-out function gets to return after its
// context is cancelled before the worker gives up on it.
const StuckGrace = 200 * time.Millisecond

// store opens a job's store once per process (blob.Shared).
func (e *Env) store(ctx context.Context, url string) (blob.Store, error) {
	return blob.Shared(ctx, url)
}

// Run executes an invocation: for each call, read its input, run the
// registered function, write the output under the attempt's own key, then
// write the status last with a conditional put, so the first attempt to
// finish wins and a late or duplicate attempt changes nothing. An error is
// returned only when the invocation as a whole cannot run (bad store URL);
// a call that cannot record its result is left without status, so the
// driver sees it as lost and retries it.
func Run(ctx context.Context, inv *job.Invocation, lookup Lookup, env *Env) (*job.Reply, error) {
	var rep *job.Reply
	err := run(ctx, inv, lookup, env, syncWriter{ctx}, func(r *job.Reply) { rep = r })
	return rep, err
}

// writer writes computed calls (outputs, then statuses) and runs other
// steps in the order they are given, possibly later: the next call computes
// while earlier ones are written.
type writer interface {
	// call writes a computed call's output and status and appends the
	// status to its reply.
	call(*callWrite)
	// then runs f after every write given before.
	then(f func())
}

// callWrite is a computed call whose output and status remain to be written.
type callWrite struct {
	ctx context.Context
	st  blob.Store
	inv *job.Invocation
	c   job.Call
	s   *job.Status
	out []byte
	log []byte // what the function printed
	rep *job.Reply
}

// syncWriter writes each call at once.
type syncWriter struct{ ctx context.Context }

func (w syncWriter) call(cw *callWrite) { writeCalls([]*callWrite{cw}) }
func (w syncWriter) then(f func())      { f() }

// queueWriter writes on a goroutine of its own, and writes the statuses of
// the calls it finds waiting together (group commit): with a store that
// shares one object among several keys (fileblob), a chunk of calls costs
// one object, not one per call.
type queueWriter struct {
	items chan queueItem
	done  chan struct{}
}

type queueItem struct {
	cw *callWrite
	f  func()
}

func newQueueWriter(setup func()) *queueWriter {
	w := &queueWriter{items: make(chan queueItem, 256), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		setup()
		var batch []*callWrite
		for it := range w.items {
			if it.f != nil {
				it.f()
				continue
			}
			batch = append(batch[:0], it.cw)
			var next func()
		gather:
			for len(batch) < maxStatusBatch {
				select {
				case nx, ok := <-w.items:
					if !ok {
						break gather
					}
					if nx.f != nil {
						next = nx.f
						break gather
					}
					batch = append(batch, nx.cw)
				default:
					break gather
				}
			}
			writeCalls(batch)
			if next != nil {
				next()
			}
		}
	}()
	return w
}

func (w *queueWriter) call(cw *callWrite) { w.items <- queueItem{cw: cw} }
func (w *queueWriter) then(f func())      { w.items <- queueItem{f: f} }

// close waits for every write given so far.
func (w *queueWriter) close() {
	close(w.items)
	<-w.done
}

// maxStatusBatch bounds the statuses written together.
const maxStatusBatch = 64

// run is Run with the writes handed to w. done receives the reply after the
// last write.
func run(ctx context.Context, inv *job.Invocation, lookup Lookup, env *Env, w writer, done func(*job.Reply)) error {
	if err := inv.Validate(); err != nil {
		return err
	}
	st, err := env.store(ctx, inv.Store)
	if err != nil {
		return fmt.Errorf("worker: job %s: %w", inv.Job, err)
	}
	if err := job.LoadCalls(ctx, st, inv); err != nil {
		return err
	}
	h, known := lookup(inv.Task)
	rep := &job.Reply{Statuses: make([]job.Status, 0, len(inv.Calls))}
	inputs := &inputReader{st: st, inv: inv, env: env}
	for i, c := range inv.Calls {
		if ctx.Err() != nil || env.Stuck() {
			break
		}
		s := &job.Status{Call: c.Index, Attempt: c.Attempt, Worker: env.Name, Dispatched: inv.Dispatched, Started: now()}
		var out []byte
		if !known {
			s.Error = &job.Error{Kind: job.KindUnknownTask, Message: fmt.Sprintf("unknown task %q: not registered in this binary (is the worker running the driver's binary, and does it register the task at package level?)", inv.Task)}
		} else {
			out = compute(ctx, inputs, i, h, s, env)
		}
		cw := &callWrite{ctx: ctx, st: st, inv: inv, c: c, s: s, out: out, rep: rep}
		if env.logs != nil {
			cw.log = env.logs[c.Index]
			delete(env.logs, c.Index)
		}
		w.call(cw)
	}
	w.then(func() { done(rep) })
	return nil
}

// maxSpan bounds one ranged read of consecutive packed inputs.
const maxSpan = 8 << 20

// readAhead is how far past its own calls a worker reads a pack, so that
// the next invocations' inputs (consecutive calls, most of the time) are
// already in memory: one request serves many calls, chunked or not.
const readAhead = 256 << 10

// inputReader reads the inputs of an invocation's calls. Packed inputs of
// consecutive calls are read with one ranged get (their span, or readAhead
// bytes if more), kept in the worker's Env for the next invocations, and
// checked against their CRC-32C before use.
type inputReader struct {
	st  blob.Store
	inv *job.Invocation
	env *Env
}

// span is a range of a pack held in memory: bytes [off, off+len(data)) of
// the object key, of size bytes, in store st.
type span struct {
	st   blob.Store
	key  string
	size int64
	off  int64
	data []byte
}

// cached returns ref's bytes from the span kept in memory, if it holds
// them: the same store, pack key and pack size. (A job cleaned and run
// again under its ID writes new packs under the same keys: the caller
// checks the bytes' checksum and reads the store when they differ.)
func (e *Env) cached(st blob.Store, ref *job.InputRef) []byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	sp := e.span
	if sp.st != st || sp.key != ref.Pack || sp.size != ref.Size || ref.Off < sp.off || ref.Off+ref.Len > sp.off+int64(len(sp.data)) {
		return nil
	}
	return sp.data[ref.Off-sp.off : ref.Off-sp.off+ref.Len]
}

// read returns call i's input and the store requests it took.
func (r *inputReader) read(ctx context.Context, i int) ([]byte, int, error) {
	c := r.inv.Calls[i]
	gets := 0
	if c.In == nil {
		var in []byte
		err := retry.Store(ctx, func(ctx context.Context) (err error) {
			gets++
			in, err = blob.ReadAll(ctx, r.st, job.InputKey(r.inv.Job, c.Index))
			return err
		})
		return in, gets, err
	}
	ref := c.In
	b := r.env.cached(r.st, ref)
	if b != nil && job.Checksum(b) != ref.CRC {
		b = nil // another pack under the same key: read it again
	}
	if b == nil {
		end := ref.Off + ref.Len
		for _, n := range r.inv.Calls[i+1:] {
			if n.In == nil || n.In.Pack != ref.Pack || n.In.Off != end || n.In.Off+n.In.Len-ref.Off > maxSpan {
				break
			}
			end = n.In.Off + n.In.Len
		}
		end = max(end, min(ref.Off+readAhead, ref.Size))
		var data []byte
		var size int64
		err := retry.Store(ctx, func(ctx context.Context) (err error) {
			gets++
			data, size, err = blob.ReadRange(ctx, r.st, ref.Pack, ref.Off, end-ref.Off)
			return err
		})
		switch {
		case err != nil:
			return nil, gets, err
		case size != ref.Size:
			return nil, gets, fmt.Errorf("%w: job %s, call %d: %s holds %d bytes, its index says %d", job.ErrBadPack, r.inv.Job, c.Index, ref.Pack, size, ref.Size)
		case int64(len(data)) != end-ref.Off:
			return nil, gets, fmt.Errorf("%w: job %s, call %d: %s is truncated (%d of %d bytes from %d)", job.ErrBadPack, r.inv.Job, c.Index, ref.Pack, len(data), end-ref.Off, ref.Off)
		}
		r.env.mu.Lock()
		r.env.span = span{st: r.st, key: ref.Pack, size: ref.Size, off: ref.Off, data: data}
		r.env.mu.Unlock()
		b = data[:ref.Len]
	}
	if job.Checksum(b) != ref.CRC {
		return nil, gets, fmt.Errorf("%w: job %s, call %d: input bytes [%d, +%d) of %s do not match their checksum", job.ErrBadPack, r.inv.Job, c.Index, ref.Off, ref.Len, ref.Pack)
	}
	return b, gets, nil
}

func now() int64 { return time.Now().UnixNano() }

// compute reads a call's input and runs the function; it returns the encoded
// output, or records an error in s.
func compute(ctx context.Context, inputs *inputReader, i int, h Handler, s *job.Status, env *Env) []byte {
	inv, c := inputs.inv, inputs.inv.Calls[i]
	t0 := time.Now()
	in, gets, err := inputs.read(ctx, i)
	s.Gets += gets
	s.ReadNanos = int64(time.Since(t0))
	s.BytesRead = int64(len(in))
	switch {
	case errors.Is(err, blob.ErrNotFound):
		// Permanent: the job's input is gone (cleaned, or another store).
		s.Error = &job.Error{Kind: job.KindDecode, Message: fmt.Sprintf("read input of call %d: %v", c.Index, err)}
		return nil
	case err != nil:
		// Transient (a 503, a dropped connection, a pack truncated in
		// transit): never recorded, the driver retries the call.
		s.Error = &job.Error{Kind: job.KindStore, Message: fmt.Sprintf("read input of call %d: %v", c.Index, err)}
		return nil
	}
	s.ComputeStart = now()
	if env.capture != nil {
		env.capture.start()
	}
	out, err := invoke(ctx, h, in, inv.Timeout, env)
	if env.capture != nil {
		log := env.capture.stop()
		if len(log) > 0 {
			env.logs[c.Index] = log
		}
	}
	s.ComputeEnd = now()
	s.Finished = s.ComputeEnd
	s.MaxRSS = maxRSS()
	if err != nil {
		s.Error = classify(err)
		if inv.Timeout > 0 && errors.Is(err, context.DeadlineExceeded) {
			s.Error.Kind = job.KindTimeout
			s.Error.Message = fmt.Sprintf("call %d timed out after %v: %s", c.Index, inv.Timeout, s.Error.Message)
		}
		return nil
	}
	if inv.MaxOutput > 0 && int64(len(out)) > inv.MaxOutput {
		s.Error = &job.Error{Kind: job.KindTooLarge, Message: fmt.Sprintf("output of call %d is %d bytes, over the cap of %d bytes", c.Index, len(out), inv.MaxOutput)}
		return nil
	}
	return out
}

// writeCalls writes computed calls: each output that does not travel inline
// in its own object, then the statuses, last and conditionally. Statuses of
// one job and store go together (blob.PutShared: one object shared by
// their keys on fileblob; each key still wins or loses on its own).
func writeCalls(ws []*callWrite) {
	var record []*callWrite
	for _, cw := range ws {
		if writeOutput(cw) {
			record = append(record, cw)
		}
	}
	for len(record) > 0 {
		// The run of calls with the same store and job, up to maxBatchBytes.
		n := 1
		for n < len(record) && record[n].st == record[0].st && record[n].inv.Job == record[0].inv.Job {
			n++
		}
		writeStatuses(record[:n])
		record = record[n:]
	}
	for _, cw := range ws {
		cw.rep.Statuses = append(cw.rep.Statuses, *cw.s)
	}
}

// writeOutput writes a computed call's output unless it travels inline, and
// reports whether the call's status is to be recorded.
func writeOutput(cw *callWrite) bool {
	s, c, inv := cw.s, cw.c, cw.inv
	if len(cw.log) > 0 {
		key := job.LogKey(inv.Job, c.Index, c.Attempt)
		err := retry.Store(cw.ctx, func(ctx context.Context) error {
			s.Puts++
			return blob.PutBytes(ctx, cw.st, key, cw.log, blob.PutOptions{Ephemeral: true})
		})
		if err == nil {
			s.Log = key
		}
		if s.Error != nil {
			s.LogTail = lastLines(cw.log, logTailLines)
		}
	}
	if s.Error == nil {
		t1 := time.Now()
		if inv.InlineMax > 0 && int64(len(cw.out)) <= inv.InlineMax {
			s.Inline = cw.out
			if s.Inline == nil {
				s.Inline = []byte{}
			}
		} else {
			key := job.OutputKey(inv.Job, c.Index, c.Attempt)
			err := retry.Store(cw.ctx, func(ctx context.Context) error {
				s.Puts++
				return blob.PutBytes(ctx, cw.st, key, cw.out, blob.PutOptions{Ephemeral: true})
			})
			if err != nil {
				s.Error = &job.Error{Kind: job.KindStore, Message: fmt.Sprintf("write output of call %d: %v", c.Index, err)}
				return false // no status: the driver retries the call
			}
			s.Output = key
		}
		s.WriteNanos = int64(time.Since(t1))
		s.BytesWritten = int64(len(cw.out))
		s.Finished = now()
		s.OK = true
	}
	// A store error is never recorded: it says nothing about the call, and
	// the driver retries it.
	return s.Error == nil || (c.RecordErrors && s.Error.Kind != job.KindStore)
}

// maxBatchBytes bounds the statuses written together as one object.
const maxBatchBytes = 256 << 10

// writeStatuses records the statuses of calls of one job and store. With a
// store that shares objects, they go together: one object holding them all
// (a JSON array), under each call's status key; each key is taken or found
// taken on its own. Otherwise, or for a status that could not be written
// so, one put each.
func writeStatuses(ws []*callWrite) {
	var single []*callWrite
	if _, ok := ws[0].st.(blob.SharedPutter); ok && len(ws) > 1 {
		for len(ws) > 0 {
			var batch []job.Status
			size := 0
			n := 0
			for n < len(ws) {
				b, _ := json.Marshal(ws[n].s)
				if n > 0 && size+len(b) > maxBatchBytes {
					break
				}
				size += len(b)
				batch = append(batch, *ws[n].s)
				n++
			}
			group := ws[:n]
			ws = ws[n:]
			if n == 1 {
				single = append(single, group...)
				continue
			}
			data, err := json.Marshal(batch)
			if err != nil {
				single = append(single, group...)
				continue
			}
			keys := make([]string, n)
			for i, cw := range group {
				keys[i] = job.StatusKey(cw.inv.Job, cw.c.Index)
			}
			group[0].s.Puts++ // one object for the group
			errs := blob.PutShared(context.WithoutCancel(group[0].ctx), group[0].st, keys, data, blob.PutOptions{IfNotExist: true, Ephemeral: true})
			for i, cw := range group {
				switch err := errs[i]; {
				case err == nil:
					cw.s.Won = true
				case errors.Is(err, blob.ErrExists):
					settleExists(cw)
				default:
					single = append(single, cw) // try on its own
				}
			}
		}
	} else {
		single = ws
	}
	for _, cw := range single {
		cw.s.Puts++ // the status
		if err := writeStatus(cw.ctx, cw.st, cw.inv.Job, cw.s); err != nil {
			// Not recorded: the driver will see the call as lost.
			cw.s.Error = &job.Error{Kind: job.KindStore, Message: err.Error()}
			cw.s.OK = false
			cw.s.Inline = nil
		}
	}
}

// settleExists handles a status key found taken: either this attempt's own
// status (a put stored whose answer was lost) or another attempt's, whose
// win leaves this attempt's output unreferenced.
func settleExists(cw *callWrite) {
	ctx := context.WithoutCancel(cw.ctx)
	stored, ok, err := job.ReadStatus(ctx, cw.st, cw.inv.Job, cw.c.Index)
	switch {
	case err != nil:
		cw.s.Error = &job.Error{Kind: job.KindStore, Message: fmt.Sprintf("worker: status of call %d exists but cannot be read: %v", cw.c.Index, err)}
		cw.s.OK = false
		cw.s.Inline = nil
	case ok && stored.Attempt == cw.s.Attempt:
		cw.s.Won = true
	default:
		if cw.s.Output != "" {
			cw.st.Delete(ctx, cw.s.Output)
		}
	}
}

func classify(err error) *job.Error {
	var pe *job.PanicError
	if errors.As(err, &pe) {
		return &job.Error{Kind: job.KindPanic, Message: pe.Error(), Stack: pe.Stack}
	}
	var ke *job.ClassifiedError
	if errors.As(err, &ke) {
		return &job.Error{Kind: ke.Kind, Message: err.Error()}
	}
	return &job.Error{Kind: job.KindError, Message: err.Error()}
}

// errStuck marks a function that ignored its cancelled context.
var errStuck = errors.New("function did not return after its context was cancelled")

// invoke runs h with a timeout, turning a panic into a *job.PanicError. A
// function that ignores its timeout is abandoned after StuckGrace and the
// env is marked stuck.
func invoke(ctx context.Context, h Handler, in []byte, timeout time.Duration, env *Env) ([]byte, error) {
	if timeout <= 0 {
		return callSafely(ctx, h, in)
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	type result struct {
		out []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := callSafely(cctx, h, in)
		done <- result{out, err}
	}()
	select {
	case r := <-done:
		if r.err == nil && cctx.Err() != nil && ctx.Err() == nil {
			// Finished, but past its deadline: still a timeout.
			return nil, fmt.Errorf("finished after the deadline: %w", context.DeadlineExceeded)
		}
		return r.out, r.err
	case <-cctx.Done():
	}
	select {
	case r := <-done:
		if r.err == nil {
			r.err = fmt.Errorf("finished after the deadline: %w", context.DeadlineExceeded)
		}
		return nil, r.err
	case <-time.After(StuckGrace):
		env.stuck.Store(true)
		return nil, fmt.Errorf("%w: %w", errStuck, context.DeadlineExceeded)
	}
}

// callSafely runs h, recovering a panic into a *job.PanicError with the stack.
func callSafely(ctx context.Context, h Handler, in []byte) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &job.PanicError{Value: r, Stack: string(debug.Stack())}
		}
	}()
	return h(ctx, in)
}

func writeStatus(ctx context.Context, st blob.Store, jobID string, s *job.Status) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	// Write even if the invocation's context ended meanwhile: the result is
	// complete and should not be lost.
	wctx := context.WithoutCancel(ctx)
	err = retry.Store(wctx, func(ctx context.Context) error {
		return blob.PutBytes(ctx, st, job.StatusKey(jobID, s.Call), b, blob.PutOptions{IfNotExist: true, Ephemeral: true})
	})
	if errors.Is(err, blob.ErrExists) {
		// Either another attempt won, or this one did and the answer was
		// lost (a put stored on its first try and retried, by us or by the
		// store's client, finds its own status). The stored status decides.
		stored, ok, rerr := job.ReadStatus(wctx, st, jobID, s.Call)
		if rerr != nil {
			return fmt.Errorf("worker: status of call %d exists but cannot be read: %w", s.Call, rerr)
		}
		if ok && stored.Attempt == s.Attempt {
			err = nil
		} else {
			// Another attempt won; this attempt's output is not referenced.
			if s.Output != "" {
				st.Delete(wctx, s.Output)
			}
			return nil
		}
	}
	if err != nil {
		return err
	}
	s.Won = true
	return nil
}
