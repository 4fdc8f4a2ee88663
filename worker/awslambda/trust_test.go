package awslambda_test

import (
	"context"
	"encoding/json"
	"errors"
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

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/internal/emulator"
	"github.com/wrenml/wren/internal/testenv"
	jobpkg "github.com/wrenml/wren/job"
	"github.com/wrenml/wren/worker/awslambda"
	"github.com/wrenml/wren/worker/awslambda/internal/e2e"
	"github.com/wrenml/wren/worker/remote"
)

// offsetBinary builds the tests' job binary with e2e.Offset set: it
// answers x*x + offset.
func offsetBinary(t *testing.T, offset string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "worker-"+offset)
	cmd := exec.Command("go", "build", "-ldflags", "-X github.com/wrenml/wren/worker/awslambda/internal/e2e.Offset="+offset, "-o", out, "./testdata/worker")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, msg)
	}
	return out
}

// squares maps x = 0..n-1 under a fixed job ID with the given binary and
// returns the results.
func squares(t *testing.T, emus []*emulator.Emulator, store, exe, id string, n int) []int {
	t.Helper()
	b, err := awslambda.New(awsConfig(), awslambda.Options{Emulators: emulator.URLs(emus), Executable: exe, FunctionTimeout: 30e9})
	if err != nil {
		t.Fatal(err)
	}
	ex := wrenExecutor(t, b, store)
	job, err := e2e.Square.Map(ctxFor(t), ex, inputs(n, t.TempDir()), wren.WithJobID(id))
	if err != nil {
		t.Fatal(err)
	}
	got, err := job.Results(ctxFor(t))
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestWarmContainerRunsTheJobsOwnBinary: a warm container that ran a job
// keeps its binary for the next invocations, but only for the same store
// and the same code: a job cleaned and run again under its ID with a
// rebuilt binary, and a job of the same ID in another store (WithJobID
// reused across buckets), each run their own binary (the runtime used to
// cache job -> binary by job ID alone).
func TestWarmContainerRunsTheJobsOwnBinary(t *testing.T) {
	bootstrap, plain := binaries(t)
	other := offsetBinary(t, "1000")
	s3 := testenv.StartS3(t)
	s3.CreateBucket(t, "jobs")
	s3.CreateBucket(t, "tenant2")
	a, b := "s3://jobs/wren?endpoint="+s3.Endpoint, "s3://tenant2/wren?endpoint="+s3.Endpoint
	// One emulator: every invocation lands in the same warm container.
	emus := testenv.StartEmulators(t, 1, bootstrap, "TMPDIR="+t.TempDir(), remote.EnvAllowedStore+"="+a+" "+b)
	want := func(got []int, off int) {
		t.Helper()
		for i, v := range got {
			if v != i*i+off {
				t.Fatalf("result %d = %d, want %d: another binary ran the call", i, v, i*i+off)
			}
		}
	}
	// Cleaned and run again under the same ID with a rebuilt binary.
	want(squares(t, emus, a, plain, "same-id", 5), 0)
	st, err := wren.OpenStore(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := blob.DeletePrefix(context.Background(), st, jobpkg.JobPrefix("same-id")); err != nil {
		t.Fatal(err)
	}
	want(squares(t, emus, a, other, "same-id", 5), 1000)
	// And again with the same binary (the warm worker process read the
	// first run's inputs under the same keys).
	if _, err := blob.DeletePrefix(context.Background(), st, jobpkg.JobPrefix("same-id")); err != nil {
		t.Fatal(err)
	}
	want(squares(t, emus, a, other, "same-id", 6), 1000)
	// The same job ID in two stores, each with its own binary.
	want(squares(t, emus, b, plain, "tenant-job", 4), 0)
	want(squares(t, emus, a, other, "tenant-job", 4), 1000)
	want(squares(t, emus, b, plain, "tenant-job-2", 3), 0)
	want(squares(t, emus, a, plain, "tenant-job-2", 4), 0)
}

// countingProxy is a reverse proxy in front of an S3 server that records
// the path of every request.
type countingProxy struct {
	URL   string
	mu    sync.Mutex
	paths []string
}

func newCountingProxy(t *testing.T, target string) *countingProxy {
	p := &countingProxy{}
	var h http.Handler = http.NotFoundHandler()
	if target != "" {
		u, _ := url.Parse(target)
		h = httputil.NewSingleHostReverseProxy(u)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.paths = append(p.paths, r.URL.Path)
		p.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.URL = srv.URL
	return p
}

func (p *countingProxy) reset() {
	p.mu.Lock()
	p.paths = nil
	p.mu.Unlock()
}

func (p *countingProxy) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.paths...)
}

// TestAllowedStore: whoever can invoke the function cannot make it run
// code from anywhere but the store its deployer allowed. An invocation
// naming another bucket, another prefix, another endpoint, or an endpoint
// where none was allowed is refused, naming the allowed store, before the
// runtime sends any request; the allowed store works; a function deployed
// without one refuses everything.
func TestAllowedStore(t *testing.T) {
	bootstrap, job := binaries(t)
	s3 := testenv.StartS3(t)
	s3.CreateBucket(t, "jobs")
	s3.CreateBucket(t, "elsewhere")
	proxy := newCountingProxy(t, s3.Endpoint)
	attacker := newCountingProxy(t, "")
	allowed := "s3://jobs/wren?endpoint=" + proxy.URL
	emus := testenv.StartEmulators(t, 1, bootstrap, "TMPDIR="+t.TempDir(), remote.EnvAllowedStore+"="+allowed)
	// The allowed store runs jobs.
	if got := squares(t, emus, allowed, job, "allowed", 3); got[2] != 4 {
		t.Fatalf("results %v", got)
	}
	client := lambda.NewFromConfig(awsConfig(), func(o *lambda.Options) { o.BaseEndpoint = aws.String(emus[0].URL) })
	invoke := func(store string) string {
		t.Helper()
		inv := jobpkg.Invocation{Store: store, Job: "allowed", Task: "e2e.square", Calls: []jobpkg.Call{{Index: 0, Attempt: 7}}}
		payload, _ := json.Marshal(inv)
		out, err := client.Invoke(ctxFor(t), &lambda.InvokeInput{FunctionName: aws.String("function"), Payload: payload})
		if err != nil {
			t.Fatal(err)
		}
		return string(out.Payload)
	}
	for name, store := range map[string]string{
		"another bucket":       "s3://elsewhere/wren?endpoint=" + proxy.URL,
		"another prefix":       "s3://jobs/other?endpoint=" + proxy.URL,
		"a sub-prefix":         "s3://jobs/wren/sub?endpoint=" + proxy.URL,
		"another endpoint":     "s3://jobs/wren?endpoint=" + attacker.URL,
		"no endpoint":          "s3://jobs/wren",
		"another scheme":       "file:///tmp/wren",
		"an endpoint with a ?": "s3://jobs/wren?endpoint=" + url.QueryEscape(attacker.URL+"/?x=1"),
	} {
		t.Run(name, func(t *testing.T) {
			proxy.reset()
			out := invoke(store)
			if !strings.Contains(out, "runs jobs from "+allowed) {
				t.Fatalf("answer %s: want a refusal naming the allowed store", out)
			}
			if p := proxy.seen(); len(p) != 0 {
				t.Fatalf("the runtime sent %v to the store's server", p)
			}
			if p := attacker.seen(); len(p) != 0 {
				t.Fatalf("the runtime sent %v to the invocation's endpoint", p)
			}
		})
	}
	// The same store, spelled with other harmless parameters, is allowed.
	proxy.reset()
	if out := invoke("s3://jobs/wren/?region=us-east-1&path_style=true&endpoint=" + proxy.URL); strings.Contains(out, "runs jobs from") {
		t.Fatalf("the allowed store with other parameters refused: %s", out)
	}
	// A function deployed without an allowed store runs nothing.
	none := testenv.StartEmulators(t, 1, bootstrap, "TMPDIR="+t.TempDir(), remote.EnvAllowedStore+"=")
	b, err := awslambda.New(awsConfig(), awslambda.Options{Emulators: emulator.URLs(none), Executable: job, FunctionTimeout: 30e9})
	if err != nil {
		t.Fatal(err)
	}
	ex := wrenExecutor(t, b, allowed)
	f, err := e2e.Square.Call(ctxFor(t), ex, e2e.In{X: 3, Dir: t.TempDir()}, wren.WithRetries(-1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Result(ctxFor(t)); err == nil || !strings.Contains(err.Error(), "allows no store") {
		t.Fatalf("err = %v, want the function's refusal", err)
	}
	if !errors.Is(remote.CheckStore(allowed, nil), remote.ErrStoreNotAllowed) {
		t.Fatal("CheckStore with nothing allowed")
	}
}
