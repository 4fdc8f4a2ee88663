package worker

import (
	"context"
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/wrenml/wren/job"
	"golang.org/x/sync/semaphore"
)

// InProcess runs invocations on goroutines of the driver's process: no
// isolation (a crash takes the driver with it) and no way to stop a function
// that ignores its context, but no process start-up either. Use it to debug
// and to test pure logic; it runs the same Run as every other backend.
type InProcess struct {
	lookup Lookup
	n      int
	sem    *semaphore.Weighted
	seq    atomic.Int64
}

var _ Backend = (*InProcess)(nil)

// NewInProcess returns a goroutine backend running up to n invocations at once
// (n <= 0 means 1) with the handlers lookup finds.
func NewInProcess(lookup Lookup, n int) *InProcess {
	if n <= 0 {
		n = 1
	}
	return &InProcess{lookup: lookup, n: n, sem: semaphore.NewWeighted(int64(n))}
}

// Name implements Backend.
func (b *InProcess) Name() string { return "inprocess" }

// Parallelism implements Backend.
func (b *InProcess) Parallelism() int { return b.n }

// Slots implements Backend: the same as Parallelism.
func (b *InProcess) Slots() int { return b.n }

// Invoke implements Backend. When ctx ends first, the goroutine is abandoned
// with its context cancelled.
func (b *InProcess) Invoke(ctx context.Context, inv *job.Invocation) (*job.Reply, error) {
	if err := b.sem.Acquire(ctx, 1); err != nil {
		return nil, err
	}
	type result struct {
		r   *job.Reply
		err error
	}
	done := make(chan result, 1)
	env := &Env{Name: "goroutine-" + strconv.FormatInt(b.seq.Add(1), 10)}
	go func() {
		defer b.sem.Release(1)
		r, err := Run(ctx, inv, b.lookup, env)
		done <- result{r, err}
	}()
	select {
	case r := <-done:
		return r.r, r.err
	case <-ctx.Done():
		return nil, fmt.Errorf("worker: %s abandoned: %w", env.Name, context.Cause(ctx))
	}
}

// Close implements Backend; it does nothing.
func (b *InProcess) Close() error { return nil }
