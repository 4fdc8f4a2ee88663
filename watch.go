package wren

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/job"
)

// JobWatcher follows a job in a store, for a program that did not start it
// (wren ui, wren jobs show): each Refresh lists the job's statuses and
// reads only those it has not read before (a status is written once, the
// first attempt's to finish winning), so watching a running job costs one
// listing plus its new statuses per refresh.
type JobWatcher struct {
	st       blob.Store
	m        job.Manifest
	statuses map[int]*job.Status // by call: memory for the statuses there, not for the manifest's count
	calls    []int               // the keys of statuses, in order
	done     int
	lists    atomic.Int64
	gets     atomic.Int64
}

// WatchJob reads job id's manifest and returns a watcher with no status
// read yet.
func WatchJob(ctx context.Context, st blob.Store, id string) (*JobWatcher, error) {
	m, err := job.ReadManifest(ctx, st, id)
	if err != nil {
		return nil, err
	}
	return &JobWatcher{st: st, m: m, statuses: map[int]*job.Status{}}, nil
}

// Manifest returns the job's manifest.
func (w *JobWatcher) Manifest() job.Manifest { return w.m }

// Done is the number of calls with a status read so far.
func (w *JobWatcher) Done() int { return w.done }

// Requests returns the store requests the watcher made: listings (one a
// refresh; a store may page them) and reads.
func (w *JobWatcher) Requests() (lists, gets int64) { return w.lists.Load(), w.gets.Load() }

// Refresh reads the statuses written since the last refresh (64 at a
// time) and returns how many it read. It is not safe for concurrent use.
func (w *JobWatcher) Refresh(ctx context.Context) (int, error) {
	if w.done == w.m.Calls {
		return 0, nil
	}
	id := w.m.Job
	prefix := job.StatusPrefix(id)
	w.lists.Add(1)
	var todo []int
	for a, err := range w.st.List(ctx, prefix) {
		if err != nil {
			return 0, fmt.Errorf("wren: job %s: %w", id, err)
		}
		i, ok := job.ParseCallName(strings.TrimPrefix(a.Key, prefix))
		if ok && i < w.m.Calls && w.statuses[i] == nil {
			todo = append(todo, i)
		}
	}
	read := make([]*job.Status, len(todo))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(64)
	for q, i := range todo {
		g.Go(func() error {
			w.gets.Add(1)
			s, ok, err := readStatus(gctx, w.st, id, i)
			if ok {
				read[q] = &s
			}
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return 0, err
	}
	n := 0
	for q, i := range todo {
		if read[q] != nil {
			w.statuses[i] = read[q]
			w.calls = append(w.calls, i)
			n++
		}
	}
	if n > 0 {
		slices.Sort(w.calls) // once a refresh, not each Stats
	}
	w.done += n
	return n, nil
}

// Stats returns the job's stats from the statuses read so far (without
// the driver's summary: see ReadJobStats).
func (w *JobWatcher) Stats() JobStats {
	m, id := w.m, w.m.Job
	js := JobStats{Job: id, Task: m.Task, Calls: m.Calls}
	last := m.Created
	for _, i := range w.calls {
		s := w.statuses[i]
		js.Done++
		js.Attempts += s.Attempt + 1
		if !s.OK {
			js.Failed++
			if s.Error != nil {
				js.Errors = append(js.Errors, &CallError{Job: id, Task: m.Task, Call: i, Kind: s.Error.Kind, Message: s.Error.Message,
					Stack: s.Error.Stack, Attempts: s.Attempt + 1, Worker: s.Worker, Log: s.LogTail, LogKey: s.Log})
			}
		}
		if s.Started == 0 {
			continue
		}
		c := callStats(i, s, m.Created)
		if c.Finished.After(last) {
			last = c.Finished
		}
		js.PerCall = append(js.PerCall, c)
	}
	js.Wall = last.Sub(m.Created)
	return js
}

// Summary reads the driver's summary of the job (requests, attempts,
// billing), when it wrote one, into js.
func (w *JobWatcher) Summary(ctx context.Context, js *JobStats) {
	w.gets.Add(1)
	if b, err := blob.ReadAll(ctx, w.st, job.SummaryKey(w.m.Job)); err == nil {
		var sum JobStats
		if json.Unmarshal(b, &sum) == nil {
			js.Requests, js.DriverRequests, js.Billing = sum.Requests, sum.DriverRequests, sum.Billing
			js.Attempts, js.Retried, js.Speculative = sum.Attempts, sum.Retried, sum.Speculative
		}
	}
}

// JobIDs lists the jobs in a store, from their manifests, in key order
// (job IDs begin with their creation time).
func JobIDs(ctx context.Context, st blob.Store) ([]string, error) {
	var ids []string
	for a, err := range st.List(ctx, job.JobsRoot) {
		if err != nil {
			return nil, err
		}
		if rest, ok := strings.CutSuffix(strings.TrimPrefix(a.Key, job.JobsRoot), "/"+job.ManifestName); ok && !strings.Contains(rest, "/") {
			ids = append(ids, rest)
		}
	}
	return ids, nil
}

// JobState says what became of a job, from its drivers' records: "done",
// "failed" (done with failed calls), "cancelled" (its driver ended it
// before every call ran: another program may attach to it and run the
// rest), "running" (a driver's heartbeat is fresh), "orphaned" (its
// drivers died: another program may attach to it), or "unknown" (no
// driver record); and how many calls are done.
func JobState(ctx context.Context, st blob.Store, m job.Manifest) (state string, done int, err error) {
	drivers, err := job.ReadDrivers(ctx, st, m.Job)
	if err != nil {
		return "", 0, err
	}
	if s, d, ok := StateOf(m, drivers, -1, time.Now()); ok {
		return s, d, nil
	}
	keys, err := blob.Keys(ctx, st, job.StatusPrefix(m.Job))
	if err != nil {
		return "", 0, err
	}
	s, d, _ := StateOf(m, drivers, len(keys), time.Now())
	return s, d, nil
}

// StateOf is JobState from a job's driver records and its count of calls
// with a status (done < 0: not known; ok is then false when the count is
// needed, for a job its drivers do not say is done).
func StateOf(m job.Manifest, drivers []job.Driver, done int, now time.Time) (state string, doneOut int, ok bool) {
	if n := len(drivers); n > 0 {
		last := drivers[n-1]
		switch {
		case last.State == job.StateDone && last.Failed > 0:
			return "failed", last.Done, true
		case last.State == job.StateDone:
			return "done", last.Done, true
		case last.State == job.StateCancelled:
			return "cancelled", last.Done, true
		}
	}
	if done < 0 {
		return "", 0, false
	}
	switch {
	case len(drivers) == 0 && done == m.Calls:
		return "done", done, true // a job of an earlier version
	case len(drivers) == 0:
		return "unknown", done, true
	}
	for _, d := range drivers {
		if d.Live(now) {
			return "running", done, true
		}
	}
	return "orphaned", done, true
}
