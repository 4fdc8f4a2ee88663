// Command driver maps e2e.Square on the Lambda backend: the end-to-end test
// of code injection builds it with cgo (a dynamically linked binary, which
// the function cannot run) and checks that the backend rebuilds it, or
// says why it cannot. Settings come from the environment: E2E_EMULATORS
// (comma-separated URLs), E2E_STORE, E2E_DIR.
package main

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/worker/awslambda"
	"github.com/wrenml/wren/worker/awslambda/internal/e2e"
)

func main() {
	wren.Init()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("wren-test", "wren-test-secret", "")}
	b, err := awslambda.New(cfg, awslambda.Options{Emulators: strings.Split(os.Getenv("E2E_EMULATORS"), ","), FunctionTimeout: time.Minute})
	if err != nil {
		fail(err)
	}
	ex, err := wren.NewExecutor(ctx, wren.Options{Backend: b, Store: os.Getenv("E2E_STORE"), Progress: wren.ProgressOff})
	if err != nil {
		fail(err)
	}
	defer ex.Close()
	in := []e2e.In{{X: 2, Dir: os.Getenv("E2E_DIR")}, {X: 3, Dir: os.Getenv("E2E_DIR")}}
	job, err := e2e.Square.Map(ctx, ex, in)
	if err != nil {
		fail(err)
	}
	got, err := job.Results(ctx)
	if err != nil {
		fail(err)
	}
	fmt.Println("results", got)
}

func fail(err error) {
	fmt.Println("driver:", err)
	os.Exit(1)
}
