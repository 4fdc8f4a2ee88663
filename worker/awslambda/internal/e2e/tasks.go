// Package e2e holds the tasks of the Lambda end-to-end tests: the test
// (the driver) and the static worker program in ../../testdata/worker
// register the same tasks.
package e2e

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/tune"
)

// In is a call's input: the value to square and how to misbehave on the
// first attempt that finds no marker file in Dir (a directory the test and
// the emulators share, on this machine).
type In struct {
	X    int
	Mode string // "", "exit", "crash", "kill-runtime", "sleep", "error"; "slow": sleep D on every attempt
	Dir  string
	D    time.Duration
}

// Offset is added to every square: a binary built with
// -ldflags "-X github.com/wrenml/wren/worker/awslambda/internal/e2e.Offset=1000"
// answers differently from the default one, so that a test can tell which
// binary ran a call.
var Offset string

// Square squares X (plus Offset), after misbehaving once as In.Mode asks.
var Square = wren.Register("e2e.square", func(ctx context.Context, in In) (int, error) {
	if in.Mode == "slow" {
		select {
		case <-time.After(in.D):
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
	if in.Mode != "" && in.Mode != "slow" && first(in) {
		switch in.Mode {
		case "exit":
			os.Exit(3)
		case "crash":
			go func() { panic("a goroutine's panic kills the process") }()
			select {}
		case "kill-runtime":
			// The runtime (bootstrap) is this worker's parent.
			syscall.Kill(os.Getppid(), syscall.SIGKILL)
			select {}
		case "sleep":
			select {
			case <-time.After(in.D):
			case <-ctx.Done():
				return 0, ctx.Err()
			}
		case "error":
			return 0, errors.New("the function failed")
		}
	}
	off, _ := strconv.Atoi(Offset)
	return in.X*in.X + off, nil
})

// first reports whether this is the first attempt of the call (it creates
// the call's marker file).
func first(in In) bool {
	f, err := os.OpenFile(filepath.Join(in.Dir, "marker-"+strconv.Itoa(in.X)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// Trial is the tune trial of the end-to-end sweep: gradient descent on
// (x - target)^2 from x = 0 with the trial's learning rate, one step a
// budget unit, continuing from the checkpoint of the rung the trial was
// promoted from. It reports the loss and how many steps it took itself
// (a promoted trial that did not continue would take its whole budget).
var Trial = wren.Register("e2e.trial", func(ctx context.Context, p tune.Params) (tune.Metrics, error) {
	state, held, err := p.LoadCheckpoint(ctx)
	if err != nil {
		return nil, err
	}
	x := 0.0
	if state != nil {
		if x, err = strconv.ParseFloat(string(state), 64); err != nil {
			return nil, fmt.Errorf("e2e: checkpoint %q: %w", state, err)
		}
	}
	lr, target := p.Float("lr"), p.Float("target")
	steps := p.Budget() - held
	for range steps {
		x -= lr * 2 * (x - target)
	}
	if err := p.SaveCheckpoint(ctx, []byte(strconv.FormatFloat(x, 'g', -1, 64))); err != nil {
		return nil, err
	}
	return tune.Metrics{"loss": (x - target) * (x - target), "steps": float64(steps)}, nil
})
