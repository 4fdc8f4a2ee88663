package wren_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/internal/testenv"
	jobpkg "github.com/wrenml/wren/job"
)

// AttachIn is a call of the Attach tests' task.
type AttachIn struct {
	X     int
	Dir   string // where each run of a call leaves a marker
	Sleep time.Duration
}

// Mark leaves a marker per run (exec-<call>-<pid>-<n>), sleeps, and
// squares.
var Mark = wren.Register("test.mark", func(ctx context.Context, in AttachIn) (int, error) {
	name := fmt.Sprintf("exec-%d-%d-%d", in.X, os.Getpid(), time.Now().UnixNano())
	if err := os.WriteFile(filepath.Join(in.Dir, name), nil, 0o644); err != nil {
		return 0, err
	}
	select {
	case <-time.After(in.Sleep):
	case <-ctx.Done():
		return 0, ctx.Err()
	}
	return in.X * in.X, nil
})

func markInputs(n int, dir string, sleep time.Duration) []AttachIn {
	in := make([]AttachIn, n)
	for i := range in {
		in[i] = AttachIn{X: i, Dir: dir, Sleep: sleep}
	}
	return in
}

// runs counts the marker files: runs per call, and the PIDs that ran them.
func runs(t *testing.T, dir string) (map[int]int, map[int]bool) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	per, pids := map[int]int{}, map[int]bool{}
	for _, e := range ents {
		f := strings.Split(e.Name(), "-")
		if len(f) != 4 || f[0] != "exec" {
			continue
		}
		c, _ := strconv.Atoi(f[1])
		pid, _ := strconv.Atoi(f[2])
		per[c]++
		pids[pid] = true
	}
	return per, pids
}

// attachDriver is the driver that TestAttachAfterDriverKilled kills: this
// test binary, run with $WREN_TEST_ATTACH_DRIVER set to "store dir job".
func attachDriver(spec string) int {
	f := strings.Fields(spec)
	ctx := context.Background()
	ex, err := wren.NewExecutor(ctx, wren.Options{Store: f[0], Parallelism: 2, ChunkSize: 3, Progress: wren.ProgressOff})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	job, err := Mark.Map(ctx, ex, markInputs(500, f[1], 10*time.Millisecond), wren.WithJobID(f[2]))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("started", job.ID())
	_, err = job.Results(ctx)
	fmt.Println("finished", err)
	return 0
}

// TestAttachAfterDriverKilled: the driver of a 500-call map on local worker
// processes is SIGKILLed mid-way; a new driver attaches by job ID: every
// call has exactly one output, the calls done before the kill are not run
// again, no worker process of the dead driver is left, and the new
// driver's attempts are numbered above the dead one's.
func TestAttachAfterDriverKilled(t *testing.T) {
	store, dir := t.TempDir(), t.TempDir()
	const id = "attach-after-kill"
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "WREN_TEST_ATTACH_DRIVER="+store+" "+dir+" "+id)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(out).ReadString('\n'); err != nil || !strings.HasPrefix(line, "started") {
		t.Fatalf("driver said %q, %v", line, err)
	}
	statusDir := filepath.Join(store, "jobs", id, "status")
	deadline := time.Now().Add(time.Minute)
	for {
		ents, _ := os.ReadDir(statusDir)
		if len(ents) >= 150 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d calls done after a minute", len(ents))
		}
		time.Sleep(5 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	// Its workers die with it (they may finish the call in hand first).
	_, deadPIDs := runs(t, dir)
	deadline = time.Now().Add(10 * time.Second)
	for pid := range deadPIDs {
		for syscall.Kill(pid, 0) == nil {
			if time.Now().After(deadline) {
				t.Fatalf("worker %d of the killed driver is still running", pid)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	ents, _ := os.ReadDir(statusDir)
	doneBefore := map[int]bool{}
	for _, e := range ents {
		if c, ok := jobpkg.ParseCallName(e.Name()); ok {
			doneBefore[c] = true
		}
	}
	t.Logf("%d of 500 calls done when the driver was killed", len(doneBefore))
	if len(doneBefore) >= 500 {
		t.Fatal("the driver finished before it was killed")
	}

	ex := newExecutor(t, wren.Options{Store: store})
	job, err := Mark.Attach(testCtx(t), ex, id)
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
	per, _ := runs(t, dir)
	for c := range doneBefore {
		if per[c] != 1 {
			t.Errorf("call %d, done before the kill, ran %d times", c, per[c])
		}
	}
	for c := range 500 {
		if per[c] == 0 {
			t.Errorf("call %d never ran", c)
		}
	}
	st := job.Stats()
	if st.Done != 500 || st.Failed != 0 || st.Attempts < 500-len(doneBefore) || st.Attempts > 500-len(doneBefore)+20 {
		t.Fatalf("stats %d done, %d failed, %d attempts by the new driver (%d calls were left)", st.Done, st.Failed, st.Attempts, 500-len(doneBefore))
	}
	drivers, err := jobpkg.ReadDrivers(testCtx(t), ex.Store(), id)
	if err != nil || len(drivers) != 2 || drivers[1].State != "done" || drivers[1].Done != 500 {
		t.Fatalf("driver records %+v, %v", drivers, err)
	}
	for _, c := range st.PerCall {
		if !doneBefore[c.Call] && c.Attempt < drivers[0].Ceiling {
			t.Fatalf("call %d won by attempt %d, below the dead driver's ceiling %d", c.Call, c.Attempt, drivers[0].Ceiling)
		}
	}
	// Attached again once finished: every call done, nothing runs.
	again, err := Mark.Attach(testCtx(t), ex, id)
	if err != nil {
		t.Fatal(err)
	}
	got2, err := again.Results(testCtx(t))
	if err != nil || len(got2) != 500 || got2[499] != 499*499 || again.Stats().Attempts != 0 {
		t.Fatalf("a finished job attached: %d results, %v, %d attempts", len(got2), err, again.Stats().Attempts)
	}
}

// TestAttachLiveDriver: a job whose driver runs is refused; WithForce
// takes it over, and the first driver's calls stop with ErrTakenOver.
func TestAttachLiveDriver(t *testing.T) {
	defer wren.SetHeartbeat(100 * time.Millisecond)()
	store, dir := t.TempDir(), t.TempDir()
	ex1 := newExecutor(t, wren.Options{Store: store})
	ex2 := newExecutor(t, wren.Options{Store: store})
	ctx := testCtx(t)
	job1, err := Mark.Map(ctx, ex1, markInputs(60, dir, 100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Mark.Attach(ctx, ex2, job1.ID()); !errors.Is(err, wren.ErrJobRunning) || !strings.Contains(err.Error(), "WithForce") {
		t.Fatalf("attach to a running job: %v", err)
	}
	job2, err := Mark.Attach(ctx, ex2, job1.ID(), wren.WithForce())
	if err != nil {
		t.Fatal(err)
	}
	got, err := job2.Results(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got[59] != 59*59 {
		t.Fatalf("results %v", got)
	}
	// The first driver noticed at its next heartbeat and stopped: its
	// unfinished calls failed with ErrTakenOver.
	select {
	case <-job1.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("the first driver did not stop after the takeover")
	}
	_, err = job1.Results(ctx)
	var je *wren.JobError
	if !errors.As(err, &je) || !errors.Is(je.Failed[0].Err, wren.ErrTakenOver) {
		t.Fatalf("the first driver's job: %v", err)
	}
	drivers, err := jobpkg.ReadDrivers(ctx, ex1.Store(), job1.ID())
	if err != nil || len(drivers) != 2 || drivers[0].State != "taken-over" || drivers[1].State != "done" {
		t.Fatalf("driver records %+v, %v", drivers, err)
	}
}

// TestAttachBadCases: a wrong task, a missing job, a bad ID, another
// binary without WithForce, and calls whose input the dead driver never
// wrote (lost, the rest complete).
func TestAttachBadCases(t *testing.T) {
	ctx := testCtx(t)
	store, dir := t.TempDir(), t.TempDir()
	ex := newExecutor(t, wren.Options{Store: store})
	job, err := Mark.Map(ctx, ex, markInputs(40, dir, 0), wren.WithChunkSize(4))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := job.Results(ctx); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		attach func() error
		want   string
	}{
		"wrong task": {func() error { _, err := Square.Attach(ctx, ex, job.ID()); return err }, `runs task "test.mark"`},
		"missing":    {func() error { _, err := Mark.Attach(ctx, ex, "no-such-job"); return err }, "not found"},
		"bad ID":     {func() error { _, err := Mark.Attach(ctx, ex, "../x"); return err }, "bad job ID"},
		"empty ID":   {func() error { _, err := Mark.Attach(ctx, ex, ""); return err }, "bad job ID"},
	} {
		if err := c.attach(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
	// Another binary's job: its manifest names other code.
	m, err := jobpkg.ReadManifest(ctx, ex.Store(), job.ID())
	if err != nil {
		t.Fatal(err)
	}
	m.Code = strings.Repeat("0", 64)
	m.Job = "other-binary"
	writeJob := func(m jobpkg.Manifest) {
		t.Helper()
		b, _ := json.Marshal(m)
		if err := blob.PutBytes(ctx, ex.Store(), jobpkg.ManifestKey(m.Job), b, blob.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	writeJob(m)
	if _, err := Mark.Attach(ctx, ex, m.Job); err == nil || !strings.Contains(err.Error(), "WithForce") {
		t.Fatalf("another binary: %v", err)
	}
	// A driver that died before writing some inputs: the calls of a
	// deleted pack are lost, the others complete.
	dir2 := t.TempDir()
	job2, err := Mark.Map(ctx, ex, markInputs(40, dir2, 0), wren.WithChunkSize(4))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := job2.Results(ctx); err != nil {
		t.Fatal(err)
	}
	keys, _ := blob.Keys(ctx, ex.Store(), jobpkg.InputPrefix(job2.ID()))
	if len(keys) < 2 {
		t.Fatalf("inputs %v: want several packs", keys)
	}
	blob.DeletePrefix(ctx, ex.Store(), jobpkg.StatusPrefix(job2.ID()))
	blob.DeletePrefix(ctx, ex.Store(), jobpkg.DriverPrefix(job2.ID()))
	ex.Store().Delete(ctx, keys[len(keys)-1])
	job3, err := Mark.Attach(ctx, ex, job2.ID())
	if err != nil {
		t.Fatal(err)
	}
	_, err = job3.Results(ctx)
	var je *wren.JobError
	if !errors.As(err, &je) || len(je.Failed) == 0 || !errors.Is(je.Failed[0], wren.ErrLost) || !strings.Contains(je.Failed[0].Message, "input is not in the store") {
		t.Fatalf("lost inputs: %v", err)
	}
	if je.Failed[len(je.Failed)-1].Call != 39 || len(je.Failed) >= 40 {
		t.Fatalf("failed calls %d..%d of 40: want the last pack's only", je.Failed[0].Call, je.Failed[len(je.Failed)-1].Call)
	}
}

// TestAttachBeforeInputsWritten: a driver taken over (WithForce) while it
// still writes its inputs (here each input's put stalls 1-2 s) writes them
// all before it says it stopped, and the driver that took over waits for
// them: no call is lost (before, the calls whose inputs were not written
// yet failed as "the driver that started the job died before writing it").
func TestAttachBeforeInputsWritten(t *testing.T) {
	defer wren.SetHeartbeat(100 * time.Millisecond)()
	root, dir := t.TempDir(), t.TempDir()
	store := "file://" + filepath.Join(root, "store")
	slow := testenv.FaultURL(store, testenv.Faults{Delay: 1, MaxDelay: 2 * time.Second, Only: "/in/"})
	ex1 := newExecutor(t, wren.Options{Store: slow})
	ex2 := newExecutor(t, wren.Options{Store: store})
	ctx := testCtx(t)
	job1, err := Mark.Map(ctx, ex1, markInputs(40, dir, 0))
	if err != nil {
		t.Fatal(err)
	}
	job2, err := Mark.Attach(ctx, ex2, job1.ID(), wren.WithForce())
	if err != nil {
		t.Fatal(err)
	}
	got, err := job2.Results(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if v != i*i {
			t.Fatalf("result %d = %d", i, v)
		}
	}
	<-job1.Done()
}
