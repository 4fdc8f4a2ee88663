// Package config resolves wren's settings in one documented order:
// explicit Options given in code, then the environment (WREN_BACKEND,
// WREN_STORE, WREN_LAMBDA_FUNCTION, ...), then a YAML file ($WREN_CONFIG, or
// ~/.config/wren/config.yaml when it exists), then the defaults; and builds
// an executor from them, for the local processes or AWS Lambda. AWS
// credentials and region come from the SDK's standard chain (AWS_PROFILE,
// AWS_REGION, the shared files). wren config prints the result and where
// each value came from. An unknown key in the file is an error.
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
	"reflect"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"go.yaml.in/yaml/v3"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/worker/awslambda"
)

// Backends a configuration may name.
const (
	BackendLocal     = "local"
	BackendLambda    = "lambda"
	BackendInProcess = "inprocess"
)

// Config is wren's resolved configuration.
type Config struct {
	// Backend is "local" (worker processes, the default), "lambda" or
	// "inprocess".
	Backend string `yaml:"backend"`
	// Store is the job store's URL or directory (default ./.wren).
	Store string `yaml:"store"`
	// Parallelism is the number of local worker processes or in-process
	// goroutines (0: one per CPU); Options.Parallelism given to Executor
	// overrides it.
	Parallelism int `yaml:"parallelism"`
	// Lambda configures the Lambda backend and wren deploy.
	Lambda Lambda `yaml:"lambda"`

	sources map[string]string
}

// Lambda is the Lambda part of a Config.
type Lambda struct {
	Function    string        `yaml:"function"`      // default awslambda.DefaultFunction
	Qualifier   string        `yaml:"qualifier"`     // version or alias
	Arch        string        `yaml:"arch"`          // x86_64 (default) or arm64
	MaxInFlight int           `yaml:"max_in_flight"` // default 1000
	Timeout     time.Duration `yaml:"timeout"`       // the function's timeout: what wren deploy sets (default awslambda.DefaultTimeout); the backend reads the deployed function's unless set
	Memory      int           `yaml:"memory"`        // MB (default 1769: one full vCPU); the backend reads the deployed function's unless set
	Async       bool          `yaml:"async"`         // Event invocations
	Role        string        `yaml:"role"`          // the execution role's ARN, for wren deploy
}

// setting ties a field to its environment variable and file key.
type setting struct {
	key, env string
	field    func(c *Config) any // pointer to the field
	def      string
}

var settings = []setting{
	{"backend", "WREN_BACKEND", func(c *Config) any { return &c.Backend }, BackendLocal},
	{"store", "WREN_STORE", func(c *Config) any { return &c.Store }, wren.DefaultStore},
	{"parallelism", "WREN_PARALLELISM", func(c *Config) any { return &c.Parallelism }, "0"},
	{"lambda.function", "WREN_LAMBDA_FUNCTION", func(c *Config) any { return &c.Lambda.Function }, awslambda.DefaultFunction},
	{"lambda.qualifier", "WREN_LAMBDA_QUALIFIER", func(c *Config) any { return &c.Lambda.Qualifier }, ""},
	{"lambda.arch", "WREN_LAMBDA_ARCH", func(c *Config) any { return &c.Lambda.Arch }, awslambda.ArchX86},
	{"lambda.max_in_flight", "WREN_LAMBDA_MAX_IN_FLIGHT", func(c *Config) any { return &c.Lambda.MaxInFlight }, "1000"},
	{"lambda.timeout", "WREN_LAMBDA_TIMEOUT", func(c *Config) any { return &c.Lambda.Timeout }, awslambda.DefaultTimeout.String()},
	{"lambda.memory", "WREN_LAMBDA_MEMORY", func(c *Config) any { return &c.Lambda.Memory }, strconv.Itoa(awslambda.DefaultMemory)},
	{"lambda.async", "WREN_LAMBDA_ASYNC", func(c *Config) any { return &c.Lambda.Async }, "false"},
	{"lambda.role", "WREN_LAMBDA_ROLE", func(c *Config) any { return &c.Lambda.Role }, ""},
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
	c := &Config{sources: map[string]string{}}
	for _, s := range settings {
		if err := set(s.field(c), s.def); err != nil {
			return nil, fmt.Errorf("config: default of %s: %w", s.key, err)
		}
		c.sources[s.key] = "default"
	}
	if path != "" {
		b, err := os.ReadFile(path)
		_, explicit := lookup("WREN_CONFIG")
		switch {
		case err == nil:
			if err := c.readFile(b, path); err != nil {
				return nil, err
			}
		case !errors.Is(err, os.ErrNotExist) || explicit:
			return nil, fmt.Errorf("config: %w", err)
		}
	}
	for _, s := range settings {
		if v, ok := lookup(s.env); ok && v != "" {
			if err := set(s.field(c), v); err != nil {
				return nil, fmt.Errorf("config: %s=%q: %w", s.env, v, err)
			}
			c.sources[s.key] = "environment " + s.env
		}
	}
	return c, c.validate()
}

// readFile applies a YAML file, refusing keys it does not know.
func (c *Config) readFile(b []byte, path string) error {
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
	for _, k := range keys {
		i := index(k)
		if i < 0 {
			return fmt.Errorf("config: %s: unknown key %q (known: %s)", path, k, strings.Join(known(), ", "))
		}
		if err := set(settings[i].field(c), fmt.Sprint(flat[k])); err != nil {
			return fmt.Errorf("config: %s: %s: %w", path, k, err)
		}
		c.sources[k] = "file " + path
	}
	return nil
}

func index(key string) int {
	for i, s := range settings {
		if s.key == key {
			return i
		}
	}
	return -1
}

func known() []string {
	var out []string
	for _, s := range settings {
		out = append(out, s.key)
	}
	return out
}

// set parses v into the field p points to.
func set(p any, v string) error {
	switch f := p.(type) {
	case *string:
		*f = v
	case *int:
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("want an integer: %w", err)
		}
		*f = n
	case *bool:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("want true or false: %w", err)
		}
		*f = b
	case *time.Duration:
		d, err := time.ParseDuration(v)
		if err != nil {
			if n, nerr := strconv.Atoi(v); nerr == nil { // plain seconds
				d, err = time.Duration(n)*time.Second, nil
			}
		}
		if err != nil {
			return fmt.Errorf("want a duration (300s, 5m): %w", err)
		}
		*f = d
	default:
		return fmt.Errorf("unsupported field %v", reflect.TypeOf(p))
	}
	return nil
}

func (c *Config) validate() error {
	switch c.Backend {
	case BackendLocal, BackendLambda, BackendInProcess:
	default:
		return fmt.Errorf("config: backend %q (%s): want local, lambda or inprocess", c.Backend, c.sources["backend"])
	}
	switch c.Lambda.Arch {
	case awslambda.ArchX86, awslambda.ArchARM:
	default:
		return fmt.Errorf("config: lambda.arch %q (%s): want x86_64 or arm64", c.Lambda.Arch, c.sources["lambda.arch"])
	}
	if c.Lambda.Memory < 128 || c.Lambda.Memory > 10240 {
		return fmt.Errorf("config: lambda.memory %d MB (%s): Lambda takes 128 to 10240", c.Lambda.Memory, c.sources["lambda.memory"])
	}
	if c.Lambda.Timeout <= 0 || c.Lambda.Timeout > 15*time.Minute {
		return fmt.Errorf("config: lambda.timeout %v (%s): Lambda takes 1s to 15m", c.Lambda.Timeout, c.sources["lambda.timeout"])
	}
	return nil
}

// Source says where a setting's value came from ("default", "environment
// WREN_STORE", "file PATH").
func (c *Config) Source(key string) string { return c.sources[key] }

// Print writes every setting, its value and its source.
func (c *Config) Print(w io.Writer) {
	for _, s := range settings {
		v := reflect.ValueOf(s.field(c)).Elem().Interface()
		fmt.Fprintf(w, "%-22s %-28v %s\n", s.key, v, c.sources[s.key])
	}
}

// Executor builds an executor from the configuration; the non-zero fields
// of opts come first (explicit Options win over everything).
func (c *Config) Executor(ctx context.Context, opts wren.Options) (*wren.Executor, error) {
	if opts.Store == "" && opts.BlobStore == nil {
		opts.Store = c.Store
	}
	// Parallelism: the caller's, else the configuration's; 0 means one per
	// CPU for the local and in-process backends alike.
	par := opts.Parallelism
	if par == 0 {
		par = c.Parallelism
	}
	if par <= 0 {
		par = runtime.NumCPU()
	}
	if c.Backend == BackendLocal && opts.Backend == nil {
		opts.Parallelism = par
	}
	if opts.Backend == nil {
		switch c.Backend {
		case BackendInProcess:
			opts.Backend = wren.InProcess(par)
		case BackendLambda:
			b, err := c.LambdaBackend(ctx)
			if err != nil {
				return nil, err
			}
			opts.Backend = b
		}
	}
	return wren.NewExecutor(ctx, opts)
}

// LambdaBackend builds the Lambda backend, with the AWS SDK's standard
// configuration chain.
func (c *Config) LambdaBackend(ctx context.Context) (*awslambda.Backend, error) {
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("config: AWS configuration: %w", err)
	}
	return awslambda.New(awsCfg, c.LambdaOptions())
}

// LambdaOptions are the Lambda backend's options from the configuration.
// The function's timeout and memory are passed only when set (in the
// environment or the file): otherwise the backend reads the deployed
// function's, so that one default (awslambda.DefaultTimeout, what wren
// deploy sets) cannot disagree with what was deployed.
func (c *Config) LambdaOptions() awslambda.Options {
	o := awslambda.Options{
		Function: c.Lambda.Function, Qualifier: c.Lambda.Qualifier, Arch: c.Lambda.Arch,
		MaxInFlight: c.Lambda.MaxInFlight, Async: c.Lambda.Async,
	}
	if c.sources["lambda.timeout"] != "default" {
		o.FunctionTimeout = c.Lambda.Timeout
	}
	if c.sources["lambda.memory"] != "default" {
		o.MemoryMB = c.Lambda.Memory
	}
	return o
}
