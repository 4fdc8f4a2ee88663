package remote

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/job"
	"github.com/wrenml/wren/worker"
)

// EnvAllowedStore is the environment variable of the function's
// configuration that names the store whose jobs the runtime runs
// (s3://bucket/prefix, with ?endpoint=URL only for an S3-compatible
// server); wren deploy -store sets it. Several stores may be given,
// separated by spaces.
const EnvAllowedStore = "WREN_ALLOWED_STORE"

// ErrStoreNotAllowed reports an invocation naming a store other than the
// ones the function was deployed for.
var ErrStoreNotAllowed = errors.New("remote: store not allowed")

// Runtime is the generic remote worker: it runs any job's calls by
// fetching the job's binary from the store (once per binary and container,
// cached in a directory, SHA-256 checked) and running it as a local worker
// process that stays alive between invocations (Lambda's warm containers).
// A remote backend's function hands it each invocation's payload (Handle).
// It is safe for concurrent use.
//
// Whoever may invoke the function chooses the invocation's payload, so the
// runtime takes nothing in it on trust: it runs jobs only from the stores
// its deployer allowed (Allowed), refusing any other before it sends a
// request anywhere, and it runs only the binary the job's code object in
// that store names, checked against its hash.
type Runtime struct {
	// Allowed are the stores whose jobs the runtime runs; Serve takes them
	// from EnvAllowedStore. A store matches when its scheme, bucket (or
	// host), prefix (or path) and S3 endpoint are the same; an invocation
	// naming any other store is refused. None allowed refuses every
	// invocation.
	Allowed []string
	// CacheDir keeps fetched binaries; "" means $TMPDIR/wren-code.
	CacheDir string
	// Output receives the worker processes' stdout and stderr (the
	// platform's log: CloudWatch on Lambda); nil means os.Stderr.
	Output io.Writer
	// Logger receives runtime events; nil means slog.Default().
	Logger *slog.Logger

	mu      sync.Mutex
	stores  map[string]blob.Store
	codes   map[codeKey]string // (store, job) -> binary hash
	hash    string             // the binary the worker runs
	local   *worker.Local
	fetches int
}

// codeKey names a job in a store: job IDs are unique only within one.
type codeKey struct{ store, job string }

// CheckStore returns an error wrapping ErrStoreNotAllowed unless the store
// URL u matches one of the allowed stores.
func CheckStore(u string, allowed []string) error {
	if len(allowed) == 0 {
		return fmt.Errorf("%w: the function allows no store (%s is not set: deploy it with wren deploy -store s3://bucket/prefix)", ErrStoreNotAllowed, EnvAllowedStore)
	}
	got, err := storeIdentity(u)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrStoreNotAllowed, err)
	}
	for _, a := range allowed {
		if want, err := storeIdentity(a); err == nil && want == got {
			return nil
		}
	}
	return fmt.Errorf("%w: the invocation names %s; this function runs jobs from %s only", ErrStoreNotAllowed, redact(u), strings.Join(allowed, " "))
}

// storeIdentity is what decides where a store's requests go: the scheme,
// the bucket or host, the prefix or path, and an S3 endpoint.
func storeIdentity(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("store URL %q: %v", redact(raw), err)
	}
	if u.Scheme == "" || u.User != nil || u.Opaque != "" {
		return "", fmt.Errorf("store URL %q: want scheme://bucket/prefix", redact(raw))
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return "", fmt.Errorf("store URL %q: %v", redact(raw), err)
	}
	for k, v := range q {
		if len(v) > 1 {
			return "", fmt.Errorf("store URL %q: parameter %q given %d times", redact(raw), k, len(v))
		}
	}
	id := u.Scheme + "://" + strings.ToLower(u.Host) + "/" + strings.Trim(u.Path, "/")
	if ep := q.Get("endpoint"); ep != "" || q.Has("endpoint") {
		id += " at " + strings.TrimRight(ep, "/")
	}
	return id, nil
}

// redact cuts a URL for an error message.
func redact(u string) string {
	if len(u) > 200 {
		return u[:200] + "..."
	}
	return u
}

// Fetches returns how many binaries the runtime has downloaded.
func (rt *Runtime) Fetches() int {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	return rt.fetches
}

// Handle runs one invocation (a job.Invocation as JSON) and returns the
// job.Reply.
func (rt *Runtime) Handle(ctx context.Context, payload json.RawMessage) (*job.Reply, error) {
	inv, err := job.ParseInvocation(payload)
	if err != nil {
		return nil, err
	}
	if err := CheckStore(inv.Store, rt.Allowed); err != nil {
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
			return nil, fmt.Errorf("wren-runtime: job %s: the function's timeout ended the invocation after %v, during its calls: raise the function's timeout (wren deploy -timeout) or give the calls less work: %w",
				inv.Job, dl.Sub(start).Round(time.Millisecond), err)
		}
		return nil, fmt.Errorf("wren-runtime: job %s: %w", inv.Job, err)
	}
	rep.RuntimeNanos = int64(time.Since(start))
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
func (rt *Runtime) worker(ctx context.Context, inv *job.Invocation) (*worker.Local, error) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	st, ok := rt.stores[inv.Store]
	if !ok {
		var err error
		if st, err = blob.Open(ctx, inv.Store); err != nil {
			return nil, fmt.Errorf("wren-runtime: store of job %s: %w", inv.Job, err)
		}
		if rt.stores == nil {
			rt.stores = map[string]blob.Store{}
		}
		rt.stores[inv.Store] = st
	}
	// The job's binary is what its code object in this store says; a
	// cached answer is kept per store and job, and read again when the
	// invocation expects another binary (the job was cleaned and run again
	// under its ID with a rebuilt binary).
	key := codeKey{inv.Store, inv.Job}
	hash, ok := rt.codes[key]
	if !ok || (inv.Code != "" && hash != inv.Code) {
		b, err := blob.ReadAll(ctx, st, job.CodeKey(inv.Job))
		if err != nil {
			return nil, fmt.Errorf("wren-runtime: code of job %s: %w", inv.Job, err)
		}
		hash = strings.TrimSpace(string(b))
		if rt.codes == nil {
			rt.codes = map[codeKey]string{}
		}
		rt.codes[key] = hash
	}
	if inv.Code != "" && hash != inv.Code {
		return nil, fmt.Errorf("wren-runtime: job %s: its code object names binary %s, the invocation expects %s", inv.Job, hash, inv.Code)
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
var ErrBadCode = errors.New("wren-runtime: the job's binary does not match its hash")

// fetch returns the path of the binary with the given hash, downloading it
// into the cache unless it is there.
func (rt *Runtime) fetch(ctx context.Context, st blob.Store, hash string) (string, error) {
	if !job.IsHash(hash) {
		return "", fmt.Errorf("wren-runtime: bad code hash %q", hash)
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
	start := time.Now()
	r, err := st.Get(ctx, job.BinaryKey(hash))
	if err != nil {
		return "", fmt.Errorf("wren-runtime: fetch the job's binary: %w", err)
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
		return "", fmt.Errorf("wren-runtime: fetch the job's binary: %w", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != hash {
		return "", fmt.Errorf("%w: %s has SHA-256 %s", ErrBadCode, job.BinaryKey(hash), got)
	}
	if err := os.Chmod(f.Name(), 0o755); err != nil {
		return "", err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return "", err
	}
	rt.fetches++
	took := time.Since(start)
	rt.logger().Info("wren-runtime: fetched the job's binary", "hash", hash, "bytes", n, "took", took)
	fmt.Fprintf(os.Stderr, "wren-runtime: fetched code %s (%d bytes in %v)\n", hash, n, took.Round(time.Microsecond))
	return path, nil
}
