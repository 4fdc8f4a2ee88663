package awslambda

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/blob/s3blob"
	"github.com/wrenml/wren/worker"
	"github.com/wrenml/wren/worker/remote"
)

// fakeLambda is an in-memory Lambda control plane (the emulator has none):
// one function, with the calls that changed it counted.
type fakeLambda struct {
	mu                          sync.Mutex
	fn                          *types.FunctionConfiguration
	creates, codes, configs     int
	pendingPolls, deletes, gets int
	eventConfig                 *lambda.PutFunctionEventInvokeConfigInput
	eventPuts                   int
}

func (f *fakeLambda) GetFunctionEventInvokeConfig(ctx context.Context, in *lambda.GetFunctionEventInvokeConfigInput, _ ...func(*lambda.Options)) (*lambda.GetFunctionEventInvokeConfigOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fn == nil || f.eventConfig == nil {
		return nil, &types.ResourceNotFoundException{Message: aws.String("The function doesn't have an EventInvokeConfig")}
	}
	return &lambda.GetFunctionEventInvokeConfigOutput{MaximumRetryAttempts: f.eventConfig.MaximumRetryAttempts, MaximumEventAgeInSeconds: f.eventConfig.MaximumEventAgeInSeconds}, nil
}

func (f *fakeLambda) PutFunctionEventInvokeConfig(ctx context.Context, in *lambda.PutFunctionEventInvokeConfigInput, _ ...func(*lambda.Options)) (*lambda.PutFunctionEventInvokeConfigOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fn == nil {
		return nil, &types.ResourceNotFoundException{Message: aws.String("Function not found")}
	}
	f.eventPuts++
	f.eventConfig = in
	return &lambda.PutFunctionEventInvokeConfigOutput{}, nil
}

// GetFunctionConfiguration is what the backend reads of the function.
func (f *fakeLambda) GetFunctionConfiguration(ctx context.Context, in *lambda.GetFunctionConfigurationInput, _ ...func(*lambda.Options)) (*lambda.GetFunctionConfigurationOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	if f.fn == nil {
		return nil, &types.ResourceNotFoundException{Message: aws.String("Function not found")}
	}
	c := *f.fn
	return &lambda.GetFunctionConfigurationOutput{FunctionName: c.FunctionName, Timeout: c.Timeout, MemorySize: c.MemorySize,
		Architectures: c.Architectures, Environment: &types.EnvironmentResponse{Variables: c.Environment.Variables}}, nil
}

func (f *fakeLambda) GetFunction(ctx context.Context, in *lambda.GetFunctionInput, _ ...func(*lambda.Options)) (*lambda.GetFunctionOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets++
	if f.fn == nil {
		return nil, &types.ResourceNotFoundException{Message: aws.String("Function not found")}
	}
	cfg := *f.fn
	if f.pendingPolls > 0 { // an update in progress for a poll or two
		f.pendingPolls--
		cfg.LastUpdateStatus = types.LastUpdateStatusInProgress
	}
	return &lambda.GetFunctionOutput{Configuration: &cfg}, nil
}

func (f *fakeLambda) CreateFunction(ctx context.Context, in *lambda.CreateFunctionInput, _ ...func(*lambda.Options)) (*lambda.CreateFunctionOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.creates++
	f.pendingPolls = 1
	f.fn = &types.FunctionConfiguration{FunctionName: in.FunctionName, FunctionArn: aws.String("arn:aws:lambda:us-east-1:1:function:" + *in.FunctionName),
		Role: in.Role, MemorySize: in.MemorySize, Timeout: in.Timeout, Architectures: in.Architectures,
		Environment: &types.EnvironmentResponse{Variables: in.Environment.Variables},
		CodeSha256:  aws.String(codeSHA256(in.Code.ZipFile)), State: types.StateActive, LastUpdateStatus: types.LastUpdateStatusSuccessful}
	return &lambda.CreateFunctionOutput{FunctionArn: f.fn.FunctionArn}, nil
}

func (f *fakeLambda) UpdateFunctionCode(ctx context.Context, in *lambda.UpdateFunctionCodeInput, _ ...func(*lambda.Options)) (*lambda.UpdateFunctionCodeOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.codes++
	f.pendingPolls = 2
	f.fn.CodeSha256, f.fn.Architectures = aws.String(codeSHA256(in.ZipFile)), in.Architectures
	return &lambda.UpdateFunctionCodeOutput{}, nil
}

func (f *fakeLambda) UpdateFunctionConfiguration(ctx context.Context, in *lambda.UpdateFunctionConfigurationInput, _ ...func(*lambda.Options)) (*lambda.UpdateFunctionConfigurationOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.configs++
	f.pendingPolls = 1
	f.fn.MemorySize, f.fn.Timeout = in.MemorySize, in.Timeout
	if in.Environment != nil {
		f.fn.Environment = &types.EnvironmentResponse{Variables: in.Environment.Variables}
	}
	if in.Role != nil {
		f.fn.Role = in.Role
	}
	return &lambda.UpdateFunctionConfigurationOutput{}, nil
}

func (f *fakeLambda) DeleteFunction(ctx context.Context, in *lambda.DeleteFunctionInput, _ ...func(*lambda.Options)) (*lambda.DeleteFunctionOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.deletes++
	if f.fn == nil {
		return nil, &types.ResourceNotFoundException{Message: aws.String("Function not found")}
	}
	f.fn = nil
	return &lambda.DeleteFunctionOutput{}, nil
}

// TestDeployIdempotent: the first deploy creates the function, with its
// allowed store and Lambda's retries of Event invocations off; the same
// deploy again sends nothing; a new memory size or allowed store updates
// the configuration only; new code updates the code only; delete removes
// it, twice without error.
func TestDeployIdempotent(t *testing.T) {
	ctx := context.Background()
	f := &fakeLambda{}
	zip1, _ := zipBootstrap([]byte("binary one"))
	zip2, _ := zipBootstrap([]byte("binary two"))
	const store = "s3://my-bucket/wren"
	o := DeployOptions{Function: "fn", Role: "arn:aws:iam::1:role/wren", Zip: zip1, Store: store}
	if _, err := Deploy(ctx, f, DeployOptions{Function: "fn", Zip: zip1, Store: store}); err == nil || !strings.Contains(err.Error(), "role") {
		t.Fatalf("create without a role: %v", err)
	}
	for _, bad := range []string{"", "./.wren", "file:///tmp/x", "s3:///prefix", "s3://b/p?region=us-east-1", "s3://u:p@b/p"} {
		oo := o
		oo.Store = bad
		if _, err := Deploy(ctx, f, oo); err == nil || !strings.Contains(err.Error(), "store") {
			t.Fatalf("store %q: %v", bad, err)
		}
	}
	if f.creates != 0 {
		t.Fatal("a refused deploy created the function")
	}
	steps := []struct {
		change                        func(o *DeployOptions)
		creates, codes, configs       int
		created, codeSent, configSent bool
	}{
		{func(o *DeployOptions) {}, 1, 0, 0, true, true, true},
		{func(o *DeployOptions) {}, 1, 0, 0, false, false, false},
		{func(o *DeployOptions) { o.Memory = 3008 }, 1, 0, 1, false, false, true},
		{func(o *DeployOptions) { o.Memory = 3008; o.Zip = zip2 }, 1, 1, 1, false, true, false},
		{func(o *DeployOptions) { o.Memory = 3008; o.Zip = zip2 }, 1, 1, 1, false, false, false},
		{func(o *DeployOptions) {
			o.Memory = 3008
			o.Zip = zip2
			o.Store = "s3://other/jobs?endpoint=http://10.0.0.5:9000"
		}, 1, 1, 2, false, false, true},
		{func(o *DeployOptions) {
			o.Memory = 3008
			o.Zip = zip2
			o.Store = "s3://other/jobs?endpoint=http://10.0.0.5:9000"
		}, 1, 1, 2, false, false, false},
	}
	for i, s := range steps {
		oo := o
		s.change(&oo)
		res, err := Deploy(ctx, f, oo)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if f.creates != s.creates || f.codes != s.codes || f.configs != s.configs || res.Created != s.created || res.CodeSent != s.codeSent || res.ConfigSent != s.configSent {
			t.Fatalf("step %d: %d creates, %d code and %d configuration updates, result %+v", i, f.creates, f.codes, f.configs, res)
		}
		if f.pendingPolls != 0 {
			t.Fatalf("step %d: returned before the update finished", i)
		}
		if got := f.fn.Environment.Variables[remote.EnvAllowedStore]; got != oo.Store {
			t.Fatalf("step %d: the function allows %q, want %q", i, got, oo.Store)
		}
		// Lambda's own retries of Event invocations off, queued events
		// dropped once the driver has given them up; set once.
		if ec := f.eventConfig; ec == nil || aws.ToInt32(ec.MaximumRetryAttempts) != 0 || ec.MaximumRetryAttempts == nil ||
			aws.ToInt32(ec.MaximumEventAgeInSeconds) != 360 || f.eventPuts != 1 || res.RetriesOff != (i == 0) {
			t.Fatalf("step %d: event invoke config %+v after %d puts (result %v)", i, ec, f.eventPuts, res.RetriesOff)
		}
	}
	if res, _ := Deploy(ctx, f, DeployOptions{Function: "fn", Memory: 3008, Zip: zip2, Store: store}); res.Memory != 3008 || res.Timeout != DefaultTimeout || res.Arch != ArchX86 || !strings.HasSuffix(res.ARN, ":fn") {
		t.Fatalf("effective settings: %+v", res)
	}
	// A new timeout moves the event age with it.
	if _, err := Deploy(ctx, f, DeployOptions{Function: "fn", Memory: 3008, Zip: zip2, Store: store, Timeout: 15 * time.Minute}); err != nil || aws.ToInt32(f.eventConfig.MaximumEventAgeInSeconds) != 960 || f.eventPuts != 2 {
		t.Fatalf("event config %+v after a 15-minute timeout: %v", f.eventConfig, err)
	}
	for range 2 {
		if err := Delete(ctx, f, "fn"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Deploy(ctx, f, DeployOptions{Function: "fn", Role: "r", Memory: 64, Zip: zip1, Store: store}); err == nil {
		t.Fatal("64 MB accepted")
	}
}

// TestBuildRuntime builds the runtime for both architectures: a static
// executable named bootstrap in a zip, the same bytes when built twice.
func TestBuildRuntime(t *testing.T) {
	ctx := context.Background()
	wd, _ := os.Getwd()
	for _, arch := range []string{ArchX86, ArchARM} {
		z1, err := BuildRuntime(ctx, arch, wd)
		if err != nil {
			t.Fatal(err)
		}
		z2, err := BuildRuntime(ctx, arch, wd)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(z1, z2) {
			t.Fatalf("%s: two builds differ: every deploy would upload the code", arch)
		}
		zr, err := zip.NewReader(bytes.NewReader(z1), int64(len(z1)))
		if err != nil || len(zr.File) != 1 || zr.File[0].Name != "bootstrap" || zr.File[0].Mode()&0o111 == 0 {
			t.Fatalf("%s: zip %v, %v", arch, zr, err)
		}
		r, _ := zr.File[0].Open()
		exe := filepath.Join(t.TempDir(), "bootstrap")
		b, _ := io.ReadAll(r)
		os.WriteFile(exe, b, 0o755)
		if err := remote.CheckBinary(exe, map[string]string{ArchX86: "amd64", ArchARM: "arm64"}[arch]); err != nil {
			t.Fatalf("%s: %v", arch, err)
		}
	}
}

func TestPolicy(t *testing.T) {
	p := Policy("my-bucket", "/wren/jobs/")
	for _, want := range []string{`"arn:aws:s3:::my-bucket/wren/jobs/*"`, `"s3:ListBucket"`, `"wren/jobs/*"`, `"logs:PutLogEvents"`, `"s3:PutObject"`} {
		if !strings.Contains(p, want) {
			t.Errorf("policy lacks %s:\n%s", want, p)
		}
	}
}

// TestFunctionConfiguration: the backend works with the deployed
// function's timeout and memory unless told otherwise (it assumed 15
// minutes where wren deploy sets 300 s), refuses at once a store the
// function does not allow or an architecture it does not run, and a
// function that does not exist.
func TestFunctionConfiguration(t *testing.T) {
	ctx := context.Background()
	f := &fakeLambda{}
	zip, _ := zipBootstrap([]byte("binary"))
	if _, err := Deploy(ctx, f, DeployOptions{Function: "fn", Role: "r", Zip: zip, Store: "s3://my-bucket/wren", Timeout: 900 * time.Second, Memory: 3008}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	open := func(bucket, prefix string) blob.Store {
		st, err := s3blob.Open(ctx, s3blob.Options{Bucket: bucket, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	notExe := filepath.Join(t.TempDir(), "not-an-executable")
	os.WriteFile(notExe, []byte("text"), 0o755)
	b, err := New(aws.Config{Region: "us-east-1"}, Options{Function: "fn", Control: f, Executable: notExe})
	if err != nil {
		t.Fatal(err)
	}
	if b.FunctionTimeout() != DefaultTimeout {
		t.Fatalf("timeout before a job: %v", b.FunctionTimeout())
	}
	_, err = b.Prepare(ctx, open("other-bucket", "wren"))
	if !errors.Is(err, worker.ErrPermanent) || !errors.Is(err, remote.ErrStoreNotAllowed) || !strings.Contains(err.Error(), "s3://my-bucket/wren") {
		t.Fatalf("a store the function does not allow: %v", err)
	}
	if b.FunctionTimeout() != 900*time.Second || b.Bill(worker.Usage{Billed: time.Second}).MemoryMB != 3008 {
		t.Fatalf("timeout %v, memory %d: want the function's", b.FunctionTimeout(), b.Bill(worker.Usage{}).MemoryMB)
	}
	if _, err := b.Prepare(ctx, open("my-bucket", "wren")); err == nil || !strings.Contains(err.Error(), "not a linux executable") {
		t.Fatalf("the allowed store: %v (want it to reach the binary check)", err)
	}
	gets := f.gets
	b.Prepare(ctx, open("my-bucket", "wren"))
	if f.gets != gets {
		t.Fatal("the configuration was read again")
	}
	// Explicit settings win over the function's.
	b, _ = New(aws.Config{Region: "us-east-1"}, Options{Function: "fn", Control: f, Executable: notExe, FunctionTimeout: time.Minute, MemoryMB: 512})
	b.Prepare(ctx, open("my-bucket", "wren"))
	if b.FunctionTimeout() != time.Minute || b.Bill(worker.Usage{}).MemoryMB != 512 {
		t.Fatalf("explicit settings lost: %v, %d MB", b.FunctionTimeout(), b.Bill(worker.Usage{}).MemoryMB)
	}
	// Another architecture, and no function at all.
	b, _ = New(aws.Config{Region: "us-east-1"}, Options{Function: "fn", Control: f, Executable: notExe, Arch: ArchARM})
	if _, err := b.Prepare(ctx, open("my-bucket", "wren")); !errors.Is(err, worker.ErrPermanent) || !strings.Contains(err.Error(), "runs x86_64") {
		t.Fatalf("architecture: %v", err)
	}
	b, _ = New(aws.Config{Region: "us-east-1"}, Options{Function: "missing", Control: &fakeLambda{}, Executable: notExe})
	if _, err := b.Prepare(ctx, open("my-bucket", "wren")); !errors.Is(err, worker.ErrPermanent) || !strings.Contains(err.Error(), "not found") {
		t.Fatalf("missing function: %v", err)
	}
	if _, err := New(aws.Config{}, Options{FunctionTimeout: 16 * time.Minute}); err == nil {
		t.Fatal("a 16-minute function timeout accepted")
	}
}

// TestDeployFlagsCheckedFirst: wren deploy refuses a function name, memory,
// timeout or architecture Lambda would refuse before it builds the runtime
// (it built for a minute, or failed building outside the module, before
// saying -memory 20000 was too much; -arch sparc printed "building for
// linux/sparc" first); the library's Deploy refuses the same.
func TestDeployFlagsCheckedFirst(t *testing.T) {
	t.Setenv("AWS_REGION", "us-east-1")
	t.Chdir(t.TempDir()) // outside the module: a build would fail, not pass
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-memory", "-5"}, "memory"}, {[]string{"-memory", "127"}, "memory"}, {[]string{"-memory", "10241"}, "memory"},
		{[]string{"-timeout", "500ms"}, "timeout"}, {[]string{"-timeout", "-1s"}, "timeout"}, {[]string{"-timeout", "15m1s"}, "timeout"},
		{[]string{"-arch", "sparc"}, "architecture"}, {[]string{"-function", "bad name!"}, "function name"},
		{[]string{"-function", strings.Repeat("f", 65)}, "function name"},
	} {
		var out strings.Builder
		err := deploy(context.Background(), worker.Settings{}, "s3://b/p", c.args, &out)
		if err == nil || !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "build") {
			t.Errorf("deploy %v: %v", c.args, err)
		}
	}
	f := &fakeLambda{}
	for _, change := range []func(o *DeployOptions){
		func(o *DeployOptions) { o.Memory = -5 }, func(o *DeployOptions) { o.Memory = 10241 },
		func(o *DeployOptions) { o.Timeout = 500 * time.Millisecond }, func(o *DeployOptions) { o.Arch = "sparc" },
		func(o *DeployOptions) { o.Function = "bad name!" },
	} {
		o := DeployOptions{Store: "s3://b/p", Zip: []byte("zip"), Role: "r"}
		change(&o)
		if _, err := Deploy(context.Background(), f, o); err == nil {
			t.Errorf("Deploy %+v: no error", o)
		}
	}
	if f.creates != 0 {
		t.Fatal("a refused deploy created the function")
	}
	for _, name := range []string{"fn", "wren-runtime_2", strings.Repeat("f", 64), "arn:aws:lambda:us-east-1:1:function:wren"} {
		if _, err := (DeployOptions{Function: name, Store: "s3://b/p"}).withDefaults(); err != nil {
			t.Errorf("function %q: %v", name, err)
		}
	}
}
