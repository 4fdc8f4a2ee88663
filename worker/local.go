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
	"strconv"
	"sync"
	"sync/atomic"
	"time"

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

	mu       sync.Mutex
	procs    []*proc
	starting int
	changed  chan struct{} // closed and replaced when a slot frees up
	closed   bool
}

// Depth is the number of invocations a local worker process holds at once:
// one computing, the others writing.
const Depth = 2

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
	}, nil
}

// Name implements Backend.
func (l *Local) Name() string { return "local" }

// Parallelism implements Backend: the number of worker processes.
func (l *Local) Parallelism() int { return l.opts.Parallelism }

// Slots implements Backend: Parallelism x Depth.
func (l *Local) Slots() int { return l.opts.Parallelism * Depth }

type proc struct {
	name    string
	cmd     *exec.Cmd
	in      *os.File // our end of fdIn
	writeMu sync.Mutex
	exited  chan struct{}
	waitErr error

	mu       sync.Mutex // guards the fields below
	inflight int
	busy     bool // computing an invocation
	seq      uint64
	waiting  map[uint64]chan localReply
	dead     bool
	killedBy string // why the backend killed it, if it did
}

func (p *proc) kill(why string) {
	p.mu.Lock()
	if p.killedBy == "" {
		p.killedBy = why
	}
	p.mu.Unlock()
	p.cmd.Process.Kill()
	p.in.Close()
}

// exitReason waits briefly for the process to end and describes how it did.
func (p *proc) exitReason() string {
	select {
	case <-p.exited:
		if p.waitErr != nil {
			return p.waitErr.Error()
		}
		return "exited with status 0"
	case <-time.After(2 * time.Second):
		p.kill("closed its pipe")
		<-p.exited
		return "closed its pipe (killed)"
	}
}

// Invoke implements Backend: it runs inv in a worker process, starting one
// if needed. If ctx ends first the process is killed; another invocation it
// held then fails with ErrInterrupted.
func (l *Local) Invoke(ctx context.Context, inv *Invocation) (*Reply, error) {
	lease, err := l.Lease(ctx)
	if err != nil {
		return nil, err
	}
	inv.Dispatched = time.Now().UnixNano() // after any wait for a worker
	return lease.Invoke(ctx, inv)
}

// Lease implements Leaser: it waits for a worker process that can take an
// invocation (starting one if fewer than Parallelism run) and reserves it.
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

func (ls *localLease) Invoke(ctx context.Context, inv *Invocation) (*Reply, error) {
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
		return nil, l.died(p, seq)
	}
	line := fmt.Appendf(nil, "%d ", seq)
	line = append(append(line, msg...), '\n')
	p.writeMu.Lock()
	_, werr := p.in.Write(line)
	p.writeMu.Unlock()
	if werr != nil {
		l.drop(p, "")
		return nil, l.died(p, seq)
	}
	select {
	case r, ok := <-ch:
		if !ok {
			return nil, l.died(p, seq)
		}
		if r.Exiting {
			l.drop(p, "exited to stop a function that ignored its timeout")
		}
		if r.Err != "" {
			return nil, fmt.Errorf("worker: %s: %s", p.name, r.Err)
		}
		return &r.Reply, nil
	case <-ctx.Done():
		l.drop(p, fmt.Sprintf("killed by the driver: %v", context.Cause(ctx)))
		return nil, fmt.Errorf("worker: %s (pid %d) killed: %w", p.name, p.cmd.Process.Pid, context.Cause(ctx))
	}
}

// died describes the end of a process for one of its invocations.
func (l *Local) died(p *proc, seq uint64) error {
	reason := p.exitReason()
	p.mu.Lock()
	killedBy := p.killedBy
	p.mu.Unlock()
	if killedBy != "" {
		return fmt.Errorf("%w: %s (pid %d) %s", ErrInterrupted, p.name, p.cmd.Process.Pid, killedBy)
	}
	return fmt.Errorf("%w: %s (pid %d) %s", ErrWorkerDied, p.name, p.cmd.Process.Pid, reason)
}

type localReply struct {
	Reply
	Seq     uint64 `json:"seq"`
	Free    bool   `json:"free,omitempty"` // computing is over; writes follow
	Err     string `json:"err,omitempty"`
	Exiting bool   `json:"exiting,omitempty"`
}

type hello struct {
	Hello string `json:"hello"`
	PID   int    `json:"pid"`
}

// pick returns a process with a free slot, preferring an idle one and
// starting a new one while fewer than Parallelism run.
func (l *Local) pick(ctx context.Context) (*proc, error) {
	for {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			return nil, errors.New("worker: local backend is closed")
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
			l.mu.Unlock()
			p, err := l.start(ctx)
			l.mu.Lock()
			l.starting--
			if err == nil {
				p.inflight, p.busy = 1, true
				l.procs = append(l.procs, p)
			}
			l.notifyLocked()
			l.mu.Unlock()
			return p, err
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

// drop kills a process and forgets it.
func (l *Local) drop(p *proc, why string) {
	p.kill(why)
	l.mu.Lock()
	l.procs = slicesDelete(l.procs, p)
	l.notifyLocked()
	l.mu.Unlock()
}

func slicesDelete(ps []*proc, p *proc) []*proc {
	for i, q := range ps {
		if q == p {
			return append(ps[:i], ps[i+1:]...)
		}
	}
	return ps
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
	go p.read(outR, helloCh, l.freed)
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	timer := time.NewTimer(l.opts.StartTimeout)
	defer timer.Stop()
	select {
	case ok := <-helloCh:
		if !ok {
			p.kill("")
			return nil, fmt.Errorf("%w: %s (%s) did not start as a worker: %s; does main (or TestMain) call wren.Init() first?", ErrWorkerDied, name, l.opts.Executable, p.exitReason())
		}
	case <-timer.C:
		p.kill("")
		return nil, fmt.Errorf("%w: %s (%s) sent no hello within %v; does main (or TestMain) call wren.Init() first?", ErrWorkerDied, name, l.opts.Executable, l.opts.StartTimeout)
	case <-ctx.Done():
		p.kill("")
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
	p.mu.Lock()
	p.dead = true
	for seq, ch := range p.waiting {
		close(ch)
		delete(p.waiting, seq)
	}
	p.mu.Unlock()
}

// Close implements Backend: it kills every worker process and waits for them.
func (l *Local) Close() error {
	l.mu.Lock()
	l.closed = true
	procs := l.procs
	l.procs = nil
	l.notifyLocked()
	l.mu.Unlock()
	for _, p := range procs {
		p.kill("the backend closed")
	}
	for _, p := range procs {
		<-p.exited
	}
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
	env := &Env{Name: os.Getenv(EnvID)}
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
	writes := make(chan func(), 64)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		for f := range writes {
			f()
		}
	}()
	enqueue := func(f func()) { writes <- f }
	defer func() {
		close(writes)
		<-drained
	}()
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 256<<20)
	for sc.Scan() {
		var r localReply
		var inv Invocation
		seqText, body, _ := bytes.Cut(sc.Bytes(), []byte(" "))
		seq, err := strconv.ParseUint(string(seqText), 10, 64)
		if err == nil {
			err = json.Unmarshal(body, &inv)
		}
		r.Seq = seq
		if err != nil {
			r.Err = "bad invocation: " + err.Error()
			enqueue(func() { send(&r) })
			continue
		}
		err = run(ctx, &inv, lookup, env, enqueue, func(rep *Reply) {
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
