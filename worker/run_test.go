package worker_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/blob/memblob"
	"github.com/wrenml/wren/job"
	"github.com/wrenml/wren/worker"
)

// recorder is a store that remembers the order of puts.
type recorder struct {
	*memblob.Store
	mu   sync.Mutex
	puts []string
}

func (r *recorder) Put(ctx context.Context, key string, rd io.Reader, o blob.PutOptions) error {
	err := r.Store.Put(ctx, key, rd, o)
	if err == nil {
		r.mu.Lock()
		r.puts = append(r.puts, key)
		r.mu.Unlock()
	}
	return err
}

var handlers = map[string]worker.Handler{
	"echo": func(ctx context.Context, in []byte) ([]byte, error) { return in, nil },
	"fail": func(ctx context.Context, in []byte) ([]byte, error) { return nil, errors.New("nope") },
	"panic": func(ctx context.Context, in []byte) ([]byte, error) {
		var s []int
		_ = s[len(in)] // index out of range
		return nil, nil
	},
	"stuck": func(ctx context.Context, in []byte) ([]byte, error) { select {} },
	"slow": func(ctx context.Context, in []byte) ([]byte, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	},
	"big": func(ctx context.Context, in []byte) ([]byte, error) { return make([]byte, 100), nil },
}

func lookup(name string) (worker.Handler, bool) { h, ok := handlers[name]; return h, ok }

var storeSeq atomic.Int64

// setup registers a named memblob store holding inputs for calls 0..n-1.
func setup(t *testing.T, n int) (*recorder, string) {
	t.Helper()
	url := fmt.Sprintf("mem://worker-test-%d", storeSeq.Add(1))
	st, err := blob.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{Store: st.(*memblob.Store)}
	for i := range n {
		if err := blob.PutBytes(context.Background(), st, job.InputKey("j", i), []byte("in"), blob.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	return rec, url
}

func TestRunStatusLast(t *testing.T) {
	rec, url := setup(t, 2)
	env := &worker.Env{Name: "w1"}
	// Run reads through the URL; record through the same underlying store.
	rep, err := worker.Run(context.Background(), &job.Invocation{Store: url, Job: "j", Task: "echo",
		Calls: []job.Call{{Index: 0, Attempt: 0, RecordErrors: true}, {Index: 1, Attempt: 3, RecordErrors: true}}}, lookup, env)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Statuses) != 2 || !rep.Statuses[0].Won || !rep.Statuses[1].OK {
		t.Fatalf("reply = %+v", rep)
	}
	keys, _ := blob.Keys(context.Background(), rec, "jobs/j/")
	want := []string{"jobs/j/in/000000", "jobs/j/in/000001", "jobs/j/out/000000.0", "jobs/j/out/000001.3", "jobs/j/status/000000", "jobs/j/status/000001"}
	if strings.Join(keys, ",") != strings.Join(want, ",") {
		t.Fatalf("keys = %v, want %v", keys, want)
	}
	s, ok, err := job.ReadStatus(context.Background(), rec, "j", 1)
	if !ok || err != nil || s.Output != "jobs/j/out/000001.3" || s.Attempt != 3 || s.Worker != "w1" || s.BytesRead != 2 || s.BytesWritten != 2 {
		t.Fatalf("status = %+v, %v, %v", s, ok, err)
	}
	if s.Started == 0 || s.ComputeStart < s.Started || s.ComputeEnd < s.ComputeStart || s.Finished < s.ComputeEnd {
		t.Fatalf("timestamps out of order: %+v", s)
	}
}

func TestRunLateAttemptChangesNothing(t *testing.T) {
	st, url := setup(t, 1)
	ctx := context.Background()
	env := &worker.Env{Name: "w"}
	inv := func(attempt int) *job.Invocation {
		return &job.Invocation{Store: url, Job: "j", Task: "echo", Calls: []job.Call{{Index: 0, Attempt: attempt, RecordErrors: true}}}
	}
	if _, err := worker.Run(ctx, inv(0), lookup, env); err != nil {
		t.Fatal(err)
	}
	before, _ := blob.ReadAll(ctx, st, job.StatusKey("j", 0))
	rep, err := worker.Run(ctx, inv(1), lookup, env)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Statuses[0].Won {
		t.Fatal("a late attempt claims to have won")
	}
	after, _ := blob.ReadAll(ctx, st, job.StatusKey("j", 0))
	if string(before) != string(after) {
		t.Fatal("a late attempt changed the status")
	}
	if _, err := st.Stat(ctx, job.OutputKey("j", 0, 1)); !errors.Is(err, blob.ErrNotFound) {
		t.Fatalf("the losing attempt's output is still there: %v", err)
	}
}

func TestRunErrors(t *testing.T) {
	cases := []struct {
		task    string
		record  bool
		timeout time.Duration
		max     int64
		kind    job.ErrorKind
		msg     string
		stored  bool
		stuck   bool
	}{
		{task: "fail", record: true, kind: job.KindError, msg: "nope", stored: true},
		{task: "fail", record: false, kind: job.KindError, msg: "nope", stored: false},
		{task: "panic", record: true, kind: job.KindPanic, msg: "index out of range", stored: true},
		{task: "nosuch", record: true, kind: job.KindUnknownTask, msg: `unknown task "nosuch"`, stored: true},
		{task: "slow", record: true, timeout: 50 * time.Millisecond, kind: job.KindTimeout, msg: "timed out after 50ms", stored: true},
		{task: "stuck", record: true, timeout: 50 * time.Millisecond, kind: job.KindTimeout, msg: "did not return", stored: true, stuck: true},
		{task: "big", record: true, max: 10, kind: job.KindTooLarge, msg: "100 bytes, over the cap of 10", stored: true},
	}
	for _, tc := range cases {
		t.Run(tc.task+"-"+string(tc.kind), func(t *testing.T) {
			st, url := setup(t, 1)
			env := &worker.Env{}
			rep, err := worker.Run(context.Background(), &job.Invocation{Store: url, Job: "j", Task: tc.task, Timeout: tc.timeout, MaxOutput: tc.max,
				Calls: []job.Call{{Index: 0, RecordErrors: tc.record}}}, lookup, env)
			if err != nil {
				t.Fatal(err)
			}
			s := rep.Statuses[0]
			if s.OK || s.Error == nil || s.Error.Kind != tc.kind || !strings.Contains(s.Error.Message, tc.msg) {
				t.Fatalf("status = %+v (error %+v)", s, s.Error)
			}
			if tc.kind == job.KindPanic && !strings.Contains(s.Error.Stack, "run_test.go") {
				t.Fatalf("panic stack lacks the panicking frame:\n%s", s.Error.Stack)
			}
			_, ok, _ := job.ReadStatus(context.Background(), st, "j", 0)
			if ok != tc.stored {
				t.Fatalf("status stored = %v, want %v", ok, tc.stored)
			}
			if env.Stuck() != tc.stuck {
				t.Fatalf("stuck = %v, want %v", env.Stuck(), tc.stuck)
			}
			if outs, _ := blob.Keys(context.Background(), st, "jobs/j/out/"); len(outs) != 0 {
				t.Fatalf("a failed call left outputs: %v", outs)
			}
		})
	}
}

func TestRunBadStore(t *testing.T) {
	_, err := worker.Run(context.Background(), &job.Invocation{Store: "bogus://x", Job: "j", Task: "echo", Calls: []job.Call{{}}}, lookup, &worker.Env{})
	if err == nil || !strings.Contains(err.Error(), "bogus://x") {
		t.Fatalf("err = %v, want one naming the URL", err)
	}
}

func TestRunMissingInput(t *testing.T) {
	_, url := setup(t, 0)
	rep, err := worker.Run(context.Background(), &job.Invocation{Store: url, Job: "j", Task: "echo", Calls: []job.Call{{Index: 5, RecordErrors: true}}}, lookup, &worker.Env{})
	if err != nil {
		t.Fatal(err)
	}
	if e := rep.Statuses[0].Error; e == nil || e.Kind != job.KindDecode || !strings.Contains(e.Message, "call 5") {
		t.Fatalf("status error = %+v", e)
	}
}

func TestLocalNotAWorker(t *testing.T) {
	b, err := worker.NewLocal(worker.LocalOptions{Parallelism: 1, Executable: "/bin/true", Output: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	_, err = b.Invoke(context.Background(), &job.Invocation{Job: "j", Task: "echo", Calls: []job.Call{{}}})
	if !errors.Is(err, worker.ErrNotWorker) || !strings.Contains(err.Error(), "wren.Init") {
		t.Fatalf("err = %v, want a hint about wren.Init", err)
	}
}

func TestStatusJSON(t *testing.T) {
	for _, s := range []job.Status{
		{Call: 3, Attempt: 1, OK: true, Output: "o", Worker: "w", Puts: 2, Gets: 1},
		{Call: 4, OK: true, Inline: []byte{0, 1, 2, 255}, Worker: "w"},
	} {
		b, _ := json.Marshal(s)
		var back job.Status
		if err := json.Unmarshal(b, &back); err != nil || !reflect.DeepEqual(back, s) {
			t.Fatalf("round trip: %+v, %v", back, err)
		}
	}
}

// TestPackedInputs: calls read their inputs from a pack with one ranged
// read per run of consecutive calls; a pack whose bytes do not match their
// checksum, or that is shorter than the driver wrote, is a store error
// naming the job and the call, never recorded as the call's result.
func TestPackedInputs(t *testing.T) {
	ctx := context.Background()
	rec, url := setup(t, 0)
	key := job.PackKey("j", 0)
	pack, refs := job.EncodePack(key, []int{0, 1, 2}, [][]byte{[]byte("zero"), []byte("one"), []byte("two")})
	idx, err := job.ReadPackIndex(pack)
	if err != nil || len(idx.Refs) != 3 || idx.Refs[2] != refs[2] {
		t.Fatalf("index %+v, %v", idx, err)
	}
	calls := func() []job.Call {
		var cs []job.Call
		for i := range refs {
			cs = append(cs, job.Call{Index: i, RecordErrors: true, In: &refs[i]})
		}
		return cs
	}
	put := func(b []byte) {
		if err := blob.PutBytes(ctx, rec, key, b, blob.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	put(pack)
	rep, err := worker.Run(ctx, &job.Invocation{Store: url, Job: "j", Task: "echo", Calls: calls(), InlineMax: 1 << 10}, lookup, &worker.Env{Name: "w"})
	if err != nil {
		t.Fatal(err)
	}
	gets := 0
	for i, s := range rep.Statuses {
		if !s.OK || string(s.Inline) != []string{"zero", "one", "two"}[i] || s.Output != "" {
			t.Fatalf("call %d: %+v", i, s)
		}
		gets += s.Gets
	}
	if gets != 1 {
		t.Fatalf("%d gets for three consecutive packed inputs, want 1", gets)
	}

	corrupt := append([]byte(nil), pack...)
	corrupt[refs[1].Off] ^= 0xff
	truncated := pack[:len(pack)-10]
	for name, c := range map[string]struct {
		data []byte
		want string
	}{
		"checksum":  {corrupt, "do not match their checksum"},
		"truncated": {truncated, "its index says"},
	} {
		t.Run(name, func(t *testing.T) {
			put(c.data)
			rec.Delete(ctx, job.StatusKey("j", 1))
			rep, err := worker.Run(ctx, &job.Invocation{Store: url, Job: "j", Task: "echo", Calls: calls()[1:2]}, lookup, &worker.Env{})
			if err != nil {
				t.Fatal(err)
			}
			e := rep.Statuses[0].Error
			if e == nil || e.Kind != job.KindStore || !strings.Contains(e.Message, c.want) || !strings.Contains(e.Message, "job j, call 1") {
				t.Fatalf("status error %+v", e)
			}
			if _, ok, _ := job.ReadStatus(ctx, rec, "j", 1); ok {
				t.Fatal("a store error was recorded as the call's status")
			}
		})
	}
}
