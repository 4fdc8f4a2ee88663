// Package worker is wren's stateless worker: the code that runs one
// invocation (read each call's input from the blob store, run the registered
// function, write the output under the attempt's own key, then the status,
// last and conditionally), and the backends that run invocations: worker
// processes re-executed from the driver's binary (Local) and goroutines
// (InProcess).
//
// The driver and the worker share nothing but the store and the job.Invocation
// they exchange as JSON. A job.Status in the store is the truth about a call;
// replies from a backend are a shortcut, never trusted over the store.
package worker
