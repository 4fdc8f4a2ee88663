package wren_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/blob/fileblob"
	"github.com/wrenml/wren/internal/testenv"
	jobpkg "github.com/wrenml/wren/job"
	"github.com/wrenml/wren/worker"
)

var (
	// Work sleeps a little, then squares its input.
	Work = wren.Register("test.work", func(ctx context.Context, x int) (int, error) {
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return 0, ctx.Err()
		}
		return x * x, nil
	})

	// Garble writes a line the driver cannot read on the reply pipe, as a
	// worker corrupted by its function would.
	Garble = wren.Register("test.garble", func(ctx context.Context, x int) (int, error) {
		os.NewFile(4, "wren-out").Write([]byte("}garbage{\n"))
		<-ctx.Done()
		return 0, ctx.Err()
	})
)

func squares(n int) []int {
	in := make([]int, n)
	for i := range in {
		in[i] = i
	}
	return in
}

func checkSquares(t *testing.T, got []int, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("%d results, want %d", len(got), n)
	}
	for i, v := range got {
		if v != i*i {
			t.Fatalf("result %d = %d, want %d", i, v, i*i)
		}
	}
}

// TestKillEveryWorker kills every worker process from outside, five times
// over a 300-call map (once again while the replacements start): dead
// processes are forgotten and replaced, the job completes with every output
// exactly once, and new workers appear in the stats.
func TestKillEveryWorker(t *testing.T) {
	ex := newExecutor(t, wren.Options{Parallelism: 2, Retries: 10})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	job, err := Work.Map(ctx, ex, squares(300))
	if err != nil {
		t.Fatal(err)
	}
	killed, rounds := 0, 0
	for _, wait := range []time.Duration{300, 300, 5, 300, 300} {
		select {
		case <-time.After(wait * time.Millisecond):
		case <-job.Done():
		}
		if n := testenv.KillChildren(t); n > 0 {
			killed += n
			rounds++
		}
	}
	got, err := job.Results(ctx)
	if err != nil {
		t.Fatalf("after %d kills in %d rounds: %v", killed, rounds, err)
	}
	checkSquares(t, got, 300)
	assertExactlyOnce(t, ex.Store(), job.ID(), 300)
	st := job.Stats()
	workers := map[string]int{}
	for _, c := range st.PerCall {
		workers[c.Worker]++
	}
	t.Logf("%d processes killed in %d rounds; %d retried; calls per worker %v", killed, rounds, st.Retried, workers)
	if rounds < 3 {
		t.Fatalf("only %d kill rounds hit a worker", rounds)
	}
	if len(workers) <= 2 {
		t.Fatalf("calls ran on %v: no replacement worker took over", workers)
	}
	// Every worker is replaced: a map after the carnage runs on 2 processes.
	job2, err := PID.Map(ctx, ex, make([]int, 20))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := job2.Results(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(testenv.Children(t)); n != 2 {
		t.Fatalf("%d worker processes after the kills, want 2", n)
	}
}

// TestForgottenInit runs a real program whose main does not call
// wren.Init: it must fail at once, naming the fix, not start a chain of
// processes that never answer.
func TestForgottenInit(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "noinit")
	build := exec.Command("go", "build", "-o", bin, "./testdata/noinit")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(os.Environ(), "NOINIT_STORE="+t.TempDir())
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("failed after %v:\n%s", time.Since(start).Round(time.Millisecond), out)
	if ctx.Err() != nil {
		t.Fatal("the program hung")
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("exit: %v, want the driver's exit status 1", err)
	}
	for _, want := range []string{
		// The worker says what it did and exits ...
		"started as a wren worker but reached wren.NewExecutor: main (or TestMain) must call wren.Init() first",
		// ... and the driver fails with the fix.
		"driver: ", "reached a driver entry point: main (or TestMain) must call wren.Init() first",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(string(out), "results") {
		t.Fatal("results without workers")
	}
}

// TestGarbledReply: a worker that writes a line the driver cannot read is
// killed and its call counts as a failed attempt, so a call that always does
// it is reported lost after its retries instead of being retried forever.
func TestGarbledReply(t *testing.T) {
	ex := newExecutor(t, wren.Options{Retries: 2})
	f, err := Garble.Call(testCtx(t), ex, 1)
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Result(testCtx(t))
	var ce *wren.CallError
	if !errors.As(err, &ce) || !errors.Is(err, wren.ErrLost) || ce.Attempts != 3 || !strings.Contains(err.Error(), "unreadable reply") {
		t.Fatalf("err = %v, want a lost call after 3 attempts naming the unreadable reply", err)
	}
}

// TestInputWriteFails: inputs the driver cannot write fail their calls
// with a store error; the others complete and Wait does not hang. Packed:
// the calls of the pack that failed; unpacked: the one call.
func TestInputWriteFails(t *testing.T) {
	for _, c := range []struct {
		name   string
		packed int64
		only   string
		failed []int
	}{
		// Chunks of 4: packs of 16 calls, then 32.
		{"pack", 0, "/in/pack-000016", seq(16, 40)},
		{"own object", -1, "/in/000003", []int{3}},
	} {
		t.Run(c.name, func(t *testing.T) {
			inner, err := fileblob.Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			// The failure comes last, after the dispatcher has parked on the
			// chunk that waits for this input.
			st := testenv.NewFaultStore(inner, testenv.Faults{Put: 1, Delay: 1, MaxDelay: 400 * time.Millisecond, Only: c.only})
			ex := newExecutor(t, wren.Options{BlobStore: st, MaxPackedInput: c.packed})
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			job, err := Work.Map(ctx, ex, squares(40), wren.WithChunkSize(4))
			if err != nil {
				t.Fatal(err)
			}
			got, err := job.Results(ctx)
			if ctx.Err() != nil {
				t.Fatal("Results hung on a failed input write")
			}
			var je *wren.JobError
			if !errors.As(err, &je) || len(je.Failed) != len(c.failed) {
				t.Fatalf("err = %v, want calls %v failed", err, c.failed)
			}
			for k, ce := range je.Failed {
				if ce.Call != c.failed[k] || ce.Kind != jobpkg.KindStore {
					t.Fatalf("failure %d: %v, want call %d failed with a store error", k, ce, c.failed[k])
				}
			}
			for i, v := range got {
				if !slices.Contains(c.failed, i) && v != i*i {
					t.Fatalf("result %d = %d", i, v)
				}
			}
		})
	}
}

func seq(lo, hi int) []int {
	var out []int
	for i := lo; i < hi; i++ {
		out = append(out, i)
	}
	return out
}

// TestTransientInputRead: an input the worker cannot read because of a
// store fault is retried like a lost call, and reported as a store error
// (not as a bad input) when it never succeeds.
func TestTransientInputRead(t *testing.T) {
	dir := t.TempDir()
	t.Run("always", func(t *testing.T) {
		ex := newExecutor(t, wren.Options{Store: testenv.FaultURL("file://"+dir+"/a", testenv.Faults{Get: 1, Only: "/in/"}), Retries: 2})
		f, err := Square.Call(testCtx(t), ex, 3)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.Result(testCtx(t))
		var ce *wren.CallError
		if !errors.As(err, &ce) || ce.Kind != jobpkg.KindStore || ce.Attempts != 3 || errors.Is(err, wren.ErrDecode) || !strings.Contains(err.Error(), "injected") {
			t.Fatalf("err = %v, want a store error after 3 attempts", err)
		}
	})
	t.Run("often", func(t *testing.T) {
		ex := newExecutor(t, wren.Options{Store: testenv.FaultURL("file://"+dir+"/b", testenv.Faults{Get: 0.5, Only: "/in/"}), Retries: 8})
		job, err := Square.Map(testCtx(t), ex, squares(40))
		if err != nil {
			t.Fatal(err)
		}
		got, err := job.Results(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		checkSquares(t, got, 40)
	})
}

// TestStatusStoredAnswerLost: every status put is stored but answers with
// an error (as when an S3 client's retry of a stored put gets 412): the
// attempt that wrote it must still win and keep its output.
func TestStatusStoredAnswerLost(t *testing.T) {
	for name, f := range map[string]testenv.Faults{
		"retry finds it": {PutExists: 1, Only: "/status/"},
		"error":          {PutAfter: 1, Only: "/status/"},
	} {
		t.Run(name, func(t *testing.T) {
			ex := newExecutor(t, wren.Options{Store: testenv.FaultURL("file://"+t.TempDir(), f)})
			job, err := Square.Map(testCtx(t), ex, squares(20))
			if err != nil {
				t.Fatal(err)
			}
			got, err := job.Results(testCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			checkSquares(t, got, 20)
			assertExactlyOnce(t, ex.Store(), job.ID(), 20)
			if st := job.Stats(); st.Retried != 0 {
				t.Fatalf("%d calls retried; the stored statuses should have been recognised", st.Retried)
			}
		})
	}
}

// TestResultReadFailsThenWorks: a Result whose read of the output failed
// (a store fault, or the caller's expired context) keeps no error: a later
// call succeeds.
func TestResultReadFailsThenWorks(t *testing.T) {
	inner, err := fileblob.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	st := testenv.NewFaultStore(inner, testenv.Faults{})
	// Outputs in objects of their own: an inline output is never read.
	ex := newExecutor(t, wren.Options{BlobStore: st, Backend: wren.InProcess(1), MaxInlineOutput: -1})
	f, err := Square.Call(testCtx(t), ex, 7)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Wait(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	st.SetFaults(testenv.Faults{Get: 1, Only: "/out/"})
	if _, err := f.Result(testCtx(t)); !errors.Is(err, testenv.ErrInjected) {
		t.Fatalf("with the store failing: %v", err)
	}
	st.SetFaults(testenv.Faults{})
	if v, err := f.Result(testCtx(t)); err != nil || v != 49 {
		t.Fatalf("once the store works: %d, %v; want 49", v, err)
	}
}

// TestRetriesOneMeaning: Options.Retries and WithRetries follow one rule,
// 0 the default (2 more attempts) and -1 none.
func TestRetriesOneMeaning(t *testing.T) {
	for _, c := range []struct {
		name     string
		opts     wren.Options
		mapOpts  []wren.MapOption
		attempts int
	}{
		{"Options 0", wren.Options{}, nil, 3},
		{"Options -1", wren.Options{Retries: -1}, nil, 1},
		{"Options 1", wren.Options{Retries: 1}, nil, 2},
		{"WithRetries 0", wren.Options{Retries: -1}, []wren.MapOption{wren.WithRetries(0)}, 3},
		{"WithRetries -1", wren.Options{}, []wren.MapOption{wren.WithRetries(-1)}, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			ex := newExecutor(t, c.opts)
			f, err := Die.Call(testCtx(t), ex, 1, c.mapOpts...)
			if err != nil {
				t.Fatal(err)
			}
			_, err = f.Result(testCtx(t))
			var ce *wren.CallError
			if !errors.As(err, &ce) || ce.Attempts != c.attempts {
				t.Fatalf("err = %v; want a lost call after %d attempts", err, c.attempts)
			}
		})
	}
}

// TestJobIDReusedAfterClean: a job cleaned and run again under its ID on
// the same executor (the same worker processes), and a job of the same ID
// in a second store, read their own inputs (a worker's cached pack bytes,
// keyed by the pack's name alone, failed every call's checksum).
func TestJobIDReusedAfterClean(t *testing.T) {
	ctx := testCtx(t)
	for _, chunk := range []int{1, 3} {
		ex := newExecutor(t, wren.Options{ChunkSize: chunk})
		other := newExecutor(t, wren.Options{ChunkSize: chunk})
		for round, add := range []int{0, 100, 7} {
			in := make([]int, 20)
			for i := range in {
				in[i] = i + add
			}
			for _, e := range []*wren.Executor{ex, other} {
				job, err := Work.Map(ctx, e, in, wren.WithJobID("reused"))
				if err != nil {
					t.Fatal(err)
				}
				got, err := job.Results(ctx)
				if err != nil {
					t.Fatalf("chunk %d, round %d: %v", chunk, round, err)
				}
				for i, v := range got {
					if v != in[i]*in[i] {
						t.Fatalf("chunk %d, round %d: result %d = %d, want %d", chunk, round, i, v, in[i]*in[i])
					}
				}
				if err := job.Clean(ctx); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

// limitedBackend is a backend with a call limit of its own, as Lambda's
// function timeout.
type limitedBackend struct {
	worker.Backend
	limit time.Duration
}

func (b limitedBackend) CallLimit(context.Context) (time.Duration, error) { return b.limit, nil }

// TestCallLimit: the longest a call can run is the map's timeout or the
// backend's limit, whichever is shorter, and 0 when nothing limits it.
func TestCallLimit(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		backend worker.Backend
		timeout time.Duration
		opts    []wren.MapOption
		want    time.Duration
	}{
		{wren.InProcess(1), 0, nil, 0},
		{wren.InProcess(1), -1, nil, 0},
		{wren.InProcess(1), 5 * time.Second, nil, 5 * time.Second},
		{wren.InProcess(1), 5 * time.Second, []wren.MapOption{wren.WithTimeout(2 * time.Second)}, 2 * time.Second},
		{limitedBackend{wren.InProcess(1), 300 * time.Second}, 0, nil, 300 * time.Second},
		{limitedBackend{wren.InProcess(1), 300 * time.Second}, time.Minute, nil, time.Minute},
		{limitedBackend{wren.InProcess(1), 10 * time.Second}, time.Minute, nil, 10 * time.Second},
		{limitedBackend{wren.InProcess(1), 10 * time.Second}, 0, []wren.MapOption{wren.WithTimeout(time.Hour)}, 10 * time.Second},
	} {
		ex, err := wren.NewExecutor(ctx, wren.Options{Store: t.TempDir(), Backend: c.backend, Timeout: c.timeout})
		if err != nil {
			t.Fatal(err)
		}
		got, err := ex.CallLimit(ctx, c.opts...)
		ex.Close()
		if err != nil || got != c.want {
			t.Errorf("%T timeout %v: %v, %v; want %v", c.backend, c.timeout, got, err, c.want)
		}
	}
}
