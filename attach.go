package wren

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/internal/retry"
	"github.com/wrenml/wren/job"
	"github.com/wrenml/wren/worker"
)

// Attach returns the Job of a map whose driver is gone (killed, out of
// memory, a laptop that slept): the calls with a status in the store are
// done, and the others are launched again from their stored inputs, with
// attempt numbers above every attempt the dead driver launched, so that
// statuses stay first-wins. Wait, Results, Stats, the progress bar and the
// timeline behave as for a job Map started; the job keeps its settings
// (chunk size, timeout, retries, speculation) unless opts give others.
//
// A job whose driver is still running it (its heartbeat is younger than
// job.StaleAfter) is refused with ErrJobRunning unless opts include
// WithForce, which takes the job over: the other driver's calls fail with
// ErrTakenOver, and the inputs it has not written yet it writes before it
// stops, which Attach waits for. A job that finished attaches with every call done. The
// task must be the one the job runs, and the program's binary the one that
// started it (WithForce accepts another). A call whose input the dead
// driver never wrote fails with KindLost.
func (t *Task[In, Out]) Attach(ctx context.Context, ex *Executor, id string, opts ...MapOption) (*Job[Out], error) {
	checkNotWorker("wren.Task.Attach")
	cfg := t.config(ex, opts)
	m, err := job.ReadManifest(ctx, ex.store, id)
	if err != nil {
		return nil, err
	}
	switch {
	case m.Task != t.name:
		return nil, fmt.Errorf("wren: job %s runs task %q, not %q", id, m.Task, t.name)
	case m.Codec != t.codec.Name():
		return nil, fmt.Errorf("wren: job %s encodes with %s, task %q with %s", id, m.Codec, t.name, t.codec.Name())
	}
	code := ex.codeHash()
	if rb, ok := ex.backend.(worker.Remote); ok {
		if code, err = rb.Prepare(ctx, ex.store); err != nil {
			return nil, fmt.Errorf("wren: job %s: %w", id, err)
		}
	}
	if code != m.Code && !cfg.force {
		return nil, fmt.Errorf("wren: job %s was started by binary %.12s, this one is %.12s: its remaining calls would run other code (attach with wren.WithForce() to accept it)", id, m.Code, code)
	}
	if code != m.Code {
		// The workers run this binary from now on.
		if err := putRetry(ctx, ex.store, job.CodeKey(id), []byte(code), blob.PutOptions{Ephemeral: true}); err != nil {
			return nil, fmt.Errorf("wren: job %s: %w", id, err)
		}
	}
	// The job's settings, then the options given here.
	if s := m.Settings; s != nil {
		set := cfg.set
		if !set["chunk"] {
			cfg.chunkSize = max(s.ChunkSize, 1)
		}
		if !set["timeout"] {
			cfg.timeout = s.Timeout
		}
		if !set["retries"] {
			cfg.retries = max(s.Retries, 0)
		}
		if !set["retry-errors"] {
			cfg.retryErrors = s.RetryErrors
		}
		if !set["speculation"] {
			cfg.speculation, cfg.specFactor = s.Speculation, speculationFactorOf(s.SpeculationFactor)
		}
	}
	drivers, err := job.ReadDrivers(ctx, ex.store, id)
	if err != nil {
		return nil, fmt.Errorf("wren: job %s: read its drivers: %w", id, err)
	}
	epoch, ceiling := 0, 0
	var live []int // epochs of drivers running the job (taken over with force)
	for _, d := range drivers {
		if d.Epoch >= epoch {
			epoch = d.Epoch + 1
		}
		ceiling = max(ceiling, d.Ceiling)
		if d.Live(time.Now()) {
			live = append(live, d.Epoch)
		}
		if d.Live(time.Now()) && !cfg.force {
			return nil, fmt.Errorf("%w: job %s is run by pid %d on %s (heartbeat %v ago); attach with wren.WithForce() to take it over",
				ErrJobRunning, id, d.PID, d.Host, time.Since(d.Beat).Round(time.Second))
		}
	}
	st := &countingStore{Store: ex.store}
	r := newRun(ctx, ex, st, id, t.name, m.Calls, cfg)
	r.epoch = epoch
	r.submitted = m.Created
	if s := m.Settings; s != nil {
		r.maxOutput, r.inlineMax = s.MaxOutputBytes, s.MaxInlineOutput
	}
	if _, ok := ex.backend.(worker.Remote); ok {
		r.code = code
	}
	if err := r.claim(ctx); err != nil {
		r.cancel(err)
		if errors.Is(err, blob.ErrExists) {
			return nil, fmt.Errorf("%w: job %s: another driver attached first (epoch %d)", ErrJobRunning, id, epoch)
		}
		return nil, fmt.Errorf("wren: job %s: record the driver: %w", id, err)
	}
	go r.heartbeat()
	if err := r.restore(ctx, ceiling, live); err != nil {
		r.cancel(err)
		r.stopHeartbeat()
		if werr := r.writeRecord(context.WithoutCancel(ctx), job.StateDetached, 0, 0); werr != nil {
			r.log.Warn("write the driver's record", "err", werr)
		}
		return nil, err
	}
	r.bar = newProgress(cfg.progress, ex.opts.ProgressOutput, m.Calls, t.name)
	r.bar.add(m.Calls - r.remaining)
	if err := ex.track(r); err != nil {
		r.abort(err)
		r.stopHeartbeat()
		return nil, err
	}
	r.log.Info("attached to the job", "epoch", epoch, "done", m.Calls-r.remaining, "remaining", r.remaining, "first_attempt", ceiling)
	r.start()
	return &Job[Out]{r: r, task: &taskInfo{name: t.name, codec: t.codec}}, nil
}

// restore rebuilds an attached job's state from the store: the statuses of
// the calls that are done, the inputs of the others, and attempt numbers
// from ceiling on. Inputs missing while a driver taken over (live, its
// epochs) may still be writing them are read again once it has stopped.
func (r *run) restore(ctx context.Context, ceiling int, live []int) error {
	var keys []string
	err := retry.Store(ctx, func(ctx context.Context) (err error) {
		keys, err = blob.Keys(ctx, r.store, job.StatusPrefix(r.id))
		return err
	})
	if err != nil {
		return fmt.Errorf("wren: job %s: list statuses: %w", r.id, err)
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(64)
	for _, k := range keys {
		c, ok := job.ParseCallName(strings.TrimPrefix(k, job.StatusPrefix(r.id)))
		if !ok || c >= r.n {
			continue
		}
		g.Go(func() error {
			s, ok, err := readStatus(gctx, r.store, r.id, c)
			if err != nil {
				return fmt.Errorf("wren: job %s: %w", r.id, err)
			}
			if ok {
				r.mu.Lock()
				ceiling = max(ceiling, s.Attempt+1)
				r.calls[c].next = int32(s.Attempt + 1)
				r.mu.Unlock()
				r.complete(c, &s)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if err := r.readInputs(ctx); err != nil {
		return err
	}
	if len(live) > 0 && r.inputsMissing() {
		if err := r.awaitDrivers(ctx, live); err != nil {
			return err
		}
		if err := r.readInputs(ctx); err != nil {
			return err
		}
	}
	r.mu.Lock()
	var lost []int
	for c := range r.n {
		cs := &r.calls[c]
		if cs.done() {
			continue
		}
		cs.next = int32(ceiling)
		if !r.inputWritten(c) {
			lost = append(lost, c)
		}
	}
	r.mu.Unlock()
	r.ceilMu.Lock()
	r.ceiling = int32(ceiling)
	r.ceilMu.Unlock()
	for _, c := range lost {
		r.finish(c, nil, &CallError{Kind: job.KindLost, Message: "its input is not in the store: the driver that started the job died before writing it"})
	}
	return nil
}

// inputsMissing reports a call not done whose input is not in the store.
func (r *run) inputsMissing() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for c := range r.n {
		if !r.calls[c].done() && !r.inputWritten(c) {
			return true
		}
	}
	return false
}

// awaitDrivers waits until the drivers of the given epochs have stopped:
// their records say so, or their heartbeats lapsed (job.StaleAfter).
func (r *run) awaitDrivers(ctx context.Context, epochs []int) error {
	r.log.Info("waiting for the driver taken over to write the inputs it holds", "epochs", epochs)
	for {
		ds, err := job.ReadDrivers(ctx, r.store, r.id)
		if err != nil {
			return fmt.Errorf("wren: job %s: read its drivers: %w", r.id, err)
		}
		running := false
		for _, d := range ds {
			if slices.Contains(epochs, d.Epoch) && d.Live(time.Now()) {
				running = true
			}
		}
		if !running {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(heartbeatEvery, time.Second)):
		}
	}
}
