package worker

import (
	"bufio"
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
// invocation, not the driver. Processes are started on demand, reused
// between invocations, and replaced when they die or are killed. It is safe
// for concurrent use.
type Local struct {
	opts   LocalOptions
	sem    *semaphore.Weighted
	idle   chan *proc
	nextID atomic.Int64

	mu     sync.Mutex
	live   map[*proc]struct{}
	closed bool
}

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
		opts: opts,
		sem:  semaphore.NewWeighted(int64(opts.Parallelism)),
		idle: make(chan *proc, opts.Parallelism),
		live: map[*proc]struct{}{},
	}, nil
}

// Name implements Backend.
func (l *Local) Name() string { return "local" }

// Parallelism implements Backend.
func (l *Local) Parallelism() int { return l.opts.Parallelism }

type proc struct {
	name    string
	cmd     *exec.Cmd
	in      *os.File // our end of fdIn
	lines   chan []byte
	exited  chan struct{}
	waitErr error
}

func (p *proc) kill() {
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
		p.kill()
		<-p.exited
		return "closed its pipe (killed)"
	}
}

// Invoke implements Backend: it runs inv in an idle worker process, starting
// one if needed. If ctx ends first the process is killed.
func (l *Local) Invoke(ctx context.Context, inv *Invocation) (*Reply, error) {
	if err := l.sem.Acquire(ctx, 1); err != nil {
		return nil, err
	}
	defer l.sem.Release(1)
	p, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	msg, err := json.Marshal(inv)
	if err != nil {
		l.put(p)
		return nil, fmt.Errorf("worker: encode invocation: %w", err)
	}
	if _, err := p.in.Write(append(msg, '\n')); err != nil {
		l.drop(p)
		return nil, fmt.Errorf("%w: %s (pid %d): write invocation: %v (%s)", ErrWorkerDied, p.name, p.cmd.Process.Pid, err, p.exitReason())
	}
	select {
	case line, ok := <-p.lines:
		if !ok {
			l.drop(p)
			return nil, fmt.Errorf("%w: %s (pid %d) %s", ErrWorkerDied, p.name, p.cmd.Process.Pid, p.exitReason())
		}
		var r localReply
		if err := json.Unmarshal(line, &r); err != nil {
			l.drop(p)
			return nil, fmt.Errorf("worker: %s: bad reply: %w", p.name, err)
		}
		if r.Exiting {
			l.drop(p)
		} else {
			l.put(p)
		}
		if r.Err != "" {
			return nil, fmt.Errorf("worker: %s: %s", p.name, r.Err)
		}
		return &r.Reply, nil
	case <-ctx.Done():
		l.drop(p)
		return nil, fmt.Errorf("worker: %s (pid %d) killed: %w", p.name, p.cmd.Process.Pid, context.Cause(ctx))
	}
}

type localReply struct {
	Reply
	Err     string `json:"err,omitempty"`
	Exiting bool   `json:"exiting,omitempty"`
}

type hello struct {
	Hello string `json:"hello"`
	PID   int    `json:"pid"`
}

func (l *Local) get(ctx context.Context) (*proc, error) {
	select {
	case p := <-l.idle:
		select {
		case <-p.exited:
			l.drop(p) // died while idle
		default:
			return p, nil
		}
	default:
	}
	return l.start(ctx)
}

func (l *Local) put(p *proc) {
	l.mu.Lock()
	closed := l.closed
	l.mu.Unlock()
	if closed {
		l.drop(p)
		return
	}
	select {
	case l.idle <- p:
	default:
		l.drop(p)
	}
}

func (l *Local) drop(p *proc) {
	p.kill()
	l.mu.Lock()
	delete(l.live, p)
	l.mu.Unlock()
}

func (l *Local) start(ctx context.Context) (*proc, error) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil, errors.New("worker: local backend is closed")
	}
	l.mu.Unlock()
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
	p := &proc{name: name, cmd: cmd, in: inW, lines: make(chan []byte, 1), exited: make(chan struct{})}
	go func() {
		defer close(p.lines)
		defer outR.Close()
		sc := bufio.NewScanner(outR)
		sc.Buffer(make([]byte, 64<<10), 256<<20)
		for sc.Scan() {
			p.lines <- append([]byte(nil), sc.Bytes()...)
		}
	}()
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	l.mu.Lock()
	l.live[p] = struct{}{}
	l.mu.Unlock()

	timer := time.NewTimer(l.opts.StartTimeout)
	defer timer.Stop()
	select {
	case line, ok := <-p.lines:
		var h hello
		if !ok || json.Unmarshal(line, &h) != nil || h.Hello != "wren" {
			l.drop(p)
			return nil, fmt.Errorf("%w: %s (%s) did not start as a worker: %s; does main (or TestMain) call wren.Init() first?", ErrWorkerDied, name, l.opts.Executable, p.exitReason())
		}
	case <-timer.C:
		l.drop(p)
		return nil, fmt.Errorf("%w: %s (%s) sent no hello within %v; does main (or TestMain) call wren.Init() first?", ErrWorkerDied, name, l.opts.Executable, l.opts.StartTimeout)
	case <-ctx.Done():
		l.drop(p)
		return nil, ctx.Err()
	}
	l.opts.Logger.Debug("worker started", "worker", name, "pid", cmd.Process.Pid)
	return p, nil
}

// Close implements Backend: it kills every worker process and waits for them.
func (l *Local) Close() error {
	l.mu.Lock()
	l.closed = true
	procs := make([]*proc, 0, len(l.live))
	for p := range l.live {
		procs = append(procs, p)
	}
	l.live = map[*proc]struct{}{}
	l.mu.Unlock()
	for _, p := range procs {
		p.kill()
	}
	for _, p := range procs {
		<-p.exited
	}
	return nil
}

// ServeLocal is the worker side of the local backend: it answers the driver's
// invocations on the inherited pipes until the driver closes them. wren.Init
// calls it when the process was started as a local worker.
func ServeLocal(ctx context.Context, lookup Lookup) error {
	in := os.NewFile(fdIn, "wren-in")
	out := os.NewFile(fdOut, "wren-out")
	if in == nil || out == nil {
		return errors.New("worker: not started by a wren driver (no pipes on fds 3 and 4)")
	}
	env := &Env{Name: os.Getenv(EnvID)}
	w := bufio.NewWriter(out)
	send := func(v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		w.Write(append(b, '\n'))
		return w.Flush()
	}
	if err := send(hello{Hello: "wren", PID: os.Getpid()}); err != nil {
		return fmt.Errorf("worker: hello: %w", err)
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 256<<20)
	for sc.Scan() {
		var inv Invocation
		var r localReply
		if err := json.Unmarshal(sc.Bytes(), &inv); err != nil {
			r.Err = "bad invocation: " + err.Error()
		} else if rep, err := Run(ctx, &inv, lookup, env); err != nil {
			r.Err = err.Error()
		} else {
			r.Reply = *rep
		}
		r.Exiting = env.Stuck()
		if err := send(&r); err != nil {
			return fmt.Errorf("worker: reply: %w", err)
		}
		if r.Exiting {
			return errors.New("worker: a function ignored its timeout; exiting to stop it")
		}
	}
	return sc.Err()
}
