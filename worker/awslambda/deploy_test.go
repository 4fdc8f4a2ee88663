package awslambda

import (
	"archive/zip"
	"bytes"
	"context"
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
)

// fakeLambda is an in-memory Lambda control plane (the emulator has none):
// one function, with the calls that changed it counted.
type fakeLambda struct {
	mu                          sync.Mutex
	fn                          *types.FunctionConfiguration
	creates, codes, configs     int
	pendingPolls, deletes, gets int
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
		CodeSha256: aws.String(codeSHA256(in.Code.ZipFile)), State: types.StateActive, LastUpdateStatus: types.LastUpdateStatusSuccessful}
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

// TestDeployIdempotent: the first deploy creates the function; the same
// deploy again sends nothing; a new memory size updates the configuration
// only; new code updates the code only; delete removes it, twice without
// error.
func TestDeployIdempotent(t *testing.T) {
	ctx := context.Background()
	f := &fakeLambda{}
	zip1, _ := zipBootstrap([]byte("binary one"))
	zip2, _ := zipBootstrap([]byte("binary two"))
	o := DeployOptions{Function: "fn", Role: "arn:aws:iam::1:role/wren", Zip: zip1}
	if _, err := Deploy(ctx, f, DeployOptions{Function: "fn", Zip: zip1}); err == nil || !strings.Contains(err.Error(), "role") {
		t.Fatalf("create without a role: %v", err)
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
	}
	if res, _ := Deploy(ctx, f, DeployOptions{Function: "fn", Memory: 3008, Zip: zip2}); res.Memory != 3008 || res.Timeout != 300*time.Second || res.Arch != ArchX86 || !strings.HasSuffix(res.ARN, ":fn") {
		t.Fatalf("effective settings: %+v", res)
	}
	for range 2 {
		if err := Delete(ctx, f, "fn"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Deploy(ctx, f, DeployOptions{Function: "fn", Role: "r", Memory: 64, Zip: zip1}); err == nil {
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
		if err := CheckBinary(exe, arch); err != nil {
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
