// Package workertest is the conformance suite every backend passes, as
// blob/blobtest is for stores: statuses first-wins, calls that crash, exit,
// panic, fail or hang past their timeout, a lost call, cancel, inputs and
// outputs at the inline and pack limits and above, per-call logs, and the
// backend's parallelism honoured.
//
// The suite's tasks are registered by this package: a test binary that
// imports it (and calls wren.Init in TestMain) serves them, and so does a
// worker binary built for remote workers that imports it.
package workertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/job"
)

// In is a call of the suite's task: what to return and how to behave.
type In struct {
	X    int
	Mode string        // see Call
	Dir  string        // shared with the workers: markers and slots
	D    time.Duration // for sleep, spin, hold
	N    int           // output bytes
}

// Call is the suite's task. Modes: "" returns X*X; "exit-first" and
// "exit-always" end the worker process on the first (or every) attempt;
// "panic"; "error"; "hang" waits for its context; "sleep" waits D or its
// context; "spin" ignores it for D; "slow-first" sleeps D on the first attempt; "print" and "print-fail"
// write to stdout, stderr and slog; "hold" holds a concurrency slot in
// Dir for D; "bytes" returns N bytes.
var Call = wren.Register("workertest.call", func(ctx context.Context, in In) ([]byte, error) {
	switch in.Mode {
	case "exit-first":
		if first(in, "exit") {
			os.Exit(3)
		}
	case "exit-always":
		os.Exit(3)
	case "panic":
		var m map[int]int
		//lint:ignore SA5000 a runtime panic is the point
		m[in.X] = 1
	case "error":
		return nil, fmt.Errorf("call %d fails", in.X)
	case "hang":
		<-ctx.Done()
		return nil, ctx.Err()
	case "sleep":
		select {
		case <-time.After(in.D):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	case "spin":
		for end := time.Now().Add(in.D); time.Now().Before(end); {
		}
	case "slow-first":
		if first(in, "slow") {
			select {
			case <-time.After(in.D):
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
	case "print", "print-fail":
		fmt.Printf("stdout of call %d\n", in.X)
		fmt.Fprintf(os.Stderr, "stderr of call %d\n", in.X)
		if in.Mode == "print-fail" {
			return nil, errors.New("printed and failed")
		}
	case "hold":
		if err := hold(ctx, in); err != nil {
			return nil, err
		}
	case "bytes":
		return bytes.Repeat([]byte{byte(in.X)}, in.N), nil
	}
	return []byte(strconv.Itoa(in.X * in.X)), nil
})

// Size returns the length of its input.
var Size = wren.Register("workertest.size", func(ctx context.Context, b []byte) (int, error) { return len(b), nil })

// first reports whether this is the first attempt, across processes, to
// pass here for the call: it creates a marker in in.Dir.
func first(in In, what string) bool {
	f, err := os.OpenFile(filepath.Join(in.Dir, fmt.Sprintf("%s-%d", what, in.X)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// hold takes the lowest free slot file in in.Dir for in.D: the highest
// slot ever taken is the most calls that ran at once.
func hold(ctx context.Context, in In) error {
	for k := 0; ; k++ {
		p := filepath.Join(in.Dir, fmt.Sprintf("slot-%03d", k))
		f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil {
			continue
		}
		f.Close()
		os.WriteFile(filepath.Join(in.Dir, fmt.Sprintf("used-%03d", k)), nil, 0o644)
		select {
		case <-time.After(in.D):
		case <-ctx.Done():
		}
		os.Remove(p)
		return ctx.Err()
	}
}

// Env describes the backend under test.
type Env struct {
	// Executor returns an executor on the backend, with the given options
	// (Backend and Store are the suite's to leave alone: Executor sets
	// them); the test closes it.
	Executor func(t *testing.T, o wren.Options) *wren.Executor
	// Dir is a directory the workers can reach (markers, slots).
	Dir func(t *testing.T) string
	// Parallelism is the calls the backend runs at once.
	Parallelism int
	// Isolated backends keep a crashing call from taking the driver with it
	// (processes, sandboxes); the crash tests need it.
	Isolated bool
	// Logs backends keep what each call printed (Status.Log).
	Logs bool
}

// Run runs the suite.
func Run(t *testing.T, env Env) {
	tests := []struct {
		name string
		fn   func(t *testing.T, env Env)
	}{
		{"Map", testMap},
		{"FirstWins", testFirstWins},
		{"Failures", testFailures},
		{"Crashes", testCrashes},
		{"Timeout", testTimeout},
		{"Cancel", testCancel},
		{"PayloadLimits", testPayloads},
		{"Logs", testLogs},
		{"Parallelism", testParallelism},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, env) })
	}
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func inputs(n int, dir, mode string) []In {
	in := make([]In, n)
	for i := range in {
		in[i] = In{X: i, Dir: dir, Mode: mode}
	}
	return in
}

func square(t *testing.T, i int, b []byte) {
	t.Helper()
	if string(b) != strconv.Itoa(i*i) {
		t.Fatalf("result %d = %q, want %d", i, b, i*i)
	}
}

// statuses checks that each call has exactly one status, stored by the
// attempt its CallStats names.
func statuses(t *testing.T, ex *wren.Executor, j *wren.Job[[]byte]) {
	t.Helper()
	ctx := ctxFor(t)
	keys, err := blob.Keys(ctx, ex.Store(), job.StatusPrefix(j.ID()))
	if err != nil || len(keys) != j.Len() {
		t.Fatalf("%d statuses for %d calls (%v)", len(keys), j.Len(), err)
	}
	for i := range j.Len() {
		s, ok, err := job.ReadStatus(ctx, ex.Store(), j.ID(), i)
		if err != nil || !ok || s.Call != i {
			t.Fatalf("call %d: status %+v, %v, %v", i, s, ok, err)
		}
		if c, ok := j.CallStats(i); ok && c.Attempt != s.Attempt {
			t.Fatalf("call %d: the driver says attempt %d won, the store %d", i, c.Attempt, s.Attempt)
		}
	}
}

func testMap(t *testing.T, env Env) {
	for _, chunk := range []int{1, 3} {
		ex := env.Executor(t, wren.Options{ChunkSize: chunk})
		j, err := Call.Map(ctxFor(t), ex, inputs(40, env.Dir(t), ""))
		if err != nil {
			t.Fatal(err)
		}
		got, err := j.Results(ctxFor(t))
		if err != nil {
			t.Fatal(err)
		}
		for i, b := range got {
			square(t, i, b)
		}
		statuses(t, ex, j)
		if s := j.Summary(); s.Done != 40 || s.Failed != 0 || s.Attempts != 40 {
			t.Fatalf("chunk %d: %d done, %d failed, %d attempts", chunk, s.Done, s.Failed, s.Attempts)
		}
	}
	// An empty map finishes at once.
	ex := env.Executor(t, wren.Options{})
	j, err := Call.Map(ctxFor(t), ex, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := j.Results(ctxFor(t)); err != nil || len(got) != 0 {
		t.Fatalf("empty map: %v, %v", got, err)
	}
}

// testFirstWins: a straggler relaunched races its own speculative attempt;
// the first to finish wins, once.
func testFirstWins(t *testing.T, env Env) {
	ex := env.Executor(t, wren.Options{Speculation: true, SpeculationFactor: 2})
	in := inputs(12, env.Dir(t), "")
	in[5].Mode, in[5].D = "slow-first", 2*time.Second
	j, err := Call.Map(ctxFor(t), ex, in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := j.Results(ctxFor(t))
	if err != nil {
		t.Fatal(err)
	}
	for i, b := range got {
		square(t, i, b)
	}
	statuses(t, ex, j)
	if s := j.Summary(); s.Speculative < 1 {
		t.Fatalf("no speculative attempt: %+v", s)
	}
}

func testFailures(t *testing.T, env Env) {
	ex := env.Executor(t, wren.Options{})
	in := inputs(6, env.Dir(t), "")
	in[1].Mode, in[4].Mode = "error", "panic"
	j, err := Call.Map(ctxFor(t), ex, in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := j.Results(ctxFor(t))
	var je *wren.JobError
	if !errors.As(err, &je) || len(je.Failed) != 2 {
		t.Fatalf("err = %v, want calls 1 and 4 failed", err)
	}
	if e := je.Failed[0]; e.Call != 1 || !errors.Is(e, wren.ErrFunction) || !strings.Contains(e.Message, "call 1 fails") || e.Attempts != 1 {
		t.Fatalf("the error: %+v", e)
	}
	if e := je.Failed[1]; e.Call != 4 || !errors.Is(e, wren.ErrPanic) || !strings.Contains(e.Stack, "workertest") {
		t.Fatalf("the panic: %+v", e)
	}
	for _, i := range []int{0, 2, 3, 5} {
		square(t, i, got[i])
	}
	statuses(t, ex, j)
}

func testCrashes(t *testing.T, env Env) {
	if !env.Isolated {
		t.Skip("a crash would take the driver with it (not an isolated backend)")
	}
	ex := env.Executor(t, wren.Options{Retries: 3})
	in := inputs(8, env.Dir(t), "")
	in[2].Mode, in[6].Mode = "exit-first", "exit-always"
	j, err := Call.Map(ctxFor(t), ex, in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := j.Results(ctxFor(t))
	var je *wren.JobError
	if !errors.As(err, &je) || len(je.Failed) != 1 || je.Failed[0].Call != 6 || !errors.Is(je.Failed[0], wren.ErrLost) || je.Failed[0].Attempts != 4 {
		t.Fatalf("err = %v, want call 6 lost after 4 attempts", err)
	}
	square(t, 2, got[2])
	if c, ok := j.CallStats(2); !ok || c.Attempt < 1 {
		t.Fatalf("call 2: %+v, want a later attempt's win", c)
	}
	statuses(t, ex, j)
}

func testTimeout(t *testing.T, env Env) {
	ex := env.Executor(t, wren.Options{Timeout: 500 * time.Millisecond})
	in := inputs(4, env.Dir(t), "")
	in[1].Mode = "hang"
	in[2].Mode, in[2].D = "spin", 2*time.Second
	j, err := Call.Map(ctxFor(t), ex, in)
	if err != nil {
		t.Fatal(err)
	}
	_, err = j.Results(ctxFor(t))
	var je *wren.JobError
	if !errors.As(err, &je) || len(je.Failed) != 2 || !errors.Is(je.Failed[0], wren.ErrTimeout) || !errors.Is(je.Failed[1], wren.ErrTimeout) {
		t.Fatalf("err = %v, want calls 1 and 2 timed out", err)
	}
}

func testCancel(t *testing.T, env Env) {
	ex := env.Executor(t, wren.Options{})
	ctx, cancel := context.WithCancel(ctxFor(t))
	// Calls that would take 3 s: a remote function given up keeps running
	// (Lambda cannot stop one), so not forever.
	in := inputs(max(2*env.Parallelism, 4), env.Dir(t), "sleep")
	for i := range in {
		in[i].D = 3 * time.Second
	}
	j, err := Call.Map(ctx, ex, in)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	cancel()
	select {
	case <-j.Done():
	case <-time.After(time.Minute):
		t.Fatal("Wait hangs after a cancel")
	}
	_, err = j.Results(ctxFor(t))
	var je *wren.JobError
	if !errors.As(err, &je) || len(je.Failed) != j.Len() || !errors.Is(je.Failed[0], wren.ErrCancelled) {
		t.Fatalf("err = %v, want every call cancelled", err)
	}
}

// testPayloads: inputs and outputs at the pack and inline limits and one
// byte above; an output over its cap fails the call, an input over its cap
// fails Map.
func testPayloads(t *testing.T, env Env) {
	const packed, inline, maxOut = 4 << 10, 2 << 10, 64 << 10
	ex := env.Executor(t, wren.Options{MaxPackedInput: packed, MaxInlineOutput: inline, MaxOutputBytes: maxOut, MaxInputBytes: 100 << 10})
	dir := env.Dir(t)
	// The gob encoding of a []byte adds a few bytes: sizes around the
	// limits of the encoded input.
	var ins [][]byte
	for _, n := range []int{0, 1, packed - 8, packed - 4, packed, packed + 4, 90 << 10} {
		ins = append(ins, bytes.Repeat([]byte{7}, n))
	}
	j, err := Size.Map(ctxFor(t), ex, ins)
	if err != nil {
		t.Fatal(err)
	}
	got, err := j.Results(ctxFor(t))
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range got {
		if n != len(ins[i]) {
			t.Fatalf("input %d: %d bytes arrived, %d sent", i, n, len(ins[i]))
		}
	}
	if _, err := Size.Map(ctxFor(t), ex, [][]byte{make([]byte, 101<<10)}); !errors.Is(err, wren.ErrTooLarge) {
		t.Fatalf("an input over the cap: %v", err)
	}
	outs := []int{0, inline - 8, inline, inline + 1, maxOut - 16, maxOut + 1}
	in := make([]In, len(outs))
	for i, n := range outs {
		in[i] = In{X: i, Mode: "bytes", N: n, Dir: dir}
	}
	jo, err := Call.Map(ctxFor(t), ex, in)
	if err != nil {
		t.Fatal(err)
	}
	res, err := jo.Results(ctxFor(t))
	var je *wren.JobError
	if !errors.As(err, &je) || len(je.Failed) != 1 || je.Failed[0].Call != len(outs)-1 || !errors.Is(je.Failed[0], wren.ErrTooLarge) {
		t.Fatalf("err = %v, want the last output over its cap", err)
	}
	for i, n := range outs[:len(outs)-1] {
		if len(res[i]) != n || (n > 0 && res[i][n-1] != byte(i)) {
			t.Fatalf("output %d: %d bytes, want %d", i, len(res[i]), n)
		}
	}
}

func testLogs(t *testing.T, env Env) {
	if !env.Logs {
		t.Skip("the backend keeps no per-call output")
	}
	ex := env.Executor(t, wren.Options{})
	j, err := Call.Map(ctxFor(t), ex, []In{{X: 7, Mode: "print"}, {X: 8, Mode: "print-fail"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = j.Results(ctxFor(t))
	var je *wren.JobError
	if !errors.As(err, &je) || len(je.Failed) != 1 || !strings.Contains(je.Failed[0].Log, "stderr of call 8") {
		t.Fatalf("err = %v, want call 8's output in its error", err)
	}
	s, ok, err := job.ReadStatus(ctxFor(t), ex.Store(), j.ID(), 0)
	if err != nil || !ok || s.Log == "" {
		t.Fatalf("call 7's status %+v: no log", s)
	}
	b, err := blob.ReadAll(ctxFor(t), ex.Store(), s.Log)
	if err != nil || !strings.Contains(string(b), "stdout of call 7") || !strings.Contains(string(b), "stderr of call 7") {
		t.Fatalf("call 7's log %q, %v", b, err)
	}
}

// testParallelism: the backend runs as many calls at once as it says, and
// no more.
func testParallelism(t *testing.T, env Env) {
	ex := env.Executor(t, wren.Options{})
	dir := env.Dir(t)
	p := ex.Parallelism()
	if p != env.Parallelism {
		t.Fatalf("the executor says %d calls at once, the backend %d", p, env.Parallelism)
	}
	in := inputs(4*p, dir, "hold")
	for i := range in {
		in[i].D = 300 * time.Millisecond
	}
	j, err := Call.Map(ctxFor(t), ex, in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Results(ctxFor(t)); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	var used []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), "used-") {
			used = append(used, e.Name())
		}
	}
	slices.Sort(used)
	if len(used) != p {
		t.Fatalf("%d calls ran at once (%v), want %d", len(used), used, p)
	}
}
