package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/internal/emulator"
	"github.com/wrenml/wren/worker/awslambda"
	"github.com/wrenml/wren/worker/remote"
)

// benchLambda runs maps through the real runtime under 1 and N AWS Lambda
// Runtime Interface Emulators, with the store on an S3-compatible server
// on loopback, and prints one JSON object per emulator count, after one
// about the binaries a job ships (benchBinaries).
func benchLambda(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("bench lambda", flag.ContinueOnError)
	emus := fs.String("emulators", "1,4", "emulator counts to measure")
	calls := fs.Int("calls", 400, "calls per map")
	taskMS := fs.Float64("task-ms", 0, "CPU-busy milliseconds per call")
	binaries := fs.Bool("binaries", true, "first report the binaries' sizes and examples/montecarlo-pi on a cold and a warm container")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *calls < 1 || !finiteAtLeast(*taskMS, 0) {
		return fmt.Errorf("bench lambda: -calls %d, -task-ms %v: want 1 call or more and a time of 0 or more", *calls, *taskMS)
	}
	emuCounts, err := positiveList("emulators", *emus)
	if err != nil {
		return fmt.Errorf("bench lambda: %w", err)
	}
	dir, err := os.MkdirTemp("", "wren-bench-lambda-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// The runtime, and this program as the job's binary: both static.
	wd, _ := os.Getwd()
	bootstrap, job := filepath.Join(dir, "bootstrap"), filepath.Join(dir, "wren")
	if err := emulator.Build(wd, awslambda.RuntimePackage, bootstrap, "-trimpath", "-ldflags=-s -w"); err != nil { // as wren deploy builds it
		return fmt.Errorf("bench lambda: build the runtime: %w", err)
	}
	if err := emulator.Build(wd, "github.com/wrenml/wren/cmd/wren", job); err != nil {
		return fmt.Errorf("bench lambda: build wren: %w", err)
	}
	srv := emulator.StartS3()
	defer srv.Close()
	creds := credentials.NewStaticCredentialsProvider("wren-bench", "wren-bench-secret", "")
	s3c := s3.New(s3.Options{Region: "us-east-1", BaseEndpoint: aws.String(srv.Endpoint), UsePathStyle: true, Credentials: creds})
	if _, err := s3c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String("bench")}); err != nil {
		return err
	}
	awsEnv := []string{"AWS_ACCESS_KEY_ID=wren-bench", "AWS_SECRET_ACCESS_KEY=wren-bench-secret", "AWS_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true"}
	for _, kv := range awsEnv {
		k, v, _ := strings.Cut(kv, "=")
		os.Setenv(k, v) // the driver's S3 client reads them too
	}
	env := append(awsEnv, "TMPDIR="+dir, remote.EnvAllowedStore+"="+lambdaBenchStore(srv.Endpoint))
	if *binaries {
		out, err := benchBinaries(ctx, wd, dir, bootstrap, job, s3c, srv.Endpoint, env)
		if err != nil {
			return err
		}
		if err := printJSON(out); err != nil {
			return err
		}
	}
	d := time.Duration(*taskMS * float64(time.Millisecond))
	for _, n := range emuCounts {
		es, err := emulator.Start(n, bootstrap, env...)
		if err != nil {
			return err
		}
		out, err := lambdaRun(ctx, es, job, srv.Endpoint, creds, *calls, d)
		for _, e := range es {
			e.Stop()
		}
		if err != nil {
			return err
		}
		if err := printJSON(out); err != nil {
			return err
		}
	}
	return nil
}

// lambdaBenchStore is the store of the benchmark's jobs, the one its function allows.
func lambdaBenchStore(endpoint string) string { return "s3://bench/wren?endpoint=" + endpoint }

func lambdaRun(ctx context.Context, es []*emulator.Emulator, job, endpoint string, creds aws.CredentialsProvider, calls int, d time.Duration) (map[string]any, error) {
	b, err := awslambda.New(aws.Config{Region: "us-east-1", Credentials: creds}, awslambda.Options{Emulators: emulator.URLs(es), Executable: job, FunctionTimeout: time.Minute})
	if err != nil {
		return nil, err
	}
	ex, err := wren.NewExecutor(ctx, wren.Options{Backend: b, Store: lambdaBenchStore(endpoint), Progress: wren.ProgressOff})
	if err != nil {
		return nil, err
	}
	defer ex.Close()
	// Warm every container: the first call of each fetches the binary and
	// starts the worker process.
	t0 := time.Now()
	if err := warmUp(ctx, ex, 4*len(es)); err != nil {
		return nil, err
	}
	coldWall := time.Since(t0)
	in := make([]time.Duration, calls)
	for i := range in {
		in[i] = d
	}
	t1 := time.Now()
	j, err := Spin.Map(ctx, ex, in)
	if err != nil {
		return nil, err
	}
	if _, err := j.Results(ctx); err != nil {
		return nil, err
	}
	wall := time.Since(t1)
	st := j.Stats()
	var lat, over []float64
	for _, c := range st.PerCall {
		// As the driver sees an invocation: sent to answer observed.
		l := c.Observed.Sub(c.Dispatched)
		lat = append(lat, float64(l)/1e6)
		over = append(over, float64(l-c.Compute)/1e6)
	}
	slices.Sort(lat)
	slices.Sort(over)
	q := func(v []float64, p float64) float64 { return round(v[min(int(p*float64(len(v))), len(v)-1)], 4) }
	return map[string]any{
		"emulators":            len(es),
		"calls":                calls,
		"task_ms":              float64(d) / 1e6,
		"invocations_per_s":    round(float64(calls)/wall.Seconds(), 4),
		"invoke_p50_ms":        q(lat, 0.5),
		"invoke_p99_ms":        q(lat, 0.99),
		"overhead_ms_per_call": q(over, 0.5),
		"warmup_s":             round(coldWall.Seconds(), 4),
		"puts_per_call":        round(float64(st.Requests.Puts)/float64(calls), 4),
		"gets_per_call":        round(float64(st.Requests.Gets)/float64(calls), 4),
	}, nil
}
