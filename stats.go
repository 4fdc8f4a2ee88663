package wren

import (
	"context"
	"fmt"
	"iter"
	"slices"
	"strings"
	"time"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/job"
	"github.com/wrenml/wren/worker"
)

// CallStats is the timing of a call's winning attempt, as in the paper's
// task-time breakdowns. Times come from the worker's clock, except
// Submitted and Observed (the driver's).
type CallStats struct {
	Call     int    `json:"call"`
	Attempt  int    `json:"attempt"`
	Attempts int    `json:"attempts"` // attempts launched in all
	Worker   string `json:"worker"`
	OK       bool   `json:"ok"`

	Submitted    time.Time `json:"submitted"`     // Map was called
	Dispatched   time.Time `json:"dispatched"`    // the invocation was sent
	Started      time.Time `json:"started"`       // the worker began the call
	ComputeStart time.Time `json:"compute_start"` // input read and decoded
	ComputeEnd   time.Time `json:"compute_end"`   // the function returned
	Finished     time.Time `json:"finished"`      // output written
	Observed     time.Time `json:"observed"`      // the driver saw the status

	Queue   time.Duration `json:"queue"`   // Dispatched - Submitted: waiting for a worker
	Start   time.Duration `json:"start"`   // Started - Dispatched: invocation latency
	Setup   time.Duration `json:"setup"`   // ComputeStart - Started: reading the input
	Compute time.Duration `json:"compute"` // ComputeEnd - ComputeStart
	Output  time.Duration `json:"output"`  // Finished - ComputeEnd: writing the output

	BytesRead    int64         `json:"bytes_read"`
	BytesWritten int64         `json:"bytes_written"`
	MaxRSS       int64         `json:"max_rss"` // the worker process's peak memory
	ReadTime     time.Duration `json:"read_time"`
	WriteTime    time.Duration `json:"write_time"`
}

// JobStats summarises a job.
type JobStats struct {
	Job         string        `json:"job"`
	Task        string        `json:"task"`
	Calls       int           `json:"calls"`
	Done        int           `json:"done"`
	Failed      int           `json:"failed"`
	Cancelled   int           `json:"cancelled,omitempty"` // of Failed, the calls the job's end failed with KindCancelled before they ran
	Attempts    int           `json:"attempts"`            // invocations of calls, all kinds
	Retried     int           `json:"retried"`             // attempts launched after a lost or failed one
	Speculative int           `json:"speculative"`         // straggler relaunches
	Wall        time.Duration `json:"wall"`                // submit to last completion (or now)
	Requests    Requests      `json:"requests"`            // store requests, the driver's and the workers'
	// DriverRequests are the driver's share of Requests: on the happy path
	// it writes the manifest, the code hash and the input packs, and reads
	// nothing (statuses and small outputs come in the workers' replies).
	DriverRequests Requests `json:"driver_requests"`
	// Billing is what the backend charges for the job (Lambda: GB-seconds,
	// requests, dollars, and the cheapest memory size); nil for local ones.
	Billing *worker.Billing `json:"billing,omitempty"`
	// Errors are the failed calls, by index.
	Errors  []*CallError `json:"errors,omitempty"`
	PerCall []CallStats  `json:"per_call"` // calls with a worker status, by index
}

// Stats returns the timings of every call that has finished so far. Its
// PerCall holds a few hundred bytes per call: for a very large job,
// Summary or CallStats cost less.
func (j *Job[Out]) Stats() JobStats { return j.r.stats(true) }

// Summary is Stats without PerCall: the counts, wall time, requests and
// billing, in memory that does not grow with the job.
func (j *Job[Out]) Summary() JobStats { return j.r.stats(false) }

// AllCallStats yields the timings of every call finished so far, by index,
// as CallStats would return them. It holds no lock while it yields, and
// costs no memory per call.
func (j *Job[Out]) AllCallStats() iter.Seq[CallStats] {
	return func(yield func(CallStats) bool) {
		r := j.r
		for i := range r.n {
			r.mu.Lock()
			cs := &r.calls[i]
			ok := cs.done() && cs.flags&flagTimed != 0
			var c CallStats
			if ok {
				c = r.callStats(i)
			}
			r.mu.Unlock()
			if ok && !yield(c) {
				return
			}
		}
	}
}

// Summary returns the stats without PerCall, as Job.Summary does.
func (s JobStats) Summary() JobStats {
	s.PerCall = nil
	return s
}

// AllCallStats yields PerCall.
func (s JobStats) AllCallStats() iter.Seq[CallStats] { return slices.Values(s.PerCall) }

func (r *run) summary() JobStats { return r.stats(false) }

func (r *run) stats(perCall bool) JobStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	js := JobStats{Job: r.id, Task: r.task, Calls: r.n, Attempts: r.attempts, Retried: r.retried, Speculative: r.spec}
	js.Requests = r.counts.c.snapshot()
	js.DriverRequests = js.Requests
	js.Requests.Puts += r.workerReqs.Puts
	js.Requests.Gets += r.workerReqs.Gets
	js.Requests.BytesPut += r.workerReqs.BytesPut
	js.Requests.BytesGot += r.workerReqs.BytesGot
	last := time.Duration(0)
	u := worker.Usage{Invocations: r.invokes, Billed: r.billed, EstimatedBilled: r.billedEstimated, EstimatedInvocations: r.estimatedInvokes}
	for i := range r.calls {
		cs := &r.calls[i]
		if !cs.done() {
			continue
		}
		js.Done++
		if cs.flags&flagOK == 0 {
			js.Failed++
			if e := r.errs[i]; e != nil && e.Kind == job.KindCancelled {
				js.Cancelled++
			}
		}
		res := &r.res[i]
		last = max(last, time.Duration(res.dispatched)+time.Duration(float64(res.observed)*1e9))
		if cs.flags&flagTimed == 0 {
			continue
		}
		// The bill's per-call sums, as usage sums them from CallStats.
		io := float64(res.readTime + res.writeTime)
		compute := float64(res.computeEnd - res.computeStart)
		u.Calls++
		u.Compute += time.Duration(compute * 1e9)
		u.IO += time.Duration(io * 1e9)
		u.Fixed += time.Duration(max(float64(res.finished-res.started)-compute-io, 0) * 1e9)
		u.PeakRSS = max(u.PeakRSS, int64(res.maxRSS)<<10)
		if perCall {
			js.PerCall = append(js.PerCall, r.callStats(i))
		}
	}
	if js.Done < js.Calls {
		last = time.Since(r.submitted)
	}
	js.Wall = last
	for _, e := range r.errs {
		js.Errors = append(js.Errors, e)
	}
	slices.SortFunc(js.Errors, func(a, b *CallError) int { return a.Call - b.Call })
	if b, ok := r.ex.backend.(worker.Biller); ok {
		js.Billing = b.Bill(u)
	}
	return js
}

// callStats derives a call's timings from its stored status.
func callStats(i int, s *job.Status, submitted time.Time) CallStats {
	t := func(ns int64) time.Time { return time.Unix(0, ns) }
	c := CallStats{
		Call: i, Attempt: s.Attempt, Attempts: s.Attempt + 1, Worker: s.Worker, OK: s.OK,
		Submitted: submitted, Dispatched: t(s.Dispatched), Started: t(s.Started),
		ComputeStart: t(s.ComputeStart), ComputeEnd: t(s.ComputeEnd), Finished: t(s.Finished),
		BytesRead: s.BytesRead, BytesWritten: s.BytesWritten, MaxRSS: s.MaxRSS,
		ReadTime: time.Duration(s.ReadNanos), WriteTime: time.Duration(s.WriteNanos),
	}
	if s.ComputeStart == 0 { // failed before computing
		c.ComputeStart, c.ComputeEnd = c.Started, c.Started
	}
	if s.Finished == 0 {
		c.Finished = c.ComputeEnd
	}
	c.Observed = c.Finished
	c.Queue = c.Dispatched.Sub(c.Submitted)
	c.Start = c.Started.Sub(c.Dispatched)
	c.Setup = c.ComputeStart.Sub(c.Started)
	c.Compute = c.ComputeEnd.Sub(c.ComputeStart)
	c.Output = c.Finished.Sub(c.ComputeEnd)
	return c
}

// ReadJobStats rebuilds a job's stats from its objects in a store, for a
// job run by another process (wren jobs show). Attempt counts are those of
// the winning attempts; Wall runs from submission to the last output.
func ReadJobStats(ctx context.Context, st blob.Store, id string) (JobStats, error) {
	w, err := WatchJob(ctx, st, id)
	if err != nil {
		return JobStats{}, err
	}
	if _, err := w.Refresh(ctx); err != nil {
		return JobStats{}, err
	}
	js := w.Stats()
	w.Summary(ctx, &js)
	return js, nil
}

// Median returns the median of a per-call duration, e.g.
// s.Median(func(c CallStats) time.Duration { return c.Compute }).
func (s JobStats) Median(f func(CallStats) time.Duration) time.Duration {
	return s.Quantile(0.5, f)
}

// Quantile returns the q-quantile (0..1) of a per-call duration.
func (s JobStats) Quantile(q float64, f func(CallStats) time.Duration) time.Duration {
	if len(s.PerCall) == 0 {
		return 0
	}
	v := make([]time.Duration, len(s.PerCall))
	for i, c := range s.PerCall {
		v[i] = f(c)
	}
	slices.Sort(v)
	return v[min(int(q*float64(len(v))), len(v)-1)]
}

// String is a human summary: counts, wall time and the median and 95th
// percentile of each phase.
func (s JobStats) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "job %s (%s): %d calls, %d done, %d failed, %d attempts (%d retried, %d speculative), wall %v\n",
		s.Job, s.Task, s.Calls, s.Done, s.Failed, s.Attempts, s.Retried, s.Speculative, s.Wall.Round(time.Millisecond))
	phases := []struct {
		name string
		f    func(CallStats) time.Duration
	}{
		{"queue", func(c CallStats) time.Duration { return c.Queue }},
		{"start", func(c CallStats) time.Duration { return c.Start }},
		{"setup", func(c CallStats) time.Duration { return c.Setup }},
		{"compute", func(c CallStats) time.Duration { return c.Compute }},
		{"output", func(c CallStats) time.Duration { return c.Output }},
	}
	if len(s.PerCall) > 0 {
		b.WriteString("  phase      median        p95\n")
		for _, p := range phases {
			fmt.Fprintf(&b, "  %-8s %10v %10v\n", p.name, s.Median(p.f).Round(time.Microsecond), s.Quantile(0.95, p.f).Round(time.Microsecond))
		}
	}
	var in, out int64
	for _, c := range s.PerCall {
		in += c.BytesRead
		out += c.BytesWritten
	}
	fmt.Fprintf(&b, "  bytes read %d, written %d", in, out)
	if rq := s.Requests; rq.Puts+rq.Gets > 0 && s.Calls > 0 {
		fmt.Fprintf(&b, "\n  store requests: %d puts, %d gets, %d lists (%.3f puts and %.3f gets per call)",
			rq.Puts, rq.Gets, rq.Lists, float64(rq.Puts)/float64(s.Calls), float64(rq.Gets)/float64(s.Calls))
	}
	if bl := s.Billing; bl != nil {
		fmt.Fprintf(&b, "\n  cost: $%.6f for %d invocations, %v billed at %d MB (%.3f GB-s)",
			bl.USD, bl.Invocations, bl.Billed.Round(time.Millisecond), bl.MemoryMB, bl.GBSeconds)
		if bl.EstimatedInvocations > 0 {
			fmt.Fprintf(&b, "\n  of which estimated: %v over %d invocations whose runtime reported no duration (failed, timed out at the function's timeout, lost, or asynchronous)",
				bl.EstimatedBilled.Round(time.Millisecond), bl.EstimatedInvocations)
		}
		if bl.SuggestedMemoryMB != bl.MemoryMB {
			fmt.Fprintf(&b, "\n  cheapest memory for this job: %d MB, about $%.6f, %.2fx the time", bl.SuggestedMemoryMB, bl.SuggestedUSD, bl.SuggestedSlowdown)
		}
	}
	return b.String()
}
