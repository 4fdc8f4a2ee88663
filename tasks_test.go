package wren_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/worker"
)

// Tasks used by the tests; registered at package level in driver and workers alike.
var (
	Square = wren.Register("test.square", func(ctx context.Context, x int) (int, error) { return x * x, nil })

	FailOnMultipleOf3 = wren.Register("test.fail3", func(ctx context.Context, x int) (int, error) {
		if x%3 == 0 {
			return 0, fmt.Errorf("%d is a multiple of 3", x)
		}
		return x, nil
	})

	Panic = wren.Register("test.panic", func(ctx context.Context, x int) (int, error) {
		var m map[string]int
		//lint:ignore SA5000 a deliberate runtime panic
		m["boom"] = x
		return 0, nil
	})

	SleepCtx = wren.Register("test.sleepctx", func(ctx context.Context, d time.Duration) (string, error) {
		select {
		case <-time.After(d):
			return "slept", nil
		case <-ctx.Done():
			return "", ctx.Err()
		}
	})

	// Spin ignores its context: only killing the process stops it.
	Spin = wren.Register("test.spin", func(ctx context.Context, d time.Duration) (int, error) {
		end := time.Now().Add(d)
		n := 0
		for time.Now().Before(end) {
			n++
		}
		return n, nil
	})

	Big = wren.Register("test.big", func(ctx context.Context, n int) ([]byte, error) { return make([]byte, n), nil })

	BadInput = wren.Register("test.badinput", func(ctx context.Context, in undecodable) (int, error) { return 1, nil })

	// Once behaves per input: the first attempt that sees no marker file
	// creates it and then misbehaves as asked; later attempts succeed.
	Once = wren.Register("test.once", func(ctx context.Context, in OnceIn) (int, error) {
		marker := filepath.Join(in.Dir, "marker-"+strconv.Itoa(in.I))
		f, err := os.OpenFile(marker, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err != nil { // not the first attempt
			return in.I * 10, nil
		}
		fmt.Fprint(f, os.Getpid())
		f.Close()
		switch in.Mode {
		case "hang": // wait to be killed (or cancelled, or superseded)
			<-ctx.Done()
			return 0, ctx.Err()
		case "fail":
			return 0, errors.New("first attempt fails")
		case "exit":
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
		return in.I * 10, nil
	})

	// Die kills its own worker process on every attempt.
	Die = wren.Register("test.die", func(ctx context.Context, x int) (int, error) {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	})

	// PID reports the worker's process ID.
	PID = wren.Register("test.pid", func(ctx context.Context, x int) (int, error) { return os.Getpid(), nil })
)

// OnceIn is the input of the Once task.
type OnceIn struct {
	Dir  string
	I    int
	Mode string // "hang", "fail", "exit" or "" (succeed)
}

// undecodable encodes but never decodes.
type undecodable struct{}

func (undecodable) GobEncode() ([]byte, error) { return []byte("x"), nil }
func (*undecodable) GobDecode([]byte) error    { return errors.New("corrupt input bytes") }

// driverOnly is registered in the driver but not in workers, like a task
// from a binary the workers do not run.
var driverOnly *wren.Task[int, int]

func TestMain(m *testing.M) {
	if os.Getenv(worker.EnvMode) == "" {
		driverOnly = wren.Register("test.driveronly", func(ctx context.Context, x int) (int, error) { return x, nil })
	}
	wren.Init()
	if spec := os.Getenv("WREN_TEST_ATTACH_DRIVER"); spec != "" {
		os.Exit(attachDriver(spec))
	}
	os.Exit(m.Run())
}
