package mapreduce_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/internal/redisserver"
	"github.com/wrenml/wren/internal/testenv"
	"github.com/wrenml/wren/mapreduce"
	"github.com/wrenml/wren/timeline"
)

func TestMain(m *testing.M) {
	wren.Init()
	os.Exit(m.Run())
}

func executor(t *testing.T, opts wren.Options) *wren.Executor {
	t.Helper()
	if opts.Store == "" {
		opts.Store = t.TempDir()
	}
	if opts.Backend == nil && opts.Parallelism == 0 {
		opts.Parallelism = 2
	}
	opts.Progress = wren.ProgressOff
	ex, err := wren.NewExecutor(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ex.Close() })
	return ex
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// Test functions, registered at package level so that worker processes
// (this test binary, re-executed) know them.
var (
	// tokenize emits (word, 1); a line "SLOW" stalls the first attempt
	// that meets it (a straggler), a line "DIE" kills the worker process
	// on its first attempt, a line "KILL" calls killHook (in-process
	// backends only), a line "SLEEP" sleeps 50 ms.
	tokenize = mapreduce.RegisterMap("test.tokenize", func(ctx context.Context, line string, emit func(string, int)) error {
		switch line {
		case "SLOW":
			if first("slow") {
				select {
				case <-time.After(20 * time.Second):
				case <-ctx.Done():
				}
			}
		case "DIE":
			if first("die") {
				os.Exit(3)
			}
		case "KILL":
			if killHook != nil {
				killHook()
			}
		case "SLEEP":
			time.Sleep(50 * time.Millisecond)
		}
		mapreduce.EachWord(line, func(w string) { emit(w, 1) })
		return nil
	})
	sum = mapreduce.RegisterReduce("test.sum", func(ctx context.Context, key string, vs []int) (int, error) {
		s := 0
		for _, v := range vs {
			s += v
		}
		if key == "boom" {
			return 0, errors.New("the reducer refuses boom")
		}
		return s, nil
	})
	killHook func()
)

// first says whether this is the first attempt, across processes, to pass
// here with this name: it creates a marker file in $MR_TEST_MARKERS.
func first(name string) bool {
	dir := os.Getenv("MR_TEST_MARKERS")
	if dir == "" {
		return false
	}
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// zipfText writes generated text under a new directory and returns its URL
// and the single-process count of its words.
func zipfText(t *testing.T, bytes int64, files int, extra ...string) (string, map[string]int) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := wren.OpenStore(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := mapreduce.GenerateText(ctx, st, "", mapreduce.TextOptions{Bytes: bytes, Files: files, Vocabulary: 3000, Seed: 7}); err != nil {
		t.Fatal(err)
	}
	for i, e := range extra {
		if err := blob.PutBytes(ctx, st, fmt.Sprintf("extra-%d", i), []byte(e), blob.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return st.URL(), countDir(t, dir)
}

func countDir(t *testing.T, dir string) map[string]int {
	t.Helper()
	st, err := wren.OpenStore(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	want, _, err := mapreduce.CountWords(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	return want
}

func checkCounts(t *testing.T, got, want map[string]int) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%d distinct words, want %d", len(got), len(want))
	}
	bad := 0
	for k, v := range want {
		if got[k] != v {
			if bad < 5 {
				t.Errorf("count of %q = %d, want %d", k, got[k], v)
			}
			bad++
		}
	}
	if bad > 0 {
		t.Errorf("%d counts differ", bad)
	}
}

// shuffleLeft lists what the job left in the shuffle area of a store.
func shuffleLeft(t *testing.T, ex *wren.Executor) []string {
	t.Helper()
	var left []string
	for a, err := range ex.Store().List(context.Background(), "mapreduce/") {
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(a.Key, "/shuffle/") {
			left = append(left, a.Key)
		}
	}
	return left
}

// TestWordCountZipf counts generated Zipf text with worker processes, the
// combiner and splits that cut lines, and checks every count against a
// single-process count of the same files.
func TestWordCountZipf(t *testing.T) {
	ctx := testCtx(t)
	in, want := zipfText(t, 3<<20, 3, "tail without newline\nword word", "")
	ex := executor(t, wren.Options{})
	res, err := mapreduce.Run(ctx, ex, mapreduce.Job[string, string, int]{
		Input:      mapreduce.Lines(in),
		Map:        tokenize,
		Combine:    sum,
		Reduce:     sum,
		Partitions: 5,
		SplitSize:  200 << 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := res.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, got, want)
	if res.Records != int64(len(want)) || len(res.Partitions) != 5 {
		t.Errorf("Result: %d records in %d partitions, want %d in 5", res.Records, len(res.Partitions), len(want))
	}
	// Both stages as one job, drawn on one timeline.
	all := res.Stats()
	m, r := res.MapStats, res.ReduceStats
	if all.Calls != m.Calls+r.Calls || r.Calls != 5 || len(all.PerCall) != all.Calls || all.Done != all.Calls ||
		all.Requests.Puts != m.Requests.Puts+r.Requests.Puts || all.Wall != res.Wall || strings.HasSuffix(all.Job, "-map") {
		t.Errorf("Stats: %d calls (%d per-call, %d done), %d puts, wall %v, job %q; map %d calls %d puts, reduce %d calls %d puts, wall %v",
			all.Calls, len(all.PerCall), all.Done, all.Requests.Puts, all.Wall, all.Job, m.Calls, m.Requests.Puts, r.Calls, r.Requests.Puts, res.Wall)
	}
	if err := timeline.Plot(res.Stats(), filepath.Join(t.TempDir(), "wordcount.svg")); err != nil {
		t.Error(err)
	}
	if left := shuffleLeft(t, ex); len(left) > 0 {
		t.Errorf("the shuffle objects outlive the job: %q", left[:min(3, len(left))])
	}
	// Every key is in exactly one partition, the one its hash names, and
	// partitions are sorted.
	seen := map[string]int{}
	st, _ := wren.OpenStore(ctx, res.Store)
	for i, p := range res.Partitions {
		one := &mapreduce.Result[string, int]{Store: res.Store, Partitions: []string{p}}
		var prev string
		for kv, err := range one.All(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			if kv.Key <= prev && prev != "" {
				t.Fatalf("partition %d: %q after %q", i, kv.Key, prev)
			}
			if j, ok := seen[kv.Key]; ok {
				t.Fatalf("%q in partitions %d and %d", kv.Key, j, i)
			}
			seen[kv.Key], prev = i, kv.Key
		}
	}
	st.Close()
}

// TestBuiltinWordCount runs the built-in word count with the default
// split size (one map call per file) and compares it with the count of
// the test's own functions.
func TestBuiltinWordCount(t *testing.T) {
	ctx := testCtx(t)
	in, want := zipfText(t, 1<<20, 4)
	ex := executor(t, wren.Options{Backend: wren.InProcess(2)})
	res, err := mapreduce.WordCount(ctx, ex, in, 3, "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := res.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, got, want)
}

// TestTextOutput writes "word\tcount" lines.
func TestTextOutput(t *testing.T) {
	ctx := testCtx(t)
	in, want := zipfText(t, 64<<10, 1)
	ex := executor(t, wren.Options{Backend: wren.InProcess(2)})
	out := t.TempDir()
	res, err := mapreduce.Run(ctx, ex, mapreduce.Job[string, string, int]{
		Input: mapreduce.Lines(in), Map: tokenize, Reduce: sum, Partitions: 2, Output: out, Format: mapreduce.OutputText,
	})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, p := range res.Partitions {
		b, err := os.ReadFile(filepath.Join(out, p))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			var w string
			var n int
			if _, err := fmt.Sscanf(line, "%s\t%d", &w, &n); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			got[w] = n
		}
	}
	checkCounts(t, got, want)
	if _, err := res.Collect(ctx); err == nil {
		t.Error("Collect of text partitions: no error")
	}
}

// TestRedisShuffle shuffles through three Redis shards: every shard takes
// blocks, the counts are exact, and no block is left when the job ends.
func TestRedisShuffle(t *testing.T) {
	ctx := testCtx(t)
	servers := testenv.StartRedis(t, 3, redisserver.Options{})
	in, want := zipfText(t, 2<<20, 2)
	ex := executor(t, wren.Options{})
	shuffle := "redis://" + strings.Join(testenv.Addrs(servers), ",")
	res, err := mapreduce.Run(ctx, ex, mapreduce.Job[string, string, int]{
		Input: mapreduce.Lines(in), Map: tokenize, Combine: sum, Reduce: sum, Partitions: 4, SplitSize: 100 << 10, Shuffle: shuffle,
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := res.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, got, want)
	for _, s := range servers {
		c := redis.NewClient(&redis.Options{Addr: s.Addr})
		n, err := c.DBSize(ctx).Result()
		if err != nil || n != 0 {
			t.Errorf("%s holds %d keys after the job (err %v)", s.Addr, n, err)
		}
		stats, _ := c.Info(ctx, "commandstats").Result()
		if !strings.Contains(stats, "cmdstat_set:calls=") || !strings.Contains(stats, "cmdstat_getrange:calls=") {
			t.Errorf("%s took no shuffle blocks: %s", s.Addr, stats)
		}
		c.Close()
	}
}

// TestRedisShuffleMemory refuses a job whose shuffle does not fit in the
// shards' maxmemory, before running anything.
func TestRedisShuffleMemory(t *testing.T) {
	ctx := testCtx(t)
	servers := testenv.StartRedis(t, 2, redisserver.Options{Args: []string{"--maxmemory", "3mb"}})
	in, _ := zipfText(t, 8<<20, 2)
	ex := executor(t, wren.Options{Backend: wren.InProcess(2)})
	_, err := mapreduce.Run(ctx, ex, mapreduce.Job[string, string, int]{
		Input: mapreduce.Lines(in), Map: tokenize, Reduce: sum, Shuffle: "redis://" + strings.Join(testenv.Addrs(servers), ","),
	})
	if err == nil || !strings.Contains(err.Error(), "bytes free") {
		t.Fatalf("err = %v, want a memory error", err)
	}
	if _, err := mapreduce.Run(ctx, ex, mapreduce.Job[string, string, int]{
		Input: mapreduce.Lines(in), Map: tokenize, Reduce: sum, Shuffle: "redis://127.0.0.1:1",
	}); err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("an unreachable shuffle: err = %v", err)
	}
}

// TestShuffleGoesAway kills the Redis shuffle in the middle of each stage:
// the job fails with an error that names the shuffle, and returns.
func TestShuffleGoesAway(t *testing.T) {
	ctx := testCtx(t)
	in, _ := zipfText(t, 256<<10, 1, "a\nKILL\nb\n")
	for _, stage := range []string{"map", "reduce"} {
		t.Run(stage, func(t *testing.T) {
			srv := testenv.StartRedis(t, 1, redisserver.Options{})[0]
			var once sync.Once
			kill := func() { once.Do(srv.Kill) }
			job := mapreduce.Job[string, string, int]{Input: mapreduce.Lines(in), Map: tokenize, Reduce: sum, Partitions: 4, Shuffle: "redis://" + srv.Addr}
			if stage == "map" {
				killHook = kill
			} else {
				killHook = nil
				job.Reduce = killer
				killerHook = kill
			}
			defer func() { killHook, killerHook = nil, nil }()
			ex := executor(t, wren.Options{Backend: wren.InProcess(1)})
			_, err := mapreduce.Run(ctx, ex, job)
			if err == nil || !strings.Contains(err.Error(), stage+" stage") || !strings.Contains(err.Error(), "shuffle") {
				t.Fatalf("err = %v, want a %s stage shuffle error", err, stage)
			}
		})
	}
}

var (
	killerHook func()
	killer     = mapreduce.RegisterReduce("test.killer", func(ctx context.Context, key string, vs []int) (int, error) {
		if killerHook != nil {
			killerHook()
		}
		return len(vs), nil
	})
)

// TestShuffleStoreFaults runs the shuffle through a store that fails
// puts, before and after storing, and truncates some: retried map calls
// write new objects, and the counts stay exact; a truncated shuffle
// object fails the job with ErrCorrupt instead of losing records.
func TestShuffleStoreFaults(t *testing.T) {
	ctx := testCtx(t)
	in, want := zipfText(t, 1<<20, 2)
	ex := executor(t, wren.Options{Backend: wren.InProcess(2)})
	shuffle := testenv.FaultURL("file://"+t.TempDir(), testenv.Faults{Put: 0.2, PutAfter: 0.3})
	res, err := mapreduce.Run(ctx, ex, mapreduce.Job[string, string, int]{
		Input: mapreduce.Lines(in), Map: tokenize, Combine: sum, Reduce: sum, Partitions: 3, SplitSize: 64 << 10, Shuffle: shuffle,
		MapOptions: []wren.MapOption{wren.WithRetryErrors(true), wren.WithRetries(20)},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := res.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, got, want)

	shuffle = testenv.FaultURL("file://"+t.TempDir(), testenv.Faults{Truncate: 1})
	_, err = mapreduce.Run(ctx, ex, mapreduce.Job[string, string, int]{
		Input: mapreduce.Lines(in), Map: tokenize, Reduce: sum, Partitions: 3, Shuffle: shuffle,
	})
	// The error crossed a worker boundary as text.
	if err == nil || !strings.Contains(err.Error(), mapreduce.ErrCorrupt.Error()) {
		t.Errorf("a truncating shuffle store: err = %v, want ErrCorrupt", err)
	}
}

// TestRetriedAndSpeculativeMaps never duplicate records: a map call's
// worker dies after some of the job's shuffle objects are written, another
// straggles until speculation relaunches it, and every worker process is
// killed twice mid-job; the counts stay exact.
func TestRetriedAndSpeculativeMaps(t *testing.T) {
	ctx := testCtx(t)
	t.Setenv("MR_TEST_MARKERS", t.TempDir())
	var sleepy strings.Builder
	for range 40 {
		sleepy.WriteString("SLEEP\nsleepy words here\n")
	}
	in, want := zipfText(t, 1<<20, 8, "DIE\nthe dying call\n", "SLOW\nthe straggler\n", sleepy.String())
	ex := executor(t, wren.Options{Speculation: true, SpeculationFactor: 2, Retries: 5})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 2 {
			time.Sleep(700 * time.Millisecond)
			testenv.KillWorkers(t)
		}
	}()
	res, err := mapreduce.Run(ctx, ex, mapreduce.Job[string, string, int]{
		Input: mapreduce.Lines(in), Map: tokenize, Combine: sum, Reduce: sum, Partitions: 3, SplitSize: 128 << 10,
	})
	<-done
	if err != nil {
		t.Fatal(err)
	}
	got, err := res.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, got, want)
	// Killed, retried and speculative calls still end in one mark naming
	// the job's partitions and records.
	if c, err := mapreduce.ReadCompletion(ctx, res.Store); err != nil || !slices.Equal(c.Partitions, res.Partitions) || c.Records != res.Records || c.Bytes != res.OutBytes {
		t.Errorf("completion %+v, %v; result %d records in %q", c, err, res.Records, res.Partitions)
	}
	if res.Wall > 15*time.Second {
		// Not a timing assertion: the straggler sleeps 20 s, so a job that
		// waited for it did not speculate.
		t.Errorf("the job took %v: the straggler was not relaunched", res.Wall)
	}
}

// TestReduceFailureLeavesNoHalfPartition: a reducer fails on one key; the
// job fails, and every partition that was written is whole.
func TestReduceFailureLeavesNoHalfPartition(t *testing.T) {
	ctx := testCtx(t)
	in, _ := zipfText(t, 256<<10, 1, "boom\n")
	ex := executor(t, wren.Options{})
	out := t.TempDir()
	_, err := mapreduce.Run(ctx, ex, mapreduce.Job[string, string, int]{
		Input: mapreduce.Lines(in), Map: tokenize, Reduce: sum, Partitions: 4, Output: out,
	})
	if err == nil || !strings.Contains(err.Error(), "refuses boom") {
		t.Fatalf("err = %v", err)
	}
	// The partitions written: the objects of the output store.
	outStore, err := wren.OpenStore(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	parts, err := blob.Keys(ctx, outStore, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) >= 4 {
		t.Errorf("all 4 partitions written although one reducer failed: %q", parts)
	}
	if slices.Contains(parts, mapreduce.SuccessName) {
		t.Errorf("a failed job marked its output complete: %q", parts)
	}
	if _, err := mapreduce.ReadCompletion(ctx, out); !errors.Is(err, blob.ErrNotFound) {
		t.Errorf("ReadCompletion of a failed job's output: %v", err)
	}
	if _, err := mapreduce.ReadCompletion(ctx, ""); err == nil || errors.Is(err, blob.ErrNotFound) {
		t.Errorf("ReadCompletion of no output: %v", err) // it read the working directory's
	}
	r := &mapreduce.Result[string, int]{Store: "file://" + out, Partitions: parts}
	for _, err := range r.All(ctx) {
		if err != nil {
			t.Errorf("a written partition is not whole: %v", err)
		}
	}
}

// TestBadJobs: every misuse and bad input gets a clear error.
func TestBadJobs(t *testing.T) {
	ctx := testCtx(t)
	ex := executor(t, wren.Options{Backend: wren.InProcess(2)})
	empty := t.TempDir()
	os.WriteFile(filepath.Join(empty, "zero"), nil, 0o644)
	text, _ := zipfText(t, 10<<10, 1)
	long, _ := zipfText(t, 10<<10, 1, strings.Repeat("x", 3000)+"\n")
	used := t.TempDir()
	os.WriteFile(filepath.Join(used, "part-00000"), []byte("old"), 0o644)
	for name, c := range map[string]struct {
		job  mapreduce.Job[string, string, int]
		want string
	}{
		"empty input":  {mapreduce.Job[string, string, int]{Input: mapreduce.Lines(empty), Map: tokenize, Reduce: sum}, "no input"},
		"long line":    {mapreduce.Job[string, string, int]{Input: mapreduce.Lines(long), Map: tokenize, Reduce: sum, MaxLine: 1000}, "longer than 1000 bytes"},
		"no map":       {mapreduce.Job[string, string, int]{Input: mapreduce.Lines(text), Reduce: sum}, "Map is required"},
		"splitters":    {mapreduce.Job[string, string, int]{Input: mapreduce.Lines(text), Map: tokenize, Partitions: 3, Splitters: []string{"m"}}, "1 splitters for 3"},
		"unsorted":     {mapreduce.Job[string, string, int]{Input: mapreduce.Lines(text), Map: tokenize, Partitions: 3, Splitters: []string{"m", "c"}}, "not sorted"},
		"output used":  {mapreduce.Job[string, string, int]{Input: mapreduce.Lines(text), Map: tokenize, Reduce: sum, Output: used}, "already holds part-00000"},
		"bad shuffle":  {mapreduce.Job[string, string, int]{Input: mapreduce.Lines(text), Map: tokenize, Reduce: sum, Shuffle: "redis://127.0.0.1:1?db=3"}, `parameter "db"`},
		"escape input": {mapreduce.Job[string, string, int]{Input: mapreduce.Lines("nosuch://x"), Map: tokenize, Reduce: sum}, "nosuch"},
		"no input URL": {mapreduce.Job[string, string, int]{Input: mapreduce.Lines(""), Map: tokenize, Reduce: sum}, "no store URL"}, // read the working directory
	} {
		t.Run(name, func(t *testing.T) {
			_, err := mapreduce.Run(ctx, ex, c.job)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want one mentioning %q", err, c.want)
			}
		})
	}
	// A record file whose size is not a multiple of the record size.
	odd := t.TempDir()
	os.WriteFile(filepath.Join(odd, "a"), make([]byte, 250), 0o644)
	_, err := mapreduce.Sort(ctx, ex, mapreduce.SortJob{Input: odd, Output: t.TempDir(), Partitions: 2})
	if !errors.Is(err, mapreduce.ErrInput) || !strings.Contains(err.Error(), "a holds 250 bytes") {
		t.Errorf("a 250-byte record file: err = %v", err)
	}
	// An empty input or output URL is not the working directory.
	if _, err := mapreduce.Sort(ctx, ex, mapreduce.SortJob{Input: "", Output: t.TempDir()}); !errors.Is(err, mapreduce.ErrInput) {
		t.Errorf("a sort of no input: err = %v", err)
	}
	if _, err := mapreduce.Validate(ctx, ex, "", odd); err == nil || !strings.Contains(err.Error(), "output") {
		t.Errorf("validating no output: err = %v", err)
	}
}

// TestSort sorts binary and ASCII records with worker processes, through
// the file store and through Redis, and validates the output; the
// validator catches a swapped, a lost and a changed record.
func TestSort(t *testing.T) {
	ctx := testCtx(t)
	servers := testenv.StartRedis(t, 2, redisserver.Options{})
	ex := executor(t, wren.Options{})
	for _, c := range []struct {
		name    string
		ascii   bool
		shuffle string
	}{
		{"binary", false, ""},
		{"ascii-redis", true, "redis://" + strings.Join(testenv.Addrs(servers), ",")},
	} {
		t.Run(c.name, func(t *testing.T) {
			inDir, outDir := t.TempDir(), t.TempDir()
			in, _ := wren.OpenStore(ctx, inDir)
			sum, err := mapreduce.GenerateRecords(ctx, in, "", mapreduce.GenOptions{Records: 30000, Files: 3, ASCII: c.ascii, Seed: 5})
			if err != nil {
				t.Fatal(err)
			}
			res, err := mapreduce.Sort(ctx, ex, mapreduce.SortJob{Input: inDir, Output: outDir, Partitions: 5, Shuffle: c.shuffle, SplitSize: 250 << 10})
			if err != nil {
				t.Fatal(err)
			}
			if res.Records != 30000 || res.InRecords != 30000 || res.OutBytes != 30000*mapreduce.RecordSize || len(res.Partitions) != 5 {
				t.Fatalf("%d records in %d partitions", res.Records, len(res.Partitions))
			}
			rep, err := mapreduce.Validate(ctx, ex, outDir, inDir)
			if err != nil {
				t.Fatal(err)
			}
			if !rep.OK() || rep.Sum != sum || rep.Input != sum {
				t.Fatalf("report %+v, generated %+v", rep, sum)
			}
			// Partitions are balanced by the sample: none over twice its share.
			for _, p := range res.Partitions {
				fi, _ := os.Stat(filepath.Join(outDir, p))
				if fi.Size() > 2*30000*mapreduce.RecordSize/5 || fi.Size() == 0 {
					t.Errorf("%s holds %d bytes", p, fi.Size())
				}
			}
			if c.ascii {
				// Each record is a line; the output is what sorting the
				// lines by their keys gives.
				all, _ := os.ReadFile(filepath.Join(outDir, res.Partitions[0]))
				for _, l := range bytes.SplitAfter(all, []byte("\r\n")) {
					if len(l) != 0 && len(l) != mapreduce.RecordSize {
						t.Fatalf("a line of %d bytes", len(l))
					}
					for _, b := range l[:min(len(l), mapreduce.KeySize)] {
						if b < ' ' || b > '~' {
							t.Fatalf("key byte %q is not printable", b)
						}
					}
				}
			}
			// Damage the output three ways.
			p0 := filepath.Join(outDir, res.Partitions[0])
			orig, _ := os.ReadFile(p0)
			damage := map[string][]byte{
				"swapped": slices.Concat(orig[100:200], orig[:100], orig[200:]),
				"lost":    orig[100:],
				"changed": slices.Concat(orig[:50], []byte{orig[50] ^ 1}, orig[51:]),
			}
			for _, name := range slices.Sorted(maps.Keys(damage)) {
				os.WriteFile(p0, damage[name], 0o644)
				rep, err := mapreduce.Validate(ctx, ex, outDir, inDir)
				if err != nil {
					t.Fatal(err)
				}
				if rep.OK() {
					t.Errorf("%s record: the validator says OK", name)
				}
			}
			os.WriteFile(p0, orig, 0o644)
			// A partial output (a sort killed half-way), validated without
			// the input: valsort's checks pass; the job's completion mark
			// tells (the validator said OK before there was one).
			done, err := mapreduce.ReadCompletion(ctx, outDir)
			if err != nil || !slices.Equal(done.Partitions, res.Partitions) || done.Records != 30000 || done.Bytes != res.OutBytes {
				t.Fatalf("completion %+v, %v", done, err)
			}
			mark := filepath.Join(outDir, mapreduce.SuccessName)
			p1 := filepath.Join(outDir, res.Partitions[1])
			for _, d := range []struct{ name, want, from, to string }{
				{"a partition gone", res.Partitions[1] + " is missing", p1, p1 + "~"},
				{"the mark gone", "no _SUCCESS", mark, mark + "~"},
			} {
				os.Rename(d.from, d.to)
				rep, err := mapreduce.Validate(ctx, ex, outDir, "")
				os.Rename(d.to, d.from)
				if err != nil {
					t.Fatal(err)
				}
				if rep.OK() || !strings.Contains(strings.Join(rep.Problems, "; "), d.want) {
					t.Errorf("%s: %q", d.name, rep.Problems)
				}
			}
			os.WriteFile(p0, orig[100:], 0o644)
			if rep, err := mapreduce.Validate(ctx, ex, outDir, ""); err != nil || rep.OK() {
				t.Errorf("a record lost, no input given: %+v, %v", rep, err)
			}
			os.WriteFile(p0, orig, 0o644)
			// Whole again; and one job's output is the next one's input:
			// its _SUCCESS (and a hidden file) are not records.
			os.WriteFile(filepath.Join(outDir, ".part-00000.crc"), []byte("x"), 0o644)
			if rep, err := mapreduce.Validate(ctx, ex, outDir, ""); err != nil || !rep.OK() {
				t.Fatalf("the whole output: %+v, %v", rep, err)
			}
			again := t.TempDir()
			if _, err := mapreduce.Sort(ctx, ex, mapreduce.SortJob{Input: outDir, Output: again, Partitions: 3, Shuffle: c.shuffle}); err != nil {
				t.Fatalf("sorting a sort's output: %v", err)
			}
			if rep, err := mapreduce.Validate(ctx, ex, again, inDir); err != nil || !rep.OK() {
				t.Fatalf("sorting a sort's output: %+v, %v", rep, err)
			}
			// Partitions are in the job's order, not their names' (with
			// 100,000 partitions or more, part-100000 sorts before
			// part-10001): names in reverse order of the keys validate.
			var renamed []string
			for i, p := range res.Partitions {
				name := fmt.Sprintf("z-%02d", len(res.Partitions)-i)
				if err := os.Rename(filepath.Join(outDir, p), filepath.Join(outDir, name)); err != nil {
					t.Fatal(err)
				}
				renamed = append(renamed, name)
			}
			b, _ := json.Marshal(mapreduce.Completion{Job: done.Job, Partitions: renamed, Records: done.Records, Bytes: done.Bytes})
			os.WriteFile(mark, b, 0o644)
			if rep, err := mapreduce.Validate(ctx, ex, outDir, inDir); err != nil || !rep.OK() {
				t.Fatalf("partitions named against their order: %+v, %v", rep, err)
			}
		})
	}
}

// TestRedisShuffleCredentials: with a password-protected Redis shuffle,
// the calls get a user of the job's own: the server's password is in
// nothing the driver writes to the store, nor in the store after the job
// (it used to travel in every task's shuffle URL), and the job's
// credential no longer authenticates once the job ended.
func TestRedisShuffleCredentials(t *testing.T) {
	ctx := testCtx(t)
	const password = "the-shuffle-servers-password"
	servers := testenv.StartRedis(t, 2, redisserver.Options{Password: password})
	in, want := zipfText(t, 256<<10, 2)
	dir := t.TempDir()
	st, err := wren.OpenStore(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recordingStore{Store: st}
	ex := executor(t, wren.Options{BlobStore: rec})
	shuffle := "redis://" + password + "@" + strings.Join(testenv.Addrs(servers), ",")
	res, err := mapreduce.Run(ctx, ex, mapreduce.Job[string, string, int]{
		Input: mapreduce.Lines(in), Map: tokenize, Reduce: sum, Partitions: 3, SplitSize: 64 << 10, Shuffle: shuffle,
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := res.Collect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkCounts(t, got, want)
	written := rec.all()
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			b, _ := os.ReadFile(p)
			written = append(written, b...)
		}
		return nil
	})
	if bytes.Contains(written, []byte(password)) {
		t.Fatal("the server's password went into the store")
	}
	cred := regexp.MustCompile(`redis://(wren-job-[0-9a-f]{16}):([0-9a-f]{32})@`)
	creds := cred.FindAllSubmatch(written, -1)
	if len(creds) == 0 {
		t.Fatal("no job credential found in the tasks' inputs")
	}
	for _, c := range creds {
		for _, s := range servers {
			rc := redis.NewClient(&redis.Options{Addr: s.Addr, Username: string(c[1]), Password: string(c[2]), MaxRetries: -1})
			err := rc.Ping(ctx).Err()
			rc.Close()
			if err == nil {
				t.Fatalf("the job's credential %s still authenticates on %s", c[1], s.Addr)
			}
		}
	}
	for _, s := range servers {
		c := redis.NewClient(&redis.Options{Addr: s.Addr, Password: password})
		if n, err := c.DBSize(ctx).Result(); err != nil || n != 0 {
			t.Errorf("%s holds %d keys after the job (err %v)", s.Addr, n, err)
		}
		c.Close()
	}
}

// recordingStore keeps a copy of every byte put through it.
type recordingStore struct {
	blob.Store
	mu  sync.Mutex
	buf bytes.Buffer
}

func (r *recordingStore) Put(ctx context.Context, key string, rd io.Reader, opts blob.PutOptions) error {
	b, err := io.ReadAll(rd)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.buf.Write(b)
	r.mu.Unlock()
	return r.Store.Put(ctx, key, bytes.NewReader(b), opts)
}

func (r *recordingStore) all() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.buf.Bytes())
}
