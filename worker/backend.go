package worker

import (
	"context"
	"errors"
	"time"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/job"
)

// Handler runs one call on encoded bytes: decode the input, run the user's
// function, encode the output.
type Handler func(ctx context.Context, in []byte) ([]byte, error)

// Lookup finds the handler registered under a task name.
type Lookup func(task string) (Handler, bool)

// ErrWorkerDied reports that a worker process or sandbox ended before it
// answered; the calls it held have no status and will be retried.
var ErrWorkerDied = errors.New("worker: worker died")

// ErrPermanent marks a backend error that no retry can fix (a missing
// function, a denied permission, a call timeout longer than the function's):
// the driver stops the job with it instead of retrying its calls.
var ErrPermanent = errors.New("worker: permanent backend error")

// ErrInterrupted reports an invocation stopped by the backend for a reason
// of another invocation's (its process was killed because that one was
// cancelled or timed out). The driver retries its calls without counting a
// failure.
var ErrInterrupted = errors.New("worker: interrupted")

// Backend runs invocations somewhere: worker processes, goroutines, Lambda.
// Implementations are safe for concurrent use.
type Backend interface {
	// Invoke runs inv and returns when the worker has answered, or with an
	// error when it could not (the worker died, the context ended). When ctx
	// ends, the backend stops the worker it was using.
	Invoke(ctx context.Context, inv *job.Invocation) (*job.Reply, error)
	// Parallelism is the number of calls the backend computes at once.
	Parallelism() int
	// Slots is the number of invocations the backend accepts at once
	// (Parallelism, or more when workers overlap writes with computing).
	Slots() int
	// Name identifies the backend in logs and stats ("local", "inprocess", "lambda").
	Name() string
	// Close stops every worker.
	Close() error
}

// Remote is a Backend whose workers run elsewhere (AWS Lambda) and fetch
// the job's binary from the store.
type Remote interface {
	Backend
	// Prepare is called before a job's first invocation: it checks that the
	// workers can reach the store st, makes the binary that runs the job's
	// calls available in it (job.CodeKey), and returns the binary's SHA-256.
	Prepare(ctx context.Context, st blob.Store) (codeHash string, err error)
}

// Leaser is a Backend that can reserve a worker before an invocation is
// ready, so that a driver hands out its queue in order, each invocation to
// the first free worker.
type Leaser interface {
	Backend
	// Lease waits for a free worker and reserves it.
	Lease(ctx context.Context) (Lease, error)
}

// Lease is a reserved worker: Invoke runs one invocation on it and frees
// it; Release frees it unused. Either may be called once; further calls do
// nothing.
type Lease interface {
	Invoke(ctx context.Context, inv *job.Invocation) (*job.Reply, error)
	Release()
}

// CallLimiter is a Backend that stops any call running past a limit of its
// own (AWS Lambda: the function's timeout). Work longer than the limit
// must be cut into calls that return and continue (sgd's slices).
type CallLimiter interface {
	Backend
	// CallLimit is the longest a call can run on the backend.
	CallLimit(ctx context.Context) (time.Duration, error)
}

// Placement is a remote Backend that says where its workers run, for a
// caller that hands them addresses (a parameter server on loopback): a
// Remote backend without it is taken to run them on other machines.
type Placement interface {
	Backend
	// OnThisMachine reports that the workers share this machine's network
	// (Lambda emulators on loopback), so that loopback addresses reach them.
	OnThisMachine() bool
}

// WorkersOnThisMachine reports whether b's workers share this machine:
// local and in-process backends do; a Remote one does when it says so
// (Placement).
func WorkersOnThisMachine(b Backend) bool {
	if p, ok := b.(Placement); ok {
		return p.OnThisMachine()
	}
	_, remote := b.(Remote)
	return !remote
}
