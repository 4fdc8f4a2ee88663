// Package awslambda is wren's AWS Lambda backend: what is Lambda's and
// nothing else. It owns invoking (synchronous or Event invocations through
// aws-sdk-go-v2, Lambda's payload limits, throttling and 5xx answers retried
// with backoff, an invocation given up after the function's timeout),
// deploying (wren deploy: the generic function, its allowed store, its IAM
// policy), billing (GB-seconds, requests and dollars per job, and the
// cheapest memory size), and Serve, the function's entry point.
//
// Shipping the job's binary, and fetching, checking and running it in the
// container, are every remote backend's: package worker/remote. The
// backend registers itself as "lambda" (WREN_BACKEND=lambda) with its
// settings; package config links it.
//
// For a job on one machine, Options.Emulators (WREN_LAMBDA_EMULATORS)
// invokes AWS Lambda Runtime Interface Emulators instead of AWS.
package awslambda
