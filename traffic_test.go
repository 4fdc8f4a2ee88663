package wren_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/wrenml/wren"
	"github.com/wrenml/wren/blob"
	"github.com/wrenml/wren/internal/testenv"
	jobpkg "github.com/wrenml/wren/job"
)

// TestRequestsPerCall: small inputs go in packs and small outputs inline,
// so a call costs one put (its status) and one ranged get (less with
// chunks, which read their inputs in one request), and the driver reads
// nothing on the happy path.
func TestRequestsPerCall(t *testing.T) {
	for _, c := range []struct {
		chunk           int
		maxGetsPerCall  float64
		maxPutsPerCall  float64
		wantOutputFiles int
	}{
		{1, 1.05, 1.2, 0},
		// Statuses ready together share one object; how many are ready
		// together depends on the machine's load (0.13 puts a call idle,
		// 0.26 seen under make test's load): one put per call would be 1.03.
		{10, 0.15, 0.5, 0},
	} {
		t.Run(fmt.Sprint("chunk=", c.chunk), func(t *testing.T) {
			ex := newExecutor(t, wren.Options{ChunkSize: c.chunk})
			job, err := Square.Map(testCtx(t), ex, squares(300))
			if err != nil {
				t.Fatal(err)
			}
			got, err := job.Results(testCtx(t))
			if err != nil {
				t.Fatal(err)
			}
			checkSquares(t, got, 300)
			assertExactlyOnce(t, ex.Store(), job.ID(), 300)
			st := job.Stats()
			rq, drv := st.Requests, st.DriverRequests
			puts, gets := float64(rq.Puts)/300, float64(rq.Gets)/300
			t.Logf("chunk %d: %.3f puts and %.3f gets per call; driver %+v", c.chunk, puts, gets, drv)
			if puts > c.maxPutsPerCall || gets > c.maxGetsPerCall {
				t.Fatalf("%.3f puts and %.3f gets per call, want at most %.2f and %.2f", puts, gets, c.maxPutsPerCall, c.maxGetsPerCall)
			}
			if drv.Gets != 0 || drv.Lists != 0 {
				t.Fatalf("the driver read %d objects and listed %d times on the happy path", drv.Gets, drv.Lists)
			}
			if outs, _ := blob.Keys(context.Background(), ex.Store(), jobpkg.OutputPrefix(job.ID())); len(outs) != c.wantOutputFiles {
				t.Fatalf("%d output objects for small outputs", len(outs))
			}
		})
	}
}

// TestLargeOutputsHaveTheirOwnObject: an output over MaxInlineOutput is
// written the old way (its own object, named by the status), never
// truncated into the status.
func TestLargeOutputsHaveTheirOwnObject(t *testing.T) {
	ex := newExecutor(t, wren.Options{})
	sizes := []int{10, wren.DefaultMaxInlineOutput, wren.DefaultMaxInlineOutput + 1, 300 << 10}
	job, err := Big.Map(testCtx(t), ex, sizes)
	if err != nil {
		t.Fatal(err)
	}
	got, err := job.Results(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range sizes {
		if len(got[i]) != n {
			t.Fatalf("output %d has %d bytes, want %d", i, len(got[i]), n)
		}
		s, ok, err := jobpkg.ReadStatus(context.Background(), ex.Store(), job.ID(), i)
		if err != nil || !ok {
			t.Fatal(ok, err)
		}
		inline := s.Inline != nil
		// The encoded output is a few bytes longer than the slice.
		if wantInline := n <= wren.DefaultMaxInlineOutput-16; inline != wantInline && n != wren.DefaultMaxInlineOutput {
			t.Fatalf("output of %d bytes: inline %v, object %q", n, inline, s.Output)
		}
		if !inline && s.Output == "" {
			t.Fatalf("output of %d bytes neither inline nor in an object", n)
		}
	}
	assertExactlyOnce(t, ex.Store(), job.ID(), len(sizes))
}

// TestTruncatedPack: a pack the store kept only half of is detected by the
// worker (its size disagrees with the index), reported as a store error
// naming the job, the call and the sizes, and retried.
func TestTruncatedPack(t *testing.T) {
	url := testenv.FaultURL("file://"+t.TempDir(), testenv.Faults{Truncate: 1, Only: "/in/pack-"})
	ex := newExecutor(t, wren.Options{Store: url, Retries: 1})
	job, err := Square.Map(testCtx(t), ex, squares(5))
	if err != nil {
		t.Fatal(err)
	}
	_, err = job.Results(testCtx(t))
	var ce *wren.CallError
	if !errors.As(err, &ce) || !errors.Is(err, wren.ErrStore) || ce.Attempts != 2 {
		t.Fatalf("err = %v, want store errors after 2 attempts", err)
	}
	for _, want := range []string{job.ID(), "call 0", "its index says", "bad input pack"} {
		if !strings.Contains(ce.Error(), want) {
			t.Errorf("error %q does not mention %q", ce.Error(), want)
		}
	}
}

// Printer prints to stdout, stderr and slog, then fails when asked.
var Printer = wren.Register("test.printer", func(ctx context.Context, x int) (int, error) {
	fmt.Printf("stdout of call %d\n", x)
	fmt.Fprintf(os.Stderr, "stderr of call %d\n", x)
	slog.Info("slog of call", "x", x)
	if x < 0 {
		return 0, errors.New("negative")
	}
	return x, nil
})

// TestCallLogs: what a function prints is kept per call and attempt in the
// store, and a failed call's error carries the last lines.
func TestCallLogs(t *testing.T) {
	ex := newExecutor(t, wren.Options{})
	job, err := Printer.Map(testCtx(t), ex, []int{7, -3})
	if err != nil {
		t.Fatal(err)
	}
	_, err = job.Results(testCtx(t))
	var ce *wren.CallError
	if !errors.As(err, &ce) || ce.Call != 1 {
		t.Fatalf("err = %v", err)
	}
	for _, want := range []string{"stdout of call -3", "stderr of call -3", "slog of call", "x=-3"} {
		if !strings.Contains(ce.Log, want) {
			t.Errorf("the error's log lacks %q: %q", want, ce.Log)
		}
	}
	b, err := blob.ReadAll(context.Background(), ex.Store(), jobpkg.LogKey(job.ID(), 0, 0))
	if err != nil || !strings.Contains(string(b), "stdout of call 7") || !strings.Contains(string(b), "stderr of call 7") || strings.Contains(string(b), "call -3") {
		t.Fatalf("log of call 0: %q, %v", b, err)
	}
	if ce.LogKey != jobpkg.LogKey(job.ID(), 1, 0) {
		t.Fatalf("LogKey %q", ce.LogKey)
	}
}
