// Package mapreduce runs MapReduce jobs as two wren maps, bulk-synchronous
// stages with the shuffle written to storage: the PyWren paper's proof
// that stateless functions are general enough.
//
// A job maps input splits (text split on line boundaries, or fixed-size
// records split on record boundaries) with a registered map function, folds
// each call's output with an optional combiner, and writes one shuffle
// object per map attempt: every partition sorted by key, one after another.
// The reduce stage gives each partition to one call, which reads its range
// of every winning map object with parallel reads, merges the runs, reduces
// each key and writes its output partition in one put, so a partition is
// whole or absent. Retried and speculative map attempts write objects of
// their own and reducers read only the winners', so no record is counted
// twice. The shuffle store is a blob store (file, S3) or Redis shards
// (redis://host:port,host:port); the job deletes its shuffle objects when
// it ends.
//
//	var tokenize = mapreduce.RegisterMap("tokenize", func(ctx context.Context, line string, emit func(string, int)) error {
//		mapreduce.EachWord(line, func(w string) { emit(w, 1) })
//		return nil
//	})
//	var sum = mapreduce.RegisterReduce("sum", func(ctx context.Context, word string, counts []int) (int, error) {
//		s := 0
//		for _, c := range counts {
//			s += c
//		}
//		return s, nil
//	})
//
//	res, err := mapreduce.Run(ctx, ex, mapreduce.Job[string, string, int]{
//		Input:   mapreduce.Lines("file:///data/text/"),
//		Map:     tokenize,
//		Combine: sum, Reduce: sum,
//		Partitions: 64,
//		Shuffle:    "redis://10.0.0.5:6379,10.0.0.6:6379",
//	})
//	counts, err := res.Collect(ctx)
//
// Sort, Splitters, GenerateRecords and Validate are a TeraSort-style sort
// of the sort benchmark's 100-byte records (wren sort on the command line);
// WordCount, CountWords and GenerateText are the word count and its
// single-process baseline.
package mapreduce
