package awslambda

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/wrenml/wren/worker"
)

// The "lambda" backend's settings, each with its one default; the
// configuration file holds them under lambda: (lambda.function, ...).
var settings = []worker.Setting{
	{Key: "function", Env: "WREN_LAMBDA_FUNCTION", Default: DefaultFunction, Doc: "the deployed runtime's name or ARN"},
	{Key: "qualifier", Env: "WREN_LAMBDA_QUALIFIER", Doc: "a version or alias of the function"},
	{Key: "arch", Env: "WREN_LAMBDA_ARCH", Default: ArchX86, Doc: "x86_64 or arm64", Check: func(v string) error {
		_, err := goArch(v)
		return err
	}},
	{Key: "max_in_flight", Env: "WREN_LAMBDA_MAX_IN_FLIGHT", Default: "1000", Doc: "invocations in flight at most", Check: positive},
	{Key: "timeout", Env: "WREN_LAMBDA_TIMEOUT", Default: DefaultTimeout.String(), Doc: "the function's timeout (wren deploy sets it; the backend reads the deployed one unless this is set)", Check: func(v string) error {
		d, err := worker.ParseDuration(v)
		if err == nil && (d < time.Second || d > 15*time.Minute) {
			err = errors.New("the Lambda limit is 1s to 15m")
		}
		return err
	}},
	{Key: "memory", Env: "WREN_LAMBDA_MEMORY", Default: strconv.Itoa(DefaultMemory), Doc: "MB, 128-10240 (1769 is one vCPU; the backend reads the deployed one unless this is set)", Check: func(v string) error {
		n, err := strconv.Atoi(v)
		switch {
		case err != nil:
			return errors.New("want an integer")
		case n < 128 || n > 10240:
			return errors.New("the Lambda limit is 128 to 10240")
		}
		return nil
	}},
	{Key: "async", Env: "WREN_LAMBDA_ASYNC", Default: "false", Doc: "Event invocations, completion read from the store", Check: func(v string) error {
		if _, err := strconv.ParseBool(v); err != nil {
			return errors.New("want true or false")
		}
		return nil
	}},
	{Key: "role", Env: "WREN_LAMBDA_ROLE", Doc: "the execution role's ARN, for wren deploy"},
	{Key: "emulators", Env: "WREN_LAMBDA_EMULATORS", Doc: "comma-separated base URLs of Lambda Runtime Interface Emulators to invoke instead of AWS (a job on one machine)", Check: func(v string) error {
		_, err := emulatorURLs(v)
		return err
	}},
}

// emulatorURLs reads the emulators setting: http(s) base URLs, comma-separated.
func emulatorURLs(v string) ([]string, error) {
	var out []string
	for f := range strings.SplitSeq(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		u, err := url.Parse(f)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("%q is not an http(s) URL", f)
		}
		out = append(out, f)
	}
	if len(out) == 0 && strings.TrimSpace(v) != "" {
		return nil, errors.New("no URL")
	}
	return out, nil
}

func positive(v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return errors.New("want a positive integer")
	}
	return nil
}

func init() {
	worker.RegisterBackend(worker.BackendType{
		Name:     "lambda",
		Doc:      "AWS Lambda: one generic function that runs each job's binary from the store",
		Settings: settings,
		New:      newFromSettings,
		Deploy:   deploy,
	})
}

// OptionsFrom reads the backend's options from its settings: the
// function's timeout and memory only when they were set (otherwise the
// backend reads the deployed function's, so that one default cannot
// disagree with what was deployed). parallelism, when positive, caps the
// invocations in flight.
func OptionsFrom(s worker.Settings, parallelism int) (Options, error) {
	o := Options{Function: s.String("function"), Qualifier: s.String("qualifier"), Arch: s.String("arch")}
	var err error
	if o.MaxInFlight, err = s.Int("max_in_flight"); err != nil {
		return o, err
	}
	if parallelism > 0 {
		o.MaxInFlight = parallelism
	}
	if o.Async, err = s.Bool("async"); err != nil {
		return o, err
	}
	if s.IsSet("timeout") {
		if o.FunctionTimeout, err = s.Duration("timeout"); err != nil {
			return o, err
		}
	}
	if s.IsSet("memory") {
		if o.MemoryMB, err = s.Int("memory"); err != nil {
			return o, err
		}
	}
	if o.Emulators, err = emulatorURLs(s.String("emulators")); err != nil {
		return o, fmt.Errorf("awslambda: emulators: %w", err)
	}
	return o, nil
}

func newFromSettings(ctx context.Context, s worker.Settings, parallelism int) (worker.Backend, error) {
	o, err := OptionsFrom(s, parallelism)
	if err != nil {
		return nil, err
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("awslambda: AWS configuration: %w", err)
	}
	if len(o.Emulators) > 0 && awsCfg.Region == "" {
		awsCfg.Region = "us-east-1" // the emulator ignores it; the SDK wants one to sign
	}
	return New(awsCfg, o)
}

// deploy is wren deploy for Lambda: build the generic runtime and create
// or update the function (idempotent), print its policy, or delete it.
func deploy(ctx context.Context, s worker.Settings, store string, args []string, out io.Writer) error {
	memDef, _ := s.Int("memory")
	toDef, _ := s.Duration("timeout")
	fs := flag.NewFlagSet("deploy", flag.ContinueOnError)
	fs.SetOutput(out)
	fn := fs.String("function", s.String("function"), "function name")
	role := fs.String("role", s.String("role"), "execution role ARN (needed to create the function)")
	memory := fs.Int("memory", memDef, "memory in MB (sets the CPU share: 1769 MB is one vCPU)")
	timeout := fs.Duration("timeout", toDef, "function timeout (at most 15m)")
	arch := fs.String("arch", s.String("arch"), "architecture: x86_64 or arm64")
	printPolicy := fs.Bool("print-policy", false, "print the minimal IAM policy of the execution role for -store, and exit")
	st := fs.String("store", store, "the only store the function runs jobs from, s3://bucket/prefix (add ?endpoint=URL for an S3-compatible server)")
	del := fs.Bool("delete", false, "delete the function")
	if err := fs.Parse(args); err != nil {
		return err
	}
	bucket, prefix, serr := ParseStore(*st)
	if *printPolicy {
		if serr != nil {
			return fmt.Errorf("deploy -print-policy: -store: %w", serr)
		}
		fmt.Fprintln(out, Policy(bucket, prefix))
		return nil
	}
	if serr != nil && !*del {
		return fmt.Errorf("deploy: -store (or WREN_STORE) must name the one store the function runs jobs from: %w", serr)
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("deploy: AWS configuration: %w", err)
	}
	client := lambda.NewFromConfig(awsCfg)
	if *del {
		if err := Delete(ctx, client, *fn); err != nil {
			return err
		}
		fmt.Fprintf(out, "deleted function %s (if it existed)\n", *fn)
		return nil
	}
	o, err := DeployOptions{Function: *fn, Role: *role, Store: *st, Memory: *memory, Timeout: *timeout, Arch: *arch}.withDefaults()
	if err != nil { // before the build: a minute lost on a typo otherwise
		return fmt.Errorf("deploy: %w", err)
	}
	wd, _ := os.Getwd()
	fmt.Fprintf(os.Stderr, "building %s for linux/%s\n", RuntimePackage, o.Arch)
	if o.Zip, err = BuildRuntime(ctx, o.Arch, wd); err != nil {
		return err
	}
	res, err := Deploy(ctx, client, o)
	if err != nil {
		return err
	}
	what := "unchanged"
	switch {
	case res.Created:
		what = "created"
	case res.CodeSent && res.ConfigSent:
		what = "code and configuration updated"
	case res.CodeSent:
		what = "code updated"
	case res.ConfigSent:
		what = "configuration updated"
	}
	fmt.Fprintf(out, "function %s (%s): %s\n  runs jobs from %s only\n  memory %d MB, timeout %v, architecture %s, package %d bytes\n  Lambda's retries of Event invocations: off (events older than %v dropped)\n",
		res.Function, res.ARN, what, res.Store, res.Memory, res.Timeout, res.Arch, len(o.Zip), MaxEventAge(res.Timeout))
	return nil
}
