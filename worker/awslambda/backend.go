package awslambda

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/internal/retry"
	"github.com/wrenml/wren/job"
	"github.com/wrenml/wren/worker"
	"github.com/wrenml/wren/worker/remote"
)

// DefaultFunction is the function name when Options.Function is empty.
const DefaultFunction = "wren-runtime"

// MaxPayload is Lambda's limit on a synchronous invocation's payload.
const MaxPayload = 6 << 20

// Options configure a Backend. Zero values take the documented defaults.
type Options struct {
	// Function is the deployed runtime's name or ARN; "" means
	// DefaultFunction.
	Function string
	// Qualifier is a version or alias of the function; "" means $LATEST.
	Qualifier string
	// MaxInFlight caps the invocations in flight (the account's concurrency
	// limit is the real cap); 0 means 1000.
	MaxInFlight int
	// Arch is the function's architecture (ArchX86 or ArchARM): the job's
	// binary must run on it; "" means ArchX86.
	Arch string
	// FunctionTimeout is the function's configured timeout: an invocation
	// that has not answered this long after it was sent (plus a margin) is
	// taken as lost and its calls are retried, so waiting never hangs, and
	// a call timeout that does not fit in it stops the job. 0 means the
	// deployed function's, read from its configuration when the first job
	// starts (DefaultTimeout when it cannot be read, as under emulators).
	FunctionTimeout time.Duration
	// LostGrace is how long past FunctionTimeout an invocation may take
	// (network, a cold start) before it is taken as lost; 0 means 10 s.
	LostGrace time.Duration
	// Async sends Event invocations, for very large maps: Lambda queues
	// them, and completion is taken from the statuses in the store.
	Async bool
	// Executable is the binary to run the job's calls; "" means the
	// driver's own (os.Executable), rebuilt for linux/Arch when it is not a
	// static linux executable for it.
	Executable string
	// Emulators, when set, are base URLs of AWS Lambda Runtime Interface
	// Emulators to invoke instead of AWS (each runs one invocation at a
	// time; their function is named "function"). For tests and benchmarks
	// on one machine.
	Emulators []string
	// MaxTries bounds the tries of an invocation that Lambda throttles or
	// fails with a 5xx before running it; 0 means 10.
	MaxTries int
	// MaxPayload is the largest invocation payload sent as it is; a larger
	// one keeps its calls in the store (job.Invocation.CallsKey). 0
	// means Lambda's limit: MaxPayload for synchronous invocations,
	// MaxAsyncPayload for Event ones.
	MaxPayload int
	// MemoryMB is the function's memory, for the bill; 0 means the
	// deployed function's (DefaultMemory when it cannot be read).
	MemoryMB int
	// Control reads the deployed function's configuration (timeout,
	// memory, architecture, allowed store) once, when the first job
	// starts; nil means a Lambda client from the AWS configuration, and
	// none with Emulators (they have no control plane).
	Control FunctionReader
	// PricePerGBSecond and PricePerMillionRequests price the bill; 0 means
	// us-east-1's for the architecture (PriceX86GBSecond, PriceARMGBSecond,
	// PricePerMillionInvoke).
	PricePerGBSecond, PricePerMillionRequests float64
	// Stderr receives notices (a rebuild of the binary); nil means os.Stderr.
	Stderr io.Writer
	// Logger receives invocation events; nil means slog.Default().
	Logger *slog.Logger
}

// FunctionReader reads a function's configuration (the Lambda client's
// GetFunctionConfiguration).
type FunctionReader interface {
	GetFunctionConfiguration(ctx context.Context, in *lambda.GetFunctionConfigurationInput, opts ...func(*lambda.Options)) (*lambda.GetFunctionConfigurationOutput, error)
}

// Backend runs invocations on AWS Lambda: one generic function (cmd/wren-
// lambda, deployed once with wren deploy) that fetches each job's binary
// from the store. It implements worker.Remote and is safe for concurrent use.
type Backend struct {
	opts   Options
	tokens chan *invoker // one per invocation that may be in flight

	mu         sync.Mutex
	binary     remote.Code // the binary the workers run
	throttled  int
	configured bool          // the function's configuration was read
	timeout    time.Duration // the function's timeout
	memory     int           // the function's memory, MB
	allowed    []string      // the stores the function allows, when known
	stores     map[string]blob.Store
}

type invoker struct {
	c  *lambda.Client
	fn string
}

var (
	_ worker.Remote      = (*Backend)(nil)
	_ worker.CallLimiter = (*Backend)(nil)
	_ worker.Placement   = (*Backend)(nil)
)

// New returns a backend that invokes the function with the client
// configuration cfg (region and credentials: config.LoadDefaultConfig).
func New(cfg aws.Config, opts Options) (*Backend, error) {
	if opts.Function == "" {
		opts.Function = DefaultFunction
	}
	if opts.MaxInFlight <= 0 {
		opts.MaxInFlight = 1000
	}
	if opts.Arch == "" {
		opts.Arch = ArchX86
	}
	if _, err := goArch(opts.Arch); err != nil {
		return nil, err
	}
	if opts.FunctionTimeout < 0 || opts.FunctionTimeout > 15*time.Minute {
		return nil, fmt.Errorf("awslambda: function timeout %v: Lambda takes up to 15m (0 reads the function's)", opts.FunctionTimeout)
	}
	if opts.MaxTries <= 0 {
		opts.MaxTries = 10
	}
	if opts.MemoryMB < 0 || opts.MemoryMB > 10240 {
		return nil, fmt.Errorf("awslambda: memory %d MB: Lambda takes 128 to 10240 (0 reads the function's)", opts.MemoryMB)
	}
	if opts.LostGrace <= 0 {
		opts.LostGrace = 10 * time.Second
	}
	if opts.Stderr == nil {
		opts.Stderr = os.Stderr
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	goarch, _ := goArch(opts.Arch)
	b := &Backend{opts: opts, timeout: opts.FunctionTimeout, memory: opts.MemoryMB,
		binary: remote.Code{Executable: opts.Executable, GOARCH: goarch, Stderr: opts.Stderr}}
	if b.timeout == 0 {
		b.timeout = DefaultTimeout
	}
	if b.memory == 0 {
		b.memory = DefaultMemory
	}
	// The SDK's retryer would retry blindly; this backend decides itself.
	noRetry := func(o *lambda.Options) { o.Retryer = aws.NopRetryer{} }
	if len(opts.Emulators) > 0 {
		b.tokens = make(chan *invoker, len(opts.Emulators))
		for _, u := range opts.Emulators {
			c := lambda.NewFromConfig(cfg, noRetry, func(o *lambda.Options) { o.BaseEndpoint = aws.String(u) })
			b.tokens <- &invoker{c: c, fn: "function"}
		}
		return b, nil
	}
	hc := awshttp.NewBuildableClient().WithTransportOptions(func(t *http.Transport) {
		t.MaxIdleConnsPerHost = opts.MaxInFlight
		t.MaxConnsPerHost = 0
	}).WithTimeout(0)
	c := lambda.NewFromConfig(cfg, noRetry, func(o *lambda.Options) { o.HTTPClient = hc })
	if b.opts.Control == nil {
		b.opts.Control = lambda.NewFromConfig(cfg)
	}
	inv := &invoker{c: c, fn: opts.Function}
	b.tokens = make(chan *invoker, opts.MaxInFlight)
	for range opts.MaxInFlight {
		b.tokens <- inv
	}
	return b, nil
}

// Name implements worker.Backend.
func (b *Backend) Name() string { return "lambda" }

// Parallelism implements worker.Backend: the invocations in flight at most.
func (b *Backend) Parallelism() int { return cap(b.tokens) }

// Slots implements worker.Backend: the same as Parallelism.
func (b *Backend) Slots() int { return cap(b.tokens) }

// Close implements worker.Backend: Lambda has nothing to stop; the stores
// the backend opened are closed.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for u, st := range b.stores {
		st.Close()
		delete(b.stores, u)
	}
	return nil
}

// ErrUnreachableStore reports a store the function cannot reach.
var ErrUnreachableStore = errors.New("awslambda: the function cannot reach the store")

// Prepare implements worker.Remote: the store must be one the function can
// reach (s3://) and allows (its configuration, read once, names the store
// it runs jobs from), and the job's binary is uploaded under its hash
// unless it is there.
func (b *Backend) Prepare(ctx context.Context, st blob.Store) (string, error) {
	u := st.URL()
	if !strings.HasPrefix(u, "s3://") {
		return "", fmt.Errorf("%w %s: Lambda workers need an s3:// store", ErrUnreachableStore, u)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.configure(ctx); err != nil {
		return "", err
	}
	if b.allowed != nil {
		if err := remote.CheckStore(u, b.allowed); err != nil {
			return "", fmt.Errorf("%w: awslambda: function %s: %w (deploy it for this store: wren deploy -store ...)", worker.ErrPermanent, b.opts.Function, err)
		}
	}
	hash, err := b.binary.Prepare(ctx, st)
	if err != nil {
		return "", err
	}
	return hash, nil
}

// configure reads the function's configuration once: its timeout and
// memory where Options left them 0, its architecture, and the store it
// allows. A function that cannot be read (no permission, the emulator)
// keeps the defaults; one that does not exist is an error. b.mu is held.
func (b *Backend) configure(ctx context.Context) error {
	if b.configured || b.opts.Control == nil {
		return nil
	}
	in := &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(b.opts.Function)}
	if b.opts.Qualifier != "" {
		in.Qualifier = aws.String(b.opts.Qualifier)
	}
	out, err := b.opts.Control.GetFunctionConfiguration(ctx, in)
	var nf *types.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		return fmt.Errorf("%w: awslambda: function %s not found: deploy it (wren deploy): %w", worker.ErrPermanent, b.opts.Function, err)
	case err != nil:
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b.opts.Logger.Warn("awslambda: cannot read the function's configuration; assuming the defaults", "function", b.opts.Function,
			"timeout", b.timeout, "memory_mb", b.memory, "err", err)
		b.configured = true
		return nil
	}
	if b.opts.FunctionTimeout == 0 && out.Timeout != nil {
		b.timeout = time.Duration(*out.Timeout) * time.Second
	}
	if b.opts.MemoryMB == 0 && out.MemorySize != nil {
		b.memory = int(*out.MemorySize)
	}
	if len(out.Architectures) > 0 && string(out.Architectures[0]) != b.opts.Arch {
		return fmt.Errorf("%w: awslambda: function %s runs %s, the backend builds for %s (set the architecture to %s)", worker.ErrPermanent, b.opts.Function, out.Architectures[0], b.opts.Arch, out.Architectures[0])
	}
	b.allowed = []string{}
	if out.Environment != nil {
		b.allowed = strings.Fields(out.Environment.Variables[remote.EnvAllowedStore])
	}
	b.configured = true
	return nil
}

// FunctionTimeout returns the function's timeout the backend works with:
// Options.FunctionTimeout, else the deployed function's once a job has
// started, else DefaultTimeout.
func (b *Backend) FunctionTimeout() time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.timeout
}

// CallLimit implements worker.CallLimiter: the function's timeout, read
// from the deployed function's configuration the first time.
func (b *Backend) CallLimit(ctx context.Context) (time.Duration, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := b.configure(ctx); err != nil {
		return 0, err
	}
	return b.timeout, nil
}

// OnThisMachine implements worker.Placement: emulators run on this machine
// (Options.Emulators), Lambda functions elsewhere.
func (b *Backend) OnThisMachine() bool {
	for _, u := range b.opts.Emulators {
		host := u
		if pu, err := url.Parse(u); err == nil {
			host = pu.Hostname()
		}
		if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
			return false
		}
	}
	return len(b.opts.Emulators) > 0
}

// Invoke implements worker.Backend: it sends inv to the function and
// returns its reply. Throttling and 5xx answers are retried with
// exponential backoff and jitter (Options.MaxTries); a function error is
// returned as an error, and the calls' statuses in the store decide what
// happened; an invocation that does not answer within the function's
// timeout is given up, so its calls are retried.
func (b *Backend) Invoke(ctx context.Context, inv *job.Invocation) (*job.Reply, error) {
	var iv *invoker
	select {
	case iv = <-b.tokens:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if len(b.opts.Emulators) == 0 {
		defer func() { b.tokens <- iv }()
		return b.invoke(ctx, iv, inv)
	}
	// An emulator runs one invocation at a time, and a request given up
	// does not stop the function it started (as on Lambda): the emulator
	// is free again only when its answer came, so the request runs to its
	// end, apart from a caller that stopped waiting.
	type result struct {
		rep *job.Reply
		err error
	}
	done := make(chan result, 1)
	sent := time.Now()
	go func() {
		defer func() { b.tokens <- iv }()
		rep, err := b.invoke(context.WithoutCancel(ctx), iv, inv)
		done <- result{rep, err}
	}()
	select {
	case r := <-done:
		return r.rep, r.err
	case <-ctx.Done():
		return &job.Reply{BilledNanos: int64(time.Since(sent)), Estimated: true}, context.Cause(ctx)
	}
}

// invoke runs inv on the invoker's function.
func (b *Backend) invoke(ctx context.Context, iv *invoker, inv *job.Invocation) (*job.Reply, error) {
	inv.Dispatched = time.Now().UnixNano()
	timeout := b.FunctionTimeout()
	if inv.Timeout > 0 && time.Duration(len(inv.Calls))*inv.Timeout > timeout {
		return nil, fmt.Errorf("%w: awslambda: %d calls of up to %v each may outlast the function's timeout %v: raise it (wren deploy -timeout) or lower the call timeout or ChunkSize", worker.ErrPermanent, len(inv.Calls), inv.Timeout, timeout)
	}
	payload, err := b.payload(ctx, inv)
	if err != nil {
		return nil, err
	}
	ictx, cancel := context.WithTimeoutCause(ctx, timeout+b.opts.LostGrace,
		fmt.Errorf("awslambda: no answer within the function's timeout %v: invocation lost", timeout))
	defer cancel()
	typ := types.InvocationTypeRequestResponse
	if b.opts.Async {
		typ = types.InvocationTypeEvent
	}
	in := &lambda.InvokeInput{FunctionName: aws.String(iv.fn), Payload: payload, InvocationType: typ}
	if b.opts.Qualifier != "" {
		in.Qualifier = aws.String(b.opts.Qualifier)
	}
	var out *lambda.InvokeOutput
	var sent time.Time
	// billed is what an invocation that ran but reported no duration
	// costs: the function's timeout when it timed out or never answered
	// (Lambda bills a timed-out invocation for the whole timeout), else
	// the time the driver waited for it.
	billed := func(timedOut bool) *job.Reply {
		d := time.Since(sent)
		if timedOut {
			d = timeout
		}
		return &job.Reply{BilledNanos: int64(d), Estimated: true}
	}
	for try := 0; ; try++ {
		sent = time.Now()
		out, err = iv.c.Invoke(ictx, in)
		if err == nil {
			break
		}
		if ictx.Err() != nil {
			// Sent and never answered: lost after the function's timeout,
			// or given up (the job no longer needs it) while it ran.
			return billed(ctx.Err() == nil), context.Cause(ictx)
		}
		if permanent(err) {
			return nil, fmt.Errorf("%w: awslambda: invoke %s: %w", worker.ErrPermanent, iv.fn, err)
		}
		if !retryable(err) {
			// The function ran and failed (a crash answers 502).
			return billed(false), fmt.Errorf("awslambda: invoke %s: %w", iv.fn, err)
		}
		if try+1 >= b.opts.MaxTries {
			return nil, fmt.Errorf("awslambda: invoke %s: %w", iv.fn, err)
		}
		b.mu.Lock()
		b.throttled++
		b.mu.Unlock()
		// Full jitter: a random wait up to 100 ms x 2^try, at most 20 s.
		wait := time.Duration(rand.Int64N(int64(min(100*time.Millisecond<<min(try, 10), 20*time.Second)) + 1))
		b.opts.Logger.Debug("lambda throttled or failed; trying again", "function", iv.fn, "try", try+1, "wait", wait, "err", err)
		select {
		case <-time.After(wait):
		case <-ictx.Done():
			return nil, context.Cause(ictx)
		}
	}
	if b.opts.Async {
		rep, err := b.await(ictx, inv)
		if err != nil && ictx.Err() != nil {
			// Queued or running past the timeout: lost.
			rep.BilledNanos, rep.Estimated = int64(timeout), true
		}
		return rep, err
	}
	rep, err := decodeReply(iv.fn, out)
	if err != nil {
		return billed(timedOut(err)), err
	}
	return rep, nil
}

// timedOut reports a function error that says the function's timeout
// ended the invocation.
func timedOut(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "timed out") || strings.Contains(msg, "function's timeout ended")
}

// MaxAsyncPayload is Lambda's limit on an asynchronous (Event)
// invocation's payload (1 MB since 2025; synchronous ones take MaxPayload).
const MaxAsyncPayload = 1 << 20

// payload encodes inv for the function. An invocation over the payload
// limit (MaxPayload, MaxAsyncPayload for Event invocations) keeps its
// calls in the store (job.Invocation.CallsKey), which the worker reads:
// a large chunk is never an error.
func (b *Backend) payload(ctx context.Context, inv *job.Invocation) ([]byte, error) {
	payload, err := json.Marshal(inv)
	if err != nil {
		return nil, fmt.Errorf("awslambda: encode invocation: %w", err)
	}
	limit := MaxPayload
	if b.opts.Async {
		limit = MaxAsyncPayload
	}
	if b.opts.MaxPayload > 0 {
		limit = min(limit, b.opts.MaxPayload)
	}
	if len(payload) <= limit || len(inv.Calls) == 0 {
		return payload, nil
	}
	calls, err := json.Marshal(inv.Calls)
	if err != nil {
		return nil, fmt.Errorf("awslambda: encode calls: %w", err)
	}
	if len(calls) > job.MaxCallsObject {
		return nil, fmt.Errorf("%w: awslambda: invocation of %d calls is %d bytes, over %d even in the store: use a smaller ChunkSize", worker.ErrPermanent, len(inv.Calls), len(calls), job.MaxCallsObject)
	}
	st, err := b.store(ctx, inv.Store)
	if err != nil {
		return nil, err
	}
	key := job.InvocationKey(inv.Job, inv.Calls[0].Index, inv.Calls[0].Attempt)
	err = retry.Store(ctx, func(ctx context.Context) error {
		return blob.PutBytes(ctx, st, key, calls, blob.PutOptions{Ephemeral: true})
	})
	if err != nil {
		return nil, fmt.Errorf("awslambda: job %s: write the calls of an invocation over the payload limit: %w", inv.Job, err)
	}
	small := *inv
	small.Calls, small.CallsKey = nil, key
	return json.Marshal(&small)
}

// store opens a job's store once per backend (for calls objects and
// asynchronous completions).
func (b *Backend) store(ctx context.Context, u string) (blob.Store, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if st, ok := b.stores[u]; ok {
		return st, nil
	}
	st, err := blob.Open(ctx, u)
	if err != nil {
		return nil, err
	}
	if b.stores == nil {
		b.stores = map[string]blob.Store{}
	}
	b.stores[u] = st
	return st, nil
}

// Throttles returns how many invocations were retried after a throttle or
// a 5xx answer.
func (b *Backend) Throttles() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.throttled
}

// retryable reports an answer that means the invocation did not run and
// may be sent again: throttling (429) and 5xx service errors, except 502
// (the function ran and crashed, under the emulator).
func retryable(err error) bool {
	var tm *types.TooManyRequestsException
	var se *types.ServiceException
	if errors.As(err, &tm) || errors.As(err, &se) {
		return true
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		switch c := re.HTTPStatusCode(); {
		case c == http.StatusTooManyRequests:
			return true
		case c >= 500 && c != http.StatusBadGateway:
			return true
		}
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "TooManyRequestsException", "ThrottlingException", "ServiceException", "EC2ThrottledException", "ResourceNotReadyException":
			return true
		}
	}
	return false
}

// permanent reports an answer no retry changes: a missing function, a
// denied permission, a bad request.
func permanent(err error) bool {
	var nf *types.ResourceNotFoundException
	var ip *types.InvalidParameterValueException
	var rp *types.RequestTooLargeException
	if errors.As(err, &nf) || errors.As(err, &ip) || errors.As(err, &rp) {
		return true
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "AccessDeniedException", "AccessDenied", "ResourceNotFoundException", "UnrecognizedClientException", "InvalidSignatureException", "ExpiredTokenException":
			return true
		}
	}
	var re *smithyhttp.ResponseError
	if errors.As(err, &re) {
		switch re.HTTPStatusCode() {
		case http.StatusForbidden, http.StatusNotFound, http.StatusUnauthorized:
			return true
		}
	}
	return false
}

// functionError is the payload of a failed invocation.
type functionError struct {
	Message string `json:"errorMessage"`
	Type    string `json:"errorType"`
}

func decodeReply(fn string, out *lambda.InvokeOutput) (*job.Reply, error) {
	var fe functionError
	if out.FunctionError != nil {
		json.Unmarshal(out.Payload, &fe)
		hint := ""
		if strings.Contains(fe.Message, "timed out") {
			hint = " (the function's timeout ended the invocation: raise it with wren deploy -timeout, or give the calls less work)"
		}
		return nil, fmt.Errorf("awslambda: function %s failed (%s): %s %s%s", fn, aws.ToString(out.FunctionError), fe.Type, fe.Message, hint)
	}
	// The emulator answers a handler's error with 200 and no header.
	if json.Unmarshal(out.Payload, &fe) == nil && fe.Message != "" {
		return nil, fmt.Errorf("awslambda: function %s failed: %s %s", fn, fe.Type, fe.Message)
	}
	var rep job.Reply
	if err := json.Unmarshal(out.Payload, &rep); err != nil {
		msg := fmt.Sprintf("awslambda: function %s answered %.200q", fn, out.Payload)
		if strings.Contains(string(out.Payload), "timed out") {
			msg += " (the function's timeout ended the invocation: raise it with wren deploy -timeout, or give the calls less work)"
		}
		return nil, fmt.Errorf("%s: %w", msg, err)
	}
	return &rep, nil
}

// await waits for the statuses of an asynchronous invocation's calls in
// the store and returns them as its reply (the statuses this attempt wrote
// marked Won), billed from the calls' own times (estimated: the runtime's
// duration is not reported for an Event invocation).
func (b *Backend) await(ctx context.Context, inv *job.Invocation) (*job.Reply, error) {
	rep := &job.Reply{Estimated: true}
	st, err := b.store(ctx, inv.Store)
	if err != nil {
		return rep, err
	}
	left := append([]job.Call(nil), inv.Calls...)
	wait := 250 * time.Millisecond
	var first, last int64
	for {
		var still []job.Call
		for _, c := range left {
			s, ok, err := job.ReadStatus(ctx, st, inv.Job, c.Index)
			switch {
			case err != nil && ctx.Err() == nil:
				still = append(still, c) // a store blip: look again
			case ok:
				s.Won = s.Attempt == c.Attempt
				rep.Statuses = append(rep.Statuses, s)
				if s.Won && s.Started > 0 {
					if first == 0 || s.Started < first {
						first = s.Started
					}
					last = max(last, s.Finished, s.ComputeEnd)
				}
			default:
				still = append(still, c)
			}
		}
		left = still
		if last > first {
			rep.BilledNanos = last - first
		}
		if len(left) == 0 {
			return rep, nil
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			// Lost (or still queued): what was found counts; the rest is retried.
			return rep, context.Cause(ctx)
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// Prices in US dollars (us-east-1, November 2026); Options override them.
const (
	PriceX86GBSecond      = 0.0000166667
	PriceARMGBSecond      = 0.0000133334
	PricePerMillionInvoke = 0.20
)

var _ worker.Biller = (*Backend)(nil)

// Bill implements worker.Biller: GB-seconds of the billed durations at the
// function's memory, plus requests, at Options' prices; and the memory
// size that would have made the job cheapest.
func (b *Backend) Bill(u worker.Usage) *worker.Billing {
	perGBs := b.opts.PricePerGBSecond
	if perGBs == 0 {
		perGBs = PriceX86GBSecond
		if b.opts.Arch == ArchARM {
			perGBs = PriceARMGBSecond
		}
	}
	perReq := b.opts.PricePerMillionRequests
	if perReq == 0 {
		perReq = PricePerMillionInvoke
	}
	b.mu.Lock()
	mem := b.memory
	b.mu.Unlock()
	bill := &worker.Billing{Invocations: u.Invocations, Billed: u.Billed, MemoryMB: mem,
		EstimatedBilled: u.EstimatedBilled, EstimatedInvocations: u.EstimatedInvocations}
	bill.GBSeconds = u.Billed.Seconds() * float64(mem) / 1024
	requests := float64(u.Invocations) * perReq / 1e6
	bill.USD = bill.GBSeconds*perGBs + requests
	if u.Calls == 0 {
		return bill
	}
	// A single-threaded call gets a CPU (and network) share that grows with
	// memory up to one vCPU at 1769 MB; its start and setup do not.
	share := func(m int) float64 { return float64(min(m, 1769)) / 1769 }
	timeAt := func(m int) float64 {
		return u.Fixed.Seconds() + (u.Compute+u.IO).Seconds()*share(mem)/share(m)
	}
	// Scale the measured per-call time to the billed total, so that the
	// estimate at the current memory is the bill.
	scale := 1.0
	if t := timeAt(mem); t > 0 && u.Billed > 0 {
		scale = u.Billed.Seconds() / t
	}
	least := max(128, int(float64(u.PeakRSS)*1.25/(1<<20)))
	best, bestUSD := mem, bill.USD
	for m := 128; m <= 10240; m += 64 {
		if m < least {
			continue
		}
		usd := timeAt(m)*scale*float64(m)/1024*perGBs + requests
		if usd < bestUSD-1e-12 {
			best, bestUSD = m, usd
		}
	}
	bill.SuggestedMemoryMB, bill.SuggestedUSD = best, bestUSD
	if t := timeAt(mem); t > 0 {
		bill.SuggestedSlowdown = timeAt(best) / t
	}
	return bill
}
