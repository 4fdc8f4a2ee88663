package wren_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/blob"
	_ "github.com/wrenml/wren/blob/s3blob" // the local-s3 executor
	"github.com/wrenml/wren/internal/testenv"
	jobpkg "github.com/wrenml/wren/job"
	"github.com/wrenml/wren/timeline"
	"github.com/wrenml/wren/worker"
)

// newExecutor returns an executor over a fresh store, closed with the test.
func newExecutor(t *testing.T, opts wren.Options) *wren.Executor {
	t.Helper()
	if opts.Store == "" && opts.BlobStore == nil {
		opts.Store = t.TempDir()
	}
	if opts.Parallelism == 0 {
		opts.Parallelism = 2
	}
	opts.Progress = wren.ProgressOff
	ex, err := wren.NewExecutor(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close() })
	return ex
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestExecutors is the executor conformance suite: every backend and store
// combination runs the same maps.
func TestExecutors(t *testing.T) {
	s3 := testenv.StartS3(t)
	s3.CreateBucket(t, "wren-jobs")
	backends := map[string]func(t *testing.T) wren.Options{
		"local":     func(t *testing.T) wren.Options { return wren.Options{} },
		"inprocess": func(t *testing.T) wren.Options { return wren.Options{Backend: wren.InProcess(2)} },
		"local-s3": func(t *testing.T) wren.Options {
			return wren.Options{Store: "s3://wren-jobs/" + t.Name() + "?endpoint=" + s3.Endpoint}
		},
		"local-chunk": func(t *testing.T) wren.Options { return wren.Options{ChunkSize: 7} },
	}
	for name, mk := range backends {
		t.Run(name, func(t *testing.T) {
			t.Run("Squares", func(t *testing.T) {
				ex := newExecutor(t, mk(t))
				in := make([]int, 50)
				for i := range in {
					in[i] = i
				}
				job, err := Square.Map(testCtx(t), ex, in)
				if err != nil {
					t.Fatal(err)
				}
				got, err := job.Results(testCtx(t))
				if err != nil {
					t.Fatal(err)
				}
				for i, v := range got {
					if v != i*i {
						t.Fatalf("result %d = %d, want %d", i, v, i*i)
					}
				}
				st := job.Stats()
				if st.Done != 50 || st.Failed != 0 || len(st.PerCall) != 50 {
					t.Fatalf("stats: %+v", st)
				}
				for _, c := range st.PerCall {
					if c.BytesRead == 0 || c.BytesWritten == 0 || c.Worker == "" || c.Compute < 0 || c.Finished.Before(c.Started) {
						t.Fatalf("call stats incomplete: %+v", c)
					}
				}
				assertExactlyOnce(t, ex.Store(), job.ID(), 50)
				// The same timings, rebuilt from the store by another reader.
				rs, err := wren.ReadJobStats(testCtx(t), ex.Store(), job.ID())
				if err != nil {
					t.Fatal(err)
				}
				// (The driver keeps times as float32 seconds after each
				// dispatch: equal to well under a microsecond.)
				near := func(a, b time.Duration) bool { return (a - b).Abs() < time.Microsecond }
				if rs.Done != 50 || len(rs.PerCall) != 50 || !near(rs.PerCall[7].Compute, st.PerCall[7].Compute) || rs.PerCall[7].Worker != st.PerCall[7].Worker {
					t.Fatalf("ReadJobStats: %d done, %d calls; call 7 %+v vs %+v", rs.Done, len(rs.PerCall), rs.PerCall[7], st.PerCall[7])
				}
			})
			t.Run("Errors", func(t *testing.T) {
				ex := newExecutor(t, mk(t))
				job, err := FailOnMultipleOf3.Map(testCtx(t), ex, []int{1, 3, 4, 6})
				if err != nil {
					t.Fatal(err)
				}
				got, err := job.Results(testCtx(t))
				var je *wren.JobError
				if !errors.As(err, &je) || len(je.Failed) != 2 {
					t.Fatalf("err = %v, want a JobError with 2 failures", err)
				}
				if got[0] != 1 || got[2] != 4 {
					t.Fatalf("successful results = %v", got)
				}
				for k, idx := range []int{1, 3} {
					ce := je.Failed[k]
					if ce.Call != idx || ce.Kind != jobpkg.KindError || !strings.Contains(ce.Message, "multiple of 3") || ce.Attempts != 1 {
						t.Fatalf("failure %d = %+v", k, ce)
					}
				}
			})
			t.Run("Panic", func(t *testing.T) {
				ex := newExecutor(t, mk(t))
				f, err := Panic.Call(testCtx(t), ex, 1)
				if err != nil {
					t.Fatal(err)
				}
				_, err = f.Result(testCtx(t))
				var ce *wren.CallError
				if !errors.As(err, &ce) || !errors.Is(err, wren.ErrPanic) {
					t.Fatalf("err = %v, want a panic CallError", err)
				}
				if !strings.Contains(ce.Message, "nil map") || !strings.Contains(ce.Stack, "tasks_test.go") {
					t.Fatalf("panic error lacks message or stack: %q\n%s", ce.Message, ce.Stack)
				}
			})
			t.Run("Empty", func(t *testing.T) {
				ex := newExecutor(t, mk(t))
				job, err := Square.Map(testCtx(t), ex, nil)
				if err != nil {
					t.Fatal(err)
				}
				got, err := job.Results(testCtx(t))
				if err != nil || len(got) != 0 {
					t.Fatalf("empty map = %v, %v", got, err)
				}
			})
		})
	}
}

// assertExactlyOnce checks that each call has one status holding its
// output inline or naming one output object, and that no other output
// object is left.
func assertExactlyOnce(t *testing.T, st blob.Store, job string, n int) {
	t.Helper()
	ctx := context.Background()
	outs, err := blob.Keys(ctx, st, jobpkg.OutputPrefix(job))
	if err != nil {
		t.Fatal(err)
	}
	named := []string{}
	for i := range n {
		s, ok, err := jobpkg.ReadStatus(ctx, st, job, i)
		if err != nil || !ok || !s.OK || (s.Output == "") == (s.Inline == nil) {
			t.Fatalf("call %d: status %+v ok=%v err=%v", i, s, ok, err)
		}
		if s.Output != "" {
			named = append(named, s.Output)
		}
	}
	slices.Sort(named)
	if !slices.Equal(named, append([]string{}, outs...)) {
		t.Fatalf("outputs in the store %v, statuses name %v", outs, named)
	}
}

func TestRegisterDuplicatePanics(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), "test.square") {
			t.Fatalf("recover() = %v, want a panic naming the task", r)
		}
	}()
	wren.Register("test.square", func(ctx context.Context, x int) (int, error) { return x, nil })
}

func TestWaitModes(t *testing.T) {
	ex := newExecutor(t, wren.Options{})
	ctx := testCtx(t)
	job, err := SleepCtx.Map(ctx, ex, []time.Duration{0, time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	done, pending, err := job.Wait(ctx, wren.AnyCompleted)
	if err != nil || len(done) != 1 || len(pending) != 1 || done[0].Index() != 0 {
		t.Fatalf("Wait(Any) = %d done, %d pending, %v", len(done), len(pending), err)
	}
	done, pending, err = job.Wait(ctx, wren.Always)
	if err != nil || len(done) != 1 || len(pending) != 1 || pending[0].Done() {
		t.Fatalf("Wait(Always) = %d done, %d pending, %v", len(done), len(pending), err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, _, err := job.Wait(short, wren.AllCompleted); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wait(All) with a short context: %v", err)
	}
	job.Cancel()
	_, err = job.Results(ctx)
	if !errors.Is(err, wren.ErrCancelled) {
		t.Fatalf("after Cancel: %v, want ErrCancelled", err)
	}
	v, err := job.Futures()[0].Result(ctx)
	if err != nil || v != "slept" {
		t.Fatalf("finished call after Cancel: %q, %v", v, err)
	}
}

// TestKilledWorkerRetried kills a worker process with SIGKILL from outside
// while it runs a call; the call is retried and the job completes with each
// output exactly once.
func TestKilledWorkerRetried(t *testing.T) {
	ex := newExecutor(t, wren.Options{})
	dir := t.TempDir()
	ctx := testCtx(t)
	in := []OnceIn{{Dir: dir, I: 0}, {Dir: dir, I: 1, Mode: "hang"}, {Dir: dir, I: 2}}
	job, err := Once.Map(ctx, ex, in)
	if err != nil {
		t.Fatal(err)
	}
	pid := waitPID(t, filepath.Join(dir, "marker-1"))
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	got, err := job.Results(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []int{0, 10, 20}) {
		t.Fatalf("results = %v", got)
	}
	st := job.Stats()
	if st.Retried != 1 || st.PerCall[1].Attempt != 1 {
		t.Fatalf("retried = %d, winning attempt of call 1 = %d; want 1 and 1", st.Retried, st.PerCall[1].Attempt)
	}
	assertExactlyOnce(t, ex.Store(), job.ID(), 3)
}

func waitPID(t *testing.T, marker string) int {
	t.Helper()
	for range 3000 {
		if b, err := os.ReadFile(marker); err == nil && len(b) > 0 {
			pid, err := strconv.Atoi(string(b))
			if err != nil {
				t.Fatal(err)
			}
			return pid
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no pid in %s", marker)
	return 0
}

// TestLostReported: a call whose worker dies on every attempt is reported
// lost after the retries, and Results does not block.
func TestLostReported(t *testing.T) {
	ex := newExecutor(t, wren.Options{Retries: 1})
	job, err := Die.Map(testCtx(t), ex, []int{1})
	if err != nil {
		t.Fatal(err)
	}
	_, err = job.Results(testCtx(t))
	var ce *wren.CallError
	if !errors.As(err, &ce) || !errors.Is(err, wren.ErrLost) || ce.Attempts != 2 || !errors.Is(err, worker.ErrWorkerDied) {
		t.Fatalf("err = %v, want a lost CallError after 2 attempts caused by a dead worker", err)
	}
	s, ok, _ := jobpkg.ReadStatus(context.Background(), ex.Store(), job.ID(), 0)
	if !ok || s.Error == nil || s.Error.Kind != jobpkg.KindLost {
		t.Fatalf("stored status = %+v, %v; want the driver's lost record", s, ok)
	}
}

func TestSelfKillRetried(t *testing.T) {
	ex := newExecutor(t, wren.Options{})
	f, err := Once.Call(testCtx(t), ex, OnceIn{Dir: t.TempDir(), I: 4, Mode: "exit"})
	if err != nil {
		t.Fatal(err)
	}
	if v, err := f.Result(testCtx(t)); err != nil || v != 40 {
		t.Fatalf("result = %d, %v; want 40", v, err)
	}
}

func TestRetryErrors(t *testing.T) {
	for _, retry := range []bool{false, true} {
		t.Run(fmt.Sprint("retry=", retry), func(t *testing.T) {
			ex := newExecutor(t, wren.Options{RetryErrors: retry})
			f, err := Once.Call(testCtx(t), ex, OnceIn{Dir: t.TempDir(), I: 1, Mode: "fail"})
			if err != nil {
				t.Fatal(err)
			}
			v, err := f.Result(testCtx(t))
			if retry {
				if err != nil || v != 10 {
					t.Fatalf("with RetryErrors: %d, %v; want 10", v, err)
				}
				return
			}
			var ce *wren.CallError
			if !errors.As(err, &ce) || ce.Attempts != 1 || !strings.Contains(ce.Message, "first attempt fails") {
				t.Fatalf("without RetryErrors: %v; want the function's error after 1 attempt", err)
			}
		})
	}
}

func TestTimeout(t *testing.T) {
	ex := newExecutor(t, wren.Options{Timeout: 300 * time.Millisecond})
	ctx := testCtx(t)
	t.Run("cooperative", func(t *testing.T) {
		f, err := SleepCtx.Call(ctx, ex, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Result(ctx); !errors.Is(err, wren.ErrTimeout) {
			t.Fatalf("err = %v, want ErrTimeout", err)
		}
	})
	t.Run("ignores context", func(t *testing.T) {
		before, err := PID.Call(ctx, ex, 0)
		if err != nil {
			t.Fatal(err)
		}
		pid1, _ := before.Result(ctx)
		f, err := Spin.Call(ctx, ex, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Result(ctx); !errors.Is(err, wren.ErrTimeout) {
			t.Fatalf("err = %v, want ErrTimeout", err)
		}
		// The spinning worker exited; the old process is gone.
		time.Sleep(100 * time.Millisecond)
		if err := syscall.Kill(pid1, 0); err == nil {
			// pid1 may be the other worker; the spinning one must be gone.
			for range 2 {
				after, _ := PID.Call(ctx, ex, 0)
				if p, _ := after.Result(ctx); p == 0 {
					t.Fatal("no worker after a stuck timeout")
				}
			}
		}
	})
}

func TestSpeculation(t *testing.T) {
	ex := newExecutor(t, wren.Options{Speculation: true})
	dir := t.TempDir()
	in := make([]OnceIn, 6)
	for i := range in {
		in[i] = OnceIn{Dir: dir, I: i}
	}
	in[5].Mode = "hang" // the straggler: never finishes unless relaunched
	job, err := Once.Map(testCtx(t), ex, in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := job.Results(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, []int{0, 10, 20, 30, 40, 50}) {
		t.Fatalf("results = %v", got)
	}
	st := job.Stats()
	if st.Speculative < 1 || st.PerCall[5].Attempt < 1 {
		t.Fatalf("speculative = %d, winner of call 5 = attempt %d; want a speculative win", st.Speculative, st.PerCall[5].Attempt)
	}
	assertExactlyOnce(t, ex.Store(), job.ID(), 6)
}

func TestBadInput(t *testing.T) {
	ctx := testCtx(t)
	t.Run("undecodable input", func(t *testing.T) {
		ex := newExecutor(t, wren.Options{})
		f, err := BadInput.Call(ctx, ex, undecodable{})
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.Result(ctx)
		if !errors.Is(err, wren.ErrDecode) || !strings.Contains(err.Error(), "corrupt input bytes") || !strings.Contains(err.Error(), "call 0") {
			t.Fatalf("err = %v, want a decode error naming the call", err)
		}
	})
	t.Run("unknown task", func(t *testing.T) {
		ex := newExecutor(t, wren.Options{})
		f, err := driverOnly.Call(ctx, ex, 1)
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.Result(ctx)
		if !errors.Is(err, wren.ErrUnknown) || !strings.Contains(err.Error(), "test.driveronly") {
			t.Fatalf("err = %v, want an unknown-task error naming it", err)
		}
	})
	t.Run("output over cap", func(t *testing.T) {
		ex := newExecutor(t, wren.Options{MaxOutputBytes: 1000})
		job, err := Big.Map(ctx, ex, []int{10, 5000})
		if err != nil {
			t.Fatal(err)
		}
		got, err := job.Results(ctx)
		if !errors.Is(err, wren.ErrTooLarge) || !strings.Contains(err.Error(), "call 1") || len(got[0]) != 10 {
			t.Fatalf("err = %v, want too-large for call 1 only", err)
		}
	})
	t.Run("input over cap", func(t *testing.T) {
		ex := newExecutor(t, wren.Options{MaxInputBytes: 100})
		_, err := BigIn.Map(ctx, ex, [][]byte{nil, make([]byte, 500)})
		if !errors.Is(err, wren.ErrTooLarge) || !strings.Contains(err.Error(), "input 1") {
			t.Fatalf("err = %v, want too-large naming input 1", err)
		}
	})
	t.Run("unknown store scheme", func(t *testing.T) {
		_, err := wren.NewExecutor(ctx, wren.Options{Store: "ftp://host/x"})
		if !errors.Is(err, blob.ErrUnknownScheme) || !strings.Contains(err.Error(), "ftp://host/x") {
			t.Fatalf("err = %v, want an unknown-scheme error naming the URL", err)
		}
	})
	t.Run("unreachable S3", func(t *testing.T) {
		testenv.SetS3Env(t)
		url := "s3://bucket/x?endpoint=http://127.0.0.1:1"
		ex := newExecutor(t, wren.Options{Store: url})
		_, err := Square.Map(ctx, ex, []int{1})
		if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
			t.Fatalf("err = %v, want an error naming the endpoint", err)
		}
	})
}

var BigIn = wren.Register("test.bigin", func(ctx context.Context, b []byte) (int, error) { return len(b), nil })

// TestCancelKillsWorkers cancels a driver's context while calls run: the
// workers are killed, the calls fail as cancelled, and the store holds no
// partial object.
func TestCancelKillsWorkers(t *testing.T) {
	ex := newExecutor(t, wren.Options{})
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(testCtx(t))
	job, err := Once.Map(ctx, ex, []OnceIn{{Dir: dir, I: 0, Mode: "hang"}, {Dir: dir, I: 1, Mode: "hang"}, {Dir: dir, I: 2, Mode: "hang"}})
	if err != nil {
		t.Fatal(err)
	}
	// Two calls run (one per worker process); the third waits.
	var pids []int
	var pending string
	for range 3000 {
		pids, pending = nil, ""
		for i := range 3 {
			m := filepath.Join(dir, "marker-"+strconv.Itoa(i))
			if b, err := os.ReadFile(m); err == nil && len(b) > 0 {
				pid, _ := strconv.Atoi(string(b))
				pids = append(pids, pid)
			} else {
				pending = m
			}
		}
		if len(pids) == 2 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if len(pids) != 2 {
		t.Fatalf("%d calls started, want 2", len(pids))
	}
	cancel()
	_, err = job.Results(context.Background())
	var je *wren.JobError
	if !errors.As(err, &je) || len(je.Failed) != 3 || !errors.Is(err, wren.ErrCancelled) {
		t.Fatalf("err = %v, want 3 cancelled calls", err)
	}
	for _, pid := range pids {
		gone := false
		for range 500 {
			if syscall.Kill(pid, 0) != nil {
				gone = true
				break
			}
			var ws syscall.WaitStatus
			syscall.Wait4(pid, &ws, syscall.WNOHANG, nil)
			time.Sleep(10 * time.Millisecond)
		}
		if !gone {
			t.Errorf("worker pid %d still alive after cancel", pid)
		}
	}
	time.Sleep(100 * time.Millisecond)
	if _, err := os.Stat(pending); err == nil {
		t.Error("a call was launched after the cancel")
	}
	// Every object in the store is complete: statuses parse, no temp files.
	root := ex.Store().URL()[len("file://"):]
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if fi != nil && !fi.IsDir() && strings.HasPrefix(fi.Name(), blob.TempPrefix) {
			t.Errorf("partial object left: %s", p)
		}
		if strings.Contains(p, "/status/") && !fi.IsDir() {
			b, _ := os.ReadFile(p)
			if !json.Valid(b) {
				t.Errorf("half-written status %s", p)
			}
		}
		return nil
	})
}

func TestTimelineAndProgress(t *testing.T) {
	var bar bytes.Buffer
	ex, err := wren.NewExecutor(context.Background(), wren.Options{Store: t.TempDir(), Parallelism: 2, Progress: wren.ProgressOn, ProgressOutput: &bar})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	in := make([]time.Duration, 20)
	for i := range in {
		in[i] = 5 * time.Millisecond
	}
	job, err := Spin.Map(testCtx(t), ex, in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := job.Results(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	// AllCallStats yields what Stats holds, holding no lock while it
	// yields (a loop body may ask the job for more).
	var all []wren.CallStats
	for c := range job.AllCallStats() {
		if one, ok := job.CallStats(c.Call); !ok || one != c || job.Summary().Done != 20 {
			t.Fatalf("call %d: %v %+v", c.Call, ok, one)
		}
		all = append(all, c)
	}
	if st := job.Stats(); !slices.Equal(all, st.PerCall) || len(all) != 20 {
		t.Fatalf("AllCallStats yields %d calls, Stats %d", len(all), len(st.PerCall))
	}
	path := filepath.Join(t.TempDir(), "timeline.png")
	if err := timeline.Plot(job, path); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() < 500 || b.Dy() < 200 {
		t.Fatalf("timeline is %v", b)
	}
	if !strings.Contains(bar.String(), "20/20") {
		t.Fatalf("progress output lacks 20/20: %q", bar.String())
	}
	if s := job.Stats().String(); !strings.Contains(s, "compute") || !strings.Contains(s, "20 done") {
		t.Fatalf("summary: %s", s)
	}
}

// TestDispatchOrder: calls are handed to workers in input order.
func TestDispatchOrder(t *testing.T) {
	ex := newExecutor(t, wren.Options{})
	in := make([]time.Duration, 12)
	for i := range in {
		in[i] = 5 * time.Millisecond
	}
	job, err := SleepCtx.Map(testCtx(t), ex, in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := job.Results(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	st := job.Stats()
	for i := 1; i < len(st.PerCall); i++ {
		if st.PerCall[i].Dispatched.Before(st.PerCall[i-1].Dispatched) {
			t.Fatalf("call %d dispatched before call %d", i, i-1)
		}
	}
}

// TestTimelineAggregate: past LaneCalls calls the timeline shows the job
// in aggregate (calls in flight per phase, worker utilisation), in every
// format, from the job and from stats read back from the store.
func TestTimelineAggregate(t *testing.T) {
	ex := newExecutor(t, wren.Options{ChunkSize: 50})
	in := make([]time.Duration, timeline.LaneCalls+2000)
	for i := range in {
		in[i] = 200 * time.Microsecond
	}
	job, err := Spin.Map(testCtx(t), ex, in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := job.Results(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, name := range []string{"agg.png", "agg.svg", "agg.pdf"} {
		path := filepath.Join(dir, name)
		if err := timeline.Plot(job, path); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(path); err != nil || fi.Size() < 5000 {
			t.Fatalf("%s: %v %v", name, fi, err)
		}
	}
	f, err := os.Open(filepath.Join(dir, "agg.png"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() < 700 || b.Dy() < 600 {
		t.Fatalf("aggregate timeline is %v", b)
	}
	rs, err := wren.ReadJobStats(testCtx(t), ex.Store(), job.ID())
	if err != nil {
		t.Fatal(err)
	}
	if err := timeline.Plot(rs, filepath.Join(dir, "from-store.png")); err != nil {
		t.Fatal(err)
	}
	if out := os.Getenv("WREN_TEST_TIMELINE"); out != "" {
		b, _ := os.ReadFile(filepath.Join(dir, "agg.png"))
		os.WriteFile(out, b, 0o644)
	}
}
