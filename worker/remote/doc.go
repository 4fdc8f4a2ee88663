// Package remote is what every remote backend shares: workers that run
// elsewhere (AWS Lambda, a container service) and fetch the job's binary
// from the store.
//
// The driver's side (Code): choose the binary the workers run (the
// driver's own, rebuilt for linux/GOARCH with CGO_ENABLED=0 when it is not
// a static linux executable for it) and upload it under its SHA-256.
//
// The worker's side (Runtime): a generic function that takes each
// invocation's payload as hostile input, refuses a store other than the
// ones its deployer allowed (EnvAllowedStore) before any request, reads
// the binary the job's code object names, checks it against its hash,
// caches it, and runs it as a long-lived local worker process.
//
// A backend keeps only what is its own: invoking, deploying, billing, its
// limits (worker/awslambda).
package remote
