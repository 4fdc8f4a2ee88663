package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/wrenml/wren/config"
	"github.com/wrenml/wren/worker/awslambda"
)

// deployCmd builds the generic runtime and creates or updates the function
// (idempotent), prints its policy, or deletes it.
func deployCmd(ctx context.Context, args []string) error {
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("deploy", flag.ContinueOnError)
	fn := fs.String("function", cfg.Lambda.Function, "function name")
	role := fs.String("role", cfg.Lambda.Role, "execution role ARN (needed to create the function)")
	memory := fs.Int("memory", cfg.Lambda.Memory, "memory in MB (sets the CPU share: 1769 MB is one vCPU)")
	timeout := fs.Duration("timeout", cfg.Lambda.Timeout, "function timeout (at most 15m)")
	arch := fs.String("arch", cfg.Lambda.Arch, "architecture: x86_64 or arm64")
	printPolicy := fs.Bool("print-policy", false, "print the minimal IAM policy of the execution role for -store, and exit")
	store := fs.String("store", cfg.Store, "the only store the function runs jobs from, s3://bucket/prefix (add ?endpoint=URL for an S3-compatible server)")
	del := fs.Bool("delete", false, "delete the function")
	if err := fs.Parse(args); err != nil {
		return err
	}
	bucket, prefix, serr := awslambda.ParseStore(*store)
	if *printPolicy {
		if serr != nil {
			return fmt.Errorf("deploy -print-policy: -store: %w", serr)
		}
		fmt.Println(awslambda.Policy(bucket, prefix))
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
		if err := awslambda.Delete(ctx, client, *fn); err != nil {
			return err
		}
		fmt.Printf("deleted function %s (if it existed)\n", *fn)
		return nil
	}
	wd, _ := os.Getwd()
	fmt.Fprintf(os.Stderr, "building %s for linux/%s\n", awslambda.RuntimePackage, *arch)
	zip, err := awslambda.BuildRuntime(ctx, *arch, wd)
	if err != nil {
		return err
	}
	res, err := awslambda.Deploy(ctx, client, awslambda.DeployOptions{Function: *fn, Role: *role, Store: *store, Memory: *memory, Timeout: *timeout, Arch: *arch, Zip: zip})
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
	fmt.Printf("function %s (%s): %s\n  runs jobs from %s only\n  memory %d MB, timeout %v, architecture %s, package %d bytes\n  Lambda's retries of Event invocations: off (events older than %v dropped)\n",
		res.Function, res.ARN, what, res.Store, res.Memory, res.Timeout, res.Arch, len(zip), awslambda.MaxEventAge(res.Timeout))
	return nil
}
