package worker

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A BackendType is a kind of backend that configuration names by Name
// ("local", "inprocess", "lambda"), as blob stores are named by their URL
// scheme: it brings its own settings (with their defaults, spelled once),
// builds backends from them, and may bring a deploy verb (wren deploy).
// A backend package registers its type in an init function.
type BackendType struct {
	// Name names the backend in configuration (WREN_BACKEND) and stats.
	Name string
	// Doc is one line for wren config and errors.
	Doc string
	// Settings are the backend's own, found in the configuration file
	// under its name ("lambda.function") and in the environment.
	Settings []Setting
	// New builds a backend. parallelism is the caller's (0 when it gave
	// none): what it means is the backend's (worker processes,
	// goroutines, invocations in flight).
	New func(ctx context.Context, s Settings, parallelism int) (Backend, error)
	// Deploy, when set, is the backend's deploy verb: args are the command
	// line after "wren deploy", store the configured store, out where it
	// reports.
	Deploy func(ctx context.Context, s Settings, store string, args []string, out io.Writer) error
}

// A Setting is one of a backend's settings.
type Setting struct {
	// Key names it under the backend in the configuration file
	// ("function" is lambda.function).
	Key string
	// Env is its environment variable (WREN_LAMBDA_FUNCTION).
	Env string
	// Default is its value when nothing sets it; "" for none.
	Default string
	// Doc says what it is, with its unit.
	Doc string
	// Check, when set, refuses a value the backend cannot use.
	Check func(v string) error
}

// Settings are a backend's settings as resolved, by Key; Set reports
// which were set (in the environment or the file) rather than defaulted.
type Settings struct {
	Values map[string]string
	Set    map[string]bool
}

// String returns a setting's value.
func (s Settings) String(key string) string { return s.Values[key] }

// IsSet reports whether a setting was given rather than defaulted.
func (s Settings) IsSet(key string) bool { return s.Set[key] }

// Int returns a setting as an integer ("" is 0).
func (s Settings) Int(key string) (int, error) {
	v := s.Values[key]
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: want an integer", key, v)
	}
	return n, nil
}

// Bool returns a setting as a boolean ("" is false).
func (s Settings) Bool(key string) (bool, error) {
	v := s.Values[key]
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s=%q: want true or false", key, v)
	}
	return b, nil
}

// Duration returns a setting as a duration ("300s", "5m", or plain
// seconds; "" is 0).
func (s Settings) Duration(key string) (time.Duration, error) { return ParseDuration(s.Values[key]) }

// ParseDuration reads a duration setting: "300s", "5m", or plain seconds;
// "" is 0.
func ParseDuration(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		n, nerr := strconv.Atoi(v)
		if nerr != nil {
			return 0, fmt.Errorf("%q: want a duration (300s, 5m)", v)
		}
		d = time.Duration(n) * time.Second
	}
	return d, nil
}

var (
	typesMu sync.RWMutex
	types   = map[string]BackendType{}
)

// RegisterBackend makes a backend type known by its name. It panics when
// the name is empty or taken, or New is nil (a programming error, found
// when the program starts).
func RegisterBackend(t BackendType) {
	if t.Name == "" || t.New == nil || strings.ContainsAny(t.Name, ". ") {
		panic("worker: RegisterBackend of a type without a name or New")
	}
	typesMu.Lock()
	defer typesMu.Unlock()
	if _, dup := types[t.Name]; dup {
		panic("worker: backend type " + t.Name + " registered twice")
	}
	types[t.Name] = t
}

// LookupBackend returns the backend type registered under name.
func LookupBackend(name string) (BackendType, bool) {
	typesMu.RLock()
	defer typesMu.RUnlock()
	t, ok := types[name]
	return t, ok
}

// BackendTypes returns the registered backend types, by name.
func BackendTypes() []BackendType {
	typesMu.RLock()
	defer typesMu.RUnlock()
	out := make([]BackendType, 0, len(types))
	for _, t := range types {
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b BackendType) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func init() {
	RegisterBackend(BackendType{
		Name: "local",
		Doc:  "worker processes re-executed from the driver's binary on this machine",
		New: func(ctx context.Context, s Settings, parallelism int) (Backend, error) {
			return NewLocal(LocalOptions{Parallelism: parallelism})
		},
	})
}
