// Package wren puts a "cloud button" on Go code: it runs a registered
// function over many inputs on stateless workers, with a blob store as the
// only state they share, following the PyWren paper ("Occupy the Cloud:
// Distributed Computing for the 99%").
//
// Go cannot ship a closure, so code travels as the binary itself. A function
// becomes a task by registration at package level, under a stable name, and
// main calls Init first: in a process started as a worker, Init serves calls
// and exits; otherwise it returns and the program runs as the driver.
//
//	var Square = wren.Register("example.square", func(ctx context.Context, x int) (int, error) {
//		return x * x, nil
//	})
//
//	func main() {
//		wren.Init()
//		ex, err := wren.NewExecutor(ctx, wren.Options{}) // local worker processes, ./.wren store
//		...
//		job, err := Square.Map(ctx, ex, []int{1, 2, 3})
//		squares, err := job.Results(ctx) // [1 4 9], in input order
//	}
//
// # Storage layout
//
// A job's objects live under jobs/<job>/ in the store (package job spells
// them): manifest.json, code (the SHA-256 of the binary),
// in/pack-<call> (the encoded inputs of a run of calls in one object, with
// an index; an input over Options.MaxPackedInput gets in/<call>),
// out/<call>.<attempt> (an attempt's output, when it is over
// Options.MaxInlineOutput; smaller ones travel inside the status) and
// status/<call> (written last, with a conditional put, naming the attempt
// that won). A status's existence signals completion; a duplicate or late
// attempt can never change it. A call of small input and output costs one
// put and a fraction of a ranged get; the driver learns the result from the
// worker's reply and reads nothing. Job.Stats counts the store requests.
//
// # Faults
//
// A worker process that dies (crash, SIGKILL, OOM) is noticed at once,
// forgotten and replaced, and its calls are retried (Options.Retries); a
// call that never records a status is reported lost, so waiting never blocks
// on a dead worker. Store requests are tried again after a transient fault,
// and a call whose input cannot be read or whose result cannot be recorded is
// retried like a lost one (ErrStore when it never succeeds). A function's
// error or panic is reported as a *CallError with the worker's message and
// stack, and retried only with Options.RetryErrors. Options.Timeout stops a
// call (killing its process if it ignores its context). Options.Speculation
// relaunches stragglers; the first attempt to finish wins, and the outputs of
// the attempts that lost are deleted when the job ends.
//
// # Backends
//
// The default backend runs worker processes re-executed from the driver's
// binary (package worker), one per CPU. InProcess runs calls on goroutines,
// for debugging. Remote backends (worker/awslambda) run the same binary
// elsewhere; backends register by name (worker.RegisterBackend) and
// package config builds them from settings. Tests that map tasks call Init
// from TestMain.
//
// # What a program links
//
// The package links the local store (file://) and the memory store
// (mem://), not the AWS SDK nor a plotting library: package config and the
// Lambda backend link the S3 driver (blob/s3blob), and package timeline
// draws a job's timeline. A store URL whose driver the program does not
// link fails with the import to add.
//
// # Conventions
//
// The packages share these rules. A component's settings are an Options
// struct (wren.Options, sgd.Options, tune.Options, featurize.Options, ...)
// whose zero value works: a numeric field at 0 takes its documented
// default, a negative value turns the feature off (Retries -1: none; L2 -1:
// no penalty), and a default may itself be "none" (Timeout 0: no limit).
// A package that runs maps takes MapOptions, which mean what the
// executor's fields mean. A function that runs a job is a verb (Map,
// Train, Sweep, featurize.Run, mapreduce.Run) and returns what it made (a
// Job, an sgd.Result, tune.Results, a featurize.Report, a
// mapreduce.Result). API docs state behaviour; measurements are in the
// README and the benchmarks.
package wren
