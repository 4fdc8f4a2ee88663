package worker

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wrenml/wren/job"
	"golang.org/x/sync/semaphore"
)

// Environment variables a local worker process is started with.
const (
	// EnvMode selects the worker mode of a re-executed binary ("local").
	EnvMode = "WREN_WORKER"
	// EnvID names the worker ("local-3").
	EnvID = "WREN_WORKER_ID"
)

// File descriptors of the pipes between a driver and a local worker process.
const (
	fdIn  = 3 // invocations, one JSON object a line, driver -> worker
	fdOut = 4 // hello and replies, one JSON object a line, worker -> driver
)

// LocalOptions configure the local process backend. Zero values take the
// documented defaults.
type LocalOptions struct {
	// Parallelism is the number of worker processes; 0 means runtime.NumCPU().
	Parallelism int
	// Executable is the worker binary; "" means os.Executable(), the driver's
	// own binary, whose main (or TestMain) must call wren.Init first.
	Executable string
	// Env is added to the driver's environment for the workers.
	Env []string
	// Output receives the workers' stdout and stderr; nil means os.Stderr.
	Output io.Writer
	// StartTimeout bounds a worker's start-up handshake; 0 means 60s.
	StartTimeout time.Duration
	// Logger receives worker start and exit events; nil means slog.Default().
	Logger *slog.Logger
}

// Local runs invocations in worker processes re-executed from the driver's
// binary: real isolation, so a crash, a panic or a SIGKILL takes one
// worker's invocations, not the driver. Processes are started on demand,
// reused, and replaced when they die or are killed.
//
// Each process computes one call at a time. When it has computed the last
// call of an invocation it tells the driver, which may send the next
// invocation while the process still writes the previous outputs and
// statuses: store latency does not idle a CPU, and no invocation ever waits
// behind a long call on a busy process. It is safe for concurrent use.
type Local struct {
	opts   LocalOptions
	sem    *semaphore.Weighted
	nextID atomic.Int64

	mu        sync.Mutex
	procs     []*proc // live processes; a process that dies is removed at once
	starting  int
	failures  int           // consecutive failed starts
	changed   chan struct{} // closed and replaced when a slot frees up
	closed    bool
	all       map[*proc]struct{} // every process started and not yet reaped
	reaped    sync.WaitGroup
	startedN  int
	replacedN int
}

// Depth is the number of invocations a local worker process holds at once:
// one computing, the others writing.
const Depth = 2

// ExitNoInit is the exit status of a process started as a worker whose main
// reached a driver entry point (wren.NewExecutor) without calling wren.Init
// first. The driver reports it at once instead of starting another worker.
const ExitNoInit = 87

// closeGrace is how long Close lets worker processes exit on their own.
const closeGrace = time.Second

// maxStartFailures is how many worker starts in a row may fail (the process
// killed while it started, no hello in time) before Lease gives up.
const maxStartFailures = 5

var _ Backend = (*Local)(nil)

// NewLocal returns a local process backend; no process starts until the
// first Invoke.
func NewLocal(opts LocalOptions) (*Local, error) {
	if opts.Parallelism <= 0 {
		opts.Parallelism = runtime.NumCPU()
	}
	if opts.Executable == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("worker: find own executable: %w", err)
		}
		opts.Executable = exe
	}
	if opts.Output == nil {
		opts.Output = os.Stderr
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 60 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	return &Local{
		opts:    opts,
		sem:     semaphore.NewWeighted(int64(opts.Parallelism * Depth)),
		changed: make(chan struct{}),
		all:     map[*proc]struct{}{},
	}, nil
}

// Name implements Backend.
func (l *Local) Name() string { return "local" }

// Parallelism implements Backend: the number of worker processes.
func (l *Local) Parallelism() int { return l.opts.Parallelism }

// Slots implements Backend: Parallelism x Depth.
func (l *Local) Slots() int { return l.opts.Parallelism * Depth }

// LocalStats counts worker processes over the backend's life.
type LocalStats struct {
	// Running is the number of live worker processes.
	Running int
	// Started is the number of processes started (and that said hello).
	Started int
	// Replaced is the number of processes that died or were killed while
	// the backend was open; each is replaced on the next invocation.
	Replaced int
	// PIDs are the process IDs of the live workers.
	PIDs []int
}

// Stats returns the backend's process counts. It is safe for concurrent use.
func (l *Local) Stats() LocalStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := LocalStats{Running: len(l.procs), Started: l.startedN, Replaced: l.replacedN}
	for _, p := range l.procs {
		st.PIDs = append(st.PIDs, p.cmd.Process.Pid)
	}
	return st
}

type proc struct {
	name    string
	cmd     *exec.Cmd
	in      *os.File // our end of fdIn
	writeMu sync.Mutex
	exited  chan struct{}
	waitErr error

	mu          sync.Mutex // guards the fields below
	inflight    int
	busy        bool // computing an invocation
	seq         uint64
	waiting     map[uint64]chan localReply
	dead        bool
	interrupted string // why the driver killed it for another invocation's sake, if it did
	broken      string // why the driver stopped reading it (an unreadable reply), if it did
}

// kill stops the process. A non-empty interrupt records that the driver
// killed it for a reason of one invocation's, so that the others it held
// fail with ErrInterrupted rather than ErrWorkerDied.
func (p *proc) kill(interrupt string) {
	p.mu.Lock()
	if p.interrupted == "" {
		p.interrupted = interrupt
	}
	p.mu.Unlock()
	p.cmd.Process.Kill()
	p.in.Close()
}

// exitReason waits briefly for the process to end and describes how it did.
func (p *proc) exitReason() string {
	select {
	case <-p.exited:
	case <-time.After(2 * time.Second):
		p.kill("")
		<-p.exited
		return "closed its pipe (killed)"
	}
	p.mu.Lock()
	broken := p.broken
	p.mu.Unlock()
	if broken != "" {
		return broken
	}
	if p.waitErr != nil {
		return p.waitErr.Error()
	}
	return "exited with status 0"
}

// Invoke implements Backend: it runs inv in a worker process, starting one
// if needed. If ctx ends first the process is killed; another invocation it
// held then fails with ErrInterrupted.
func (l *Local) Invoke(ctx context.Context, inv *job.Invocation) (*job.Reply, error) {
	lease, err := l.Lease(ctx)
	if err != nil {
		return nil, err
	}
	inv.Dispatched = time.Now().UnixNano() // after any wait for a worker
	return lease.Invoke(ctx, inv)
}

// Lease implements Leaser: it waits for a worker process that can take an
// invocation (starting one if fewer than Parallelism run) and reserves it.
// A process that dies is forgotten at once and replaced here; a start that
// fails because the new process was killed is tried again (up to 5 times in
// a row). A binary that is not a wren worker fails at once with ErrNotWorker.
func (l *Local) Lease(ctx context.Context) (Lease, error) {
	if err := l.sem.Acquire(ctx, 1); err != nil {
		return nil, err
	}
	p, err := l.pick(ctx)
	if err != nil {
		l.sem.Release(1)
		return nil, err
	}
	return &localLease{l: l, p: p}, nil
}

type localLease struct {
	l    *Local
	p    *proc
	once sync.Once
}

func (ls *localLease) Release() {
	ls.once.Do(func() {
		ls.l.release(ls.p)
		ls.l.sem.Release(1)
	})
}

func (ls *localLease) Invoke(ctx context.Context, inv *job.Invocation) (*job.Reply, error) {
	defer ls.Release()
	l, p := ls.l, ls.p
	msg, err := json.Marshal(inv)
	if err != nil {
		return nil, fmt.Errorf("worker: encode invocation: %w", err)
	}
	p.mu.Lock()
	p.seq++
	seq := p.seq
	ch := make(chan localReply, 1)
	p.waiting[seq] = ch
	dead := p.dead
	p.mu.Unlock()
	if dead {
		return nil, l.died(p)
	}
	line := fmt.Appendf(nil, "%d ", seq)
	line = append(append(line, msg...), '\n')
	p.writeMu.Lock()
	_, werr := p.in.Write(line)
	p.writeMu.Unlock()
	if werr != nil {
		p.kill("")
		return nil, l.died(p)
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return nil, l.died(p)
		}
		if r.Exiting {
			p.kill("exited to stop a function that ignored its timeout")
		}
		if r.Err != "" {
			return nil, fmt.Errorf("worker: %s: %s", p.name, r.Err)
		}
		return &r.Reply, nil
	case <-ctx.Done():
		p.kill(fmt.Sprintf("killed by the driver: %v", context.Cause(ctx)))
		// Return only once the process is gone: nothing it does can reach
		// the store after the caller learns the invocation ended.
		<-p.exited
		return nil, fmt.Errorf("worker: %s (pid %d) killed: %w", p.name, p.cmd.Process.Pid, context.Cause(ctx))
	}
}

// died describes the end of a process for one of its invocations.
func (l *Local) died(p *proc) error {
	reason := p.exitReason()
	p.mu.Lock()
	interrupted := p.interrupted
	p.mu.Unlock()
	if interrupted != "" {
		return fmt.Errorf("%w: %s (pid %d) %s", ErrInterrupted, p.name, p.cmd.Process.Pid, interrupted)
	}
	return fmt.Errorf("%w: %s (pid %d) %s", ErrWorkerDied, p.name, p.cmd.Process.Pid, reason)
}

type localReply struct {
	job.Reply
	Seq     uint64 `json:"seq"`
	Free    bool   `json:"free,omitempty"` // computing is over; writes follow
	Err     string `json:"err,omitempty"`
	Exiting bool   `json:"exiting,omitempty"`
}

type hello struct {
	Hello string `json:"hello"`
	PID   int    `json:"pid"`
}

// ErrNotWorker reports a worker binary that does not serve as a wren worker:
// its main does not call wren.Init first, or it is another program.
var ErrNotWorker = errors.New("worker: the binary did not start as a wren worker")

// pick returns a process with a free slot, preferring an idle one and
// starting a new one while fewer than Parallelism run.
func (l *Local) pick(ctx context.Context) (*proc, error) {
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return nil, errClosedLocal
		}
		var best *proc
		bestN := 0
		for _, p := range l.procs {
			p.mu.Lock()
			n, ok := p.inflight, !p.dead && !p.busy && p.inflight < Depth
			p.mu.Unlock()
			if ok && (best == nil || n < bestN) {
				best, bestN = p, n
			}
		}
		if (best == nil || bestN > 0) && len(l.procs)+l.starting < l.opts.Parallelism {
			l.starting++
			failures := l.failures
			l.mu.Unlock()
			if failures > 0 { // back off a little after a failed start
				select {
				case <-time.After(time.Duration(failures) * 50 * time.Millisecond):
				case <-ctx.Done():
				}
			}
			p, err := l.start(ctx)
			l.mu.Lock()
			l.starting--
			switch {
			case err == nil && l.closed:
				// Closed while the process started: it must not outlive Close.
				l.notifyLocked()
				l.mu.Unlock()
				p.kill("")
				<-p.exited
				return nil, errClosedLocal
			case err == nil:
				l.failures = 0
				l.startedN++
				p.inflight, p.busy = 1, true
				l.procs = append(l.procs, p)
				l.watch(p)
				l.notifyLocked()
				l.mu.Unlock()
				return p, nil
			}
			l.failures++
			failures = l.failures
			l.notifyLocked()
			l.mu.Unlock()
			if errors.Is(err, ErrNotWorker) || ctx.Err() != nil || failures >= maxStartFailures {
				return nil, err
			}
			l.opts.Logger.Warn("worker start failed; trying again", "err", err, "failures", failures)
			continue
		}
		if best != nil {
			best.mu.Lock()
			best.inflight++
			best.busy = true
			best.mu.Unlock()
			l.mu.Unlock()
			return best, nil
		}
		changed := l.changed
		l.mu.Unlock()
		select { // every process is starting or full: wait for a change
		case <-changed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

var errClosedLocal = errors.New("worker: local backend is closed")

// watch forgets p as soon as it dies, so that a new process takes its place.
// Called with l.mu held.
func (l *Local) watch(p *proc) {
	go func() {
		<-p.exited
		l.mu.Lock()
		defer l.mu.Unlock()
		if i := slices.Index(l.procs, p); i >= 0 {
			l.procs = slices.Delete(l.procs, i, i+1)
			if !l.closed {
				l.replacedN++
			}
			l.opts.Logger.Debug("worker exited", "worker", p.name, "pid", p.cmd.Process.Pid, "err", p.waitErr)
		}
		l.notifyLocked()
	}()
}

func (l *Local) notifyLocked() {
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *Local) release(p *proc) {
	l.mu.Lock()
	p.mu.Lock()
	p.inflight--
	if p.inflight == 0 {
		p.busy = false
	}
	p.mu.Unlock()
	l.notifyLocked()
	l.mu.Unlock()
}

func (l *Local) start(ctx context.Context) (*proc, error) {
	name := "local-" + strconv.FormatInt(l.nextID.Add(1), 10)
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("worker: start %s: %w", name, err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, fmt.Errorf("worker: start %s: %w", name, err)
	}
	cmd := exec.Command(l.opts.Executable)
	cmd.Env = append(append(os.Environ(), l.opts.Env...), EnvMode+"=local", EnvID+"="+name)
	cmd.Stdout = l.opts.Output
	cmd.Stderr = l.opts.Output
	cmd.ExtraFiles = []*os.File{inR, outW}
	setProcAttr(cmd)
	if err := cmd.Start(); err != nil {
		inR.Close()
		inW.Close()
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("worker: start %s (%s): %w", name, l.opts.Executable, err)
	}
	inR.Close()
	outW.Close()
	p := &proc{name: name, cmd: cmd, in: inW, exited: make(chan struct{}), waiting: map[uint64]chan localReply{}}
	helloCh := make(chan bool, 1)
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		cmd.Process.Kill()
		inW.Close()
		outR.Close()
		cmd.Wait()
		return nil, errClosedLocal
	}
	l.all[p] = struct{}{}
	l.reaped.Add(1)
	l.mu.Unlock()
	go func() {
		defer l.reaped.Done()
		p.waitErr = cmd.Wait()
		close(p.exited)
		l.mu.Lock()
		delete(l.all, p)
		l.mu.Unlock()
	}()
	go p.read(outR, helloCh, l.freed)
	timer := time.NewTimer(l.opts.StartTimeout)
	defer timer.Stop()
	select {
	case ok := <-helloCh:
		if !ok {
			reason := p.exitReason()
			var ee *exec.ExitError
			switch {
			case errors.As(p.waitErr, &ee) && ee.ExitCode() == ExitNoInit:
				return nil, fmt.Errorf("%w: %s (%s) reached a driver entry point: main (or TestMain) must call wren.Init() first", ErrNotWorker, name, l.opts.Executable)
			case errors.As(p.waitErr, &ee) && ee.ExitCode() < 0:
				// Killed by a signal while it started: a fault, not a bad binary.
				return nil, fmt.Errorf("%w: %s (%s) died while starting: %s", ErrWorkerDied, name, l.opts.Executable, reason)
			}
			return nil, fmt.Errorf("%w: %s (%s) %s without saying hello; main (or TestMain) must call wren.Init() first", ErrNotWorker, name, l.opts.Executable, reason)
		}
	case <-timer.C:
		p.kill("")
		<-p.exited
		return nil, fmt.Errorf("%w: %s (%s) sent no hello within %v; does main (or TestMain) call wren.Init() first?", ErrWorkerDied, name, l.opts.Executable, l.opts.StartTimeout)
	case <-ctx.Done():
		p.kill("")
		<-p.exited
		return nil, ctx.Err()
	}
	l.opts.Logger.Debug("worker started", "worker", name, "pid", cmd.Process.Pid)
	return p, nil
}

// freed is told that a process finished computing and can take more.
func (l *Local) freed(p *proc) {
	l.mu.Lock()
	p.mu.Lock()
	p.busy = false
	p.mu.Unlock()
	l.notifyLocked()
	l.mu.Unlock()
}

// read delivers the process's replies to the invocations waiting for them.
// A line it cannot read ends the process: the invocations it held fail with
// ErrWorkerDied and count as failed attempts.
func (p *proc) read(r *os.File, hello chan<- bool, freed func(*proc)) {
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 256<<20)
	first := true
	for sc.Scan() {
		if first {
			var h struct{ Hello string }
			ok := json.Unmarshal(sc.Bytes(), &h) == nil && h.Hello == "wren"
			hello <- ok
			first = false
			if !ok {
				break
			}
			continue
		}
		var rep localReply
		if err := json.Unmarshal(sc.Bytes(), &rep); err != nil {
			line := sc.Bytes()
			if len(line) > 80 {
				line = line[:80]
			}
			p.mu.Lock()
			p.broken = fmt.Sprintf("sent an unreadable reply %q (killed)", line)
			p.mu.Unlock()
			p.kill("")
			break
		}
		if rep.Free {
			freed(p)
			continue
		}
		p.mu.Lock()
		ch := p.waiting[rep.Seq]
		delete(p.waiting, rep.Seq)
		p.mu.Unlock()
		if ch != nil {
			ch <- rep
		}
	}
	if first {
		hello <- false
	}
	if err := sc.Err(); err != nil {
		p.mu.Lock()
		if p.broken == "" {
			p.broken = fmt.Sprintf("sent an unreadable reply: %v (killed)", err)
		}
		p.mu.Unlock()
		p.kill("")
	}
	p.mu.Lock()
	p.dead = true
	for seq, ch := range p.waiting {
		close(ch)
		delete(p.waiting, seq)
	}
	p.mu.Unlock()
}

// Close implements Backend: it closes every worker process's pipe, kills
// those still starting or still running a second later, and waits until
// each has exited. Invocations still running fail; Lease and Invoke fail
// afterwards.
func (l *Local) Close() error {
	l.mu.Lock()
	l.closed = true
	var running, starting []*proc
	for p := range l.all {
		if slices.Contains(l.procs, p) {
			running = append(running, p)
		} else {
			starting = append(starting, p)
		}
	}
	l.notifyLocked()
	l.mu.Unlock()
	for _, p := range starting {
		p.kill("the backend closed")
	}
	// Workers that said hello get a moment to finish their writes and exit
	// on their own when their pipe closes; then they are killed.
	for _, p := range running {
		p.writeMu.Lock()
		p.in.Close()
		p.writeMu.Unlock()
	}
	grace := time.After(closeGrace)
	for _, p := range running {
		select {
		case <-p.exited:
		case <-grace:
			p.kill("the backend closed")
		}
	}
	l.reaped.Wait()
	return nil
}

// ServeLocal is the worker side of the local backend: it answers the driver's
// invocations on the inherited pipes until the driver closes them. Calls are
// computed one at a time, in order; each call's output and status are
// written by a second goroutine while the next call computes. wren.Init
// calls it when the process was started as a local worker.
func ServeLocal(ctx context.Context, lookup Lookup) error {
	in := os.NewFile(fdIn, "wren-in")
	out := os.NewFile(fdOut, "wren-out")
	if in == nil || out == nil {
		return errors.New("worker: not started by a wren driver (no pipes on fds 3 and 4)")
	}
	env := &Env{Name: os.Getenv(EnvID), capture: newCapturer(), logs: map[int][]byte{}}
	w := bufio.NewWriter(out)
	var sendErr error
	var sendMu sync.Mutex
	send := func(v any) {
		sendMu.Lock()
		defer sendMu.Unlock()
		b, err := json.Marshal(v)
		if err == nil {
			w.Write(append(b, '\n'))
			err = w.Flush()
		}
		if err != nil && sendErr == nil {
			sendErr = err
		}
	}
	send(hello{Hello: "wren", PID: os.Getpid()})
	if sendErr != nil {
		return fmt.Errorf("worker: hello: %w", sendErr)
	}
	// The write pipeline: output and status writes, then replies, in order.
	wr := newQueueWriter(func() {
		// Writing waits on the store; computing is what the user waits
		// for: on a busy machine, let the computing thread go first.
		runtime.LockOSThread()
		lowerThreadPriority()
	})
	enqueue := wr.then
	defer wr.close()
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 256<<20)
	for sc.Scan() {
		var r localReply
		var inv *job.Invocation
		seqText, body, _ := bytes.Cut(sc.Bytes(), []byte(" "))
		seq, err := strconv.ParseUint(string(seqText), 10, 64)
		if err == nil {
			inv, err = job.ParseInvocation(body)
		}
		r.Seq = seq
		if err != nil {
			r.Err = err.Error()
			enqueue(func() { send(&r) })
			continue
		}
		err = run(ctx, inv, lookup, env, wr, func(rep *job.Reply) {
			r.Reply = *rep
			r.Exiting = env.Stuck()
			send(&r)
		})
		if err != nil {
			r.Err = err.Error()
			enqueue(func() { send(&r) })
		}
		if !env.Stuck() {
			send(localReply{Seq: seq, Free: true}) // ready for the next invocation
		}
		if env.Stuck() {
			return errors.New("worker: a function ignored its timeout; exiting to stop it")
		}
	}
	return sc.Err()
}
