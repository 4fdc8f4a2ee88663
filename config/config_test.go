package config

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/worker"
	"github.com/wrenml/wren/worker/awslambda"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestOrder(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "config.yaml")
	os.WriteFile(file, []byte("store: s3://from-file/p\nlambda:\n  function: fn-file\n  memory: 3008\n  timeout: 60s\n"), 0o644)
	c, err := load(env(map[string]string{"WREN_STORE": "s3://from-env/p", "WREN_BACKEND": "lambda"}), file)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		got, want any
		key, src  string
	}{
		{c.Store, "s3://from-env/p", "store", "environment WREN_STORE"},
		{c.Backend, "lambda", "backend", "environment WREN_BACKEND"},
		{c.Get("lambda.function"), "fn-file", "lambda.function", "file " + file},
		{c.Get("lambda.memory"), "3008", "lambda.memory", "file " + file},
		{c.Get("lambda.timeout"), "60s", "lambda.timeout", "file " + file},
		{c.Get("lambda.arch"), "x86_64", "lambda.arch", "default"},
	} {
		if tc.got != tc.want || c.Source(tc.key) != tc.src {
			t.Errorf("%s = %v from %q, want %v from %q", tc.key, tc.got, c.Source(tc.key), tc.want, tc.src)
		}
	}
	var b strings.Builder
	c.Print(&b)
	if !strings.Contains(b.String(), "environment WREN_STORE") || !strings.Contains(b.String(), "fn-file") {
		t.Fatalf("Print:\n%s", b.String())
	}
}

func TestBadConfig(t *testing.T) {
	dir := t.TempDir()
	for name, c := range map[string]struct {
		file, want string
		env        map[string]string
	}{
		"unknown key":   {"lambda:\n  fuction: x\n", `unknown key "lambda.fuction"`, nil},
		"bad memory":    {"lambda:\n  memory: lots\n", "want an integer", nil},
		"small memory":  {"lambda:\n  memory: 64\n", "128 to 10240", nil},
		"bad backend":   {"", `backend "kubernetes"`, map[string]string{"WREN_BACKEND": "kubernetes"}},
		"bad arch":      {"lambda:\n  arch: sparc\n", `lambda.arch "sparc"`, nil},
		"not yaml":      {"store: [\n", "config.yaml", nil},
		"missing named": {"-", "no such file", map[string]string{"WREN_CONFIG": "x"}},
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(dir, name, "config.yaml")
			if c.file != "-" {
				os.MkdirAll(filepath.Dir(path), 0o755)
				os.WriteFile(path, []byte(c.file), 0o644)
			}
			_, err := load(env(c.env), path)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, c.want)
			}
		})
	}
	// A default file that does not exist is fine.
	if _, err := load(env(nil), filepath.Join(dir, "none", "config.yaml")); err != nil {
		t.Fatal(err)
	}
}

func TestParseSize(t *testing.T) {
	for in, want := range map[string]int64{"64MiB": 64 << 20, "64MB": 64e6, "1gb": 1e9, "1GiB": 1 << 30, "512 KB": 512e3,
		"1000": 1000, "1.5MiB": 3 << 19, "10 b": 10} {
		if got, err := ParseSize(in); err != nil || got != want {
			t.Errorf("ParseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "MB", "-1MB", "0", "lots", "NaN", "1e30GB"} {
		if _, err := ParseSize(in); err == nil {
			t.Errorf("ParseSize(%q): no error", in)
		}
	}
}

// TestExecutorParallelism: an explicit Options.Parallelism wins over the
// configuration's for every backend, and 0 means one per CPU (the
// in-process backend used to take the configuration's value, and 0 gave
// it one goroutine).
func TestExecutorParallelism(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		backend  string
		cfg, opt int
		want     int
	}{
		{"inprocess", 0, 0, runtime.NumCPU()},
		{"inprocess", 3, 0, 3},
		{"inprocess", 3, 5, 5},
		{"inprocess", 0, 7, 7},
		{"inprocess", 0, 1, 1},
		{"local", 0, 0, runtime.NumCPU()},
		{"local", 3, 0, 3},
		{"local", 3, 5, 5},
	} {
		t.Run(fmt.Sprintf("%s/config=%d/opt=%d", c.backend, c.cfg, c.opt), func(t *testing.T) {
			cfg, err := load(env(map[string]string{"WREN_BACKEND": c.backend, "WREN_PARALLELISM": strconv.Itoa(c.cfg)}), "")
			if err != nil {
				t.Fatal(err)
			}
			ex, err := cfg.Executor(ctx, wren.Options{Parallelism: c.opt, Store: t.TempDir()})
			if err != nil {
				t.Fatal(err)
			}
			defer ex.Close()
			if got := ex.Parallelism(); got != c.want {
				t.Fatalf("parallelism %d, want %d", got, c.want)
			}
		})
	}
}

// TestLambdaOneDefault: the backend gets the function's timeout and
// memory from the configuration only when they were set; otherwise it
// reads the deployed function's (the config's default, 300 s, used to
// disagree with the backend's, 15 minutes).
func TestLambdaOneDefault(t *testing.T) {
	c, err := load(env(nil), "")
	if err != nil {
		t.Fatal(err)
	}
	o, err := awslambda.OptionsFrom(c.BackendSettings("lambda"), 0)
	if err != nil || o.FunctionTimeout != 0 || o.MemoryMB != 0 || c.Get("lambda.timeout") != awslambda.DefaultTimeout.String() || o.MaxInFlight != 1000 {
		t.Fatalf("defaults: %+v, %v (config timeout %v)", o, err, c.Get("lambda.timeout"))
	}
	c, err = load(env(map[string]string{"WREN_LAMBDA_TIMEOUT": "60s", "WREN_LAMBDA_MEMORY": "512"}), "")
	if err != nil {
		t.Fatal(err)
	}
	if o, err := awslambda.OptionsFrom(c.BackendSettings("lambda"), 7); err != nil || o.FunctionTimeout != time.Minute || o.MemoryMB != 512 || o.MaxInFlight != 7 || o.Emulators != nil {
		t.Fatalf("set: %+v, %v", o, err)
	}
}

// TestLambdaEmulators: WREN_LAMBDA_EMULATORS lists emulators to invoke
// instead of AWS; anything but http(s) URLs is refused when the
// configuration loads.
func TestLambdaEmulators(t *testing.T) {
	for v, want := range map[string][]string{
		"http://127.0.0.1:9001":                     {"http://127.0.0.1:9001"},
		" http://127.0.0.1:9001 , https://h:9002/,": {"http://127.0.0.1:9001", "https://h:9002/"},
		"":                                  nil,
		"127.0.0.1:9001":                    nil, // refused
		"ftp://h:1":                         nil, // refused
		",":                                 nil, // refused
		"http://127.0.0.1:9001,http://[::1": nil, // refused
		"http:///nohost":                    nil, // refused
	} {
		c, err := load(env(map[string]string{"WREN_BACKEND": "lambda", "WREN_LAMBDA_EMULATORS": v}), "")
		if want == nil && v != "" {
			if err == nil || !strings.Contains(err.Error(), "WREN_LAMBDA_EMULATORS") {
				t.Errorf("%q: %v", v, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", v, err)
		}
		o, err := awslambda.OptionsFrom(c.BackendSettings("lambda"), 0)
		if err != nil || !slices.Equal(o.Emulators, want) {
			t.Errorf("%q: %q, %v", v, o.Emulators, err)
		}
	}
}

// TestBackendsByName: every registered backend type is a valid
// configuration, its settings come from the file and the environment
// under its name, and an unknown backend is an error naming the known.
func TestBackendsByName(t *testing.T) {
	var names []string
	for _, bt := range worker.BackendTypes() {
		names = append(names, bt.Name)
		if _, err := load(env(map[string]string{"WREN_BACKEND": bt.Name}), ""); err != nil {
			t.Errorf("backend %s: %v", bt.Name, err)
		}
	}
	if strings.Join(names, ",") != "inprocess,lambda,local" {
		t.Fatalf("backends %v", names)
	}
	_, err := load(env(map[string]string{"WREN_BACKEND": "kubernetes"}), "")
	if err == nil || !strings.Contains(err.Error(), "inprocess, lambda, local") {
		t.Fatalf("unknown backend: %v", err)
	}
}
