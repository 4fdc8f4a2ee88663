package job

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/internal/retry"
)

// Invocation asks a worker to run some calls of a job. It travels as JSON
// (over a pipe to a local worker process, as the payload of a Lambda invoke).
type Invocation struct {
	// Store is the URL of the blob store holding the job (blob.Open).
	Store string `json:"store"`
	// Job is the job's ID; its objects live under "jobs/<Job>/".
	Job string `json:"job"`
	// Task is the registered name of the function to run.
	Task string `json:"task"`
	// Calls are the calls to run, in order.
	Calls []Call `json:"calls"`
	// Timeout bounds each call; 0 means none.
	Timeout time.Duration `json:"timeout,omitempty"`
	// MaxOutput caps an encoded output in bytes; 0 means no cap.
	MaxOutput int64 `json:"max_output,omitempty"`
	// InlineMax is the largest output that travels inside its status
	// (Status.Inline) instead of an object of its own; 0 means none.
	InlineMax int64 `json:"inline_max,omitempty"`
	// Dispatched is when the driver sent the invocation (Unix nanoseconds).
	Dispatched int64 `json:"dispatched"`
	// Code is the SHA-256 (hex) of the binary the job's calls run, as the
	// job's code object (CodeKey) holds it; "" for a backend that runs the
	// driver's own binary. A remote runtime that cached another binary for
	// the job (a job cleaned and run again under its ID with a rebuilt
	// binary) reads the code object again, and refuses a mismatch.
	Code string `json:"code,omitempty"`
	// CallsKey, when set, names an object under the job's invocation
	// prefix (InvocationKey) that holds the calls, for an invocation whose
	// calls are too many for the backend's payload limit; Calls is then
	// empty. The worker reads it from the invocation's store.
	CallsKey string `json:"calls_key,omitempty"`
}

// MaxCallsPerInvocation bounds an invocation's calls.
const MaxCallsPerInvocation = 1 << 20

// Validate checks an invocation that arrived from outside (a pipe, a Lambda
// payload): a store URL, a job ID that is one key segment (so every key the
// worker touches stays under jobs/<job>/), a task name, and calls with
// non-negative indices and attempts.
func (inv *Invocation) Validate() error {
	switch {
	case inv == nil:
		return errors.New("job: no invocation")
	case inv.Store == "":
		return errors.New("job: invocation without a store URL")
	case inv.Task == "":
		return errors.New("job: invocation without a task")
	case inv.CallsKey != "" && len(inv.Calls) > 0:
		return errors.New("job: invocation with both calls and a calls object")
	case inv.CallsKey == "" && (len(inv.Calls) == 0 || len(inv.Calls) > MaxCallsPerInvocation):
		return fmt.Errorf("job: invocation of %d calls (1 to %d)", len(inv.Calls), MaxCallsPerInvocation)
	case inv.Code != "" && !IsHash(inv.Code):
		return fmt.Errorf("job: invocation with a bad code hash %.80q", inv.Code)
	case inv.Timeout < 0 || inv.MaxOutput < 0 || inv.InlineMax < 0:
		return errors.New("job: invocation with a negative timeout or output cap")
	}
	if err := ValidateID(inv.Job); err != nil {
		return err
	}
	if inv.CallsKey != "" {
		if rest, ok := strings.CutPrefix(inv.CallsKey, InvocationPrefix(inv.Job)); !ok || rest == "" || strings.Contains(rest, "/") || blob.ValidateKey(inv.CallsKey) != nil {
			return fmt.Errorf("job: calls object %.200q outside job %s's invocations", inv.CallsKey, inv.Job)
		}
	}
	for _, c := range inv.Calls {
		if c.Index < 0 || c.Attempt < 0 {
			return fmt.Errorf("job: call %d attempt %d: negative", c.Index, c.Attempt)
		}
		if c.In != nil {
			if err := c.In.check(inv.Job); err != nil {
				return err
			}
		}
	}
	return nil
}

// IsHash reports whether s is a hex SHA-256, as code hashes are written.
func IsHash(s string) bool {
	return len(s) == 64 && strings.Trim(s, "0123456789abcdef") == ""
}

// MaxCallsObject bounds the size of an invocation's calls object.
const MaxCallsObject = 256 << 20

// LoadCalls fills in the calls of an invocation that keeps them in the
// store (CallsKey) and validates them; an invocation that carries its calls
// is returned as it is.
func LoadCalls(ctx context.Context, st blob.Store, inv *Invocation) error {
	if inv.CallsKey == "" {
		return nil
	}
	var b []byte
	err := retry.Store(ctx, func(ctx context.Context) (err error) {
		b, _, err = blob.ReadRange(ctx, st, inv.CallsKey, 0, MaxCallsObject+1)
		return err
	})
	if err != nil {
		return fmt.Errorf("job: job %s: read calls %s: %w", inv.Job, inv.CallsKey, err)
	}
	if len(b) > MaxCallsObject {
		return fmt.Errorf("job: job %s: calls object %s over %d bytes", inv.Job, inv.CallsKey, MaxCallsObject)
	}
	var calls []Call
	if err := json.Unmarshal(b, &calls); err != nil {
		return fmt.Errorf("job: job %s: calls object %s: %w", inv.Job, inv.CallsKey, err)
	}
	loaded := *inv
	loaded.Calls, loaded.CallsKey = calls, ""
	if err := loaded.Validate(); err != nil {
		return err
	}
	*inv = loaded
	return nil
}

// ValidateID returns an error when id cannot name a job: it must be one
// key segment, so that the job's objects stay under jobs/<id>/.
func ValidateID(id string) error {
	if id == "" || strings.Contains(id, "/") || blob.ValidateKey(JobPrefix(id)+"x") != nil {
		return fmt.Errorf("job: bad job ID %q", id)
	}
	return nil
}

// ParseInvocation decodes and validates an invocation's JSON.
func ParseInvocation(data []byte) (*Invocation, error) {
	var inv Invocation
	if err := json.Unmarshal(data, &inv); err != nil {
		return nil, fmt.Errorf("job: bad invocation: %w", err)
	}
	if err := inv.Validate(); err != nil {
		return nil, err
	}
	return &inv, nil
}

// Call is one call of an invocation.
type Call struct {
	Index   int `json:"i"`
	Attempt int `json:"a"`
	// RecordErrors makes the worker write a status for a failed call. The
	// driver clears it on attempts it may still retry, so a retried error
	// never occupies the call's status.
	RecordErrors bool `json:"e,omitempty"`
	// In locates the input in a pack; nil means its own object (InputKey).
	In *InputRef `json:"in,omitempty"`
}

// Reply is the worker's answer to an invocation: the status of each call it
// ran, in order. The blob store stays the truth: a status with Won set is
// exactly what the store holds; any other status may have been overtaken.
type Reply struct {
	Statuses []Status `json:"statuses"`
	// RuntimeNanos is how long the remote runtime took (what Lambda bills);
	// 0 from local workers.
	RuntimeNanos int64 `json:"runtime_ns,omitempty"`
	// BilledNanos, set by a backend that bills, is what the invocation is
	// billed for when the runtime reported no duration: a failed, crashed,
	// timed-out or lost invocation, or an asynchronous one. Estimated says
	// it was not measured by the runtime (the function's timeout for one
	// that timed out or was lost, the driver's clock or the calls' own
	// times otherwise). A backend returns such a Reply, without statuses,
	// together with its error.
	BilledNanos int64 `json:"billed_ns,omitempty"`
	Estimated   bool  `json:"estimated,omitempty"`
}

// ErrorKind classifies a failed call.
type ErrorKind string

// Error kinds recorded in a Status.
const (
	KindError       ErrorKind = "error"        // the function returned an error
	KindPanic       ErrorKind = "panic"        // the function panicked (Stack is set)
	KindTimeout     ErrorKind = "timeout"      // the call ran past its timeout and was stopped
	KindDecode      ErrorKind = "decode"       // the input could not be read or decoded
	KindEncode      ErrorKind = "encode"       // the output could not be encoded
	KindTooLarge    ErrorKind = "too-large"    // the encoded output exceeded the cap
	KindUnknownTask ErrorKind = "unknown-task" // no function is registered under the task name
	KindLost        ErrorKind = "lost"         // the worker died or vanished on every attempt
	KindCancelled   ErrorKind = "cancelled"    // the driver was cancelled before the call finished
	KindStore       ErrorKind = "store"        // the worker could not write its result
)

// Error makes a kind an error of its own, so that errors.Is(err,
// KindTimeout) matches a failure of that kind (wren.ErrTimeout is the same
// value).
func (k ErrorKind) Error() string {
	switch k {
	case KindError:
		return "wren: the function failed"
	case KindPanic:
		return "wren: call panicked"
	case KindTimeout:
		return "wren: call timed out"
	case KindDecode:
		return "wren: input could not be decoded"
	case KindEncode:
		return "wren: output could not be encoded"
	case KindTooLarge:
		return "wren: payload too large"
	case KindUnknownTask:
		return "wren: unknown task"
	case KindLost:
		return "wren: call lost"
	case KindCancelled:
		return "wren: call cancelled"
	case KindStore:
		return "wren: store error"
	}
	return "wren: call failed: " + string(k)
}

// Status is the record of a finished call, written last and atomically to
// jobs/<job>/status/<call>; the first attempt to write it wins.
type Status struct {
	Call    int    `json:"call"`
	Attempt int    `json:"attempt"`
	OK      bool   `json:"ok"`
	Output  string `json:"output,omitempty"` // key of the winning attempt's output
	// Inline is the output itself, when it was small enough to travel in
	// the status (Invocation.InlineMax); Output is then empty.
	Inline []byte `json:"inline,omitempty"`
	Error  *Error `json:"error,omitempty"`
	Worker string `json:"worker"`
	// Won reports (in a Reply only) that this attempt's status is the stored one.
	Won bool `json:"won,omitempty"`
	// Timestamps, Unix nanoseconds on the worker's clock.
	Dispatched   int64 `json:"dispatched"`    // driver sent the invocation
	Started      int64 `json:"started"`       // worker began this call
	ComputeStart int64 `json:"compute_start"` // input read and decoded
	ComputeEnd   int64 `json:"compute_end"`   // function returned
	Finished     int64 `json:"finished"`      // output written (status follows)
	BytesRead    int64 `json:"bytes_read"`
	BytesWritten int64 `json:"bytes_written"`
	ReadNanos    int64 `json:"read_ns"`  // time spent reading the input
	WriteNanos   int64 `json:"write_ns"` // time spent writing the output
	// Log is the key of what the function printed, when it printed
	// anything (local and Lambda workers; not InProcess); LogTail is its
	// last lines, for a failed call.
	Log     string `json:"log,omitempty"`
	LogTail string `json:"log_tail,omitempty"`
	// Puts and Gets count the attempt's store requests, tries included: the
	// input's get (shared by the calls of one ranged read, counted once),
	// the output's put and the status's put (counted once).
	Puts int `json:"puts"`
	Gets int `json:"gets"`
	// MaxRSS is the most memory the worker process has held, in bytes.
	MaxRSS int64 `json:"max_rss,omitempty"`
}

// Error describes a failed call.
type Error struct {
	Kind    ErrorKind `json:"kind"`
	Message string    `json:"message"`
	Stack   string    `json:"stack,omitempty"`
}

// ClassifiedError is an error carrying its ErrorKind; handlers return it
// (wrapped or not) to classify a failure, for example a failed input decode.
type ClassifiedError struct {
	Kind ErrorKind
	Err  error
}

func (e *ClassifiedError) Error() string { return e.Err.Error() }
func (e *ClassifiedError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, kind) true of an error classified as kind.
func (e *ClassifiedError) Is(target error) bool {
	k, ok := target.(ErrorKind)
	return ok && k == e.Kind
}

// Classify returns err marked with kind.
func Classify(kind ErrorKind, err error) error { return &ClassifiedError{Kind: kind, Err: err} }

// PanicError is a recovered panic, with the stack of the panicking goroutine.
type PanicError struct {
	Value any
	Stack string
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

func callName(call int) string {
	s := strconv.Itoa(call)
	if len(s) < 6 {
		s = "000000"[:6-len(s)] + s
	}
	return s
}
