package awslambda_test

import (
	"context"
	"errors"
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
	"github.com/wrenml/wren/internal/testenv"
	"github.com/wrenml/wren/worker"
	"github.com/wrenml/wren/worker/awslambda"
	"github.com/wrenml/wren/worker/awslambda/internal/e2e"
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
	emus  []*testenv.Emulator
	job   string
	dir   string // shared with the functions, for the tasks' marker files
}

func setup(t *testing.T, emulators int) *env {
	t.Helper()
	bootstrap, job := binaries(t)
	s3 := testenv.StartS3(t)
	s3.CreateBucket(t, "jobs")
	e := &env{store: "s3://jobs/wren?endpoint=" + s3.Endpoint, job: job, dir: t.TempDir()}
	e.emus = testenv.StartEmulators(t, emulators, bootstrap, "TMPDIR="+t.TempDir())
	return e
}

func awsConfig() aws.Config {
	return aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("wren-test", "wren-test-secret", "")}
}

func (e *env) executor(t *testing.T, opts awslambda.Options, wopts wren.Options) *wren.Executor {
	t.Helper()
	if opts.Emulators == nil {
		opts.Emulators = testenv.URLs(e.emus)
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

func fetches(es []*testenv.Emulator) int {
	n := 0
	for _, e := range es {
		n += strings.Count(e.Output(), "wren-lambda: fetched code")
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
			s, ok, err := worker.ReadStatus(context.Background(), ex.Store(), job.ID(), i)
			if err != nil || !ok || !s.OK || s.Attempt != 0 {
				t.Fatalf("call %d: status %+v, %v, %v", i, s, ok, err)
			}
		}
		st := job.Stats()
		t.Logf("chunk %d: %d calls, wall %v, %.2f puts and %.2f gets per call", chunk, st.Calls, st.Wall, float64(st.Requests.Puts)/200, float64(st.Requests.Gets)/200)
	}
	if n := fetches(e.emus); n != len(e.emus) {
		t.Fatalf("%d downloads of the binary by %d containers over 240 invocations, want one each", n, len(e.emus))
	}
}
