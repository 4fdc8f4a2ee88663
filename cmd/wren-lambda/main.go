// Command wren-lambda is wren's generic AWS Lambda function (runtime
// provided.al2023, the executable named bootstrap): each invocation carries
// a job.Invocation; the function fetches the job's binary from the store
// by the hash in jobs/<job>/code (once per container, cached in /tmp and
// SHA-256 checked) and runs the calls through it as a local worker process
// that stays alive between warm invocations. wren deploy builds and deploys
// it.
package main

import "github.com/wrenml/wren/worker/awslambda"

func main() { awslambda.Serve() }
