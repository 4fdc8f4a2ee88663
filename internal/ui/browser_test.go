package ui

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/job"
)

// gate releases the browser test's calls one by one.
var gate = make(chan struct{}, 1000)

var gatedTask = wren.Register("ui.test.gated", func(ctx context.Context, x int) (int, error) {
	select {
	case <-gate:
		return x * x, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	}
})

// chromiumPath finds Debian's chromium (make test installs it).
func chromiumPath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("no chromium on PATH: make test installs Debian's chromium (make chromium)")
	return ""
}

// chromium runs headless Chromium on url and returns what it printed
// (the DOM with -dump-dom) and its log; it fails on a JavaScript error.
func chromium(t *testing.T, bin string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	all := append([]string{"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--hide-scrollbars", "--no-first-run",
		"--user-data-dir=" + t.TempDir(), "--enable-logging=stderr", "--v=0"}, args...)
	cmd := exec.CommandContext(ctx, bin, all...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("chromium %v: %v\n%s", args, err, errb.String())
	}
	for _, line := range strings.Split(errb.String(), "\n") {
		// The pages log nothing: any console message is an error, a
		// policy violation or a failed request.
		if strings.Contains(line, "CONSOLE") {
			t.Fatalf("the browser's console: %s", line)
		}
	}
	return out.String()
}

// TestBrowser: headless Chromium opens the jobs list and a running job's
// page; while the page is open more calls finish, and the page shows them
// without a reload. Screenshots of both pages are saved.
func TestBrowser(t *testing.T) {
	bin := chromiumPath(t)
	ctx := context.Background()
	dir := t.TempDir()
	ex, err := wren.NewExecutor(ctx, wren.Options{Store: filepath.Join(dir, "store"), Backend: wren.InProcess(4), Progress: wren.ProgressOff})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	in := make([]int, 30)
	for i := range in {
		in[i] = i
	}
	j, err := gatedTask.Map(ctx, ex, in)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for range 30 {
			gate <- struct{}{}
		}
		j.Results(ctx)
	}()
	st := ex.Store()
	statuses := func() int {
		keys, _ := blob.Keys(ctx, st, job.StatusPrefix(j.ID()))
		return len(keys)
	}
	release := func(n, want int) {
		for range n {
			gate <- struct{}{}
		}
		for deadline := time.Now().Add(30 * time.Second); statuses() < want; {
			if time.Now().After(deadline) {
				t.Fatalf("%d statuses, want %d", statuses(), want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	release(5, 5)

	// The job's page: its second poll waits until 10 more calls are done.
	srv := New(Options{Store: st, Refresh: time.Millisecond})
	var polls atomic.Int64
	h := srv.Handler()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/job/"+j.ID() && polls.Add(1) == 2 {
			release(10, 15)
		}
		h.ServeHTTP(w, r)
	}))
	defer ts.Close()
	shots := filepath.Join(os.TempDir(), "wren-ui-screenshots")
	os.MkdirAll(shots, 0o755)

	dom := chromium(t, bin, "--virtual-time-budget=6000", "--dump-dom", ts.URL+"/job/"+j.ID())
	if polls.Load() < 3 {
		t.Fatalf("the page polled %d times", polls.Load())
	}
	for _, want := range []string{"15 / 30", "ui.test.gated", "running", `id="timeline"`, "timeline (15 calls on"} {
		if !strings.Contains(dom, want) {
			t.Fatalf("the job's page after the live update lacks %q:\n%s", want, dom)
		}
	}
	chromium(t, bin, "--virtual-time-budget=3000", "--window-size=1280,900", "--screenshot="+filepath.Join(shots, "job.png"), ts.URL+"/job/"+j.ID())

	// The jobs list.
	dom = chromium(t, bin, "--virtual-time-budget=3000", "--dump-dom", ts.URL+"/")
	if !strings.Contains(dom, j.ID()) || !strings.Contains(dom, "1 jobs") {
		t.Fatalf("the jobs list lacks the job:\n%s", dom)
	}
	chromium(t, bin, "--virtual-time-budget=3000", "--window-size=1280,600", "--screenshot="+filepath.Join(shots, "jobs.png"), ts.URL+"/")
	// A training run and a sweep.
	fakeRun(t, st, "bbbb01", "done", 6, time.Now())
	fakeSweep(t, st, "20261130-120000-abcd", 0, 8)
	for _, p := range []struct {
		path, shot string
		want       []string
	}{
		{"/runs", "runs.png", []string{"bbbb01", "m-bbbb01", "done"}},
		{"/run/bbbb01", "run.png", []string{`id="loss"`, `id="quality"`, `id="version"`, `id="workers"`, "500"}},
		{"/sweeps", "sweeps.png", []string{"20261130-120000-abcd", "accuracy (max)"}},
		{"/sweep/20261130-120000-abcd", "sweep.png", []string{`id="trials"`, `id="best"`, `id="parallel"`, `id="rungs"`, "diverged", "0.57", "lr"}},
	} {
		dom := chromium(t, bin, "--virtual-time-budget=3000", "--dump-dom", ts.URL+p.path)
		for _, w := range p.want {
			if !strings.Contains(dom, w) {
				t.Fatalf("%s lacks %q:\n%s", p.path, w, dom)
			}
		}
		chromium(t, bin, "--virtual-time-budget=3000", "--window-size=1280,900", "--screenshot="+filepath.Join(shots, p.shot), ts.URL+p.path)
	}
	for _, f := range []string{"job.png", "jobs.png", "runs.png", "run.png", "sweeps.png", "sweep.png"} {
		if fi, err := os.Stat(filepath.Join(shots, f)); err != nil || fi.Size() < 5000 {
			t.Fatalf("screenshot %s: %v", f, err)
		}
	}
	t.Logf("screenshots in %s", shots)
	fmt.Fprint(os.Stderr, "")
}
