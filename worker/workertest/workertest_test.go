package workertest_test

import (
	"context"
	"os"
	"testing"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/worker/workertest"
)

func TestMain(m *testing.M) {
	wren.Init()
	os.Exit(m.Run())
}

func executor(backend func() wren.Options) func(t *testing.T, o wren.Options) *wren.Executor {
	return func(t *testing.T, o wren.Options) *wren.Executor {
		b := backend()
		o.Backend, o.Parallelism, o.Store, o.Progress = b.Backend, b.Parallelism, t.TempDir(), wren.ProgressOff
		ex, err := wren.NewExecutor(context.Background(), o)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ex.Close() })
		return ex
	}
}

// TestInProcess: the suite on goroutines of this process.
func TestInProcess(t *testing.T) {
	workertest.Run(t, workertest.Env{
		Executor:    executor(func() wren.Options { return wren.Options{Backend: wren.InProcess(3)} }),
		Dir:         func(t *testing.T) string { return t.TempDir() },
		Parallelism: 3,
	})
}

// TestLocal: the suite on local worker processes.
func TestLocal(t *testing.T) {
	workertest.Run(t, workertest.Env{
		Executor:    executor(func() wren.Options { return wren.Options{Parallelism: 2} }),
		Dir:         func(t *testing.T) string { return t.TempDir() },
		Parallelism: 2,
		Isolated:    true,
		Logs:        true,
	})
}
