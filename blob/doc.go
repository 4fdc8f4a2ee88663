// Package blob is wren's bulk storage: a flat namespace of immutable objects,
// the only state that workers share with the driver.
//
// A Store is opened by URL:
//
//	file:///abs/path          a local directory (package fileblob)
//	s3://bucket/prefix        S3 or an S3-compatible server (package s3blob);
//	                          ?endpoint=http://127.0.0.1:9000&region=us-east-1
//	                          &path_style=true reach a server on loopback
//	mem://name                an in-memory store for tests (package memblob)
//
// A driver registers its scheme when its package is linked (a blank
// import); Open of a URL of one of wren's schemes whose driver is not
// linked fails with ErrUnknownScheme and the import to add. Shared opens a
// URL once per process, for the workers' functions.
//
// Every driver passes the conformance suite in package blobtest: atomic
// puts, conditional puts (PutOptions.IfNotExist), streaming gets, lexical
// listing, idempotent deletes and key validation (ValidateKey), so keys that
// come from users never escape the store's root.
package blob
