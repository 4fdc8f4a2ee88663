package worker_test

import (
	"context"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wrenml/wren/internal/testenv"
	"github.com/wrenml/wren/job"
	"github.com/wrenml/wren/worker"
)

// envHelloDelay makes a worker started from this test binary wait before
// it says hello, so that tests can act while it starts.
const envHelloDelay = "WREN_TEST_HELLO_DELAY"

func TestMain(m *testing.M) {
	if os.Getenv(worker.EnvMode) == "local" {
		if d, err := time.ParseDuration(os.Getenv(envHelloDelay)); err == nil {
			time.Sleep(d)
		}
		if err := worker.ServeLocal(context.Background(), lookup); err != nil {
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func selfBackend(t *testing.T, n int, env ...string) *worker.Local {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := worker.NewLocal(worker.LocalOptions{Parallelism: n, Executable: exe, Env: env, Output: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestLocalCloseWhileStarting closes the backend while its processes are
// still starting: Close kills them, the leases fail, and no process is left.
func TestLocalCloseWhileStarting(t *testing.T) {
	b := selfBackend(t, 2, envHelloDelay+"=700ms")
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, err := b.Lease(context.Background())
			if l != nil {
				l.Release()
			}
			errs[i] = err
		}()
	}
	// Wait until both processes run (and wait to say hello).
	for range 500 {
		if len(testenv.Children(t)) == 2 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := len(testenv.Children(t)); n != 2 {
		t.Fatalf("%d processes starting, want 2", n)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if left := testenv.Children(t); len(left) != 0 {
		t.Fatalf("processes left after Close: %v", left)
	}
	wg.Wait()
	for i, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "closed") {
			t.Errorf("lease %d after Close: %v", i, err)
		}
	}
	time.Sleep(800 * time.Millisecond) // past the hello delay
	if left := testenv.Children(t); len(left) != 0 {
		t.Fatalf("processes started after Close: %v", left)
	}
	if _, err := b.Lease(context.Background()); err == nil {
		t.Fatal("Lease after Close succeeded")
	}
}

// TestLocalReplacesDeadProcesses kills the backend's processes from
// outside between invocations: each is replaced, the stats count them, and
// invocations keep running on Parallelism processes.
func TestLocalReplacesDeadProcesses(t *testing.T) {
	_, url := setup(t, 1)
	b := selfBackend(t, 2)
	defer b.Close()
	inv := func() error {
		_, err := b.Invoke(context.Background(), &job.Invocation{Store: url, Job: "j", Task: "echo", Calls: []job.Call{{Index: 0}}})
		return err
	}
	for round := range 3 {
		for range 4 {
			if err := inv(); err != nil {
				t.Fatal(err)
			}
		}
		if n := testenv.KillChildren(t); n == 0 {
			t.Fatalf("round %d: no process to kill", round)
		}
		// The dead are forgotten as soon as they are reaped.
		for range 500 {
			if b.Stats().Running == 0 {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		if st := b.Stats(); st.Running != 0 {
			t.Fatalf("round %d: %d processes still counted after the kill", round, st.Running)
		}
	}
	if err := inv(); err != nil {
		t.Fatal(err)
	}
	st := b.Stats()
	if st.Replaced < 3 || st.Started < 4 || st.Running < 1 || st.Running > 2 {
		t.Fatalf("stats %+v", st)
	}
}
