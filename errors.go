package wren

import (
	"errors"
	"fmt"
	"strings"

	"github.com/wrenml/wren/worker"
)

// Sentinels matched (with errors.Is) by a *CallError of the same kind.
var (
	ErrTimeout   = errors.New("wren: call timed out")
	ErrPanic     = errors.New("wren: call panicked")
	ErrLost      = errors.New("wren: call lost")
	ErrCancelled = errors.New("wren: call cancelled")
	ErrTooLarge  = errors.New("wren: payload too large")
	ErrDecode    = errors.New("wren: input could not be decoded")
	ErrUnknown   = errors.New("wren: unknown task")
	// ErrStore matches a call whose worker could never read its input or
	// record its result (the store failed on every attempt).
	ErrStore = errors.New("wren: store error")
)

var kindSentinel = map[worker.ErrorKind]error{
	worker.KindTimeout:     ErrTimeout,
	worker.KindPanic:       ErrPanic,
	worker.KindLost:        ErrLost,
	worker.KindCancelled:   ErrCancelled,
	worker.KindTooLarge:    ErrTooLarge,
	worker.KindDecode:      ErrDecode,
	worker.KindUnknownTask: ErrUnknown,
	worker.KindStore:       ErrStore,
}

// CallError is the failure of one call: the worker's message, the stack of a
// panic, and how many attempts were made.
type CallError struct {
	Job      string
	Task     string
	Call     int
	Kind     worker.ErrorKind
	Message  string
	Stack    string // the panicking goroutine's stack, for KindPanic
	Attempts int    // attempts launched for the call
	Worker   string // the worker that reported the error, if any
	Err      error  // the driver-side cause (for lost and cancelled calls)
	// Log is the last lines the function printed (stdout, stderr, slog),
	// from a local or Lambda worker; LogKey names all of it in the store
	// (wren jobs logs prints it).
	Log    string
	LogKey string
}

func (e *CallError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "wren: job %s: call %d of task %q: %s", e.Job, e.Call, e.Task, e.Kind)
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.Err != nil && !strings.Contains(e.Message, e.Err.Error()) {
		b.WriteString(": " + e.Err.Error())
	}
	if e.Log != "" {
		lines := strings.Split(strings.TrimRight(e.Log, "\n"), "\n")
		fmt.Fprintf(&b, " [last output: %q]", lines[len(lines)-1])
	}
	fmt.Fprintf(&b, " (%d attempt", e.Attempts)
	if e.Attempts != 1 {
		b.WriteString("s")
	}
	if e.Worker != "" {
		b.WriteString(", last on " + e.Worker)
	}
	b.WriteString(")")
	return b.String()
}

// Unwrap returns the driver-side cause, if any.
func (e *CallError) Unwrap() error { return e.Err }

// Is matches the sentinel of the error's kind (ErrTimeout, ErrPanic, ...).
func (e *CallError) Is(target error) bool { return kindSentinel[e.Kind] == target }

// JobError reports the calls of a job that failed. errors.As finds each
// *CallError through it.
type JobError struct {
	Job    string
	Calls  int
	Failed []*CallError
}

func (e *JobError) Error() string {
	if len(e.Failed) == 1 {
		return e.Failed[0].Error()
	}
	return fmt.Sprintf("wren: job %s: %d of %d calls failed; first: %v", e.Job, len(e.Failed), e.Calls, e.Failed[0])
}

// Unwrap returns the calls' errors.
func (e *JobError) Unwrap() []error {
	out := make([]error, len(e.Failed))
	for i, c := range e.Failed {
		out[i] = c
	}
	return out
}
