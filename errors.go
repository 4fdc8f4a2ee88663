package wren

import (
	"fmt"
	"strings"

	"github.com/wrenml/wren/job"
)

// The kinds of call failure, as errors: errors.Is(err, wren.ErrTimeout)
// matches a *CallError of that kind. They are the protocol's kinds
// themselves (job.KindTimeout is wren.ErrTimeout): one vocabulary from the
// worker's status to the caller.
const (
	ErrFunction  = job.KindError       // the function returned an error
	ErrTimeout   = job.KindTimeout     // the call ran past its timeout
	ErrPanic     = job.KindPanic       // the function panicked
	ErrLost      = job.KindLost        // no attempt recorded a result
	ErrCancelled = job.KindCancelled   // the job was cancelled first
	ErrTooLarge  = job.KindTooLarge    // an input or output over its cap
	ErrDecode    = job.KindDecode      // the input could not be read or decoded
	ErrEncode    = job.KindEncode      // the output could not be encoded
	ErrUnknown   = job.KindUnknownTask // no function registered under the task's name
	// ErrStore matches a call whose worker could never read its input or
	// record its result (the store failed on every attempt).
	ErrStore = job.KindStore
)

// CallError is the failure of one call: the worker's message, the stack of a
// panic, and how many attempts were made.
type CallError struct {
	Job      string
	Task     string
	Call     int
	Kind     job.ErrorKind
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
func (e *CallError) Is(target error) bool { k, ok := target.(job.ErrorKind); return ok && k == e.Kind }

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
