package fileblob

// Syncs returns the number of fsyncs so far.
func Syncs() int64 { return syncs.Load() }
