// Package job is wren's job protocol: what a job is in the blob store and
// on the wire, shared by the driver (package wren), the worker runtime
// (package worker), every backend and the command line, as
// database/sql/driver is apart from database/sql.
//
// It owns:
//
//   - the store layout of a job (layout.go: every key, spelled once);
//   - the manifest (Manifest, Settings), written first, and the drivers'
//     records (Driver), which let another process attach to a job;
//   - the invocation a worker receives (Invocation, Call; validated as
//     hostile input), its reply (Reply) and each call's status (Status),
//     written last and first-wins;
//   - the kinds of call failure (ErrorKind), which are errors themselves:
//     wren.ErrTimeout is KindTimeout;
//   - input packs (EncodePack, DecodePackIndex, InputRef), job IDs (NewID,
//     ValidateID) and how a binary is named (HashFile).
//
// Nothing here runs a call or talks to a backend.
package job
