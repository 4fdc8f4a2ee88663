package wren

import (
	"time"

	"github.com/wrenml/wren/job"
)

// The driver keeps a few dozen bytes per call, so that a map of millions
// of calls fits: its bookkeeping while the call runs (callState), the
// timing of its winning attempt (callResult, times as float32 seconds
// after the attempt's dispatch), and small outputs in an arena.

// callFlags are a call's booleans.
type callFlags uint8

const (
	flagDone       callFlags = 1 << iota // succeeded or failed for good
	flagSpeculated                       // a speculative attempt was launched
	flagOK                               // it succeeded
	flagOutObj                           // its output is an object of its own
	flagTimed                            // res holds a worker's timing
)

// callState is the driver's bookkeeping of one call.
type callState struct {
	since      int64 // the latest attempt's dispatch, ns after the job was submitted
	next       int32 // the next attempt's number
	chunkLen   int32 // calls in the latest attempt's invocation
	inFlight   int16
	failures   uint8 // attempts that failed in a retryable way
	interrupts uint8 // attempts stopped for another invocation's sake
	flags      callFlags
}

func (c *callState) done() bool { return c.flags&flagDone != 0 }

// callResult is the winning attempt's record: what CallStats reports.
type callResult struct {
	dispatched int64 // ns after the job was submitted (the driver's clock)
	// Seconds after dispatched: the worker's phases (its clock), then when
	// the driver saw the status (the driver's).
	started, computeStart, computeEnd, finished, observed float32
	readTime, writeTime                                   float32 // seconds
	bytesRead, bytesWritten                               int64
	maxRSS                                                uint32 // KiB
	worker                                                uint32 // index in run.workers
	attempt                                               int32
	out                                                   arenaRef // an inline output
}

// arenaRef locates bytes in an arena.
type arenaRef struct{ blk, off, n uint32 }

// arena keeps small outputs in large blocks: no object and no slice header
// per call.
type arena struct{ blocks [][]byte }

const arenaBlock = 1 << 20

func (a *arena) add(b []byte) arenaRef {
	if len(b) > arenaBlock/4 {
		a.blocks = append(a.blocks, append([]byte(nil), b...))
		return arenaRef{blk: uint32(len(a.blocks) - 1), n: uint32(len(b))}
	}
	last := len(a.blocks) - 1
	if last < 0 || cap(a.blocks[last])-len(a.blocks[last]) < len(b) || cap(a.blocks[last]) < arenaBlock {
		a.blocks = append(a.blocks, make([]byte, 0, arenaBlock))
		last++
	}
	blk := a.blocks[last]
	off := len(blk)
	a.blocks[last] = append(blk, b...)
	return arenaRef{blk: uint32(last), off: uint32(off), n: uint32(len(b))}
}

// get returns the bytes of ref; they never change.
func (a *arena) get(ref arenaRef) []byte {
	if ref.n == 0 {
		return []byte{}
	}
	return a.blocks[ref.blk][ref.off : ref.off+ref.n : ref.off+ref.n]
}

// workerID returns the index of a worker's name; r.mu is held.
func (r *run) workerID(name string) uint32 {
	if id, ok := r.workerIdx[name]; ok {
		return id
	}
	id := uint32(len(r.workers))
	r.workers = append(r.workers, name)
	r.workerIdx[name] = id
	return id
}

// record keeps a call's winning status; r.mu is held.
func (r *run) record(c int, s *job.Status, observed time.Time) {
	cs := &r.calls[c]
	res := &r.res[c]
	res.attempt = int32(s.Attempt)
	res.worker = r.workerID(s.Worker)
	if s.OK {
		cs.flags |= flagOK
		if s.Output != "" {
			cs.flags |= flagOutObj
			if s.Output != job.OutputKey(r.id, c, s.Attempt) {
				r.outKeys[c] = s.Output
			}
		} else {
			res.out = r.arena.add(s.Inline)
		}
	}
	sub := r.submitted.UnixNano()
	if s.Started == 0 {
		// No worker timing (a verdict of the driver's).
		res.dispatched = cs.since
		res.observed = float32(observed.Sub(r.submitted).Seconds() - float64(cs.since)/1e9)
		return
	}
	cs.flags |= flagTimed
	d := s.Dispatched
	if d == 0 {
		d = sub + cs.since
	}
	res.dispatched = d - sub
	rel := func(t int64) float32 { return float32(float64(t-d) / 1e9) }
	computeStart, computeEnd := s.ComputeStart, s.ComputeEnd
	if computeStart == 0 { // failed before computing
		computeStart, computeEnd = s.Started, s.Started
	}
	finished := s.Finished
	if finished == 0 {
		finished = computeEnd
	}
	res.started, res.computeStart, res.computeEnd, res.finished = rel(s.Started), rel(computeStart), rel(computeEnd), rel(finished)
	res.observed = rel(observed.UnixNano())
	res.readTime, res.writeTime = float32(float64(s.ReadNanos)/1e9), float32(float64(s.WriteNanos)/1e9)
	res.bytesRead, res.bytesWritten = s.BytesRead, s.BytesWritten
	res.maxRSS = uint32(min(s.MaxRSS>>10, 1<<32-1))
}

// callStats expands call i's record; r.mu is held.
func (r *run) callStats(i int) CallStats {
	cs, res := &r.calls[i], &r.res[i]
	d := r.submitted.Add(time.Duration(res.dispatched))
	at := func(sec float32) time.Time { return d.Add(time.Duration(float64(sec) * 1e9)) }
	c := CallStats{
		Call: i, Attempt: int(res.attempt), Attempts: int(cs.next), Worker: r.workers[res.worker], OK: cs.flags&flagOK != 0,
		Submitted: r.submitted, Dispatched: d, Started: at(res.started),
		ComputeStart: at(res.computeStart), ComputeEnd: at(res.computeEnd), Finished: at(res.finished), Observed: at(res.observed),
		BytesRead: res.bytesRead, BytesWritten: res.bytesWritten, MaxRSS: int64(res.maxRSS) << 10,
		ReadTime: time.Duration(float64(res.readTime) * 1e9), WriteTime: time.Duration(float64(res.writeTime) * 1e9),
	}
	c.Queue = c.Dispatched.Sub(c.Submitted)
	c.Start = c.Started.Sub(c.Dispatched)
	c.Setup = c.ComputeStart.Sub(c.Started)
	c.Compute = c.ComputeEnd.Sub(c.ComputeStart)
	c.Output = c.Finished.Sub(c.ComputeEnd)
	return c
}

// outputKey is where call c's output object is; r.mu is held.
func (r *run) outputKey(c int) string {
	if k, ok := r.outKeys[c]; ok {
		return k
	}
	return job.OutputKey(r.id, c, int(r.res[c].attempt))
}
