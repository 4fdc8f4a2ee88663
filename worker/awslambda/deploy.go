package awslambda

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/wrenml/wren/worker/remote"
)

// RuntimePackage is the runtime's main package, which Deploy builds.
const RuntimePackage = "github.com/wrenml/wren/cmd/wren-lambda"

// DefaultTimeout is the function's timeout when none is given, both where
// wren deploy sets it and where the backend assumes it (a function it
// cannot read the configuration of, such as the emulator's).
const DefaultTimeout = 300 * time.Second

// DefaultMemory is the function's memory in MB when none is given: one
// full vCPU.
const DefaultMemory = 1769

// DeployOptions describe the function to create or update.
type DeployOptions struct {
	// Function is the function's name; "" means DefaultFunction.
	Function string
	// Role is the execution role's ARN (required to create the function).
	Role string
	// Store is the one store whose jobs the function runs,
	// s3://bucket/prefix (with ?endpoint=URL only for an S3-compatible
	// server); required. It goes into the function's configuration
	// (remote.EnvAllowedStore): the runtime refuses every invocation naming
	// another, so whoever can invoke the function cannot make it run code
	// from elsewhere. Policy grants the role exactly this prefix.
	Store string
	// Memory in MB (128-10240); 0 means DefaultMemory, one full vCPU.
	Memory int
	// Timeout is the function's timeout (1 s to 15 min); 0 means
	// DefaultTimeout.
	Timeout time.Duration
	// Arch is ArchX86 (default) or ArchARM.
	Arch string
	// Zip is the deployment package; nil means BuildRuntime's.
	Zip []byte
}

// DeployResult is the function as deployed.
type DeployResult struct {
	Function   string
	ARN        string
	Store      string // the store the function runs jobs from
	Memory     int
	Timeout    time.Duration
	Arch       string
	Created    bool // the function did not exist
	CodeSent   bool // the code changed and was uploaded
	ConfigSent bool // memory, timeout, role, allowed store or architecture changed
	// RetriesOff reports that the asynchronous invocation settings were
	// set (Lambda's own retries of a failed Event invocation off, its
	// events dropped past MaxEventAge(Timeout)): wren relaunches failed
	// calls itself.
	RetriesOff bool
}

// ParseStore checks the store a function is deployed for and returns its
// bucket and prefix: an s3:// URL with a bucket, and no parameter but an
// endpoint (region and addressing are the function's own).
func ParseStore(store string) (bucket, prefix string, err error) {
	u, err := url.Parse(store)
	if err != nil || u.Scheme != "s3" || u.Host == "" || u.User != nil || u.Opaque != "" || u.Fragment != "" {
		return "", "", fmt.Errorf("awslambda: allowed store %q: want s3://bucket/prefix", store)
	}
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return "", "", fmt.Errorf("awslambda: allowed store %q: %w", store, err)
	}
	for k, v := range q {
		if k != "endpoint" || len(v) != 1 || v[0] == "" {
			return "", "", fmt.Errorf("awslambda: allowed store %q: only an endpoint may be given (not %q)", store, k)
		}
	}
	return u.Host, strings.Trim(u.Path, "/"), nil
}

// MaxEventAge is how long Lambda keeps an Event invocation queued before
// it drops it: the function's timeout and a minute (Lambda's minimum), by
// which time the driver has given the invocation up as lost and relaunched
// its calls.
func MaxEventAge(timeout time.Duration) time.Duration {
	return min(max(timeout+time.Minute, time.Minute), 6*time.Hour)
}

// BuildRuntime builds the runtime (cmd/wren-lambda) for linux/arch with
// CGO_ENABLED=0 and returns it zipped as "bootstrap", the deployment
// package of a provided.al2023 function. The zip is the same for the same
// binary (fixed timestamps), so that Deploy uploads only changes. It runs
// the go command, from dir (a module that has wren among its
// dependencies, or wren's own).
func BuildRuntime(ctx context.Context, arch, dir string) ([]byte, error) {
	goarch, err := goArch(arch)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "wren-deploy-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "bootstrap")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w", "-o", bin, RuntimePackage)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+goarch, "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return nil, fmt.Errorf("awslambda: build the runtime for linux/%s: %v\n%s", goarch, err, bytes.TrimSpace(out))
	}
	b, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	return zipBootstrap(b)
}

// zipBootstrap zips an executable as "bootstrap", deterministically.
func zipBootstrap(exe []byte) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate, Modified: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)}
	h.SetMode(0o755)
	w, err := zw.CreateHeader(h)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(exe); err != nil {
		return nil, err
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// codeSHA256 is Lambda's CodeSha256 of a deployment package.
func codeSHA256(zip []byte) string {
	s := sha256.Sum256(zip)
	return base64.StdEncoding.EncodeToString(s[:])
}

// LambdaAPI is the part of the Lambda client Deploy uses.
type LambdaAPI interface {
	GetFunction(ctx context.Context, in *lambda.GetFunctionInput, opts ...func(*lambda.Options)) (*lambda.GetFunctionOutput, error)
	CreateFunction(ctx context.Context, in *lambda.CreateFunctionInput, opts ...func(*lambda.Options)) (*lambda.CreateFunctionOutput, error)
	UpdateFunctionCode(ctx context.Context, in *lambda.UpdateFunctionCodeInput, opts ...func(*lambda.Options)) (*lambda.UpdateFunctionCodeOutput, error)
	UpdateFunctionConfiguration(ctx context.Context, in *lambda.UpdateFunctionConfigurationInput, opts ...func(*lambda.Options)) (*lambda.UpdateFunctionConfigurationOutput, error)
	DeleteFunction(ctx context.Context, in *lambda.DeleteFunctionInput, opts ...func(*lambda.Options)) (*lambda.DeleteFunctionOutput, error)
	GetFunctionEventInvokeConfig(ctx context.Context, in *lambda.GetFunctionEventInvokeConfigInput, opts ...func(*lambda.Options)) (*lambda.GetFunctionEventInvokeConfigOutput, error)
	PutFunctionEventInvokeConfig(ctx context.Context, in *lambda.PutFunctionEventInvokeConfigInput, opts ...func(*lambda.Options)) (*lambda.PutFunctionEventInvokeConfigOutput, error)
}

// functionName is what Lambda takes as a function's name (or an ARN, left
// to Lambda to check).
var functionName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// withDefaults fills o's defaults and refuses what Lambda would (checked
// before a runtime is built); Zip is not checked.
func (o DeployOptions) withDefaults() (DeployOptions, error) {
	if o.Function == "" {
		o.Function = DefaultFunction
	}
	if o.Memory == 0 {
		o.Memory = DefaultMemory
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Arch == "" {
		o.Arch = ArchX86
	}
	switch {
	case o.Store == "":
		return o, errors.New("awslambda: deploy needs the store the function runs jobs from (-store s3://bucket/prefix)")
	case !functionName.MatchString(o.Function) && !strings.HasPrefix(o.Function, "arn:"):
		return o, fmt.Errorf("awslambda: function name %q: want 1 to 64 letters, digits, - or _ (or an ARN)", o.Function)
	case o.Memory < 128 || o.Memory > 10240:
		return o, fmt.Errorf("awslambda: memory %d MB: Lambda takes 128 to 10240", o.Memory)
	case o.Timeout < time.Second || o.Timeout > 15*time.Minute:
		return o, fmt.Errorf("awslambda: timeout %v: Lambda takes 1s to 15m", o.Timeout)
	}
	if _, _, err := ParseStore(o.Store); err != nil {
		return o, err
	}
	if _, err := goArch(o.Arch); err != nil {
		return o, err
	}
	return o, nil
}

// Deploy creates the function, or updates it: the code only when it
// changed, the configuration only when it differs, waiting for each update
// to finish. Deploying what is deployed changes nothing.
func Deploy(ctx context.Context, c LambdaAPI, o DeployOptions) (*DeployResult, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if len(o.Zip) == 0 {
		return nil, errors.New("awslambda: no deployment package")
	}
	res := &DeployResult{Function: o.Function, Store: o.Store, Memory: o.Memory, Timeout: o.Timeout, Arch: o.Arch}
	env := &types.Environment{Variables: map[string]string{remote.EnvAllowedStore: o.Store}}
	arch := []types.Architecture{types.Architecture(o.Arch)}
	cur, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(o.Function)})
	var nf *types.ResourceNotFoundException
	switch {
	case errors.As(err, &nf):
		if o.Role == "" {
			return nil, fmt.Errorf("awslambda: function %s does not exist: creating it needs an execution role (--role)", o.Function)
		}
		out, err := c.CreateFunction(ctx, &lambda.CreateFunctionInput{
			FunctionName: aws.String(o.Function), Role: aws.String(o.Role),
			Runtime: types.RuntimeProvidedal2023, Handler: aws.String("bootstrap"), Architectures: arch,
			MemorySize: aws.Int32(int32(o.Memory)), Timeout: aws.Int32(int32(o.Timeout / time.Second)),
			Code: &types.FunctionCode{ZipFile: o.Zip}, Environment: env,
			Description: aws.String("wren: the generic runtime (github.com/wrenml/wren/cmd/wren-lambda)"),
		})
		var exists *types.ResourceConflictException
		if errors.As(err, &exists) {
			return Deploy(ctx, c, o) // created meanwhile: update it instead
		}
		if err != nil {
			return nil, fmt.Errorf("awslambda: create function %s: %w", o.Function, err)
		}
		res.ARN, res.Created, res.CodeSent, res.ConfigSent = aws.ToString(out.FunctionArn), true, true, true
		if err := waitUpdated(ctx, c, o.Function); err != nil {
			return nil, err
		}
		return res, setEventInvoke(ctx, c, o, res)
	case err != nil:
		return nil, fmt.Errorf("awslambda: get function %s: %w", o.Function, err)
	}
	cfg := cur.Configuration
	res.ARN = aws.ToString(cfg.FunctionArn)
	curArch := ArchX86
	if len(cfg.Architectures) > 0 {
		curArch = string(cfg.Architectures[0])
	}
	if aws.ToString(cfg.CodeSha256) != codeSHA256(o.Zip) || curArch != o.Arch {
		if _, err := c.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{FunctionName: aws.String(o.Function), ZipFile: o.Zip, Architectures: arch}); err != nil {
			return nil, fmt.Errorf("awslambda: update the code of %s: %w", o.Function, err)
		}
		res.CodeSent = true
		if err := waitUpdated(ctx, c, o.Function); err != nil {
			return nil, err
		}
	}
	var curStore string
	if cfg.Environment != nil {
		curStore = cfg.Environment.Variables[remote.EnvAllowedStore]
	}
	if int(aws.ToInt32(cfg.MemorySize)) != o.Memory || time.Duration(aws.ToInt32(cfg.Timeout))*time.Second != o.Timeout || (o.Role != "" && aws.ToString(cfg.Role) != o.Role) || curStore != o.Store {
		if cfg.Environment != nil {
			// Keep the function's other variables.
			for k, v := range cfg.Environment.Variables {
				if k != remote.EnvAllowedStore {
					env.Variables[k] = v
				}
			}
		}
		in := &lambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(o.Function),
			MemorySize: aws.Int32(int32(o.Memory)), Timeout: aws.Int32(int32(o.Timeout / time.Second)), Environment: env}
		if o.Role != "" {
			in.Role = aws.String(o.Role)
		}
		if _, err := c.UpdateFunctionConfiguration(ctx, in); err != nil {
			return nil, fmt.Errorf("awslambda: update the configuration of %s: %w", o.Function, err)
		}
		res.ConfigSent = true
		if err := waitUpdated(ctx, c, o.Function); err != nil {
			return nil, err
		}
	}
	return res, setEventInvoke(ctx, c, o, res)
}

// setEventInvoke turns Lambda's own retries of failed Event invocations
// off (wren relaunches a failed call itself; Lambda's two retries would
// run it up to three times more, writing logs and shuffle objects after
// the job was cleaned) and drops queued events past MaxEventAge, unless
// the function has these settings already.
func setEventInvoke(ctx context.Context, c LambdaAPI, o DeployOptions, res *DeployResult) error {
	age := int32(MaxEventAge(o.Timeout) / time.Second)
	cur, err := c.GetFunctionEventInvokeConfig(ctx, &lambda.GetFunctionEventInvokeConfigInput{FunctionName: aws.String(o.Function)})
	var nf *types.ResourceNotFoundException
	switch {
	case err == nil && aws.ToInt32(cur.MaximumRetryAttempts) == 0 && cur.MaximumRetryAttempts != nil && aws.ToInt32(cur.MaximumEventAgeInSeconds) == age:
		return nil
	case err != nil && !errors.As(err, &nf):
		return fmt.Errorf("awslambda: read the asynchronous invocation settings of %s: %w", o.Function, err)
	}
	_, err = c.PutFunctionEventInvokeConfig(ctx, &lambda.PutFunctionEventInvokeConfigInput{FunctionName: aws.String(o.Function),
		MaximumRetryAttempts: aws.Int32(0), MaximumEventAgeInSeconds: aws.Int32(age)})
	if err != nil {
		return fmt.Errorf("awslambda: turn off Lambda's retries of asynchronous invocations of %s: %w", o.Function, err)
	}
	res.RetriesOff = true
	return nil
}

// waitUpdated waits until the function is active and its last update done.
func waitUpdated(ctx context.Context, c LambdaAPI, fn string) error {
	deadline := time.Now().Add(5 * time.Minute)
	for wait := 200 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		out, err := c.GetFunction(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(fn)})
		if err != nil {
			return fmt.Errorf("awslambda: wait for %s: %w", fn, err)
		}
		cfg := out.Configuration
		switch {
		case cfg.State == types.StateFailed || cfg.LastUpdateStatus == types.LastUpdateStatusFailed:
			return fmt.Errorf("awslambda: %s failed to update: %s", fn, aws.ToString(cfg.LastUpdateStatusReason)+aws.ToString(cfg.StateReason))
		case (cfg.State == "" || cfg.State == types.StateActive) && (cfg.LastUpdateStatus == "" || cfg.LastUpdateStatus == types.LastUpdateStatusSuccessful):
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("awslambda: %s still updating after 5 minutes", fn)
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Delete removes the function; a missing one is not an error.
func Delete(ctx context.Context, c LambdaAPI, fn string) error {
	if fn == "" {
		fn = DefaultFunction
	}
	_, err := c.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(fn)})
	var nf *types.ResourceNotFoundException
	if err != nil && !errors.As(err, &nf) {
		return fmt.Errorf("awslambda: delete function %s: %w", fn, err)
	}
	return nil
}

// Policy returns the minimal IAM policy of the function's execution role
// for a store at s3://bucket/prefix: read and write objects under the
// prefix, list it, and write its logs to CloudWatch.
func Policy(bucket, prefix string) string {
	prefix = strings.Trim(prefix, "/")
	objects := "arn:aws:s3:::" + bucket + "/*"
	cond := map[string]any(nil)
	if prefix != "" {
		objects = "arn:aws:s3:::" + bucket + "/" + prefix + "/*"
		cond = map[string]any{"StringLike": map[string]any{"s3:prefix": []string{prefix + "/*"}}}
	}
	list := map[string]any{"Effect": "Allow", "Action": []string{"s3:ListBucket"}, "Resource": "arn:aws:s3:::" + bucket}
	if cond != nil {
		list["Condition"] = cond
	}
	doc := map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{
			map[string]any{"Effect": "Allow", "Action": []string{"s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"}, "Resource": objects},
			list,
			map[string]any{"Effect": "Allow", "Action": []string{"logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"}, "Resource": "arn:aws:logs:*:*:log-group:/aws/lambda/*"},
		},
	}
	b, _ := json.MarshalIndent(doc, "", "  ")
	return string(b)
}
