package awslambda

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/wrenml/wren/blob"
	_ "github.com/wrenml/wren/blob/s3blob" // the store of remote workers
	"github.com/wrenml/wren/worker"
)

// MaxReply is the largest reply the runtime returns (Lambda's response
// limit is 6 MB); a bigger one goes back without its inline outputs, which
// the driver then reads from the statuses in the store.
const MaxReply = 5 << 20

// Runtime is the generic function: it runs any job's calls by fetching the
// job's binary from the store (once per binary and container, cached in a
// directory, SHA-256 checked) and running it as a local worker process that
// stays alive between warm invocations. It is safe for concurrent use,
// though Lambda sends one invocation at a time.
type Runtime struct {
	// CacheDir keeps fetched binaries; "" means $TMPDIR/wren-code.
	CacheDir string
	// Output receives the worker processes' stdout and stderr (CloudWatch on
	// Lambda); nil means os.Stderr.
	Output io.Writer
	// Logger receives runtime events; nil means slog.Default().
	Logger *slog.Logger

	mu      sync.Mutex
	stores  map[string]blob.Store
	codes   map[string]string // job -> binary hash
	hash    string            // the binary the worker runs
	local   *worker.Local
	fetches int
}

// Serve runs the runtime under the Lambda runtime API (lambda.Start); it
// does not return. cmd/wren-lambda calls it.
func Serve() {
	rt := &Runtime{}
	lambda.Start(rt.Handle)
}

// Fetches returns how many binaries the runtime has downloaded.
func (rt *Runtime) Fetches() int {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.fetches
}

// Handle runs one invocation (a worker.Invocation as JSON) and returns the
// worker.Reply.
func (rt *Runtime) Handle(ctx context.Context, payload json.RawMessage) (*worker.Reply, error) {
	inv, err := worker.ParseInvocation(payload)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	lw, err := rt.worker(ctx, inv)
	if err != nil {
		return nil, err
	}
	rep, err := lw.Invoke(ctx, inv)
	if err != nil {
		if dl, ok := ctx.Deadline(); ok && ctx.Err() != nil {
			return nil, fmt.Errorf("wren-lambda: job %s: the function's timeout ended the invocation after %v, during its calls: raise the function's timeout (wren deploy -timeout) or give the calls less work: %w",
				inv.Job, dl.Sub(start).Round(time.Millisecond), err)
		}
		return nil, fmt.Errorf("wren-lambda: job %s: %w", inv.Job, err)
	}
	rep.RuntimeNanos = int64(time.Since(start))
	if b, _ := json.Marshal(rep); len(b) > MaxReply {
		// Too big for Lambda's answer: the driver reads these statuses
		// from the store (a status without Won is read there).
		for i := range rep.Statuses {
			if rep.Statuses[i].Inline != nil {
				rep.Statuses[i].Inline, rep.Statuses[i].Won = nil, false
			}
		}
	}
	return rep, nil
}

func (rt *Runtime) logger() *slog.Logger {
	if rt.Logger != nil {
		return rt.Logger
	}
	return slog.Default()
}

// worker returns the local worker process running the invocation's job's
// binary, fetching the binary if needed.
func (rt *Runtime) worker(ctx context.Context, inv *worker.Invocation) (*worker.Local, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	st, ok := rt.stores[inv.Store]
	if !ok {
		var err error
		if st, err = blob.Open(ctx, inv.Store); err != nil {
			return nil, fmt.Errorf("wren-lambda: store of job %s: %w", inv.Job, err)
		}
		if rt.stores == nil {
			rt.stores = map[string]blob.Store{}
		}
		rt.stores[inv.Store] = st
	}
	hash, ok := rt.codes[inv.Job]
	if !ok {
		b, err := blob.ReadAll(ctx, st, worker.CodeKey(inv.Job))
		if err != nil {
			return nil, fmt.Errorf("wren-lambda: code of job %s: %w", inv.Job, err)
		}
		hash = strings.TrimSpace(string(b))
		if rt.codes == nil {
			rt.codes = map[string]string{}
		}
		rt.codes[inv.Job] = hash
	}
	if rt.local != nil && rt.hash == hash {
		return rt.local, nil
	}
	path, err := rt.fetch(ctx, st, hash)
	if err != nil {
		return nil, err
	}
	if rt.local != nil {
		rt.local.Close() // another job's binary: one worker process at a time
	}
	out := rt.Output
	if out == nil {
		out = os.Stderr
	}
	lw, err := worker.NewLocal(worker.LocalOptions{Parallelism: 1, Executable: path, Output: out, Logger: rt.logger()})
	if err != nil {
		return nil, err
	}
	rt.local, rt.hash = lw, hash
	return lw, nil
}

// ErrBadCode reports a binary whose content does not match its hash.
var ErrBadCode = errors.New("wren-lambda: the job's binary does not match its hash")

// fetch returns the path of the binary with the given hash, downloading it
// into the cache unless it is there.
func (rt *Runtime) fetch(ctx context.Context, st blob.Store, hash string) (string, error) {
	if len(hash) != 64 || strings.Trim(hash, "0123456789abcdef") != "" {
		return "", fmt.Errorf("wren-lambda: bad code hash %q", hash)
	}
	dir := rt.CacheDir
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "wren-code")
	}
	path := filepath.Join(dir, hash)
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	r, err := st.Get(ctx, worker.BinaryKey(hash))
	if err != nil {
		return "", fmt.Errorf("wren-lambda: fetch the job's binary: %w", err)
	}
	defer r.Close()
	f, err := os.CreateTemp(dir, ".fetch-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(f.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("wren-lambda: fetch the job's binary: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != hash {
		return "", fmt.Errorf("%w: %s has SHA-256 %s", ErrBadCode, worker.BinaryKey(hash), got)
	}
	if err := os.Chmod(f.Name(), 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return "", err
	}
	rt.fetches++
	rt.logger().Info("wren-lambda: fetched the job's binary", "hash", hash, "bytes", n)
	fmt.Fprintf(os.Stderr, "wren-lambda: fetched code %s (%d bytes)\n", hash, n)
	return path, nil
}
