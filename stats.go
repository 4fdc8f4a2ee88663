package wren

import (
	"fmt"
	"slices"
	"strings"
	"time"
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
	Attempts    int           `json:"attempts"`    // invocations of calls, all kinds
	Retried     int           `json:"retried"`     // attempts launched after a lost or failed one
	Speculative int           `json:"speculative"` // straggler relaunches
	Wall        time.Duration `json:"wall"`        // submit to last completion (or now)
	PerCall     []CallStats   `json:"per_call"`    // calls with a worker status, by index
}

// Stats returns the timings of every call that has finished so far.
func (j *Job[Out]) Stats() JobStats {
	r := j.r
	r.mu.Lock()
	defer r.mu.Unlock()
	js := JobStats{Job: r.id, Task: r.task, Calls: r.n, Attempts: r.attempts, Retried: r.retried, Speculative: r.spec}
	last := r.submitted
	for i := range r.calls {
		cs := &r.calls[i]
		if !cs.done {
			continue
		}
		js.Done++
		if cs.err != nil {
			js.Failed++
		}
		if cs.observed.After(last) {
			last = cs.observed
		}
		s := cs.status
		if s == nil || s.Started == 0 {
			continue
		}
		t := func(ns int64) time.Time { return time.Unix(0, ns) }
		c := CallStats{
			Call: i, Attempt: s.Attempt, Attempts: cs.next, Worker: s.Worker, OK: s.OK,
			Submitted: r.submitted, Dispatched: t(s.Dispatched), Started: t(s.Started),
			ComputeStart: t(s.ComputeStart), ComputeEnd: t(s.ComputeEnd), Finished: t(s.Finished), Observed: cs.observed,
			BytesRead: s.BytesRead, BytesWritten: s.BytesWritten,
			ReadTime: time.Duration(s.ReadNanos), WriteTime: time.Duration(s.WriteNanos),
		}
		if s.ComputeStart == 0 { // failed before computing
			c.ComputeStart, c.ComputeEnd = c.Started, c.Started
		}
		if s.Finished == 0 {
			c.Finished = c.ComputeEnd
		}
		c.Queue = c.Dispatched.Sub(c.Submitted)
		c.Start = c.Started.Sub(c.Dispatched)
		c.Setup = c.ComputeStart.Sub(c.Started)
		c.Compute = c.ComputeEnd.Sub(c.ComputeStart)
		c.Output = c.Finished.Sub(c.ComputeEnd)
		js.PerCall = append(js.PerCall, c)
	}
	if js.Done < js.Calls {
		last = time.Now()
	}
	js.Wall = last.Sub(r.submitted)
	return js
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
	b.WriteString("  phase      median        p95\n")
	for _, p := range phases {
		fmt.Fprintf(&b, "  %-8s %10v %10v\n", p.name, s.Median(p.f).Round(time.Microsecond), s.Quantile(0.95, p.f).Round(time.Microsecond))
	}
	var in, out int64
	for _, c := range s.PerCall {
		in += c.BytesRead
		out += c.BytesWritten
	}
	fmt.Fprintf(&b, "  bytes read %d, written %d", in, out)
	return b.String()
}
