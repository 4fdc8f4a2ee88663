package wren

import (
	"bytes"
	"context"
	"encoding/gob"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/wrenml/wren/job"
	"github.com/wrenml/wren/worker"
)

// Codec encodes inputs and outputs of calls. Implementations are safe for
// concurrent use.
type Codec interface {
	// Name identifies the codec in job manifests.
	Name() string
	Marshal(v any) ([]byte, error)
	Unmarshal(data []byte, v any) error
}

// Gob is the default codec (encoding/gob). It handles any Go value whose
// exported fields are encodable, including unexported-free structs, slices
// and maps; interface values must be registered with gob.Register.
var Gob Codec = gobCodec{}

// JSON is a codec using encoding/json, handy when other tools read the
// objects a job leaves in the store.
var JSON Codec = jsonCodec{}

type gobCodec struct{}

func (gobCodec) Name() string { return "gob" }
func (gobCodec) Marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	err := gob.NewEncoder(&b).Encode(v)
	return b.Bytes(), err
}
func (gobCodec) Unmarshal(data []byte, v any) error {
	return gob.NewDecoder(bytes.NewReader(data)).Decode(v)
}

type jsonCodec struct{}

func (jsonCodec) Name() string                       { return "json" }
func (jsonCodec) Marshal(v any) ([]byte, error)      { return json.Marshal(v) }
func (jsonCodec) Unmarshal(data []byte, v any) error { return json.Unmarshal(data, v) }

// Func is the signature of a function that can run as a task.
type Func[In, Out any] func(ctx context.Context, in In) (Out, error)

// Task is a function registered under a stable name, so that a worker (the
// same binary, started elsewhere) can find it. Create tasks with Register in
// a package-level var. A Task is safe for concurrent use.
type Task[In, Out any] struct {
	name  string
	fn    Func[In, Out]
	codec Codec
}

// TaskOption adjusts a task at registration.
type TaskOption func(*taskConfig)

type taskConfig struct{ codec Codec }

// WithCodec sets the codec of a task's inputs and outputs (default Gob).
func WithCodec(c Codec) TaskOption { return func(tc *taskConfig) { tc.codec = c } }

var (
	regMu    sync.RWMutex
	registry = map[string]worker.Handler{}
)

// Register makes fn a task under name. Call it at package level, so the
// driver and every worker register the same tasks:
//
//	var Square = wren.Register("example.square", func(ctx context.Context, x int) (int, error) {
//		return x * x, nil
//	})
//
// Register panics if name is empty or already registered (a programming
// error, found the first time the binary starts).
func Register[In, Out any](name string, fn Func[In, Out], opts ...TaskOption) *Task[In, Out] {
	if name == "" {
		panic("wren: Register with an empty name")
	}
	if fn == nil {
		panic("wren: Register " + name + " with a nil function")
	}
	tc := taskConfig{codec: Gob}
	for _, o := range opts {
		o(&tc)
	}
	t := &Task[In, Out]{name: name, fn: fn, codec: tc.codec}
	regMu.Lock()
	defer regMu.Unlock()
	if _, dup := registry[name]; dup {
		panic(fmt.Sprintf("wren: task %q registered twice", name))
	}
	registry[name] = t.handle
	return t
}

// Name returns the task's registered name.
func (t *Task[In, Out]) Name() string { return t.name }

// handle is the byte-level handler a worker runs.
func (t *Task[In, Out]) handle(ctx context.Context, data []byte) ([]byte, error) {
	var in In
	if err := t.codec.Unmarshal(data, &in); err != nil {
		return nil, job.Classify(job.KindDecode, fmt.Errorf("decode input for task %q (%s): %w", t.name, t.codec.Name(), err))
	}
	out, err := t.fn(ctx, in)
	if err != nil {
		return nil, err
	}
	b, err := t.codec.Marshal(out)
	if err != nil {
		return nil, job.Classify(job.KindEncode, fmt.Errorf("encode output of task %q (%s): %w", t.name, t.codec.Name(), err))
	}
	return b, nil
}

// lookup finds a registered task's handler.
func lookup(name string) (worker.Handler, bool) {
	regMu.RLock()
	defer regMu.RUnlock()
	h, ok := registry[name]
	return h, ok
}

// Tasks lists the registered task names, sorted.
func Tasks() []string {
	regMu.RLock()
	defer regMu.RUnlock()
	out := make([]string, 0, len(registry))
	for k := range registry {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Init must be the first call in main (and in TestMain for tests that run
// maps). In a process the driver started as a worker it serves calls and
// exits; otherwise it returns at once and the program runs as the driver.
func Init() {
	if os.Getenv(worker.EnvMode) == "" {
		return
	}
	serving.Store(true)
	os.Exit(serveWorker())
}

// EnvWorkerProfile, set to a directory in the driver's environment, makes
// every local worker process write its CPU profile there when it exits
// (worker-local-N.prof), for go tool pprof.
const EnvWorkerProfile = "WREN_WORKER_CPUPROFILE"

// serving is set in a worker process once Init serves calls.
var serving atomic.Bool

// checkNotWorker stops a process that was started as a worker but reached a
// driver entry point: its main did not call Init first. Left running, it
// would start workers of its own, each doing the same, and never answer its
// driver; exiting with worker.ExitNoInit makes the driver fail at once with
// the fix.
func checkNotWorker(entry string) {
	if os.Getenv(worker.EnvMode) == "" || serving.Load() {
		return
	}
	fmt.Fprintf(os.Stderr, "wren: this process was started as a wren worker but reached %s: main (or TestMain) must call wren.Init() first\n", entry)
	os.Exit(worker.ExitNoInit)
}

func serveWorker() int {
	switch mode := os.Getenv(worker.EnvMode); mode {
	case "local":
		if dir := os.Getenv(EnvWorkerProfile); dir != "" {
			// A CPU profile of this worker process, for pprof.
			if f, err := os.Create(filepath.Join(dir, "worker-"+os.Getenv(worker.EnvID)+".prof")); err == nil {
				if pprof.StartCPUProfile(f) == nil {
					defer func() { pprof.StopCPUProfile(); f.Close() }()
				}
			}
		}
		if err := worker.ServeLocal(context.Background(), lookup); err != nil {
			fmt.Fprintln(os.Stderr, "wren worker:", err)
			return 3
		}
		return 0
	default:
		fmt.Fprintf(os.Stderr, "wren worker: unknown %s=%q\n", worker.EnvMode, mode)
		return 2
	}
}
