// Package config resolves wren's settings in one documented order:
// explicit Options given in code, then the environment (WREN_BACKEND,
// WREN_STORE, WREN_PARALLELISM, and each backend's own, such as
// WREN_LAMBDA_FUNCTION), then a YAML file ($WREN_CONFIG, or
// ~/.config/wren/config.yaml when it exists), then the defaults; and builds
// an executor from them. Backends are found by name (worker.RegisterBackend),
// each bringing its settings and their defaults: the local worker
// processes, the in-process goroutines and AWS Lambda are known here. wren
// config prints the result and where each value came from. An unknown key
// in the file is an error.
//
// Programs call it from main (flags and the environment are read there):
//
//	cfg, err := config.Load()
//	ex, err := cfg.Executor(ctx, wren.Options{}) // WREN_BACKEND=lambda WREN_STORE=s3://b/p: on Lambda
package config

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/worker"
	_ "github.com/wrenml/wren/worker/awslambda" // the "lambda" backend
)

// The core settings' keys.
const (
	KeyBackend     = "backend"
	KeyStore       = "store"
	KeyParallelism = "parallelism"
)

// Config is wren's resolved configuration.
type Config struct {
	// Backend names the backend ("local", the default; "inprocess";
	// "lambda"; any registered with worker.RegisterBackend).
	Backend string
	// Store is the job store's URL or directory (default ./.wren).
	Store string
	// Parallelism is the local worker processes or in-process goroutines
	// (0: one per CPU), the invocations in flight for a remote backend (0:
	// its own default); Options.Parallelism given to Executor overrides it.
	Parallelism int

	values  map[string]string // every setting, by key ("lambda.memory")
	sources map[string]string
}

// setting is one setting of the configuration, core or a backend's.
type setting struct {
	key, env, def, doc string
	check              func(string) error
}

// settings lists the core settings, then each registered backend's under
// its name.
func settings() []setting {
	out := []setting{
		{key: KeyBackend, env: "WREN_BACKEND", def: "local", doc: "where calls run"},
		{key: KeyStore, env: "WREN_STORE", def: wren.DefaultStore, doc: "the job store: a directory or a URL"},
		{key: KeyParallelism, env: "WREN_PARALLELISM", def: "0", doc: "workers (0: the backend's default)", check: func(v string) error {
			_, err := strconv.Atoi(v)
			return err
		}},
	}
	for _, t := range worker.BackendTypes() {
		for _, s := range t.Settings {
			out = append(out, setting{key: t.Name + "." + s.Key, env: s.Env, def: s.Default, doc: s.Doc, check: s.Check})
		}
	}
	return out
}

// Path returns the configuration file's path: $WREN_CONFIG, else
// ~/.config/wren/config.yaml.
func Path() string {
	if p := os.Getenv("WREN_CONFIG"); p != "" {
		return p
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return ""
	}
	return filepath.Join(home, ".config", "wren", "config.yaml")
}

// Load resolves the configuration from the environment, the file and the
// defaults. A file named by $WREN_CONFIG must exist; the default file may
// not.
func Load() (*Config, error) { return load(os.LookupEnv, Path()) }

func load(lookup func(string) (string, bool), path string) (*Config, error) {
	c := &Config{values: map[string]string{}, sources: map[string]string{}}
	all := settings()
	for _, s := range all {
		c.values[s.key], c.sources[s.key] = s.def, "default"
	}
	if path != "" {
		b, err := os.ReadFile(path)
		_, explicit := lookup("WREN_CONFIG")
		switch {
		case err == nil:
			if err := c.readFile(b, path, all); err != nil {
				return nil, err
			}
		case !errors.Is(err, os.ErrNotExist) || explicit:
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	for _, s := range all {
		if v, ok := lookup(s.env); ok && v != "" {
			c.values[s.key], c.sources[s.key] = v, "environment "+s.env
		}
	}
	for _, s := range all {
		if s.check != nil && c.sources[s.key] != "default" {
			if err := s.check(c.values[s.key]); err != nil {
				return nil, fmt.Errorf("config: %s %q (%s): %w", s.key, c.values[s.key], c.sources[s.key], err)
			}
		}
	}
	c.Backend, c.Store = c.values[KeyBackend], c.values[KeyStore]
	c.Parallelism, _ = strconv.Atoi(c.values[KeyParallelism])
	if _, ok := worker.LookupBackend(c.Backend); !ok {
		return nil, fmt.Errorf("config: backend %q (%s): want one of %s", c.Backend, c.sources[KeyBackend], strings.Join(backendNames(), ", "))
	}
	return c, nil
}

func backendNames() []string {
	var out []string
	for _, t := range worker.BackendTypes() {
		out = append(out, t.Name)
	}
	return out
}

// readFile applies a YAML file, refusing keys it does not know.
func (c *Config) readFile(b []byte, path string, all []setting) error {
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("config: %s: %w", path, err)
	}
	flat := map[string]any{}
	var walk func(prefix string, m map[string]any)
	walk = func(prefix string, m map[string]any) {
		for k, v := range m {
			if sub, ok := v.(map[string]any); ok {
				walk(prefix+k+".", sub)
				continue
			}
			flat[prefix+k] = v
		}
	}
	walk("", raw)
	keys := make([]string, 0, len(flat))
	for k := range flat {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	known := map[string]bool{}
	var names []string
	for _, s := range all {
		known[s.key] = true
		names = append(names, s.key)
	}
	for _, k := range keys {
		if !known[k] {
			return fmt.Errorf("config: %s: unknown key %q (known: %s)", path, k, strings.Join(names, ", "))
		}
		c.values[k], c.sources[k] = fmt.Sprint(flat[k]), "file "+path
	}
	return nil
}

// Get returns a setting's value by key ("store", "lambda.memory").
func (c *Config) Get(key string) string { return c.values[key] }

// Source says where a setting's value came from ("default", "environment
// WREN_STORE", "file PATH").
func (c *Config) Source(key string) string { return c.sources[key] }

// Print writes every setting, its value and its source.
func (c *Config) Print(w io.Writer) {
	for _, s := range settings() {
		fmt.Fprintf(w, "%-22s %-28v %s\n", s.key, c.values[s.key], c.sources[s.key])
	}
}

// BackendSettings returns the settings of the backend type named name.
func (c *Config) BackendSettings(name string) worker.Settings {
	s := worker.Settings{Values: map[string]string{}, Set: map[string]bool{}}
	t, ok := worker.LookupBackend(name)
	if !ok {
		return s
	}
	for _, st := range t.Settings {
		k := name + "." + st.Key
		s.Values[st.Key] = c.values[k]
		s.Set[st.Key] = c.sources[k] != "default"
	}
	return s
}

// Executor builds an executor from the configuration; the non-zero fields
// of opts come first (explicit Options win over everything).
func (c *Config) Executor(ctx context.Context, opts wren.Options) (*wren.Executor, error) {
	if opts.Store == "" && opts.BlobStore == nil {
		opts.Store = c.Store
	}
	if opts.Backend == nil {
		// The caller's parallelism, else the configuration's; 0 is each
		// backend's default (one worker per CPU for the local ones).
		par := opts.Parallelism
		if par == 0 {
			par = c.Parallelism
		}
		b, err := c.NewBackend(ctx, c.Backend, par)
		if err != nil {
			return nil, err
		}
		// The backend has the parallelism; the executor closes it.
		opts.Backend, opts.Parallelism, opts.CloseBackend = b, 0, true
		ex, err := wren.NewExecutor(ctx, opts)
		if err != nil {
			b.Close()
			return nil, err
		}
		return ex, nil
	}
	return wren.NewExecutor(ctx, opts)
}

// NewBackend builds a backend of the type named name from its settings.
func (c *Config) NewBackend(ctx context.Context, name string, parallelism int) (worker.Backend, error) {
	t, ok := worker.LookupBackend(name)
	if !ok {
		return nil, fmt.Errorf("config: no backend %q (known: %s)", name, strings.Join(backendNames(), ", "))
	}
	b, err := t.New(ctx, c.BackendSettings(name), parallelism)
	if err != nil {
		return nil, fmt.Errorf("config: backend %s: %w", name, err)
	}
	return b, nil
}
