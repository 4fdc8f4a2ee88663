package wren

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/blob/fileblob"
	_ "github.com/wrenml/wren/blob/memblob" // mem:// URLs for tests
	"github.com/wrenml/wren/job"
	"github.com/wrenml/wren/worker"
)

// DefaultStore is the store used when Options.Store is empty: a directory
// in the working directory.
const DefaultStore = "./.wren"

// ProgressMode says when a map draws a progress bar.
type ProgressMode int

const (
	// ProgressAuto draws a bar when the progress output is a terminal.
	ProgressAuto ProgressMode = iota
	// ProgressOn always draws a bar.
	ProgressOn
	// ProgressOff never draws a bar.
	ProgressOff
)

// Options configure an Executor. The zero value is a working configuration:
// local worker processes, one per CPU, and a store in ./.wren. Every numeric
// field follows one rule: 0 takes the documented default, -1 (any negative
// value) turns the feature off; Map's per-job options (WithRetries, ...)
// mean the same as the fields they override.
type Options struct {
	// Backend runs invocations; nil means local worker processes
	// (worker.NewLocal) with Parallelism processes. The executor closes a
	// backend it created, and one given here only with CloseBackend.
	Backend worker.Backend
	// CloseBackend makes Close close the Backend given.
	CloseBackend bool
	// Store is the blob store's URL (file:///abs/dir, s3://bucket/prefix) or
	// a directory path; "" means DefaultStore. Ignored when BlobStore is set.
	Store string
	// BlobStore is an already opened store; the executor does not close it.
	// Workers reach it through BlobStore.URL().
	BlobStore blob.Store
	// Parallelism is the number of local worker processes; 0 means
	// runtime.NumCPU(). With a Backend given, a positive value caps the
	// invocations in flight across all jobs of the executor instead.
	Parallelism int
	// Timeout bounds each call; 0 means the default, no limit (-1 too). A
	// call past its timeout is
	// stopped (its worker process killed if the function ignores its context)
	// and fails with KindTimeout. Map's WithTimeout overrides it per job.
	Timeout time.Duration
	// Retries is how many more attempts a call gets after its worker died,
	// vanished or could not record the result; 0 means DefaultRetries (2),
	// -1 means none. Errors returned by the function are retried only with
	// RetryErrors.
	Retries int
	// RetryErrors retries calls whose function returned an error or panicked
	// (functions must be idempotent), up to Retries times.
	RetryErrors bool
	// ChunkSize is the number of calls sent in one invocation; 0 (or -1)
	// means 1.
	ChunkSize int
	// Speculation relaunches stragglers: once half the calls are done, a
	// call running longer than SpeculationFactor times the median gets a
	// second attempt, and the first to finish wins.
	Speculation bool
	// SpeculationFactor is the straggler threshold; 0 means
	// DefaultSpeculationFactor (3).
	SpeculationFactor float64
	// MaxInputBytes caps an encoded input; 0 means DefaultMaxPayload
	// (256 MiB), -1 no cap.
	MaxInputBytes int64
	// MaxOutputBytes caps an encoded output; 0 means DefaultMaxPayload
	// (256 MiB), -1 no cap. A larger output fails its call with KindTooLarge.
	MaxOutputBytes int64
	// MaxPackedInput is the largest encoded input packed with others into
	// one object (a map of small inputs then costs one put per pack, and
	// each call reads its byte range); 0 means DefaultMaxPackedInput
	// (1 MiB), -1 gives every input its own object.
	MaxPackedInput int64
	// MaxInlineOutput is the largest encoded output that travels inside its
	// call's status (one put per call, and no read by the driver); 0 means
	// DefaultMaxInlineOutput (64 KiB), -1 gives every output its own object.
	MaxInlineOutput int64
	// Progress says when to draw a progress bar (default ProgressAuto).
	Progress ProgressMode
	// ProgressOutput receives the bar; nil means os.Stderr.
	ProgressOutput io.Writer
	// Logger receives job events with job, task, call and worker attributes;
	// nil means slog.Default().
	Logger *slog.Logger
}

// Defaults of the Options fields left at 0.
const (
	DefaultRetries           = 2
	DefaultSpeculationFactor = 3.0
	DefaultMaxPayload        = 256 << 20
	DefaultMaxPackedInput    = 1 << 20
	DefaultMaxInlineOutput   = 64 << 10
)

// withDefaults is the one place where Options' zero values and negative
// values get their meaning.
func (o Options) withDefaults() Options {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ProgressOutput == nil {
		o.ProgressOutput = os.Stderr
	}
	o.Timeout = max(o.Timeout, 0)
	o.Retries = retriesOf(o.Retries)
	o.ChunkSize = max(o.ChunkSize, 1)
	o.SpeculationFactor = speculationFactorOf(o.SpeculationFactor)
	o.MaxInputBytes = payloadCapOf(o.MaxInputBytes)
	o.MaxOutputBytes = payloadCapOf(o.MaxOutputBytes)
	o.MaxPackedInput = sizeOf(o.MaxPackedInput, DefaultMaxPackedInput)
	o.MaxInlineOutput = max(sizeOf(o.MaxInlineOutput, DefaultMaxInlineOutput), 0)
	return o
}

func retriesOf(n int) int {
	switch {
	case n == 0:
		return DefaultRetries
	case n < 0:
		return 0
	}
	return n
}

func speculationFactorOf(f float64) float64 {
	if f <= 0 {
		return DefaultSpeculationFactor
	}
	return f
}

// sizeOf applies the rule to a size threshold: 0 is def, -1 (any
// negative value) is -1, off.
func sizeOf(n, def int64) int64 {
	switch {
	case n == 0:
		return def
	case n < 0:
		return -1
	}
	return n
}

func payloadCapOf(n int64) int64 {
	switch {
	case n == 0:
		return DefaultMaxPayload
	case n < 0:
		return math.MaxInt64
	}
	return n
}

// Executor runs tasks' calls on a backend, with a blob store as the only
// state shared with the workers. It is safe for concurrent use; several jobs
// may run at once and share its parallelism.
type Executor struct {
	opts       Options
	backend    worker.Backend
	ownBackend bool
	store      blob.Store
	ownStore   bool
	sem        *semaphore.Weighted
	codeHash   func() string

	mu     sync.Mutex
	runs   map[*run]struct{}
	closed bool

	bg       sync.WaitGroup // background upkeep (sweeping temporaries)
	bgCancel context.CancelFunc
}

// swept remembers the stores whose stale temporaries this process swept.
var swept sync.Map

// sweepTemp removes, once per process and store, the temporaries of
// writers that died (blob.TempSweeper), in the background.
func (e *Executor) sweepTemp(ctx context.Context) {
	ts, ok := e.store.(blob.TempSweeper)
	if !ok {
		return
	}
	if _, done := swept.LoadOrStore(e.store.URL(), true); done {
		return
	}
	ctx, e.bgCancel = context.WithCancel(context.WithoutCancel(ctx))
	e.bg.Go(func() {
		n, err := ts.SweepTemp(ctx, blob.StaleTemp)
		switch {
		case err != nil && ctx.Err() == nil:
			e.opts.Logger.Warn("wren: sweep stale temporaries", "store", e.store.URL(), "err", err)
		case n > 0:
			e.opts.Logger.Info("wren: removed stale temporaries of dead writers", "store", e.store.URL(), "files", n)
		}
	})
}

// errClosed fails the calls of jobs still running when the executor closes.
var errClosed = errors.New("wren: executor closed")

// NewExecutor opens the store and prepares the backend. It starts no worker:
// processes start on the first map.
//
// In a process started as a worker whose main did not call Init first,
// NewExecutor prints the fix and exits the process (see Init).
func NewExecutor(ctx context.Context, opts Options) (*Executor, error) {
	checkNotWorker("wren.NewExecutor")
	ex := &Executor{opts: opts.withDefaults(), runs: map[*run]struct{}{}}
	if opts.BlobStore != nil {
		ex.store = opts.BlobStore
	} else {
		s, err := OpenStore(ctx, opts.Store)
		if err != nil {
			return nil, fmt.Errorf("wren: %w", err)
		}
		ex.store, ex.ownStore = s, true
	}
	if opts.Backend != nil {
		ex.backend, ex.ownBackend = opts.Backend, opts.CloseBackend
	} else {
		b, err := worker.NewLocal(worker.LocalOptions{Parallelism: opts.Parallelism, Logger: ex.opts.Logger})
		if err != nil {
			ex.Close()
			return nil, fmt.Errorf("wren: %w", err)
		}
		ex.backend, ex.ownBackend = b, true
	}
	slots := ex.backend.Slots()
	if opts.Backend != nil && opts.Parallelism > 0 {
		slots = min(slots, opts.Parallelism)
	}
	ex.opts.Parallelism = ex.backend.Parallelism()
	ex.sem = semaphore.NewWeighted(int64(slots))
	ex.codeHash = sync.OnceValue(executableHash)
	ex.sweepTemp(ctx)
	return ex, nil
}

// OpenStore opens a store from a URL or, when s has no scheme, a directory
// path; "" means DefaultStore.
func OpenStore(ctx context.Context, s string) (blob.Store, error) {
	if s == "" {
		s = DefaultStore
	}
	if !strings.Contains(s, "://") {
		return fileblob.Open(s)
	}
	return blob.Open(ctx, s)
}

func init() {
	worker.RegisterBackend(worker.BackendType{
		Name: "inprocess",
		Doc:  "goroutines of the driver's process, for debugging (no isolation)",
		New: func(ctx context.Context, s worker.Settings, parallelism int) (worker.Backend, error) {
			if parallelism <= 0 {
				parallelism = runtime.NumCPU()
			}
			return InProcess(parallelism), nil
		},
	})
}

// InProcess returns a backend that runs calls on n goroutines of this
// process (n <= 0 means 1), for debugging and tests of pure logic. It needs
// no wren.Init, but it cannot stop a function that ignores its timeout.
func InProcess(n int) worker.Backend { return worker.NewInProcess(lookup, n) }

// Store returns the executor's blob store.
func (e *Executor) Store() blob.Store { return e.store }

// Backend returns the executor's backend.
func (e *Executor) Backend() worker.Backend { return e.backend }

// CallLimit returns the longest a call of a map with opts can run: the
// map's timeout (Options.Timeout, WithTimeout) or the backend's own limit
// (worker.CallLimiter: AWS Lambda's function timeout), whichever is
// shorter; 0 when neither limits it. Work that may take longer returns
// before it and continues in another call.
func (e *Executor) CallLimit(ctx context.Context, opts ...MapOption) (time.Duration, error) {
	limit := e.config(opts).timeout
	if cl, ok := e.backend.(worker.CallLimiter); ok {
		bl, err := cl.CallLimit(ctx)
		if err != nil {
			return 0, err
		}
		if bl > 0 && (limit <= 0 || bl < limit) {
			limit = bl
		}
	}
	return max(limit, 0), nil
}

// Parallelism returns the number of calls the executor's backend computes at once.
func (e *Executor) Parallelism() int { return e.opts.Parallelism }

// Close stops the workers of a backend the executor created and closes a
// store it opened. Jobs still running fail.
func (e *Executor) Close() error {
	e.mu.Lock()
	e.closed = true
	runs := make([]*run, 0, len(e.runs))
	for r := range e.runs {
		runs = append(runs, r)
	}
	e.mu.Unlock()
	for _, r := range runs {
		r.abort(errClosed)
	}
	// Let the jobs wrap up (their last writes) before the store closes.
	for _, r := range runs {
		select {
		case <-r.finished:
		case <-time.After(30 * time.Second):
		}
	}
	if e.bgCancel != nil {
		e.bgCancel()
	}
	e.bg.Wait()
	var err error
	if e.ownBackend && e.backend != nil {
		err = e.backend.Close()
	}
	if e.ownStore && e.store != nil {
		if cerr := e.store.Close(); err == nil {
			err = cerr
		}
	}
	return err
}

// track registers a running job; it fails if the executor is closed.
func (e *Executor) track(r *run) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return errClosed
	}
	e.runs[r] = struct{}{}
	go func() {
		<-r.finished
		e.mu.Lock()
		delete(e.runs, r)
		e.mu.Unlock()
	}()
	return nil
}

func executableHash() string {
	exe, err := os.Executable()
	if err != nil {
		return ""
	}
	h, _ := job.HashFile(exe)
	return h
}
