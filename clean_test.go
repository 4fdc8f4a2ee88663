package wren_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/job"
)

// TestCleanAfterCancel: a driver interrupted while its calls run (Ctrl-C)
// cleans its job: nothing of the job is left in the store, even what the
// job writes as it ends (its summary, the driver's record; left behind
// before, as `make demo`'s mf example showed after a Ctrl-C). Clean on a
// running job cancels it first.
func TestCleanAfterCancel(t *testing.T) {
	dir := t.TempDir()
	ex := newExecutor(t, wren.Options{Store: dir})
	for _, how := range []string{"context cancelled", "still running"} {
		ctx, cancel := context.WithCancel(context.Background())
		f, err := SleepCtx.Call(ctx, ex, 30*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		time.Sleep(300 * time.Millisecond)
		if how == "context cancelled" {
			cancel()
			if _, err := f.Result(ctx); err == nil {
				t.Fatal("a cancelled call returned")
			}
		}
		start := time.Now()
		if err := f.Job().Clean(context.WithoutCancel(ctx)); err != nil {
			t.Fatal(err)
		}
		if d := time.Since(start); d > 20*time.Second {
			t.Fatalf("%s: Clean took %v", how, d)
		}
		cancel()
		time.Sleep(500 * time.Millisecond) // anything written late would be there now
		var left []string
		filepath.WalkDir(filepath.Join(dir, "jobs"), func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				left = append(left, p)
			}
			return nil
		})
		if len(left) > 0 {
			t.Fatalf("%s: left in the store after Clean: %v", how, left)
		}
	}
}

// TestCancelDuringMap: a context cancelled while Map is still submitting
// the job (the caller's cancel raced the engine's start: the job wrapped
// up twice, "close of closed channel", seen in tune's sweeps) ends the job
// once, and Wait never hangs.
func TestCancelDuringMap(t *testing.T) {
	ex := newExecutor(t, wren.Options{Backend: wren.InProcess(2)})
	for i := range 1000 {
		ctx, cancel := context.WithCancel(context.Background())
		go func() {
			time.Sleep(time.Duration(i%40) * 25 * time.Microsecond)
			cancel()
		}()
		job, err := Square.Map(ctx, ex, make([]int, i%4))
		if err != nil {
			cancel()
			continue
		}
		select {
		case <-job.Done():
		case <-time.After(20 * time.Second):
			t.Fatalf("run %d: the job never ended", i)
		}
		cancel()
	}
}

// TestJobStateCancelled: a job cancelled after some of its calls ran is
// "cancelled" in its driver's record, counting the calls that finished
// before the cancel, and its summary counts the cancelled calls; a job
// that ran every call is "done".
func TestJobStateCancelled(t *testing.T) {
	ctx := context.Background()
	ex := newExecutor(t, wren.Options{Backend: wren.InProcess(2)})
	j, err := SleepCtx.Map(ctx, ex, []time.Duration{0, time.Hour, time.Hour, time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if err := j.Futures()[0].Wait(ctx); err != nil {
		t.Fatal(err)
	}
	j.Cancel()
	<-j.Done()
	m, err := job.ReadManifest(ctx, ex.Store(), j.ID())
	if err != nil {
		t.Fatal(err)
	}
	state, done, err := wren.JobState(ctx, ex.Store(), m)
	if err != nil || state != "cancelled" || done != 1 {
		t.Fatalf("cancelled job: state %q, %d done, %v; want cancelled, 1", state, done, err)
	}
	if s := j.Summary(); s.Cancelled != 3 || s.Failed != 3 || s.Done != 4 {
		t.Fatalf("in-process summary: done %d, failed %d, cancelled %d", s.Done, s.Failed, s.Cancelled)
	}
	j2, err := SleepCtx.Map(ctx, ex, []time.Duration{0, 0})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j2.Results(ctx); err != nil {
		t.Fatal(err)
	}
	m2, _ := job.ReadManifest(ctx, ex.Store(), j2.ID())
	if state, done, err := wren.JobState(ctx, ex.Store(), m2); err != nil || state != "done" || done != 2 {
		t.Fatalf("finished job: %q, %d, %v", state, done, err)
	}
}
