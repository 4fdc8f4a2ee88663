package awslambda

import (
	"context"
	"encoding/json"
	"os"
	"strings"

	"github.com/aws/aws-lambda-go/lambda"

	_ "github.com/wrenml/wren/blob/s3blob" // the store of Lambda workers
	"github.com/wrenml/wren/job"
	"github.com/wrenml/wren/worker/remote"
)

// MaxReply is the largest reply the function returns (Lambda's response
// limit is 6 MB); a bigger one goes back without its inline outputs, which
// the driver then reads from the statuses in the store.
const MaxReply = 5 << 20

// Serve runs the generic remote runtime (remote.Runtime) under the Lambda
// runtime API, allowing the stores the function's configuration names
// (remote.EnvAllowedStore); it does not return. cmd/wren-lambda calls it.
func Serve() {
	rt := &remote.Runtime{Allowed: strings.Fields(os.Getenv(remote.EnvAllowedStore))}
	lambda.Start(func(ctx context.Context, payload json.RawMessage) (*job.Reply, error) {
		return handle(ctx, rt, payload)
	})
}

// handle runs one invocation and fits the reply in Lambda's answer.
func handle(ctx context.Context, rt *remote.Runtime, payload json.RawMessage) (*job.Reply, error) {
	rep, err := rt.Handle(ctx, payload)
	if err != nil {
		return nil, err
	}
	if b, _ := json.Marshal(rep); len(b) > MaxReply {
		// Too big for Lambda's answer: the driver reads these statuses
		// from the store (a status without Won is read there).
		for i := range rep.Statuses {
			if rep.Statuses[i].Inline != nil {
				rep.Statuses[i].Inline, rep.Statuses[i].Won = nil, false
			}
		}
	}
	return rep, nil
}
