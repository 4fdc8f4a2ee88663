package awslambda_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/internal/emulator"
	"github.com/wrenml/wren/internal/testenv"
	jobpkg "github.com/wrenml/wren/job"
	"github.com/wrenml/wren/worker"
	"github.com/wrenml/wren/worker/awslambda"
	"github.com/wrenml/wren/worker/awslambda/internal/e2e"
	"github.com/wrenml/wren/worker/remote"
	"github.com/wrenml/wren/worker/workertest"
)

var (
	buildOnce            sync.Once
	bootstrapBin, jobBin string
	buildErr             error
)

// binaries builds the runtime (bootstrap) and the job's worker program,
// both static linux executables, as a user's build would make them.
func binaries(t *testing.T) (bootstrap, job string) {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "wren-lambda-e2e-")
		if err != nil {
			buildErr = err
			return
		}
		bootstrapBin, jobBin = filepath.Join(dir, "bootstrap"), filepath.Join(dir, "worker")
		for out, pkg := range map[string]string{bootstrapBin: "github.com/wrenml/wren/cmd/wren-lambda", jobBin: "./testdata/worker"} {
			cmd := exec.Command("go", "build", "-o", out, pkg)
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
			if msg, err := cmd.CombinedOutput(); err != nil {
				buildErr = errors.New(string(msg))
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return bootstrapBin, jobBin
}

// env is a running setup: an S3 server with a bucket, and emulators
// running the runtime.
type env struct {
	store string
	emus  []*emulator.Emulator
	job   string
	dir   string // shared with the functions, for the tasks' marker files
}

func setup(t *testing.T, emulators int, envs ...string) *env {
	t.Helper()
	bootstrap, job := binaries(t)
	s3 := testenv.StartS3(t)
	s3.CreateBucket(t, "jobs")
	e := &env{store: "s3://jobs/wren?endpoint=" + s3.Endpoint, job: job, dir: t.TempDir()}
	e.emus = testenv.StartEmulators(t, emulators, bootstrap, append([]string{"TMPDIR=" + t.TempDir(), remote.EnvAllowedStore + "=" + e.store}, envs...)...)
	return e
}

func awsConfig() aws.Config {
	return aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("wren-test", "wren-test-secret", "")}
}

func (e *env) executor(t *testing.T, opts awslambda.Options, wopts wren.Options) *wren.Executor {
	t.Helper()
	if opts.Emulators == nil {
		opts.Emulators = emulator.URLs(e.emus)
	}
	if opts.Executable == "" {
		opts.Executable = e.job
	}
	if opts.FunctionTimeout == 0 {
		opts.FunctionTimeout = 30 * time.Second
	}
	b, err := awslambda.New(awsConfig(), opts)
	if err != nil {
		t.Fatal(err)
	}
	wopts.Backend, wopts.Store, wopts.Progress = b, e.store, wren.ProgressOff
	ex, err := wren.NewExecutor(context.Background(), wopts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close() })
	return ex
}

func ctxFor(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func inputs(n int, dir string) []e2e.In {
	in := make([]e2e.In, n)
	for i := range in {
		in[i] = e2e.In{X: i, Dir: dir}
	}
	return in
}

func check(t *testing.T, got []int, n int) {
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

func fetches(es []*emulator.Emulator) int {
	n := 0
	for _, e := range es {
		n += strings.Count(e.Output(), "wren-runtime: fetched code")
	}
	return n
}

// TestMapOnEmulators maps 200 calls on the runtime under 3 emulators, with
// the store on an S3-compatible server: every result right, each status
// exactly once, and each container fetched the job's binary once, then
// reused it from its cache across warm invocations.
func TestMapOnEmulators(t *testing.T) {
	e := setup(t, 3)
	for _, chunk := range []int{1, 5} {
		ex := e.executor(t, awslambda.Options{}, wren.Options{ChunkSize: chunk})
		job, err := e2e.Square.Map(ctxFor(t), ex, inputs(200, e.dir))
		if err != nil {
			t.Fatal(err)
		}
		got, err := job.Results(ctxFor(t))
		if err != nil {
			t.Fatal(err)
		}
		check(t, got, 200)
		for i := range 200 {
			s, ok, err := jobpkg.ReadStatus(context.Background(), ex.Store(), job.ID(), i)
			if err != nil || !ok || !s.OK || s.Attempt != 0 {
				t.Fatalf("call %d: status %+v, %v, %v", i, s, ok, err)
			}
		}
		st := job.Stats()
		t.Logf("chunk %d: %d calls, wall %v, %.2f puts and %.2f gets per call; %+v", chunk, st.Calls, st.Wall, float64(st.Requests.Puts)/200, float64(st.Requests.Gets)/200, st.Billing)
		if bl := st.Billing; bl == nil || bl.Invocations != int64(200/chunk) || bl.Billed < time.Duration(200/chunk)*time.Millisecond || bl.USD <= 0 || bl.MemoryMB != 1769 || bl.EstimatedInvocations != 0 {
			t.Fatalf("billing %+v: want %d invocations of at least 1 ms billed, all measured", bl, 200/chunk)
		}
	}
	if n := fetches(e.emus); n != len(e.emus) {
		t.Fatalf("%d downloads of the binary by %d containers over 240 invocations, want one each", n, len(e.emus))
	}
}

// TestCrashesRetried: a worker process that exits, a function whose
// goroutine panics (the process dies), and a runtime killed with SIGKILL:
// each call is retried and the map completes.
func TestCrashesRetried(t *testing.T) {
	e := setup(t, 2)
	ex := e.executor(t, awslambda.Options{}, wren.Options{Retries: 4})
	in := inputs(30, e.dir)
	in[3].Mode, in[11].Mode, in[20].Mode, in[25].Mode = "exit", "crash", "kill-runtime", "error"
	job, err := e2e.Square.Map(ctxFor(t), ex, in)
	if err != nil {
		t.Fatal(err)
	}
	got, err := job.Results(ctxFor(t))
	// The function's own error is the call's result, not retried.
	var je *wren.JobError
	if !errors.As(err, &je) || len(je.Failed) != 1 || je.Failed[0].Call != 25 || !strings.Contains(je.Failed[0].Message, "the function failed") {
		t.Fatalf("err = %v, want call 25's function error only", err)
	}
	got[25] = 25 * 25
	check(t, got, 30)
	st := job.Stats()
	if st.Retried < 3 || st.PerCall[3].Attempt < 1 || st.PerCall[11].Attempt < 1 || st.PerCall[20].Attempt < 1 {
		t.Fatalf("retried %d; winning attempts of the crashed calls: %d %d %d", st.Retried, st.PerCall[3].Attempt, st.PerCall[11].Attempt, st.PerCall[20].Attempt)
	}
	// Every invocation is billed, the crashed ones too (estimated: their
	// runtime reported no duration).
	if bl := st.Billing; bl == nil || bl.Invocations != int64(st.Attempts) || bl.EstimatedInvocations < 3 || bl.EstimatedBilled <= 0 || bl.EstimatedBilled > bl.Billed {
		t.Fatalf("billing %+v for %d attempts: want every one billed, the crashed ones estimated", bl, st.Attempts)
	}
	if !strings.Contains(st.String(), "of which estimated") {
		t.Fatalf("the summary does not say what is estimated:\n%s", st)
	}
}

// front is an HTTP server in front of an emulator that throttles (429) or
// swallows (accepts and never answers) its first requests.
type front struct {
	URL      string
	mu       sync.Mutex
	throttle int // requests still to answer 429
	swallow  int // requests still to swallow
	seen     int
}

func newFront(t *testing.T, target string, throttle, swallow int) *front {
	f := &front{throttle: throttle, swallow: swallow}
	u, _ := url.Parse(target)
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.seen++
		th, sw := f.throttle > 0, f.throttle == 0 && f.swallow > 0
		if th {
			f.throttle--
		} else if sw {
			f.swallow--
		}
		f.mu.Unlock()
		switch {
		case th:
			w.Header().Set("X-Amzn-ErrorType", "TooManyRequestsException")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"Reason":"ReservedFunctionConcurrentInvocationLimitExceeded","Type":"User","message":"Rate Exceeded."}`)
		case sw:
			// Accepted, never answered. (The body read first, so that the
			// server notices when the client gives up.)
			io.Copy(io.Discard, r.Body)
			select {
			case <-r.Context().Done():
			case <-time.After(2 * time.Minute):
			}
		default:
			proxy.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// TestThrottledAndLost: invocations that Lambda throttles are sent again
// after a backoff; an invocation accepted and never answered is given up
// after the function's timeout and its call relaunched; the map completes.
func TestThrottledAndLost(t *testing.T) {
	e := setup(t, 1)
	t.Run("throttled", func(t *testing.T) {
		f := newFront(t, e.emus[0].URL, 4, 0)
		b, err := awslambda.New(awsConfig(), awslambda.Options{Emulators: []string{f.URL}, Executable: e.job, FunctionTimeout: 30 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ex := wrenExecutor(t, b, e.store)
		job, err := e2e.Square.Map(ctxFor(t), ex, inputs(10, e.dir))
		if err != nil {
			t.Fatal(err)
		}
		got, err := job.Results(ctxFor(t))
		if err != nil {
			t.Fatal(err)
		}
		check(t, got, 10)
		if b.Throttles() != 4 || job.Stats().Retried != 0 {
			t.Fatalf("%d throttled invocations sent again, %d calls retried; want 4 and 0", b.Throttles(), job.Stats().Retried)
		}
		if bl := job.Stats().Billing; bl.Invocations != 10 || bl.EstimatedInvocations != 0 {
			t.Fatalf("billing %+v: want the 10 invocations that ran, not the throttled tries", bl)
		}
	})
	t.Run("lost", func(t *testing.T) {
		f := newFront(t, e.emus[0].URL, 0, 1)
		b, err := awslambda.New(awsConfig(), awslambda.Options{Emulators: []string{f.URL}, Executable: e.job, FunctionTimeout: time.Second, LostGrace: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ex := wrenExecutor(t, b, e.store)
		job, err := e2e.Square.Map(ctxFor(t), ex, inputs(3, t.TempDir()))
		if err != nil {
			t.Fatal(err)
		}
		got, err := job.Results(ctxFor(t))
		if err != nil {
			t.Fatal(err)
		}
		check(t, got, 3)
		st := job.Stats()
		if st.Retried != 1 || st.PerCall[0].Attempt != 1 {
			t.Fatalf("retried %d, call 0 won by attempt %d; want the lost invocation relaunched", st.Retried, st.PerCall[0].Attempt)
		}
		// The lost invocation is billed for the function's whole timeout.
		if bl := st.Billing; bl.Invocations != 4 || bl.EstimatedInvocations != 1 || bl.EstimatedBilled != time.Second || bl.Billed < time.Second {
			t.Fatalf("billing %+v: want 4 invocations, the lost one estimated at the 1 s timeout", bl)
		}
	})
}

func wrenExecutor(t *testing.T, b *awslambda.Backend, store string) *wren.Executor {
	ex, err := wren.NewExecutor(context.Background(), wren.Options{Backend: b, Store: store, Progress: wren.ProgressOff})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close() })
	return ex
}

// TestRefusedCode: a binary of another architecture, a dynamically linked
// one, a store the function cannot reach, and a binary in the store that
// does not match its hash are each a clear error.
func TestRefusedCode(t *testing.T) {
	e := setup(t, 1)
	ctx := ctxFor(t)
	dir := t.TempDir()
	arm := filepath.Join(dir, "worker-arm64")
	build := exec.Command("go", "build", "-o", arm, "./testdata/worker")
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOARCH=arm64")
	if msg, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, msg)
	}
	for name, c := range map[string]struct {
		exe, arch, store, want string
	}{
		"arm64 binary, x86_64 function": {arm, awslambda.ArchX86, e.store, "built for EM_AARCH64"},
		"x86_64 binary, arm64 function": {e.job, awslambda.ArchARM, e.store, "built for EM_X86_64"},
		"dynamic binary":                {"/bin/ls", awslambda.ArchX86, e.store, "dynamically linked"},
		"local store":                   {e.job, awslambda.ArchX86, "file://" + dir, "cannot reach the store"},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := awslambda.New(awsConfig(), awslambda.Options{Emulators: emulator.URLs(e.emus), Executable: c.exe, Arch: c.arch})
			if err != nil {
				t.Fatal(err)
			}
			ex := wrenExecutor(t, b, c.store)
			_, err = e2e.Square.Map(ctx, ex, inputs(1, dir))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, c.want)
			}
		})
	}
	t.Run("bad hash", func(t *testing.T) {
		ex := e.executor(t, awslambda.Options{}, wren.Options{Retries: -1})
		hash, err := ex.Backend().(*awslambda.Backend).Prepare(ctx, ex.Store())
		if err != nil {
			t.Fatal(err)
		}
		// The object under the binary's hash is replaced by other bytes.
		if err := blob.PutBytes(ctx, ex.Store(), jobpkg.BinaryKey(hash), []byte("#!/bin/sh\necho not the binary\n"), blob.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		f, err := e2e.Square.Call(ctx, ex, e2e.In{X: 2, Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Result(ctx); err == nil || !strings.Contains(err.Error(), "does not match its hash") {
			t.Fatalf("err = %v, want the hash mismatch", err)
		}
	})
}

// errorFront answers every invocation with a Lambda API error.
func errorFront(t *testing.T, status int, errType, msg string) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("X-Amzn-ErrorType", errType)
		w.WriteHeader(status)
		fmt.Fprintf(w, `{"Type":"User","message":%q}`, msg)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestBadSetups: a missing function, a denied permission, a call timeout
// longer than the function's, the function's timeout ending a call, and an
// invocation over Lambda's payload limit are each a clear error naming the
// function or the call, and the job stops at once instead of retrying.
func TestBadSetups(t *testing.T) {
	e := setup(t, 1)
	dir := t.TempDir()
	for name, c := range map[string]struct {
		emulator string
		opts     []wren.MapOption
		in       e2e.In
		want     string
	}{
		"missing function": {errorFront(t, 404, "ResourceNotFoundException", "Function not found: arn:aws:lambda:us-east-1:123456789012:function:wren-runtime"), nil, e2e.In{X: 1}, "Function not found"},
		"access denied":    {errorFront(t, 403, "AccessDeniedException", "User: arn:aws:iam::123456789012:user/x is not authorized to perform: lambda:InvokeFunction"), nil, e2e.In{X: 1}, "not authorized"},
		"call timeout":     {e.emus[0].URL, []wren.MapOption{wren.WithTimeout(time.Minute)}, e2e.In{X: 1}, "outlast the function's timeout"},
	} {
		t.Run(name, func(t *testing.T) {
			b, err := awslambda.New(awsConfig(), awslambda.Options{Emulators: []string{c.emulator}, Executable: e.job, FunctionTimeout: 30 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			ex := wrenExecutor(t, b, e.store)
			c.in.Dir = dir
			job, err := e2e.Square.Map(ctxFor(t), ex, []e2e.In{c.in, {X: 2, Dir: dir}, {X: 3, Dir: dir}}, c.opts...)
			if err != nil {
				t.Fatal(err)
			}
			_, err = job.Results(ctxFor(t))
			var je *wren.JobError
			if !errors.As(err, &je) || len(je.Failed) != 3 || !strings.Contains(err.Error(), c.want) || !errors.Is(err, worker.ErrPermanent) {
				t.Fatalf("err = %v, want every call stopped with %q", err, c.want)
			}
			if st := job.Stats(); st.Attempts > 3 || st.Retried != 0 {
				t.Fatalf("%d attempts, %d retried: a permanent error was retried", st.Attempts, st.Retried)
			}
		})
	}
	t.Run("function timeout", func(t *testing.T) {
		bootstrap, _ := binaries(t)
		short := testenv.StartEmulators(t, 1, bootstrap, "TMPDIR="+t.TempDir(), "AWS_LAMBDA_FUNCTION_TIMEOUT=2", remote.EnvAllowedStore+"="+e.store)
		ex := e.executor(t, awslambda.Options{Emulators: emulator.URLs(short), FunctionTimeout: 2 * time.Second, LostGrace: 5 * time.Second}, wren.Options{Retries: -1})
		f, err := e2e.Square.Call(ctxFor(t), ex, e2e.In{X: 4, Mode: "slow", D: 4 * time.Second, Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		_, err = f.Result(ctxFor(t))
		if err == nil || !strings.Contains(err.Error(), "timeout") {
			t.Fatalf("err = %v, want one naming the function's timeout", err)
		}
		t.Logf("%v", err)
		if bl := f.Job().Stats().Billing; bl.Invocations != 1 || bl.EstimatedInvocations != 1 || bl.Billed != 2*time.Second {
			t.Fatalf("billing %+v: a timed-out invocation is billed the whole 2 s timeout", bl)
		}
	})
}

// TestAsync: Event invocations, with completion taken from the statuses in
// the store.
// Event invocations are billed (estimated from the calls' own times: the
// runtime reports no duration to an asynchronous caller).
func TestAsync(t *testing.T) {
	e := setup(t, 2)
	ex := e.executor(t, awslambda.Options{Async: true}, wren.Options{})
	job, err := e2e.Square.Map(ctxFor(t), ex, inputs(20, e.dir))
	if err != nil {
		t.Fatal(err)
	}
	got, err := job.Results(ctxFor(t))
	if err != nil {
		t.Fatal(err)
	}
	check(t, got, 20)
	if bl := job.Stats().Billing; bl.Invocations != 20 || bl.EstimatedInvocations != 20 || bl.Billed < 20*time.Millisecond || bl.GBSeconds <= 0 {
		t.Fatalf("billing %+v: want 20 asynchronous invocations billed", bl)
	}
}

// TestLargeInvocations: an invocation over the payload limit (1 MB for
// Event invocations, 6 MB otherwise; lowered here) keeps its calls in the
// store and runs, synchronously and asynchronously, instead of stopping
// the job.
func TestLargeInvocations(t *testing.T) {
	e := setup(t, 2)
	for _, async := range []bool{false, true} {
		ex := e.executor(t, awslambda.Options{Async: async, MaxPayload: 2000}, wren.Options{ChunkSize: 30})
		job, err := e2e.Square.Map(ctxFor(t), ex, inputs(75, e.dir))
		if err != nil {
			t.Fatal(err)
		}
		got, err := job.Results(ctxFor(t))
		if err != nil {
			t.Fatalf("async %v: %v", async, err)
		}
		check(t, got, 75)
		keys, err := blob.Keys(ctxFor(t), ex.Store(), jobpkg.InvocationPrefix(job.ID()))
		if err != nil || len(keys) != 3 {
			t.Fatalf("async %v: calls objects %v, %v; want one per invocation of 30, 30 and 15 calls", async, keys, err)
		}
	}
}

// TestRebuild: a driver built with cgo (dynamically linked) cannot be
// uploaded as it is; run inside its module, the backend rebuilds it for
// linux with CGO_ENABLED=0 and says so; run elsewhere, it fails with the
// reason.
func TestRebuild(t *testing.T) {
	e := setup(t, 1)
	drv := filepath.Join(t.TempDir(), "driver")
	build := exec.Command("go", "build", "-o", drv, "./testdata/driver")
	build.Env = append(os.Environ(), "CGO_ENABLED=1")
	if msg, err := build.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, msg)
	}
	if err := remote.CheckBinary(drv, "amd64"); err == nil {
		t.Skip("this toolchain links a cgo build statically; nothing to rebuild") // not on Debian's gcc
	}
	wd, _ := os.Getwd()
	for _, c := range []struct {
		dir  string
		want []string
		ok   bool
	}{
		{wd, []string{"rebuilding github.com/wrenml/wren/worker/awslambda/testdata/driver for linux/amd64", "results [4 9]"}, true},
		{t.TempDir(), []string{"dynamically linked", "cannot be rebuilt", "not found"}, false},
	} {
		cmd := exec.Command(drv)
		cmd.Dir = c.dir
		cmd.Env = append(os.Environ(), "E2E_EMULATORS="+e.emus[0].URL, "E2E_STORE="+e.store, "E2E_DIR="+e.dir)
		out, err := cmd.CombinedOutput()
		if (err == nil) != c.ok {
			t.Fatalf("in %s: %v\n%s", c.dir, err, out)
		}
		for _, w := range c.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("in %s: output lacks %q:\n%s", c.dir, w, out)
			}
		}
	}
}

// TestConformance runs the backend conformance suite on the runtime under
// three emulators.
func TestConformance(t *testing.T) {
	e := setup(t, 3, "AWS_LAMBDA_FUNCTION_TIMEOUT=20")
	// One backend for every test: an emulator still running an
	// invocation given up (a superseded attempt) must get no other.
	b, err := awslambda.New(awsConfig(), awslambda.Options{Emulators: emulator.URLs(e.emus), Executable: e.job, FunctionTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	workertest.Run(t, workertest.Env{
		Executor: func(t *testing.T, o wren.Options) *wren.Executor {
			o.Backend, o.Store, o.Progress = b, e.store, wren.ProgressOff
			ex, err := wren.NewExecutor(context.Background(), o)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { ex.Close() })
			return ex
		},
		Dir:         func(t *testing.T) string { return t.TempDir() },
		Parallelism: 3,
		Isolated:    true,
		Logs:        true,
	})
}
